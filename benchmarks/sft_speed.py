"""SFT step and RL update time: full right-padded logits vs response-only logits (vs grouped batches).

The demo's warm start (:mod:`optim.demo`) clones the ALFWorld expert on the released
protocol's prompts, which run from about 160 to 480 tokens while a response is about 25.
Three ways of running the same SFT step (AdamW on the response-token cross-entropy):

- ``baseline``: right-padded rows, logits over every position (``optim.sft._response_logprobs``
  with ``left=False``: the layout of every release before this benchmark);
- ``response-only``: left-padded rows, logits only at the last ``max response + 1`` positions
  (``logits_to_keep``; the same loss and gradients, ``tests/optim/test_sft.py``);
- ``grouped``: response-only, on batches from ``train_sft(group_by_length=True)``'s grouping
  (each run of 50 batches sorted by length, then shuffled).

The RL update (``Trainer.update``, the demo's settings: 256 turns, minibatches of 64 in
micro-batches of 32, KL reference on) is timed the same way on the same turns with
``Trainer.left_pad`` off (``baseline``: right-padded rows, full logits) and on.

Fairness: one torch thread, the same model (each configuration steps its own copy), the
configurations timed back to back in a rotating order every repetition, and each drawing
its batches from the same examples with the same seed; medians over repetitions. Also
printed: the mean padded length of a batch. Prints a table, then one line of JSON.

    python benchmarks/sft_speed.py            # 120 games, 40 SFT steps and 4 updates per configuration
    python benchmarks/sft_speed.py --quick    # 40 games, 12 SFT steps, 2 updates (about a minute)
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="40 games, 12 SFT steps and 2 updates per configuration")
    ap.add_argument("--updates", type=int, default=4, help="timed RL updates per configuration")
    ap.add_argument("--games", type=int, default=120, help="expert games whose turns are the examples")
    ap.add_argument("--steps", type=int, default=40, help="timed steps per configuration")
    ap.add_argument("--batch", type=int, default=16, help="examples per step (the demo's)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args(argv)
    if args.quick:
        args.games, args.steps, args.updates = 40, 12, 2
    if min(args.games, args.steps, args.batch, args.updates) < 1:
        raise SystemExit("--games, --steps, --batch and --updates must be >= 1")

    import torch

    from optim.demo import DEMO_ENV, DemoModelConfig, DemoPlan, SearchingExpert, build_demo_model
    from optim.loss import masked_mean
    from optim.sft import _batch_order, _encode, _response_logprobs, collect_expert_examples

    torch.set_num_threads(args.threads)
    plan = DemoPlan()
    examples, _ = collect_expert_examples(DEMO_ENV, args.games, split="train", seed=0, env_kwargs=plan.model.env_kwargs,
                                          noise=plan.expert_noise, expert=SearchingExpert(),
                                          templates=plan.thought_templates)
    pm = build_demo_model(None, DemoModelConfig(), examples=examples)
    encoded = [_encode(pm, e) for e in examples]
    lengths = [len(p) + len(r) for p, r in encoded]
    print(f"{len(examples)} expert turns from {args.games} games; prompt + response {min(lengths)}-{max(lengths)} "
          f"tokens, mean {statistics.mean(lengths):.0f}", flush=True)

    def batches(grouped: bool):
        return _batch_order(len(examples), args.batch, random.Random(0), grouped, examples)

    configs = {
        "baseline": (functools.partial(_response_logprobs, left=False), batches(False)),
        "response-only": (_response_logprobs, batches(False)),
        "grouped": (_response_logprobs, batches(True)),
    }
    models = {name: copy.deepcopy(pm.model).train() for name in configs}
    opts = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in models.items()}
    times: dict[str, list[float]] = {name: [] for name in configs}
    padded: dict[str, list[int]] = {name: [] for name in configs}

    def one_step(name: str) -> None:
        fn, batches = configs[name]
        batch = [encoded[i] for i in next(batches)]
        model, opt = models[name], opts[name]
        t = time.perf_counter()
        logp, mask, _ = fn(model, batch, pm.pad_id, "cpu")
        loss = -masked_mean(logp, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times[name].append(time.perf_counter() - t)
        padded[name].append(max(len(p) + len(r) for p, r in batch))

    names = list(configs)
    for name in names:  # warm-up, not timed
        one_step(name)
        times[name].clear()
        padded[name].clear()
    try:
        from tqdm import tqdm

        reps = tqdm(range(args.steps), desc="sft steps", unit="rep", mininterval=5)
    except ImportError:
        reps = range(args.steps)
    for rep in reps:
        for k in range(len(names)):
            one_step(names[(rep + k) % len(names)])

    base = statistics.median(times["baseline"])
    print(f"\nSFT step, batch {args.batch}, {args.threads} torch thread(s), {args.steps} steps each (median)")
    print(f"{'config':14s} {'s/step':>8s} {'speed-up':>9s} {'padded length':>14s}")
    summary = {}
    for name in names:
        med = statistics.median(times[name])
        summary[name] = {"s_per_step": round(med, 4), "speedup": round(base / med, 2),
                         "padded_length": round(statistics.mean(padded[name]), 1)}
        print(f"{name:14s} {med:8.3f} {base / med:8.2f}x {statistics.mean(padded[name]):14.1f}")
    update = _time_updates(pm, encoded, args.updates, args.threads)
    print(f"\nRL update, 256 turns (minibatch 64, micro-batch 32, KL on), {args.updates} updates each (median)")
    print(f"{'config':14s} {'s/update':>9s} {'speed-up':>9s}")
    for name, sec in update.items():
        print(f"{name:14s} {sec:9.2f} {update['baseline'] / sec:8.2f}x")
    print(json.dumps({"benchmark": "sft_speed", "examples": len(examples), "batch": args.batch,
                      "threads": args.threads, "steps": args.steps, "results": summary,
                      "update": {k: {"s_per_update": round(v, 3), "speedup": round(update["baseline"] / v, 2)}
                                 for k, v in update.items()}}))
    return 0


def _time_updates(pm, encoded, updates: int, threads: int) -> dict[str, float]:
    """Median seconds of ``Trainer.update`` on the same 256 turns, right-padded vs left-padded."""
    import tempfile

    from optim.config import preset
    from optim.samples import TurnSample
    from optim.trainer import Trainer

    rng = random.Random(0)
    picked = [encoded[i] for i in rng.sample(range(len(encoded)), min(256, len(encoded)))]
    samples = [TurnSample(prompt_ids=list(p), response_ids=list(r), old_logprobs=[-1.0] * len(r),
                          forced_mask=[0] * len(r), advantage=rng.uniform(-1, 1)) for p, r in picked]
    times: dict[str, list[float]] = {"baseline": [], "response-only": []}
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {}
        for name in times:
            cfg = preset("gigpo", env="alfworld", out_dir=f"{tmp}/{name}", progress=False, tensorboard=False,
                         minibatch_size=64, microbatch_size=32, max_update_turns=256, kl_coef=0.05, lr=3e-4,
                         torch_threads=threads)
            tr = Trainer(cfg, model=type(pm)(copy.deepcopy(pm.model), pm.tokenizer))
            tr.left_pad = name == "response-only"
            trainers[name] = tr
        for rep in range(updates):
            for name in (list(times) if rep % 2 == 0 else list(times)[::-1]):
                t = time.perf_counter()
                trainers[name].update(copy.deepcopy(samples), rep)
                times[name].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


if __name__ == "__main__":
    sys.exit(main())
