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
    assert main(["train", *common, "--steps", "2", "--resume"]) == 0
    rows = [json.loads(l) for l in open(out / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [1, 2]


def test_sft_writes_a_loadable_model(tmp_path, capsys):
    out = tmp_path / "sft"
    assert main(["sft", "--model", "tiny", "--episodes", "2", "--steps", "2", "--batch-size", "2",
                 "--out", str(out)]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["sft/examples"] > 0 and (out / "config.json").exists()


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--env", "T2PO/ALFWorld-v0", "--algo", "sac"])
    with pytest.raises(ValueError, match="unknown config fields"):
        main(["train", "--env", "T2PO/ALFWorld-v0", "--set", "no_such_knob=1", "--out", str(tmp_path)])
