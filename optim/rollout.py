"""Group rollouts: ``n_tasks x group_size`` episodes through a Gymnasium vector env.

Every member of a group is reset with the same seed, so the group starts from the same
state (the premise of GRPO's and GiGPO's baselines). The (possibly wrapped) policy
answers all live episodes of a turn in one batched ``generate`` call, with the env's
own prompt (task, history window, admissible actions). A finished episode is left
alone: its slot receives an empty action that the vector env ignores (autoreset) and
nothing more is recorded for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np

from t2po_gym.policies.base import Generation, LLMPolicy, SamplingConfig

__all__ = ["Turn", "Trajectory", "Rollout", "make_group_envs", "collect_rollouts"]


@dataclass
class Turn:
    """One agent turn: what the policy saw and said, and what the env answered.

    Attributes:
        prompt_ids, response_ids: token ids as the policy produced them.
        old_logprobs: log-probabilities of ``response_ids`` at sampling time.
        forced_mask: 1 for tokens TTI inserted (no gradient), same length as ``response_ids``.
        reward: env reward for this step (before any penalty).
        anchor: the raw observation *before* the step (GiGPO's anchor-state key).
        format_valid, action_valid: the env's verdict on the response.
        think_tokens, intervened, resampled: TTI / TDS statistics of the generation.
        finish_reason: ``"stop"``, ``"length"`` or ``"eos"``.
        text: the decoded response.
    """

    prompt_ids: list[int]
    response_ids: list[int]
    old_logprobs: list[float]
    forced_mask: list[int]
    reward: float
    anchor: str
    format_valid: bool
    action_valid: bool
    think_tokens: int = 0
    intervened: bool = False
    resampled: int = 0
    finish_reason: str = "stop"
    text: str = ""


@dataclass
class Trajectory:
    """One episode of a group.

    Attributes:
        group: index of the group (task) in the rollout.
        member: index inside the group.
        seed: the reset seed shared by the group.
        turns: the turns in order.
        won, task_score: the env's final verdict.
        terminated, truncated: how the episode ended (truncated: turn limit).
    """

    group: int
    member: int
    seed: int
    turns: list[Turn] = field(default_factory=list)
    won: bool = False
    task_score: float = 0.0
    terminated: bool = False
    truncated: bool = False

    @property
    def env_return(self) -> float:
        """Sum of the env rewards (no penalties)."""
        return float(sum(t.reward for t in self.turns))


@dataclass
class Rollout:
    """All trajectories of one rollout plus summary statistics."""

    trajectories: list[Trajectory]

    def stats(self) -> dict[str, float]:
        """Per-rollout metrics under the CleanRL-style namespaces."""
        trajs = self.trajectories
        turns = [t for tr in trajs for t in tr.turns]
        n_ep, n_turns = max(len(trajs), 1), max(len(turns), 1)
        return {
            "charts/success": sum(tr.won for tr in trajs) / n_ep,
            "charts/task_score": sum(tr.task_score for tr in trajs) / n_ep,
            "charts/turns": len(turns) / n_ep,
            "charts/episodic_return": sum(tr.env_return for tr in trajs) / n_ep,
            "charts/response_tokens": sum(len(t.response_ids) for t in turns) / n_turns,
            "charts/prompt_tokens": sum(len(t.prompt_ids) for t in turns) / n_turns,
            "charts/think_tokens": sum(t.think_tokens for t in turns) / n_turns,
            "charts/format_valid": sum(t.format_valid for t in turns) / n_turns,
            "charts/action_valid": sum(t.action_valid for t in turns) / n_turns,
            "hesitation/tti_fire_rate": sum(t.intervened for t in turns) / n_turns,
            "hesitation/tds_resample_rate": sum(t.resampled > 0 for t in turns) / n_turns,
            "hesitation/tds_resamples": sum(t.resampled for t in turns) / n_turns,
        }


def make_group_envs(env_id: str, num_envs: int, **env_kwargs: Any) -> gym.vector.VectorEnv:
    """A synchronous vector env of ``num_envs`` copies of ``env_id``.

    Text observations need no shared memory, and the sync mode keeps the env objects
    in-process (the trainer is single-process on CPU anyway).
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync", **env_kwargs)


def _info_at(infos: dict[str, Any], key: str, i: int, default: Any) -> Any:
    if key not in infos:
        return default
    mask = infos.get("_" + key)
    if mask is not None and not bool(mask[i]):
        return default
    return infos[key][i]


def collect_rollouts(
    envs: gym.vector.VectorEnv,
    policy: LLMPolicy,
    *,
    n_tasks: int,
    group_size: int,
    seeds: Sequence[int],
    sampling: SamplingConfig | None = None,
    reset_options: dict[str, Any] | None = None,
    episode_prefix: str = "ep",
    max_turns: int | None = None,
    on_turn: Callable[[int, int], None] | None = None,
) -> Rollout:
    """Run ``n_tasks`` groups of ``group_size`` episodes to the end.

    Args:
        envs: a vector env with exactly ``n_tasks * group_size`` sub-envs
            (:func:`make_group_envs`). Slot ``g * group_size + m`` is member m of group g.
        policy: any :class:`LLMPolicy` (TTI / TDS wrappers included).
        seeds: ``n_tasks`` reset seeds, one per group.
        sampling: sampling config (default: the env's stop strings, see
            :func:`t2po_gym.factory.sampling_for_env`). Its ``seed`` (if set) is advanced by the
            turn index so every turn draws fresh but reproducible samples.
        reset_options: passed to every sub-env's ``reset`` (e.g. ``{"split": "train"}``).
        episode_prefix: prefix of the episode ids given to the policy (TDS keys its state on them).
        max_turns: optional extra turn cap (below the env's own limit); reaching it truncates.
        on_turn: optional callback ``(turn_index, live_episodes)``, e.g. for a progress bar.

    Returns:
        A :class:`Rollout` with ``n_tasks * group_size`` trajectories, group-major.
    """
    n = n_tasks * group_size
    if n_tasks < 1 or group_size < 1:
        raise ValueError(f"n_tasks and group_size must be >= 1, got {n_tasks}, {group_size}")
    if envs.num_envs != n:
        raise ValueError(
            f"the vector env has {envs.num_envs} sub-envs but n_tasks * group_size = {n}; "
            "build it with make_group_envs(env_id, n_tasks * group_size)"
        )
    if len(seeds) != n_tasks:
        raise ValueError(f"need one seed per group: {n_tasks} groups, {len(seeds)} seeds")
    if sampling is None:  # the env's own stop strings (Search-QA stops at </search>, </answer>)
        from t2po_gym.factory import sampling_for_env

        sampling = sampling_for_env(envs)
    slot_seeds = [int(s) for s in seeds for _ in range(group_size)]
    obs, infos = envs.reset(seed=slot_seeds, options=dict(reset_options or {}))
    trajs = [Trajectory(group=i // group_size, member=i % group_size, seed=slot_seeds[i]) for i in range(n)]
    anchors = [str(_info_at(infos, "anchor", i, obs[i])) for i in range(n)]
    live = np.ones(n, dtype=bool)
    turn = 0
    while live.any():
        idx = np.flatnonzero(live).tolist()
        turn_sampling = sampling
        if sampling.seed is not None:
            turn_sampling = SamplingConfig(**{**sampling.__dict__, "seed": int(sampling.seed) + 1009 * turn})
        gens: list[Generation] = policy.generate(
            [obs[i] for i in idx],
            turn_sampling,
            episode_ids=[f"{episode_prefix}-{i}" for i in idx],
        )
        if len(gens) != len(idx):
            raise RuntimeError(f"policy returned {len(gens)} generations for {len(idx)} prompts")
        actions = [""] * n
        for i, g in zip(idx, gens):
            actions[i] = g.text
        obs, rewards, terms, truncs, infos = envs.step(actions)
        turn += 1
        for i, g in zip(idx, gens):
            forced = list(g.forced_mask) if g.forced_mask else [0] * len(g.token_ids)
            trajs[i].turns.append(
                Turn(
                    prompt_ids=list(g.prompt_ids),
                    response_ids=list(g.token_ids),
                    old_logprobs=[float(x) for x in g.logprobs],
                    forced_mask=forced,
                    reward=float(rewards[i]),
                    anchor=anchors[i],
                    format_valid=bool(_info_at(infos, "format_valid", i, True)),
                    action_valid=bool(_info_at(infos, "action_valid", i, True)),
                    think_tokens=int(g.think_tokens),
                    intervened=bool(g.intervened),
                    resampled=int(g.resampled),
                    finish_reason=g.finish_reason,
                    text=g.text,
                )
            )
            trajs[i].won = bool(_info_at(infos, "won", i, False)) or trajs[i].won
            trajs[i].task_score = float(_info_at(infos, "task_score", i, trajs[i].task_score))
            capped = max_turns is not None and len(trajs[i].turns) >= max_turns
            if terms[i] or truncs[i] or capped:
                live[i] = False
                trajs[i].terminated = bool(terms[i])
                trajs[i].truncated = not bool(terms[i])
            else:
                anchors[i] = str(_info_at(infos, "anchor", i, obs[i]))
        if on_turn is not None:
            on_turn(turn, int(live.sum()))
    return Rollout(trajs)
