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
    # reloading (AutoTokenizer makes it a Qwen2Tokenizer) must give the ids SFT trained on
    from optim.models import load_policy_model

    c = load_policy_model(str(tmp_path / "a"))
    for e in ex[:3]:
        assert c.encode_prompt(e.prompt) == a.encode_prompt(e.prompt)
        assert c.encode_response(e.response) == a.encode_response(e.response)


def test_one_thought_template_makes_targets_deterministic():
    ex, _ = collect_expert_examples("T2PO/ALFWorld-v0", 3, split="train", seed=0, env_kwargs=DEMO_ENV_KWARGS,
                                    templates=("Next: {action}.",))
    for e in ex:
        action = e.response.split("<action>")[1].split("</action>")[0]
        assert e.response == f"<think>Next: {action}.</think>\n<action>{action}</action>"


def test_searching_expert_label_does_not_advance_its_search():
    import gymnasium as gym

    env = gym.make("T2PO/ALFWorld-v0", **DEMO_ENV_KWARGS)
    _, info = env.reset(seed=0, options={"split": "train"})
    ex = SearchingExpert()
    ex.reset(env, info)
    first = ex.label(env, info)
    assert ex.label(env, info) == first and ex.here is None
    admissible = list(info["admissible_actions"])
    ex.observe("go to nowhere 9", admissible)  # not admissible: a no-op
    assert ex.here is None
    go = [a for a in admissible if a.startswith("go to ")][-1]
    ex.observe(go, admissible)
    assert ex.here == go[6:] and go[6:] in ex.visited
    env.close()


def test_dagger_labels_the_clones_states_with_admissible_expert_commands():
    pytest.importorskip("transformers")
    from optim.demo import DemoModelConfig, build_demo_model, dagger_examples

    kw = {**DEMO_ENV_KWARGS, "max_turns": 4}
    ex, _ = collect_expert_examples("T2PO/ALFWorld-v0", 3, split="train", seed=0, env_kwargs=kw)
    pm = build_demo_model(None, DemoModelConfig(), examples=ex)
    out, success = dagger_examples(pm, 3, seed=7, env_kwargs=kw, max_new_tokens=8, batch=2)
    assert 3 <= len(out) <= 12 and 0.0 <= success <= 1.0
    for e in out:
        action = e.response.split("<action>")[1].split("</action>")[0]
        assert f"'{action}'" in e.prompt
