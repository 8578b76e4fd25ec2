"""The ALFWorld demo: its searching expert, model builder, and the main job's budget."""

import json

import pytest

from optim.demo import DEMO_ENV_KWARGS, DemoPlan, SearchingExpert
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


# ---------------------------------------------------------------------------------------
# The main job keeps its budget (optim.demo.run_demo through `t2po train`).

def _tiny_plan():
    """The main job's phases at toy size: few expert games, 6 evaluation games, 2 x 2 RL rollouts.

    ``sft_steps`` is far more than fits, so the budget decides how many run."""
    from optim.demo import DemoModelConfig

    model = DemoModelConfig(env_kwargs={**DEMO_ENV_KWARGS, "max_turns": 4})
    return DemoPlan(model=model, expert_episodes=40, sft_steps=100_000, sft_batch=8, eval_episodes=2,
                    warm_start_share=0.3, sft_step_reference_s=0.3, rl_step_prior_s=2.0, plot_reserve_s=5.0,
                    train_overrides=dict(n_tasks=2, group_size=2, max_update_turns=32, minibatch_size=16,
                                         microbatch_size=16, checkpoint_every=2, tensorboard=False))


def test_main_job_ends_with_its_table_on_a_one_minute_budget(tmp_path, monkeypatch, capsys):
    """The job sizes its phases by the budget and always ends with its table. How long it
    takes is measured outside the tests (docs/results.md, "the main job's budget"): a test
    that times itself fails on a loaded machine."""
    pytest.importorskip("transformers")
    import optim.demo
    from optim.cli import main

    monkeypatch.setattr(optim.demo, "DemoPlan", _tiny_plan)
    out = tmp_path / "demo"
    rc = main(["train", "--budget-min", "1", "--out", str(out)])
    text = capsys.readouterr().out
    result = json.loads(text.strip().splitlines()[-1])
    # SFT was sized by the budget, and the table says what the budget allowed
    assert 1 <= result["sft_steps"] < 100_000
    assert f"SFT {result['sft_steps']:,} of 100,000 steps" in text
    assert "metric" in text and "warm start" in text and "success" in text
    for phase in ("[warm start]", "[evaluate the warm start]", "[t2po]"):
        assert phase in text
    # on a quiet machine RL fits; on a busy one the job says it did not (both end in time)
    if result["trained"]:
        assert rc == 0 and "after t2po" in text and "[evaluate after t2po]" in text
    else:
        assert rc == 1 and "NO TRAINING" in text
    from optim.demo import warm_start_info

    info = warm_start_info(out / "warmstart")
    assert info["sft"]["steps"] == result["sft_steps"] and info["sft"]["steps_asked"] == 100_000


