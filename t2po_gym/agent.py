"""Play an env with an LLM policy: ``run_episode(env, policy)`` and ``t2po play --policy``.

The loop is the data flow of DESIGN §1: env text -> prompt -> policy (wrapped by
TTI/TDS) -> response text -> env parses the action -> reward. Each turn's prompt is
the env's observation (its ``prompt`` observation mode renders the agent prompt).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from t2po_gym.policies.base import Generation, LLMPolicy, SamplingConfig

__all__ = ["EpisodeResult", "run_episode", "play_with_policy", "find_wrapper", "policy_options", "sampling_options"]


@dataclass
class EpisodeResult:
    """What one episode cost and earned.

    Attributes:
        success: ``info["won"]`` at the end.
        score: ``info["task_score"]`` at the end, in [0, 1].
        reward: sum of rewards.
        turns: env steps taken.
        tokens: response tokens generated (forced ones included).
        think_tokens: sampled tokens inside ``<think>``, all turns.
        interventions: turns where TTI fired.
        resamples: turns thrown away and sampled again by TDS.
        generations: every kept :class:`Generation`, in order.
    """

    success: bool = False
    score: float = 0.0
    reward: float = 0.0
    turns: int = 0
    tokens: int = 0
    think_tokens: int = 0
    interventions: int = 0
    resamples: int = 0
    generations: list[Generation] = field(default_factory=list)


def find_wrapper(policy: Any, name: str) -> Any | None:
    """The first object in the ``.policy`` chain that has attribute ``name`` (or None)."""
    seen = 0
    while policy is not None and seen < 16:
        if hasattr(policy, name):
            return policy
        policy, seen = getattr(policy, "policy", None), seen + 1
    return None


def run_episode(
    env: Any,
    policy: LLMPolicy,
    *,
    seed: int | None = None,
    options: dict | None = None,
    sampling: SamplingConfig | None = None,
    episode_id: str | None = None,
    on_turn: Callable[[int, str, Generation, float, dict], None] | None = None,
) -> EpisodeResult:
    """Play one episode of ``env`` (a Gymnasium text env) with ``policy`` until it ends.

    ``episode_id`` keys TDS's per-episode state (a fresh id by default; the state is
    dropped at the end). ``on_turn(turn, prompt, generation, reward, info)`` is called
    after every step. A sampling seed, when given, is offset by the turn number so that
    turns differ. Without ``sampling``, the env's stop strings are used
    (:func:`~t2po_gym.factory.sampling_for_env`). The env judges ``generation.text``, which
    holds what a reasoning model's chat template opened (``Generation.prefix``).
    """
    if sampling is None:
        from t2po_gym.factory import sampling_for_env

        sampling = sampling_for_env(env)
    episode_id = episode_id or uuid.uuid4().hex
    obs, info = env.reset(seed=seed, options=options)
    res = EpisodeResult()
    try:
        while True:
            s = sampling
            if sampling.seed is not None:
                s = SamplingConfig(**{**sampling.__dict__, "seed": sampling.seed + 7919 * res.turns})
            g = policy.generate([obs], s, episode_ids=[episode_id])[0]
            res.generations.append(g)
            res.tokens += len(g.logprobs) or len(g.token_ids)
            res.think_tokens += g.think_tokens
            res.interventions += int(g.intervened)
            res.resamples += g.resampled
            prompt = obs
            obs, reward, terminated, truncated, info = env.step(g.text)
            res.turns += 1
            res.reward += float(reward)
            if on_turn is not None:
                on_turn(res.turns, prompt, g, float(reward), info)
            if terminated or truncated:
                break
    finally:
        tds = find_wrapper(policy, "reset_episode")
        if tds is not None:
            tds.reset_episode(episode_id)
    res.success = bool(info.get("won", False))
    res.score = float(info.get("task_score", 0.0))
    return res


def _given(args: argparse.Namespace, name: str) -> Any:
    return getattr(args, name, None)


def sampling_options(args: argparse.Namespace) -> dict[str, Any]:
    """``SamplingConfig`` fields from CLI args, only those the user gave (``None`` = not given).

    Reads ``max_new_tokens``, ``temperature`` (0 stays 0: greedy), ``top_p``, ``top_k`` and
    ``stop`` (a list of strings or one string; ``[]`` disables stop strings; default: the env's).
    """
    out: dict[str, Any] = {"max_new_tokens": 256}
    for name, cast in (("max_new_tokens", int), ("temperature", float), ("top_p", float), ("top_k", int)):
        v = _given(args, name)
        if v is not None:
            out[name] = cast(v)
    stop = _given(args, "stop")
    if stop is not None:
        out["stop"] = (stop,) if isinstance(stop, str) else tuple(stop)
    return out


def policy_options(args: argparse.Namespace) -> dict[str, Any]:
    """``make_policy`` keyword arguments from CLI args, only those the user gave.

    Reads ``system_prompt``, ``assistant_prefill``, ``tokenizer`` (for ``openai:`` policies: the
    model's tokenizer path, so the chat template is applied), ``chat_template_kwargs`` (a dict, or
    ``KEY=VALUE`` strings whose values are parsed as JSON when they can be: ``enable_thinking=true``),
    ``tti_kwargs`` and ``tds_kwargs`` (dicts or ``KEY=VALUE`` strings, same parsing).
    """
    out: dict[str, Any] = {}
    for name in ("system_prompt", "assistant_prefill", "tokenizer"):
        v = _given(args, name)
        if v is not None:
            out[name] = v
    for name in ("chat_template_kwargs", "tti_kwargs", "tds_kwargs"):
        v = _given(args, name)
        if v:
            out[name] = _kv_dict(v, name)
    return out


def _kv_dict(value: Any, name: str) -> dict[str, Any]:
    import json

    if isinstance(value, dict):
        return dict(value)
    items = [value] if isinstance(value, str) else list(value)
    out: dict[str, Any] = {}
    for kv in items:
        key, sep, raw = str(kv).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{name} expects KEY=VALUE, got {kv!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def play_with_policy(args: argparse.Namespace, env_kwargs: dict | None = None, out=sys.stdout) -> int:
    """``t2po play --policy hf:PATH|openai:URL [--tti] [--tds]``: play and print a summary.

    Reads ``args.env``, ``args.episodes``, ``args.seed``, ``args.policy``, ``args.tti``,
    ``args.tds``, ``args.verbose`` and, when present (``None`` or absent: the default),
    the keys of :func:`policy_options` and :func:`sampling_options`. Stop strings and TTI's
    forced text follow the env's :class:`~t2po_gym.text_env.ResponseSpec`.
    """
    import gymnasium as gym

    import t2po_gym  # noqa: F401  (registers the env ids)
    from t2po_gym.factory import make_policy, sampling_for_env

    env = gym.make(args.env, **(env_kwargs or {}))
    try:
        policy = make_policy(args.policy, tti=bool(args.tti), tds=bool(args.tds), env=env, **policy_options(args))
        sampling = sampling_for_env(env, seed=args.seed, **sampling_options(args))
    except BaseException:
        env.close()
        raise
    rows = []
    verbose = bool(getattr(args, "verbose", False))

    def show(turn, prompt, g, reward, info):
        print(f"--- turn {turn} reward {reward:.2f} tti={g.intervened} tds={g.resampled}\n{g.text}", file=out)

    try:
        for ep in range(int(args.episodes)):
            r = run_episode(env, policy, seed=args.seed + ep, sampling=sampling, on_turn=show if verbose else None)
            rows.append(r)
            print(
                f"episode {ep}: success={r.success} score={r.score:.3f} turns={r.turns} tokens={r.tokens} "
                f"think={r.think_tokens} interventions={r.interventions} resamples={r.resamples}",
                file=out,
            )
    finally:
        env.close()
    n = max(len(rows), 1)
    print(
        f"{'episodes':>8} {'success':>8} {'score':>7} {'turns':>6} {'tokens':>7} {'interv.':>8} {'resamp.':>8}",
        file=out,
    )
    print(
        f"{len(rows):>8} {sum(r.success for r in rows) / n:>8.1%} {sum(r.score for r in rows) / n:>7.3f} "
        f"{sum(r.turns for r in rows) / n:>6.1f} {sum(r.tokens for r in rows) / n:>7.1f} "
        f"{sum(r.interventions for r in rows) / n:>8.2f} {sum(r.resamples for r in rows) / n:>8.2f}",
        file=out,
    )
    return 0
