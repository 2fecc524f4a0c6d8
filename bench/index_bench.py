"""Index build and query time at N synthetic 512-d vectors, recall@10 of IVF against exact search (the strongest
simple baseline: faiss flat search; its time is scaled from 1,000 queries, an estimate).

Usage: python bench/index_bench.py N [--queries Q]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from analysis.index import TUNING_QUERIES, build_ivf, exact_knn, recall_at_k, tune_nprobe
from bench.common import emit, planted_embeddings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("--queries", type=int, default=10_000)
    args = parser.parse_args()
    base, _ = planted_embeddings(args.n)
    rng = np.random.default_rng(7)
    # nprobe is tuned on queries of its own and recall measured on the others: tuning on the evaluated queries
    # would report the recall it was tuned to reach.
    rows = rng.choice(args.n, args.queries + TUNING_QUERIES, replace=False)
    everything = base[rows] + rng.normal(0, 0.02, (len(rows), 512)).astype(np.float32)
    everything /= np.linalg.norm(everything, axis=1, keepdims=True)
    queries, tuning = everything[: args.queries], everything[args.queries :]
    start = time.perf_counter()
    index, nlist = build_ivf(base)
    build = time.perf_counter() - start
    start = time.perf_counter()
    nprobe, tuned_recall = tune_nprobe(index, tuning, base, 10, 0.99)
    tune = time.perf_counter() - start
    index.nprobe = nprobe
    start = time.perf_counter()
    _, found = index.search(queries, 10)
    query = time.perf_counter() - start
    check = rng.choice(args.queries, 1000, replace=False)
    start = time.perf_counter()
    _, truth = exact_knn(queries[check], base, 10)
    exact_time = (time.perf_counter() - start) * args.queries / len(check)
    emit(
        {
            "task": "IVF index",
            "n": args.n,
            "queries": args.queries,
            "nlist": nlist,
            "nprobe": nprobe,
            "build_s": round(build, 2),
            "tune_s": round(tune, 2),
            "query_s": round(query, 2),
            "tuning_queries": len(tuning),
            "tuned_recall_at_10": tuned_recall,
            "recall_at_10": recall_at_k(found[check], truth),
            "exact_query_s_estimate": round(exact_time, 2),
        }
    )


if __name__ == "__main__":
    main()
