"""Estimators against hand-computed values."""

import pytest
import torch

from optim import advantage as adv


def close(a, b, tol=1e-4):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32), torch.as_tensor(b, dtype=torch.float32), atol=tol)


def test_group_normalize_hand_example():
    v = torch.tensor([1.0, 0.0, 0.0, 1.0, 5.0])
    g = torch.tensor([0, 0, 0, 0, 7])
    # group 0: mean 0.5, population std 0.5 -> +-1; group 7 has one member -> 0
    assert close(adv.group_normalize(v, g, "mean_std_norm"), [1, -1, -1, 1, 0])
    assert close(adv.group_normalize(v, g, "mean_norm"), [0.5, -0.5, -0.5, 0.5, 0])


def test_all_equal_and_singletons_give_zero_not_nan():
    out = adv.group_normalize(torch.tensor([2.0, 2.0, 2.0, 3.0]), torch.tensor([0, 0, 0, 1]), "mean_std_norm")
    assert torch.isfinite(out).all() and close(out, [0, 0, 0, 0])
    assert adv.group_normalize(torch.zeros(0), torch.zeros(0, dtype=torch.long)).numel() == 0


def test_bad_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="mean_norm"):
        adv.group_normalize(torch.ones(2), torch.zeros(2), "zscore")


def test_discounted_returns():
    assert close(adv.discounted_returns(torch.tensor([0.0, 0.0, 1.0]), 0.95), [0.9025, 0.95, 1.0])
    assert close(adv.discounted_returns(torch.tensor([1.0, -0.1]), 0.5), [0.95, -0.1])
    with pytest.raises(ValueError):
        adv.discounted_returns(torch.ones(2), 1.5)


def test_gae_hand_example():
    # t=1: delta = 1 + 0 - 0.2 = 0.8 -> A1 = 0.8
    # t=0: delta = 0 + 0.9*0.2 - 0.5 = -0.32 -> A0 = -0.32 + 0.9*0.8*0.8 = 0.256
    a, r = adv.gae(torch.tensor([0.0, 1.0]), torch.tensor([0.5, 0.2]), 0.9, 0.8)
    assert close(a, [0.256, 0.8]) and close(r, [0.756, 1.0])
    # bootstrapping a truncated episode from last_value
    a, _ = adv.gae(torch.tensor([0.0]), torch.tensor([0.5]), 0.9, 0.8, last_value=1.0)
    assert close(a, [0.4])


def test_grpo_hand_example():
    # group 0 returns [1, 0, 0, 0]: mean .25, std sqrt(3)/4 = 0.4330
    a = adv.grpo_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 0, 0, 1, 1]))
    assert close(a, [0.75 / 0.4330127, -0.25 / 0.4330127, -0.25 / 0.4330127, -0.25 / 0.4330127, 0.0, 0.0])


def _gigpo_example():
    # group 0: e0 rewards [0, 1] anchors a, b ; e1 rewards [0, 0, 0] anchors a, c, b
    # group 1: e2 rewards [1] anchor a (same text as group 0's a, but another group)
    gamma = 0.5
    rewards = [torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0, 0.0]), torch.tensor([1.0])]
    ep_ret = torch.tensor([float(r.sum()) for r in rewards])
    ep_group = torch.tensor([0, 0, 1])
    step_ret = torch.cat([adv.discounted_returns(r, gamma) for r in rewards])  # [.5, 1, 0, 0, 0, 1]
    step_ep = torch.tensor([0, 0, 1, 1, 1, 2])
    anchors = adv.anchor_group_ids([0, 0, 0, 0, 0, 1], ["a", "b", "a", "c", "b", "a"])
    return ep_ret, ep_group, step_ret, step_ep, anchors


def test_anchor_groups_are_per_task_group():
    _, _, _, _, anchors = _gigpo_example()
    assert anchors.tolist() == [0, 1, 0, 2, 1, 3]


