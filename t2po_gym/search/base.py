"""The retriever interface shared by WebShop and Search-QA.

A :class:`Retriever` maps a text query to the ids of the best-matching documents.
Backends: tantivy BM25 (default, embedded), pyserini Lucene BM25 (``lucene`` extra),
dense MiniLM inner-product search, and a remote HTTP retriever.

Indexes are expensive, so one retriever per corpus is shared by every env of a
process: :func:`shared_retriever` keys instances by (backend, corpus fingerprint).
"""

from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

__all__ = [
    "Document",
    "SearchHit",
    "Retriever",
    "corpus_fingerprint",
    "default_cache_dir",
    "shared_retriever",
    "clear_shared_retrievers",
]


@dataclass(frozen=True)
class Document:
    """One indexed document: ``doc_id`` is unique, ``title`` and ``text`` are searched."""

    doc_id: str
    title: str
    text: str


@dataclass(frozen=True)
class SearchHit:
    """One search result, best first. ``score`` is backend-specific (higher is better)."""

    doc_id: str
    score: float


class Retriever(ABC):
    """Top-k search over a fixed corpus."""

    #: short backend name ("tantivy", "lucene", "dense", "remote")
    name: str = "retriever"
    #: whether ``search`` may run in several threads at once (the retriever server runs
    #: such backends without a lock; the others one search at a time)
    thread_safe: bool = False

    @abstractmethod
    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        """Return at most ``k`` hits for ``query``, best first. Never raises on odd text
        (empty, huge, punctuation-only or non-UTF-8-safe queries return ``[]`` or hits)."""

    def batch_search(self, queries: Sequence[str], k: int = 10) -> list[list[SearchHit]]:
        """Search several queries; backends may override with a faster batched path."""
        return [self.search(q, k) for q in queries]

    @abstractmethod
    def __len__(self) -> int:
        """Number of indexed documents."""


def corpus_fingerprint(docs: Iterable[Document]) -> str:
    """A SHA-256 hex digest of the corpus content (ids, titles, texts, in order)."""
    h = hashlib.sha256()
    for d in docs:
        for part in (d.doc_id, d.title, d.text):
            b = part.encode("utf-8", "surrogatepass")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)
    return h.hexdigest()


def default_cache_dir() -> Path:
    """Where indexes are cached: ``$T2PO_CACHE`` or ``~/.cache/t2po_gym``."""
    root = os.environ.get("T2PO_CACHE")
    path = Path(root) if root else Path.home() / ".cache" / "t2po_gym"
    path.mkdir(parents=True, exist_ok=True)
    return path


_SHARED: dict[tuple, Retriever] = {}
_SHARED_LOCK = threading.Lock()


def shared_retriever(key: tuple, factory: Callable[[], Retriever]) -> Retriever:
    """Return the process-wide retriever for ``key``, building it with ``factory`` once."""
    with _SHARED_LOCK:
        r = _SHARED.get(key)
        if r is None:
            r = factory()
            _SHARED[key] = r
        return r


def clear_shared_retrievers() -> None:
    """Forget every shared retriever (tests use this)."""
    with _SHARED_LOCK:
        _SHARED.clear()
