"""The trainer on two CPU processes over gloo (optim/distributed.py) against one process.

Each test spawns 2 ranks with ``torch.multiprocessing`` and a file rendezvous; collectives
time out after 180 s and the spawn after 420 s (generous: a loaded CI box can delay one rank's
start by tens of seconds), so a hang fails the test instead of blocking.
The samples of an update come from one rollout made in the test process; rank r gets a
contiguous block of them (rank-major order, as the trainer's global plan assumes).
"""

from __future__ import annotations

import math
import os
import pickle
import time

import pytest
import torch

from optim.distributed import DistContext
from optim.trainer import Trainer, build_samples

from optim_toy import ToyPolicyModel, toy_config

WORLD = 2
SPAWN_TIMEOUT_S = 420


def params(m: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in m.parameters()])


def _worker(rank: int, world: int, tmp: str, job: str, kw: dict) -> None:
    torch.set_num_threads(1)
    ctx = DistContext.init(rank, world, f"file://{tmp}/rdzv", strategy=kw.get("strategy", "ddp"), timeout_s=180)
    try:
        result = JOBS[job](ctx, tmp, **kw)
    finally:
        ctx.close()
    with open(os.path.join(tmp, f"result{rank}.pkl"), "wb") as f:
        pickle.dump(result, f)


def run_ranks(job: str, tmp_path, **kw) -> list:
    """Run ``JOBS[job]`` on 2 ranks; fail (not block) if they do not finish in time."""
    import torch.multiprocessing as mp

    procs = mp.start_processes(_worker, args=(WORLD, str(tmp_path), job, kw), nprocs=WORLD, join=False,
                               start_method="spawn")
    try:
        deadline = time.monotonic() + SPAWN_TIMEOUT_S
        # join() returns when one more rank exits (True once all did) or at the timeout
        while not procs.join(timeout=max(deadline - time.monotonic(), 0.01)):
            if time.monotonic() >= deadline:
                pytest.fail(f"ranks of job {job!r} did not finish in {SPAWN_TIMEOUT_S} s (hang)")
    finally:
        for p in procs.processes:
            if p.is_alive():
                p.kill()
    out = []
    for r in range(WORLD):
        with open(tmp_path / f"result{r}.pkl", "rb") as f:
            out.append(pickle.load(f))
    return out


# ---------------------------------------------------------------- jobs (run inside each rank)
def _cfg(tmp: str, name: str, **kw):
    import pathlib

    return toy_config(pathlib.Path(tmp) / name, kw.pop("algo", "ppo"), **kw)


def job_update(ctx: DistContext, tmp: str, *, cases, cfg_kw, strategy="ddp", model="toy"):
    """One update per case ``(split, nan_rank)`` of the shared samples; parameters and metrics after each."""
    with open(os.path.join(tmp, "samples.pkl"), "rb") as f:
        samples = pickle.load(f)
    out = []
    for k, (split, nan_rank) in enumerate(cases):
        lo = sum(split[: ctx.rank])
        tr = Trainer(_cfg(tmp, f"r{ctx.rank}-{k}", **cfg_kw), model=_model(model), dist=ctx)
        if nan_rank == ctx.rank:
            tr.loss_hook = lambda loss: loss * float("nan")
        m = tr.update(samples[lo : lo + split[ctx.rank]], step=0)
        out.append((params(tr.model), m))
    return out


