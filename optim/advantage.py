"""Advantage estimators: PPO (GAE), GRPO, GiGPO and T2PO.

Every function here is pure: tensors (or lists) in, tensors out, no module state.
Shapes use ``B`` for episodes (trajectories) and ``S`` for steps (turns), flattened
over all episodes of a rollout. A *group* is the set of episodes that started from
the same seed (same task); an *anchor group* is the set of steps, within one group,
taken from the same anchor state (GiGPO).

Two families live here.

**Released** (the default of the trainer, :func:`released_row_advantages`): GiGPO / T2PO /
GRPO exactly as the released pipeline computes them (WillDreamer/T2PO-ICML
``recipe/world_agent/ppo/core_algos.py`` and ``ray_trainer.py``, verl-agent's ``gigpo`` core):
every *step row* (one turn) is a sample of its group's episode baseline
(``compute_mean_std_cross_steps=True``), the invalid-action penalty is subtracted once from
that row's score and from its discounted step return, the std is ``torch.std`` (unbiased)
and ``eps = 1e-6``.

**Trajectory-level** (``TrainConfig.advantage_variant="trajectory"``, this project's earlier
estimator): :func:`group_normalize`, :func:`grpo_advantages`, :func:`gigpo_advantages` on
rewards shaped per step by :func:`shape_rewards`. Its conventions:

* a group of size 1 has nothing to compare with: its advantage is 0;
* a group whose values are all equal gets advantage 0 (no signal, no NaN);
* ``mean_std_norm`` divides by ``std + eps`` with the *population* std (ddof 0), so a
  hand computation needs no Bessel correction; ``mean_norm`` only subtracts the mean.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import torch

__all__ = [
    "NORM_MODES",
    "ADVANTAGE_VARIANTS",
    "released_group_normalize",
    "released_row_advantages",
    "group_normalize",
    "discounted_returns",
    "gae",
    "grpo_advantages",
    "anchor_group_ids",
    "gigpo_advantages",
    "scale_negative_advantages",
    "clip_invalid_advantages",
    "shape_rewards",
    "t2po_advantages",
    "center_turn_advantages",
]

NORM_MODES = ("mean_norm", "mean_std_norm")
#: ``released``: step-row baseline as the released pipeline; ``trajectory``: our earlier one.
ADVANTAGE_VARIANTS = ("released", "trajectory")


def _check_mode(mode: str) -> None:
    if mode not in NORM_MODES:
        raise ValueError(f"normalisation mode must be one of {NORM_MODES}, got {mode!r}")


def _group_stats(
    values: torch.Tensor, group_ids: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(values as float64, group index of each element, count per group, mean per group)``.

    Checks that ``values`` and ``group_ids`` are 1-D of one shape; for empty input the
    last three are empty.
    """
    values = torch.as_tensor(values, dtype=torch.float64)
    group_ids = torch.as_tensor(group_ids)
    if values.shape != group_ids.shape or values.dim() != 1:
        raise ValueError(f"values and group_ids must be 1-D of the same shape, got {tuple(values.shape)} and {tuple(group_ids.shape)}")
    if values.numel() == 0:
        empty = torch.zeros(0, dtype=torch.float64)
        return values, torch.zeros(0, dtype=torch.long), empty, empty
    _, inverse = torch.unique(group_ids, return_inverse=True)
    k = int(inverse.max()) + 1
    count = torch.zeros(k, dtype=torch.float64).index_add_(0, inverse, torch.ones_like(values))
    mean = torch.zeros(k, dtype=torch.float64).index_add_(0, inverse, values) / count
    return values, inverse, count, mean


