"""Data-parallel scaling on CPU: T2PO steps/s with 1 and 2 processes on the same total batch.

Usage::

    python benchmarks/scaling.py [--quick] [--steps N] [--env T2PO/ALFWorld-v0]

Each world size runs in processes spawned over gloo (one spawn per world size). First the update
check: the 1-process run collects one rollout, and its turns are fed to a 1-process and a 2-process
update (rank 0 gets the first half); the largest parameter difference is reported. Then the tiny
Qwen2 trains ``--steps`` T2PO steps (rollout + update) on the same ``n_tasks x group_size`` episodes
per step (the 2-rank run splits the groups between ranks); steps/s is measured inside the ranks
after one warm-up step, so process start-up and imports are not counted.

On a 2-core machine expect little gain: the point is that it runs and agrees. The last line is
JSON: ``world_sizes``, ``steps_per_s`` (one per world size), ``max_param_diff``,
``ddp_matches_single`` (``max_param_diff <= 1e-6``), plus the settings.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOL = 1e-6


def _cfg(out: str, args: argparse.Namespace, **kw):
    from optim.config import preset

    base = dict(
        env_id=args.env, model="tiny", n_tasks=args.n_tasks, group_size=args.group_size, max_turns=args.max_turns,
        max_new_tokens=args.max_new_tokens, steps=10**6, out_dir=out, progress=False, tensorboard=False,
        checkpoint_every=0, minibatch_size=8, microbatch_size=4, lr=1e-4, torch_threads=1,
        tti=True, tds=False,
    )
    if not args.env.startswith("T2PO/ALFWorld"):
        base.update(train_split=None, eval_split=None)
    base.update(kw)
    return preset("t2po", **base)


def _worker(rank: int, world: int, tmp: str, args: argparse.Namespace) -> None:
    """One world size: the update check on the shared turns, then the timed steps."""
    from optim.distributed import DistContext
    from optim.trainer import Trainer, build_samples

    torch.set_num_threads(1)
    ctx = DistContext.init(rank, world, f"file://{tmp}/rdzv-{world}", timeout_s=600)
    try:
        tr = Trainer(_cfg(f"{tmp}/run-{world}", args), dist=ctx)
        if world == 1:  # the one-process run makes the turns both update checks use
            samples = build_samples(tr.collect(0), tr.cfg)
            with open(f"{tmp}/samples.pkl", "wb") as f:
                pickle.dump(samples, f)
        else:
            with open(f"{tmp}/samples.pkl", "rb") as f:
                samples = pickle.load(f)
        n = len(samples)
        split = [n] if world == 1 else [n // 2, n - n // 2]  # rank-major halves
        lo = sum(split[:rank])
        tr.update(samples[lo : lo + split[rank]], step=0)
        params = torch.cat([p.detach().flatten().clone() for p in tr.model.parameters()])
        tr.train_step()  # warm-up (first env resets, lazy imports)
        ctx.barrier()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            tr.train_step()
        ctx.barrier()
        result = {"params": params, "steps_per_s": args.steps / (time.perf_counter() - t0), "turns": n}
    finally:
        ctx.close()
    with open(f"{tmp}/result-{world}-{rank}.pkl", "wb") as f:
        pickle.dump(result, f)


def _spawn(world: int, tmp: str, args: argparse.Namespace, timeout_s: float) -> list[dict]:
    import torch.multiprocessing as mp

    procs = mp.start_processes(_worker, args=(world, tmp, args), nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout_s
    try:
        # join() returns when one more rank exits (True once all did) or at the timeout
        while not procs.join(timeout=max(deadline - time.monotonic(), 0.01)):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{world} processes did not finish in {timeout_s:.0f} s")
    finally:
        for p in procs.processes:
            if p.is_alive():
                p.kill()
    out = []
    for r in range(world):
        with open(f"{tmp}/result-{world}-{r}.pkl", "rb") as f:
            out.append(pickle.load(f))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 timed step, short episodes (under 4 min)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per world size (default 5; quick 1)")
    ap.add_argument("--env", default="T2PO/ALFWorld-v0")
    ap.add_argument("--n-tasks", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=2)
    ap.add_argument("--max-turns", type=int, default=None)
    ap.add_argument("--max-new-tokens", type=int, default=None)
    ap.add_argument("--timeout-s", type=float, default=900.0, help="per spawned job")
    args = ap.parse_args(argv)
    args.steps = args.steps or (1 if args.quick else 5)
    args.max_turns = args.max_turns or (3 if args.quick else 6)
    args.max_new_tokens = args.max_new_tokens or (16 if args.quick else 32)
    if args.n_tasks < 2:
        ap.error("--n-tasks must be >= 2 (each of the 2 ranks owns whole task groups)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from tqdm.auto import tqdm

    with tempfile.TemporaryDirectory(prefix="t2po-scaling-") as tmp:
        res = {}
        for world in tqdm((1, 2), desc="scaling", unit="world size"):
            res[world] = _spawn(world, tmp, args, args.timeout_s)
    one = res[1][0]["params"]
    diff = max(float((r["params"] - one).abs().max()) for r in res[2])
    sps = [round(min(r["steps_per_s"] for r in res[w]), 4) for w in (1, 2)]
    out = {
        "world_sizes": [1, 2],
        "steps_per_s": sps,
        "speedup": round(sps[1] / sps[0], 3) if sps[0] > 0 else None,
        "max_param_diff": diff,
        "ddp_matches_single": diff <= TOL,
        "update_turns": res[1][0]["turns"],
        "env": args.env,
        "model": "tiny",
        "n_tasks": args.n_tasks,
        "group_size": args.group_size,
        "max_turns": args.max_turns,
        "max_new_tokens": args.max_new_tokens,
        "timed_steps": args.steps,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
