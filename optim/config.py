"""Training configuration: one dataclass, presets per (algorithm, env).

The trainer reads a :class:`TrainConfig` and nothing else. ``preset(algo, env=...)`` starts
from the algorithm's dataclass (:class:`T2POConfig` ...) and applies the values of the
released T2PO scripts for that env (WillDreamer/T2PO-ICML
``examples/{embody,shop,search}_agent_trainer/train_*.sh`` and the recipe YAMLs they load):
:data:`ENV_PRESETS` (every algorithm) and :data:`ALGO_ENV_PRESETS` (T2PO's TTI / TDS). Each
value carries its source file and line, and :data:`NOT_FOLLOWED` lists what the trainer
cannot reproduce and why; ``python -m optim.presets_table`` renders all of it as
``docs/presets.md`` (a test fails when the two differ).

The env is inferred from ``env_id`` when not given (``T2PO/ALFWorld-v0`` -> ``alfworld``,
``T2PO/WebShop*`` -> ``webshop``, ``T2PO/SearchQA*`` -> ``search``); an unknown env id gets
the bare dataclass defaults. Explicit overrides always win.
"""

from __future__ import annotations

import copy
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
    "PresetValue",
    "ENV_PRESETS",
    "ALGO_ENV_PRESETS",
    "NOT_FOLLOWED",
    "ENVS",
    "env_key",
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
    top_k: int = 0
    """Rollout top-k (0: off; vLLM's -1)."""
    max_new_tokens: int = 64
    """Cap on tokens per response."""
    tti: bool = False
    """Wrap the policy with ThinkingIntervention (TTI)."""
    tds: bool = False
    """Wrap the policy with TurnDedup (TDS)."""
    tti_kwargs: dict[str, Any] = field(default_factory=dict)
    tds_kwargs: dict[str, Any] = field(default_factory=dict)
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    """The policy's prompt side, passed to ``HFPolicy``: ``chat_template`` (bool),
    ``system_prompt``, ``chat_template_kwargs`` (e.g. ``{"enable_thinking": true}`` for Qwen3)
    and ``assistant_prefill``. Rollouts, evaluation and SFT prompts all use it, so a
    template that opens ``<think>`` is trained on the same tokens the env judged."""

    # --- estimator and rewards
    gamma: float = 0.95
    """Discount of step returns (GiGPO / T2PO) and GAE (PPO)."""
    gae_lambda: float = 0.95
    """GAE lambda (PPO only)."""
    norm_mode: str = "mean_norm"
    """``mean_norm`` or ``mean_std_norm`` for GiGPO / T2PO (GRPO always uses ``mean_std_norm``)."""
    step_weight: float = 1.0
    """``w`` in ``A = A_E + w * A_S``."""
    advantage_variant: str = "released"
    """``released`` (default): GRPO / GiGPO / T2PO advantages as the released pipeline computes
    them (:func:`optim.advantage.released_row_advantages`: every turn row is a sample of its
    group's episode baseline, the invalid-action penalty is subtracted once from that row's
    score and step return, unbiased std, eps 1e-6). ``trajectory``: this project's earlier
    estimator (one sample per episode, penalties in the per-step reward, so summed into the
    episode return and discounted into earlier returns, population std)."""
    anchor_similarity: float | None = None
    """GiGPO anchor groups by text similarity >= this (``None``: exact match; the released
    Search-QA script uses 0.9)."""
    reward_from_won: bool = False
    """Replace the env reward by ``1[won]`` on the episode's last turn (then ``reward_scale``):
    the released WebShop env pays 10 for a perfect purchase and 0 otherwise, whatever the
    partial score (``agent_system/environments/env_package/webshop/envs.py:L47-53``)."""
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
    """Charged to a turn whose action is invalid: with ``advantage_variant="released"`` once, from
    that turn row's episode score and its discounted step return; with ``"trajectory"`` from the
    turn's reward (so summed into the episode return and discounted into earlier turns)."""
    format_penalty: float = 0.0
    """Subtracted from the reward of a turn that breaks the strict format (0 in every preset: the
    released code has no format penalty; a broken format already makes the action invalid)."""

    # --- update
    lr: float | None = None
    """Learning rate; ``None`` = 1e-6 for real models, 3e-4 for ``tiny``/our from-scratch models."""
    value_lr: float = 1e-3
    """Learning rate of the PPO value head."""
    weight_decay: float = 0.0
    clip_eps: float = 0.2
    """PPO clip range."""
    dual_clip_c: float | None = 3.0
    """Dual-clip PPO lower bound on the loss of a negative-advantage token (verl's
    ``clip_ratio_c``, always on in the released code); ``None`` disables it."""
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
    eval_temperature: float = 0.0
    """Evaluation sampling temperature (0: greedy). The released ALFWorld / WebShop scripts
    evaluate sampled at 0.6, top-p 0.95, top-k 20 with TTI on (the env presets do)."""
    eval_top_p: float = 1.0
    eval_top_k: int = 0
    eval_tti: bool = False
    """Evaluate through the TTI wrapper (``tti_kwargs``), as the released rollout does: its
    logits processor is part of the vLLM sampling params in validation too. TDS is never used
    in evaluation (the released loop runs it only when training)."""
    eval_seed: int = 0
    """Sampling seed of evaluation (fixed, so two evaluations of the same weights agree)."""
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
        if self.advantage_variant not in ("released", "trajectory"):
            raise ValueError(f"advantage_variant must be 'released' or 'trajectory', got {self.advantage_variant!r}")
        if self.anchor_similarity is not None and not 0.0 < self.anchor_similarity < 1.0:
            raise ValueError(f"anchor_similarity must be in (0, 1) or None, got {self.anchor_similarity}")
        if self.dual_clip_c is not None and not self.dual_clip_c > 1.0:
            raise ValueError(f"dual_clip_c must be > 1 (verl asserts it) or None, got {self.dual_clip_c}")
        if self.eval_temperature < 0 or not 0 < self.eval_top_p <= 1 or self.eval_top_k < 0 or self.top_k < 0:
            raise ValueError("eval_temperature >= 0, 0 < eval_top_p <= 1, eval_top_k >= 0 and top_k >= 0 are required")
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
    """T2PO: the GiGPO estimator, TTI and TDS in their released modes in the rollout.

    No format penalty: the released pipeline has none (a broken format is an invalid action,
    which pays the 0.1 invalid-action penalty); ``format_penalty`` stays available.
    """

    algo: str = "t2po"
    tti: bool = True
    tds: bool = True
    tti_kwargs: dict[str, Any] = field(default_factory=lambda: {"mode": "released"})
    tds_kwargs: dict[str, Any] = field(default_factory=lambda: {"mode": "released"})


