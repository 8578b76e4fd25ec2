"""The retriever server (t2po_gym.envs.searchqa.server): request bounds, timeouts, no global
lock, and 64 concurrent clients without a reset or an unanswered request."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from t2po_gym.envs.searchqa.server import RequestError, ServerLimits, parse_request, start_in_thread
from t2po_gym.search.base import Document, Retriever, SearchHit

DOCS = [Document(str(i), f"T{i}", f"word{i} river city") for i in range(50)]


class Overlap(Retriever):
    """Score = shared words; ``block`` queries wait for ``gate`` (to hold a search in flight)."""

    name = "overlap"
    thread_safe = True

    def __init__(self, docs):
        self.documents = list(docs)
        self.gate = threading.Event()
        self.blocked = threading.Event()

    def search(self, query, k=10):
        if "block" in query:
            self.blocked.set()
            assert self.gate.wait(30)
        q = set(query.lower().split())
        scored = [(len(q & set(f"{d.title} {d.text}".lower().split())), i) for i, d in enumerate(self.documents)]
        scored = sorted((s for s in scored if s[0] > 0), key=lambda t: (-t[0], t[1]))
        return [SearchHit(self.documents[i].doc_id, float(s)) for s, i in scored[:k]]

    def __len__(self):
        return len(self.documents)


LIMITS = ServerLimits(max_request_bytes=64 * 1024, header_timeout_s=0.5, body_timeout_s=0.5, keep_alive_s=0.5)


@pytest.fixture
def server():
    r = Overlap(DOCS)
    srv = start_in_thread(r, limits=LIMITS)
    srv.retriever = r
    yield srv
    r.gate.set()
    srv.stop()


def _post_raw(url: str, body: bytes, timeout: float = 10) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/retrieve", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


# ------------------------------------------------------------------ parse_request
@pytest.mark.parametrize("body, match", [
    (b'{"queries": ["a"], "topk": 1e400}', "out of range"),
    (b'{"queries": ["a"], "topk": Infinity}', "Infinity is not allowed"),
    (b'{"queries": ["a"], "topk": NaN}', "NaN is not allowed"),
    (b'{"queries": ["a"], "topk": ' + b"9" * 5000 + b"}", "more than 18 digits"),
    (b'{"queries": ["a"], "topk": 101}', "0..100"),
    (b'{"queries": ["a"], "topk": -1}', "0..100"),
    (b'{"queries": ["a"], "topk": 2.5}', "integer"),
    (b'{"queries": ["a"], "topk": true}', "integer"),
    (b'{"queries": ["a"], "return_scores": "yes"}', "return_scores"),
    (b'{"queries": [["a"]]}', "list of strings"),
    (b'{"nope": 1}', "'queries'"),
    (b"[" * 100_000 + b"]" * 100_000, "nests too deep"),
    (b'{"queries": ["a"], "x": ' + b"[" * 20 + b"]" * 20 + b"}", "nests deeper than 8"),
    (b"\xff\xfe", "UTF-8"),
    (b"{", "not valid JSON"),
])
def test_bad_requests_are_400_with_a_message(body, match):
    with pytest.raises(RequestError, match=match) as e:
        parse_request(body, ServerLimits())
    assert e.value.status == 400


def test_good_requests_parse():
    assert parse_request(b'{"queries": ["a", "b"], "topk": 3, "return_scores": true}', ServerLimits()) == (["a", "b"], 3, True)
    assert parse_request(b'{"queries": "a", "topk": 3.0}', ServerLimits()) == (["a"], 3, False)
    assert parse_request(b'{"queries": ["a"], "topk": null}', ServerLimits()) == (["a"], 3, False)
    with pytest.raises(RequestError, match="at most 2"):
        parse_request(b'{"queries": ["a", "b", "c"]}', ServerLimits(max_queries=2))


# ------------------------------------------------------------------ over HTTP
def test_http_bounds(server):
    code, out = _post_raw(server.url, b'{"queries": ["a"], "topk": 1e400}')
    assert code == 400 and "out of range" in out["error"]
    code, out = _post_raw(server.url, b"[" * 30_000 + b"]" * 30_000)
    assert code == 400 and "deep" in out["error"]
    code, out = _post_raw(server.url, json.dumps({"queries": ["x" * (65 * 1024)]}).encode())
    assert code == 413 and "bytes" in out["error"]
    code, out = _post_raw(server.url, b'{"queries": ["word3 river"], "topk": 2}')
    assert code == 200 and out["result"][0][0] == {"id": "3", "contents": "T3\nword3 river city"}


def test_oversized_content_length_is_refused_before_the_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 999999999\r\n\r\n")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")


def test_stalled_headers_are_closed(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /retrieve HTTP/1.1\r\nHost: x\r\n")  # ... and never finishes
        assert s.recv(4096) == b""  # the server closed it (well before the 5 s client timeout)


def test_idle_connection_is_closed(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        assert s.recv(4096) == b""


def test_stalled_body_gets_408(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"queries\"")
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:100]


def test_a_search_in_flight_does_not_hold_up_others(server):
    """No server-wide lock: while one search is blocked inside the backend, another answers."""
    results = {}

    def slow():
        results["slow"] = _post_raw(server.url, b'{"queries": ["block river"], "topk": 1}', timeout=30)

    t = threading.Thread(target=slow)
    t.start()
    assert server.retriever.blocked.wait(10)
    code, out = _post_raw(server.url, b'{"queries": ["word7"], "topk": 1}')
    assert code == 200 and out["result"][0][0]["id"] == "7"
    assert t.is_alive() and "slow" not in results  # the first one is still in the backend
    server.retriever.gate.set()
    t.join(10)
    assert results["slow"][0] == 200


def test_unsafe_backends_are_serialised():
    r = Overlap(DOCS)
    r.thread_safe = False
    srv = start_in_thread(r, limits=LIMITS)
    try:
        t = threading.Thread(target=_post_raw, args=(srv.url, b'{"queries": ["block"]}', 30))
        t.start()
        assert r.blocked.wait(10)
        with pytest.raises(OSError):  # waits behind the lock until the client gives up
            urllib.request.urlopen(urllib.request.Request(
                srv.url + "/retrieve", data=b'{"queries": ["word7"]}'), timeout=1.0)
        r.gate.set()
        t.join(10)
    finally:
        r.gate.set()
        srv.stop()


# ------------------------------------------------------------------ load
def _load_module():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "retriever_load.py"
    spec = importlib.util.spec_from_file_location("retriever_load", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["retriever_load"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_64_clients_get_every_answer(tmp_path):
    """64 clients, one connection per request, 10 s against ``t2po serve-retriever`` over 20k
    passages: no connection reset, no unanswered request, no error reply. (Latency figures:
    ``python benchmarks/retriever_load.py``; this test asserts behaviour, not speed.)"""
    import os

    load = _load_module()
    port = load.free_port()
    proc = load.start_server(20_000, port, env=dict(os.environ, T2PO_CACHE=str(tmp_path)))
    try:
        res = load.run_load("127.0.0.1", port, clients=64, seconds=10, topk=3, timeout=20)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert res.requests > 64
    assert (res.resets, res.unanswered, res.http_errors) == (0, 0, 0), res.errors[:5]
    assert res.answered == res.requests