def group_normalize(
    values: torch.Tensor, group_ids: torch.Tensor, mode: str = "mean_std_norm", eps: float = 1e-6
) -> torch.Tensor:
    """Normalise ``values`` within the groups given by ``group_ids``.

    For an element i of group g with members G(g)::

        mean_g = (1/|G|) sum_{j in G} v_j
        std_g  = sqrt((1/|G|) sum_{j in G} (v_j - mean_g)^2)          (population std)
        A_i    = (v_i - mean_g) / (std_g + eps)    if mode == "mean_std_norm"
        A_i    =  v_i - mean_g                     if mode == "mean_norm"
        A_i    =  0                                if |G| == 1

    Args:
        values: float tensor ``[N]``.
        group_ids: integer tensor ``[N]`` (any ids, need not be contiguous).
        mode: ``"mean_std_norm"`` or ``"mean_norm"``.
        eps: added to the std.

    Returns:
        float tensor ``[N]``.
    """
    _check_mode(mode)
    values, inverse, count, mean = _group_stats(values, group_ids)
    if values.numel() == 0:
        return values.float()
    centred = values - mean[inverse]
    if mode == "mean_std_norm":
        var = torch.zeros(len(count), dtype=torch.float64).index_add_(0, inverse, centred**2) / count
        out = centred / (var.sqrt()[inverse] + eps)
    else:
        out = centred
    out = torch.where(count[inverse] > 1, out, torch.zeros_like(out))
    return out.float()


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Discounted return of every step of one episode.

    ``R_t = sum_{k >= t} gamma^(k - t) r_k``, computed backwards:
    ``R_{T-1} = r_{T-1}``, ``R_t = r_t + gamma * R_{t+1}``.

    Args:
        rewards: float tensor ``[T]`` (one episode, in order).
        gamma: discount in [0, 1].
    """
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    rewards = torch.as_tensor(rewards, dtype=torch.float64)
    out = torch.zeros_like(rewards)
    running = 0.0
    for t in range(rewards.numel() - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out.float()


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    gamma: float,
    lam: float,
    *,
    last_value: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the turns of one episode (PPO).

    ::

        delta_t = r_t + gamma * V_{t+1} - V_t        (V_T = last_value: 0 when terminated,
                                                      the critic's estimate when truncated)
        A_t     = delta_t + gamma * lam * A_{t+1}     (A_T = 0)
        return_t = A_t + V_t                          (the critic's target)

    Args:
        rewards: ``[T]`` per-turn rewards.
        values: ``[T]`` critic values of the turn's prompt state.
        gamma, lam: discount and GAE lambda, both in [0, 1].
        last_value: value after the last turn.

    Returns:
        ``(advantages [T], returns [T])``.
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float64)
    values = torch.as_tensor(values, dtype=torch.float64)
    if rewards.shape != values.shape:
        raise ValueError(f"rewards and values differ in shape: {tuple(rewards.shape)} vs {tuple(values.shape)}")
    adv = torch.zeros_like(rewards)
    next_value, running = float(last_value), 0.0
    for t in range(rewards.numel() - 1, -1, -1):
        delta = float(rewards[t]) + gamma * next_value - float(values[t])
        running = delta + gamma * lam * running
        adv[t] = running
        next_value = float(values[t])
    return adv.float(), (adv + values).float()


def grpo_advantages(
    episode_returns: torch.Tensor,
    group_ids: torch.Tensor,
    mode: str = "mean_std_norm",
    eps: float = 1e-6,
) -> torch.Tensor:
    """GRPO: the episode return normalised within its group.

    ``A_i = (R_i - mean_{j in G} R_j) / (std_{j in G} R_j + eps)`` (see :func:`group_normalize`);
    every turn (and token) of episode i gets ``A_i``.

    Args:
        episode_returns: ``[B]``.
        group_ids: ``[B]`` which group (task) each episode belongs to.

    Returns:
        ``[B]`` episode advantages.
    """
    return group_normalize(episode_returns, group_ids, mode, eps)


def anchor_group_ids(
    group_ids: Sequence[int], anchors: Sequence[Hashable], similarity: float | None = None
) -> torch.Tensor:
    """Integer ids of the anchor groups: steps share an id iff same group and same anchor.

    With ``similarity`` (in (0, 1)), anchors are text and grouped as the released
    ``build_step_group(enable_similarity=True)`` does (``core_algos.py`` ``build_step_group``
    and ``are_similar``): within a group, in order, a step joins the first cluster whose
    *first* anchor has ``difflib.SequenceMatcher(None, a, rep).ratio() >= similarity``,
    else it opens a new cluster. The Search-QA script sets 0.9
    (``examples/search_agent_trainer/train_search.sh:L21-22``).

    Args:
        group_ids: ``[S]`` group (task) of the episode each step belongs to.
        anchors: ``[S]`` anchor keys (the raw env observation before the step).
        similarity: ``None`` for exact matching.

    Returns:
        long tensor ``[S]``, ids numbered in order of first appearance.
    """
    if len(group_ids) != len(anchors):
        raise ValueError(f"{len(group_ids)} group ids but {len(anchors)} anchors")
    if similarity is None:
        table: dict[tuple, int] = {}
        ids = [table.setdefault((int(g), a), len(table)) for g, a in zip(group_ids, anchors)]
        return torch.tensor(ids, dtype=torch.long)
    if not 0.0 < similarity < 1.0:
        raise ValueError(f"anchor similarity must be in (0, 1), got {similarity}")
    from difflib import SequenceMatcher

    clusters: dict[int, list[tuple[str, int]]] = {}
    out, n = [], 0
    for g, a in zip(group_ids, anchors):
        if not isinstance(a, str):
            raise TypeError(f"similarity-based anchor groups need text anchors, got {type(a).__name__}")
        reps = clusters.setdefault(int(g), [])
        for rep, cid in reps:
            if SequenceMatcher(None, a, rep).ratio() >= similarity:
                out.append(cid)
                break
        else:
            reps.append((a, n))
            out.append(n)
            n += 1
    return torch.tensor(out, dtype=torch.long)


def gigpo_advantages(
    episode_returns: torch.Tensor,
    episode_group_ids: torch.Tensor,
    step_returns: torch.Tensor,
    step_episode: torch.Tensor,
    step_anchor_ids: torch.Tensor,
    *,
    mode: str = "mean_norm",
    step_weight: float = 1.0,
    eps: float = 1e-6,
) -> torch.Tensor:
    """GiGPO: episode-level group advantage plus step-level anchor-state advantage.

    ::

        A_E(i)   = norm_{group}(R_i)                        episode return R_i
        A_S(t)   = norm_{anchor group}(R_t)                 R_t = discounted step return
        A(t)     = A_E(episode of t) + w * A_S(t)

    ``norm`` is :func:`group_normalize` with ``mode`` (``mean_norm`` is GiGPO's default on
    ALFWorld: ``F = 1``; ``mean_std_norm``: ``F = std``). Anchor groups of size 1 give
    ``A_S = 0``, so such a step falls back to the episode advantage.

    Args:
        episode_returns: ``[B]``.
        episode_group_ids: ``[B]``.
        step_returns: ``[S]`` discounted returns (:func:`discounted_returns`).
        step_episode: ``[S]`` index in ``[0, B)`` of each step's episode.
        step_anchor_ids: ``[S]`` anchor-group ids (:func:`anchor_group_ids`).
        step_weight: ``w``.

    Returns:
        ``[S]`` step advantages.
    """
    step_episode = torch.as_tensor(step_episode, dtype=torch.long)
    a_e = group_normalize(episode_returns, episode_group_ids, mode, eps)
    a_s = group_normalize(step_returns, step_anchor_ids, mode, eps)
    return a_e[step_episode] + step_weight * a_s


def shape_rewards(
    rewards: torch.Tensor,
    action_valid: torch.Tensor,
    format_valid: torch.Tensor,
    *,
    invalid_action_penalty: float = 0.1,
    format_penalty: float = 0.0,
) -> torch.Tensor:
    """Per-step rewards with the validity penalties.

    ``r'_t = r_t - p_inv * [action t invalid] - p_fmt * [response t breaks the format]``.
    Under the strict format an ill-formatted response is also an invalid action, so it
    pays both penalties.

    Args:
        rewards, action_valid, format_valid: ``[S]``.
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    bad_action = 1.0 - torch.as_tensor(action_valid, dtype=torch.float32)
    bad_format = 1.0 - torch.as_tensor(format_valid, dtype=torch.float32)
    return rewards - invalid_action_penalty * bad_action - format_penalty * bad_format


