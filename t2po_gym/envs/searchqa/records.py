"""Records shared by the Search-QA loaders, the world generator and the env."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["QAItem", "QUESTION_KINDS"]

#: The kinds of generated questions (loaded data sets use ``"unknown"`` unless they say).
QUESTION_KINDS = ("single", "bridge", "comparison", "yesno")


@dataclass(frozen=True)
class QAItem:
    """One question with its golden answers.

    Attributes:
        qid: unique id within its split.
        question: the question text shown to the agent.
        golden_answers: accepted answers (the first is canonical; the rest are aliases).
        data_source: where the question comes from (``"t2po_world"`` for generated ones).
        kind: one of :data:`QUESTION_KINDS`, or ``"unknown"`` for loaded data.
        supports: ids of the passages that hold the facts needed, in hop order
            (empty when unknown, e.g. for loaded data sets).
        hop_queries: one search query per supporting passage (the oracle's queries);
            empty when unknown.
    """

    qid: str
    question: str
    golden_answers: tuple[str, ...]
    data_source: str = "unknown"
    kind: str = "unknown"
    supports: tuple[str, ...] = field(default_factory=tuple)
    hop_queries: tuple[str, ...] = field(default_factory=tuple)
