"""run_episode and `t2po play --policy` with the tiny model."""

from __future__ import annotations

import argparse
import io

import gymnasium as gym
import pytest

from t2po_gym.agent import play_with_policy, run_episode
from t2po_gym.policies.base import Generation, SamplingConfig


class CountdownEnv(gym.Env):
    """Ends after 3 steps; wins when the last response contains 'go'."""

    def __init__(self):
        self.observation_space = gym.spaces.Text(1000)
        self.action_space = gym.spaces.Text(1000)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return "turn 0 <think>", {}

    def step(self, action):
        self.t += 1
        done = self.t >= 3
        won = done and "go" in action
        return f"turn {self.t} <think>", float(won), done, False, {"won": won, "task_score": float(won)}


class Scripted:
    def __init__(self):
        self.ids = []

    def generate(self, prompts, sampling=None, *, episode_ids=None, **kw):
        self.ids.append(episode_ids[0])
        return [Generation(text="<think>x</think><action>go</action>", token_ids=[1, 2, 3], logprobs=[0.0] * 3,
                           think_tokens=1, intervened=True, resampled=1)]


def test_run_episode_counts_everything():
    policy = Scripted()
    r = run_episode(CountdownEnv(), policy, seed=0, episode_id="ep")
    assert (r.success, r.turns, r.tokens, r.think_tokens, r.interventions, r.resamples) == (True, 3, 9, 3, 3, 3)
    assert policy.ids == ["ep"] * 3 and r.reward == 1.0


def test_run_episode_with_wrapped_tiny_model_resets_tds_state(tiny):
    from t2po_gym.policies.hf import HFPolicy
    from t2po_gym.wrappers import ThinkingIntervention, TurnDedup

    model, tok = tiny
    tds = TurnDedup(ThinkingIntervention(HFPolicy(model, tok, chat_template=False), min_think_tokens=2))
    r = run_episode(CountdownEnv(), tds, sampling=SamplingConfig(max_new_tokens=10, seed=1), episode_id="e")
    assert r.turns == 3 and r.tokens == sum(len(g.token_ids) for g in r.generations) <= 30
    assert tds.last_phi == {}  # the episode's state is dropped at the end
    assert tds.stats["turns"] == 3


def test_play_with_policy_cli(monkeypatch):
    gym.register("T2POTest/Countdown-v0", entry_point=CountdownEnv, disable_env_checker=True)
    args = argparse.Namespace(env="T2POTest/Countdown-v0", episodes=2, seed=0, policy="hf:tiny", tti=True,
                              tds=True, verbose=False, max_new_tokens=8)
    out = io.StringIO()
    assert play_with_policy(args, {}, out=out) == 0
    text = out.getvalue()
    assert "episode 1:" in text and "interventions=" in text and "resamples=" in text


def test_bad_policy_spec():
    from t2po_gym.factory import make_policy

    with pytest.raises(ValueError, match="hf:PATH"):
        make_policy("tiny")
    with pytest.raises(ValueError, match="unknown policy backend"):
        make_policy("gpt:foo")