@dataclass
class GiGPOConfig(TrainConfig):
    """GiGPO: episode + anchor-state step advantage (w = 1)."""

    algo: str = "gigpo"


@dataclass
class GRPOConfig(TrainConfig):
    """GRPO: group-normalised episode return (over the group's turn rows), no critic."""

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


# ------------------------------------------------------------------ per-env presets

ENVS = ("alfworld", "webshop", "search")

_A = "examples/embody_agent_trainer/train_alfworld.sh"
_W = "examples/shop_agent_trainer/train_webshop.sh"
_S = "examples/search_agent_trainer/train_search.sh"
_AY = "recipe/world_agent/config/alfworld_.yaml"
_WY = "recipe/shop_agent/config/webshop_.yaml"
_SY = "recipe/search_agent/config/search_.yaml"
_ROLL = "agent_system/multi_turn_rollout/rollout_loop.py"
_VLLM = "recipe/world_agent/workers/rollout/vllm_rollout_spmd.py"


@dataclass(frozen=True)
class PresetValue:
    """One preset value and where it comes from.

    Attributes:
        value: the :class:`TrainConfig` value.
        source: released file and line(s), ``path:Lnn``.
        note: how the released setting maps onto ours, when not one to one.
    """

    value: Any
    source: str
    note: str = ""


def _p(value: Any, source: str, note: str = "") -> PresetValue:
    return PresetValue(value, source, note)


