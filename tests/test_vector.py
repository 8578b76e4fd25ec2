"""Vector envs: sync and async give the same Text observations."""

from __future__ import annotations

import gymnasium as gym

import t2po_gym  # noqa: F401


def test_async_observations_equal_sync_observations():
    kw = dict(num_envs=2, observation_mode="raw")
    sync = gym.make_vec("T2PO/ALFWorld-v0", vectorization_mode="sync", **kw)
    asyn = gym.make_vec("T2PO/ALFWorld-v0", vectorization_mode="async", **kw)
    o1, i1 = sync.reset(seed=[3, 4])
    o2, i2 = asyn.reset(seed=[3, 4])
    assert o1 == o2 and o1[0].startswith("-= Welcome")
    acts = tuple(f"<think>t</think><action>{a[0]}</action>" for a in i1["admissible_actions"])
    s1, s2 = sync.step(acts), asyn.step(acts)
    assert s1[0] == s2[0]
    assert list(s1[1]) == list(s2[1])
    sync.close()
    asyn.close()
