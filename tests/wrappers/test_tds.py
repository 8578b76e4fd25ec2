"""TDS resamples exactly the turns whose turn signal repeats the episode's last one."""

from __future__ import annotations

import math

import pytest

from t2po_gym.policies.base import Generation, SamplingConfig
from t2po_gym.wrappers.tds import DEFAULT_ETA, TDSConfig, TurnDedup, eta_for_rate, turn_signal


class QueuePolicy:
    """Returns, per prompt, the next signal of that prompt's queue; logs every call."""

    def __init__(self, queues: dict[str, list[list[float]]]):
        self.queues = {k: list(v) for k, v in queues.items()}
        self.calls: list[tuple[list[str], int | None]] = []

    def generate(self, prompts, sampling=None, *, episode_ids=None, controller=None, signal=None):
        self.calls.append((list(prompts), sampling.seed if sampling else None))
        return [Generation(text=p, signal=self.queues[p].pop(0), forced_mask=[0] * 3) for p in prompts]


def test_turn_signal_by_hand():
    assert turn_signal([0.25, 1.0]) == pytest.approx(0.5)  # sqrt(0.25 * 1)
    assert turn_signal([0.25, 1.0, 0.0001], forced_mask=[0, 0, 1]) == pytest.approx(0.5)
    assert turn_signal([9.0] * 32 + [0.2, 0.4], mean="arithmetic") == pytest.approx(0.3)
    assert turn_signal([0.2, 0.4], mean="arithmetic") == pytest.approx(0.3)  # short turn: all tokens
    assert math.isnan(turn_signal([]))


def test_resamples_exactly_the_stuck_turns():
    flat, other = [0.5, 0.5, 0.5], [0.9, 0.9, 0.9]
    policy = QueuePolicy({
        "a": [flat, flat, flat, flat],      # turn 2 stuck twice -> 2 resamples, keeps the last
        "b": [flat, other],                 # turn 2 moves -> kept
        "c": [flat, flat, other],           # stuck once, then fine
    })
    tds = TurnDedup(policy, eta=0.3, max_tries=2)
    s = SamplingConfig(seed=5)
    first = tds.generate(["a", "b", "c"], s, episode_ids=["ea", "eb", "ec"])
    assert [g.resampled for g in first] == [0, 0, 0]  # first turn of an episode: nothing to compare
    second = tds.generate(["a", "b", "c"], s, episode_ids=["ea", "eb", "ec"])
    assert [g.resampled for g in second] == [2, 0, 1]
    assert second[2].signal == other
    assert [c[0] for c in policy.calls] == [["a", "b", "c"], ["a", "b", "c"], ["a", "c"], ["a"]]
    assert [c[1] for c in policy.calls[1:]] == [5, 5 + 1_000_003, 5 + 2 * 1_000_003]  # fresh seeds
    assert tds.stats == {"turns": 6, "resampled_turns": 2, "resamples": 3}
    assert all(not q for q in policy.queues.values())


def test_state_is_per_episode_and_reset():
    flat = [0.5, 0.5, 0.5]
    policy = QueuePolicy({"a": [flat, flat, flat]})
    tds = TurnDedup(policy, max_tries=2)
    tds.generate(["a"], episode_ids=["e1"])
    tds.reset_episode("e1")
    tds.reset_episode("never-seen")  # no-op
    assert tds.generate(["a"], episode_ids=["e1"])[0].resampled == 0
    assert tds.generate(["a"], episode_ids=None)[0].resampled == 0  # no id, no state


def test_config_errors():
    with pytest.raises(ValueError, match="arithmetic"):
        TDSConfig(signal="reference", turn_mean="geometric")
    with pytest.raises(ValueError, match="one per prompt"):
        TurnDedup(QueuePolicy({})).generate(["a", "b"], episode_ids=["x"])
    with pytest.raises(ValueError, match="no signal"):
        TurnDedup(QueuePolicy({"a": [[]]})).generate(["a"], episode_ids=["x"])


