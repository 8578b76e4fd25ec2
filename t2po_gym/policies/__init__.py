"""LLM policies: the ``LLMPolicy`` protocol, its records, and the backends.

Backends import their heavy dependencies lazily: ``from t2po_gym.policies import HFPolicy``
imports torch and transformers only when the name is first used.
"""

from __future__ import annotations

from typing import Any

from t2po_gym.policies.base import (
    FORCED_CLOSE_TEXT,
    DecodeController,
    Generation,
    LLMPolicy,
    SamplingConfig,
    check_prompts,
)

__all__ = [
    "SamplingConfig",
    "Generation",
    "LLMPolicy",
    "DecodeController",
    "check_prompts",
    "FORCED_CLOSE_TEXT",
    "HFPolicy",
    "OpenAIPolicy",
    "VLLMPolicy",
    "build_tiny_model",
]

_LAZY = {
    "HFPolicy": "t2po_gym.policies.hf",
    "OpenAIPolicy": "t2po_gym.policies.openai_compat",
    "VLLMPolicy": "t2po_gym.policies.vllm_backend",
    "build_tiny_model": "t2po_gym.policies.tiny",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 't2po_gym.policies' has no attribute {name!r}")
