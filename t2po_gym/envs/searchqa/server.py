"""The Search-QA retriever over HTTP: ``t2po serve-retriever``, wire-compatible with Search-R1.

Several trainer processes can share one index (as Search-R1 users do): one process runs
``t2po serve-retriever --port P`` (or :func:`serve`), the others use
``RemoteRetriever("http://127.0.0.1:P/retrieve")`` (:mod:`t2po_gym.search.remote`).

The protocol is Search-R1's ``POST /retrieve`` (``search_r1/search/retrieval_server.py``,
``QueryRequest`` and ``retrieve_endpoint``)::

    request:  {"queries": ["q1", ...], "topk": 3, "return_scores": true}
    response: {"result": [[{"document": {"id": "17", "contents": "Title\\ntext"}, "score": 12.3}, ...], ...]}

With ``"return_scores": false`` each inner list holds the bare documents. ``GET /health``
answers ``{"status": "ok", "documents": N, "backend": name}``.

Like Search-R1's server this runs on FastAPI + uvicorn (the ``server`` extra), with the
limits an operator needs for a long shared run (all configurable, see :class:`ServerLimits`):

* listen backlog 1024 (the stdlib server's 5 reset connections under 48 clients);
* a request whose headers are not complete within ``header_timeout_s``, or whose body
  stalls for ``body_timeout_s``, is closed (408 for a stalled body); idle keep-alive
  connections close after ``keep_alive_s``;
* a body over ``max_request_bytes`` gets 413 before it is read;
* JSON nested deeper than ``max_json_depth``, non-finite or huge numbers, a ``topk`` outside
  ``0..max_topk`` or more than ``max_queries`` queries get 400 with a message;
* searches run in a thread pool without a server-wide lock when the backend declares
  ``thread_safe`` (tantivy, dense, remote); other backends are serialised by a lock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from t2po_gym.search.base import Document, Retriever

if TYPE_CHECKING:  # pragma: no cover
    import uvicorn

__all__ = ["ServerLimits", "make_app", "make_server", "serve", "register_cli", "RequestError"]


@dataclass(frozen=True)
class ServerLimits:
    """Bounds of the retriever server. Sizes in bytes, times in seconds."""

    max_request_bytes: int = 8 * 1024 * 1024
    """Larger bodies get 413 (checked on ``Content-Length`` and while reading)."""
    max_queries: int = 1024
    """Queries per request."""
    max_topk: int = 100
    """Largest ``topk``."""
    max_json_depth: int = 8
    """Deepest nesting of the request JSON (a valid request is 2 deep)."""
    max_int_digits: int = 18
    """Integers with more digits are refused (Python would otherwise parse 1e5-digit numbers)."""
    backlog: int = 1024
    """``listen()`` backlog: connections the kernel queues while the server is busy."""
    header_timeout_s: float = 10.0
    """A connection must deliver a request's headers this soon after connecting (or after its
    previous response); otherwise it is closed."""
    body_timeout_s: float = 10.0
    """A body that sends nothing for this long gets 408."""
    keep_alive_s: float = 5.0
    """Idle keep-alive connections close after this."""
    max_connections: int | None = 4096
    """Above this many open connections new ones get 503 at once (``None``: no cap)."""
    threads: int = 32
    """Worker threads that run searches."""


class RequestError(ValueError):
    """A request that cannot be served; ``status`` is the HTTP code (400 or 413)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


_SHAPE = '{"queries": ["..."], "topk": 3, "return_scores": true}'


def _bounded(x: Any, depth: int, limit: int) -> bool:
    if depth > limit:
        return False
    if isinstance(x, list):
        return all(_bounded(v, depth + 1, limit) for v in x)
    if isinstance(x, dict):
        return all(_bounded(v, depth + 1, limit) for v in x.values())
    return True


