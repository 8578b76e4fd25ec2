"""VLLMPolicy: in-process vLLM (GPU machines). NOT IMPLEMENTED YET, and untested here.

vLLM has no CPU wheel and cannot be installed on the development machines, so this
backend could not be written and checked against a running vLLM. Until it is, use
``vllm serve MODEL`` and :class:`~t2po_gym.policies.openai_compat.OpenAIPolicy`
(``--policy openai:http://127.0.0.1:8000/v1``), which supports the signal, TTI and TDS.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VLLMPolicy"]


class VLLMPolicy:
    """Placeholder for the in-process vLLM backend (see the module docstring)."""

    def __init__(self, model: str, **kwargs: Any) -> None:
        raise NotImplementedError(
            "VLLMPolicy is not implemented yet: serve the model with `vllm serve MODEL` and use "
            "OpenAIPolicy('http://127.0.0.1:8000/v1') (--policy openai:URL) instead"
        )