def t2po_advantages(
    episode_returns: torch.Tensor,
    episode_group_ids: torch.Tensor,
    step_returns: torch.Tensor,
    step_episode: torch.Tensor,
    step_anchor_ids: torch.Tensor,
    *,
    mode: str = "mean_norm",
    step_weight: float = 1.0,
    eps: float = 1e-6,
) -> torch.Tensor:
    """T2PO's estimator: the GiGPO estimator on rewards shaped by the strict-format penalty.

    T2PO's novelty lives in the rollout (TTI stops hesitant thinking, TDS resamples
    hesitant turns) and in the reward (:func:`shape_rewards` with a format penalty);
    the advantage itself is :func:`gigpo_advantages`::

        A(t) = norm_group(R_i) + w * norm_anchor(R_t)    with R built from r'_t
    """
    return gigpo_advantages(
        episode_returns,
        episode_group_ids,
        step_returns,
        step_episode,
        step_anchor_ids,
        mode=mode,
        step_weight=step_weight,
        eps=eps,
    )


def center_turn_advantages(advantages: torch.Tensor, turn_group_ids: torch.Tensor) -> torch.Tensor:
    """Subtract, within each group, the mean advantage over all the group's turns.

    ::

        A'(t) = A(t) - (1/|T_g|) sum_{u in T_g} A(u)       T_g = turns of group g

    GRPO's and GiGPO's episode advantage sums to zero over a group's *episodes*, but every
    turn of an episode carries it, and losing episodes have more turns (they run to the
    turn limit). Over turns the sum is then negative: with success 0.2, 8 episodes of 8
    (wins) and 15 (losses) turns and 10 per win, the turns of a group carry about -90 in
    all. A constant shift of the advantage leaves the policy gradient unbiased in
    expectation but not its variance: every sampled token is pushed down on average.
    Centering makes every group's turns sum to zero. A group of one turn gets 0.

    Measured on the CPU demo (T2PO, lr 5e-4, no KL, 60 steps of 4 tasks x 8): without
    centering the token entropy rose from 0.14 to 0.20 and success on 144 valid_seen
    episodes fell from 0.215 to 0.014; with it the entropy stayed at 0.13 and success fell to
    0.097. It removes the drift, not the damage of too large a step.

    Args:
        advantages: ``[S]`` per-turn advantages.
        turn_group_ids: ``[S]`` group (task) of each turn's episode.
    """
    advantages = torch.as_tensor(advantages, dtype=torch.float32)
    g = torch.as_tensor(turn_group_ids, dtype=torch.long)
    if advantages.numel() == 0:
        return advantages.clone()
    _, inv = torch.unique(g, return_inverse=True)
    k = int(inv.max()) + 1
    sums = torch.zeros(k).index_add_(0, inv, advantages)
    counts = torch.zeros(k).index_add_(0, inv, torch.ones_like(advantages))
    return advantages - (sums / counts)[inv]