def _shared(f: str, y: str) -> dict[str, PresetValue]:
    """Values shared by the three scripts (YAML lines as in alfworld_.yaml; see _search_yaml_fix)."""
    L = lambda n: f"{y}:L{n}"  # noqa: E731
    return {
        "clip_eps": _p(0.2, L(61) + "-63", "clip_ratio, clip_ratio_low = clip_ratio_high"),
        "dual_clip_c": _p(3.0, L(64), "clip_ratio_c (dual-clip PPO)"),
        "max_grad_norm": _p(1.0, L(59), "grad_clip"),
        "update_epochs": _p(1, L(72), "ppo_epochs"),
        "weight_decay": _p(0.01, L(85), "actor optim weight_decay (AdamW)"),
        "temperature": _p(1.0, L(113), "rollout temperature"),
        "top_p": _p(1.0, L(115), "rollout top_p"),
        "top_k": _p(0, L(114), "rollout top_k -1 (vLLM: off) = our 0"),
        "gae_lambda": _p(1.0, L(241), "algorithm.lam (PPO only)"),
        "value_lr": _p(1e-5, L(162), "critic optim lr (PPO only)"),
        "invalid_action_penalty": _p(0.1, f"{f}:L{ {_A: 94, _W: 99, _S: 83}[f] }", "invalid_action_penalty_coef"),
        "format_penalty": _p(0.0, f"{f}:L{ {_A: 93, _W: 98, _S: 82}[f] }", "no format penalty in the released code"),
        "gamma": _p(0.95, f"{f}:L{ {_A: 96, _W: 101, _S: 85}[f] }", "algorithm.gamma"),
        "step_weight": _p(1.0, f"{f}:L{ {_A: 97, _W: 102, _S: 86}[f] }", "algorithm.gigpo.step_advantage_w"),
        "advantage_variant": _p("released", "recipe/world_agent/ppo/core_algos.py:L1055", "episode_norm_reward, compute_mean_std_cross_steps=True"),
        "lr": _p(None, f"{f}:L{ {_A: 67, _W: 74, _S: 60}[f] }", "1e-6: resolved_lr() gives 1e-6 for real models (3e-4 for our tiny from-scratch ones)"),
    }


def _search_yaml_fix(d: dict[str, PresetValue]) -> dict[str, PresetValue]:
    # search_.yaml lacks alfworld_.yaml's line 71 (kl_loss_update): lines after it are one lower
    fixed = {}
    for k, v in d.items():
        src = v.source
        if src.startswith(_SY + ":L"):
            lines = src[len(_SY) + 2 :].split("-")
            lines = [str(int(n) - 1) if int(n) > 71 else n for n in lines]
            src = f"{_SY}:L" + "-".join(lines)
        fixed[k] = PresetValue(v.value, src, v.note)
    return fixed


