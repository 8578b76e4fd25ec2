"""TDS resamples exactly the turns whose turn signal repeats the episode's last one."""

from __future__ import annotations

import math

import pytest

from t2po_gym.policies.base import Generation, SamplingConfig
from t2po_gym.wrappers.tds import TDSConfig, TurnDedup, turn_signal


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