def scale_negative_advantages(advantages: torch.Tensor, scale: float) -> torch.Tensor:
    """Multiply the negative advantages by ``scale`` in [0, 1]; leave the others unchanged.

    ::

        A'(t) = A(t)            if A(t) >= 0
                scale * A(t)    otherwise

    ``scale = 1`` is the plain estimator; ``scale = 0`` keeps only the turns that did better
    than their group, i.e. on-policy self-imitation (rejection fine-tuning weighted by the
    advantage, with PPO's clipping). In between it is the positive/negative sample weighting
    studied by Zhu et al. 2025 ("The Surprising Effectiveness of Negative Reinforcement in
    LLM Reasoning"), who weight the positive samples instead; only the ratio matters.

    Why it exists: pushing down a token the model is already sure of moves its probability
    to every other token at once. For a large model most of that mass lands on sensible
    alternatives; for the demo's 0.15M-parameter clone (token entropy about 0.04) it lands on
    commands that are not admissible. Measured on the demo (T2PO, 4 tasks x 8, lr 1e-4,
    KL 0.05, 8 minutes), success on all 140 valid_seen games went 0.521 -> 0.521 with
    ``center_turns`` and scale 1, and 0.521 -> 0.593 with scale 0 (action validity 0.38
    against 0.49). Alone it is not enough at lr 3e-4 (0.486): see
    :func:`clip_invalid_advantages`.

    Args:
        advantages: ``[S]`` per-turn advantages.
        scale: weight of the negative ones, ``0 <= scale <= 1``.
    """
    if not 0.0 <= scale <= 1.0:
        raise ValueError(f"negative advantage scale must be in [0, 1], got {scale}")
    advantages = torch.as_tensor(advantages, dtype=torch.float32)
    return torch.where(advantages < 0, advantages * scale, advantages)