#: Values every algorithm takes from the released script of the env.
ENV_PRESETS: dict[str, dict[str, PresetValue]] = {
    "alfworld": {
        **_shared(_A, _AY),
        "n_tasks": _p(16, f"{_A}:L25", "train_data_size"),
        "group_size": _p(8, f"{_A}:L27", "group_size -> env.rollout.n"),
        "norm_mode": _p("mean_std_norm", f"{_A}:L28", "algorithm.gigpo.mode"),
        "max_new_tokens": _p(500, f"{_A}:L62", "data.max_response_length"),
        "minibatch_size": _p(256, f"{_A}:L69", "ppo_mini_batch_size (turn rows)"),
        "microbatch_size": _p(32, f"{_A}:L70", "ppo_micro_batch_size_per_gpu"),
        "kl_coef": _p(0.01, f"{_A}:L71-74", "use_kl_loss=True, kl_loss_coef 0.01, low_var_kl"),
        "entropy_coef": _p(0.001, f"{_AY}:L66", "entropy_coeff"),
        "eval_temperature": _p(0.6, f"{_A}:L86-87", "val_kwargs do_sample=True, temperature"),
        "eval_top_p": _p(0.95, f"{_A}:L88", "val_kwargs.top_p"),
        "eval_top_k": _p(20, f"{_A}:L89", "val_kwargs.top_k"),
        "reward_scale": _p(10.0, "agent_system/environments/env_package/alfworld/envs.py:L52", "reward = 10 * won"),
        "reward_from_won": _p(False, "agent_system/environments/env_package/alfworld/envs.py:L52", "our ALFWorld pays 1 per win already"),
        "max_turns": _p(50, f"{_A}:L103", "env.max_steps"),
        "env_kwargs": _p({"history_length": 2}, f"{_AY}:L300", "env.history_length"),
        "steps": _p(200, f"{_A}:L25,L115", "total_epochs 200 x 1 batch (the train parquet has train_data_size rows)"),
        "eval_episodes": _p(128, f"{_A}:L26", "val_data_size"),
        "eval_every": _p(10, f"{_A}:L114", "trainer.test_freq"),
        "checkpoint_every": _p(10, f"{_A}:L113", "trainer.save_freq"),
        "keep_checkpoints": _p(2, f"{_A}:L116", "max_actor_ckpt_to_keep"),
    },
    "webshop": {
        **_shared(_W, _WY),
        "n_tasks": _p(16, f"{_W}:L33", "train_data_size"),
        "group_size": _p(8, f"{_W}:L35", "group_size -> env.rollout.n"),
        "norm_mode": _p("mean_norm", f"{_W}:L36", "algorithm.gigpo.mode"),
        "max_new_tokens": _p(300, f"{_W}:L69", "data.max_response_length"),
        "minibatch_size": _p(128, f"{_W}:L76", "ppo_mini_batch_size (turn rows)"),
        "microbatch_size": _p(8, f"{_W}:L77", "ppo_micro_batch_size_per_gpu"),
        "kl_coef": _p(0.0, f"{_W}:L78", "use_kl_loss=False"),
        "entropy_coef": _p(0.001, f"{_WY}:L66", "entropy_coeff"),
        "eval_temperature": _p(0.6, f"{_W}:L91", "val_kwargs.temperature (do_sample=True, L94)"),
        "eval_top_p": _p(0.95, f"{_W}:L92", "val_kwargs.top_p"),
        "eval_top_k": _p(20, f"{_W}:L93", "val_kwargs.top_k"),
        "reward_scale": _p(10.0, "agent_system/environments/env_package/webshop/envs.py:L47-53", "10 for a perfect purchase, else 0"),
        "reward_from_won": _p(True, "agent_system/environments/env_package/webshop/envs.py:L47-53", "partial scores pay 0"),
        "max_turns": _p(15, f"{_W}:L108", "env.max_steps"),
        "env_kwargs": _p({"history_length": 2}, f"{_WY}:L300", "env.history_length"),
        "steps": _p(200, f"{_W}:L33,L120", "total_epochs 200 x 1 batch"),
        "eval_episodes": _p(256, f"{_W}:L34,L55", "2 x val_data_size tasks in the val parquet"),
        "eval_every": _p(10, f"{_W}:L119", "trainer.test_freq"),
        "checkpoint_every": _p(10, f"{_W}:L118", "trainer.save_freq"),
    },
    "search": {
        **_search_yaml_fix(_shared(_S, _SY)),
        "n_tasks": _p(256, f"{_S}:L14", "train_data_size"),
        "group_size": _p(5, f"{_S}:L16", "group_size -> env.rollout.n"),
        "norm_mode": _p("mean_std_norm", f"{_S}:L20", "algorithm.gigpo.mode"),
        "anchor_similarity": _p(0.9, f"{_S}:L21-22,L88-89", "enable_similarity=True, similarity_thresh"),
        "max_new_tokens": _p(500, f"{_S}:L55", "data.max_response_length"),
        "minibatch_size": _p(256, f"{_S}:L63", "ppo_mini_batch_size (turn rows)"),
        "microbatch_size": _p(16, f"{_S}:L64", "ppo_micro_batch_size_per_gpu"),
        "kl_coef": _p(0.0, f"{_S}:L65", "use_kl_loss=False"),
        "entropy_coef": _p(0.0, f"{_S}:L68", "entropy_coeff=0"),
        "eval_temperature": _p(0.0, f"{_SY}:L148-150", "val_kwargs: greedy (the script sets none)"),
        "eval_top_p": _p(1.0, f"{_SY}:L147", "val_kwargs.top_p"),
        "eval_top_k": _p(0, f"{_SY}:L146", "val_kwargs.top_k -1"),
        "reward_scale": _p(1.0, "agent_system/environments/env_package/search/envs.py:L91-96", "the env's exact-match reward, unscaled"),
        "reward_from_won": _p(False, "agent_system/environments/env_package/search/envs.py:L91-96", ""),
        "max_turns": _p(4, f"{_S}:L94", "env.max_steps"),
        "env_kwargs": _p({"history_length": 4}, f"{_S}:L96", "env.history_length"),
        "eval_every": _p(50, f"{_S}:L105", "trainer.test_freq"),
        "checkpoint_every": _p(50, f"{_S}:L104", "trainer.save_freq"),
        "eval_episodes": _p(512, f"{_S}:L15", "val_data_size (one val batch)"),
    },
}