def parse_request(body: bytes, limits: ServerLimits) -> tuple[list[str], int, bool]:
    """``(queries, topk, return_scores)`` of a ``/retrieve`` body, or :class:`RequestError`."""
    if len(body) > limits.max_request_bytes:
        raise RequestError(f"request body is {len(body)} bytes; the limit is {limits.max_request_bytes}", 413)

    def bad_constant(name: str) -> Any:
        raise RequestError(f"{name} is not allowed in a request (numbers must be finite)")

    def parse_float(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise RequestError(f"number {text[:40]!r} is out of range (numbers must be finite)")
        return value

    def parse_int(text: str) -> int:
        if len(text.lstrip("-")) > limits.max_int_digits:
            raise RequestError(f"integer {text[:40]}... has more than {limits.max_int_digits} digits")
        return int(text)

    try:
        req = json.loads(body.decode("utf-8"), parse_constant=bad_constant, parse_float=parse_float,
                         parse_int=parse_int)
    except RecursionError:
        raise RequestError(f"request JSON nests too deep (at most {limits.max_json_depth} levels)") from None
    except UnicodeDecodeError as e:
        raise RequestError(f"request body is not UTF-8: {e}") from None
    except ValueError as e:
        if isinstance(e, RequestError):
            raise
        raise RequestError(f"request body is not valid JSON ({e}); expected {_SHAPE}") from None
    if not _bounded(req, 1, limits.max_json_depth):
        raise RequestError(f"request JSON nests deeper than {limits.max_json_depth} levels; expected {_SHAPE}")
    if not isinstance(req, dict) or "queries" not in req:
        raise RequestError(f"request must be a JSON object with 'queries'; expected {_SHAPE}")
    queries = req["queries"]
    if isinstance(queries, str):
        queries = [queries]
    if not isinstance(queries, list) or not all(isinstance(q, str) for q in queries):
        raise RequestError("'queries' must be a list of strings")
    if len(queries) > limits.max_queries:
        raise RequestError(f"'queries' holds {len(queries)} queries; at most {limits.max_queries} per request")
    topk = req.get("topk", 3)
    if topk is None:  # Search-R1's QueryRequest allows None (its config default, 3 here)
        topk = 3
    if isinstance(topk, float) and topk.is_integer():
        topk = int(topk)
    if isinstance(topk, bool) or not isinstance(topk, int):
        raise RequestError(f"'topk' must be an integer in 0..{limits.max_topk}, got {str(topk)[:40]!r}")
    if not 0 <= topk <= limits.max_topk:
        raise RequestError(f"'topk' must be in 0..{limits.max_topk}, got {topk}")
    scores = req.get("return_scores", False)
    if not isinstance(scores, bool):
        raise RequestError(f"'return_scores' must be true or false, got {str(scores)[:40]!r}")
    return queries, topk, scores


def _document_contents(doc: Document) -> str:
    return f"{doc.title}\n{doc.text}" if doc.title else doc.text


def _doc_lookup(retriever: Retriever, documents: Mapping[str, Document] | Sequence[Document] | None
                ) -> Callable[[str], Document | None]:
    if documents is None:
        documents = getattr(retriever, "documents", None)
    if documents is None:
        raise ValueError(f"the server needs the documents of the {type(retriever).__name__} index: pass documents=")
    if not isinstance(documents, Mapping):
        documents = {d.doc_id: d for d in documents}
    return documents.get


def _json_response(status: int, obj: Any) -> tuple[int, bytes]:
    return status, json.dumps(obj).encode("utf-8")


class _LimitsMiddleware:
    """ASGI middleware: 413 for oversized bodies (before reading them), 408 for stalled bodies."""

    def __init__(self, app: Any, limits: ServerLimits):
        self.app = app
        self.limits = limits

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_request_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    n = int(value)
                except ValueError:
                    n = -1
                if n < 0 or n > limit:
                    await _send(send, 413, {"error": f"request body must be 0..{limit} bytes, "
                                                     f"Content-Length says {value.decode('latin-1')[:20]}"})
                    return
        seen = 0
        timeout = self.limits.body_timeout_s

        async def limited_receive() -> dict:
            nonlocal seen
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except asyncio.TimeoutError:
                raise _BodyTimeout() from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge()
            return message

        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send(send, 413, {"error": f"request body exceeds {limit} bytes"})
        except _BodyTimeout:
            if not started:
                await _send(send, 408, {"error": f"request body stalled for {timeout} s"})


class _BodyTooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


async def _send(send: Callable, status: int, obj: Any) -> None:
    body = json.dumps(obj).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def make_app(
    retriever: Retriever,
    *,
    documents: Mapping[str, Document] | Sequence[Document] | None = None,
    limits: ServerLimits = ServerLimits(),
) -> Any:
    """The ASGI app (FastAPI) serving ``retriever``; ``documents`` map ids to passages
    (default ``retriever.documents``)."""
    try:
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse, Response
    except ImportError as e:  # pragma: no cover
        raise ImportError(f"the retriever server needs FastAPI and uvicorn: pip install 't2po-gym[server]' ({e})") from e
    from concurrent.futures import ThreadPoolExecutor

    lookup = _doc_lookup(retriever, documents)
    # Backends that are not known to be thread-safe (pyserini's JVM searcher) get one lock;
    # the others run concurrently in the pool, so one big request never holds up small ones.
    lock = None if getattr(retriever, "thread_safe", False) else threading.Lock()
    pool = ThreadPoolExecutor(max_workers=limits.threads, thread_name_prefix="retrieve")

    def run(queries: list[str], topk: int, with_scores: bool) -> bytes:
        if lock is not None:
            with lock:
                hits = retriever.batch_search(queries, topk)
        else:
            hits = retriever.batch_search(queries, topk)
        result = []
        for row in hits:
            items = []
            for h in row:
                doc = lookup(h.doc_id)
                d = {"id": h.doc_id, "contents": _document_contents(doc) if doc else ""}
                items.append({"document": d, "score": h.score} if with_scores else d)
            result.append(items)
        return json.dumps({"result": result}).encode("utf-8")

    def parse_and_run(body: bytes) -> tuple[int, bytes]:
        try:
            queries, topk, with_scores = parse_request(body, limits)
        except RequestError as e:
            return _json_response(e.status, {"error": f"bad request: {e}"})
        return 200, run(queries, topk, with_scores)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="t2po retriever", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)

    # Plain Starlette routes: the body is parsed by parse_request (bounded), not by pydantic.
    async def retrieve(request: Any) -> Any:
        try:
            body = await request.body()
        except _BodyTooLarge:
            return Response(json.dumps({"error": f"request body exceeds {limits.max_request_bytes} bytes"}),
                            status_code=413, media_type="application/json", headers={"connection": "close"})
        except _BodyTimeout:
            return Response(json.dumps({"error": f"request body stalled for {limits.body_timeout_s} s"}),
                            status_code=408, media_type="application/json", headers={"connection": "close"})
        loop = asyncio.get_running_loop()
        try:
            # Parsing a multi-MB body and searching both run off the event loop.
            status, payload = await loop.run_in_executor(pool, parse_and_run, body)
        except Exception as e:  # a backend failure is a 500 with a reason, never a dropped connection
            status, payload = _json_response(500, {"error": f"search failed: {type(e).__name__}: {e}"})
        return Response(payload, status_code=status, media_type="application/json")

    async def health(request: Any) -> Any:
        return JSONResponse({"status": "ok", "documents": len(retriever), "backend": retriever.name})

    app.add_route("/retrieve", retrieve, methods=["POST"])
    app.add_route("/health", health, methods=["GET"])
    app.add_route("/", health, methods=["GET"])

    return _LimitsMiddleware(app, limits)


