"""Atomic, verifiable checkpoints that hold no pickle.

Layout under ``root``::

    step_00000010/
        model/                        the policy model as its backend saves it (safetensors, config, tokenizer)
        trainer_state.safetensors     every tensor of the trainer state (optimizer moments, value head,
                                      KL reference, RNG states), flat names such as ``optimizer/state/0/exp_avg``
        trainer_state.json            everything else (step, config, optimizer hyper-parameters, Python RNG),
                                      with ``{"__tensor__": name}`` where a tensor sits in the structure
        MANIFEST.json                 written last: size and sha256 of every file above

Nothing in a checkpoint is ever unpickled: tensors come from safetensors (a header plus raw
bytes), the rest from JSON. A checkpoint written before this format (``trainer_state.pt``, a
pickle) is refused with instructions; :func:`convert_legacy_checkpoint` (``python -m
optim.checkpoint convert DIR``) rewrites one through torch's restricted unpickler
(``weights_only=True``), which refuses any object that could run code.

A checkpoint is first written to a hidden temporary directory ``.tmp-step_*-<pid>`` and
then renamed into place (a rename is atomic on POSIX), so a crash mid-write leaves only a
temporary directory; :func:`remove_orphaned_tmp` deletes those at the next start. A
checkpoint whose files do not match its manifest (cut off, truncated by a full disk,
edited) is skipped with a warning and the previous one is used. The manifest guards
against accidents, not against an attacker (whoever can write the directory can rewrite
it): safety against crafted files comes from never unpickling.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

__all__ = [
    "CheckpointError",
    "LegacyCheckpointError",
    "ConfigMismatchError",
    "RunDirNotEmptyError",
    "save_checkpoint",
    "verify_checkpoint",
    "list_checkpoints",
    "latest_checkpoint",
    "load_trainer_state",
    "assert_finite_state",
    "remove_orphaned_tmp",
    "prepare_run_dir",
    "compare_configs",
    "MUTABLE_ON_RESUME",
    "convert_legacy_checkpoint",
]

MANIFEST = "MANIFEST.json"
STATE = "trainer_state.json"
TENSORS = "trainer_state.safetensors"
LEGACY_STATE = "trainer_state.pt"
MODEL_DIR = "model"
FORMAT = "t2po-checkpoint/2"
#: JSON nesting deeper than this in ``trainer_state.json`` is refused (a real one is < 10 deep).
MAX_JSON_DEPTH = 64
_TMP = re.compile(r"^\.tmp-step_(\d+)-(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or would hold non-finite numbers."""


class LegacyCheckpointError(CheckpointError):
    """A checkpoint in the old pickle format: refused, since loading a pickle can run code."""


class ConfigMismatchError(ValueError):
    """Resuming with a config whose fixed fields differ from the checkpoint's."""


class RunDirNotEmptyError(RuntimeError):
    """A new run was started in a directory that already holds a run."""


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


# ------------------------------------------------------------------ encoding
def _encode(obj: Any, name: str, tensors: dict[str, torch.Tensor], seen: set[int]) -> Any:
    """JSON-able structure for ``obj``; tensors (and numpy arrays) go to ``tensors`` under ``name``.

    Tags: ``__tensor__`` (a torch tensor), ``__ndarray__`` (a numpy array), ``__tuple__``,
    ``__items__`` (a dict whose keys are not all strings, e.g. optimizer state by param index).
    """
    if torch.is_tensor(obj):
        t = obj.detach().cpu().contiguous()
        # safetensors refuses tensors sharing storage (tied weights): copy the second one.
        ptr = t.untyped_storage().data_ptr() if t.numel() else 0
        if ptr and ptr in seen:
            t = t.clone()
        elif ptr:
            seen.add(ptr)
        tensors[name] = t
        return {"__tensor__": name}
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise CheckpointError(f"cannot checkpoint numpy array {name!r} of dtype {obj.dtype}")
        tensors[name] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"__ndarray__": name, "dtype": obj.dtype.str}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{name}/{i}", tensors, seen) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{name}/{i}", tensors, seen) for i, v in enumerate(obj)]
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, f"{name}/{k}", tensors, seen) for k, v in obj.items()}
        items = []
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise CheckpointError(f"cannot checkpoint {name!r}: key {k!r} of type {type(k).__name__}")
            items.append([k, _encode(v, f"{name}/{k}", tensors, seen)])
        return {"__items__": items}
    raise CheckpointError(f"cannot checkpoint {name!r}: {type(obj).__name__} is neither a tensor nor JSON data")


