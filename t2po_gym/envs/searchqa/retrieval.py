"""Choosing the Search-QA retriever, and turning hits into Search-R1's ``<information>`` text."""

from __future__ import annotations

from t2po_gym.envs.searchqa.data import QAData
from t2po_gym.search.base import Document, Retriever

__all__ = ["resolve_retriever", "retrieve_passages", "format_passages", "RETRIEVER_NAMES"]

RETRIEVER_NAMES = ("bm25", "tantivy", "lucene", "dense")


def resolve_retriever(spec: str | Retriever, data: QAData) -> Retriever:
    """The process-wide retriever for ``spec`` over ``data.documents``.

    ``spec``: ``"bm25"`` / ``"tantivy"`` (tantivy BM25, default), ``"lucene"`` (pyserini,
    ``lucene`` extra), ``"dense"`` (MiniLM, ``models`` + ``train`` extras), an
    ``http://host:port/retrieve`` URL (a ``t2po serve-retriever`` or Search-R1 server), or a
    :class:`Retriever` instance (used as is).
    """
    if isinstance(spec, Retriever):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"retriever must be a name, a URL or a Retriever, got {type(spec).__name__}")
    if spec.startswith(("http://", "https://")):
        from t2po_gym.search.remote import remote_retriever

        return remote_retriever(spec)
    if spec not in RETRIEVER_NAMES:
        raise ValueError(f"unknown retriever {spec!r}; choose one of {RETRIEVER_NAMES} or an http:// URL")
    if not data.documents:
        raise ValueError(f"retriever {spec!r} needs a corpus, but {data.source} has no corpus.jsonl; "
                         "add one or use a remote retriever URL")
    if spec in ("bm25", "tantivy"):
        from t2po_gym.search.tantivy_engine import tantivy_retriever

        return tantivy_retriever(data.documents, fingerprint=data.fingerprint)
    if spec == "lucene":
        try:
            from t2po_gym.search.lucene_engine import lucene_retriever
        except ImportError as e:
            raise ImportError(f"the lucene retriever needs pyserini: pip install 't2po-gym[lucene]' ({e})") from e
        return lucene_retriever(data.documents, fingerprint=data.fingerprint)
    from t2po_gym.search.dense import dense_retriever

    return dense_retriever(data.documents, fingerprint=data.fingerprint)


def retrieve_passages(retriever: Retriever, data: QAData, query: str, k: int) -> list[Document]:
    """The top-``k`` passages for ``query``, best first.

    Remote retrievers return the passages themselves; local ones return ids that are looked
    up in ``data``. Raises :class:`~t2po_gym.search.remote.RetrieverUnavailableError` when a
    remote retriever cannot answer.
    """
    search_documents = getattr(retriever, "search_documents", None)
    if search_documents is not None:
        return [d for d, _ in search_documents(query, k)]
    lookup = data.doc_by_id
    out = []
    for h in retriever.search(query, k):
        doc = lookup.get(h.doc_id)
        out.append(doc if doc is not None else Document(h.doc_id, "", "(passage not in the local corpus)"))
    return out


def format_passages(docs: list[Document], max_chars: int = 1500) -> str:
    """Search-R1's rendering: ``Doc i(Title: t) text`` per line (each passage cut to ``max_chars``)."""
    lines = []
    for i, d in enumerate(docs, start=1):
        text = d.text if len(d.text) <= max_chars else d.text[:max_chars] + "..."
        lines.append(f"Doc {i}(Title: {d.title}) {text}")
    return "\n".join(lines) if lines else "No results."
