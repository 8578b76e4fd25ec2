"""Checkpoints: no pickle anywhere, crafted files never run, config checks on resume,
orphaned temporary directories, and run directories that are never mixed."""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from optim.checkpoint import (
    LEGACY_STATE,
    MANIFEST,
    STATE,
    TENSORS,
    CheckpointError,
    ConfigMismatchError,
    LegacyCheckpointError,
    RunDirNotEmptyError,
    compare_configs,
    convert_legacy_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_trainer_state,
    prepare_run_dir,
    read_trainer_state,
    remove_orphaned_tmp,
    save_checkpoint,
    write_trainer_state,
)
from optim.trainer import Trainer

from optim_toy import ToyPolicyModel, toy_config

HERE = Path(__file__).resolve().parent


def _state():
    return {
        "step": 7,
        "config": {"algo": "grpo", "lr": 0.01, "env_kwargs": {"history_length": 2}},
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4, 3)}},
            "param_groups": [{"lr": 0.01, "betas": (0.9, 0.999), "params": [0], "foreach": None}],
        },
        "value_head": None,
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
    }


def test_trainer_state_round_trips_without_pickle(tmp_path):
    state = _state()
    write_trainer_state(tmp_path, state)
    assert sorted(p.name for p in tmp_path.iterdir()) == [STATE, TENSORS]
    back = read_trainer_state(tmp_path)
    assert back["step"] == 7 and back["config"] == state["config"]
    opt = back["optimizer"]
    assert list(opt["state"]) == [0]  # int keys survive
    assert torch.equal(opt["state"][0]["exp_avg"], state["optimizer"]["state"][0]["exp_avg"])
    assert opt["param_groups"][0]["betas"] == (0.9, 0.999)
    assert torch.equal(back["torch_rng"], state["torch_rng"])
    np.random.set_state(back["numpy_rng"])
    a = np.random.rand(3)
    np.random.set_state(state["numpy_rng"])
    assert np.array_equal(a, np.random.rand(3))
    random.setstate(back["python_rng"])
    x = random.random()
    random.setstate(state["python_rng"])
    assert x == random.random()
    # the JSON half is plain JSON, the tensor half plain safetensors
    json.loads((tmp_path / STATE).read_text())
    assert (tmp_path / TENSORS).read_bytes()[8:9] == b"{"


def test_objects_that_are_not_data_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="neither a tensor nor JSON"):
        write_trainer_state(tmp_path, {"hook": print})