def test_gigpo_mean_norm_hand_example():
    ep_ret, ep_group, step_ret, step_ep, anchors = _gigpo_example()
    assert close(step_ret, [0.5, 1.0, 0.0, 0.0, 0.0, 1.0])
    # A_E: e0 +.5, e1 -.5, e2 0 (singleton group)
    # A_S: (0,a): .5 vs 0 -> +.25/-.25 ; (0,b): 1 vs 0 -> +.5/-.5 ; (0,c), (1,a) singletons -> 0
    a = adv.gigpo_advantages(ep_ret, ep_group, step_ret, step_ep, anchors, mode="mean_norm", step_weight=1.0)
    assert close(a, [0.75, 1.0, -0.75, -0.5, -1.0, 0.0])


def test_gigpo_mean_std_norm_and_step_weight():
    ep_ret, ep_group, step_ret, step_ep, anchors = _gigpo_example()
    # every non-singleton group has two distinct values -> +-1; w = 0.5
    a = adv.gigpo_advantages(ep_ret, ep_group, step_ret, step_ep, anchors, mode="mean_std_norm", step_weight=0.5)
    assert close(a, [1.5, 1.5, -1.5, -1.0, -1.5, 0.0])


def test_t2po_is_gigpo_on_shaped_rewards():
    r = adv.shape_rewards(
        torch.tensor([0.0, 1.0, 0.0]),
        action_valid=torch.tensor([1.0, 1.0, 0.0]),
        format_valid=torch.tensor([1.0, 1.0, 0.0]),
        invalid_action_penalty=0.1,
        format_penalty=0.1,
    )
    assert close(r, [0.0, 1.0, -0.2])
    ep_ret, ep_group, step_ret, step_ep, anchors = _gigpo_example()
    assert torch.equal(
        adv.t2po_advantages(ep_ret, ep_group, step_ret, step_ep, anchors),
        adv.gigpo_advantages(ep_ret, ep_group, step_ret, step_ep, anchors),
    )


def test_reward_scale_weighs_success_against_the_absolute_penalties():
    """build_samples, hand-computed: with 1 per win, a win after 12 invalid turns scores below
    a safe episode that never wins; with reward_scale 10 (verl-agent's ALFWorld) it scores above."""
    from optim.config import preset
    from optim.rollout import Rollout, Trajectory, Turn
    from optim.trainer import build_samples

    def turn(reward, valid):
        return Turn([1], [2], [-0.5], [0], reward, "s", True, valid)

    win = Trajectory(0, 0, 7, [turn(0.0, False)] * 12 + [turn(1.0, True)], won=True)  # return scale - 1.2
    safe = Trajectory(0, 1, 7, [turn(0.0, True)] * 13)  # return 0
    for scale, sign in ((1.0, -1.0), (10.0, 1.0)):
        a = [s.advantage for s in build_samples(Rollout([win, safe]), preset("grpo", reward_scale=scale, advantage_variant="trajectory"))]
        # mean_std_norm over the pair: +-1 with the sign of (scale - 1.2)
        assert a[:13] == pytest.approx([sign] * 13, abs=1e-4) and a[13:] == pytest.approx([-sign] * 13, abs=1e-4)
        # GiGPO's mean_norm keeps the magnitude: the episode advantage is (scale - 1.2) / 2
        g = build_samples(Rollout([win, safe]), preset("gigpo", reward_scale=scale, step_weight=0.0, advantage_variant="trajectory", norm_mode="mean_norm"))
        assert g[0].advantage == pytest.approx((scale - 1.2) / 2)
    with pytest.raises(ValueError, match="reward_scale"):
        preset("t2po", reward_scale=0.0)


def test_center_turn_advantages_hand_example():
    # group 0: turns with advantages 3, 3, -1, -1, -1, -1 (mean 1/3); group 1: one turn
    a = torch.tensor([3.0, 3.0, -1.0, -1.0, -1.0, -1.0, 5.0])
    g = torch.tensor([0, 0, 0, 0, 0, 0, 4])
    c = adv.center_turn_advantages(a, g)
    assert close(c, [3 - 1 / 3, 3 - 1 / 3, -4 / 3, -4 / 3, -4 / 3, -4 / 3, 0.0])
    assert abs(float(c[:6].sum())) < 1e-5
    assert adv.center_turn_advantages(torch.zeros(0), torch.zeros(0, dtype=torch.long)).numel() == 0


