"""WebShop benchmark: catalog + index build, query latency (tantivy vs pyserini vs a linear
scan baseline), click-step latency, and the memory of 16 envs in one process.

    python benchmarks/webshop.py --quick     # 10k products, < 40 s
    python benchmarks/webshop.py             # 100k products

Prints a table, then one JSON line with ``products``, ``build_s``, ``tantivy_query_ms``,
``pyserini_query_ms`` (null without the ``lucene`` extra), ``scan_query_ms`` (baseline),
``step_us`` (a click step, raw observation), ``prompt_step_us`` and ``rss_mb_16_envs``.
Goals: tantivy < 2 ms at 100k, click step < 500 µs, 16 envs < 1 GB RSS at 100k.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_mb() -> float:
    """Resident set size of this process now (MB), from /proc (falls back to the peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_queries(search, queries: list[str], k: int = 50) -> float:
    """Mean milliseconds per query (after one warm-up query)."""
    search(queries[0], k)
    t = time.perf_counter()
    for q in queries:
        search(q, k)
    return (time.perf_counter() - t) * 1000 / len(queries)


def scan_search(docs, query: str, k: int = 50) -> list[str]:
    """Baseline without an index: score every document by query-word hits."""
    words = query.lower().split()
    scored = []
    for d in docs:
        text = (d.title + " " + d.text).lower()
        s = sum(text.count(w) for w in words)
        if s:
            scored.append((s, d.doc_id))
    scored.sort(key=lambda x: -x[0])
    return [i for _, i in scored[:k]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10k products instead of 100k")
    ap.add_argument("--products", type=int, default=None, help="catalog size (overrides --quick)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--no-lucene", action="store_true", help="skip pyserini even if installed")
    args = ap.parse_args()
    n = args.products or (10_000 if args.quick else 100_000)
    os.environ["T2PO_CACHE"] = tempfile.mkdtemp(prefix="t2po-bench-")  # measure a cold build

    import gymnasium as gym

    import t2po_gym  # noqa: F401
    from t2po_gym.envs.webshop.catalogs import get_catalog
    from t2po_gym.envs.webshop.env import catalog_retriever

    rows: list[tuple[str, str]] = []
    rss0 = rss_mb()
    t0 = time.perf_counter()
    cat = get_catalog("synthetic", num_products=n)
    t_cat = time.perf_counter() - t0
    t1 = time.perf_counter()
    tantivy = catalog_retriever(cat, "tantivy")
    t_idx = time.perf_counter() - t1
    build_s = t_cat + t_idx
    rows += [("products", f"{n:,}"), ("goals", f"{len(cat.goals):,}"),
             ("catalog build (s)", f"{t_cat:.2f}"), ("tantivy index build (s)", f"{t_idx:.2f}")]

    # What an agent types: the instruction without its price clause (as ReAct-style agents do).
    queries = [g.instruction_text.split(", and price lower than")[0] for g in cat.goals[: args.queries]]
    tq = time_queries(tantivy.search, queries)
    docs = cat.documents()
    scan_q = time_queries(lambda q, k: scan_search(docs, q, k), queries[:10])
    del docs
    rows += [("tantivy query (ms, k=50)", f"{tq:.3f}"), ("baseline linear scan query (ms)", f"{scan_q:.1f}")]

    # 16 envs in one process share the catalog and the index.
    vec = gym.make_vec("T2PO/WebShop-v0", num_envs=16, vectorization_mode="sync", num_products=n,
                       observation_mode="raw", strict_format=False, protocol="strict")
    vec.reset(seed=list(range(16)))
    vec.step(["search[shampoo]"] * 16)
    rss16 = rss_mb()
    envs = [e.unwrapped for e in vec.envs]
    shared = len({id(e.catalog) for e in envs}) == 1 and len({id(e.retriever) for e in envs}) == 1
    vec.close()
    rows += [("RSS with 16 envs (MB)", f"{rss16:.0f}"), ("RSS before catalog (MB)", f"{rss0:.0f}"),
             ("16 envs share catalog+index", str(shared))]

    def click_step_us(mode: str) -> float:
        from t2po_gym.envs.webshop.env import WebShopEnv

        # bare commands, as before the released protocol existed (it keeps only a bare
        # response's last 30 characters), so the figures stay comparable
        env = WebShopEnv(num_products=n, observation_mode=mode, strict_format=False, protocol="strict")
        env.reset(seed=0)
        env.step(f"search[{env.goal.name}]")
        env.step(f"click[{env.goal.asin.lower()}]")
        steps, t = 0, time.perf_counter()
        while steps < 2000:
            env.step("click[description]")
            env.step("click[< prev]")
            steps += 2
            if env.turn >= env.max_turns - 2:
                env._turn = 2  # stay inside one episode: only the step cost is measured
        return (time.perf_counter() - t) * 1e6 / steps

    step_us, prompt_us = click_step_us("raw"), click_step_us("prompt")
    rows += [("click step (µs, raw obs)", f"{step_us:.0f}"), ("click step (µs, prompt obs)", f"{prompt_us:.0f}")]

    pys_ms = None
    lucene_build = None
    if not args.no_lucene:
        try:
            from t2po_gym.search.lucene_engine import LuceneUnavailableError, ensure_pyserini

            t = time.perf_counter()
            ensure_pyserini()
            t_imp = time.perf_counter() - t
            t = time.perf_counter()
            lucene = catalog_retriever(cat, "lucene")
            lucene_build = time.perf_counter() - t
            pys_ms = time_queries(lucene.search, queries)
            rows += [("pyserini import (s)", f"{t_imp:.1f}"), ("pyserini index build (s)", f"{lucene_build:.2f}"),
                     ("pyserini query (ms, k=50)", f"{pys_ms:.3f}")]
        except (ImportError, LuceneUnavailableError) as e:
            rows.append(("pyserini", f"unavailable ({e})"))

    width = max(len(k) for k, _ in rows)
    print(f"WebShop benchmark ({'quick' if args.quick else 'full'})")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print(json.dumps({
        "products": n,
        "build_s": round(build_s, 3),
        "catalog_s": round(t_cat, 3),
        "tantivy_index_s": round(t_idx, 3),
        "tantivy_query_ms": round(tq, 4),
        "pyserini_query_ms": None if pys_ms is None else round(pys_ms, 4),
        "pyserini_index_s": None if lucene_build is None else round(lucene_build, 3),
        "scan_query_ms": round(scan_q, 2),
        "step_us": round(step_us, 1),
        "prompt_step_us": round(prompt_us, 1),
        "rss_mb_16_envs": round(rss16, 1),
        "envs_share_index": shared,
    }))


if __name__ == "__main__":
    main()
