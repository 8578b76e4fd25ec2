"""One-GPU check of what the CPU test suite cannot run: vLLM rollouts with TTI, weight sync, FSDP2 on CUDA.

Usage (on a lent one-GPU machine, from the repository root; under 8 minutes)::

    python benchmarks/gpu_check.py [--skip-install] [--model DIR]

It installs what it needs (``pip install 't2po-gym[vllm]'`` range, unless vLLM imports already;
the wheel is large and the machine may have no registry: the failure is then recorded and the
vLLM parts are reported as skipped), then measures, each part guarded so one failure does not
hide the others:

1. ``tti_agreement``: VLLMPolicy vs HFPolicy on the same model (the tiny Qwen2 saved to disk, or
   ``--model``), the same prompts, greedy, TTI with the same config: share of prompts whose token
   ids agree, and whose TTI fire positions agree.
2. ``tokens_per_s``: rollout throughput of both backends on 32 prompts x 128 new tokens.
3. ``t2po_steps``: two T2PO steps (toy-sized ALFWorld) with vLLM rollouts through
   ``SyncedVLLMPolicy`` (weights reloaded after each update); ``debug/logprob_diff_max`` is the
   largest |log-prob recomputed by the trainer - log-prob reported by vLLM| on the first minibatch.
4. ``fsdp2_one_gpu``: ``fully_shard`` per decoder layer on a 1-rank NCCL group; one AdamW step
   against the same step unsharded (max parameter difference).
5. ``peak_memory_gb``: ``torch.cuda.max_memory_allocated``.

Prints one JSON line (the last line of stdout).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VLLM_SPEC = "vllm>=0.33,<0.36"  # keep equal to pyproject's [vllm] extra
PROMPT = "You are in a room. Your task is to: put a mug in the fridge. <think>"


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:400]


def ensure_vllm(skip_install: bool, timeout_s: float = 240) -> dict:
    try:
        import vllm

        return {"installed": True, "version": vllm.__version__, "installed_now": False}
    except ImportError:
        pass
    if skip_install:
        return {"installed": False, "error": "vLLM missing and --skip-install given"}
    cmd = [sys.executable, "-m", "pip", "install", "-q", VLLM_SPEC]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"installed": False, "error": f"pip install {VLLM_SPEC} ran past {timeout_s:.0f} s"}
    if r.returncode != 0:
        return {"installed": False, "error": (r.stderr or r.stdout)[-400:]}
    importlib.invalidate_caches()
    import vllm

    return {"installed": True, "version": vllm.__version__, "installed_now": True}


def save_tiny(out: Path) -> str:
    from t2po_gym.policies.tiny import build_tiny_model

    model, tok = build_tiny_model(seed=0)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return str(out)


def tti_config():
    from t2po_gym.wrappers.tti import TTIConfig

    return TTIConfig(rule="window", window=4, epsilon=0.02, min_think_tokens=8, max_think_tokens=64)


def hf_generate(path: str, prompts: list[str], max_new: int, tti: bool):
    from t2po_gym.policies.base import SamplingConfig
    from t2po_gym.policies.hf import HFPolicy
    from t2po_gym.wrappers.tti import ThinkingIntervention

    pol = HFPolicy(path, device="cuda", chat_template=False)
    policy = ThinkingIntervention(pol, tti_config()) if tti else pol
    sc = SamplingConfig(temperature=0.0, max_new_tokens=max_new, stop=(), seed=0)
    policy.generate(prompts[:2], sc)  # warm-up
    t0 = time.perf_counter()
    gens = policy.generate(prompts, sc)
    dt = time.perf_counter() - t0
    return gens, sum(len(g.token_ids) for g in gens) / dt


def vllm_generate(engine, prompts: list[str], max_new: int, tti: bool):
    from t2po_gym.policies.base import SamplingConfig
    from t2po_gym.wrappers.tti import ThinkingIntervention

    policy = ThinkingIntervention(engine, tti_config()) if tti else engine
    sc = SamplingConfig(temperature=0.0, max_new_tokens=max_new, stop=(), seed=0)
    policy.generate(prompts[:2], sc)
    t0 = time.perf_counter()
    gens = policy.generate(prompts, sc)
    dt = time.perf_counter() - t0
    return gens, sum(len(g.token_ids) for g in gens) / dt


def agreement(hf, vl) -> dict:
    same_ids = sum(a.token_ids == b.token_ids for a, b in zip(hf, vl))
    same_fire = sum(a.intervention_position == b.intervention_position for a, b in zip(hf, vl))
    first_div = []
    for a, b in zip(hf, vl):
        k = next((i for i, (x, y) in enumerate(zip(a.token_ids, b.token_ids)) if x != y), None)
        if k is not None:
            first_div.append(k)
    return {
        "prompts": len(hf),
        "token_ids_agree": same_ids / max(len(hf), 1),
        "fire_position_agree": same_fire / max(len(hf), 1),
        "hf_fire_rate": sum(g.intervened for g in hf) / max(len(hf), 1),
        "vllm_fire_rate": sum(g.intervened for g in vl) / max(len(vl), 1),
        "median_first_divergence": sorted(first_div)[len(first_div) // 2] if first_div else None,
    }


def t2po_steps(path: str, engine) -> dict:
    from optim.config import preset
    from optim.models import load_policy_model
    from optim.trainer import Trainer, wrap_policy
    from t2po_gym.policies.vllm_backend import SyncedVLLMPolicy

    with tempfile.TemporaryDirectory() as out:
        cfg = preset("t2po", "alfworld", model=path, device="cuda", n_tasks=2, group_size=4, max_turns=4,
                     max_new_tokens=48, steps=2, out_dir=out, progress=False, tensorboard=False,
                     checkpoint_every=0, lr=1e-4, temperature=1.0)
        tr = Trainer(cfg, model=load_policy_model(path, device="cuda"))
        tr.base_policy = SyncedVLLMPolicy(engine, tr.model)
        tr.policy = wrap_policy(tr.base_policy, cfg)
        rows = [tr.train_step() for _ in range(2)]
        return {
            "steps": len(rows),
            "weight_syncs": tr.base_policy.syncs,
            "logprob_diff_max": [r["debug/logprob_diff_max"] for r in rows],
            "step_s": [round(r["time/step_s"], 2) for r in rows],
            "success": [r.get("charts/success") for r in rows],
        }


def fsdp2_one_gpu(path: str) -> dict:
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from optim.distributed import decoder_layers
    from optim.models import load_policy_model

    with tempfile.TemporaryDirectory() as tmp:
        if not dist.is_initialized():
            dist.init_process_group("nccl", init_method=f"file://{tmp}/rdzv", rank=0, world_size=1)
        try:
            ref = load_policy_model(path, device="cuda").model
            sharded = load_policy_model(path, device="cuda").model
            mesh = init_device_mesh("cuda", (1,))
            layers = decoder_layers(sharded)
            for layer in layers:
                fully_shard(layer, mesh=mesh)
            fully_shard(sharded, mesh=mesh)
            torch.manual_seed(0)
            ids = torch.randint(0, ref.config.vocab_size, (4, 64), device="cuda")
            out = {}
            for name, m in (("ref", ref), ("fsdp", sharded)):
                opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = m(input_ids=ids, labels=ids).loss
                loss.backward()
                opt.step()
                out[name] = torch.cat([(p.full_tensor() if hasattr(p, "full_tensor") else p).detach().float().flatten()
                                       for p in m.parameters()])
            return {"layers_sharded": len(layers), "max_param_diff_vs_unsharded": float((out["ref"] - out["fsdp"]).abs().max())}
        finally:
            dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--skip-install", action="store_true")
    ap.add_argument("--model", default=None, help="a local HF model directory (default: the tiny Qwen2)")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    t_start = time.perf_counter()
    result: dict = {"check": "gpu_check", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    import torch

    if not torch.cuda.is_available():
        result["error"] = "no CUDA device"
        print(json.dumps(result))
        return 1
    result["device"] = torch.cuda.get_device_name(0)
    result["torch"] = torch.__version__
    result["vllm"] = ensure_vllm(args.skip_install)
    tmp = tempfile.mkdtemp(prefix="t2po-gpu-check-")
    path = args.model or save_tiny(Path(tmp) / "tiny")
    result["model"] = "tiny" if args.model is None else args.model
    prompts = [f"{PROMPT} step {i}:" for i in range(args.prompts)]

    hf = None
    try:
        hf, hf_tps = hf_generate(path, prompts, args.max_new_tokens, tti=True)
        _, hf_plain = hf_generate(path, prompts, args.max_new_tokens, tti=False)
        result["tokens_per_s"] = {"hf_tti": round(hf_tps, 1), "hf": round(hf_plain, 1)}
    except Exception as exc:  # noqa: BLE001 - every part reports its own failure
        result["hf_error"] = _err(exc)
    engine = None
    if result["vllm"].get("installed"):
        try:
            from t2po_gym.policies.vllm_backend import VLLMPolicy

            engine = VLLMPolicy(path, gpu_memory_utilization=0.3, max_model_len=2048, enforce_eager=True,
                                chat_template=False)
            vl, vl_tps = vllm_generate(engine, prompts, args.max_new_tokens, tti=True)
            _, vl_plain = vllm_generate(engine, prompts, args.max_new_tokens, tti=False)
            result.setdefault("tokens_per_s", {}).update({"vllm_tti": round(vl_tps, 1), "vllm": round(vl_plain, 1)})
            if hf is not None:
                result["tti_agreement"] = agreement(hf, vl)
        except Exception as exc:  # noqa: BLE001
            result["vllm_error"] = _err(exc)
            result["vllm_trace"] = traceback.format_exc()[-800:]
        if engine is not None:
            try:
                result["t2po_steps"] = t2po_steps(path, engine)
            except Exception as exc:  # noqa: BLE001
                result["t2po_steps_error"] = _err(exc)
    else:
        result["tti_agreement"] = result["t2po_steps"] = "skipped: vLLM not installed"
    try:
        result["fsdp2_one_gpu"] = fsdp2_one_gpu(path)
    except Exception as exc:  # noqa: BLE001
        result["fsdp2_error"] = _err(exc)
    result["peak_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
