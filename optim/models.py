"""The model side of training: a causal LM, how it encodes text, how it samples, how it saves.

The trainer needs four things from a model, whatever its backend:

* ``model``: an ``nn.Module`` whose ``forward(input_ids=, attention_mask=, output_hidden_states=)``
  returns an object with ``.logits`` ``[B, L, V]`` (and ``.hidden_states`` when asked);
* ``make_policy()``: an :class:`~t2po_gym.policies.base.LLMPolicy` that samples *from this
  same module* (so updates are seen by the next rollout) and reports ``prompt_ids``;
* ``encode_prompt`` / ``encode_response``: the ids the policy would see / produce (for SFT);
* ``save(path)``: write weights + tokenizer so that :func:`load_policy_model` reads them back.

:class:`HFPolicyModel` implements it for Hugging Face causal LMs (``tiny`` included).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from t2po_gym.policies.base import LLMPolicy

__all__ = ["PolicyModel", "HFPolicyModel", "load_policy_model", "MODEL_MARKER", "free_cores", "choose_torch_threads"]

#: Marker file saved next to our own from-scratch models (records how they were built).
MODEL_MARKER = "t2po_model.json"


@runtime_checkable
class PolicyModel(Protocol):
    model: nn.Module
    pad_id: int
    hidden_size: int

    def make_policy(self) -> LLMPolicy: ...

    def encode_prompt(self, text: str) -> list[int]: ...

    def encode_response(self, text: str) -> list[int]: ...

    def save(self, path: str) -> None: ...


class HFPolicyModel:
    """A Hugging Face causal LM + tokenizer, sampled through ``HFPolicy``.

    Args:
        model: a ``*ForCausalLM`` (parameters in float32 on CPU; on CUDA the trainer
            autocasts to bfloat16).
        tokenizer: its tokenizer.
        device: where the model lives.
        meta: extra facts saved into :data:`MODEL_MARKER` (e.g. how it was built).
    """

    def __init__(self, model: nn.Module, tokenizer: Any, device: str = "cpu", meta: dict | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.meta = dict(meta or {})
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        self.hidden_size = int(model.config.hidden_size)
        self._policy: LLMPolicy | None = None
        # the prompt side every policy of this model gets (TrainConfig.policy_kwargs):
        # chat_template, system_prompt, chat_template_kwargs, assistant_prefill
        self.policy_kwargs: dict[str, Any] = {}

    def make_policy(self, **kwargs: Any) -> LLMPolicy:
        from t2po_gym.policies.hf import HFPolicy

        kwargs = {**self.policy_kwargs, **kwargs}
        kwargs.setdefault("truncate_prompt", True)
        return HFPolicy(self.model, self.tokenizer, device=self.device, **kwargs)

    def set_policy_kwargs(self, **kwargs: Any) -> None:
        """Set the prompt side (see :attr:`policy_kwargs`); later policies and encodings use it."""
        self.policy_kwargs = dict(kwargs)
        self._policy = None

    def response_prefix(self, text: str) -> str:
        """What the rendered prompt already opened of the response (e.g. a template's ``<think>``)."""
        if self._policy is None:
            self._policy = self.make_policy()
        return self._policy.response_prefix(text)

    def encode_prompt(self, text: str, max_new_tokens: int = 64) -> list[int]:
        if self._policy is None:
            self._policy = self.make_policy()
        return list(self._policy.encode_prompt(text, max_new_tokens))

    def encode_response(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def save(self, path: str) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        model = self.model
        if hasattr(model, "merge_and_unload") and getattr(model, "peft_config", None):
            # Save the adapter; the base is reloaded from its own path.
            model.save_pretrained(path)
        else:
            model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        if self.meta:
            with open(os.path.join(path, MODEL_MARKER), "w") as f:
                json.dump(self.meta, f, indent=1)


def _cgroup_cpu_limit() -> float | None:
    """CPUs allowed by a cgroup v2 quota (``/sys/fs/cgroup/cpu.max``), or None when unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    try:
        return max(float(quota) / float(period), 1.0)
    except (ValueError, ZeroDivisionError):
        return None


def free_cores() -> tuple[int, int, float]:
    """``(free, usable, load)``: cores this process may use and how many of them are idle.

    ``usable`` is the CPU affinity mask (``os.sched_getaffinity``), capped by a cgroup CPU
    quota; ``load`` is the 1-minute load average, our own running thread excluded. ``free``
    is ``usable - load`` rounded, at least 1.
    """
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        usable = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    if limit is not None:
        usable = min(usable, int(limit))
    try:
        load = max(os.getloadavg()[0] - 1.0, 0.0)  # the load counts this (running) process
    except (AttributeError, OSError):
        load = 0.0
    return max(1, int(round(usable - load))), usable, load


def choose_torch_threads(log: Any = None) -> int:
    """torch threads for CPU training: the cores that are free now (``$T2PO_THREADS`` overrides).

    More threads than free cores oversubscribe them: with 2 threads on 2 cores shared with
    other jobs, SFT ran 4-6x slower than on 1 (0.1 s a step became 1.0-5.9 s). ``log`` (e.g.
    ``print``) receives one line with the choice and why.
    """
    env = os.environ.get("T2PO_THREADS")
    free, usable, load = free_cores()
    if env:
        try:
            n = max(1, int(env))
        except ValueError:
            raise ValueError(f"T2PO_THREADS must be a whole number of threads, got {env!r}") from None
        why = "$T2PO_THREADS"
    else:
        n, why = free, f"{usable} usable cores, load {load:.1f} from other work"
    if log is not None:
        log(f"torch threads: {n} ({why})")
    return n


def _resolve_model_dir(spec: str) -> str:
    """A checkpoint directory of ours holds the model in ``model/``; accept either."""
    p = Path(spec)
    if (p / "model" / "config.json").exists():
        return str(p / "model")
    if (p / "config.json").exists():
        return str(p)
    from optim.checkpoint import latest_checkpoint

    ckpt = latest_checkpoint(p) if p.is_dir() else None
    if ckpt is not None:
        return str(ckpt / "model")
    return spec


def _dtype_kwarg(dtype) -> dict:
    """``from_pretrained``'s dtype keyword: ``dtype`` since transformers 4.56, ``torch_dtype`` before."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype": dtype} if (major, minor) >= (4, 56) else {"torch_dtype": dtype}


def load_policy_model(
    spec: str,
    *,
    device: str = "cpu",
    seed: int = 0,
    lora_rank: int = 0,
    lora_alpha: int = 32,
    tiny_kwargs: dict | None = None,
) -> HFPolicyModel:
    """Load ``spec``: ``tiny``, a checkpoint directory of ours, or a Hugging Face model path.

    Parameters stay float32 (mixed precision is the trainer's job); ``lora_rank > 0`` wraps
    the model with peft LoRA adapters on the attention and MLP projections.
    """
    if spec == "tiny":
        from t2po_gym.policies.tiny import build_tiny_model

        model, tok = build_tiny_model(seed=seed, **(tiny_kwargs or {}))
        meta = {"kind": "tiny", "seed": seed, **(tiny_kwargs or {})}
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = _resolve_model_dir(spec)
        if not os.path.exists(path) and os.environ.get("HF_HUB_OFFLINE") is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            tok = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, **_dtype_kwarg(torch.float32))
        except OSError as exc:
            raise FileNotFoundError(
                f"cannot load model {spec!r}: {exc}. Pass --model tiny, a checkpoint directory, "
                "or a local Hugging Face model directory (no hub downloads offline)."
            ) from exc
        meta = {}
        marker = Path(path) / MODEL_MARKER
        if marker.exists():
            meta = json.loads(marker.read_text())
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
    if lora_rank > 0:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError as exc:
            raise ImportError("LoRA needs peft: pip install 't2po-gym[train]'") from exc
        lcfg = LoraConfig(
            r=lora_rank,
            lora_alpha=lora_alpha,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, lcfg)
    model.to(device)
    return HFPolicyModel(model, tok, device=device, meta=meta)
