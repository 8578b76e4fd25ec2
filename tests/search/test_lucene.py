"""The pyserini Lucene retriever (``lucene`` extra): skipped when pyserini is absent."""

from __future__ import annotations

import sys

import pytest

from t2po_gym.search import lucene_engine
from t2po_gym.search.base import Document
from t2po_gym.search.lucene_engine import LuceneRetriever, LuceneUnavailableError

DOCS = [
    Document("shoe", "Red Running Shoes", "lightweight mesh running shoes with rubber sole"),
    Document("shampoo", "Sulfate Free Shampoo", "argan oil shampoo for dry hair"),
    Document("chair", "Ergonomic Office Chair", "lumbar support and height adjustable"),
]


def test_missing_pyserini_names_the_fix(monkeypatch):
    monkeypatch.setattr(lucene_engine, "_READY", {})
    monkeypatch.setitem(sys.modules, "jnius_config", None)
    with pytest.raises(LuceneUnavailableError, match=r"pip install 't2po-gym\[lucene\]'"):
        lucene_engine.ensure_pyserini()


@pytest.fixture(scope="module")
def lucene(tmp_path_factory):
    pytest.importorskip("pyserini", reason="the lucene extra is not installed")
    try:
        lucene_engine.ensure_pyserini()
    except LuceneUnavailableError as e:
        pytest.skip(str(e))
    return LuceneRetriever(DOCS, index_dir=tmp_path_factory.mktemp("lucene") / "idx")


def test_lucene_search(lucene):
    assert len(lucene) == 3 and lucene.built
    hits = lucene.search("running shoes", k=2)
    assert hits[0].doc_id == "shoe" and hits[0].score > 0
    assert lucene.search("shampoos", k=1)[0].doc_id == "shampoo"
    for q in ("", "AND OR ( title:x \"", "\ud800", "x" * 1_000_000):
        assert isinstance(lucene.search(q, k=3), list)


def test_lucene_reopens_existing_index(lucene):
    again = LuceneRetriever.from_index(lucene.index_dir)
    assert not again.built and again.search("lumbar", k=1)[0].doc_id == "chair"
    with pytest.raises(FileNotFoundError):
        LuceneRetriever.from_index(lucene.index_dir / "nope")


def test_webshop_env_on_lucene(lucene, tmp_path, monkeypatch):
    from t2po_gym.envs.webshop.env import WebShopEnv
    from t2po_gym.envs.webshop.synthetic import generate_catalog

    monkeypatch.setenv("T2PO_CACHE", str(tmp_path))
    # strict protocol: the oracle's bare commands (the released rule keeps only the last 30 characters)
    env = WebShopEnv(catalog=generate_catalog(200, seed=1), search_engine="lucene", observation_mode="raw",
                     strict_format=False, split="all", protocol="strict")
    wins = 0
    for i in range(20):
        env.reset(options={"goal_index": i})
        for _ in range(15):
            a = env.oracle_action()
            _, _, term, trunc, info = env.step(a)
            if term or trunc:
                break
        wins += info["won"]
    assert wins >= 19
