"""Remote retriever client: Search-R1 /retrieve wire shape, server-down and hung-server errors.

The server is :mod:`t2po_gym.envs.searchqa.server` (its limits are tested in
``tests/envs/test_searchqa_server.py``)."""

import json
import socket
import time
import urllib.request

import pytest

from t2po_gym.search.base import Document, Retriever, SearchHit
from t2po_gym.envs.searchqa.server import start_in_thread
from t2po_gym.search.remote import RemoteRetriever, RetrieverUnavailableError


class WordOverlap(Retriever):
    """A tiny deterministic retriever: score = number of shared lowercase words."""

    name = "overlap"

    def __init__(self, docs):
        self.documents = list(docs)

    def search(self, query, k=10):
        q = set(query.lower().split())
        scored = [(len(q & set((d.title + " " + d.text).lower().split())), i) for i, d in enumerate(self.documents)]
        scored = sorted((s for s in scored if s[0] > 0), key=lambda t: (-t[0], t[1]))
        return [SearchHit(self.documents[i].doc_id, float(s)) for s, i in scored[:k]]

    def __len__(self):
        return len(self.documents)


DOCS = [Document("0", "Alpha", "alpha city river"), Document("1", "Beta", "beta town river"),
        Document("2", "Gamma", "gamma village")]


@pytest.fixture
def server():
    srv = start_in_thread(WordOverlap(DOCS), "127.0.0.1", 0)
    yield srv.url
    srv.stop()


def _post(url, payload):
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def test_search_r1_response_shape(server):
    out = _post(server + "/retrieve", {"queries": ["river alpha", "gamma"], "topk": 2, "return_scores": True})
    assert list(out) == ["result"] and len(out["result"]) == 2
    first = out["result"][0][0]
    assert first == {"document": {"id": "0", "contents": "Alpha\nalpha city river"}, "score": 2.0}
    assert [d["document"]["id"] for d in out["result"][0]] == ["0", "1"]
    bare = _post(server + "/retrieve", {"queries": ["gamma"], "topk": 3, "return_scores": False})
    assert bare["result"] == [[{"id": "2", "contents": "Gamma\ngamma village"}]]


def test_client_roundtrip(server):
    r = RemoteRetriever(server)  # /retrieve is appended
    assert r.url.endswith("/retrieve")
    hits = r.search("beta river", k=3)
    assert [h.doc_id for h in hits] == ["1", "0"]
    docs = r.search_documents("beta", k=1)
    assert docs[0][0] == DOCS[1]
    assert r.batch_search(["alpha", "gamma"], k=1) == [[SearchHit("0", 1.0)], [SearchHit("2", 1.0)]]
    assert len(r) == 3
    assert r.search("", k=3) == []


def test_server_rejects_bad_requests(server):
    for payload in ({"nope": 1}, {"queries": [1, 2]}, {"queries": ["a"], "topk": "x"}):
        with pytest.raises(urllib.error.HTTPError) as e:
            _post(server + "/retrieve", payload)
        assert e.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as e:
        _post(server + "/other", {"queries": ["a"]})
    assert e.value.code == 404


def test_huge_query_is_served(server):
    r = RemoteRetriever(server)
    hits = r.search("alpha " * 200_000, k=2)  # 1.2 MB of query
    assert hits and hits[0].doc_id == "0"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down_is_a_clear_error():
    r = RemoteRetriever(f"http://127.0.0.1:{_free_port()}/retrieve", timeout=2)
    with pytest.raises(RetrieverUnavailableError, match="unreachable.*serve-retriever"):
        r.search("x")


def test_hung_server_times_out():
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)  # accepts connections, never answers
    try:
        r = RemoteRetriever(f"http://127.0.0.1:{lsock.getsockname()[1]}/retrieve", timeout=0.5)
        t0 = time.monotonic()
        with pytest.raises(RetrieverUnavailableError):
            r.search("x")
        assert time.monotonic() - t0 < 5
    finally:
        lsock.close()


def test_bad_url():
    with pytest.raises(ValueError, match="http://"):
        RemoteRetriever("127.0.0.1:8000")


def test_env_with_remote_retriever(server):
    from t2po_gym.envs.searchqa.env import SearchQAEnv

    srv_docs = DOCS
    env = SearchQAEnv(retriever=server + "/retrieve", world_passages=300, world_questions=40)
    env.reset(seed=0)
    _, _, term, trunc, info = env.step("<think>t</think><search>alpha river</search>")
    assert not trunc and info["action_valid"]
    assert env._raw_obs.startswith("<information>Doc 1(Title: Alpha) alpha city river")
    assert srv_docs[0].text in env._raw_obs


def test_env_truncates_when_server_is_down():
    from t2po_gym.envs.searchqa.env import SearchQAEnv

    env = SearchQAEnv(retriever=f"http://127.0.0.1:{_free_port()}/retrieve", world_passages=300,
                      world_questions=40)
    env.reset(seed=0)
    obs, r, term, trunc, info = env.step("<think>t</think><search>alpha</search>")
    assert trunc and not term and r == 0.0
    assert "unreachable" in info["retriever_error"] and "Search failed" in env._raw_obs
    with pytest.raises(RuntimeError, match="reset"):
        env.step("<think>t</think><answer>x</answer>")


def test_serve_retriever_cli_subprocess(tmp_path):
    import os
    import subprocess
    import sys

    port = _free_port()
    env = dict(os.environ, T2PO_CACHE=str(tmp_path))
    proc = subprocess.Popen(
        [sys.executable, "-m", "t2po_gym.cli", "serve-retriever", "--port", str(port),
         "--world-passages", "300"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert health["backend"] == "tantivy" and health["documents"] >= 300
        out = _post(url + "/retrieve", {"queries": ["city population"], "topk": 3, "return_scores": True})
        assert len(out["result"][0]) == 3
        assert "\n" in out["result"][0][0]["document"]["contents"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