def test_center_turns_makes_each_groups_turns_sum_to_zero():
    """The episode advantage sums to zero over episodes but not over turns when losing
    episodes are longer; with center_turns the turns of each group sum to zero."""
    from optim.config import preset
    from optim.rollout import Rollout, Trajectory, Turn
    from optim.trainer import build_samples

    def turn(reward, anchor):
        return Turn([1], [2], [-0.5], [0], reward, anchor, True, True)

    def group(g):
        win = Trajectory(g, 0, g, [turn(0.0, "a"), turn(1.0, "b")], won=True)
        losses = [Trajectory(g, m, g, [turn(0.0, "a")] + [turn(0.0, "c")] * 5) for m in (1, 2, 3)]
        return [win, *losses]

    ro = Rollout(group(0) + group(1))
    for algo in ("grpo", "gigpo", "t2po"):
        plain = [s.advantage for s in build_samples(ro, preset(algo, advantage_variant="trajectory"))]
        centred = [s.advantage for s in build_samples(ro, preset(algo, center_turns=True, advantage_variant="trajectory"))]
        n = len(plain) // 2
        assert sum(plain[:n]) < -0.1  # the bias this option removes
        # the released step-row baseline (every turn a sample) has no such bias to begin with
        released = [s.advantage for s in build_samples(ro, preset(algo))]
        assert sum(released[:n]) == pytest.approx(0.0, abs=1e-4)
        assert sum(centred[:n]) == pytest.approx(0.0, abs=1e-5)
        assert sum(centred[n:]) == pytest.approx(0.0, abs=1e-5)
        # a shift per group: differences between turns are unchanged
        assert [c - centred[0] for c in centred[:n]] == pytest.approx([p - plain[0] for p in plain[:n]], abs=1e-5)


def test_scale_negative_advantages_hand_example():
    a = torch.tensor([2.0, -1.0, 0.0, -4.0])
    assert close(adv.scale_negative_advantages(a, 0.25), [2.0, -0.25, 0.0, -1.0])
    assert close(adv.scale_negative_advantages(a, 0.0), [2.0, 0.0, 0.0, 0.0])
    assert close(adv.scale_negative_advantages(a, 1.0), a)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adv.scale_negative_advantages(a, 1.5)


def test_negative_advantage_scale_in_build_samples():
    """build_samples: scale 0 keeps the positive turn advantages exactly and zeroes the rest;
    0.5 halves the negative ones (after centring, when both are on)."""
    from optim.config import preset
    from optim.rollout import Rollout, Trajectory, Turn
    from optim.trainer import build_samples

    def turn(reward, anchor):
        return Turn([1], [2], [-0.5], [0], reward, anchor, True, True)

    win = Trajectory(0, 0, 3, [turn(0.0, "a"), turn(1.0, "b")], won=True)
    losses = [Trajectory(0, m, 3, [turn(0.0, "a")] + [turn(0.0, "c")] * 3) for m in (1, 2)]
    ro = Rollout([win, *losses])
    for algo in ("grpo", "gigpo", "t2po", "ppo"):
        kw = {"center_turns": True} if algo != "ppo" else {}
        values = [[0.0] * len(t.turns) for t in ro.trajectories] if algo == "ppo" else None
        plain = [s.advantage for s in build_samples(ro, preset(algo, **kw), values)]
        assert min(plain) < 0 < max(plain)
        for beta in (0.0, 0.5):
            scaled = [s.advantage for s in build_samples(ro, preset(algo, negative_advantage_scale=beta, **kw), values)]
            assert scaled == pytest.approx([p if p >= 0 else beta * p for p in plain], abs=1e-6)
    with pytest.raises(ValueError, match="negative_advantage_scale"):
        preset("t2po", negative_advantage_scale=-0.1)


