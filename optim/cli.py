"""``t2po sft``, ``t2po train`` and ``t2po eval``, contributed to the ``t2po`` command.

``t2po train`` with no ``--env`` runs the embedded CPU demo (the README's main job):
ALFWorld, a small from-scratch model warm-started by ``sft``, T2PO with TTI and TDS,
a before/after evaluation table and PNG curves.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from t2po_gym.cli import (
    HelpFormatter,
    UsageError,
    add_env_arguments,
    check_env_id,
    env_kwargs_from_args,
    json_object,
    run_command,
)

__all__ = ["register_cli", "main"]


def _note_import(command: str) -> None:
    """One stderr line before the first torch / transformers import (up to a minute on a busy machine)."""
    if "torch" not in sys.modules:
        print(f"t2po {command}: importing torch and transformers ...", file=sys.stderr, flush=True)


def _quiet_hub_bars() -> None:
    """No "Loading weights" / "Writing model shards" bars: the job's own progress lines say enough."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except (ImportError, AttributeError):  # older transformers: the bars stay
        pass

def _set_arg(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sft``, ``train`` and ``eval`` sub-commands."""
    p = subparsers.add_parser("train", help="train a policy with t2po / gigpo / grpo / ppo (no --env: the main job)",
                              description="Train a policy. Without --env: the main job (demo model, SFT warm start, "
                                          "T2PO on easy ALFWorld, before/after table), within --budget-min.",
                              formatter_class=HelpFormatter)
    p.add_argument("--env", default=None, help="env id, e.g. T2PO/ALFWorld-v0 (None: the main job)")
    p.add_argument("--algo", default="t2po", choices=["t2po", "gigpo", "grpo", "ppo"], help="algorithm preset")
    p.add_argument("--model", default="tiny", help="tiny, a checkpoint directory, or a local Hugging Face model path")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--steps", type=int, default=None, help="training steps (None: the preset's)")
    p.add_argument("--n-tasks", type=int, default=None, help="tasks per step (None: the preset's)")
    p.add_argument("--group-size", type=int, default=None, help="episodes per task (None: the preset's)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (None: the preset's)")
    p.add_argument("--lora-rank", type=int, default=None, help="LoRA rank, 0 for full fine-tuning (None: the preset's)")
    p.add_argument("--max-turns", type=int, default=None, help="turns per episode (None: the env's)")
    p.add_argument("--max-new-tokens", type=int, default=None, help="tokens per response (None: the preset's)")
    add_env_arguments(p)
    p.add_argument("--set", type=_set_arg, action="append", default=[], metavar="KEY=VALUE",
                   help="any TrainConfig field, e.g. --set kl_coef=0 --set tti=false")
    p.add_argument("--out", default=None, help="run directory (metrics, curves, checkpoints)")
    p.add_argument("--resume", action="store_true", help="continue from the newest valid checkpoint in --out")
    p.add_argument("--overwrite", action="store_true",
                   help="start a new run in an --out that holds one (deletes its metrics and checkpoints)")
    p.add_argument("--allow-config-change", action="append", default=[], metavar="FIELD",
                   help="with --resume: accept a changed experiment-defining field (algo, group_size...; 'all')")
    p.add_argument("--eval-episodes", type=int, default=None, help="held-out episodes per evaluation (None: the preset's)")
    p.add_argument("--budget-min", type=float, default=15.0,
                   help="main job only: wall-clock minutes for the whole job (warm start, RL, evaluations)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--nproc", type=int, default=1,
                   help="data-parallel processes: re-runs this command under torchrun (docs/distributed.md)")
    p.set_defaults(func=_cmd_train)

    s = subparsers.add_parser("sft", help="behaviour cloning on expert trajectories (cold start)",
                              formatter_class=HelpFormatter)
    s.add_argument("--env", default="T2PO/ALFWorld-v0", help="env id whose expert is cloned")
    s.add_argument("--model", default="demo", help="demo (build the small ALFWorld model), tiny, or a model path")
    s.add_argument("--episodes", type=int, default=400, help="expert episodes to record")
    s.add_argument("--split", default="train", help="split the expert plays")
    s.add_argument("--steps", type=int, default=300, help="SFT steps (AdamW, cosine schedule)")
    s.add_argument("--batch-size", type=int, default=16, help="examples per step")
    s.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    s.add_argument("--group-by-length", action="store_true",
                   help="length-grouped batches: less padding, about half the time a step on prompts of "
                        "mixed length (default: off, random batches)")
    add_env_arguments(s)
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument("--seed", type=int, default=0, help="seed of the expert episodes and of the batches")
    s.add_argument("--out", required=True, help="directory for the fine-tuned model")
    s.set_defaults(func=_cmd_sft)

    e = subparsers.add_parser("eval", help="success of a checkpoint on a fixed held-out set",
                              formatter_class=HelpFormatter)
    e.add_argument("--env", default=None, help="env id (None: the one the checkpoint was trained on)")
    e.add_argument("--checkpoint", required=True, help="a run directory, checkpoint directory or model directory")
    e.add_argument("--split", default="valid_seen", help="held-out split (episode k resets with seed k)")
    e.add_argument("--episodes", type=int, default=64, help="episodes to play")
    e.add_argument("--temperature", type=float, default=0.0, help="sampling temperature; 0 is greedy")
    e.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling (1.0: off)")
    e.add_argument("--top-k", type=int, default=0, help="top-k sampling (0: off)")
    e.add_argument("--seed", type=int, default=0, help="sampling seed (sampled evaluation is reproducible)")
    e.add_argument("--tti", action="store_true",
                   help="evaluate through TTI with the run's tti_kwargs (as the released scripts evaluate)")
    e.add_argument("--as-run", action="store_true",
                   help="use the run's own evaluation settings (eval_temperature, eval_top_p, eval_top_k, "
                        "eval_tti: the released scripts' sampled evaluation with TTI for the presets); "
                        "needs a checkpoint with its training config")
    e.add_argument("--max-new-tokens", type=int, default=None, help="tokens per response (None: the run's, or 64)")
    add_env_arguments(e)
    e.add_argument("--reset-options", type=json_object, default=None, metavar="JSON",
                   help='JSON added to every reset, e.g. \'{"game": "seed"}\' (ALFWorld: episode k plays game k)')
    e.add_argument("--device", default="cpu", help="cpu or cuda")
    e.set_defaults(func=_cmd_eval)


def _cmd_train(args: argparse.Namespace) -> int:
    if getattr(args, "nproc", 1) != 1:  # each torchrun worker builds its DistContext from the environment
        from optim.distributed import relaunch_with_torchrun

        return relaunch_with_torchrun(args.nproc, has_env=args.env is not None)
    if args.env is None:
        _note_import("train")
        from optim.demo import run_demo

        from optim.checkpoint import RunDirNotEmptyError

        _quiet_hub_bars()
        try:
            result = run_demo(out_dir=args.out or "runs/demo", budget_min=args.budget_min, seed=args.seed,
                              resume=args.resume, overwrite=args.overwrite, started_at=getattr(args, "started_at", None))
        except RunDirNotEmptyError as exc:
            raise UsageError(str(exc)) from None
        # no RL step ran: the table holds the warm start only; say so in the exit status too
        return 0 if result["trained"] else 1
    check_env_id(args.env)
    _note_import("train")
    from optim.config import preset
    from optim.trainer import Trainer

    _quiet_hub_bars()
    overrides: dict[str, Any] = {"env_id": args.env, "model": args.model, "device": args.device, "seed": args.seed}
    for key, attr in [("steps", "steps"), ("n_tasks", "n_tasks"), ("group_size", "group_size"), ("lr", "lr"),
                      ("lora_rank", "lora_rank"), ("max_turns", "max_turns"), ("max_new_tokens", "max_new_tokens"),
                      ("eval_episodes", "eval_episodes")]:
        value = getattr(args, attr)
        if value is not None:
            overrides[key] = value
    env_kwargs = env_kwargs_from_args(args)
    if env_kwargs is not None:
        overrides["env_kwargs"] = env_kwargs
    overrides["out_dir"] = args.out or f"runs/{args.algo}-{args.env.split('/')[-1]}"
    if not args.env.startswith("T2PO/ALFWorld"):
        overrides.setdefault("train_split", None)
        overrides.setdefault("eval_split", None)
    overrides.update(dict(args.set))
    try:
        cfg = preset(args.algo, **overrides)
    except (ValueError, TypeError) as exc:  # an unknown --set key or a bad value: the user's to fix
        raise UsageError(str(exc)) from None
    from optim.checkpoint import CheckpointError, ConfigMismatchError, RunDirNotEmptyError, prepare_run_dir

    try:
        prepare_run_dir(cfg.out_dir, resume=args.resume, overwrite=args.overwrite)
        trainer = Trainer(cfg)
        if args.resume:
            ckpt = trainer.resume(allow_config_change=args.allow_config_change)
            print(f"resumed from {ckpt} at step {trainer.step}")
    except (CheckpointError, ConfigMismatchError, RunDirNotEmptyError, FileNotFoundError) as exc:
        raise SystemExit(f"error: {exc}") from None
    try:
        trainer.train()
    except KeyboardInterrupt:
        return 130
    print(f"done: {trainer.step} steps; metrics in {cfg.out_dir}/metrics.jsonl, curves in {cfg.out_dir}/curves.png")
    return 0


def _cmd_sft(args: argparse.Namespace) -> int:
    check_env_id(args.env)
    _note_import("sft")
    from optim.models import load_policy_model
    from optim.sft import collect_expert_examples, train_sft

    _quiet_hub_bars()
    examples, stats = collect_expert_examples(
        args.env, args.episodes, split=args.split, seed=args.seed, env_kwargs=env_kwargs_from_args(args)
    )
    print(f"{len(examples)} expert turns from {args.episodes} episodes (expert success {stats['expert_success']:.2f})")
    if args.model == "demo":
        from optim.demo import DemoModelConfig, build_demo_model

        pm = build_demo_model(None, DemoModelConfig(seed=args.seed), examples=examples)
    else:
        pm = load_policy_model(args.model, device=args.device, seed=args.seed)
    m = train_sft(pm, examples, steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                  device=args.device, progress=True, group_by_length=args.group_by_length)
    pm.save(args.out)
    print(json.dumps({"out": args.out, **m}))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    env_id, env_kwargs, max_new, max_turns = args.env, env_kwargs_from_args(args), args.max_new_tokens, None
    root = Path(args.checkpoint)
    if not root.exists():
        raise UsageError(f"--checkpoint {root}: no such file or directory (a run directory such as runs/demo/t2po, "
                         f"a checkpoint directory, or a saved model directory)")
    _note_import("eval")
    from optim.checkpoint import LEGACY_STATE, STATE, CheckpointError, latest_checkpoint, load_trainer_state
    from optim.models import load_policy_model
    from optim.trainer import evaluate
    _quiet_hub_bars()
    ckpt = latest_checkpoint(root / "checkpoints") if (root / "checkpoints").is_dir() else None
    ckpt = ckpt or (latest_checkpoint(root) if root.is_dir() and not (root / "config.json").exists() else None)
    cfg: dict = {}
    if ckpt is not None and ((ckpt / STATE).exists() or (ckpt / LEGACY_STATE).exists()):
        try:
            cfg = load_trainer_state(ckpt)["config"]
        except CheckpointError as exc:
            raise SystemExit(f"error: {exc}") from None
        env_id = env_id or cfg["env_id"]
        env_kwargs = env_kwargs if env_kwargs is not None else cfg.get("env_kwargs")
        max_new = max_new or cfg.get("max_new_tokens")
        max_turns = cfg.get("max_turns")
        model_dir = str(ckpt / "model")
    else:
        model_dir = str(root)
    if env_id is None:
        raise UsageError(f"--env is required: {root} holds no training config to read the env from")
    check_env_id(env_id)
    if args.as_run and not cfg:
        raise UsageError(f"--as-run: {root} holds no training config to read the evaluation settings from")
    temperature, top_p, top_k, tti = args.temperature, args.top_p, args.top_k, args.tti
    if args.as_run:
        temperature = cfg.get("eval_temperature", temperature)
        top_p, top_k = cfg.get("eval_top_p", top_p), cfg.get("eval_top_k", top_k)
        tti = bool(cfg.get("eval_tti", tti))
    pm = load_policy_model(model_dir, device=args.device)
    pm.set_policy_kwargs(**(cfg.get("policy_kwargs") or {}))
    policy = pm.make_policy()
    if tti:
        from t2po_gym.factory import response_spec_of
        from t2po_gym.wrappers import ThinkingIntervention

        policy = ThinkingIntervention(policy, **{"forced_text": response_spec_of(env_id).forced_text,
                                                 **(cfg.get("tti_kwargs") or {})})
    print(f"evaluation: temperature {temperature}, top-p {top_p}, top-k {top_k}, TTI {'on' if tti else 'off'}")
    m = evaluate(pm, env_id, split=args.split, episodes=args.episodes, env_kwargs=env_kwargs,
                 max_new_tokens=max_new or 64, temperature=temperature, top_p=top_p, top_k=top_k,
                 seed=args.seed, max_turns=max_turns, reset_options=args.reset_options, policy=policy)
    for k, v in m.items():
        print(f"{k:24s} {v:.3f}")
    print(json.dumps({"checkpoint": str(ckpt or root), "split": args.split, **m}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (``python -m optim.cli train ...``)."""
    import time

    started = time.perf_counter()
    parser = argparse.ArgumentParser(prog="t2po", formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    register_cli(sub)
    args = parser.parse_args(argv)
    args.started_at = started
    return run_command(parser, args)


if __name__ == "__main__":
    sys.exit(main())
