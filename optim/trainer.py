"""The training loop: rollout -> rewards -> advantages -> clipped policy update.

Read top to bottom, one step is::

    rollout  = collect_rollouts(envs, policy (TTI/TDS-wrapped for t2po), n_tasks x group_size)
    r'_t     = r_t - 0.1 [invalid action] - p_fmt [bad format]            (shape_rewards)
    A_t      = ppo: GAE(r', V) | grpo: norm_group(sum r') | gigpo/t2po: A_E + w A_S
    for each minibatch of turns:
        logp     = log pi(response tokens | prompt)      (prompt, padding, TTI tokens masked)
        loss     = clipped surrogate (token mean) + kl_coef * KL(pi || pi_ref) - ent_coef * H
                   (+ vf_coef * value loss for ppo)
        grad_norm = clip_grad_norm_(...)  ->  skip the update if loss or norm is NaN/inf

Resuming is exact because every random draw of step ``s`` is seeded from ``(seed, s)``:
task seeds, sampling seeds, minibatch order; the optimizer state is in the checkpoint.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from optim import advantage as adv
from optim.checkpoint import (
    ConfigMismatchError,
    RunDirNotEmptyError,
    assert_finite_state,
    compare_configs,
    config_mismatch_message,
    latest_checkpoint,
    load_trainer_state,
    remove_orphaned_tmp,
    save_checkpoint,
)
from optim.config import TrainConfig
from optim.distributed import DistContext, NullLogger
from optim.samples import TurnSample
from optim.window import response_window, takes_position_ids, window_forward
from optim.loss import (
    clipped_policy_loss,
    entropy_from_logits,
    kl_low_var,
    masked_mean,
    response_mask,
    token_logprobs,
    value_loss,
)
from optim.metrics import MetricsLogger
from optim.models import PolicyModel, load_policy_model
from optim.rollout import Rollout, Trajectory, collect_rollouts, make_group_envs
from t2po_gym.factory import response_spec_of
from t2po_gym.policies.base import LLMPolicy, SamplingConfig

__all__ = ["Trainer", "TurnSample", "build_samples", "wrap_policy", "evaluate"]

#: KL reference models up to this many parameters are stored in checkpoints.
REF_IN_CHECKPOINT_MAX = 50_000_000


def wrap_policy(base: LLMPolicy, cfg: TrainConfig) -> LLMPolicy:
    """Stack the exploration wrappers the config asks for: ``TurnDedup(ThinkingIntervention(base))``."""
    policy = base
    if cfg.tti:
        from t2po_gym.wrappers import ThinkingIntervention

        # TTI forces the env's own protocol (Search-QA: "</think>\n", not "<action>")
        policy = ThinkingIntervention(policy, **{"forced_text": response_spec_of(cfg.env_id).forced_text,
                                                 **cfg.tti_kwargs})
    if cfg.tds:
        from t2po_gym.wrappers import TurnDedup

        policy = TurnDedup(policy, **cfg.tds_kwargs)
    return policy


def _step_seed(seed: int, step: int, salt: int = 0) -> int:
    return int(np.random.SeedSequence([int(seed), int(step), int(salt)]).generate_state(1)[0] & 0x7FFFFFFF)


def build_samples(
    rollout: Rollout,
    cfg: TrainConfig,
    values: list[list[float]] | None = None,
) -> list[TurnSample]:
    """Rewards -> advantages for every turn of the rollout, by ``cfg.algo``.

    Args:
        rollout: the trajectories.
        cfg: algo, gamma, lambda, norm mode, step weight, penalties.
        values: PPO only: per trajectory, the critic's value of every turn's prompt.
    """
    trajs: list[Trajectory] = rollout.trajectories

    def env_rewards(tr: Trajectory) -> torch.Tensor:
        # reward_from_won: 1[won] on the last turn instead of the env's reward (released WebShop)
        r = [float(tr.won and j == len(tr.turns) - 1) if cfg.reward_from_won else t.reward for j, t in enumerate(tr.turns)]
        return cfg.reward_scale * torch.tensor(r, dtype=torch.float32)

    shaped: list[torch.Tensor] = []
    for tr in trajs:
        shaped.append(
            adv.shape_rewards(
                env_rewards(tr),
                torch.tensor([t.action_valid for t in tr.turns], dtype=torch.float32),
                torch.tensor([t.format_valid for t in tr.turns], dtype=torch.float32),
                invalid_action_penalty=cfg.invalid_action_penalty,
                format_penalty=cfg.format_penalty,
            )
        )
    ep_returns = torch.tensor([float(r.sum()) for r in shaped], dtype=torch.float32)
    ep_groups = torch.tensor([tr.group for tr in trajs], dtype=torch.long)
    per_turn_adv: list[torch.Tensor]
    rets: list[torch.Tensor] = [torch.zeros(len(tr.turns)) for tr in trajs]
    vals: list[torch.Tensor] = [torch.zeros(len(tr.turns)) for tr in trajs]
    released = cfg.advantage_variant == "released" and cfg.algo in ("grpo", "gigpo", "t2po")
    if released:
        # the released pipeline: penalties once per turn row, step-row baseline, unbiased std
        step_ep = torch.tensor([i for i, tr in enumerate(trajs) for _ in tr.turns], dtype=torch.long)
        pen = torch.tensor(
            [cfg.invalid_action_penalty * (not t.action_valid) + cfg.format_penalty * (not t.format_valid)
             for tr in trajs for t in tr.turns], dtype=torch.float32,
        )
        anchors = None if cfg.algo == "grpo" else adv.anchor_group_ids(
            [tr.group for tr in trajs for _ in tr.turns], [t.anchor for tr in trajs for t in tr.turns],
            similarity=cfg.anchor_similarity,
        )
        a = adv.released_row_advantages(
            torch.cat([env_rewards(tr) for tr in trajs]) if trajs else torch.zeros(0), pen, step_ep, ep_groups, anchors,
            gamma=cfg.gamma, mode="mean_std_norm" if cfg.algo == "grpo" else cfg.norm_mode, step_weight=cfg.step_weight,
        )
        per_turn_adv, k = [], 0
        for tr in trajs:
            per_turn_adv.append(a[k : k + len(tr.turns)])
            k += len(tr.turns)
    elif cfg.algo == "grpo":
        a = adv.grpo_advantages(ep_returns, ep_groups, mode="mean_std_norm")
        per_turn_adv = [torch.full((len(tr.turns),), float(a[i])) for i, tr in enumerate(trajs)]
    elif cfg.algo in ("gigpo", "t2po"):
        step_returns = torch.cat([adv.discounted_returns(r, cfg.gamma) for r in shaped]) if trajs else torch.zeros(0)
        step_ep = torch.tensor([i for i, tr in enumerate(trajs) for _ in tr.turns], dtype=torch.long)
        anchors = adv.anchor_group_ids(
            [tr.group for tr in trajs for _ in tr.turns], [t.anchor for tr in trajs for t in tr.turns],
            similarity=cfg.anchor_similarity,
        )
        fn = adv.t2po_advantages if cfg.algo == "t2po" else adv.gigpo_advantages
        a = fn(ep_returns, ep_groups, step_returns, step_ep, anchors, mode=cfg.norm_mode, step_weight=cfg.step_weight)
        per_turn_adv, k = [], 0
        for tr in trajs:
            per_turn_adv.append(a[k : k + len(tr.turns)])
            k += len(tr.turns)
    elif cfg.algo == "ppo":
        if values is None:
            raise ValueError("ppo needs the critic's values of every turn")
        per_turn_adv = []
        for i, tr in enumerate(trajs):
            v = torch.tensor(values[i], dtype=torch.float32)
            # A truncated episode is bootstrapped from the value of its last state.
            last = float(v[-1]) if (tr.truncated and len(v)) else 0.0
            a_i, r_i = adv.gae(shaped[i], v, cfg.gamma, cfg.gae_lambda, last_value=last)
            per_turn_adv.append(a_i)
            rets[i], vals[i] = r_i, v
        flat = torch.cat(per_turn_adv) if per_turn_adv else torch.zeros(0)
        if flat.numel() > 1:
            # Whitening, as CleanRL does with norm_adv.
            mu, sd = flat.mean(), flat.std()
            per_turn_adv = [(x - mu) / (sd + 1e-8) for x in per_turn_adv]
    else:
        raise ValueError(f"unknown algo {cfg.algo!r}")
    if cfg.center_turns and cfg.algo != "ppo" and trajs:
        flat = adv.center_turn_advantages(
            torch.cat(per_turn_adv), torch.tensor([tr.group for tr in trajs for _ in tr.turns], dtype=torch.long)
        )
        per_turn_adv, k = [], 0
        for tr in trajs:
            per_turn_adv.append(flat[k : k + len(tr.turns)])
            k += len(tr.turns)
    if cfg.clip_invalid_advantages and trajs:
        per_turn_adv = [
            adv.clip_invalid_advantages(x, torch.tensor([t.action_valid and t.format_valid for t in tr.turns]))
            for x, tr in zip(per_turn_adv, trajs)
        ]
    if cfg.negative_advantage_scale != 1.0 and trajs:
        per_turn_adv = [adv.scale_negative_advantages(x, cfg.negative_advantage_scale) for x in per_turn_adv]
    samples = []
    for i, tr in enumerate(trajs):
        for j, t in enumerate(tr.turns):
            if not t.response_ids:
                continue
            samples.append(
                TurnSample(
                    prompt_ids=t.prompt_ids,
                    response_ids=t.response_ids,
                    old_logprobs=t.old_logprobs,
                    forced_mask=t.forced_mask,
                    advantage=float(per_turn_adv[i][j]),
                    ret=float(rets[i][j]),
                    old_value=float(vals[i][j]),
                )
            )
    return samples


def _collate(samples: list[TurnSample], pad_id: int, device: str, left: bool = True) -> dict[str, Any]:
    """Left-padded ``prompt + response`` rows and their response window (:mod:`optim.window`).

    The model reads the whole rows (``forward_ids``, ``attention_mask``, ``position_ids``,
    ``[B, L]``) and gives logits for the last ``keep = max response length + 1`` columns
    only; ``input_ids``, ``old_logprobs`` and ``mask`` are those ``[B, keep]`` columns, so
    ``token_logprobs(_forward(...).logits, batch["input_ids"])`` lines up with them.
    ``value_index``: the column of each row's last prompt token in ``[B, L]`` (PPO's critic).

    ``left=False`` (a model whose forward takes no ``position_ids``): right-padded rows, no
    ``position_ids``, and the window is the whole row.
    """
    w = response_window([(s.prompt_ids, s.response_ids) for s in samples], pad_id, left)
    (B, L), K = w.input_ids.shape, w.keep
    old = torch.zeros((B, K), dtype=torch.float32)
    forced = torch.zeros((B, K), dtype=torch.float32)
    R_t = torch.tensor([len(s.response_ids) for s in samples])
    for b, s in enumerate(samples):
        R, p0 = len(s.response_ids), int(w.start[b])
        if R:
            old[b, p0: p0 + R] = torch.tensor(s.old_logprobs[:R] + [0.0] * (R - len(s.old_logprobs)),
                                              dtype=torch.float32)
            fm = (s.forced_mask or [0] * R)[:R]
            forced[b, p0: p0 + len(fm)] = torch.tensor(fm, dtype=torch.float32)
    mask = response_mask(w.start, R_t, K, forced)
    return {
        "forward_ids": w.input_ids.to(device),
        "attention_mask": w.attention_mask.to(device),
        "position_ids": None if w.position_ids is None else w.position_ids.to(device),
        "keep": K,
        "input_ids": w.input_ids[:, L - K:].to(device),
        "old_logprobs": old.to(device),
        "mask": mask.to(device),
        "value_index": ((L - K) + w.start - 1).clamp(min=0).to(device),
        "advantages": torch.tensor([s.advantage for s in samples], dtype=torch.float32, device=device),
        "returns": torch.tensor([s.ret for s in samples], dtype=torch.float32, device=device),
        "old_values": torch.tensor([s.old_value for s in samples], dtype=torch.float32, device=device),
    }


def _forward(model: nn.Module, batch: dict[str, Any], hidden: bool, autocast: bool):
    """The model on ``batch``'s rows: logits of the ``keep`` window (hidden states of every position)."""
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if autocast else _nullctx()
    with ctx:
        out = window_forward(model, batch["forward_ids"], batch["attention_mask"], batch["position_ids"],
                             batch["keep"], hidden)
    return out