def clip_invalid_advantages(advantages: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Never reinforce an invalid turn: ``A'(t) = min(A(t), 0)`` where ``valid[t]`` is false.

    A turn is invalid when its action was not admissible or its format was broken. Every
    turn of a winning episode carries the episode's positive advantage, and GiGPO's step
    advantage takes back only a fraction of it from a wasted turn (one turn of discount plus
    the 0.1 penalty, against the 10 of a win). The gradient of a positive advantage on a
    token is proportional to ``1 - p``, so for a confident model the push lands mostly on the
    rare tokens of a sample, which are its slips: RL then teaches the slips. With this
    option they get no positive push (a negative advantage is kept, for
    :func:`scale_negative_advantages` to weigh).

    Measured on the demo with ``scale_negative_advantages(., 0)`` (T2PO, 4 tasks x 8, KL
    0.05, 8 minutes, all 140 valid_seen games, clone at 0.521): at lr 3e-4 0.486 without
    this option and 0.621 / 0.521 / 0.586 with it (training seeds 0 / 1 / 2); at lr 1e-3
    without KL 0 without it and 0.429 with it.

    Args:
        advantages: ``[S]`` per-turn advantages.
        valid: ``[S]`` bool, the turn's action was admissible and its format valid.
    """
    advantages = torch.as_tensor(advantages, dtype=torch.float32)
    valid = torch.as_tensor(valid, dtype=torch.bool)
    if valid.shape != advantages.shape:
        raise ValueError(f"valid has shape {tuple(valid.shape)}, advantages {tuple(advantages.shape)}")
    return torch.where(valid, advantages, advantages.clamp(max=0.0))


# ---------------------------------------------------------------- released pipeline


def released_group_normalize(
    values: torch.Tensor,
    group_ids: torch.Tensor,
    mode: str = "mean_std_norm",
    eps: float = 1e-6,
    *,
    singleton: str = "zero_mean",
) -> torch.Tensor:
    """Group normalisation as the released ``episode_norm_reward`` / ``step_norm_reward`` do it.

    For an element i of group g with members G(g), ``n = |G|``::

        mean_g = (1/n) sum_j v_j
        std_g  = sqrt(1/(n-1) sum_j (v_j - mean_g)^2)     torch.std: unbiased (Bessel)
        A_i    = (v_i - mean_g) / (std_g + eps)           mode "mean_std_norm"
        A_i    =  v_i - mean_g                            mode "mean_norm"

    A group of one element has ``std = 1`` and ``mean = 0`` (``singleton="zero_mean"``: the
    episode term, ``core_algos.py:L1106-1108``, so a lone row keeps its raw score) or
    ``mean = v_i`` (``singleton="self"``: the step term, ``core_algos.py:L1248-1250``, so a
    lone anchor gets 0). A group whose values are all equal gets ``0 / (0 + eps) = 0``.

    Args:
        values: float ``[N]``.
        group_ids: integer ``[N]``.
        mode: ``"mean_std_norm"`` or ``"mean_norm"``.
        eps: added to the std (1e-6 in the released code).
        singleton: ``"zero_mean"`` or ``"self"``.

    Returns:
        float32 ``[N]``.
    """
    _check_mode(mode)
    if singleton not in ("zero_mean", "self"):
        raise ValueError(f"singleton must be 'zero_mean' or 'self', got {singleton!r}")
    values, inverse, count, mean = _group_stats(values, group_ids)
    if values.numel() == 0:
        return values.float()
    sq = torch.zeros(len(count), dtype=torch.float64).index_add_(0, inverse, (values - mean[inverse]) ** 2)
    std = torch.where(count > 1, (sq / (count - 1).clamp_min(1)).sqrt(), torch.ones_like(count))
    if singleton == "zero_mean":
        mean = torch.where(count > 1, mean, torch.zeros_like(mean))
    centred = values - mean[inverse]
    out = centred / (std[inverse] + eps) if mode == "mean_std_norm" else centred
    return out.float()


def released_row_advantages(
    step_rewards: torch.Tensor,
    step_penalty: torch.Tensor,
    step_episode: torch.Tensor,
    episode_group_ids: torch.Tensor,
    step_anchor_ids: torch.Tensor | None = None,
    *,
    gamma: float = 0.95,
    mode: str = "mean_std_norm",
    step_weight: float = 1.0,
    eps: float = 1e-6,
) -> torch.Tensor:
    """GiGPO / T2PO (or, with ``step_anchor_ids=None``, GRPO) per step row, as released.

    Rows are turns; the rows of one episode are consecutive and in turn order. With
    ``r_t`` the env reward of row t (after ``reward_scale``), ``p_t`` its penalty
    (``invalid_action_penalty * [action invalid]``, plus the format penalty if any) and
    ``i(t)`` its episode, group ``g`` and anchor group ``a``::

        R_i      = sum_{t in i} r_t                      episode_rewards (rollout_loop.py:L786)
        score_t  = R_i(t) - p_t                          EpisodeRewardManager puts R_i on the row's
                                                         last token, apply_invalid_action_penalty
                                                         subtracts p_t there (ray_trainer.py:L85)
        G_t      = sum_{k >= t} gamma^(k-t) r_k - p_t    compute_step_discounted_returns runs
                                                         before the penalty (ray_trainer.py:L904,
                                                         L999), then step_rewards -= p_t (L88)
        A_E(t)   = norm over the rows of g (score_t)     episode_norm_reward with
                                                         compute_mean_std_cross_steps=True
                                                         (core_algos.py:L1098-L1104)
        A_S(t)   = norm over the rows of a (G_t)         step_norm_reward (core_algos.py:L1215)
        A(t)     = A_E(t) + w * A_S(t)                   compute_gigpo_outcome_advantage
                                                         (core_algos.py:L501)

    ``norm`` is :func:`released_group_normalize` (unbiased std, ``eps``; ``mean_std_norm``
    divides by it, ``mean_norm`` does not). Because every row of the group is a sample, a
    long episode weighs more in the baseline than a short one, and a row's own penalty
    moves it against the baseline. GRPO (``step_anchor_ids=None``) is ``A_E`` alone, as the
    released ``compute_grpo_outcome_advantage`` with ``norm_adv_by_std_in_grpo=True`` (pass
    ``mode="mean_std_norm"``).

    Args:
        step_rewards: ``[S]`` env reward of every row.
        step_penalty: ``[S]`` penalty of every row (>= 0).
        step_episode: ``[S]`` episode index in ``[0, B)`` of every row.
        episode_group_ids: ``[B]`` group (task) of every episode.
        step_anchor_ids: ``[S]`` anchor-group ids (:func:`anchor_group_ids`), or ``None`` (GRPO).
        gamma: discount of the step returns.
        mode: ``"mean_std_norm"`` or ``"mean_norm"``.
        step_weight: ``w``.

    Returns:
        float32 ``[S]``.
    """
    _check_mode(mode)
    r = torch.as_tensor(step_rewards, dtype=torch.float64)
    pen = torch.as_tensor(step_penalty, dtype=torch.float64)
    ep = torch.as_tensor(step_episode, dtype=torch.long)
    groups = torch.as_tensor(episode_group_ids, dtype=torch.long)
    if not (r.shape == pen.shape == ep.shape) or r.dim() != 1:
        raise ValueError(
            f"step_rewards, step_penalty and step_episode must be 1-D of one shape, got "
            f"{tuple(r.shape)}, {tuple(pen.shape)}, {tuple(ep.shape)}"
        )
    if r.numel() == 0:
        return r.float()
    if int(ep.min()) < 0 or int(ep.max()) >= groups.numel():
        raise ValueError(f"step_episode must index the {groups.numel()} episodes, got values in [{int(ep.min())}, {int(ep.max())}]")
    if bool((ep[1:] < ep[:-1]).any()):
        raise ValueError("the rows of an episode must be consecutive and in episode order (step_episode non-decreasing)")
    ep_return = torch.zeros(groups.numel(), dtype=torch.float64).index_add_(0, ep, r)
    score = ep_return[ep] - pen
    a_e = released_group_normalize(score, groups[ep], mode, eps, singleton="zero_mean")
    if step_anchor_ids is None:
        return a_e
    anchors = torch.as_tensor(step_anchor_ids, dtype=torch.long)
    if anchors.shape != r.shape:
        raise ValueError(f"step_anchor_ids has shape {tuple(anchors.shape)}, rows {tuple(r.shape)}")
    returns = torch.zeros_like(r)
    running, prev = 0.0, -1
    for t in range(r.numel() - 1, -1, -1):  # backwards, restarting at each episode's last row
        e = int(ep[t])
        running = float(r[t]) + (gamma * running if e == prev else 0.0)
        returns[t], prev = running, e
    a_s = released_group_normalize(returns - pen, anchors, mode, eps, singleton="self")
    return (a_e + step_weight * a_s).float()
