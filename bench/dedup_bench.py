"""Clustered dedup at N synthetic 512-d embeddings with planted duplicate families.

Reports wall time, peak memory, recall of duplicate pairs against exact search (with --exact, feasible up to a few
hundred thousand), and a baseline: all-kNN dedup with faiss (each image's k nearest neighbours, pairs above the
threshold), which is what FiftyOne/imagededup-style tools effectively do.
--sampled-recall S estimates the same recall where exact all-pairs search is too slow (a million images): all pairs
of S random images with every other image, found by brute force, against the pairs dedup found that touch them.
Usage: python bench/dedup_bench.py N [--exact] [--sampled-recall S] [--threshold T] [--clusterings R] [--baseline]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from analysis.dedup.compute import deduplicate, sampled_recall, unique_pairs
from analysis.index import exact_knn
from bench.common import emit, planted_embeddings


def knn_dedup_pairs(vectors: np.ndarray, threshold: float, k: int = 20) -> np.ndarray:
    """Baseline: the exact k nearest neighbours of every image (faiss flat index), pairs above the threshold."""
    similarities, neighbours = exact_knn(vectors, vectors, k)
    rows = np.repeat(np.arange(len(vectors)), k)
    keep = (similarities.ravel() >= threshold) & (neighbours.ravel() >= 0) & (neighbours.ravel() != rows)
    return unique_pairs(np.stack([rows[keep], neighbours.ravel()[keep]], axis=1), len(vectors))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("--threshold", type=float, default=0.92)
    parser.add_argument("--clusterings", type=int, default=5)
    parser.add_argument("--exact", action="store_true")
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--sampled-recall", type=int, default=0, metavar="S")
    args = parser.parse_args()
    vectors, labels = planted_embeddings(args.n)
    start = time.perf_counter()
    result = deduplicate(vectors, args.threshold, clusterings=args.clusterings, exact=False)
    elapsed = time.perf_counter() - start
    payload = {
        "task": "clustered dedup",
        "n": args.n,
        "threshold": args.threshold,
        "clusters": result.clusters,
        "clusterings": args.clusterings,
        "time_s": round(elapsed, 1),
        "n_pairs": int(len(result.pairs)),
        "n_groups": result.n_groups,
        "fraction_removed": round(result.n_removed / args.n, 4),
        "planted_images": int((labels >= 0).sum()),
        "pairs_per_clustering": result.pairs_per_clustering,
    }
    if args.exact:
        from analysis.index import exact_pairs_above

        start = time.perf_counter()
        truth = unique_pairs(exact_pairs_above(vectors, args.threshold), args.n)
        payload["exact_s"] = round(time.perf_counter() - start, 1)
        payload["exact_pairs"] = int(len(truth))
        codes = truth[:, 0] * np.int64(args.n) + truth[:, 1]
        found = result.pairs[:, 0] * np.int64(args.n) + result.pairs[:, 1]
        payload["recall_vs_exact"] = float(np.isin(codes, found).mean()) if len(codes) else 1.0
        # Recall after r clusterings, rerun cheaply from the same seeds.
        payload["recall_by_clusterings"] = [
            float(
                np.isin(
                    codes,
                    (p := deduplicate(vectors, args.threshold, clusterings=r).pairs)[:, 0] * np.int64(args.n) + p[:, 1],
                ).mean()
            )
            for r in range(1, args.clusterings)
        ] + [payload["recall_vs_exact"]]
    if args.sampled_recall:
        estimate = sampled_recall(vectors, result.pairs, args.threshold, args.sampled_recall)
        payload["sampled_recall"], payload["sampled_true_pairs"] = estimate.recall, estimate.true_pairs
        payload["sampled_images"] = estimate.sampled_images
    if args.baseline:
        start = time.perf_counter()
        baseline = knn_dedup_pairs(vectors, args.threshold)
        payload["baseline_knn_s"] = round(time.perf_counter() - start, 1)
        payload["baseline_knn_pairs"] = int(len(baseline))
        if args.exact:
            codes_b = baseline[:, 0] * np.int64(args.n) + baseline[:, 1]
            payload["baseline_recall_vs_exact"] = float(np.isin(codes, codes_b).mean())
    emit(payload)


if __name__ == "__main__":
    main()
