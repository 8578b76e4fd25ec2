"""A few T2PO training steps on CUDA in bf16 with the tiny model: step time, peak memory.

    python benchmarks/cuda_smoke.py [--steps 4] [--env T2PO/ALFWorld-v0]

Runs the same steps on CPU first (the baseline, float32) when ``--cpu-baseline`` is given.
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(device: str, steps: int, env: str, algo: str) -> dict:
    import torch

    from optim.config import preset
    from optim.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = preset(algo, env_id=env, model="tiny", device=device, kl_coef=0.01, n_tasks=2, group_size=4, max_turns=4,
                     max_new_tokens=32, steps=steps, out_dir=tmp, progress=False, tensorboard=False,
                     checkpoint_every=0, lr=1e-4, entropy_coef=0.01)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        tr = Trainer(cfg)
        times, finite = [], True
        for _ in range(steps):
            t0 = time.perf_counter()
            m = tr.train_step()
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            finite &= all(v == v for k, v in m.items() if k.startswith("losses/"))
        out = {
            "algo": algo,
            "device": device,
            "dtype": cfg.resolved_dtype(),
            "steps": steps,
            "first_step_s": round(times[0], 3),
            "mean_step_s_after_first": round(sum(times[1:]) / max(len(times) - 1, 1), 3),
            "logprob_diff_max_last": m["debug/logprob_diff_max"],
            "grad_norm_last": m["losses/grad_norm"],
            "skipped_updates_last": m["losses/skipped_updates"],
            "losses_finite": bool(finite),
        }
        if device == "cuda":
            out["peak_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
            out["gpu"] = torch.cuda.get_device_name(0)
        return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--env", default="T2PO/ALFWorld-v0")
    ap.add_argument("--algo", default="t2po")
    ap.add_argument("--cpu-baseline", action="store_true")
    args = ap.parse_args()
    import torch

    results = []
    if args.cpu_baseline:
        results.append(run("cpu", args.steps, args.env, args.algo))
    if not torch.cuda.is_available():
        print("no CUDA device visible to torch: nothing to smoke-test on GPU")
    else:
        results.append(run("cuda", args.steps, args.env, args.algo))
        if args.algo != "ppo":
            results.append(run("cuda", 2, args.env, "ppo"))  # the value head on the GPU too
    print(f"{'device':8s} {'dtype':10s} {'1st step s':>10s} {'step s':>8s} {'peak MB':>8s} {'lp diff':>9s}")
    for r in results:
        print(f"{r['device']:8s} {r['dtype']:10s} {r['first_step_s']:10.3f} {r['mean_step_s_after_first']:8.3f} "
              f"{r.get('peak_mem_mb', float('nan')):8.1f} {r['logprob_diff_max_last']:9.2e}")
    print(json.dumps({"benchmark": "cuda_smoke", "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