def test_stacks_with_tti_on_the_tiny_model(tiny):
    from t2po_gym.policies.hf import HFPolicy
    from t2po_gym.wrappers.tti import ThinkingIntervention

    model, tok = tiny
    stack = TurnDedup(ThinkingIntervention(HFPolicy(model, tok), min_think_tokens=2), eta=1.0, max_tries=1)
    s = SamplingConfig(max_new_tokens=12, seed=0)
    stack.generate(["look <think>", "go <think>"], s, episode_ids=["e0", "e1"])
    gens = stack.generate(["look <think>", "go <think>"], s, episode_ids=["e0", "e1"])
    # eta = 1 > any |Phi_k - Phi_{k-1}| of a signal in [0, 1]: every second turn is resampled once
    assert [g.resampled for g in gens] == [1, 1]
    assert all(len(g.signal) == len(g.token_ids) == len(g.forced_mask) for g in gens)


def test_default_eta_depends_on_the_signal():
    assert TDSConfig().eta == DEFAULT_ETA[("paper", "geometric")] == 0.005
    assert TDSConfig(turn_mean="arithmetic").eta == 0.001
    assert TDSConfig(signal="reference", turn_mean="arithmetic").eta == 0.3  # the released code's value
    assert TDSConfig(eta=0.1).eta == 0.1


def test_default_eta_keeps_distinct_turns_and_resamples_repeats():
    # distinct turns: Phi = 0.40, 0.43, 0.37, 0.45 (|dPhi| >= 0.03, far above 0.005, far below 0.3)
    distinct = [[0.4] * 3, [0.43] * 3, [0.37] * 3, [0.45] * 3]
    policy = QueuePolicy({"a": list(distinct), "r": [[0.4] * 3, [0.4] * 3, [0.7] * 3]})
    tds = TurnDedup(policy)
    for _ in range(4):
        assert tds.generate(["a"], episode_ids=["ea"])[0].resampled == 0
    assert tds.stats["resamples"] == 0
    # the same signal again (a repeated turn): resampled
    tds.generate(["r"], episode_ids=["er"])
    assert tds.generate(["r"], episode_ids=["er"])[0].resampled == 1
    # with the code's eta = 0.3 the distinct turns would all have been thrown away
    old = TurnDedup(QueuePolicy({"a": list(distinct) + [[0.9] * 3] * 6}), eta=0.3, max_tries=1)
    assert [old.generate(["a"], episode_ids=["ea"])[0].resampled for _ in range(4)] == [0, 1, 1, 1]


def test_on_the_tiny_model_repeats_resampled_unrelated_turns_rarely(tiny):
    from t2po_gym.policies.hf import HFPolicy

    model, tok = tiny
    tasks = ["put a clean apple in fridge", "heat some egg", "look at bowl under the desklamp",
             "find two cellphone", "cool some pan", "search red shoes", "who directed it", "buy perfume"]
    s = SamplingConfig(max_new_tokens=24, stop=(), seed=4)
    tds = TurnDedup(HFPolicy(model, tok, chat_template=False), max_tries=1)
    ids = [f"e{i}" for i in range(8)]
    tds.generate([t + " <think>" for t in tasks], s, episode_ids=ids)
    # turn 2: an unrelated task in every episode -> (almost) never resampled
    moved = tds.generate([t + " <think>" for t in tasks[1:] + tasks[:1]], s, episode_ids=ids)
    assert sum(g.resampled for g in moved) <= 1
    # turn 3: the same batch and seed as turn 2, so each turn 2 that was kept comes again
    # token for token (Gamma = 0) -> resampled
    again = tds.generate([t + " <think>" for t in tasks[1:] + tasks[:1]], s, episode_ids=ids)
    kept = [i for i, g in enumerate(moved) if not g.resampled]
    assert len(kept) >= 7 and all(again[i].resampled == 1 for i in kept)


