"""What the commands print: progress in logs, the thread choice (``optim.metrics``, ``optim.models``)."""

from __future__ import annotations

import io

import pytest

from optim.metrics import progress_bar
from optim.models import choose_torch_threads, free_cores


def test_progress_outside_a_terminal_is_whole_lines_not_redraws():
    stream = io.StringIO()  # not a TTY, like a log file
    bar = progress_bar(total=500, desc="sft", stream=stream, interval_s=3600)
    for _ in range(500):
        bar.set_postfix(loss="1.0", refresh=False)
        bar.update(1)
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    # the opening line and the final one; none of the 500 updates redraws within the interval
    assert 1 <= len(lines) <= 3, lines
    assert lines[-1].startswith("sft: 100%") and "500/500" in lines[-1]


def test_progress_lines_come_once_per_interval():
    stream = io.StringIO()
    bar = progress_bar(total=50, desc="t2po", stream=stream, interval_s=0)
    for _ in range(50):
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) > 10 and all(l.startswith("t2po:") for l in lines)


def test_thread_choice_follows_free_cores_and_the_override(monkeypatch):
    free, usable, load = free_cores()
    assert 1 <= free <= usable and load >= 0
    monkeypatch.delenv("T2PO_THREADS", raising=False)
    said: list[str] = []
    n = choose_torch_threads(said.append)
    assert n == free and said and said[0].startswith(f"torch threads: {n} (") and "usable cores" in said[0]
    monkeypatch.setenv("T2PO_THREADS", "3")
    assert choose_torch_threads() == 3
    monkeypatch.setenv("T2PO_THREADS", "two")
    with pytest.raises(ValueError, match="T2PO_THREADS"):
        choose_torch_threads()


def test_busy_cores_mean_fewer_threads(monkeypatch):
    import os

    import optim.models as models

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(models, "_cgroup_cpu_limit", lambda: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))  # only this process runs
    assert free_cores()[0] == 4
    monkeypatch.setattr(os, "getloadavg", lambda: (3.2, 1.0, 1.0))  # about 2 other busy threads
    assert free_cores()[0] == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (12.0, 1.0, 1.0))  # oversubscribed: one thread
    assert free_cores()[0] == 1
    monkeypatch.setattr(models, "_cgroup_cpu_limit", lambda: 2.0)  # a container quota of 2 CPUs
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert free_cores()[:2] == (2, 2)