def test_clip_invalid_advantages_hand_example():
    a = torch.tensor([2.0, 2.0, -1.0, -1.0])
    valid = torch.tensor([True, False, True, False])
    assert close(adv.clip_invalid_advantages(a, valid), [2.0, 0.0, -1.0, -1.0])
    with pytest.raises(ValueError, match="shape"):
        adv.clip_invalid_advantages(a, torch.tensor([True]))


def test_clip_invalid_in_build_samples_never_reinforces_a_slip():
    """A winning episode's invalid and malformed turns get no positive advantage; its valid
    turns keep theirs; with negative_advantage_scale 0 every invalid turn gets exactly 0."""
    from optim.config import preset
    from optim.rollout import Rollout, Trajectory, Turn
    from optim.trainer import build_samples

    def turn(reward, anchor, valid=True, fmt=True):
        return Turn([1], [2], [-0.5], [0], reward, anchor, fmt, valid)

    win = Trajectory(0, 0, 3, [turn(0.0, "a"), turn(0.0, "a", valid=False), turn(0.0, "a", fmt=False),
                               turn(1.0, "b")], won=True)
    lose = Trajectory(0, 1, 3, [turn(0.0, "a")] * 4)
    ro = Rollout([win, lose])
    for algo in ("grpo", "gigpo", "t2po"):
        plain = [s.advantage for s in build_samples(ro, preset(algo))]
        clipped = [s.advantage for s in build_samples(ro, preset(algo, clip_invalid_advantages=True))]
        assert plain[1] > 0 and plain[2] > 0  # the slips of the winning episode are reinforced by default
        assert clipped[1] <= 0 and clipped[2] <= 0
        assert clipped[0] == pytest.approx(plain[0]) and clipped[3] == pytest.approx(plain[3])
        assert clipped[4:] == pytest.approx(plain[4:])
        both = [s.advantage for s in build_samples(ro, preset(algo, clip_invalid_advantages=True,
                                                               negative_advantage_scale=0.0))]
        assert both[1] == 0.0 and both[2] == 0.0 and all(x >= 0 for x in both)


# ------------------------------------------------------------------ the released pipeline
# Each case separates one difference between the released advantage
# (WillDreamer/T2PO-ICML recipe/world_agent/ppo/core_algos.py, ray_trainer.py) and the
# project's earlier trajectory-level estimator, through build_samples as the trainer calls it.


def _turn(reward, anchor, valid=True):
    from optim.rollout import Turn

    return Turn([1], [2], [-0.5], [0], reward, anchor, True, valid)


def _adv(trajs, algo="gigpo", **kw):
    from optim.config import preset
    from optim.rollout import Rollout
    from optim.trainer import build_samples

    return [s.advantage for s in build_samples(Rollout(trajs), preset(algo, **kw))]


def test_released_episode_baseline_is_over_step_rows():
    """episode_norm_reward with compute_mean_std_cross_steps=True (core_algos.py:L1098-1104):
    every turn row is a sample. Rows [10 | 0, 0, 0]: mean 2.5, not the trajectories' 5."""
    from optim.rollout import Trajectory

    trajs = [Trajectory(0, 0, 1, [_turn(1.0, "a")], won=True), Trajectory(0, 1, 1, [_turn(0.0, "b")] * 3)]
    kw = dict(reward_scale=10.0, step_weight=0.0, norm_mode="mean_norm")
    assert _adv(trajs, **kw) == pytest.approx([7.5, -2.5, -2.5, -2.5])
    assert _adv(trajs, advantage_variant="trajectory", **kw) == pytest.approx([5.0, -5.0, -5.0, -5.0])


