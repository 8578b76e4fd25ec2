"""Vector envs: every text env works with gym.make_vec in sync and async mode.

Async mode runs with Gymnasium's defaults (shared_memory=True): UnicodeText's shared-memory
codec must return the real text, equal to the sync observations, step after step, and
across Gymnasium 1.x's default autoreset (NEXT_STEP).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import t2po_gym  # noqa: F401

#: small worlds so that each env builds in milliseconds; max_turns=2 to reach autoreset fast
SMALL = {
    "T2PO/ALFWorld-v0": ({}, "-= Welcome to TextWorld, ALFRED! =-"),
    "T2PO/WebShop-v0": ({"num_products": 200}, "WebShop [SEP] Instruction:"),
    "T2PO/SearchQA-v0": ({"world_passages": 300, "world_questions": 50}, "Question: "),
}
NOOP = "<think>no command</think>"


def make(env_id: str, mode: str, n: int = 2) -> gym.vector.VectorEnv:
    kwargs, _ = SMALL[env_id]
    return gym.make_vec(env_id, num_envs=n, vectorization_mode=mode, observation_mode="raw",
                        max_turns=2, protocol="strict", **kwargs)


def first_commands(infos) -> tuple[str, ...]:
    out = []
    for acts in infos["admissible_actions"]:
        a = acts[0]
        if a == "search[<query>]":
            a = "search[blue shoes]"
        out.append(a if a.startswith("<") else f"<action>{a}</action>")
    return tuple(f"<think>first</think>{a}" if not a.startswith("<think>") else a for a in out)


def rollout(envs: gym.vector.VectorEnv) -> list[tuple]:
    """reset, one valid step, one no-op (truncation at max_turns=2), one autoreset step."""
    trace = []
    obs, infos = envs.reset(seed=[3, 4])
    assert isinstance(obs, tuple) and len(obs) == 2  # Text observations batch as a tuple of str
    trace.append((tuple(obs), tuple(infos["task"])))
    steps = [first_commands(infos), (NOOP, NOOP), (NOOP, NOOP)]
    for acts in steps:
        obs, rew, term, trunc, infos = envs.step(acts)
        assert isinstance(obs, tuple)
        trace.append((tuple(obs), tuple(rew.tolist()), tuple(term.tolist()), tuple(trunc.tolist()),
                      tuple(infos["turn"].tolist()), tuple(infos["task"])))
    return trace


@pytest.mark.parametrize("env_id", sorted(SMALL))
def test_sync_and_async_agree_through_autoreset(env_id):
    sync, asyn = make(env_id, "sync"), make(env_id, "async")
    try:
        assert sync.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        assert asyn.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        assert isinstance(sync.single_observation_space, gym.spaces.Text)
        t_sync, t_async = rollout(sync), rollout(asyn)
    finally:
        sync.close()
        asyn.close()
    # async observations are the real text, equal to sync (no shared-memory padding)
    assert t_async == t_sync
    _, prefix = SMALL[env_id]
    reset_obs, reset_tasks = t_sync[0]
    assert all(isinstance(o, str) and o.startswith(prefix) for o in reset_obs)
    assert reset_tasks[0] != "" and len(set(reset_obs)) == 2  # different seeds, different games
    (_, _, _, tr1, turn1, _), (o2, _, te2, tr2, turn2, _), (o3, r3, te3, tr3, turn3, _) = t_sync[1:]
    assert turn1 == (1, 1) and tr1 == (False, False)
    # the no-op uses the last turn: truncation at max_turns=2
    assert turn2 == (2, 2) and tr2 == (True, True) and te2 == (False, False)
    assert all(o.startswith("Invalid response") for o in o2)
    # NEXT_STEP autoreset: the step after the end resets (action ignored), reward 0, not done
    assert turn3 == (0, 0) and te3 == tr3 == (False, False) and r3 == (0.0, 0.0)
    assert all(o.startswith(prefix) for o in o3)


def test_same_seed_same_observation_in_async_mode():
    envs = make("T2PO/SearchQA-v0", "async", n=3)
    try:
        obs, infos = envs.reset(seed=[7, 7, 8])
        assert obs[0] == obs[1] and obs[0] != obs[2]
        assert np.array_equal(infos["turn"], [0, 0, 0])
        # the observations are plain str after the call returns, not views that change later
        before = tuple(obs)
        envs.step(("<think>a</think><search>x</search>",) * 3)
        assert tuple(obs) == before
    finally:
        envs.close()
