"""Clustered dedup at N synthetic 512-d embeddings with planted duplicate families, against its baselines.

What a user gets from dedup is a removed set and groups, so methods are scored on those against exact all-pairs
search (with --exact, feasible up to a few hundred thousand): the removed images' precision and recall, and the
share of exact groups reproduced member for member. Pair recall is kept as a secondary figure: an all-kNN method
cannot reach it in families larger than k + 1, yet may still form the same groups.
--baseline adds the baseline all-kNN tools (FiftyOne, imagededup) effectively run: each image's k nearest
neighbours, here from an approximate index (faiss IVF, nprobe tuned to recall@k 0.99 on a query sample), and the
pairs above the threshold among them.
--sampled-recall S estimates pair recall where exact all-pairs search is too slow (a million images): all pairs of
S random images with every other image, found by brute force, against the pairs dedup found that touch them.
Usage: python -m bench.dedup_bench N [--exact] [--baseline] [--sampled-recall S] [--threshold T] [--clusterings R]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from analysis.dedup.compute import deduplicate, groups_and_keepers, sampled_recall, unique_pairs
from analysis.index import exact_knn, recall_at_k
from bench.common import emit, planted_embeddings


def approximate_knn_pairs(vectors: np.ndarray, threshold: float, k: int = 20) -> tuple[np.ndarray, str]:
    """Baseline: every image's k nearest neighbours from an IVF-Flat index (float32, nlist = 4·√n), pairs above the
    threshold. nprobe is tuned for what dedup needs, as a careful user would: the smallest power of two that finds
    99% of the above-threshold neighbours among the exact k nearest of 1,000 sample images (recall@k of all
    neighbours would force a near-full scan on this data and make the baseline needlessly slow)."""
    import faiss

    n, dim = vectors.shape
    nlist = max(1, int(4 * np.sqrt(n)))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(11)
    index.train(vectors[rng.choice(n, min(n, 40 * nlist), replace=False)])
    index.add(vectors)
    sample = vectors[rng.choice(n, min(n, 1000), replace=False)]
    true_similarities, truth = exact_knn(sample, vectors, k + 1)
    truth[true_similarities < threshold] = -1
    index.nprobe = 1
    while index.nprobe < nlist:
        if recall_at_k(index.search(sample, k + 1)[1], truth) >= 0.99:
            break
        index.nprobe = min(2 * index.nprobe, nlist)
    similarities, neighbours = index.search(vectors, k + 1)  # k + 1: an image is its own nearest neighbour
    rows = np.repeat(np.arange(n), k + 1)
    keep = (similarities.ravel() >= threshold) & (neighbours.ravel() >= 0) & (neighbours.ravel() != rows)
    pairs = unique_pairs(np.stack([rows[keep], neighbours.ravel()[keep]], axis=1), n)
    return pairs, f"IVF{nlist},Flat nprobe={index.nprobe}"


def pair_codes(pairs: np.ndarray, n: int) -> np.ndarray:
    return pairs[:, 0] * np.int64(n) + pairs[:, 1]


def identical_groups(truth: np.ndarray, found: np.ndarray) -> float:
    """Share of the true groups whose members form exactly one found group, nobody missing and nobody added."""
    in_truth = truth >= 0
    if not in_truth.any():
        return 1.0
    members = pd.DataFrame({"truth": truth[in_truth], "found": found[in_truth]})
    per_group = members.groupby("truth")["found"].agg(["nunique", "first", "size"])
    found_sizes = np.bincount(found[found >= 0]) if (found >= 0).any() else np.zeros(0, dtype=np.int64)
    whole = (per_group["nunique"] == 1) & (per_group["first"] >= 0)
    same_size = np.zeros(len(per_group), dtype=bool)
    same_size[whole.to_numpy()] = found_sizes[per_group["first"][whole].to_numpy()] == per_group["size"][whole]
    return float(same_size.mean())


def scored(name: str, seconds: float, pairs: np.ndarray, vectors: np.ndarray, truth: dict) -> dict:
    """A method's removed set, groups and pairs against exact search's."""
    n = len(vectors)
    group_id, keep = groups_and_keepers(vectors, pairs, "centre", None, None)
    removed, true_removed = ~keep, ~truth["keep"]
    both = int((removed & true_removed).sum())
    return {
        "method": name,
        "time_s": round(seconds, 1),
        "pairs": int(len(pairs)),
        "groups": int(group_id.max() + 1),
        "removed": int(removed.sum()),
        "removed_precision": both / max(int(removed.sum()), 1),
        "removed_recall": both / max(int(true_removed.sum()), 1),
        "groups_identical": identical_groups(truth["group_id"], group_id),
        "pair_recall": float(np.isin(truth["codes"], pair_codes(pairs, n)).mean()) if len(truth["codes"]) else 1.0,
    }


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
    methods = []
    if args.baseline:
        start = time.perf_counter()
        baseline_pairs, index = approximate_knn_pairs(vectors, args.threshold)
        methods.append((f"all-kNN, k = 20 ({index})", time.perf_counter() - start, baseline_pairs))
    methods.append((f"clustered (K = {result.clusters}, R = {args.clusterings})", elapsed, result.pairs))
    if args.exact:
        from analysis.index import exact_pairs_above

        start = time.perf_counter()
        exact = unique_pairs(exact_pairs_above(vectors, args.threshold), args.n)
        exact_s = time.perf_counter() - start
        group_id, keep = groups_and_keepers(vectors, exact, "centre", None, None)
        truth = {"codes": pair_codes(exact, args.n), "group_id": group_id, "keep": keep}
        payload["exact_s"], payload["exact_pairs"] = round(exact_s, 1), int(len(exact))
        payload["recall_vs_exact"] = float(np.isin(truth["codes"], pair_codes(result.pairs, args.n)).mean())
        # Recall after r clusterings, rerun cheaply from the same seeds.
        payload["recall_by_clusterings"] = [
            float(
                np.isin(
                    truth["codes"], pair_codes(deduplicate(vectors, args.threshold, clusterings=r).pairs, args.n)
                ).mean()
            )
            for r in range(1, args.clusterings)
        ] + [payload["recall_vs_exact"]]
        payload["methods"] = [scored(name, s, pairs, vectors, truth) for name, s, pairs in methods]
        payload["methods"].append(scored("exact all pairs (reference)", exact_s, exact, vectors, truth))
    if args.sampled_recall:
        estimate = sampled_recall(vectors, result.pairs, args.threshold, args.sampled_recall)
        payload["sampled_recall"], payload["sampled_true_pairs"] = estimate.recall, estimate.true_pairs
        payload["sampled_images"] = estimate.sampled_images
    emit(payload)


if __name__ == "__main__":
    main()