def job_resume(ctx: DistContext, tmp: str, *, cfg_kw, strategy="ddp", model="toy"):
    """Run A: 3 steps. Run B: 2 steps (checkpoint), a fresh trainer resumes and does step 3."""
    a = Trainer(_cfg(tmp, "a", steps=2, checkpoint_every=2, **cfg_kw), model=_model(model), dist=ctx)
    hist = a.train()
    at2 = params(a.model)
    a.cfg.steps = 3
    hist += a.train()
    b = Trainer(_cfg(tmp, "b", steps=2, checkpoint_every=2, **cfg_kw), model=_model(model), dist=ctx)
    b.train()
    b2 = Trainer(_cfg(tmp, "b", steps=3, checkpoint_every=2, **cfg_kw), model=_model(model, seed=123), dist=ctx)
    b2.resume()
    step = b2.step
    m = b2.train_step()
    return {"a_hist": hist, "a_at2": at2, "a_final": params(a.model), "b_step": step, "b_metrics": m,
            "b_final": params(b2.model)}


def _model(kind: str, seed: int = 0):
    if kind == "toy":
        return ToyPolicyModel(seed)
    from optim.models import load_policy_model

    return load_policy_model("tiny", seed=seed)


JOBS = {"update": job_update, "resume": job_resume}


# ---------------------------------------------------------------- tests
def _shared_samples(tmp_path, cfg_kw, model="toy"):
    tr = Trainer(toy_config(tmp_path / "single", cfg_kw.get("algo", "ppo"),
                            **{k: v for k, v in cfg_kw.items() if k != "algo"}), model=_model(model))
    rollout = tr.collect(0)
    values = tr.critic_values(rollout) if tr.cfg.algo == "ppo" else None
    samples = build_samples(rollout, tr.cfg, values)
    with open(tmp_path / "samples.pkl", "wb") as f:
        pickle.dump(samples, f)
    return samples


def _single_update(tmp_path, name, cfg_kw, samples, nan=False, model="toy"):
    tr = Trainer(toy_config(tmp_path / name, cfg_kw.get("algo", "ppo"),
                            **{k: v for k, v in cfg_kw.items() if k != "algo"}), model=_model(model))
    if nan:
        tr.loss_hook = lambda loss: loss * float("nan")
    m = tr.update(samples, step=0)
    return params(tr.model), m


# lr 1e-3: Adam divides by sqrt(v), so on its first steps a gradient entry near 0 moves its weight by
# up to lr whatever its size; float32 summation order (2 ranks vs 1) then shows at ~1e-4 * lr.
UPDATE_KW = dict(algo="ppo", n_tasks=4, group_size=2, minibatch_size=4, microbatch_size=2, update_epochs=2,
                 max_update_turns=15, lr=1e-3)