def _decode(obj: Any, tensors: Mapping[str, torch.Tensor], where: str) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, where) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj or "__ndarray__" in obj:
        key = obj.get("__tensor__", obj.get("__ndarray__"))
        if not isinstance(key, str) or key not in tensors:
            raise CheckpointError(f"{where} names tensor {key!r}, which {TENSORS} does not hold")
        t = tensors[key]
        if "__ndarray__" in obj:
            dtype = np.dtype(str(obj.get("dtype", "")))
            if dtype.kind not in "biuf":
                raise CheckpointError(f"{where}: array {key!r} has dtype {dtype}, only numbers are allowed")
            return t.numpy().astype(dtype, copy=True)
        return t
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors, where) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: _decode(v, tensors, where) for k, v in obj["__items__"]}
    return {k: _decode(v, tensors, where) for k, v in obj.items()}


def _json_depth_ok(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Bracket depth of ``text`` (outside strings) stays <= ``limit`` (checked before ``json.loads``,
    which would otherwise recurse into a crafted 100k-deep file)."""
    depth = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def write_trainer_state(directory: str | os.PathLike, trainer_state: Mapping[str, Any]) -> None:
    """Write ``trainer_state`` as ``trainer_state.safetensors`` + ``trainer_state.json`` in ``directory``."""
    from safetensors.torch import save_file

    directory = Path(directory)
    tensors: dict[str, torch.Tensor] = {}
    body = _encode(dict(trainer_state), "", tensors, set())
    save_file(tensors, str(directory / TENSORS), metadata={"format": FORMAT})
    with open(directory / STATE, "w") as f:
        json.dump({"format": FORMAT, "state": body}, f)


def read_trainer_state(directory: str | os.PathLike) -> dict[str, Any]:
    """Read what :func:`write_trainer_state` wrote; never unpickles anything."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = Path(directory)
    jpath = directory / STATE
    try:
        text = jpath.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"cannot read {jpath}: {exc}") from None
    if not _json_depth_ok(text):
        raise CheckpointError(f"{jpath} nests deeper than {MAX_JSON_DEPTH} levels: not a trainer state of ours")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"{jpath} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("state"), dict):
        raise CheckpointError(f"{jpath} is not a {FORMAT} trainer state")
    try:
        tensors = load_file(str(directory / TENSORS), device="cpu")
    except (OSError, SafetensorError, ValueError) as exc:
        raise CheckpointError(f"cannot read {directory / TENSORS}: {exc}") from None
    try:
        return _decode(doc["state"], tensors, str(jpath))
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{jpath} is malformed: {exc}") from None


# ------------------------------------------------------------------ save / verify
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
        trainer_state: nested dicts / lists / tuples of tensors, numpy number arrays and JSON
            values (optimizer state, RNG, config...); anything else raises :class:`CheckpointError`.
        keep: how many complete checkpoints to keep (older ones are deleted; >= 1).

    Returns:
        The final checkpoint directory.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    remove_orphaned_tmp(root)
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp-step_{step:08d}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        save_model(str(tmp / MODEL_DIR))
        write_trainer_state(tmp, trainer_state)
        files = {}
        for p in sorted(tmp.rglob("*")):
            if p.is_file():
                _fsync_file(p)
                files[str(p.relative_to(tmp))] = {"size": p.stat().st_size, "sha256": _sha256(p)}
        manifest = {"format": FORMAT, "step": int(step), "files": files}
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


def _legacy_message(path: Path) -> str:
    return (
        f"checkpoint {path} is in the old format ({LEGACY_STATE}, a Python pickle); loading a pickle can run "
        f"arbitrary code, so it is refused. If you wrote it yourself, convert it (torch's restricted loader, "
        f"no code runs): python -m optim.checkpoint convert {path}"
    )