def test_released_penalty_is_subtracted_once_per_row():
    """apply_invalid_action_penalty (ray_trainer.py:L85, L88) after
    compute_step_discounted_returns (L904): the 0.1 penalty of turn 1 lowers turn 1's episode
    score and step return only, not the episode return of the other rows nor turn 0's return."""
    from optim.rollout import Trajectory

    a = Trajectory(0, 0, 1, [_turn(0.0, "s0"), _turn(0.0, "s1", valid=False), _turn(1.0, "s2")], won=True)
    b = Trajectory(0, 1, 1, [_turn(0.0, "s0"), _turn(0.0, "t1"), _turn(0.0, "t2")])
    # episode term alone: rows A = [10, 9.9, 10], B = [0, 0, 0]; mean 29.9 / 6
    ep = _adv([a, b], reward_scale=10.0, step_weight=0.0, norm_mode="mean_norm")
    m = 29.9 / 6
    assert ep == pytest.approx([10 - m, 9.9 - m, 10 - m, -m, -m, -m], abs=1e-5)
    # trajectory variant: the penalty is in A's return (9.9) for every row of A
    old = _adv([a, b], reward_scale=10.0, step_weight=0.0, norm_mode="mean_norm", advantage_variant="trajectory")
    assert old[:3] == pytest.approx([4.95] * 3)
    # step term alone (episode term cancels: w huge is not needed, subtract it): anchor s0 holds
    # A's turn 0 (return 0.95^2 * 10 = 9.025, the later penalty NOT discounted into it) and B's (0)
    full = _adv([a, b], reward_scale=10.0, step_weight=1.0, norm_mode="mean_norm")
    assert full[0] - ep[0] == pytest.approx(9.025 / 2, abs=1e-5)
    full_old = _adv([a, b], reward_scale=10.0, step_weight=1.0, norm_mode="mean_norm", advantage_variant="trajectory")
    assert full_old[0] - old[0] == pytest.approx(0.95 * (-0.1 + 0.95 * 10) / 2, abs=1e-5)  # 4.465
    # singleton anchors (s1, s2, t1, t2) get A_S = 0 (step_norm_reward, core_algos.py:L1248-1250)
    assert full[1:3] == pytest.approx(ep[1:3]) and full[4:] == pytest.approx(ep[4:])


def test_released_std_is_unbiased_with_eps_1e6():
    """torch.std (Bessel) and eps 1e-6 (episode_norm_reward, core_algos.py:L1106-1111):
    rows [1 | 0] give +-0.5 / (sqrt(0.5) + 1e-6), not +-1."""
    from optim.rollout import Trajectory

    trajs = [Trajectory(0, 0, 1, [_turn(1.0, "a")], won=True), Trajectory(0, 1, 1, [_turn(0.0, "b")])]
    expect = 0.5 / (0.5**0.5 + 1e-6)
    assert _adv(trajs, "grpo", reward_scale=1.0) == pytest.approx([expect, -expect], rel=1e-6)
    assert _adv(trajs, "gigpo", reward_scale=1.0, norm_mode="mean_std_norm") == pytest.approx([expect, -expect], rel=1e-6)
    old = _adv(trajs, "grpo", reward_scale=1.0, advantage_variant="trajectory")
    assert old == pytest.approx([1.0, -1.0], abs=1e-5)


def test_released_singleton_group_keeps_its_raw_score():
    """A group with one row: mean 0, std 1 (core_algos.py:L1106-1108), so the row keeps
    score / (1 + eps); a lone anchor gets 0; all-equal groups get 0, never NaN."""
    from optim import advantage as adv

    a = adv.released_row_advantages(
        torch.tensor([3.0, 1.0, 1.0]), torch.tensor([0.1, 0.0, 0.0]), torch.tensor([0, 1, 2]),
        torch.tensor([0, 1, 1]), torch.tensor([0, 1, 2]), mode="mean_std_norm",
    )
    assert float(a[0]) == pytest.approx(2.9 / (1 + 1e-6), rel=1e-6)
    assert a[1:].tolist() == pytest.approx([0.0, 0.0])
    with pytest.raises(ValueError, match="consecutive"):
        adv.released_row_advantages(torch.zeros(3), torch.zeros(3), torch.tensor([0, 1, 0]), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="1-D of one shape"):
        adv.released_row_advantages(torch.zeros(3), torch.zeros(2), torch.tensor([0, 0, 0]), torch.tensor([0]))