def test_eta_for_rate_by_hand():
    assert eta_for_rate([0.0, 0.1, 0.3], rate=0.5) == pytest.approx(0.2)  # pairs: 0.1, 0.3, 0.2
    assert eta_for_rate([0.0, 1.0, float("nan")], rate=0.5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="two"):
        eta_for_rate([0.5])
    with pytest.raises(ValueError, match="rate"):
        eta_for_rate([0.1, 0.2], rate=0.0)


# ------------------------------------------------------------------ mode="released"
# rollout_loop.py T2PO_multi_turn_loop + the recorder of vllm_rollout_spmd.py (WillDreamer/T2PO-ICML)


def test_released_turn_score_skips_33_tokens_and_scores_short_turns_0():
    from t2po_gym.wrappers.tds import released_turn_score

    assert released_turn_score([0.7] * 33) == 0.0  # no record when <= 32 tokens came before (L190)
    assert released_turn_score([9.0] * 33 + [0.2]) == pytest.approx(0.2)  # 34 tokens: index 33 only
    assert released_turn_score([9.0] * 33 + [0.2, 0.4]) == pytest.approx(0.3)
    cfg = TDSConfig(mode="released")
    assert (cfg.signal, cfg.turn_mean, cfg.skip_tokens, cfg.eta) == ("reference", "arithmetic", 33, 0.3)
    with pytest.raises(ValueError, match="mode"):
        TDSConfig(mode="sometimes")


def test_released_resamples_only_when_delta_is_strictly_positive():
    """L723: (entropy_change > 0) & (entropy_change < eta)."""
    short, long_a, long_b = [0.5] * 33, [0.9] * 33 + [0.5], [0.9] * 33 + [0.6]
    policy = QueuePolicy({
        "s": [short, short],                  # 33 tokens twice: 0 and 0, delta exactly 0 -> kept
        "same": [long_a, long_a],             # identical long turns: delta exactly 0 -> kept
        "up": [short, long_a, long_b],        # 0 -> 0.5: 0 < 0.5 ... not < 0.3 -> kept
        "near": [long_a, long_b, long_b, long_a],  # 0.5 -> 0.6: resampled twice, the last kept
    })
    tds = TurnDedup(policy, mode="released")
    ids = ["es", "esame", "eup", "enear"]
    first = tds.generate(["s", "same", "up", "near"], episode_ids=ids)
    assert [g.resampled for g in first] == [0, 0, 0, 0]  # _step > 0 (L719): never the first turn
    second = tds.generate(["s", "same", "up", "near"], episode_ids=ids)
    assert [g.resampled for g in second] == [0, 0, 0, 2]
    assert second[3].signal == long_a and tds.last_phi["enear"] == pytest.approx(0.5)
    # the paper mode resamples the identical turns (delta 0 < eta) that the released one keeps
    paper = TurnDedup(QueuePolicy({"same": [long_a, long_a, long_a, long_a]}), eta=0.3, turn_mean="arithmetic")
    paper.generate(["same"], episode_ids=["e"])
    assert paper.generate(["same"], episode_ids=["e"])[0].resampled == 2


def test_released_score_counts_forced_tokens():
    """The processor scores the forced step too (its score is taken before forcing)."""
    from t2po_gym.wrappers.tds import released_turn_score

    class Forced(QueuePolicy):
        def generate(self, prompts, sampling=None, *, episode_ids=None, controller=None, signal=None):
            gens = super().generate(prompts, sampling, episode_ids=episode_ids, signal=signal)
            for g in gens:
                g.forced_mask = [1] * len(g.signal)
            return gens

    sig = [0.1] * 33 + [0.4]
    tds = TurnDedup(Forced({"a": [sig]}), mode="released")
    tds.generate(["a"], episode_ids=["e"])
    assert tds.last_phi["e"] == pytest.approx(released_turn_score(sig)) == pytest.approx(0.4)
