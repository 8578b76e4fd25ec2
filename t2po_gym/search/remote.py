"""A retriever over HTTP, wire-compatible with Search-R1's retrieval server.

Several trainer processes can share one index (as Search-R1 users do): one process
runs ``t2po serve-retriever --port P`` (or :func:`serve`), the others use
``RemoteRetriever("http://127.0.0.1:P/retrieve")``.

The protocol is Search-R1's ``POST /retrieve``::

    request:  {"queries": ["q1", ...], "topk": 3, "return_scores": true}
    response: {"result": [[{"document": {"id": "17", "contents": "Title\\ntext"}, "score": 12.3}, ...], ...]}

With ``"return_scores": false`` each inner list holds the bare documents. The server
here binds to 127.0.0.1 by default and uses only the standard library.

A client request that cannot be answered (server down, timeout, bad reply) raises
:class:`RetrieverUnavailableError` after at most ``timeout`` seconds (times
``retries + 1``); it never hangs.
"""

from __future__ import annotations

import argparse
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping, Sequence

from t2po_gym.search.base import Document, Retriever, SearchHit, shared_retriever

__all__ = [
    "RemoteRetriever",
    "RetrieverUnavailableError",
    "remote_retriever",
    "make_server",
    "serve",
    "register_cli",
    "MAX_REQUEST_BYTES",
    "MAX_TOPK",
]

#: The server rejects request bodies larger than this (HTTP 413).
MAX_REQUEST_BYTES = 8 * 1024 * 1024
#: The server caps ``topk`` at this value.
MAX_TOPK = 100
#: The server answers at most this many queries per request.
MAX_QUERIES = 1024


class RetrieverUnavailableError(RuntimeError):
    """The remote retriever could not answer (down, timed out, or sent a malformed reply)."""


def _document_contents(doc: Document) -> str:
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


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


# --------------------------------------------------------------------- server
def _doc_lookup(retriever: Retriever, documents: Mapping[str, Document] | Sequence[Document] | None
                ) -> Callable[[str], Document | None]:
    if documents is None:
        documents = getattr(retriever, "documents", None)
    if documents is None:
        raise ValueError(
            f"serve() needs the documents of the {type(retriever).__name__} index: pass documents=")
    if not isinstance(documents, Mapping):
        documents = {d.doc_id: d for d in documents}
    return documents.get


def make_server(
    retriever: Retriever,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    documents: Mapping[str, Document] | Sequence[Document] | None = None,
) -> ThreadingHTTPServer:
    """Build (not start) the HTTP server; ``port=0`` picks a free port (see ``server.server_port``).

    ``documents`` maps ids to passages; by default ``retriever.documents`` is used.
    """
    lookup = _doc_lookup(retriever, documents)
    lock = threading.Lock()  # backends are not all thread-safe; queries are fast anyway

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: Any) -> None:  # keep stderr quiet
            pass

        def _reply(self, code: int, obj: Any) -> None:
            body = json.dumps(obj).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/health", ""):
                self._reply(200, {"status": "ok", "documents": len(retriever), "backend": retriever.name})
            else:
                self._reply(404, {"error": f"unknown path {self.path}; POST /retrieve"})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/retrieve":
                self._reply(404, {"error": f"unknown path {self.path}; POST /retrieve"})
                return
            try:
                n = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                n = -1
            if n < 0 or n > MAX_REQUEST_BYTES:
                self._reply(413, {"error": f"request body must be 0..{MAX_REQUEST_BYTES} bytes"})
                self.close_connection = True
                return
            try:
                req = json.loads(self.rfile.read(n).decode("utf-8"))
                queries = req["queries"]
                if isinstance(queries, str):
                    queries = [queries]
                if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
                    raise ValueError("'queries' must be a list of strings")
                if len(queries) > MAX_QUERIES:
                    raise ValueError(f"at most {MAX_QUERIES} queries per request")
                topk = max(0, min(int(req.get("topk", 3)), MAX_TOPK))
                with_scores = bool(req.get("return_scores", False))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
                self._reply(400, {"error": f"bad request: {e}; expected "
                                           '{"queries": [...], "topk": k, "return_scores": bool}'})
                return
            with lock:
                hits = retriever.batch_search(queries, topk)
            result = []
            for row in hits:
                items = []
                for h in row:
                    doc = lookup(h.doc_id)
                    d = {"id": h.doc_id, "contents": _document_contents(doc) if doc else ""}
                    items.append({"document": d, "score": h.score} if with_scores else d)
                result.append(items)
            self._reply(200, {"result": result})

    return ThreadingHTTPServer((host, port), Handler)


def serve(retriever: Retriever, host: str = "127.0.0.1", port: int = 8000, *,
          documents: Mapping[str, Document] | Sequence[Document] | None = None) -> None:
    """Serve ``retriever`` on ``http://host:port/retrieve`` until interrupted (blocking)."""
    server = make_server(retriever, host, port, documents=documents)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# ------------------------------------------------------------------------ CLI
def register_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``serve-retriever`` to the ``t2po`` command's subparsers."""
    p = subparsers.add_parser(
        "serve-retriever",
        help="serve a Search-QA retriever over HTTP (Search-R1's POST /retrieve)",
        description="Serve the Search-QA corpus (generated world, or SEARCHQA_DATA / --data-dir) "
                    "over HTTP so several processes share one index.")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1 only)")
    p.add_argument("--retriever", default="bm25", choices=["bm25", "tantivy", "lucene", "dense"])
    p.add_argument("--data-dir", default=None, help="Search-R1 data folder (corpus.jsonl); "
                                                    "default $SEARCHQA_DATA or the generated world")
    p.add_argument("--world-passages", type=int, default=20_000)
    p.add_argument("--world-seed", type=int, default=0)
    p.set_defaults(func=_cli_serve)
    return p


def _cli_serve(args: argparse.Namespace) -> int:
    from t2po_gym.envs.searchqa.env import load_searchqa_data
    from t2po_gym.envs.searchqa.retrieval import resolve_retriever

    data = load_searchqa_data(data_dir=args.data_dir, world_passages=args.world_passages,
                              world_seed=args.world_seed)
    retriever = resolve_retriever(args.retriever, data)
    print(f"serving {retriever.name} over {len(data.documents)} passages on "
          f"http://{args.host}:{args.port}/retrieve", flush=True)
    serve(retriever, args.host, args.port, documents=data.doc_by_id)
    return 0
