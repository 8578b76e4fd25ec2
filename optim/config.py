"""Training configuration: one dataclass, one subclass per algorithm preset.

The trainer reads a :class:`TrainConfig` and nothing else. Presets differ only in their
defaults (DESIGN.md section 4): group size 8, gamma 0.95, clip 0.2, KL 0.01 to the
reference, learning rate 1e-6 for real models (tiny from-scratch models need a larger one,
see :meth:`TrainConfig.resolved_lr`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALGOS",
    "TrainConfig",
    "T2POConfig",
    "GiGPOConfig",
    "GRPOConfig",
    "PPOConfig",
    "preset",
]

ALGOS = ("t2po", "gigpo", "grpo", "ppo")


@dataclass
class TrainConfig:
    """Everything a training run needs. Field groups: run, env, model, rollout, estimator, update, logging."""

    # --- run
    algo: str = "t2po"
    """Estimator: ``t2po``, ``gigpo``, ``grpo`` or ``ppo``."""
    seed: int = 0
    """Seeds model init, sampling and the task seeds of every step."""
    steps: int = 100
    """Number of rollout + update iterations."""
    out_dir: str = "runs/t2po"
    """Where metrics, curves and checkpoints go."""

    # --- env
    env_id: str = "T2PO/ALFWorld-v0"
    """A registered env id."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra kwargs for ``gym.make_vec`` (e.g. ``history_length``)."""
    train_split: str | None = "train"
    """``options["split"]`` at reset during training (``None``: envs without splits)."""
    eval_split: str | None = "valid_seen"
    """Split used by evaluation."""
    max_turns: int | None = None
    """Cap on turns per episode below the env's own limit (``None``: env default)."""

    # --- model
    model: str = "tiny"
    """``tiny`` (random-init tiny Qwen2), a checkpoint directory of ours, or a Hugging Face path."""
    device: str = "cpu"
    """``cpu`` or ``cuda``."""
    dtype: str = "auto"
    """``auto`` (float32 on CPU, bfloat16 on CUDA), ``float32`` or ``bfloat16``."""
    torch_threads: int | None = None
    """``torch.set_num_threads`` for the run (``None``: torch's default). On a small shared
    CPU box 1 thread is several times faster than oversubscribed cores."""
    lora_rank: int = 0
    """LoRA rank through peft; 0 trains all weights."""
    lora_alpha: int = 32
    """LoRA alpha."""

    # --- rollout
    n_tasks: int = 8
    """Groups (distinct tasks) per step."""
    group_size: int = 8
    """Episodes per group, all reset with the group's seed."""
    temperature: float = 1.0
    """Sampling temperature for rollouts (1.0 keeps old log-probs equal to the model's)."""
    top_p: float = 1.0
    max_new_tokens: int = 64
    """Cap on tokens per response."""
    tti: bool = False
    """Wrap the policy with ThinkingIntervention (TTI)."""
    tds: bool = False
    """Wrap the policy with TurnDedup (TDS)."""
    tti_kwargs: dict[str, Any] = field(default_factory=dict)
    tds_kwargs: dict[str, Any] = field(default_factory=dict)

    # --- estimator and rewards
    gamma: float = 0.95
    """Discount of step returns (GiGPO / T2PO) and GAE (PPO)."""
    gae_lambda: float = 0.95
    """GAE lambda (PPO only)."""
    norm_mode: str = "mean_norm"
    """``mean_norm`` or ``mean_std_norm`` for GiGPO / T2PO (GRPO always uses ``mean_std_norm``)."""
    step_weight: float = 1.0
    """``w`` in ``A = A_E + w * A_S``."""
    reward_scale: float = 1.0
    """Multiplies the env's rewards before the penalties are subtracted. The penalties are
    absolute, so this sets their weight against success: verl-agent trains ALFWorld with
    10 for a win against 0.1 per invalid action; with 1 for a win, a small policy learns
    to emit safe valid commands rather than to win (measured on the demo)."""
    center_turns: bool = False
    """Subtract each group's mean turn advantage (:func:`optim.advantage.center_turn_advantages`),
    so long losing episodes do not push the policy down on average (off: the papers' estimators)."""
    negative_advantage_scale: float = 1.0
    """Multiplies every negative turn advantage (:func:`optim.advantage.scale_negative_advantages`):
    1 is the papers' estimator, 0 trains only on turns that beat their group (self-imitation)."""
    clip_invalid_advantages: bool = False
    """A turn with an invalid action or a broken format never gets a positive advantage
    (:func:`optim.advantage.clip_invalid_advantages`); off: the papers' estimators."""
    invalid_action_penalty: float = 0.1
    """Subtracted from the reward of a turn whose action is invalid."""
    format_penalty: float = 0.0
    """Subtracted from the reward of a turn that breaks the strict format (T2PO: 0.1)."""

    # --- update
    lr: float | None = None
    """Learning rate; ``None`` = 1e-6 for real models, 3e-4 for ``tiny``/our from-scratch models."""
    value_lr: float = 1e-3
    """Learning rate of the PPO value head."""
    weight_decay: float = 0.0
    clip_eps: float = 0.2
    """PPO clip range."""
    kl_coef: float = 0.01
    """Coefficient of the low-variance KL to the frozen reference (0 disables it and the ref model)."""
    entropy_coef: float = 0.0
    """Entropy bonus (logged always)."""
    vf_coef: float = 0.5
    """Value-loss weight (PPO)."""
    max_grad_norm: float = 1.0
    """Gradient clipping; the pre-clip norm is logged as ``losses/grad_norm``."""
    update_epochs: int = 1
    """Passes over the rollout per step."""
    minibatch_size: int = 64
    """Turns per optimizer step."""
    microbatch_size: int = 16
    """Turns per forward pass (gradient accumulation inside a minibatch)."""
    max_update_turns: int | None = None
    """Train on at most this many turns per step (random subset; ``None``: all)."""

    # --- logging and checkpoints
    checkpoint_every: int = 10
    """Write a checkpoint every K steps (and on Ctrl-C and at the end)."""
    keep_checkpoints: int = 3
    """How many checkpoints to keep."""
    eval_every: int = 0
    """Evaluate on ``eval_split`` every K steps (0: only when asked)."""
    eval_episodes: int = 32
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = True
    """Also write TensorBoard event files (needs ``tensorboard``)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field and the fix."""
        if self.algo not in ALGOS:
            raise ValueError(f"algo must be one of {ALGOS}, got {self.algo!r}")
        if self.norm_mode not in ("mean_norm", "mean_std_norm"):
            raise ValueError(f"norm_mode must be 'mean_norm' or 'mean_std_norm', got {self.norm_mode!r}")
        for name in ("steps", "n_tasks", "group_size", "max_new_tokens", "update_epochs", "minibatch_size", "microbatch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.reward_scale > 0:
            raise ValueError(f"reward_scale must be > 0, got {self.reward_scale}")
        if not 0.0 <= self.negative_advantage_scale <= 1.0:
            raise ValueError(f"negative_advantage_scale must be in [0, 1], got {self.negative_advantage_scale}")
        if not 0.0 <= self.gamma <= 1.0 or not 0.0 <= self.gae_lambda <= 1.0:
            raise ValueError("gamma and gae_lambda must be in [0, 1]")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {self.device!r}")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', got {self.dtype!r}")
        if self.algo in ("grpo", "gigpo", "t2po") and self.group_size < 2:
            raise ValueError(f"{self.algo} compares episodes within a group: group_size must be >= 2")

    def resolved_lr(self) -> float:
        if self.lr is not None:
            return float(self.lr)
        return 3e-4 if self.is_small_model() else 1e-6

    def is_small_model(self) -> bool:
        """``tiny`` or one of our own from-scratch checkpoints (a ``t2po_model.json`` marker)."""
        import os

        return self.model == "tiny" or os.path.exists(os.path.join(self.model, "t2po_model.json")) or os.path.exists(
            os.path.join(self.model, "model", "t2po_model.json")
        )

    def resolved_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        return "bfloat16" if self.device.startswith("cuda") else "float32"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}; known: {sorted(known)}")
        return preset(d.get("algo", "t2po"), **{k: v for k, v in d.items() if k != "algo"})