def test_main_job_with_rl_steps_prints_before_after_and_writes_its_files(tmp_path, monkeypatch, capsys):
    pytest.importorskip("transformers")
    import dataclasses

    import optim.demo
    from optim.cli import main

    monkeypatch.setattr(optim.demo, "DemoPlan",
                        lambda: dataclasses.replace(_tiny_plan(), sft_steps=20, max_rl_steps=2, rl_step_prior_s=0.1))
    out = tmp_path / "demo"
    assert main(["train", "--budget-min", "10", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    result = json.loads(text.strip().splitlines()[-1])
    assert result["trained"] and result["new_steps"] == 2 and result["after_success"] is not None
    assert result["sft_steps"] == 20 and "SFT 20 of 20 steps" in text
    assert "after t2po" in text and "[evaluate after t2po]" in text
    files = next(l for l in text.splitlines() if l.startswith("files: "))
    for name in ("curves.png", "before_after.png"):
        assert str(out / name) in files and (out / name).exists()
    assert "checkpoints" in files
    # a second run reuses the complete warm start; without --overwrite/--resume it refuses to mix runs
    assert main(["train", "--budget-min", "10", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["train", "--budget-min", "10", "--out", str(out), "--overwrite"]) == 0
    assert "warm start: reusing" in capsys.readouterr().out


def test_a_job_whose_budget_is_spent_before_rl_says_so_and_fails(tmp_path, monkeypatch, capsys):
    pytest.importorskip("transformers")
    import optim.demo
    from optim.cli import main

    monkeypatch.setattr(optim.demo, "DemoPlan", _tiny_plan)
    out = tmp_path / "demo"
    rc = main(["train", "--budget-min", "0.1", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 1, text
    assert "NO TRAINING: no T2PO step ran in this job" in text and "--budget-min" in text
    assert "after t2po" not in text  # no made-up +0.000 column
    result = json.loads(text.strip().splitlines()[-1])
    assert result["trained"] is False and result["new_steps"] == 0 and result["after_success"] is None
    assert result["no_training_reason"]
    # only files that exist are named
    files = next(l for l in text.splitlines() if l.startswith("files: "))[len("files: "):].split(", ")
    assert files == [str(out / "before_after.png")] and (out / "before_after.png").exists()
    assert not (out / "curves.png").exists()


def test_before_after_plot_has_a_title_and_room_above_full_bars(tmp_path):
    pytest.importorskip("matplotlib")
    from matplotlib import pyplot as plt

    import optim.demo

    captured = {}
    real_close = plt.close

    def keep(fig=None):
        captured["fig"] = fig
        return real_close(fig)

    full = {"eval/success": 1.0, "eval/task_score": 1.0, "eval/action_valid": 0.5, "eval/format_valid": 1.0}
    import unittest.mock as mock

    with mock.patch.object(plt, "close", keep):
        path = optim.demo._plot_before_after(full, {**full, "eval/success": 0.25}, tmp_path / "ba.png")
    assert path.exists()
    ax = captured["fig"].axes[0]
    assert "warm start" in ax.get_title() and "T2PO" in ax.get_title()
    assert ax.get_ylim()[1] > 1.05  # a bar at 1.0 and its label are not cut off
    labels = [t.get_text() for t in ax.texts]
    assert "1.00" in labels and "0.25" in labels and "0.50" in labels


def test_warm_start_cache_is_reused_when_complete_or_when_the_budget_could_not_add_to_it(tmp_path):
    from optim.demo import JobClock, _plan_key, warm_start

    plan = DemoPlan(expert_episodes=3, sft_steps=100)
    ws = tmp_path / "warmstart"
    ws.mkdir()
    (ws / "config.json").write_text("{}")

    def marker(steps: int, key: str | None = None) -> None:
        (ws / "t2po_model.json").write_text(json.dumps({
            "plan_key": key or _plan_key(plan, 0),
            "sft": {"steps": steps, "steps_asked": 100, "games": 3, "games_asked": 3, "s_per_step": 0.5,
                    "collect_s": 1.0}}))

    said: list[str] = []
    marker(100)
    assert warm_start(ws, plan, log=said.append) == ws and "reusing" in said[-1] and "100 of 100" in said[-1]
    # cut short (40 of 100 steps); a 6-second budget could not add to it, even at an idle machine's speed
    marker(40)
    assert warm_start(ws, plan, log=said.append, clock=JobClock(6.0)) == ws
    assert "would not train more" in said[-1]


def test_warm_start_cache_of_another_plan_is_rebuilt(tmp_path):
    pytest.importorskip("transformers")
    from optim.demo import DemoModelConfig, warm_start, warm_start_info

    plan = DemoPlan(model=DemoModelConfig(env_kwargs={**DEMO_ENV_KWARGS, "max_turns": 4}), expert_episodes=3,
                    sft_steps=2, sft_batch=2, torch_threads=1)
    ws = tmp_path / "warmstart"
    ws.mkdir()
    (ws / "config.json").write_text("{}")
    (ws / "t2po_model.json").write_text(json.dumps({"plan_key": "another plan", "sft": {"steps": 5}}))
    said: list[str] = []
    assert warm_start(ws, plan, log=said.append) == ws
    assert any("another plan" in s for s in said)
    info = warm_start_info(ws)
    assert info["sft"]["steps"] == 2 and info["sft"]["steps_asked"] == 2 and info["sft"]["games"] == 3