def test_released_norm_mode_per_env_and_won_only_reward():
    """ALFWorld and Search use mean_std_norm, WebShop mean_norm (train_*.sh); WebShop pays 10
    only for a perfect purchase (env_package/webshop/envs.py:L47-53)."""
    from optim.config import preset
    from optim.rollout import Trajectory

    assert preset("gigpo", env="alfworld").norm_mode == "mean_std_norm"
    assert preset("gigpo", env="search").norm_mode == "mean_std_norm"
    assert preset("t2po", env="webshop").norm_mode == "mean_norm"
    partial = Trajectory(0, 0, 1, [_turn(0.0, "a"), _turn(0.5, "b")], won=False, task_score=0.5)
    full = Trajectory(0, 1, 1, [_turn(0.0, "a"), _turn(1.0, "c")], won=True, task_score=1.0)
    a = _adv([partial, full], "gigpo", env="webshop", step_weight=0.0)
    assert a == pytest.approx([-5.0, -5.0, 5.0, 5.0])  # rows [0, 0 | 10, 10], mean 5


def _released_reference(trajs, scale, p_inv, gamma, mode, w):
    """The released loops, transcribed as loops over rows and dicts (for the random check)."""
    import math

    rows = [(i, t, tr) for i, tr in enumerate(trajs) for t in range(len(tr.turns))]
    ep_ret = {i: scale * sum(u.reward for u in tr.turns) for i, tr in enumerate(trajs)}
    pen = [p_inv * (not tr.turns[t].action_valid) for i, t, tr in rows]
    score = [ep_ret[i] - pen[k] for k, (i, t, tr) in enumerate(rows)]
    step = []
    for k, (i, t, tr) in enumerate(rows):
        g = sum(gamma ** (j - t) * scale * tr.turns[j].reward for j in range(t, len(tr.turns)))
        step.append(g - pen[k])

    def norm(vals, keys, singleton_zero_mean):
        groups = {}
        for v, key in zip(vals, keys):
            groups.setdefault(key, []).append(v)
        out = []
        for v, key in zip(vals, keys):
            xs = groups[key]
            if len(xs) == 1:
                mu, sd = (0.0 if singleton_zero_mean else xs[0]), 1.0
            else:
                mu = sum(xs) / len(xs)
                sd = math.sqrt(sum((x - mu) ** 2 for x in xs) / (len(xs) - 1))
            out.append(v - mu if mode == "mean_norm" else (v - mu) / (sd + 1e-6))
        return out

    a_e = norm(score, [tr.group for i, t, tr in rows], True)
    a_s = norm(step, [(tr.group, tr.turns[t].anchor) for i, t, tr in rows], False)
    return [x + w * y for x, y in zip(a_e, a_s)]


@pytest.mark.parametrize("mode", ["mean_norm", "mean_std_norm"])
def test_released_matches_a_loop_transcription_on_random_batches(mode):
    import random

    from optim.rollout import Trajectory

    rng = random.Random(7)
    for _ in range(20):
        trajs = []
        for g in range(3):
            for m in range(4):
                n = rng.randint(1, 6)
                won = rng.random() < 0.4
                turns = [_turn(float(won and j == n - 1), f"s{rng.randint(0, 3)}", rng.random() < 0.7) for j in range(n)]
                trajs.append(Trajectory(g, m, g, turns, won=won))
        got = _adv(trajs, "gigpo", reward_scale=10.0, norm_mode=mode)
        want = _released_reference(trajs, 10.0, 0.1, 0.95, mode, 1.0)
        assert got == pytest.approx(want, abs=1e-4)


def test_similarity_anchor_groups_follow_build_step_group():
    """enable_similarity (core_algos.py build_step_group / are_similar): join the first cluster
    whose first anchor is similar enough, within a task group only."""
    from optim import advantage as adv

    ids = adv.anchor_group_ids([0, 0, 0, 1], ["You see a red apple.", "You see a red apples.", "Nothing.", "You see a red apple."], similarity=0.9)
    assert ids.tolist() == [0, 0, 1, 2]
    assert adv.anchor_group_ids([0, 0], ["ab", "ab"]).tolist() == [0, 0]
    with pytest.raises(ValueError, match="similarity"):
        adv.anchor_group_ids([0], ["a"], similarity=1.0)
