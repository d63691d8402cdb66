"""Large dense indexes (issue 18): IVF and HNSW at 1M random 384-d vectors, each against
exact search and raw FAISS in the same run.

    .venv/bin/python bench/large_index.py [--n 1000000] [--queries 200] [--kinds ivf,hnsw]
        [--ef-construction 40]

Per kind: build seconds and the process's resident memory after it (beside the raw vectors'
size), recall@10 against an exact ``IndexFlatIP`` over the same vectors, and the query
latency of ``retrieval.dense.DenseIndex.search`` against the same FAISS object called
directly (the wrapper's overhead). Random unit vectors are the hard case for approximate
search (no clusters to exploit): real embeddings score higher recall at the same settings.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_gb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--kinds", default="ivf,hnsw")
    ap.add_argument("--ef-construction", type=int, default=None,
                    help="HNSW efConstruction (default: the index's own, 2 x efSearch = 256)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "large_index.json")
    args = ap.parse_args()
    import faiss

    from retrieval.dense import DenseIndex

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    q = x[rng.choice(args.n, args.queries, replace=False)] + 0.3 * rng.standard_normal(
        (args.queries, args.dim), dtype=np.float32) / np.sqrt(args.dim)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    t = time.perf_counter()
    exact = faiss.IndexFlatIP(args.dim)
    exact.add(x)
    _, truth = exact.search(q, 10)
    exact_s = (time.perf_counter() - t)
    t = time.perf_counter()
    exact.search(q, 10)
    exact_q_ms = (time.perf_counter() - t) * 1000 / args.queries
    result = {"n": args.n, "ef_construction": args.ef_construction, "dim": args.dim, "queries": args.queries,
              "vectors_gb": round(x.nbytes / 2**30, 2),
              "exact": {"query_ms": round(exact_q_ms, 3), "build_and_search_s": round(exact_s, 1)},
              "kinds": {}}
    del exact
    print(f"{args.n} x {args.dim} vectors ({x.nbytes / 2**30:.2f} GiB); exact search "
          f"{exact_q_ms:.2f} ms/query")
    for kind in args.kinds.split(","):
        before = rss_gb()
        t = time.perf_counter()
        idx = DenseIndex.build(x, kind, ef_construction=args.ef_construction)
        build_s = time.perf_counter() - t
        mem = rss_gb() - before
        _, rows = idx.search(q, 10)
        recall = float(np.mean([len(set(r) & set(g)) / 10 for r, g in zip(rows, truth, strict=True)]))
        t = time.perf_counter()
        for row in q:
            idx.search(row, 10)
        wrapped = (time.perf_counter() - t) * 1000 / args.queries
        t = time.perf_counter()
        for row in q:
            idx.index.search(row[None, :], 10)
        raw = (time.perf_counter() - t) * 1000 / args.queries
        result["kinds"][kind] = {"build_s": round(build_s, 1), "added_rss_gb": round(mem, 2),
                                 "recall_at_10": round(recall, 3), "query_ms": round(wrapped, 3),
                                 "raw_faiss_query_ms": round(raw, 3),
                                 "wrapper_vs_raw": round(wrapped / raw, 3),
                                 "vs_exact_query": round(wrapped / exact_q_ms, 3)}
        print(f"{kind:5} build {build_s:7.1f} s  +{mem:5.2f} GiB RSS  recall@10 {recall:.3f}  "
              f"{wrapped:.3f} ms/query (raw FAISS {raw:.3f}: {wrapped / raw:.2f}x; exact "
              f"{exact_q_ms:.2f})")
        del idx
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
