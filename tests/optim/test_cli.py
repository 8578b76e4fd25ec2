"""`t2po train` then `t2po eval` on its checkpoint, and `t2po sft`, with the tiny model."""

import json

import pytest

pytest.importorskip("transformers")

from optim.cli import main


def test_train_then_eval_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--env", "T2PO/ALFWorld-v0", "--algo", "grpo", "--model", "tiny", "--n-tasks", "1",
              "--group-size", "2", "--max-turns", "1", "--max-new-tokens", "8", "--out", str(out),
              "--set", "progress=false", "--set", "tensorboard=false", "--set", "checkpoint_every=1"]
    assert main(["train", *common, "--steps", "1"]) == 0
    assert (out / "checkpoints" / "step_00000001" / "MANIFEST.json").exists()
    assert (out / "curves.png").exists()
    assert main(["eval", "--checkpoint", str(out), "--episodes", "2"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    res = json.loads(line)
    assert res["eval/episodes"] == 2.0 and 0.0 <= res["eval/success"] <= 1.0
    # the run's own evaluation settings (the released scripts'), or explicit ones
    from optim.checkpoint import latest_checkpoint, load_trainer_state

    cfg = load_trainer_state(latest_checkpoint(out / "checkpoints"))["config"]
    assert main(["eval", "--checkpoint", str(out), "--episodes", "2", "--as-run"]) == 0
    want = (f"temperature {cfg['eval_temperature']}, top-p {cfg['eval_top_p']}, top-k {cfg['eval_top_k']}, "
            f"TTI {'on' if cfg['eval_tti'] else 'off'}")
    assert want in capsys.readouterr().out
    assert main(["eval", "--checkpoint", str(out), "--episodes", "2", "--tti", "--temperature", "0.7",
                 "--top-k", "5"]) == 0
    assert "temperature 0.7, top-p 1.0, top-k 5, TTI on" in capsys.readouterr().out
    assert main(["train", *common, "--steps", "2", "--resume"]) == 0
    rows = [json.loads(l) for l in open(out / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [1, 2]


def test_sft_writes_a_loadable_model(tmp_path, capsys):
    out = tmp_path / "sft"
    assert main(["sft", "--model", "tiny", "--episodes", "2", "--steps", "2", "--batch-size", "2",
                 "--out", str(out)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["sft/examples"] > 0 and (out / "config.json").exists()


def test_bad_arguments_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--env", "T2PO/ALFWorld-v0", "--algo", "sac"])
    capsys.readouterr()
    # an unknown --set key, a mistyped env id, a checkpoint path that does not exist:
    # one line naming the problem, exit status 2, no traceback
    cases = [
        (["train", "--env", "T2PO/ALFWorld-v0", "--set", "no_such_knob=1", "--out", str(tmp_path / "a")],
         "no_such_knob"),
        (["train", "--env", "T2PO/ALFWorld-v1", "--out", str(tmp_path / "b")], "did you mean T2PO/ALFWorld-v0"),
        (["eval", "--checkpoint", str(tmp_path / "nope")], "no such file or directory"),
        (["eval", "--checkpoint", str(tmp_path / "nope"), "--env", "T2PO/ALFWorld-v0"], "no such file or directory"),
        (["sft", "--env", "T2PO/WebShp-v0", "--out", str(tmp_path / "c")], "did you mean T2PO/WebShop-v0"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (argv, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith(f"t2po {argv[0]}: error: "), err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_train_and_eval_take_env_arg_and_env_kwargs(tmp_path, capsys):
    from optim.checkpoint import latest_checkpoint, load_trainer_state

    out = tmp_path / "run"
    assert main(["train", "--env", "T2PO/ALFWorld-v0", "--algo", "grpo", "--model", "tiny", "--n-tasks", "1",
                 "--group-size", "2", "--max-new-tokens", "8", "--steps", "1", "--out", str(out),
                 "--env-kwargs", '{"max_receptacles": 3, "max_turns": 7}',
                 "--env-arg", "task_types=pick_and_place_simple", "--env-arg", "max_turns=1",
                 "--set", "progress=false", "--set", "tensorboard=false"]) == 0
    cfg = load_trainer_state(latest_checkpoint(out / "checkpoints"))["config"]
    assert cfg["env_kwargs"] == {"max_receptacles": 3, "max_turns": 1, "task_types": "pick_and_place_simple"}
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out), "--episodes", "1", "--env-arg", "max_turns=1",
                 "--env-kwargs", '{"max_receptacles": 2}']) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["eval/episodes"] == 1.0 and res["eval/turns"] <= 1.0
