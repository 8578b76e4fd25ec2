"""``make_policy("hf:PATH" | "openai:URL" | "vllm:NAME", tti=..., tds=...)``: a policy from a spec string."""

from __future__ import annotations

from typing import Any

from t2po_gym.policies.base import LLMPolicy

__all__ = ["make_policy"]


def make_policy(
    spec: str,
    *,
    tti: bool = False,
    tds: bool = False,
    signal: str = "paper",
    **backend_kwargs: Any,
) -> LLMPolicy:
    """Build a backend from ``spec`` and stack the wrappers: ``TurnDedup(ThinkingIntervention(backend))``.

    - ``hf:PATH``: :class:`HFPolicy` on a ``save_pretrained`` directory or a ``.gguf`` file;
      ``hf:tiny`` builds the tiny random model (smoke tests).
    - ``openai:URL``: :class:`OpenAIPolicy` on an OpenAI-compatible server, e.g.
      ``openai:http://127.0.0.1:8000/v1``.
    - ``vllm:NAME``: :class:`VLLMPolicy` (GPU machines with vLLM installed).
    """
    kind, sep, target = spec.partition(":")
    if not sep or not target:
        raise ValueError(f"policy spec {spec!r} must look like hf:PATH, openai:URL or vllm:NAME")
    want_signal = signal if (tti or tds) else None
    if kind == "hf":
        from t2po_gym.policies.hf import HFPolicy

        if target == "tiny":
            from t2po_gym.policies.tiny import build_tiny_model

            model, tok = build_tiny_model()
            policy: LLMPolicy = HFPolicy(model, tok, signal=want_signal, **backend_kwargs)
        else:
            policy = HFPolicy(target, signal=want_signal, **backend_kwargs)
    elif kind == "openai":
        from t2po_gym.policies.openai_compat import OpenAIPolicy

        policy = OpenAIPolicy(target, signal=want_signal, **backend_kwargs)
    elif kind == "vllm":
        from t2po_gym.policies.vllm_backend import VLLMPolicy

        policy = VLLMPolicy(target, signal=want_signal, **backend_kwargs)
    else:
        raise ValueError(f"unknown policy backend {kind!r} in {spec!r}: use hf, openai or vllm")
    if tti:
        from t2po_gym.wrappers.tti import ThinkingIntervention

        policy = ThinkingIntervention(policy, signal=signal)
    if tds:
        from t2po_gym.wrappers.tds import TurnDedup

        policy = TurnDedup(policy, signal=signal, turn_mean="geometric" if signal == "paper" else "arithmetic")
    return policy
