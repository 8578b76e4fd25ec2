"""The tantivy BM25 retriever: ranking, disk cache, process sharing, odd queries."""

from __future__ import annotations

import pytest

from t2po_gym.search.base import Document, clear_shared_retrievers
from t2po_gym.search.tantivy_engine import MAX_QUERY_TERMS, TantivyRetriever, query_terms, tantivy_retriever

DOCS = [
    Document("shoe", "Red Running Shoes", "lightweight mesh running shoes with rubber sole"),
    Document("shampoo", "Sulfate Free Shampoo", "argan oil shampoo for dry hair"),
    Document("chair", "Ergonomic Office Chair", "lumbar support and height adjustable"),
    Document("jeans", "Skinny Jeans", "high waist stretch denim"),
]


def test_ranking_and_stemming(tmp_path):
    r = TantivyRetriever(DOCS, index_dir=tmp_path / "idx")
    assert r.built and len(r) == 4
    hits = r.search("running shoe", k=3)
    assert hits[0].doc_id == "shoe" and hits[0].score > 0
    assert r.search("shampoos for hair", k=1)[0].doc_id == "shampoo"  # en_stem: shampoos -> shampoo
    assert [h.doc_id for h in r.search("chair", k=10)] == ["chair"]
    assert r.search("chair", k=0) == []


def test_index_is_cached_on_disk(tmp_path):
    TantivyRetriever(DOCS, index_dir=tmp_path / "idx")
    again = TantivyRetriever(DOCS, index_dir=tmp_path / "idx")
    assert not again.built and again.search("denim")[0].doc_id == "jeans"


def test_default_cache_keyed_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("T2PO_CACHE", str(tmp_path))
    a = TantivyRetriever(DOCS)
    b = TantivyRetriever(DOCS[:3])
    assert a.index_dir != b.index_dir and a.fingerprint[:32] in a.index_dir.name
    assert len(list((tmp_path / "tantivy").iterdir())) == 2


def test_shared_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("T2PO_CACHE", str(tmp_path))
    clear_shared_retrievers()
    assert tantivy_retriever(DOCS) is tantivy_retriever(list(DOCS))
    clear_shared_retrievers()


@pytest.mark.parametrize(
    "query",
    ["", "   ", "AND OR NOT", 'title:x ( " ~ ^2 [a TO b]', "\ud800\udfff", "\x00\x01", "!!!???", "x" * 1_000_000],
)
def test_odd_queries_never_raise(tmp_path, query):
    r = TantivyRetriever(DOCS, index_dir=tmp_path / "idx")
    hits = r.search(query, k=5)
    assert isinstance(hits, list) and len(hits) <= 5


def test_query_terms_bounded():
    assert query_terms("Red, red SHOES!") == ["red", "shoes"]
    assert len(query_terms(" ".join(f"w{i}" for i in range(10_000)))) == MAX_QUERY_TERMS
    assert query_terms(123) == []  # type: ignore[arg-type]


def test_cache_of_other_content_is_rebuilt_not_trusted(tmp_path):
    """The cache is verified on open: a folder whose COMPLETE marker records another corpus
    (same size, so a document-count check alone would pass) is rebuilt with a warning."""
    import json

    other = [Document(d.doc_id, d.title, "unrelated words " + d.text[::-1]) for d in DOCS]
    idx = tmp_path / "idx"
    TantivyRetriever(other, index_dir=idx)  # 4 docs, like DOCS, under the same folder
    with pytest.warns(UserWarning, match="not this corpus's.*fingerprint"):
        r = TantivyRetriever(DOCS, index_dir=idx)
    assert r.built and r.search("running shoe", k=1)[0].doc_id == "shoe"
    assert json.loads((idx / "COMPLETE").read_text())["fingerprint"] == r.fingerprint
    # an index of the old marker format (the bare fingerprint) is rebuilt too
    (idx / "COMPLETE").write_text(r.fingerprint)
    with pytest.warns(UserWarning, match="unreadable COMPLETE"):
        assert TantivyRetriever(DOCS, index_dir=idx).built
    assert not TantivyRetriever(DOCS, index_dir=idx).built  # and then trusted