#: T2PO's own values per env (TTI and TDS); the other algorithms run without them.
ALGO_ENV_PRESETS: dict[tuple[str, str], dict[str, PresetValue]] = {
    ("t2po", env): {
        "tti": _p(True, f"{_VLLM}:L371-378", "ThinkLogitsProcessor is always in the sampling params"),
        "tti_kwargs": _p(
            {"mode": "released", "max_think_tokens": cap},
            src,
            ("train_search.sh sets no num_think_tokens: no cap; " if cap is None else "")
            + "TTIConfig(mode='released'): patience 20, eps 1e-4, reference signal a=0.6 "
            f"({_VLLM}:L104-107), counter over all generated tokens, '</think>' forced alone and trained on",
        ),
        "tds": _p(True, tds_src, "algorithm.TDS.enable=True"),
        "tds_kwargs": _p(
            {"mode": "released", "max_tries": 2},
            tds_src,
            f"TDSConfig(mode='released'): eta 0.3 ({_ROLL}:L636), resample iff 0 < |delta| < eta "
            f"({_ROLL}:L723), first 33 tokens skipped ({_VLLM}:L190), max_try 2",
        ),
        "eval_tti": _p(eval_tti, f"{_VLLM}:L371-378,L462-475", "the processor stays on in validation; TDS does not (rollout_loop.py:L599)"),
    }
    for env, cap, src, tds_src, eval_tti in [
        ("alfworld", 450, f"{_A}:L34,L92", f"{_A}:L99-100", True),
        ("webshop", 450, f"{_W}:L31,L95", f"{_W}:L104-105", True),
        ("search", None, "recipe/search_agent/workers/rollout/vllm_rollout_spmd.py:L375", f"{_S}:L90-91", True),
    ]
}