class _nullctx:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


class Trainer:
    """Consumes a :class:`TrainConfig`; ``train()`` runs it, ``resume()`` continues a run.

    Args:
        cfg: the configuration.
        model: a ready :class:`~optim.models.PolicyModel` (tests pass their own); ``None`` loads
            ``cfg.model``.
        make_ref: build the frozen KL reference (default: a deep copy of the initial model).
    """

    def __init__(self, cfg: TrainConfig, model: PolicyModel | None = None, dist: "DistContext | None" = None):
        cfg.validate()
        self.cfg = cfg
        # torch.distributed (optim/distributed.py): None joins a torchrun/accelerate job if there is one
        # (first: it picks this rank's GPU before the model is loaded onto "cuda").
        self.dist = dist if dist is not None else DistContext.from_env(device=cfg.device)
        if cfg.torch_threads:
            torch.set_num_threads(int(cfg.torch_threads))
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        if cfg.device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
        self.pm: PolicyModel = model or load_policy_model(
            cfg.model, device=cfg.device, seed=cfg.seed, lora_rank=cfg.lora_rank, lora_alpha=cfg.lora_alpha
        )
        self.model = self.pm.model
        # Left-padded rows with response-only logits (optim.window) when the model takes position_ids.
        self.left_pad = takes_position_ids(self.model)
        self.autocast = cfg.device.startswith("cuda") and cfg.resolved_dtype() == "bfloat16"
        self.value_head: nn.Linear | None = None
        if cfg.algo == "ppo":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(cfg.seed + 1)
                self.value_head = nn.Linear(self.pm.hidden_size, 1).to(cfg.device)
                nn.init.zeros_(self.value_head.weight)
                nn.init.zeros_(self.value_head.bias)
        self.ref_model: nn.Module | None = None
        if cfg.kl_coef > 0:
            self.ref_model = copy.deepcopy(self.model).eval()
            for p in self.ref_model.parameters():
                p.requires_grad_(False)
        # the update runs through DDP / FSDP2 wrappers, built before the optimizer (FSDP2 swaps parameters).
        self.train_model = self.dist.wrap(self.model)
        self.train_value_head = self.dist.wrap(self.value_head) if self.value_head is not None else None
        params = [p for p in self.model.parameters() if p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": params, "lr": cfg.resolved_lr()}]
        if self.value_head is not None:
            groups.append({"params": list(self.value_head.parameters()), "lr": cfg.value_lr})
        self.optimizer = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay, eps=1e-8)
        if cfg.policy_kwargs and hasattr(self.pm, "set_policy_kwargs"):
            self.pm.set_policy_kwargs(**cfg.policy_kwargs)
        self.base_policy = self.pm.make_policy()
        self.policy = wrap_policy(self.base_policy, cfg)
        self.envs = make_group_envs(cfg.env_id, self.dist.local_tasks(cfg.n_tasks) * cfg.group_size, **cfg.env_kwargs)
        self.step = 0
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.ckpt_dir = self.out / "checkpoints"
        self.logger = MetricsLogger(self.out, tensorboard=cfg.tensorboard) if self.dist.is_main else NullLogger(self.out)
        self.loss_hook: Callable[[torch.Tensor], torch.Tensor] | None = None  # tests inject NaN here

    # ------------------------------------------------------------ rollout
    def sampling(self, step: int) -> SamplingConfig:
        return SamplingConfig(
            temperature=self.cfg.temperature,
            top_p=self.cfg.top_p,
            top_k=self.cfg.top_k,
            max_new_tokens=self.cfg.max_new_tokens,
            seed=self.dist.step_seed(self.cfg.seed, step, 1),  # rank 0: _step_seed(seed, step, 1)
            stop=response_spec_of(self.cfg.env_id).stop,  # the env's stop strings
        )

    def task_seeds(self, step: int) -> list[int]:
        rng = np.random.default_rng([self.cfg.seed, step, 2])
        return [int(x) for x in rng.integers(0, 2**31 - 1, size=self.cfg.n_tasks)]

    def collect(self, step: int) -> Rollout:
        self.model.eval()
        options = {"split": self.cfg.train_split} if self.cfg.train_split else {}
        # Distributed: this rank plays its own block of whole groups (FSDP2: with full weights).
        with torch.no_grad(), self.dist.rollout_mode(self.model):
            return collect_rollouts(
                self.envs,
                self.policy,
                n_tasks=self.dist.local_tasks(self.cfg.n_tasks),
                group_size=self.cfg.group_size,
                seeds=self.task_seeds(step)[self.dist.task_slice(self.cfg.n_tasks)],
                sampling=self.sampling(step),
                reset_options=options,
                episode_prefix=f"s{step}",
                max_turns=self.cfg.max_turns,
            )

    @torch.no_grad()
    def critic_values(self, rollout: Rollout) -> list[list[float]]:
        """Value of every turn's prompt (PPO), batched by ``microbatch_size``."""
        assert self.value_head is not None
        flat = [(i, j, t.prompt_ids) for i, tr in enumerate(rollout.trajectories) for j, t in enumerate(tr.turns)]
        out = [[0.0] * len(tr.turns) for tr in rollout.trajectories]
        mb = self.cfg.microbatch_size
        for k in range(0, len(flat), mb):
            chunk = flat[k : k + mb]
            samples = [TurnSample(p, [], [], [], 0.0) for _, _, p in chunk]
            batch = _collate(samples, self.pm.pad_id, self.cfg.device, self.left_pad)
            o = _forward(self.model, batch, True, self.autocast)
            h = o.hidden_states[-1].float()
            last = h[torch.arange(len(chunk), device=h.device), batch["value_index"]]
            v = self.value_head(last).squeeze(-1)
            for (i, j, _), x in zip(chunk, v.tolist()):
                out[i][j] = x
        return out

    # ------------------------------------------------------------ update
    def update(self, samples: list[TurnSample], step: int) -> dict[str, float]:
        cfg = self.cfg
        rng = random.Random(_step_seed(cfg.seed, step, 3))
        # The minibatch plan is drawn over the global turn list (rank-major): on one process it is
        # rng.sample(samples, max_update_turns) then rng.shuffle per epoch, as it always was.
        plan, n_update = self.dist.minibatch_plan(len(samples), rng, cfg.update_epochs, cfg.minibatch_size,
                                                  cfg.max_update_turns)
        self.model.train()
        trainable = [p for g in self.optimizer.param_groups for p in g["params"]]
        stats: dict[str, list[float]] = {k: [] for k in ("pg", "kl", "ent", "vl", "approx_kl", "clipfrac", "gn", "ratio_max")}
        first_diff = 0.0
        skipped = 0
        updates = 0
        if True:  # (keeps the indentation of the former per-epoch loop)
            for mbp in plan:
                mb = [samples[i] for i in mbp.local]
                mb.sort(key=lambda s: len(s.prompt_ids) + len(s.response_ids))
                n_tok = sum(sum(1 for f in (s.forced_mask or [0] * len(s.response_ids)) if not f) for s in mb)
                chunks: list[list[TurnSample] | None] = [
                    mb[u0 : u0 + cfg.microbatch_size] for u0 in range(0, len(mb), cfg.microbatch_size)]
                # Token mean over the whole minibatch on all ranks; a rank with fewer turns pads with
                # zero-weight micro-batches so that every rank runs the same forward/backward calls.
                n_tok, n_chunks = self.dist.minibatch_totals(n_tok, len(chunks))
                chunks += [None] * (n_chunks - len(chunks))
                n_tok = max(n_tok, 1)
                self.optimizer.zero_grad(set_to_none=True)
                total_loss = 0.0
                for c_i, chunk in enumerate(chunks):
                    pad = chunk is None
                    chunk = chunk or [self.dist.pad_sample(self.pm.pad_id)]
                    batch = _collate(chunk, self.pm.pad_id, cfg.device, self.left_pad)
                    mask = batch["mask"]
                    w = 0.0 if pad else float(mask.sum()) / n_tok
                    self.dist.set_grad_sync((self.train_model, self.train_value_head), c_i == len(chunks) - 1)
                    out = _forward(self.train_model, batch, self.value_head is not None, self.autocast)
                    logits = out.logits
                    logp = token_logprobs(logits, batch["input_ids"])
                    if mbp.epoch == 0 and mbp.index == 0 and not pad:
                        d = ((logp.detach() - batch["old_logprobs"]).abs() * mask).max()
                        first_diff = max(first_diff, float(d))
                    pg, st = clipped_policy_loss(
                        logp, batch["old_logprobs"], batch["advantages"], mask, cfg.clip_eps, dual_clip_c=cfg.dual_clip_c
                    )
                    loss = pg
                    with torch.no_grad() if cfg.entropy_coef == 0 else _nullctx():
                        ent = masked_mean(entropy_from_logits(logits), mask)
                    if cfg.entropy_coef:
                        loss = loss - cfg.entropy_coef * ent
                    kl = torch.zeros((), device=logits.device)
                    if self.ref_model is not None:
                        with torch.no_grad():
                            ref_logp = token_logprobs(_forward(self.ref_model, batch, False, self.autocast).logits, batch["input_ids"])
                        kl = kl_low_var(logp, ref_logp, mask)
                        loss = loss + cfg.kl_coef * kl
                    vl = torch.zeros((), device=logits.device)
                    if self.value_head is not None:
                        h = out.hidden_states[-1].float()
                        last = h[torch.arange(len(chunk), device=h.device), batch["value_index"]]
                        v = self.train_value_head(last).squeeze(-1)
                        vl = value_loss(v, batch["old_values"], batch["returns"], cfg.clip_eps)
                        loss = loss + cfg.vf_coef * vl * (len(chunk) / mbp.global_size) / max(w, 1e-8)
                    if self.loss_hook is not None:
                        loss = self.loss_hook(loss)
                    # DDP / FSDP2 average gradients over ranks: grad_scale (world size) makes it a sum
                    (loss * (w * self.dist.grad_scale)).backward()
                    if pad:
                        continue
                    total_loss += float(loss.detach()) * w
                    stats["pg"].append(st.policy_loss)
                    stats["approx_kl"].append(st.approx_kl)
                    stats["clipfrac"].append(st.clipfrac)
                    stats["ratio_max"].append(st.ratio_max)
                    stats["kl"].append(float(kl.detach()))
                    stats["ent"].append(float(ent.detach()))
                    stats["vl"].append(float(vl.detach()))
                grad_norm = self.dist.clip_grad_norm(trainable, cfg.max_grad_norm)
                stats["gn"].append(grad_norm)
                # every rank skips when any rank saw a NaN/inf (their weights must stay equal)
                if self.dist.any(not (math.isfinite(total_loss) and math.isfinite(grad_norm))):
                    # Never let a NaN/inf reach the weights (or, later, a checkpoint).
                    self.optimizer.zero_grad(set_to_none=True)
                    skipped += 1
                    continue
                self.optimizer.step()
                updates += 1
        self.optimizer.zero_grad(set_to_none=True)
        self.model.eval()

        def mean(xs: list[float]) -> float:
            xs = [x for x in xs if math.isfinite(x)]
            return float(np.mean(xs)) if xs else float("nan")

        finite_gn = [g for g in stats["gn"] if math.isfinite(g)]
        return {
            "losses/policy_loss": mean(stats["pg"]),
            "losses/kl": mean(stats["kl"]),
            "losses/approx_kl": mean(stats["approx_kl"]),
            "losses/clipfrac": mean(stats["clipfrac"]),
            "losses/entropy": mean(stats["ent"]),
            "losses/value_loss": mean(stats["vl"]),
            "losses/grad_norm": max(finite_gn) if finite_gn else float("nan"),
            "losses/grad_norm_mean": mean(stats["gn"]),
            "losses/ratio_max": max(stats["ratio_max"]) if stats["ratio_max"] else 1.0,
            "losses/skipped_updates": float(skipped),
            "losses/updates": float(updates),
            "debug/logprob_diff_max": first_diff,
            "charts/update_turns": float(n_update),
        }

    # ------------------------------------------------------------ loop
    def train_step(self) -> dict[str, float]:
        """One rollout + update; returns the metrics it logged."""
        step = self.step
        torch.manual_seed(self.dist.step_seed(self.cfg.seed, step, 0))
        t0 = time.perf_counter()
        rollout = self.collect(step)
        t1 = time.perf_counter()
        values = self.critic_values(rollout) if self.cfg.algo == "ppo" else None
        samples = build_samples(rollout, self.cfg, values)
        metrics = dict(rollout.stats())
        metrics.update(self.update(samples, step))
        t2 = time.perf_counter()
        metrics["time/rollout_s"] = t1 - t0
        metrics["time/update_s"] = t2 - t1
        metrics["time/step_s"] = t2 - t0
        n_tok = sum(len(s.response_ids) for s in samples)
        metrics["charts/SPS"] = n_tok / max(t2 - t0, 1e-9)
        self.step += 1
        metrics = self.dist.reduce_metrics(metrics, weight=len(rollout.trajectories))  # all ranks' means
        self.logger.log(self.step, metrics)
        return metrics

    def train(self, steps: int | None = None, eval_fn: Callable[["Trainer"], dict[str, float]] | None = None) -> list[dict[str, float]]:
        """Run until ``cfg.steps`` (or ``steps`` more). Ctrl-C writes a checkpoint, then re-raises."""
        target = self.cfg.steps if steps is None else self.step + steps
        if self.step == 0 and not getattr(self, "_resumed", False) and self.logger.path.exists() \
                and self.logger.path.stat().st_size > 0:
            # Never append a new run's steps to an old run's metrics (see optim.checkpoint.prepare_run_dir).
            raise RunDirNotEmptyError(
                f"run directory {self.out} already holds metrics of another run: call resume(), start "
                f"over with --overwrite (optim.checkpoint.prepare_run_dir(..., overwrite=True)), or use another out_dir")
        history = []
        bar = None
        if self.cfg.progress and self.dist.is_main:  # one bar per job, not per rank
            from optim.metrics import progress_bar  # one line per interval when not a terminal

            bar = progress_bar(total=target, initial=self.step, desc=f"{self.cfg.algo} {self.cfg.env_id}", unit="step")
        try:
            while self.step < target:
                m = self.train_step()
                history.append(m)
                if eval_fn is not None and self.cfg.eval_every and self.step % self.cfg.eval_every == 0:
                    em = eval_fn(self)
                    self.logger.log(self.step, em)
                if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    self.save()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(
                        success=f"{m['charts/success']:.2f}", turns=f"{m['charts/turns']:.1f}", gn=f"{m['losses/grad_norm']:.2f}",
                        refresh=False,
                    )
        except KeyboardInterrupt:
            path = self.save()
            print(f"\ninterrupted: checkpoint written to {path}; continue with --resume")
            raise
        finally:
            if bar is not None:
                bar.close()
        if not self.cfg.checkpoint_every or self.step % self.cfg.checkpoint_every:
            self.save()
        self.logger.plot()
        return history

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "config": self.cfg.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "value_head": None if self.value_head is None else self.value_head.state_dict(),
            # The KL reference is the initial model. Small ones travel with the checkpoint;
            # large ones are rebuilt from cfg.model on resume.
            "ref_model": self.ref_model.state_dict()
            if self.ref_model is not None and sum(p.numel() for p in self.ref_model.parameters()) <= REF_IN_CHECKPOINT_MAX
            else None,
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
        }

    def save(self) -> Path:
        """Write a checkpoint of the current step (refuses if any weight is NaN/inf)."""
        assert_finite_state(self.model.state_dict(), "model")
        if self.value_head is not None:
            assert_finite_state(self.value_head.state_dict(), "value head")
        # Distributed: every rank calls save() (FSDP2 gathers the full state here); only rank 0 writes.
        save_model, state = self.dist.checkpoint_payload(self)
        path = save_checkpoint(self.ckpt_dir, self.step, save_model, state, keep=self.cfg.keep_checkpoints) \
            if self.dist.is_main else None
        return self.dist.finish_save(path)

    def resume(self, path: str | Path | None = None, *, allow_config_change: Sequence[str] = ()) -> Path:
        """Load the newest valid checkpoint under ``path`` (default: this run's) and continue from it.

        The checkpoint's config is compared with this trainer's: fields in
        :data:`optim.checkpoint.MUTABLE_ON_RESUME` (steps, lr, logging...) take the new value
        with a printed note; any other difference raises :class:`ConfigMismatchError` listing
        each one, unless named in ``allow_config_change`` (``["all"]`` allows every field).
        Orphaned ``.tmp-step_*`` directories of killed writes are removed first.
        """
        root = Path(path) if path is not None else self.ckpt_dir
        remove_orphaned_tmp(root)
        ckpt = latest_checkpoint(root)
        if ckpt is None:
            raise FileNotFoundError(f"no valid checkpoint under {root}; start without --resume")
        state = load_trainer_state(ckpt)
        defaults = {f.name: f.default for f in dataclasses.fields(self.cfg)
                    if f.default is not dataclasses.MISSING}
        applied, refused = compare_configs(state.get("config") or {}, self.cfg.to_dict(), defaults=defaults,
                                           allow=allow_config_change)
        if refused:
            raise ConfigMismatchError(config_mismatch_message(ckpt, refused, state.get("config")))
        for line in applied:
            print(f"resume: {line} (the new value applies)")
        if self.dist.sharded:  # FSDP2: full weights and optimizer state into this rank's shards
            self.dist.load_sharded(self, ckpt / "model", state)
        else:
            self._load_model_weights(ckpt / "model")
            self.optimizer.load_state_dict(state["optimizer"])
        # load_state_dict restores the saved hyper-parameters; the new config's win.
        self.optimizer.param_groups[0]["lr"] = self.cfg.resolved_lr()
        if len(self.optimizer.param_groups) > 1:
            self.optimizer.param_groups[1]["lr"] = self.cfg.value_lr
        for group in self.optimizer.param_groups:
            group["weight_decay"] = self.cfg.weight_decay
        self._resumed = True
        if self.ref_model is not None and state.get("ref_model") is not None:
            self.ref_model.load_state_dict(state["ref_model"])
        if self.value_head is not None and state.get("value_head") is not None:
            self.value_head.load_state_dict(state["value_head"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        self.step = int(state["step"])
        self.logger.truncate(self.step)
        return ckpt

    def _load_model_weights(self, model_dir: Path) -> None:
        adapter = model_dir / "adapter_model.safetensors"
        if adapter.exists() and getattr(self.model, "peft_config", None):
            # A LoRA checkpoint holds only the adapters (its base may have no path, e.g. tiny):
            # load them into this run's peft model, whose base was rebuilt from cfg.model.
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file

            result = set_peft_model_state_dict(self.model, load_file(str(adapter), device=str(self.cfg.device)))
            unexpected = getattr(result, "unexpected_keys", None) or []
            if unexpected:
                raise RuntimeError(f"LoRA checkpoint {model_dir} does not match this model ({len(unexpected)} "
                                   f"unexpected weights, e.g. {unexpected[:3]}); resume with the same --lora-rank and --model")
            return
        loaded = load_policy_model(str(model_dir), device=self.cfg.device) if not hasattr(self.pm, "load_weights") else None
        if loaded is None:
            self.pm.load_weights(str(model_dir))  # type: ignore[attr-defined]
            return
        sd = loaded.model.state_dict()
        missing = self.model.load_state_dict(sd, strict=False)
        if missing.missing_keys:
            warnings.warn(f"checkpoint lacks {len(missing.missing_keys)} weights, e.g. {missing.missing_keys[:3]}")

    # ------------------------------------------------------------ eval
    def evaluate(self, split: str | None = None, episodes: int | None = None, temperature: float | None = None) -> dict[str, float]:
        """Evaluate with the config's eval settings (``eval_temperature``/``eval_top_p``/``eval_top_k``,
        TTI when ``eval_tti``, as the released scripts); ``temperature`` overrides the config's."""
        eval_cfg = copy.copy(self.cfg)
        eval_cfg.tti, eval_cfg.tds = self.cfg.eval_tti, False  # the released loop runs TDS only in training
        return evaluate(
            self.pm,
            self.cfg.env_id,
            split=split if split is not None else self.cfg.eval_split,
            episodes=episodes or self.cfg.eval_episodes,
            env_kwargs=self.cfg.env_kwargs,
            max_new_tokens=self.cfg.max_new_tokens,
            temperature=self.cfg.eval_temperature if temperature is None else temperature,
            top_p=self.cfg.eval_top_p,
            top_k=self.cfg.eval_top_k,
            seed=self.cfg.eval_seed,
            max_turns=self.cfg.max_turns,
            policy=wrap_policy(self.base_policy, eval_cfg),
        )


def evaluate(
    pm: PolicyModel,
    env_id: str,
    *,
    split: str | None = "valid_seen",
    episodes: int = 32,
    env_kwargs: dict | None = None,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    batch: int = 16,
    max_turns: int | None = None,
    policy: LLMPolicy | None = None,
    reset_options: dict | None = None,
) -> dict[str, float]:
    """Success on a fixed held-out set: episodes reset with seeds ``0 .. episodes-1`` of ``split``.

    Uses ``policy`` as given (the trainer passes the unwrapped one, or TTI-wrapped when
    ``eval_tti``), greedy by default; sampled evaluation (``temperature``, ``top_p``,
    ``top_k``) is seeded by ``seed``, so two evaluations of the same weights give the same figures. ``reset_options`` are added to every reset (e.g.
    ALFWorld's ``{"game": "seed"}``: episode k plays game k of the split).
    """
    policy = policy or pm.make_policy()
    batch = max(1, min(batch, episodes))
    envs = make_group_envs(env_id, batch, **(env_kwargs or {}))
    options = {"split": split} if split else {}
    options.update(reset_options or {})
    trajs = []
    was_training = pm.model.training
    pm.model.eval()
    try:
        with torch.no_grad():
            for k in range(0, episodes, batch):
                n = min(batch, episodes - k)
                if n != envs.num_envs:
                    envs.close()
                    envs = make_group_envs(env_id, n, **(env_kwargs or {}))
                r = collect_rollouts(
                    envs,
                    policy,
                    n_tasks=n,
                    group_size=1,
                    seeds=list(range(seed + k, seed + k + n)),
                    sampling=SamplingConfig(temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens, seed=seed,
                                            stop=response_spec_of(env_id).stop),
                    reset_options=options,
                    episode_prefix=f"eval{k}",
                    max_turns=max_turns,
                )
                trajs.extend(r.trajectories)
    finally:
        envs.close()
        pm.model.train(was_training)
    stats = Rollout(trajs).stats()
    return {
        "eval/success": stats["charts/success"],
        "eval/task_score": stats["charts/task_score"],
        "eval/turns": stats["charts/turns"],
        "eval/response_tokens": stats["charts/response_tokens"],
        "eval/format_valid": stats["charts/format_valid"],
        "eval/action_valid": stats["charts/action_valid"],
        "eval/episodes": float(len(trajs)),
    }
