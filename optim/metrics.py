"""Metrics: one JSON line per step, TensorBoard event files, PNG curves.

``metrics.jsonl`` holds ``{"step": s, "<namespace>/<name>": value, ...}`` per line, with the
CleanRL-style namespaces (``charts/success``, ``losses/grad_norm``, ``hesitation/tti_fire_rate``).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Iterable

__all__ = ["MetricsLogger", "read_metrics", "plot_curves", "progress_bar", "DEFAULT_CURVES", "LOG_INTERVAL_S"]

#: Seconds between two progress lines when the output is not a terminal (a log file, CI).
#: ``T2PO_PROGRESS_INTERVAL`` overrides it.
LOG_INTERVAL_S = 15.0

#: The curves drawn by default, one panel each.
DEFAULT_CURVES = (
    "charts/success",
    "eval/success",
    "charts/action_valid",
    "charts/format_valid",
    "charts/turns",
    "charts/response_tokens",
    "charts/think_tokens",
    "hesitation/tti_fire_rate",
    "hesitation/tds_resample_rate",
    "losses/grad_norm",
    "losses/kl",
    "losses/entropy",
)


class _LineStream:
    """A file-like object that turns tqdm's carriage-return redraws into whole lines.

    In a terminal tqdm redraws one line with ``\r``; in a log file every redraw stays,
    so a 10-minute run left hundreds of KB of half-lines. Here each redraw becomes one
    ``\n``-terminated line, and :func:`progress_bar` makes the redraws rare.
    """

    def __init__(self, stream: Any):
        self.stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(total: int | None = None, desc: str = "", unit: str = "step", *, initial: int = 0,
                 stream: Any = None, interval_s: float | None = None) -> Any:
    """A tqdm bar that suits where the output goes.

    In a terminal: the usual redrawn bar. Anywhere else (a log file, a pipe, CI): one
    plain line at most every ``interval_s`` seconds (default :data:`LOG_INTERVAL_S`, or
    ``$T2PO_PROGRESS_INTERVAL``), plus the final one.
    """
    import os
    import sys

    from tqdm import tqdm

    stream = stream if stream is not None else sys.stderr
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=stream)
    if interval_s is None:
        interval_s = float(os.environ.get("T2PO_PROGRESS_INTERVAL", LOG_INTERVAL_S))
    return tqdm(total=total, desc=desc, unit=unit, initial=initial, file=_LineStream(stream),
                mininterval=interval_s, maxinterval=max(interval_s, 10.0), ncols=110, ascii=True)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # "nan" / "inf": valid JSON, and visible
    return v


class MetricsLogger:
    """Append-only metrics log for one run directory.

    Args:
        out_dir: the run directory (``metrics.jsonl``, ``tb/``, ``curves.png``).
        tensorboard: also write TensorBoard events (skipped with a warning when the
            ``tensorboard`` package is missing).
    """

    def __init__(self, out_dir: str | Path, tensorboard: bool = True):
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / "metrics.jsonl"
        self._tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.out / "tb"))
            except Exception:  # tensorboard not installed
                warnings.warn("tensorboard is not installed: metrics go to metrics.jsonl only (pip install tensorboard)")

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"step": int(step), **{k: _clean(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._tb is not None:
            for k, v in metrics.items():
                if isinstance(v, (int, float)) and math.isfinite(v):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()

    def truncate(self, step: int) -> None:
        """Drop rows after ``step`` (a resumed run rewrites them)."""
        if not self.path.exists():
            return
        rows = [r for r in read_metrics(self.path) if r["step"] <= step]
        tmp = self.path.with_suffix(".jsonl.tmp")
        with open(tmp, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        tmp.replace(self.path)

    def plot(self, keys: Iterable[str] = DEFAULT_CURVES) -> Path | None:
        return plot_curves({"run": read_metrics(self.path)}, self.out / "curves.png", keys)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``metrics.jsonl`` (a torn last line is ignored)."""
    rows = []
    p = Path(path)
    if not p.exists():
        return rows
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def plot_curves(runs: dict[str, list[dict[str, Any]]], path: str | Path, keys: Iterable[str] = DEFAULT_CURVES) -> Path | None:
    """Draw every key present in any run as one panel; runs are overlaid. Returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in keys if any(isinstance(r.get(k), (int, float)) for rows in runs.values() for r in rows)]
    if not keys:
        return None
    cols = min(3, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 2.8 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for name, rows in runs.items():
            pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, label=name, marker="o" if len(xs) < 3 else None)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    if len(runs) > 1:
        axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    return path
