"""The LLM policy protocol and the records it returns.

Every backend (Hugging Face in-process, OpenAI-compatible server, vLLM) and every
wrapper (TTI, TDS) implements :class:`LLMPolicy`, so wrappers stack:
``TurnDedup(ThinkingIntervention(HFPolicy(...)))``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

__all__ = [
    "SamplingConfig",
    "Generation",
    "LLMPolicy",
    "DecodeController",
    "check_prompts",
    "FORCED_CLOSE_TEXT",
    "ContextOverflowError",
]

#: What TTI forces when it fires: close the thought, open the action.
FORCED_CLOSE_TEXT = "</think>\n<action>"


class ContextOverflowError(ValueError):
    """A prompt (plus ``max_new_tokens``) does not fit the model's context.

    Raised instead of returning an empty generation; the message names the prompt, its
    length and the context, and says how to fix it.
    """


@dataclass
class SamplingConfig:
    """How to sample one response.

    Attributes:
        temperature: softmax temperature; 0 means greedy.
        top_p: nucleus mass in (0, 1]; 1 disables it.
        top_k: keep the k most likely tokens; 0 disables it.
        max_new_tokens: hard cap on generated tokens per response.
        stop: stop strings; generation ends after the first one (it is kept in the text).
        seed: base seed; sequence i of a batch uses ``seed + i`` where a backend supports it.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ("</action>",)
    seed: int | None = None


@dataclass
class Generation:
    """One sampled response and everything the optimizer and the wrappers need.

    Attributes:
        text: the response as the env judges it: ``prefix`` + the decoded generated tokens
            (the forced ``</think>\\n<action>`` included when TTI fired).
        prefix: the head of the response that was already in the prompt: what the chat
            template opened (``<think>\\n`` of a reasoning model) plus any assistant prefill.
            Its tokens are the tail of ``prompt_ids``, not part of ``token_ids``; ``""`` for
            most models. See :mod:`t2po_gym.policies.chat`.
        token_ids: ids of the response tokens, shape ``[T]``.
        logprobs: log-probability of each response token under the sampling policy
            (before temperature/top-p truncation, i.e. the model's distribution), ``[T]``.
        signal: the per-token uncertainty signal M_t in [0, 1], ``[T]`` (empty if not computed).
        prompt_ids: ids of the prompt tokens as the model saw them.
        forced_mask: 1 for tokens inserted by TTI (not sampled), 0 otherwise, ``[T]``.
        think_tokens: tokens generated inside ``<think>`` before it was closed.
        intervened: whether TTI forced ``</think>`` in this response.
        intervention_position: index in ``token_ids`` where the forced tokens start, or -1.
        resampled: how many times TDS threw this turn away and sampled again.
        finish_reason: ``"stop"``, ``"length"`` or ``"eos"``.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    signal: list[float] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    forced_mask: list[int] = field(default_factory=list)
    think_tokens: int = 0
    intervened: bool = False
    intervention_position: int = -1
    resampled: int = 0
    finish_reason: str = "stop"
    prefix: str = ""


@runtime_checkable
class LLMPolicy(Protocol):
    """Anything that turns prompts into :class:`Generation` records.

    ``episode_ids`` (optional, one per prompt) lets turn-level wrappers such as TDS
    keep per-episode state; backends ignore it.
    """

    def generate(
        self,
        prompts: Sequence[str],
        sampling: SamplingConfig | None = None,
        *,
        episode_ids: Sequence[str] | None = None,
    ) -> list[Generation]: ...


@runtime_checkable
class DecodeController(Protocol):
    """A decode-time hook with per-sequence state (TTI implements it).

    A backend that accepts ``controller=`` calls ``begin`` once per ``generate`` call,
    then ``step`` once per decoding step, for the whole batch at once. ``step`` gets this
    step's signal ``M_t`` ``[B]`` (float), whether each sequence is inside ``<think>``
    when it samples this token ``[B]`` (bool), and how many tokens each sequence has
    produced inside ``<think>`` including this one ``[B]`` (int). It returns ``[B]`` bool:
    the sequences for which the backend must replace this token with the tokens of
    ``forced_text`` (then resume sampling). A backend never asks twice for the same
    sequence once it fired; a controller must still be safe if it does.
    """

    signal_kind: str
    forced_text: str

    def begin(self, batch_size: int) -> None: ...

    def step(self, signal, thinking, think_count): ...


def check_prompts(prompts: Sequence[str]) -> list[str]:
    """Validate a batch of prompts; raise a ``ValueError`` naming the bad one.

    Returns the prompts as a list. An empty or whitespace-only prompt is rejected
    (a model has nothing to condition on), as is a non-string.
    """
    if isinstance(prompts, str):
        raise TypeError("generate() takes a list of prompts, got a single str: wrap it in [ ]")
    out = list(prompts)
    for i, p in enumerate(out):
        if not isinstance(p, str):
            raise TypeError(f"prompt {i} is {type(p).__name__}, expected str")
        if not p.strip():
            raise ValueError(f"prompt {i} is empty: pass the env observation (a non-empty str)")
    return out
