"""PPO vs GRPO vs GiGPO vs T2PO on ALFWorld, from the same warm start, same seeds, same budget.

Every algorithm trains the demo model (``optim.demo``) from the same SFT warm start for the
same number of steps with the same task seeds; only the estimator (and, for T2PO, TTI + TDS
in the rollout, released rules) differs.

``--settings presets`` (default): the released ALFWorld preset of each algorithm
(``optim.config.preset(algo, env="alfworld")``, see docs/presets.md) with only the demo's
model-scale overrides (4 tasks x group 8, 32 new tokens, lr 3e-4, ...); our two additions
(``negative_advantage_scale``, ``clip_invalid_advantages``) are off, as in the presets.
``--settings demo``: exactly the main job's training config (``optim.demo.demo_train_config``),
additions on. Figures per algorithm, mean over seeds:
final eval success and action validity (sampled with a fixed seed, fixed ``valid_seen``
games), turns per episode and response
tokens per turn (training rollouts, last 3 steps), max grad norm, wall time.

    python benchmarks/algorithms.py            # 3 seeds, 6 steps each
    python benchmarks/algorithms.py --quick    # 1 seed, 2 steps (a smoke run)
    python benchmarks/algorithms.py --quick --seeds 3   # 3 seeds, 2 steps
    python benchmarks/algorithms.py --settings demo     # the main job's settings (our additions on)

Prints a table, writes ``<out>/algorithms.png`` (training success curves), and ends with
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optim.config import TrainConfig  # noqa: E402
from optim.demo import DEMO_ENV, DemoPlan, demo_train_config, warm_start  # noqa: E402
from optim.metrics import plot_curves, read_metrics  # noqa: E402
from optim.trainer import Trainer, evaluate  # noqa: E402

ALGOS = ("ppo", "grpo", "gigpo", "t2po")
OUT = Path("runs/bench_algorithms")
#: Our additions to the estimators (on in the main job's config, off in the presets).
ADDITIONS = ("negative_advantage_scale", "clip_invalid_advantages")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 steps, 8 eval games, 1 seed unless --seeds is given")
    ap.add_argument("--seeds", type=int, default=None, help="seeds (default 3; 1 with --quick)")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--eval-episodes", type=int, default=140, help="valid_seen games 0..N-1, each once (140: all)")
    ap.add_argument("--algos", default=",".join(ALGOS))
    ap.add_argument("--settings", choices=("presets", "demo"), default="presets",
                    help="presets: released presets + model-scale overrides, our additions off; "
                         "demo: the main job's config, additions on (default: presets)")
    ap.add_argument("--out", default=None, help="default runs/bench_algorithms (presets) or "
                                                 "runs/bench_algorithms_demo (demo); the warm start is shared")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.eval_episodes = 2, 8
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    if args.seeds < 1:
        raise SystemExit("--seeds must be >= 1")
    algos = [a for a in args.algos.split(",") if a]
    out = Path(args.out) if args.out else OUT if args.settings == "presets" else OUT.with_name(OUT.name + "_demo")
    # Random SFT batches, as in the recorded tables (the main job groups them by length to fit
    # its budget; this benchmark has no budget).
    plan = DemoPlan(sft_group_by_length=False)
    # One warm start for both settings (it depends only on the plan and seed, and is cached).
    ws = warm_start((OUT if args.out is None else out) / "warmstart", plan, seed=0)
    off = TrainConfig()
    additions = {} if args.settings == "demo" else {k: getattr(off, k) for k in ADDITIONS}
    ek = plan.model.env_kwargs

    def run_eval(pm, max_new_tokens: int) -> dict[str, float]:
        return evaluate(pm, DEMO_ENV, split="valid_seen", episodes=args.eval_episodes, env_kwargs=ek,
                        max_new_tokens=max_new_tokens, temperature=plan.eval_temperature,
                        batch=min(args.eval_episodes, 70), reset_options=plan.eval_reset_options)

    from optim.models import load_policy_model

    ev0 = run_eval(load_policy_model(str(ws)), 32)
    print(f"[warm start] eval success {ev0['eval/success']:.3f}, action valid {ev0['eval/action_valid']:.3f}", flush=True)
    results: dict[str, dict[str, list[float]]] = {a: {} for a in algos}
    curves: dict[str, list[dict]] = {}
    for seed in range(args.seeds):
        for algo in algos:
            run_dir = out / f"{algo}_s{seed}"
            cfg = demo_train_config(algo, str(ws), str(run_dir), seed, steps=args.steps, checkpoint_every=0,
                                    tensorboard=False, **additions)
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)
            t0 = time.perf_counter()
            tr = Trainer(cfg)
            hist = [tr.train_step() for _ in range(args.steps)]
            wall = time.perf_counter() - t0
            ev = run_eval(tr.pm, cfg.max_new_tokens)
            last = hist[-3:]
            r = results[algo]
            for k, v in {
                "success": ev["eval/success"],
                "action_valid": ev["eval/action_valid"],
                "train_success_last3": float(np.mean([h["charts/success"] for h in last])),
                "turns": float(np.mean([h["charts/turns"] for h in last])),
                "tokens_per_turn": float(np.mean([h["charts/response_tokens"] for h in last])),
                "max_grad_norm": float(np.nanmax([h["losses/grad_norm"] for h in hist])),
                "tti_fire_rate": float(np.mean([h.get("hesitation/tti_fire_rate", 0.0) for h in hist])),
                "tds_resample_rate": float(np.mean([h.get("hesitation/tds_resample_rate", 0.0) for h in hist])),
                "wall_s": wall,
            }.items():
                r.setdefault(k, []).append(v)
            curves[f"{algo} s{seed}"] = read_metrics(run_dir / "metrics.jsonl")
            print(f"[{algo} seed {seed}] eval success {ev['eval/success']:.3f}, {wall:.0f} s", flush=True)
    plot_curves(curves, out / "algorithms.png", keys=("charts/success", "charts/turns", "charts/response_tokens",
                                                        "losses/grad_norm", "hesitation/tti_fire_rate"))
    cols = ["success", "action_valid", "train_success_last3", "turns", "tokens_per_turn", "max_grad_norm",
            "tti_fire_rate", "tds_resample_rate", "wall_s"]
    print(f"\nALFWorld demo ({args.settings} settings), {args.seeds} seed(s) x {args.steps} steps, "
          f"eval {args.eval_episodes} valid_seen games (mean +- std)")
    print(f"warm start: eval success {ev0['eval/success']:.3f}, action valid {ev0['eval/action_valid']:.3f}")
    print(f"{'algo':6s} " + " ".join(f"{c:>20s}" for c in cols))
    summary = {}
    for algo in algos:
        r = results[algo]
        cells = []
        summary[algo] = {}
        for c in cols:
            m, s = float(np.mean(r[c])), float(np.std(r[c]))
            summary[algo][c] = round(m, 4)
            summary[algo][c + "_std"] = round(s, 4)
            cells.append(f"{m:12.3f} +- {s:5.3f}")
        print(f"{algo:6s} " + " ".join(f"{x:>20s}" for x in cells))
    print(f"curves: {out / 'algorithms.png'}")
    print(json.dumps({"benchmark": "algorithms", "settings": args.settings, "seeds": args.seeds, "steps": args.steps,
                      "eval_episodes": args.eval_episodes,
                      "warm_start": {"success": round(ev0["eval/success"], 4),
                                     "action_valid": round(ev0["eval/action_valid"], 4)},
                      "results": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