class _Boom:
    """Pickles to ``os.system("touch MARKER")``: the classic crafted checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _manifest(directory: Path) -> None:
    import hashlib

    files = {}
    for p in sorted(directory.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            files[str(p.relative_to(directory))] = {
                "size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
    (directory / MANIFEST).write_text(json.dumps({"step": 1, "files": files}))


def _crafted_checkpoint(root: Path, marker: Path) -> Path:
    """An old-format checkpoint whose trainer_state.pt runs a command when unpickled; the
    attacker recomputes the manifest, as anyone who can write the directory can."""
    ckpt = root / "checkpoints" / "step_00000001"
    (ckpt / "model").mkdir(parents=True)
    ToyPolicyModel(0).save(str(ckpt / "model"))
    with open(ckpt / LEGACY_STATE, "wb") as f:
        # protocol 2, as torch.save writes: torch's loader warns on any other protocol
        pickle.dump({"step": 1, "config": {}, "optimizer": _Boom(marker)}, f, protocol=2)
    _manifest(ckpt)
    return ckpt


def test_crafted_pickle_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    # sanity: the crafted file does run code when unpickled the unsafe way
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Boom(probe)))
    assert probe.exists()

    cfg = toy_config(tmp_path, "grpo")
    ckpt = _crafted_checkpoint(Path(cfg.out_dir), marker)
    assert latest_checkpoint(Path(cfg.out_dir) / "checkpoints") == ckpt
    with pytest.raises(LegacyCheckpointError, match="pickle.*python -m optim.checkpoint convert"):
        load_trainer_state(ckpt)
    tr = Trainer(cfg, model=ToyPolicyModel(0))
    with pytest.raises(LegacyCheckpointError):
        tr.resume()
    # the converter uses torch's restricted unpickler: refused, not run
    with pytest.raises(CheckpointError, match="refuses"):
        convert_legacy_checkpoint(ckpt)
    # ... and `t2po eval` on the run directory stops with the message
    from optim.cli import main

    with pytest.raises(SystemExit, match="arbitrary code"):
        main(["eval", "--checkpoint", cfg.out_dir, "--episodes", "1"])
    assert not marker.exists()
    assert (ckpt / LEGACY_STATE).exists()  # left as it was


def test_deeply_nested_json_state_is_a_clear_error(tmp_path):
    write_trainer_state(tmp_path, {"step": 1})
    (tmp_path / STATE).write_text('{"format": "t2po-checkpoint/2", "state": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CheckpointError, match="nests deeper"):
        read_trainer_state(tmp_path)


def test_old_checkpoint_of_our_own_converts_and_resumes(tmp_path):
    cfg = toy_config(tmp_path, "grpo", steps=1)
    tr = Trainer(cfg, model=ToyPolicyModel(0))
    tr.train()
    ckpt = list_checkpoints(tr.ckpt_dir)[-1]
    # rewrite it as the old format did: the whole state in one torch.save pickle
    state = read_trainer_state(ckpt)
    (ckpt / STATE).unlink()
    (ckpt / TENSORS).unlink()
    torch.save(state, ckpt / LEGACY_STATE)
    _manifest(ckpt)
    with pytest.raises(LegacyCheckpointError):
        load_trainer_state(ckpt)
    r = subprocess.run([sys.executable, "-m", "optim.checkpoint", "convert", cfg.out_dir],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not (ckpt / LEGACY_STATE).exists()
    fresh = Trainer(cfg, model=ToyPolicyModel(5))
    assert fresh.resume() == ckpt and fresh.step == 1
    assert all(torch.equal(a, b) for a, b in zip(fresh.model.parameters(), tr.model.parameters()))


def test_resume_applies_mutable_fields_with_a_note(tmp_path, capsys):
    Trainer(toy_config(tmp_path, "grpo", steps=1, lr=3e-4), model=ToyPolicyModel(0)).train()
    tr = Trainer(toy_config(tmp_path, "grpo", steps=3, lr=1.0), model=ToyPolicyModel(0))
    tr.resume()
    out = capsys.readouterr().out
    assert "lr: 0.0003 -> 1.0" in out and "steps: 1 -> 3" in out
    assert tr.optimizer.param_groups[0]["lr"] == 1.0  # not the checkpoint's 3e-4


@pytest.mark.parametrize("change", [{"group_size": 3}, {"algo": "ppo"}, {"lora_alpha": 8}])
def test_resume_refuses_fixed_fields_and_names_each(tmp_path, change):
    Trainer(toy_config(tmp_path, "grpo", steps=1), model=ToyPolicyModel(0)).train()
    algo = change.get("algo", "grpo")
    kw = {k: v for k, v in change.items() if k != "algo"}
    tr = Trainer(toy_config(tmp_path, algo, steps=2, **kw), model=ToyPolicyModel(0))
    with pytest.raises(ConfigMismatchError) as e:
        tr.resume()
    msg = str(e.value)
    for key, value in change.items():
        assert f"{key}: " in msg and repr(value) in msg
    assert "--allow-config-change" in msg
    if "group_size" in change:
        assert "--set group_size=2" in msg  # the checkpoint's value, ready to paste
    assert tr.step == 0


def test_allowed_change_resumes(tmp_path):
    Trainer(toy_config(tmp_path, "grpo", steps=1), model=ToyPolicyModel(0)).train()
    tr = Trainer(toy_config(tmp_path, "grpo", steps=2, group_size=3), model=ToyPolicyModel(0))
    tr.resume(allow_config_change=["group_size"])
    assert tr.step == 1
    tr.train()
    assert tr.step == 2


def test_compare_configs_defaults_for_fields_the_checkpoint_predates():
    applied, refused = compare_configs({"algo": "grpo"}, {"algo": "grpo", "center_turns": False},
                                       defaults={"center_turns": False})
    assert applied == refused == []
    applied, refused = compare_configs({"algo": "grpo"}, {"algo": "grpo", "center_turns": True},
                                       defaults={"center_turns": False})
    assert refused == ["center_turns: False -> True"]


def test_new_run_in_a_used_run_dir_is_refused(tmp_path):
    cfg = toy_config(tmp_path, "grpo", steps=1)
    Trainer(cfg, model=ToyPolicyModel(0)).train()
    rows = (Path(cfg.out_dir) / "metrics.jsonl").read_text()
    with pytest.raises(RunDirNotEmptyError, match="--resume.*--overwrite"):
        prepare_run_dir(cfg.out_dir, resume=False)
    with pytest.raises(RunDirNotEmptyError):
        Trainer(cfg, model=ToyPolicyModel(0)).train()
    assert (Path(cfg.out_dir) / "metrics.jsonl").read_text() == rows  # nothing appended
    prepare_run_dir(cfg.out_dir, resume=False, overwrite=True)
    assert not (Path(cfg.out_dir) / "checkpoints").exists()
    Trainer(cfg, model=ToyPolicyModel(0)).train()
    steps = [json.loads(line)["step"] for line in (Path(cfg.out_dir) / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1]


def test_orphaned_tmp_dirs_are_removed(tmp_path):
    root = tmp_path / "ck"
    save_checkpoint(root, 2, lambda d: os.makedirs(d), {"step": 2})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = root / f".tmp-step_00000003-{dead.pid}"  # writer gone
    superseded = root / f".tmp-step_00000001-{os.getppid()}"  # live pid, but step 2 is complete
    live = root / f".tmp-step_00000003-{os.getppid()}"  # a live writer of a newer step: kept
    for d in (orphan, superseded, live):
        d.mkdir()
    removed = remove_orphaned_tmp(root)
    assert sorted(removed) == sorted([orphan, superseded])
    assert live.exists() and (root / "step_00000002").exists()


_KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {here!r})
    from optim_toy import ToyPolicyModel, toy_config
    from optim.trainer import Trainer

    pm = ToyPolicyModel(0)
    save = pm.save

    def save_then_die(path):
        save(path)
        if "step_00000002" in path:  # the second checkpoint: half written, then kill -9
            os.kill(os.getpid(), signal.SIGKILL)

    pm.save = save_then_die
    Trainer(toy_config(Path({tmp!r}), "grpo", steps=2, checkpoint_every=1), model=pm).train()
""")


def test_kill_during_checkpoint_write_then_resume_leaves_no_tmp(tmp_path):
    script = _KILLER.format(here=str(HERE), tmp=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    ckpt_dir = tmp_path / "run" / "checkpoints"
    assert [p.name for p in ckpt_dir.iterdir() if p.name.startswith(".tmp-")], "the kill left no tmp dir"
    assert [p.name for p in list_checkpoints(ckpt_dir)] == ["step_00000001"]
    tr = Trainer(toy_config(tmp_path, "grpo", steps=2, checkpoint_every=1), model=ToyPolicyModel(3))
    tr.resume()
    assert tr.step == 1
    assert not [p for p in ckpt_dir.iterdir() if p.name.startswith(".tmp-")]
    tr.train()
    assert [p.name for p in list_checkpoints(ckpt_dir)] == ["step_00000001", "step_00000002"]
    assert not [p for p in ckpt_dir.iterdir() if p.name.startswith(".tmp-")]
