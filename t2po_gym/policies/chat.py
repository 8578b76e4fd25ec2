"""How a policy turns an env prompt into the text a model is conditioned on.

One :class:`ChatFormat` is shared by every backend (``HFPolicy``, ``OpenAIPolicy``), so
the same settings give the same prompt text on both: the tokenizer's chat template (one
user message, an optional system message, template kwargs such as Qwen3's
``enable_thinking``), then an optional assistant prefill.

**The response prefix.** Reasoning models' templates often open the thought themselves:
R1-distill and Qwen3-Thinking-2507 end the generation prompt with ``<think>\\n``; Qwen3 with
``enable_thinking=False`` ends it with an empty, closed ``<think>\\n\\n</think>\\n\\n``. That
text (from ``<think>`` on) and the prefill are part of the *response* the env must judge,
although their tokens are prompt tokens (they were not sampled). :meth:`ChatFormat.render`
returns it as ``prefix``; backends put it at the head of ``Generation.text`` (and keep its
tokens in ``Generation.prompt_ids``), so that ``env.step(generation.text)`` sees
``<think>...</think><action>...</action>`` and the trainer, which trains on
``prompt_ids + token_ids``, trains on exactly the tokens whose decoded text the env judged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from t2po_gym.protocol import THINK_OPEN

__all__ = ["ChatFormat", "generation_prompt"]


def generation_prompt(tokenizer: Any, messages: list[dict], prompt: str, **template_kwargs: Any) -> tuple[str, str]:
    """``(rendered prompt, the part that add_generation_prompt appended)`` for ``messages``.

    The appended part (e.g. ``"<|im_start|>assistant\\n<think>\\n"``) is the difference between
    the rendering with and without ``add_generation_prompt``; when a template renders the
    two differently, it is what follows the user's ``prompt`` in the rendering.
    """
    full = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **template_kwargs)
    head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False, **template_kwargs)
    if full.startswith(head):
        return full, full[len(head):]
    i = full.rfind(prompt)
    return full, (full[i + len(prompt):] if i >= 0 else "")


@dataclass
class ChatFormat:
    """The prompt side of a policy: chat template, system prompt, template kwargs, prefill.

    Attributes:
        tokenizer: a ``transformers`` tokenizer (needed only when ``use_template``).
        use_template: wrap the env prompt as one user message with the tokenizer's template.
        system_prompt: optional system message (only with the template).
        template_kwargs: extra variables for the template, e.g. ``{"enable_thinking": True}``.
        prefill: text appended after the generation prompt, the start of the assistant's
            answer (e.g. ``"<think>\\n"`` for a model that should always think first).
    """

    tokenizer: Any = None
    use_template: bool = False
    system_prompt: str | None = None
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    prefill: str = ""

    def __post_init__(self) -> None:
        if self.use_template and getattr(self.tokenizer, "chat_template", None) is None:
            raise ValueError("chat_template=True but the tokenizer has none: pass chat_template=False")
        if not isinstance(self.prefill, str):
            raise TypeError(f"assistant_prefill must be a str, got {type(self.prefill).__name__}")
        self.template_kwargs = dict(self.template_kwargs or {})
        for k in ("messages", "tokenize", "add_generation_prompt"):
            if k in self.template_kwargs:
                raise ValueError(f"chat_template_kwargs may not set {k!r}: the policy sets it")

    def render(self, prompt: str) -> tuple[str, str]:
        """``(text the model is conditioned on, response prefix)`` for one env prompt.

        The prefix is what the generation prompt opened (from its ``<think>`` on, if any)
        plus the prefill; the model's sampled text continues it.
        """
        if not self.use_template:
            return prompt + self.prefill, self.prefill
        messages = []
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": prompt})
        full, gen = generation_prompt(self.tokenizer, messages, prompt, **self.template_kwargs)
        i = gen.find(THINK_OPEN)
        opened = gen[i:] if i >= 0 else ""
        return full + self.prefill, opened + self.prefill