def _protocol_class(limits: ServerLimits) -> type:
    """uvicorn's h11 protocol with a header deadline: uvicorn itself times out only idle
    keep-alive connections, so a client that connects and never finishes its headers
    would hold its connection forever."""
    try:  # httptools (C parser, uvicorn[standard]) is several times cheaper per request than h11
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # pragma: no cover
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base

    class HeaderDeadlineProtocol(Base):  # type: ignore[valid-type,misc]
        _deadline: asyncio.TimerHandle | None = None

        def _arm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(limits.header_timeout_s, self._expire)

        def _expire(self) -> None:
            self._deadline = None
            # No request in flight: the headers of the next one never arrived in time.
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            super().connection_lost(exc)

    return HeaderDeadlineProtocol


def _loop() -> str:
    try:
        import uvloop  # noqa: F401

        return "uvloop"
    except ImportError:  # pragma: no cover
        return "asyncio"


def make_server(
    retriever: Retriever,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    documents: Mapping[str, Document] | Sequence[Document] | None = None,
    limits: ServerLimits = ServerLimits(),
) -> "uvicorn.Server":
    """Build (not start) the uvicorn server; ``port=0`` picks a free port.

    Start it with ``server.run()`` (blocking) or in a thread with :func:`start_in_thread`.
    """
    import uvicorn

    app = make_app(retriever, documents=documents, limits=limits)
    config = uvicorn.Config(
        app, host=host, port=port, backlog=limits.backlog, http=_protocol_class(limits), loop=_loop(),
        timeout_keep_alive=limits.keep_alive_s, limit_concurrency=limits.max_connections,
        log_level="warning", access_log=False, lifespan="on",
    )
    return uvicorn.Server(config)


