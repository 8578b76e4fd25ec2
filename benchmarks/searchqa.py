"""Search-QA benchmark: retriever latency and recall@3 on the generated world, env step cost,
oracle EM, side by side with a linear-scan baseline retriever.

    python benchmarks/searchqa.py --quick     # 20k passages (dense on a 1k-passage sub-corpus), < 40 s
    python benchmarks/searchqa.py             # 100k passages (dense on 20k, embeddings cached)

recall@3 is measured per hop: for every (question, supporting passage) pair, is the passage in
the top 3 for the hop's sub-question (the oracle's query)? ``recall_at_3_question_*`` uses the
question text itself and asks whether the first supporting passage is in the top 3.

Prints a table, then one JSON line with ``passages``, ``bm25_index_s``, ``bm25_query_ms``,
``scan_query_ms`` (baseline), ``dense_passages``, ``dense_index_s``, ``dense_query_ms``,
``lucene_query_ms`` (null without the ``lucene`` extra), ``recall_at_3_bm25``,
``recall_at_3_dense``, ``recall_at_3_scan``, ``recall_at_3_question_bm25``, ``step_us``
(a search step, raw observation), ``prompt_step_us``, ``oracle_em``.
Goals: BM25 query < 2 ms at 100k passages; ``--quick`` under 40 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from t2po_gym.search.base import Retriever, SearchHit  # noqa: E402


class ScanRetriever(Retriever):
    """Baseline: score every passage by the number of distinct query words it contains."""

    name = "scan"

    def __init__(self, docs):
        self.ids = [d.doc_id for d in docs]
        self.index: dict[str, list[int]] = defaultdict(list)
        for i, d in enumerate(docs):
            for w in set(re.findall(r"\w+", (d.title + " " + d.text).lower())):
                self.index[w].append(i)
        self.n = len(docs)

    def search(self, query, k=10):
        import numpy as np

        score = np.zeros(self.n, dtype=np.int32)
        for w in set(re.findall(r"\w+", query[:4096].lower())):
            score[self.index.get(w, [])] += 1
        top = np.argsort(-score, kind="stable")[:k]
        return [SearchHit(self.ids[i], float(score[i])) for i in top if score[i] > 0]

    def __len__(self):
        return self.n


def timed(fn, *a, **kw):
    t0 = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - t0


def hop_pairs(questions):
    return [(s, h) for q in questions for s, h in zip(q.supports, q.hop_queries)]


def recall_at_k(retriever, pairs, k=3) -> tuple[float, float]:
    """(recall, mean ms per query) over (support id, query) pairs."""
    t0 = time.perf_counter()
    results = retriever.batch_search([h for _, h in pairs], k)
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(pairs))
    hit = sum(s in {x.doc_id for x in r} for (s, _), r in zip(pairs, results))
    return hit / max(1, len(pairs)), ms


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20k passages, dense on 1k")
    ap.add_argument("--passages", type=int, default=None)
    ap.add_argument("--questions", type=int, default=None,
                    help="test questions used for recall/latency (default 200 quick, 1000 full)")
    ap.add_argument("--dense-passages", type=int, default=None,
                    help="dense sub-corpus size (supports of the sampled questions + random passages)")
    ap.add_argument("--no-dense", action="store_true")
    ap.add_argument("--lucene", action="store_true", help="also measure pyserini (lucene extra; slow to start)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the dense encoder")
    ap.add_argument("--cache", default=None, help="cache dir for indexes (default: a fresh temp dir)")
    args = ap.parse_args(argv)
    n_pass = args.passages or (20_000 if args.quick else 100_000)
    n_dense = args.dense_passages or (1_000 if args.quick else 20_000)
    n_questions = args.questions or (200 if args.quick else 1000)
    cache = args.cache or tempfile.mkdtemp(prefix="t2po_bench_sqa_")
    os.environ["T2PO_CACHE"] = cache
    t_start = time.perf_counter()

    from t2po_gym.envs.searchqa.env import SearchQAEnv, load_searchqa_data
    from t2po_gym.search.tantivy_engine import TantivyRetriever

    data, gen_s = timed(load_searchqa_data, world_passages=n_pass, world_questions=5000, world_seed=0)
    rng = random.Random(0)
    qs = rng.sample(data.questions("test"), min(n_questions, len(data.questions("test"))))
    pairs = hop_pairs(qs)
    rows = [("world generation", f"{len(data.documents)} passages, 5000 questions", f"{gen_s:.2f} s")]

    bm25, bm25_index_s = timed(TantivyRetriever, data.documents, fingerprint=data.fingerprint)
    bm25.search("warm up", 3)
    recall_bm25, bm25_ms = recall_at_k(bm25, pairs)
    recall_q_bm25, _ = recall_at_k(bm25, [(q.supports[0], q.question) for q in qs])
    rows += [("bm25 (tantivy) index", f"{len(bm25)} passages", f"{bm25_index_s:.2f} s"),
             ("bm25 (tantivy) query", f"recall@3 {recall_bm25:.3f} (question text: {recall_q_bm25:.3f})",
              f"{bm25_ms:.3f} ms")]

    scan, scan_index_s = timed(ScanRetriever, data.documents)
    recall_scan, scan_ms = recall_at_k(scan, pairs[: min(len(pairs), 200)])
    rows.append(("baseline: word-count scan", f"recall@3 {recall_scan:.3f}", f"{scan_ms:.3f} ms"))

    lucene_ms = None
    if not args.lucene:
        rows.append(("bm25 (pyserini)", "skipped (pass --lucene)", "-"))
    else:
        try:
            from t2po_gym.search.lucene_engine import lucene_retriever

            lucene = lucene_retriever(data.documents, fingerprint=data.fingerprint)
            recall_lucene, lucene_ms = recall_at_k(lucene, pairs)
            rows.append(("bm25 (pyserini) query", f"recall@3 {recall_lucene:.3f}", f"{lucene_ms:.3f} ms"))
        except Exception as e:  # the lucene extra is optional
            rows.append(("bm25 (pyserini)", f"skipped: {type(e).__name__}: {str(e)[:60]}", "-"))

    dense_ms = dense_index_s = recall_dense = None
    dense_n = 0
    if not args.no_dense:
        try:
            from t2po_gym.search.dense import DenseRetriever, MiniLMEncoder

            need = {s for s, _ in pairs}
            others = [d for d in data.documents if d.doc_id not in need]
            rng.shuffle(others)
            sub = [d for d in data.documents if d.doc_id in need] + others[: max(0, n_dense - len(need))]
            enc = MiniLMEncoder(num_threads=args.threads)
            dense, dense_total_s = timed(DenseRetriever, sub, encoder=enc)
            dense_index_s = dense.index_seconds if not dense.from_cache else 0.0
            dense_n = len(dense)
            dense.search("warm up", 3)
            recall_dense, _ = recall_at_k(dense, pairs)
            t0 = time.perf_counter()
            for _, h in pairs[:100]:
                dense.search(h, 3)
            dense_ms = (time.perf_counter() - t0) * 1000 / min(100, len(pairs))
            rows += [("dense (MiniLM) index", f"{dense_n} passages{' (cached)' if dense.from_cache else ''}",
                      f"{dense_total_s:.2f} s"),
                     ("dense (MiniLM) query", f"recall@3 {recall_dense:.3f} (on its {dense_n}-passage corpus)",
                      f"{dense_ms:.3f} ms")]
        except ImportError as e:
            rows.append(("dense (MiniLM)", f"skipped: {e}", "-"))

    env = SearchQAEnv(split="test", world_passages=n_pass, world_questions=5000, observation_mode="raw")
    env._retriever = bm25
    env.reset(seed=0)
    steps = 0
    t0 = time.perf_counter()
    for i, (_, h) in enumerate(pairs[:300]):
        if env._ended or env.turn >= 3:
            env.reset(seed=i)
        env.step(f"<think>look</think><search>{h}</search>")
        steps += 1
    step_us = (time.perf_counter() - t0) * 1e6 / steps
    penv = SearchQAEnv(split="test", world_passages=n_pass, world_questions=5000)
    penv._retriever = bm25
    penv.reset(seed=0)
    t0 = time.perf_counter()
    for i, (_, h) in enumerate(pairs[:300]):
        if penv._ended or penv.turn >= 3:
            penv.reset(seed=i)
        penv.step(f"<think>look</think><search>{h}</search>")
    prompt_step_us = (time.perf_counter() - t0) * 1e6 / min(300, len(pairs))

    ems = []
    for i in range(min(300, len(env._questions))):
        env.reset(options={"question_index": i})
        while True:
            _, _, term, trunc, info = env.step("<think>oracle</think>" + env.oracle_action())
            if term or trunc:
                break
        ems.append(info["em"])
    oracle_em = sum(ems) / len(ems)
    rows += [("env search step (raw obs)", "bm25, top-3", f"{step_us:.0f} us"),
             ("env search step (prompt obs)", "bm25, top-3", f"{prompt_step_us:.0f} us"),
             ("oracle agent", f"EM over {len(ems)} test questions", f"{oracle_em:.3f}")]
    total_s = time.perf_counter() - t_start
    rows.append(("total", "", f"{total_s:.1f} s"))

    w = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    print(f"{'what':<{w[0]}}  {'detail':<{w[1]}}  value")
    for a, b, c in rows:
        print(f"{a:<{w[0]}}  {b:<{w[1]}}  {c}")
    out = {
        "passages": len(data.documents),
        "questions_measured": len(qs),
        "hops_measured": len(pairs),
        "bm25_index_s": round(bm25_index_s, 3),
        "bm25_query_ms": round(bm25_ms, 4),
        "scan_query_ms": round(scan_ms, 4),
        "lucene_query_ms": None if lucene_ms is None else round(lucene_ms, 4),
        "dense_passages": dense_n,
        "dense_index_s": None if dense_index_s is None else round(dense_index_s, 2),
        "dense_query_ms": None if dense_ms is None else round(dense_ms, 3),
        "recall_at_3_bm25": round(recall_bm25, 4),
        "recall_at_3_dense": None if recall_dense is None else round(recall_dense, 4),
        "recall_at_3_scan": round(recall_scan, 4),
        "recall_at_3_question_bm25": round(recall_q_bm25, 4),
        "step_us": round(step_us, 1),
        "prompt_step_us": round(prompt_step_us, 1),
        "oracle_em": round(oracle_em, 4),
        "total_s": round(total_s, 1),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