@dataclass
class T2POConfig(TrainConfig):
    """T2PO: GiGPO's estimator, TTI + TDS in the rollout, strict-format penalty 0.1."""

    algo: str = "t2po"
    tti: bool = True
    tds: bool = True
    format_penalty: float = 0.1


@dataclass
class GiGPOConfig(TrainConfig):
    """GiGPO: episode + anchor-state step advantage (``mean_norm``, w = 1)."""

    algo: str = "gigpo"


@dataclass
class GRPOConfig(TrainConfig):
    """GRPO: group-normalised episode return, no critic."""

    algo: str = "grpo"
    norm_mode: str = "mean_std_norm"


@dataclass
class PPOConfig(TrainConfig):
    """PPO: value head + turn-level GAE."""

    algo: str = "ppo"


_PRESETS: dict[str, type[TrainConfig]] = {
    "t2po": T2POConfig,
    "gigpo": GiGPOConfig,
    "grpo": GRPOConfig,
    "ppo": PPOConfig,
}


def preset(algo: str, **overrides: Any) -> TrainConfig:
    """The preset config of ``algo`` with ``overrides`` applied (unknown keys raise)."""
    if algo not in _PRESETS:
        raise ValueError(f"unknown algo {algo!r}; choose one of {ALGOS}")
    cls = _PRESETS[algo]
    known = {f.name for f in dataclasses.fields(cls)}
    bad = set(overrides) - known
    if bad:
        raise ValueError(f"unknown config fields {sorted(bad)}; known: {sorted(known)}")
    return cls(**overrides)
