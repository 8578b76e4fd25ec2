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


def test_sampling_and_policy_options_from_cli_args():
    from t2po_gym.agent import policy_options, sampling_options
    from t2po_gym.factory import sampling_for_env

    args = argparse.Namespace(temperature=0.0, max_new_tokens=None, top_k=5, stop=None,
                              system_prompt="be brief", assistant_prefill=None,
                              chat_template_kwargs=["enable_thinking=true", "mode=fast"],
                              tti_kwargs={"max_think_tokens": 8}, tds_kwargs=None)
    s = sampling_for_env("T2PO/SearchQA-v0", **sampling_options(args))
    # temperature 0 stays 0 (greedy), and the env's stop strings apply when none are given
    assert (s.temperature, s.max_new_tokens, s.top_k, s.stop) == (0.0, 256, 5, ("</search>", "</answer>"))
    assert sampling_options(argparse.Namespace(stop=[])) == {"max_new_tokens": 256, "stop": ()}
    assert sampling_options(argparse.Namespace()) == {"max_new_tokens": 256}
    assert policy_options(args) == {"system_prompt": "be brief", "tti_kwargs": {"max_think_tokens": 8},
                                    "chat_template_kwargs": {"enable_thinking": True, "mode": "fast"}}
    with pytest.raises(ValueError, match="chat_template_kwargs expects KEY=VALUE"):
        policy_options(argparse.Namespace(chat_template_kwargs=["enable_thinking"]))


def test_play_with_policy_takes_the_env_protocol(monkeypatch, tmp_path):
    """`play` on Search-QA: TTI forces "</think>\\n" and sampling stops at </search> / </answer>."""
    import t2po_gym.agent as agent_mod
    import t2po_gym.factory as factory

    seen = {}

    def fake_make_policy(spec, **kw):
        seen["policy"] = kw
        return Scripted()

    def fake_run_episode(env, policy, *, seed=None, sampling=None, on_turn=None):
        seen["sampling"] = sampling
        return agent_mod.EpisodeResult()

    monkeypatch.setattr(factory, "make_policy", fake_make_policy)
    monkeypatch.setattr(agent_mod, "run_episode", fake_run_episode)
    monkeypatch.setenv("T2PO_CACHE", str(tmp_path))
    args = argparse.Namespace(env="T2PO/SearchQA-v0", episodes=1, seed=0, policy="hf:x", tti=True, tds=False,
                              verbose=False, temperature=0, assistant_prefill="<think>")
    kwargs = dict(world_passages=300, world_questions=60, world_seed=3)
    assert play_with_policy(args, kwargs, out=io.StringIO()) == 0
    assert factory.response_spec_of(seen["policy"]["env"]).forced_text == "</think>\n"
    assert seen["policy"]["assistant_prefill"] == "<think>" and seen["policy"]["tti"] is True
    assert seen["sampling"].stop == ("</search>", "</answer>") and seen["sampling"].temperature == 0.0


def test_slow_import_note(monkeypatch, capsys):
    import sys

    from t2po_gym.factory import _note

    monkeypatch.delitem(sys.modules, "transformers", raising=False)
    _note("hf:tiny", " and building the tiny random model")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "importing torch and transformers and building the tiny random model" in err
    monkeypatch.setitem(sys.modules, "transformers", object())
    _note("hf:tiny", "")
    assert capsys.readouterr().err == ""  # already imported: nothing to explain
