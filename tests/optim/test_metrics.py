"""Metrics: JSONL rows, TensorBoard events, PNG curves, truncation on resume."""

import json
import math

import pytest

from optim.metrics import MetricsLogger, plot_curves, read_metrics


def test_jsonl_tensorboard_png_and_truncate(tmp_path):
    tb = pytest.importorskip("torch.utils.tensorboard")
    log = MetricsLogger(tmp_path, tensorboard=True)
    for s in range(1, 4):
        log.log(s, {"charts/success": s / 4, "losses/grad_norm": float("nan") if s == 2 else 1.0})
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[1]["losses/grad_norm"] == "nan"
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    png = log.plot()
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log.truncate(2)
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2]


def test_torn_last_line_is_ignored(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text(json.dumps({"step": 1, "charts/success": 0.5}) + "\n" + '{"step": 2, "charts/succ')
    assert read_metrics(p) == [{"step": 1, "charts/success": 0.5}]
    assert plot_curves({"a": read_metrics(p)}, tmp_path / "c.png", keys=("nothing/here",)) is None