class RunningServer:
    """A server started by :func:`start_in_thread`: ``url`` (``http://host:port``), ``stop()``."""

    def __init__(self, server: "uvicorn.Server", thread: threading.Thread):
        self.server = server
        self.thread = thread
        sock = server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        self.port = int(port)
        self.url = f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)


def start_in_thread(retriever: Retriever, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> RunningServer:
    """Start :func:`make_server` in a daemon thread and wait until it listens (tests, notebooks)."""
    server = make_server(retriever, host, port, **kwargs)
    server.config.install_signal_handlers = False  # type: ignore[attr-defined]
    started = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            server.run()
        except BaseException as e:  # pragma: no cover
            errors.append(e)
        finally:
            started.set()

    t = threading.Thread(target=target, daemon=True, name="retriever-server")
    t.start()
    import time

    deadline = time.monotonic() + 30
    while not server.started and not errors and t.is_alive():
        if time.monotonic() > deadline:
            raise RuntimeError("retriever server did not start within 30 s")
        started.wait(0.02)
    if errors or not server.started:
        raise RuntimeError(f"retriever server failed to start: {errors[0] if errors else 'exited'}")
    return RunningServer(server, t)


def serve(retriever: Retriever, host: str = "127.0.0.1", port: int = 8000, *,
          documents: Mapping[str, Document] | Sequence[Document] | None = None,
          limits: ServerLimits = ServerLimits()) -> None:
    """Serve ``retriever`` on ``http://host:port/retrieve`` until interrupted (blocking)."""
    make_server(retriever, host, port, documents=documents, limits=limits).run()


# ------------------------------------------------------------------------ CLI
def register_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``serve-retriever`` to the ``t2po`` command's subparsers."""
    p = subparsers.add_parser(
        "serve-retriever",
        help="serve a Search-QA retriever over HTTP (Search-R1's POST /retrieve)",
        description="Serve the Search-QA corpus (generated world, or SEARCHQA_DATA / --data-dir) "
                    "over HTTP (FastAPI + uvicorn) so several processes share one index.")
    p.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1 only)")
    p.add_argument("--retriever", default="bm25", choices=["bm25", "tantivy", "lucene", "dense"],
                   help="search backend (bm25 = tantivy BM25; lucene needs the lucene extra; dense: MiniLM)")
    p.add_argument("--data-dir", default=None, help="Search-R1 data folder (corpus.jsonl); "
                                                    "default $SEARCHQA_DATA or the generated world")
    p.add_argument("--world-passages", type=int, default=20_000,
                   help="passages of the generated offline world (when no --data-dir)")
    p.add_argument("--world-seed", type=int, default=0, help="seed of the generated offline world")
    d = ServerLimits()
    p.add_argument("--max-request-mb", type=float, default=d.max_request_bytes / 2**20,
                   help="larger request bodies get HTTP 413")
    p.add_argument("--max-topk", type=int, default=d.max_topk, help="largest topk a request may ask for (400 above it)")
    p.add_argument("--threads", type=int, default=d.threads, help="search threads")
    p.add_argument("--timeout", type=float, default=d.header_timeout_s,
                   help="seconds a client has to send a request's headers, and between body chunks")
    p.set_defaults(func=_cli_serve)
    return p


def _cli_serve(args: argparse.Namespace) -> int:
    from t2po_gym.envs.searchqa.env import load_searchqa_data
    from t2po_gym.envs.searchqa.retrieval import resolve_retriever

    for name in ("port", "max_topk", "threads"):
        if getattr(args, name) < (0 if name != "threads" else 1):
            raise SystemExit(f"--{name.replace('_', '-')} must be >= {0 if name != 'threads' else 1}")
    if not (args.max_request_mb > 0 and args.timeout > 0):
        raise SystemExit("--max-request-mb and --timeout must be > 0")
    limits = ServerLimits(max_request_bytes=int(args.max_request_mb * 2**20), max_topk=args.max_topk,
                          threads=args.threads, header_timeout_s=args.timeout, body_timeout_s=args.timeout)
    data = load_searchqa_data(data_dir=args.data_dir, world_passages=args.world_passages,
                              world_seed=args.world_seed)
    retriever = resolve_retriever(args.retriever, data)
    print(f"serving {retriever.name} over {len(data.documents)} passages on "
          f"http://{args.host}:{args.port}/retrieve", flush=True)
    serve(retriever, args.host, args.port, documents=data.doc_by_id, limits=limits)
    return 0
