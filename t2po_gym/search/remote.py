"""A retriever over HTTP: the client of a Search-R1-style ``/retrieve`` server.

Several trainer processes can share one index (as Search-R1 users do): one process
runs ``t2po serve-retriever --port P`` (the server lives with the Search-QA env, in
:mod:`t2po_gym.envs.searchqa.server`), the others use
``RemoteRetriever("http://127.0.0.1:P/retrieve")``.

The protocol is Search-R1's ``POST /retrieve``::

    request:  {"queries": ["q1", ...], "topk": 3, "return_scores": true}
    response: {"result": [[{"document": {"id": "17", "contents": "Title\\ntext"}, "score": 12.3}, ...], ...]}

With ``"return_scores": false`` each inner list holds the bare documents.

A client request that cannot be answered (server down, timeout, bad reply) raises
:class:`RetrieverUnavailableError` after at most ``timeout`` seconds (times
``retries + 1``); it never hangs.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Sequence

from t2po_gym.search.base import Document, Retriever, SearchHit, shared_retriever

__all__ = ["RemoteRetriever", "RetrieverUnavailableError", "remote_retriever"]


class RetrieverUnavailableError(RuntimeError):
    """The remote retriever could not answer (down, timed out, or sent a malformed reply)."""


class RemoteRetriever(Retriever):
    """A :class:`Retriever` that asks a Search-R1-style ``/retrieve`` server.

    Args:
        url: the endpoint, e.g. ``"http://127.0.0.1:8000/retrieve"`` (``/retrieve`` is
            appended when the URL has no path).
        timeout: seconds to wait for connect + reply, per try.
        retries: extra tries after a connection error or timeout.

    Besides ids, the server returns the passages; :meth:`search_documents` hands them out,
    so a client needs no local copy of the corpus.
    """

    name = "remote"
    thread_safe = True  # each call opens its own connection

    def __init__(self, url: str, *, timeout: float = 10.0, retries: int = 0):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"retriever url must start with http:// or https://, got {url!r}")
        head, sep, tail = url.partition("://")
        if "/" not in tail:
            url = url.rstrip("/") + "/retrieve"
        self.url = url
        self.timeout = float(timeout)
        self.retries = int(retries)
        self._size: int | None = None

    def _post(self, payload: dict[str, Any]) -> Any:
        body = json.dumps(payload).encode("utf-8")
        last: Exception | None = None
        for _ in range(self.retries + 1):
            req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                detail = e.read()[:300].decode("utf-8", "replace")
                raise RetrieverUnavailableError(
                    f"retriever at {self.url} answered HTTP {e.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = e
            except json.JSONDecodeError as e:
                raise RetrieverUnavailableError(f"retriever at {self.url} sent invalid JSON: {e}") from None
        reason = getattr(last, "reason", last)
        raise RetrieverUnavailableError(
            f"retriever at {self.url} is unreachable ({reason}); start it with "
            "`t2po serve-retriever --port PORT` or fix the URL") from None

    def batch_search_documents(self, queries: Sequence[str], k: int = 10) -> list[list[tuple[Document, float]]]:
        """Search several queries; return ``(Document, score)`` pairs per query, best first."""
        if not queries:
            return []
        data = self._post({"queries": list(queries), "topk": int(k), "return_scores": True})
        try:
            result = data["result"]
            if len(result) != len(queries):
                raise ValueError(f"{len(result)} result lists for {len(queries)} queries")
            out = []
            for items in result:
                row = []
                for item in items:
                    doc = item["document"] if "document" in item else item
                    score = float(item.get("score", 0.0)) if "document" in item else 0.0
                    contents = str(doc.get("contents", ""))
                    title, _, text = contents.partition("\n")
                    row.append((Document(str(doc.get("id", "")), title, text), score))
                out.append(row[:k])
            return out
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise RetrieverUnavailableError(
                f"retriever at {self.url} sent a reply that is not Search-R1's /retrieve shape: {e}") from None

    def search_documents(self, query: str, k: int = 10) -> list[tuple[Document, float]]:
        return self.batch_search_documents([query], k)[0]

    def search(self, query: str, k: int = 10) -> list[SearchHit]:
        return [SearchHit(d.doc_id, s) for d, s in self.search_documents(query, k)]

    def batch_search(self, queries: Sequence[str], k: int = 10) -> list[list[SearchHit]]:
        return [[SearchHit(d.doc_id, s) for d, s in row] for row in self.batch_search_documents(queries, k)]

    def __len__(self) -> int:
        """The server's corpus size (asked once through ``GET /health``); 0 when unknown."""
        if self._size is None:
            base = self.url.rsplit("/", 1)[0]
            try:
                with urllib.request.urlopen(base + "/health", timeout=self.timeout) as resp:
                    self._size = int(json.loads(resp.read().decode("utf-8")).get("documents", 0))
            except Exception:
                return 0
        return self._size


def remote_retriever(url: str, *, timeout: float = 10.0) -> RemoteRetriever:
    """The process-wide :class:`RemoteRetriever` for ``url``."""
    return shared_retriever(("remote", url, float(timeout)), lambda: RemoteRetriever(url, timeout=timeout))  # type: ignore[return-value]
