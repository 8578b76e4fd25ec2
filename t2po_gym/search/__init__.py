"""BM25 and dense retrievers shared by WebShop and Search-QA (see :mod:`t2po_gym.search.base`).

Backends are imported lazily on first attribute access, so ``import t2po_gym.search`` stays cheap:
``TantivyRetriever`` (default, embedded), ``LuceneRetriever`` (``lucene`` extra),
``DenseRetriever`` (MiniLM), ``RemoteRetriever`` (Search-R1's HTTP ``/retrieve``).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from t2po_gym.search.base import (
    Document,
    Retriever,
    SearchHit,
    clear_shared_retrievers,
    corpus_fingerprint,
    default_cache_dir,
    shared_retriever,
)

_LAZY = {
    "TantivyRetriever": "t2po_gym.search.tantivy_engine",
    "tantivy_retriever": "t2po_gym.search.tantivy_engine",
    "query_terms": "t2po_gym.search.tantivy_engine",
    "LuceneRetriever": "t2po_gym.search.lucene_engine",
    "LuceneUnavailableError": "t2po_gym.search.lucene_engine",
    "lucene_retriever": "t2po_gym.search.lucene_engine",
    "ensure_pyserini": "t2po_gym.search.lucene_engine",
    "DenseRetriever": "t2po_gym.search.dense",
    "dense_retriever": "t2po_gym.search.dense",
    "RemoteRetriever": "t2po_gym.search.remote",
    "RetrieverUnavailableError": "t2po_gym.search.remote",
}

__all__ = [
    "Document",
    "Retriever",
    "SearchHit",
    "clear_shared_retrievers",
    "corpus_fingerprint",
    "default_cache_dir",
    "shared_retriever",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 't2po_gym.search' has no attribute {name!r}")
    return getattr(import_module(module), name)