def verify_checkpoint(path: str | os.PathLike) -> str | None:
    """Return ``None`` if the checkpoint matches its manifest, else the reason it does not."""
    path = Path(path)
    mpath = path / MANIFEST
    if not mpath.is_file():
        return f"{mpath} is missing (the write was cut off)"
    try:
        text = mpath.read_text()
        if not _json_depth_ok(text):
            return f"{mpath} nests too deep"
        manifest = json.loads(text)
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError("'files' is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{mpath} is unreadable: {exc}"
    if STATE not in files:
        if LEGACY_STATE in files:
            return None  # complete; load_trainer_state refuses it with instructions
        return f"{mpath} lists no {STATE}"
    root = path.resolve()
    for rel, meta in files.items():
        p = path / rel
        if not isinstance(meta, dict) or root not in (path / rel).resolve().parents:
            return f"{mpath} has a bad entry {rel!r}"
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
    if (root / MANIFEST).exists() or (root / STATE).exists() or (root / LEGACY_STATE).exists():
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
    """The trainer state of a verified checkpoint, read from safetensors + JSON (no pickle).

    Raises :class:`LegacyCheckpointError` for a pickle checkpoint of the old format (with the
    command that converts it) and :class:`CheckpointError` if the checkpoint is corrupt.
    """
    path = Path(path)
    if not (path / STATE).exists() and (path / LEGACY_STATE).exists():
        raise LegacyCheckpointError(_legacy_message(path))
    reason = verify_checkpoint(path)
    if reason is not None:
        raise CheckpointError(f"cannot resume from {path}: {reason}")
    return read_trainer_state(path)


# ------------------------------------------------------------------ leftovers and run directories
def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphaned_tmp(root: str | os.PathLike) -> list[Path]:
    """Delete ``.tmp-step_*-<pid>`` directories of writes that can no longer finish.

    A temporary directory is an orphan when its writer process is gone, or when a complete
    checkpoint of the same or a later step exists (its write was superseded). Returns the
    removed paths. A live writer of another process is left alone.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    complete = [int(p.name[5:]) for p in list_checkpoints(root) if (p / MANIFEST).is_file()]
    newest = max(complete, default=-1)
    removed = []
    for p in root.iterdir():
        m = _TMP.match(p.name)
        if not m or not p.is_dir():
            continue
        step, pid = int(m.group(1)), int(m.group(2))
        if pid == os.getpid():
            continue  # our own write in progress (or about to be redone by save_checkpoint)
        if not _pid_alive(pid) or step <= newest:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _run_contents(out: Path) -> list[str]:
    from optim.metrics import read_metrics

    found = []
    rows = read_metrics(out / "metrics.jsonl")
    if rows:
        found.append(f"metrics.jsonl with {len(rows)} rows (last step {rows[-1].get('step')})")
    ckpts = list_checkpoints(out / "checkpoints")
    if ckpts:
        found.append(f"checkpoints up to {ckpts[-1].name}")
    return found


def prepare_run_dir(out_dir: str | os.PathLike, *, resume: bool, overwrite: bool = False) -> None:
    """Make ``out_dir`` ready for a run; refuse to mix a new run into an old one.

    * ``resume``: orphaned temporary checkpoint directories are removed; nothing else changes.
    * a new run in a directory that already holds metrics or checkpoints raises
      :class:`RunDirNotEmptyError` naming what is there and the three ways on, unless
      ``overwrite``, which deletes ``metrics.jsonl``, ``checkpoints/``, ``tb/`` and ``curves.png``.
    """
    out = Path(out_dir)
    if resume:
        remove_orphaned_tmp(out / "checkpoints")
        return
    found = _run_contents(out)
    if not found:
        remove_orphaned_tmp(out / "checkpoints")
        return
    if not overwrite:
        raise RunDirNotEmptyError(
            f"run directory {out} already holds a run ({'; '.join(found)}). Continue it with --resume, "
            f"start over with --overwrite (deletes its metrics, checkpoints and curves), or choose another --out"
        )
    for name in ("checkpoints", "tb"):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("metrics.jsonl", "curves.png"):
        (out / name).unlink(missing_ok=True)
    print(f"--overwrite: cleared the previous run in {out} ({'; '.join(found)})", file=sys.stderr)


# ------------------------------------------------------------------ config on resume
#: Config fields a resumed run may change; the new value applies (with a printed note).
#: Every other field defines the experiment (algorithm, model, LoRA, group, rewards,
#: estimator, sampling) and must match unless the caller allows the change explicitly.
MUTABLE_ON_RESUME = frozenset({
    "steps", "out_dir", "device", "torch_threads", "lr", "value_lr", "weight_decay", "clip_eps",
    "entropy_coef", "vf_coef", "max_grad_norm", "update_epochs", "minibatch_size", "microbatch_size",
    "max_update_turns", "checkpoint_every", "keep_checkpoints", "eval_every", "eval_episodes",
    "eval_split", "progress", "tensorboard",
})


def compare_configs(
    saved: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    defaults: Mapping[str, Any] | None = None,
    allow: Iterable[str] = (),
) -> tuple[list[str], list[str]]:
    """Differences between a checkpoint's config and the config of the run that resumes it.

    Args:
        saved: the checkpoint's config (``TrainConfig.to_dict()`` at save time).
        new: the resuming run's config.
        defaults: field defaults; a field the checkpoint predates counts as its default.
        allow: fixed fields the caller accepts changing anyway (``"all"`` accepts every one).

    Returns:
        ``(applied, refused)``: one ``"field: old -> new"`` line per difference; ``applied``
        holds the mutable (or allowed) ones, ``refused`` the fixed ones.
    """
    allow = set(allow)
    defaults = defaults or {}
    applied, refused = [], []
    for key in sorted(set(saved) | set(new)):
        old = saved[key] if key in saved else defaults.get(key, "<absent>")
        cur = new[key] if key in new else "<absent>"
        if _same(old, cur):
            continue
        if key not in new:  # a field this version of the code no longer has: nothing to apply
            applied.append(f"{key}: {old!r} -> (not a field of this version; ignored)")
            continue
        line = f"{key}: {old!r} -> {cur!r}"
        if key in MUTABLE_ON_RESUME or key in allow or "all" in allow:
            applied.append(line)
        else:
            refused.append(line)
    return applied, refused


def _same(a: Any, b: Any) -> bool:
    # JSON turns tuples into lists; compare through the same encoding
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def config_mismatch_message(path: str | os.PathLike, refused: list[str],
                            saved: Mapping[str, Any] | None = None) -> str:
    """The error text for fixed fields that differ on resume, with the ways to proceed
    (``saved``: the checkpoint's config, to spell out the ``--set`` that restores it)."""
    fields = [line.split(":", 1)[0] for line in refused]
    lines = "\n  ".join(refused)
    saved = saved or {}
    restore = " ".join(
        f"--set {f}={saved[f] if isinstance(saved[f], str) else json.dumps(saved[f])}" for f in fields if f in saved
    ) or f"--set {fields[0]}=<checkpoint value>"
    return (
        f"cannot resume from {path}: these fields differ from the checkpoint's and define the experiment "
        f"(checkpoint -> now):\n  {lines}\n"
        f"Resume with the checkpoint's values ({restore}), start a new run in another --out, or accept the "
        f"change with --allow-config-change {' --allow-config-change '.join(fields)} "
        f"(Trainer.resume(allow_config_change=[...]))."
    )


# ------------------------------------------------------------------ legacy conversion
def _restricted_torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with numpy's array rebuilders allowed (RNG state holds a
    numpy array); torch's restricted unpickler refuses every other global, so no code runs."""
    safe: list[Any] = [np.ndarray, np.dtype]
    try:
        from numpy.core.multiarray import _reconstruct  # numpy < 2
    except ImportError:  # pragma: no cover
        _reconstruct = None
    try:
        from numpy._core.multiarray import _reconstruct as _reconstruct2  # numpy >= 2
        safe.append(_reconstruct2)
    except ImportError:  # pragma: no cover
        pass
    if _reconstruct is not None:
        safe.append(_reconstruct)
    safe.extend(type(np.dtype(t)) for t in ("uint32", "int64", "float64", "float32"))
    with torch.serialization.safe_globals(safe):
        return torch.load(path, map_location="cpu", weights_only=True)


def convert_legacy_checkpoint(path: str | os.PathLike) -> Path:
    """Rewrite an old ``trainer_state.pt`` checkpoint in place to safetensors + JSON.

    The pickle is read with torch's restricted unpickler (``weights_only=True``, numpy arrays
    allowed): a crafted file that tries to run code is refused with
    :class:`CheckpointError` instead of running. The manifest is rewritten; the pickle is removed.
    """
    path = Path(path)
    legacy = path / LEGACY_STATE
    if not legacy.is_file():
        raise CheckpointError(f"{legacy} does not exist: nothing to convert")
    reason = verify_checkpoint(path)
    if reason is not None:
        raise CheckpointError(f"cannot convert {path}: {reason}")
    try:
        state = _restricted_torch_load(legacy)
    except Exception as exc:  # torch raises UnpicklingError / RuntimeError with its own text
        raise CheckpointError(
            f"{legacy} holds objects that torch's restricted loader refuses, so it is not converted "
            f"(it may be crafted to run code): {str(exc).splitlines()[0][:300]}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{legacy} does not hold a trainer state dict")
    write_trainer_state(path, state)
    legacy.unlink()
    files = {}
    for p in sorted(path.rglob("*")):
        if p.is_file() and p.name != MANIFEST:
            files[str(p.relative_to(path))] = {"size": p.stat().st_size, "sha256": _sha256(p)}
    tmp = path / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "step": int(state.get("step", 0)), "files": files}, indent=1))
    os.replace(tmp, path / MANIFEST)
    return path


def _main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m optim.checkpoint",
                                     description="Convert old pickle checkpoints to safetensors + JSON.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="convert every old checkpoint under the given run/checkpoint directories")
    c.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    n = 0
    for p in map(Path, args.paths):
        targets = [p] if (p / LEGACY_STATE).exists() else [
            c for c in list_checkpoints(p / "checkpoints" if (p / "checkpoints").is_dir() else p)
            if (c / LEGACY_STATE).exists()
        ]
        if not targets:
            print(f"{p}: no old-format checkpoint found", file=sys.stderr)
        for t in targets:
            try:
                convert_legacy_checkpoint(t)
            except CheckpointError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(f"converted {t}")
            n += 1
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(_main())
