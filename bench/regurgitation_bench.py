"""Regurgitation search: Q generated vs N training embeddings (512-d), time and recall@1 against exact search.

Exact search (faiss, BLAS) is the strongest simple baseline: its time is measured whole where the product runs it,
and scaled from 1,000 queries (an estimate) where the product builds an IVF index instead.

Usage: python bench/regurgitation_bench.py N Q
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from analysis.index import exact_knn, knn
from bench.common import emit, planted_embeddings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("q", type=int)
    args = parser.parse_args()
    training, _ = planted_embeddings(args.n)
    rng = np.random.default_rng(3)
    # Generated samples: 1% near-copies of training images, the rest new points near the same topics.
    queries = training[rng.choice(args.n, args.q, replace=False)].copy()
    novel = rng.random(args.q) > 0.01
    queries[novel] += rng.normal(0, 0.9 / np.sqrt(512), (int(novel.sum()), 512)).astype(np.float32)
    queries[~novel] += rng.normal(0, 0.05 / np.sqrt(512), (int((~novel).sum()), 512)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    start = time.perf_counter()
    result = knn(queries, training, k=5)
    elapsed = time.perf_counter() - start
    check = rng.choice(args.q, min(1000, args.q), replace=False)
    start = time.perf_counter()
    _, truth = exact_knn(queries[check], training, 5)
    exact_s = (time.perf_counter() - start) * args.q / len(check)
    # Exact search checked against itself would score 1.0 by construction: recall is only measured for IVF.
    exact = result.method.startswith("exact")
    recall_at_1 = None if exact else float((result.indices[check, 0] == truth[:, 0]).mean())
    emit(
        {
            "task": "regurgitation search",
            "n": args.n,
            "queries": args.q,
            "method": result.method,
            "time_s": round(elapsed, 1),
            "recall_at_1": recall_at_1,
            "exact_s": round(elapsed, 1) if exact else round(exact_s, 1),
            "exact_estimated": not exact and len(check) < args.q,
            "tuned_recall_at_5": result.recall_at_k,
        }
    )


if __name__ == "__main__":
    main()