@pytest.fixture(scope="module")
def ddp_updates(tmp_path_factory):
    """One spawn for all update cases: single-process reference, 2-rank results per case."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    samples = _shared_samples(tmp_path, UPDATE_KW)
    n = len(samples)
    # rank 1 holds one turn (it pads most minibatches), none at all, half; then a NaN on rank 1 only
    cases = [((n - 1, 1), None), ((n, 0), None), ((n // 2, n - n // 2), None), ((n // 2, n - n // 2), 1)]
    ranks = run_ranks("update", tmp_path, cases=cases, cfg_kw=UPDATE_KW)
    return tmp_path, samples, cases, ranks


def test_ddp_update_equals_single_process_even_with_uneven_and_empty_ranks(ddp_updates):
    tmp_path, samples, cases, ranks = ddp_updates
    assert len(samples) >= 8
    want, want_m = _single_update(tmp_path, "one", UPDATE_KW, samples)
    before = params(ToyPolicyModel(0).model)
    assert float((want - before).abs().max()) > 1e-3  # the update moved the weights
    for k, (split, nan_rank) in enumerate(cases):
        if nan_rank is not None:
            continue
        p0, m0 = ranks[0][k]
        p1, m1 = ranks[1][k]
        assert torch.equal(p0, p1), f"split {split}: ranks disagree"
        assert float((p0 - want).abs().max()) <= 1e-6, f"split {split}: {float((p0 - want).abs().max())}"
        assert m0["losses/updates"] == want_m["losses/updates"] == 8 and m0["charts/update_turns"] == 15
        assert m0["losses/grad_norm"] == pytest.approx(want_m["losses/grad_norm"], rel=1e-5)


def test_nan_on_one_rank_skips_the_update_on_both(ddp_updates):
    _, _, cases, ranks = ddp_updates
    before = params(ToyPolicyModel(0).model)
    k = next(i for i, (_, nan_rank) in enumerate(cases) if nan_rank == 1)
    for p, m in (ranks[0][k], ranks[1][k]):
        assert m["losses/updates"] == 0 and m["losses/skipped_updates"] == 8
        assert torch.equal(p, before)


def test_two_ranks_checkpoint_and_resume_exactly_and_resume_on_one_process(tmp_path):
    kw = dict(algo="gigpo", n_tasks=2, group_size=2, minibatch_size=4, microbatch_size=2)
    r0, r1 = run_ranks("resume", tmp_path, cfg_kw=kw)
    assert torch.equal(r0["a_final"], r1["a_final"])  # replicas stay equal
    assert r0["b_step"] == 2
    skip = ("time/", "charts/SPS")
    for k, v in r0["a_hist"][2].items():
        if not k.startswith(skip) and isinstance(v, float) and math.isfinite(v):
            assert r0["b_metrics"][k] == pytest.approx(v, rel=1e-6, abs=1e-7), k
    assert torch.equal(r0["a_final"], r0["b_final"]) and torch.equal(r1["b_final"], r0["b_final"])
    # only rank 0 wrote: one metrics file, one checkpoint tree per run
    run_a = tmp_path / "a" / "run"
    assert len(run_a.joinpath("metrics.jsonl").read_text().splitlines()) == 3
    # the 2-rank checkpoint resumes on one process (any world size): same weights, step and optimizer
    one = Trainer(toy_config(tmp_path / "a", "gigpo", steps=3, checkpoint_every=2, **{k: v for k, v in kw.items()
                                                                                      if k != "algo"}),
                  model=ToyPolicyModel(7))
    one.resume(run_a / "checkpoints" / "step_00000002")
    assert one.step == 2 and torch.equal(params(one.model), r0["a_at2"])
    assert len(one.optimizer.state) > 0
    m = one.train_step()  # and trains on
    assert math.isfinite(m["losses/grad_norm"])


# ---------------------------------------------------------------- FSDP2 on a CPU gloo mesh
def _full_params(tr: Trainer) -> torch.Tensor:
    """Unsharded parameters (FSDP2 DTensors gathered), in ``named_parameters`` order."""
    return torch.cat([(p.full_tensor() if hasattr(p, "full_tensor") else p).detach().flatten().clone()
                      for p in tr.model.parameters()])


def job_fsdp(ctx: DistContext, tmp: str, *, split, cfg_kw, strategy="fsdp", model="tiny"):
    """FSDP2 on the tiny Qwen2 (one ``fully_shard`` per decoder layer): one update on the shared
    samples, a checkpoint of it, a fresh sharded trainer resuming it, one more step."""
    with open(os.path.join(tmp, "samples.pkl"), "rb") as f:
        samples = pickle.load(f)
    lo = sum(split[: ctx.rank])
    tr = Trainer(_cfg(tmp, "fsdp", **cfg_kw), model=_model(model), dist=ctx)
    from torch.distributed.fsdp import FSDPModule

    n_sharded = sum(isinstance(m, FSDPModule) for m in tr.model.modules())
    m = tr.update(samples[lo : lo + split[ctx.rank]], step=0)
    after = _full_params(tr)
    tr.step = 1
    path = tr.save()
    fresh = Trainer(_cfg(tmp, "fsdp", **cfg_kw), model=_model(model, seed=5), dist=ctx)
    fresh.resume(path)
    resumed = _full_params(fresh)
    step_m = fresh.train_step()  # a sharded rollout (full weights held locally) + update
    return {"after": after, "metrics": m, "resumed": resumed, "n_sharded": n_sharded, "path": str(path),
            "step_metrics": step_m, "final": _full_params(fresh)}


JOBS["fsdp"] = job_fsdp

# lr 1e-4 (see UPDATE_KW): FSDP2's reduce-scatter sums in another order than DDP's all-reduce, and
# at lr 1e-3 that float32 noise, amplified by Adam's first steps, reached 1.9e-6 on the tiny model.
FSDP_KW = dict(algo="grpo", n_tasks=2, group_size=2, minibatch_size=4, microbatch_size=2, lr=1e-4, model="tiny",
               max_new_tokens=8)


def test_fsdp2_on_a_cpu_gloo_mesh_matches_single_process_and_checkpoints_full_weights(tmp_path):
    pytest.importorskip("transformers")
    samples = _shared_samples(tmp_path, FSDP_KW, model="tiny")
    n = len(samples)
    want, want_m = _single_update(tmp_path, "one", FSDP_KW, samples, model="tiny")
    r0, r1 = run_ranks("fsdp", tmp_path, split=(n - 1, 1), cfg_kw=FSDP_KW, strategy="fsdp", model="tiny")
    assert r0["n_sharded"] >= 3  # 2 decoder layers + the root
    before = params(_model("tiny").model)
    assert float((want - before).abs().max()) > 5e-5  # the update moved the weights
    assert torch.equal(r0["after"], r1["after"])
    assert float((r0["after"] - want).abs().max()) <= 1e-6
    assert r0["metrics"]["losses/updates"] == want_m["losses/updates"]
    assert torch.equal(r0["resumed"], r0["after"]) and torch.equal(r0["final"], r1["final"])
    assert math.isfinite(r0["step_metrics"]["losses/grad_norm"])
    # the sharded run's checkpoint is a plain full checkpoint: one process resumes it
    one = Trainer(toy_config(tmp_path / "one-resume", "grpo", **{k: v for k, v in FSDP_KW.items() if k != "algo"}),
                  model=_model("tiny", seed=9))
    one.resume(r0["path"])
    assert torch.equal(params(one.model), r0["after"]) and len(one.optimizer.state) > 0


# ---------------------------------------------------------------- launcher and rank facts (no processes)
def test_nproc_relaunches_under_torchrun_without_the_flag(monkeypatch):
    import subprocess

    from optim.distributed import relaunch_with_torchrun

    calls = []
    monkeypatch.setattr(subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    argv = ["train", "--env", "T2PO/ALFWorld-v0", "--nproc", "2", "--steps", "3", "--nproc=2"]
    assert relaunch_with_torchrun(2, argv) == 0
    cmd = calls[0]
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    assert cmd[5:] == ["-m", "optim.cli", "train", "--env", "T2PO/ALFWorld-v0", "--steps", "3"]
    with pytest.raises(SystemExit, match="--nproc needs --env"):
        relaunch_with_torchrun(2, ["train"], has_env=False)
    with pytest.raises(SystemExit, match=">= 1"):
        relaunch_with_torchrun(0, argv)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(SystemExit, match="inside a torchrun"):
        relaunch_with_torchrun(2, argv)


def test_task_blocks_and_rank_seeds():
    blocks = [DistContext(r, 3).task_slice(8) for r in range(3)]
    assert [(b.start, b.stop) for b in blocks] == [(0, 3), (3, 6), (6, 8)]  # whole groups, contiguous
    with pytest.raises(ValueError, match="n_tasks=1 < world_size=2"):
        DistContext(0, 2).task_slice(1)
    from optim.trainer import _step_seed

    assert DistContext(0, 2).step_seed(7, 3, 1) == _step_seed(7, 3, 1)  # rank 0: the single-process seed
    assert len({DistContext(r, 4).step_seed(7, 3, 1) for r in range(4)}) == 4
    with pytest.raises(ValueError, match="strategy"):
        DistContext(0, 1, strategy="zero3")
