"""BM25 search with tantivy (embedded Rust engine): the default backend.

The index is built once per corpus and cached on disk under
``default_cache_dir()/tantivy/<corpus fingerprint>``; a second process (or a second
env of the same process, through :func:`tantivy_retriever`) opens it instead of
rebuilding it. The cache is keyed by the corpus content (SHA-256 of ids, titles and
texts) and verified on open: its ``COMPLETE`` marker must record the same full
fingerprint, document count and index version, else the folder is rebuilt. Queries are tokenized here (lowercase alphanumeric words), so any
string, punctuation, query-language syntax or a 1 MB blob included, is a plain
bag-of-words query and never a parse error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Sequence

from t2po_gym.search.base import (
    Document,
    Retriever,
    SearchHit,
    corpus_fingerprint,
    default_cache_dir,
    shared_retriever,
)

__all__ = ["TantivyRetriever", "tantivy_retriever", "query_terms", "MAX_QUERY_TERMS"]

#: A query keeps at most this many distinct terms (the first ones); longer ones are cut.
MAX_QUERY_TERMS = 64
#: Only the first characters of a query are tokenized (bounds the cost of huge inputs).
MAX_QUERY_CHARS = 4096
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
#: Lucene's English stop words (Anserini drops them too); they match nearly every document and
#: would only slow a query down without changing the ranking much.
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)
_INDEX_VERSION = "v1"


def query_terms(query: str) -> list[str]:
    """The distinct lowercase alphanumeric words of ``query`` minus :data:`STOP_WORDS`, in order,
    at most :data:`MAX_QUERY_TERMS` of them, taken from its first :data:`MAX_QUERY_CHARS` characters."""
    if not isinstance(query, str):
        return []
    seen: dict[str, None] = {}
    for m in _WORD.finditer(query[:MAX_QUERY_CHARS].lower()):
        w = m.group(0)
        if len(w) <= 40 and w not in STOP_WORDS:
            seen.setdefault(w, None)
            if len(seen) >= MAX_QUERY_TERMS:
                break
    return list(seen)


class TantivyRetriever(Retriever):
    """BM25 (tantivy defaults: k1=1.2, b=0.75) over ``title`` and ``text``.

    Args:
        docs: the corpus; document order defines ties and the ``ord`` fast field.
        index_dir: where the index lives; default
            ``default_cache_dir()/tantivy/<fingerprint>``. An existing complete index
            there is opened, not rebuilt.
        fingerprint: the corpus fingerprint if already known (saves hashing it again).
        heap_mb: the index writer's memory budget.
    """

    name = "tantivy"
    thread_safe = True  # tantivy searchers are Sync; queries share the reloaded searcher

    def __init__(
        self,
        docs: Sequence[Document],
        *,
        index_dir: str | os.PathLike | None = None,
        fingerprint: str | None = None,
        heap_mb: int = 128,
    ):
        import tantivy

        self._tantivy = tantivy
        self.fingerprint = fingerprint or corpus_fingerprint(docs)
        self._ids = [d.doc_id for d in docs]
        root = Path(index_dir) if index_dir else default_cache_dir() / "tantivy" / f"{_INDEX_VERSION}-{self.fingerprint[:32]}"
        self.index_dir = root
        self.built = False
        sb = tantivy.SchemaBuilder()
        sb.add_unsigned_field("ord", stored=False, fast=True, indexed=False)
        sb.add_text_field("title", stored=False, tokenizer_name="en_stem")
        sb.add_text_field("text", stored=False, tokenizer_name="en_stem")
        self._schema = sb.build()
        stale = self._stale_reason(root)
        if stale is not None:
            if root.exists():
                # Never trust (or delete in place, under a reader's feet) an index of other content:
                # move it aside, then build the right one.
                warnings.warn(f"tantivy index at {root} is not this corpus's ({stale}): rebuilding it", stacklevel=3)
                aside = root.with_name(f"{root.name}.stale-{os.getpid()}")
                try:
                    os.replace(root, aside)
                    shutil.rmtree(aside, ignore_errors=True)
                except OSError:
                    shutil.rmtree(root, ignore_errors=True)
            self._build(docs, root, heap_mb)
            self.built = True
            stale = self._stale_reason(root)
            if stale is not None:
                raise RuntimeError(f"tantivy index at {root} is still not this corpus's after a rebuild ({stale}); "
                                   "delete that folder or set T2PO_CACHE to another directory")
        self._index = tantivy.Index(self._schema, path=str(root), reuse=True)
        self._index.reload()
        self._searcher = self._index.searcher()
        if self._searcher.num_docs != len(self._ids):
            raise RuntimeError(
                f"tantivy index at {root} holds {self._searcher.num_docs} docs, the corpus "
                f"{len(self._ids)}: delete that folder to rebuild it"
            )
        self._lock = threading.Lock()

    def _marker(self) -> dict:
        return {"version": _INDEX_VERSION, "fingerprint": self.fingerprint, "documents": len(self._ids)}

    def _stale_reason(self, root: Path) -> str | None:
        """``None`` if ``root`` holds a complete index of exactly this corpus (its ``COMPLETE``
        marker records the full content fingerprint and size), else why not."""
        marker = root / "COMPLETE"
        if not marker.is_file():
            return "no COMPLETE marker" if root.exists() else "absent"
        try:
            meta = json.loads(marker.read_text()[:4096])
        except (OSError, ValueError):
            return "unreadable COMPLETE marker (an index of an older version)"
        if not isinstance(meta, dict):
            return "unreadable COMPLETE marker"
        for key, want in self._marker().items():
            if meta.get(key) != want:
                return f"its {key} is {str(meta.get(key))[:70]!r}, this corpus's is {str(want)[:70]!r}"
        if not (root / "meta.json").is_file():
            return "meta.json is missing"
        return None

    def _build(self, docs: Sequence[Document], root: Path, heap_mb: int) -> None:
        tantivy = self._tantivy
        root.parent.mkdir(parents=True, exist_ok=True)
        # Build in a scratch folder and rename, so a crash never leaves a half index.
        tmp = Path(tempfile.mkdtemp(prefix=root.name + ".tmp-", dir=root.parent))
        try:
            index = tantivy.Index(self._schema, path=str(tmp), reuse=False)
            writer = index.writer(heap_size=heap_mb * 1_000_000, num_threads=1)
            for i, d in enumerate(docs):
                doc = tantivy.Document()
                doc.add_unsigned("ord", i)
                doc.add_text("title", d.title)
                doc.add_text("text", d.text)
                writer.add_document(doc)
            writer.commit()
            writer.wait_merging_threads()
            (tmp / "COMPLETE").write_text(json.dumps(self._marker()))
            try:
                os.replace(tmp, root)
            except OSError:  # another process won the race: use its index
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _query(self, query: str):
        terms = query_terms(query)
        if not terms:
            return None
        # Each word goes through the index's analyzer via the parser; the words are plain
        # alphanumerics (no operators), so the lenient parser cannot misread them.
        q, _errors = self._index.parse_query_lenient(" ".join(terms), ["title", "text"])
        return q

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        if k <= 0:
            return []
        q = self._query(query)
        if q is None:
            return []
        res = self._searcher.search(q, limit=int(k), count=False)
        if not res.hits:
            return []
        addrs = [a for _, a in res.hits]
        ords = self._searcher.fast_field_values("ord", addrs)
        ids = self._ids
        return [SearchHit(ids[o], float(s)) for (s, _), o in zip(res.hits, ords) if o is not None]

    def __len__(self) -> int:
        return len(self._ids)


def tantivy_retriever(
    docs: Sequence[Document], *, fingerprint: str | None = None, index_dir: str | os.PathLike | None = None
) -> TantivyRetriever:
    """The process-wide :class:`TantivyRetriever` for this corpus (built or opened once)."""
    fp = fingerprint or corpus_fingerprint(docs)
    key = ("tantivy", fp, str(index_dir) if index_dir else None)
    return shared_retriever(key, lambda: TantivyRetriever(docs, fingerprint=fp, index_dir=index_dir))  # type: ignore[return-value]
