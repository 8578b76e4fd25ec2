"""Atomic, verifiable checkpoints.

Layout under ``root``::

    step_00000010/
        model/               the policy model as its backend saves it (weights, config, tokenizer)
        trainer_state.pt     optimizer, value head, step, config, RNG states
        MANIFEST.json        written last: size and sha256 of every file above

A checkpoint is first written to a hidden temporary directory and then renamed into
place (a rename is atomic on POSIX), so a crash mid-write leaves only a ``.tmp-*``
directory that is ignored. A checkpoint whose files do not match its manifest (cut off,
truncated by a full disk, edited) is skipped with a warning and the previous one is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = [
    "CheckpointError",
    "save_checkpoint",
    "verify_checkpoint",
    "list_checkpoints",
    "latest_checkpoint",
    "load_trainer_state",
    "assert_finite_state",
]

MANIFEST = "MANIFEST.json"
STATE = "trainer_state.pt"
MODEL_DIR = "model"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or would hold non-finite numbers."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def assert_finite_state(state_dict: dict[str, Any], what: str = "model") -> None:
    """Raise :class:`CheckpointError` if any floating tensor holds NaN or inf."""
    for name, value in state_dict.items():
        if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all():
            raise CheckpointError(f"refusing to checkpoint: {what} tensor {name!r} holds NaN/inf")


def save_checkpoint(
    root: str | os.PathLike,
    step: int,
    save_model: Callable[[str], None],
    trainer_state: dict[str, Any],
    *,
    keep: int = 3,
) -> Path:
    """Write checkpoint ``step`` atomically and keep the newest ``keep`` ones.

    Args:
        root: checkpoint directory (created if needed).
        step: the number of completed training steps.
        save_model: writes the model into the directory it is given.
        trainer_state: anything ``torch.save`` can store (optimizer state, RNG, config...).
        keep: how many complete checkpoints to keep (older ones are deleted; >= 1).

    Returns:
        The final checkpoint directory.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp-step_{step:08d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        save_model(str(tmp / MODEL_DIR))
        torch.save(trainer_state, tmp / STATE)
        files = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                _fsync_file(p)
                files[str(p.relative_to(tmp))] = {"size": p.stat().st_size, "sha256": _sha256(p)}
        manifest = {"step": int(step), "files": files}
        with open(tmp / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(root)[: -max(int(keep), 1)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def verify_checkpoint(path: str | os.PathLike) -> str | None:
    """Return ``None`` if the checkpoint matches its manifest, else the reason it does not."""
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        return f"{mpath} is missing (the write was cut off)"
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{mpath} is unreadable: {exc}"
    if STATE not in files:
        return f"{mpath} lists no {STATE}"
    for rel, meta in files.items():
        p = path / rel
        if not p.is_file():
            return f"{p} is missing"
        if p.stat().st_size != meta.get("size"):
            return f"{p} has {p.stat().st_size} bytes, the manifest says {meta.get('size')} (cut off)"
        if _sha256(p) != meta.get("sha256"):
            return f"{p} does not match its sha256 in the manifest"
    return None


def list_checkpoints(root: str | os.PathLike) -> list[Path]:
    """Checkpoint directories under ``root``, oldest first (complete or not)."""
    root = Path(root)
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and p.name[5:].isdigit()]
    return sorted(dirs, key=lambda p: int(p.name[5:]))


def latest_checkpoint(root: str | os.PathLike) -> Path | None:
    """The newest checkpoint under ``root`` that verifies; corrupt ones are skipped with a warning.

    ``root`` may also be a checkpoint directory itself.
    """
    root = Path(root)
    if (root / MANIFEST).exists() or (root / STATE).exists():
        reason = verify_checkpoint(root)
        if reason is None:
            return root
        warnings.warn(f"checkpoint {root} is corrupt: {reason}", stacklevel=2)
        return None
    for ckpt in reversed(list_checkpoints(root)):
        reason = verify_checkpoint(ckpt)
        if reason is None:
            return ckpt
        warnings.warn(f"skipping corrupt checkpoint {ckpt}: {reason}; trying the previous one", stacklevel=2)
    return None


def load_trainer_state(path: str | os.PathLike) -> dict[str, Any]:
    """Load ``trainer_state.pt`` of a verified checkpoint (raises :class:`CheckpointError` if corrupt)."""
    path = Path(path)
    reason = verify_checkpoint(path)
    if reason is not None:
        raise CheckpointError(f"cannot resume from {path}: {reason}")
    return torch.load(path / STATE, map_location="cpu", weights_only=False)
