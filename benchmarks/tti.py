"""TTI overhead and savings: the same prompts, model and seeds decoded with TTI off and on.

Three configurations, interleaved and repeated (median wall time each):

- ``baseline``: HFPolicy without any signal or controller;
- ``signal+rule``: the paper signal and TTI's window rule computed every step, with a
  threshold that never fires, so it emits exactly the baseline's tokens: the ratio of
  time per token is the pure cost of TTI's bookkeeping (``overhead_ratio``);
- ``tti``: TTI with its default rule, on a tiny model first trained for a few steps to
  ramble (long repetitive thoughts), which gives ``think_tokens_saved_frac``.

Fairness: one torch thread (stable on shared cores), the same prompts and seed for every
configuration, the order of the three configurations rotated every repetition, and the
reported ``overhead_ratio`` is the median over repetitions of the paired ratio
(signal+rule / baseline, timed back to back so that both see the same machine load);
``overhead_ratio_of_medians`` is the ratio of the two medians. ``same_tokens_when_not_firing``
checks that the never-firing run emitted exactly the baseline's tokens.

Prints a table, then a last line of JSON. ``--quick`` runs in well under 40 s on 2 CPU cores.

Measured (``--quick``, batch 8, 1 torch thread, 31 repeats, 2-core development machine,
2026-11-27): ``overhead_ratio`` 1.040-1.047 over seven runs with numba installed (the
per-step signal and rule in compiled kernels, :mod:`t2po_gym._fused`), against
1.12 on the numpy path (``T2PO_NO_NUMBA=1``) in the same session. What is left is fixed
per-step cost: the SIMD row sort behind the top-j confidence (~7-10 us for [8, 512]
once the forward pass has run), the two kernel calls (~5 us) and their Python glue,
against a decode step of ~0.8 ms for this 2-layer, hidden-64 model. It does not grow
with the model, so on any real model (steps of 10 ms and more) it is well under 1%.
Earlier, numpy-only figures: 1.07-1.11 on a quiet 16-core CPU, 1.07 with ``--device
cuda`` (H200).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

# measure the checkout this script lives in, not an installed copy of the package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from t2po_gym.policies.base import SamplingConfig
from t2po_gym.policies.hf import HFPolicy
from t2po_gym.policies.tiny import build_tiny_model
from t2po_gym import _fused
from t2po_gym.wrappers.tti import ThinkingIntervention, TTIConfig

RAMBLE = "<think> hmm, wait, let me think again. maybe the apple is in the fridge. " * 12
PROMPT_TASKS = [
    "Your task is to: put a clean apple in fridge.",
    "Your task is to: heat some egg and put it in countertop.",
    "Your task is to: look at bowl under the desklamp.",
    "i need a long lasting bottle of perfume, price lower than 100.00 dollars",
    "Question: who directed the film that won the award in 1998?",
    "Your task is to: cool some pan and put it in cabinet.",
    "Your task is to: find two cellphone and put them in bed.",
    "search[red running shoes size 9]",
]


def train_rambler(model, tok, steps: int) -> None:
    """A few SGD steps on a repetitive thought, so that the model rambles inside <think>."""
    ids = tok(RAMBLE, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :256]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()


def timed(policy, prompts, sampling):
    t0 = time.perf_counter()
    gens = policy.generate(prompts, sampling)
    dt = time.perf_counter() - t0
    return dt, gens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short run (< 40 s)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: stable timings on shared cores)")
    ap.add_argument("--device", default="cpu", help="cpu (the goal's setting) or cuda")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    max_new = args.max_new_tokens or (160 if args.quick else 400)
    repeats = args.repeats or (31 if args.quick else 41)

    model, tok = build_tiny_model(seed=0)
    t0 = time.perf_counter()
    train_rambler(model, tok, 40 if args.quick else 80)
    train_s = time.perf_counter() - t0
    prompts = [PROMPT_TASKS[i % len(PROMPT_TASKS)] + " <think>" for i in range(args.batch)]
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=max_new, stop=("</action>",), seed=0)

    model.to(args.device)
    base = HFPolicy(model, tok, chat_template=False)
    never = ThinkingIntervention(
        HFPolicy(model, tok, chat_template=False),
        TTIConfig(epsilon=-1.0, max_think_tokens=None, min_think_tokens=0),
    )
    tti = ThinkingIntervention(HFPolicy(model, tok, chat_template=False), TTIConfig(max_think_tokens=None))

    times = {"baseline": [], "signal+rule": [], "tti": []}
    outs = {}
    configs = [("baseline", base), ("signal+rule", never), ("tti", tti)]
    for _, pol in configs:  # warm-up (and numba's compile or cache load, when installed)
        timed(pol, prompts, sampling)
    for r in range(repeats):
        for name, pol in configs[r % 3 :] + configs[: r % 3]:  # rotate the order
            dt, gens = timed(pol, prompts, sampling)
            times[name].append(dt)
            outs[name] = gens
    paired = statistics.median(n / b for n, b in zip(times["signal+rule"], times["baseline"]))

    same = all(a.token_ids == b.token_ids for a, b in zip(outs["baseline"], outs["signal+rule"]))
    rows = {}
    for name, gens in outs.items():
        n_tok = sum(len(g.token_ids) for g in gens)
        t = statistics.median(times[name])
        rows[name] = {
            "tokens": n_tok,
            "s": t,
            "s_per_token": t / max(n_tok, 1),
            "tokens_per_s": n_tok / t,
            "think_tokens": sum(g.think_tokens for g in gens),
            "fired": sum(g.intervened for g in gens),
        }
    print(f"tiny rambler (trained {train_s:.1f}s), batch {args.batch}, max_new_tokens {max_new}, "
          f"median of {repeats}, torch threads {args.threads}")
    print(f"{'config':<12} {'tokens':>7} {'time s':>8} {'tok/s':>8} {'us/tok':>8} {'think':>7} {'fired':>6}")
    for name, r in rows.items():
        print(f"{name:<12} {r['tokens']:>7} {r['s']:>8.3f} {r['tokens_per_s']:>8.0f} "
              f"{1e6 * r['s_per_token']:>8.1f} {r['think_tokens']:>7} {r['fired']:>6}")
    # same tokens in both (checked below), so the time ratio is the per-token ratio
    overhead = paired * (rows["baseline"]["tokens"] / max(rows["signal+rule"]["tokens"], 1))
    of_medians = rows["signal+rule"]["s_per_token"] / rows["baseline"]["s_per_token"]
    saved = 1.0 - rows["tti"]["think_tokens"] / max(rows["baseline"]["think_tokens"], 1)
    print(f"identical tokens with the never-firing rule: {same}")
    print(json.dumps({
        "overhead_ratio": round(overhead, 4),
        "overhead_ratio_of_medians": round(of_medians, 4),
        "extra_us_per_token": round(1e6 * (rows["signal+rule"]["s_per_token"] - rows["baseline"]["s_per_token"]), 1),
        "repeats": repeats,
        "threads": args.threads,
        "tokens_per_s": round(rows["baseline"]["tokens_per_s"], 1),
        "tokens_per_s_tti": round(rows["tti"]["tokens_per_s"], 1),
        "think_tokens_saved_frac": round(saved, 4),
        "tti_fire_rate": rows["tti"]["fired"] / args.batch,
        "batch": args.batch,
        "max_new_tokens": max_new,
        "device": args.device,
        "same_tokens_when_not_firing": same,
        "kernels": "numba" if _fused.kernels() is not None else "numpy",
    }))


if __name__ == "__main__":
    main()
