"""The ALFWorld demo's searching expert and model builder."""

import pytest

from optim.demo import DEMO_ENV_KWARGS, SearchingExpert
from optim.sft import collect_expert_examples


def test_searching_expert_searches_and_still_solves():
    kw = dict(split="train", seed=0, env_kwargs=DEMO_ENV_KWARGS)
    oracle_ex, oracle = collect_expert_examples("T2PO/ALFWorld-v0", 20, **kw)
    search_ex, search = collect_expert_examples("T2PO/ALFWorld-v0", 20, expert=SearchingExpert(), **kw)
    assert oracle["expert_success"] == 1.0
    # searching takes more turns than walking straight to the object, and mostly still wins
    assert search["turns"] > oracle["turns"] and search["expert_success"] >= 0.6
    assert all(e.response.startswith("<think>") and e.response.endswith("</action>") for e in search_ex)


def test_noise_keeps_expert_targets():
    ex, st = collect_expert_examples("T2PO/ALFWorld-v0", 10, split="train", seed=0, env_kwargs=DEMO_ENV_KWARGS,
                                     noise=0.5)
    # targets are the oracle's commands: every recorded target is admissible in its prompt
    for e in ex:
        action = e.response.split("<action>")[1].split("</action>")[0]
        assert f"'{action}'" in e.prompt


def test_build_demo_model_is_small_and_deterministic(tmp_path):
    pytest.importorskip("transformers")
    from optim.demo import DemoModelConfig, build_demo_model

    ex, _ = collect_expert_examples("T2PO/ALFWorld-v0", 5, split="train", seed=0, env_kwargs=DEMO_ENV_KWARGS)
    a = build_demo_model(tmp_path / "a", DemoModelConfig(), examples=ex)
    b = build_demo_model(None, DemoModelConfig(), examples=ex)
    assert sum(p.numel() for p in a.model.parameters()) < 500_000
    assert a.encode_prompt(ex[0].prompt) == b.encode_prompt(ex[0].prompt)
    assert all((pa == pb).all() for pa, pb in zip(a.model.parameters(), b.model.parameters()))
    assert (tmp_path / "a" / "t2po_model.json").exists()