#: What the trainer cannot reproduce: (env or "all", setting, released value, source, reason).
NOT_FOLLOWED: list[tuple[str, str, str, str, str]] = [
    ("all", "lr (tiny models)", "1e-6", f"{_A}:L67",
     "a from-scratch 0.15M-parameter model does not move at 1e-6: resolved_lr() uses 3e-4 for `tiny` and our own checkpoints; real HF models get 1e-6"),
    ("all", "FSDP param/optimizer offload, gradient checkpointing, remove-padding, vLLM engine settings",
     "on", f"{_A}:L63-85", "single-process trainer; memory layout, not a hyperparameter of the update"),
    ("all", "max_prompt_length / truncation", "2048 (ALFWorld), 4096", f"{_A}:L61,L64",
     "no prompt cap in the trainer: prompts are the env's own (history window); a longer prompt is not dropped"),
    ("all", "actor shuffle / balance_batch", "shuffle False, balance_batch True", f"{_AY}:L73,L265",
     "minibatch order is seeded-random here; verl reorders rows to balance tokens per GPU, which also changes the order"),
    ("all", "loss aggregation across micro-batches", "token-mean per micro-batch, scaled by 1/grad-accum", f"{_AY}:L65",
     "we take the token mean over the whole mini-batch (micro-batches weighted by their token counts)"),
    ("all", "old log-probs", "recomputed by the actor after the rollout", "recipe/world_agent/ppo/ray_trainer.py:L935",
     "we keep the sampler's log-probs (same weights, so equal up to numerics)"),
    ("all", "TTI shared state", "one stagnation counter for all sequences (vLLM calls the processor per row with batch 1), kept across calls",
     f"{_VLLM}:L136-143,L201-206", "per-sequence state, reset at every generation (issue 15; documented bug)"),
    ("all", "TDS recorder", "never cleared; keyed by the hash of the first 32 generated tokens; scores read for the first batch_size keys ever recorded",
     f"{_VLLM}:L72-75,L504-570", "per-turn score from the turn's own signal, per-episode previous score (documented bug)"),
    ("all", "TTI with a prompt that opens <think>", "never fires (the vLLM V0 processor sees generated ids only)", f"{_VLLM}:L208-210",
     "we count the prompt's <think> as opened just before the response (Qwen3 writes <think> itself, so the released runs never hit this)"),
    ("all", "PPO critic", "separate critic model, token-level GAE, cliprange_value 0.5", f"{_AY}:L162,L202",
     "value head on the policy, turn-level GAE, value clip = clip_eps"),
    ("all", "GiGPO cross_steps=False variant", "first row's score per trajectory", "recipe/world_agent/ppo/core_algos.py:L1101-1103",
     "not offered; advantage_variant='trajectory' is this project's earlier estimator instead"),
    ("webshop", "keep_checkpoints", "all (max_actor_ckpt_to_keep unset)", f"{_W}:L111-121", "we keep the dataclass default (3)"),
    ("search", "steps", "1 epoch over the Search-R1 train parquet", f"{_S}:L106", "data-dependent; the dataclass default (100) is kept"),
    ("search", "lr warmup", "lr_warmup_steps_ratio 0.1", f"{_S}:L61", "no LR schedule in the trainer (constant LR)"),
    ("search", "keep_checkpoints", "all", f"{_S}:L98-107", "we keep the dataclass default (3)"),
    ("search", "TTI think cap", "num_think_tokens not set (config.num_think_tokens is missing)", f"{_VLLM}:L375",
     "no cap (max_think_tokens=None); the stagnation rule stays on"),
]


def env_key(env_id: str) -> str | None:
    """``alfworld`` / ``webshop`` / ``search`` for our env ids, ``None`` for any other."""
    low = env_id.lower()
    if "alfworld" in low:
        return "alfworld"
    if "webshop" in low:
        return "webshop"
    if "search" in low:
        return "search"
    return None


def preset_values(algo: str, env: str) -> dict[str, PresetValue]:
    """The released values of ``(algo, env)``, with their sources (env values, then T2PO's)."""
    if env not in ENV_PRESETS:
        raise ValueError(f"unknown env {env!r}; choose one of {ENVS}")
    out = dict(ENV_PRESETS[env])
    out.update(ALGO_ENV_PRESETS.get((algo, env), {}))
    return out


def preset(algo: str, env: str | None = None, **overrides: Any) -> TrainConfig:
    """The preset config of ``(algo, env)`` with ``overrides`` applied (unknown keys raise).

    Args:
        algo: ``t2po``, ``gigpo``, ``grpo`` or ``ppo``.
        env: ``alfworld``, ``webshop`` or ``search``; ``None`` infers it from ``env_id``
            (the override, else the dataclass default ALFWorld); an env id we do not know
            (a test env) gets the bare dataclass defaults. ``env_id`` defaults to the env's own.
    """
    if algo not in _PRESETS:
        raise ValueError(f"unknown algo {algo!r}; choose one of {ALGOS}")
    cls = _PRESETS[algo]
    known = {f.name for f in dataclasses.fields(cls)}
    bad = set(overrides) - known
    if bad:
        raise ValueError(f"unknown config fields {sorted(bad)}; known: {sorted(known)}")
    if env is None:
        env = env_key(overrides.get("env_id", cls.env_id))
    elif env not in ENV_PRESETS:
        raise ValueError(f"unknown env {env!r}; choose one of {ENVS}")
    values: dict[str, Any] = {}
    if env is not None:
        values = {k: copy.deepcopy(v.value) for k, v in preset_values(algo, env).items()}
        if "env_id" not in overrides:
            values["env_id"] = _ENV_IDS[env]
    values.update(overrides)
    return cls(**values)


_ENV_IDS = {"alfworld": "T2PO/ALFWorld-v0", "webshop": "T2PO/WebShop-v0", "search": "T2PO/SearchQA-v0"}
