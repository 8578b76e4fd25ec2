"""Where a response stands with respect to ``<think>``, from its text: a tiny state machine.

Backends feed it the decoded response text (only when the last token could have
completed a tag, see :func:`tag_end_chars`), and it answers whether the next token
is sampled inside the thought. Working on text rather than on token ids makes it
independent of how a tokenizer splits ``</think>`` (one special token, or ``<``,
``/``, ``think``, ``>``).
"""

from __future__ import annotations

from dataclasses import dataclass

from t2po_gym.protocol import THINK_CLOSE, THINK_OPEN

__all__ = ["ThinkPhase", "ThinkState", "tag_end_chars", "find_stop"]


class ThinkPhase:
    """Phases: before ``<think>``, inside it, after ``</think>``."""

    BEFORE, INSIDE, CLOSED = 0, 1, 2


@dataclass
class ThinkState:
    """Per-sequence think phase. ``prompt_text`` opens the thought when it ends with ``<think>``."""

    phase: int = ThinkPhase.BEFORE

    @classmethod
    def for_prompt(cls, prompt_text: str, prefix: str = "") -> "ThinkState":
        """The phase at the first sampled token.

        ``prompt_text`` is what the model is conditioned on; ``prefix`` its tail that belongs
        to the response (what the chat template opened, the prefill: see
        :mod:`t2po_gym.policies.chat`), whose tags advance the phase.
        """
        head = prompt_text[: len(prompt_text) - len(prefix)] if prefix and prompt_text.endswith(prefix) else prompt_text
        state = cls(ThinkPhase.INSIDE if head.rstrip().endswith(THINK_OPEN) else ThinkPhase.BEFORE)
        if prefix:
            state.update(prefix)
        return state

    @property
    def inside(self) -> bool:
        return self.phase == ThinkPhase.INSIDE

    def update(self, response_text: str) -> int:
        """Advance the phase from the full response text so far; return the new phase."""
        if self.phase == ThinkPhase.BEFORE:
            i = response_text.find(THINK_OPEN)
            if i >= 0:
                self.phase = ThinkPhase.INSIDE
                if response_text.find(THINK_CLOSE, i + len(THINK_OPEN)) >= 0:
                    self.phase = ThinkPhase.CLOSED
        elif self.phase == ThinkPhase.INSIDE:
            if THINK_CLOSE in response_text:
                self.phase = ThinkPhase.CLOSED
        return self.phase


def tag_end_chars(stop: tuple[str, ...] | list[str]) -> set[str]:
    """Characters whose appearance may complete a think tag or a stop string (their last chars)."""
    chars = {THINK_OPEN[-1], THINK_CLOSE[-1]}
    chars.update(s[-1] for s in stop if s)
    return chars


def find_stop(text: str, stop: tuple[str, ...] | list[str]) -> int:
    """Index just past the earliest stop string in ``text``, or -1."""
    best = -1
    for s in stop:
        if not s:
            continue
        i = text.find(s)
        if i >= 0 and (best < 0 or i + len(s) < best):
            best = i + len(s)
    return best
