"""Near-duplicate clusters, the DALL·E 2 way: spherical k-means on the embeddings, duplicate pairs
searched only inside each cluster, the union over R independent clusterings, then connected components.

Definitions (DESIGN.md §6): a duplicate pair is two images with cosine similarity ≥ the threshold; a
duplicate group is a connected component of pairs; deduplication keeps one image per group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

import faiss
import numpy as np
import pandas as pd

from analysis.copies.candidates import CandidateCheck
from analysis.copies.duplicate_groups import DuplicateGroups
from analysis.embedders.base import default_for_embedder
from analysis.index import Offload, as_float32, exact_pairs_above, nearest_centroid, pairs_above
from analysis.stats import clustered_ratio_interval, judgeable

KeepRule = Literal["centre", "first", "resolution"]
KEEP_RULES: tuple[KeepRule, ...] = get_args(KeepRule)
DEFAULT_KEEP_RULE: KeepRule = "centre"  # the image closest to its group's centre
KEEP_RULE_WORDS: dict[KeepRule, str] = {
    "centre": "closest to the group centre",
    "first": "first in the manifest",
    "resolution": "largest image",
}
DEFAULT_R = 5  # clusterings, as in DALL·E 2
CURVE_LOW = 0.80  # lowest threshold of the removal curve and of the dashboard's slider
# Cosine thresholds per embedder, with the reasoning in docs/analyses.md (Near-duplicates).
DEFAULT_THRESHOLDS = {"effnet-lite0": 0.90, "open_clip": 0.95, "precomputed": 0.95}


def default_threshold(embedder: str) -> float:
    return default_for_embedder(DEFAULT_THRESHOLDS, embedder)


OFFLOAD_ASSIGNMENT_ROWS = 262_144  # splits this large are assigned on the cluster; smaller ones cost less here
CLUSTER_SIZE = 1000  # target images per cluster: in-cluster search costs n · CLUSTER_SIZE · d
BRANCHING = 32  # k-means splits each oversized cluster into at most this many parts


def default_clusters(n: int) -> int:
    """K ≈ n / 1,000: a fixed cluster size keeps the in-cluster search linear in n (1,000 clusters at a million)."""
    return int(max(1, round(n / CLUSTER_SIZE)))


@dataclass(frozen=True)
class DedupResult:
    n_images: int
    pairs: np.ndarray  # (m, 2) row indices, i < j, unique
    group_id: np.ndarray  # per row; -1 for rows in no group
    keep: np.ndarray  # per row bool
    threshold: float
    clusters: int
    clusterings: int
    pairs_per_clustering: list[int] = field(default_factory=list)  # cumulative unique pairs after r clusterings
    exact_pairs: int | None = None
    recall_by_clusterings: list[float] | None = None
    similarities: np.ndarray | None = None  # cosine similarity of each pair (float32), as the search computed it
    verification: CandidateCheck | None = None  # with pixel verification: every candidate and its inliers

    @property
    def n_groups(self) -> int:
        return int(self.group_id.max() + 1) if (self.group_id >= 0).any() else 0

    @property
    def n_in_groups(self) -> int:
        return int((self.group_id >= 0).sum())

    @property
    def n_removed(self) -> int:
        return int((~self.keep).sum())

    @property
    def recall_vs_exact(self) -> float | None:
        return self.recall_by_clusterings[-1] if self.recall_by_clusterings else None

    def group_sizes(self) -> np.ndarray:
        return np.bincount(self.group_id[self.group_id >= 0]) if self.n_groups else np.zeros(0, dtype=np.int64)

    def duplicate_groups(self) -> DuplicateGroups:
        return DuplicateGroups(self.group_id, self.keep)

    def to_json(self) -> dict:
        return {
            "n_images": self.n_images,
            "n_pairs": int(len(self.pairs)),
            "n_groups": self.n_groups,
            "n_in_groups": self.n_in_groups,
            "n_removed": self.n_removed,
            "fraction_removed": self.n_removed / self.n_images if self.n_images else 0.0,
            "threshold": self.threshold,
            "clusters": self.clusters,
            "clusterings": self.clusterings,
            "recall_vs_exact": self.recall_vs_exact,
            "exact_pairs": self.exact_pairs,
            "recall_by_clusterings": self.recall_by_clusterings,
            "largest_groups": sorted(self.group_sizes().tolist(), reverse=True)[:10],
            "verification": None if self.verification is None else self.verification.to_json(),
        }


def cluster_assignments(
    vectors: np.ndarray,
    clusters: int,
    seed: int,
    niter: int = 20,
    branching: int = BRANCHING,
    rows: np.ndarray | None = None,
    offload: Offload | None = None,
) -> np.ndarray:
    """Hierarchical spherical k-means of `rows` (default: all) into about `clusters` clusters of ≤ 2·n/clusters
    images each; returns one label per row of `rows`.

    A flat K-means assigns every vector to every centroid (n · K, quadratic when K grows with n); splitting
    oversized clusters with k ≤ `branching` costs n · branching per level, and the levels grow as log n.
    A cluster k-means cannot split (identical vectors) stays whole. `vectors` may be a float16 memory map:
    only a k-means sample and one chunk at a time are converted to float32.
    """
    rows = np.arange(len(vectors)) if rows is None else np.asarray(rows, dtype=np.int64)
    labels = np.zeros(len(rows), dtype=np.int64)
    target = max(1, int(np.ceil(len(rows) / max(1, clusters))))
    pending, next_label = [np.arange(len(rows))], 0
    while pending:
        members = pending.pop()
        parts = min(branching, int(np.ceil(len(members) / target)))
        split = (
            _kmeans_split(
                vectors, rows[members], parts, seed + next_label, niter, _worth_sending(offload, members, rows)
            )
            if len(members) > 2 * target
            else None
        )
        if split is None or split.max() == split.min():
            labels[members] = next_label
            next_label += 1
            continue
        order = np.argsort(split, kind="stable")
        pending.extend(np.split(members[order], np.flatnonzero(np.diff(split[order])) + 1))
    return labels


def _worth_sending(offload: Offload | None, members: np.ndarray, rows: np.ndarray) -> Offload | None:
    """The offload for a split of every row (the top of the tree, the n · branching pass) or of a large part."""
    return offload if len(members) == len(rows) or len(members) >= OFFLOAD_ASSIGNMENT_ROWS else None


def _kmeans_split(
    vectors: np.ndarray, members: np.ndarray, parts: int, seed: int, niter: int, offload: Offload | None = None
) -> np.ndarray:
    """Part (0..parts-1) of each member row: k-means trained on ≤ 64 points per centroid, members assigned in
    chunks (by `offload` when given)."""
    rng = np.random.default_rng(seed)
    sample = members if len(members) <= 64 * parts else np.sort(rng.choice(members, 64 * parts, replace=False))
    kmeans = faiss.Kmeans(
        vectors.shape[1],
        parts,
        niter=niter,
        spherical=True,
        seed=seed,
        min_points_per_centroid=1,
        max_points_per_centroid=64,
        verbose=False,
    )  # small parts are expected deep in the tree
    kmeans.train(as_float32(vectors[sample]))
    if offload is not None:
        return offload.nearest_centroid(kmeans.index, members)
    return nearest_centroid(kmeans.index, vectors, members)


def clustered_pairs(
    vectors: np.ndarray,
    threshold: float,
    clusters: int,
    seed: int,
    rows: np.ndarray | None = None,
    offload: Offload | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (rows of `vectors`) above the threshold that fall inside the same cluster of one clustering, with
    their similarities. `offload` runs the assignment and the in-cluster searches elsewhere (a Dask cluster:
    `analysis.distributed`); it returns what the local code would, in its order, so the result is the same."""
    rows = np.arange(len(vectors)) if rows is None else np.asarray(rows, dtype=np.int64)
    assignment = cluster_assignments(vectors, clusters, seed, rows=rows, offload=offload)
    order = np.argsort(assignment, kind="stable")
    bounds = np.flatnonzero(np.diff(assignment[order])) + 1
    members_of = [rows[members] for members in np.split(order, bounds) if len(members) > 1]
    if offload is not None:
        found = offload.pairs_in_clusters(threshold, members_of)
    else:
        found = [pairs_above(vectors, threshold, members, with_similarities=True) for members in members_of]
    if not found:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    return np.concatenate([p for p, _ in found]), np.concatenate([s for _, s in found])


def unique_pairs(pairs: np.ndarray, n: int, similarities: np.ndarray | None = None):
    """Distinct pairs as (low, high) rows, sorted; with `similarities`, also the similarity of each kept pair."""
    codes = np.minimum(pairs[:, 0], pairs[:, 1]) * np.int64(n) + np.maximum(pairs[:, 0], pairs[:, 1])
    order = np.argsort(codes, kind="stable")
    first = np.ones(len(order), dtype=bool)
    np.not_equal(codes[order[1:]], codes[order[:-1]], out=first[1:])
    order = order[first]
    unique = np.stack([codes[order] // n, codes[order] % n], axis=1).reshape(-1, 2)
    return unique if similarities is None else (unique, similarities[order])


def groups_from_pairs(pairs: np.ndarray, n: int) -> np.ndarray:
    """Connected components of the pair graph (scipy's union-find equivalent); -1 for singletons."""
    if len(pairs) == 0:
        return np.full(n, -1, dtype=np.int64)
    from scipy.sparse import coo_matrix  # here, not at the top: every CLI command imports this module
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    in_group = sizes[labels] > 1
    # Renumber groups 0..G-1, largest first (ties by first member), so group ids are stable and meaningful.
    group_labels = np.unique(labels[in_group])
    first_member = np.full(labels.max() + 1, n)
    np.minimum.at(first_member, labels, np.arange(n))
    order = sorted(group_labels, key=lambda g: (-sizes[g], first_member[g]))
    renumber = np.full(labels.max() + 1, -1, dtype=np.int64)
    renumber[np.array(order, dtype=np.int64)] = np.arange(len(order))
    return renumber[labels]


def choose_keepers(
    vectors: np.ndarray, group_id: np.ndarray, rule: KeepRule = DEFAULT_KEEP_RULE, resolution: np.ndarray | None = None
) -> np.ndarray:
    """One image kept per group: closest to the group's mean embedding (default), first seen, or largest."""
    keep = group_id < 0
    members_of = pd.Series(np.arange(len(group_id))[~keep]).groupby(group_id[~keep])
    for _, members in members_of:
        rows = members.to_numpy()
        if rule == "first":
            chosen = rows.min()
        elif rule == "resolution":
            if resolution is None:
                raise ValueError("the resolution rule needs image sizes (width and height columns)")
            chosen = rows[np.argmax(resolution[rows])]
        else:
            members = as_float32(vectors[rows])
            chosen = rows[np.argmax(members @ members.mean(axis=0))]
        keep[chosen] = True
    return keep


def deduplicate(
    vectors: np.ndarray,
    threshold: float,
    *,
    clusters: int | None = None,
    clusterings: int = DEFAULT_R,
    exact: bool = False,
    keep_rule: KeepRule = DEFAULT_KEEP_RULE,
    resolution: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    seed: int = 0,
    progress=None,
    offload: Offload | None = None,
) -> DedupResult:
    """Find duplicate groups by clustered search (union of `clusterings` k-means runs).

    `vectors` may be the float16 memory map of the embeddings: every step reads the rows it needs and converts
    them to float32 a block at a time, so a million 512-d embeddings never need a 2 GB float32 copy.
    """
    n = len(vectors)
    rows = np.arange(n) if valid is None else np.flatnonzero(valid)
    clusters = clusters or default_clusters(len(rows))
    union, union_similarities = np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    cumulative, snapshots = [], []
    for r in range(clusterings):
        found, similarities = clustered_pairs(vectors, threshold, clusters, seed + r, rows, offload)
        union, union_similarities = unique_pairs(
            np.concatenate([union, found]), n, np.concatenate([union_similarities, similarities])
        )
        del found, similarities
        cumulative.append(int(len(union)))
        if exact:  # recall after each clustering needs each union; otherwise they would only cost memory
            snapshots.append(union)
        if progress:
            progress(r + 1, clusterings, len(union))
    exact_count = recall = None
    if exact:
        truth = unique_pairs(rows[exact_pairs_above(as_float32(vectors[rows]), threshold)], n)
        exact_count = int(len(truth))
        truth_codes = truth[:, 0] * np.int64(n) + truth[:, 1]
        recall = [
            float(np.isin(truth_codes, s[:, 0] * np.int64(n) + s[:, 1]).mean()) if exact_count else 1.0
            for s in snapshots
        ]
    group_id, keep = groups_and_keepers(vectors, union, keep_rule, resolution, valid)
    return DedupResult(
        n, union, group_id, keep, threshold, clusters, clusterings, cumulative, exact_count, recall, union_similarities
    )


def groups_and_keepers(
    vectors: np.ndarray, pairs: np.ndarray, keep_rule: KeepRule, resolution: np.ndarray | None, valid: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Groups of the pair graph and the image kept per group; rows without an embedding are not judged: they stay."""
    group_id = groups_from_pairs(pairs, len(vectors))
    keep = choose_keepers(vectors, group_id, keep_rule, resolution)
    return group_id, keep if valid is None else keep | ~valid


def at_higher_threshold(
    base: DedupResult,
    vectors: np.ndarray,
    threshold: float,
    *,
    keep_rule: KeepRule = DEFAULT_KEEP_RULE,
    resolution: np.ndarray | None = None,
    valid: np.ndarray | None = None,
) -> DedupResult:
    """The result `deduplicate` gives at `threshold` ≥ base.threshold, from the base's pairs alone (seconds, not
    a new search). Exact because the clusterings do not depend on the threshold: the pairs found at a higher
    threshold are the base's pairs whose similarity reaches it."""
    if threshold < base.threshold:
        raise ValueError(f"cannot derive threshold {threshold} from pairs found at {base.threshold}")
    similarities = base.similarities if base.similarities is not None else pair_similarities(vectors, base.pairs)
    reaching = similarities >= threshold
    pairs = base.pairs[reaching]
    group_id, keep = groups_and_keepers(vectors, pairs, keep_rule, resolution, valid)
    return DedupResult(
        base.n_images,
        pairs,
        group_id,
        keep,
        threshold,
        base.clusters,
        base.clusterings,
        similarities=similarities[reaching],
    )


@dataclass(frozen=True)
class RecallEstimate:
    """Recall of the clustered search over the duplicate pairs that touch a random sample of images.

    `per_image` holds, for each sampled image with at least one true pair, its true pairs and how many of them the
    clustered search found: the interval resamples images, not pairs, because the pairs around one image are
    found or missed together (`analysis.stats.clustered_ratio_interval`)."""

    recall: float
    true_pairs: int  # pairs above the threshold touching the sample, found by brute force
    sampled_images: int
    seed: int
    per_image: tuple[tuple[int, int], ...] = ()  # (true pairs, found pairs) of each sampled image with pairs

    @property
    def images_with_pairs(self) -> int:
        return len(self.per_image)

    @property
    def judgeable(self) -> bool:
        return judgeable(self.images_with_pairs)

    def interval(self) -> tuple[float, float]:
        if not self.per_image:
            return (0.0, 1.0)
        counts = np.array(self.per_image, dtype=np.int64)
        return clustered_ratio_interval(counts[:, 1], counts[:, 0], seed=self.seed)

    def to_json(self) -> dict:
        low, high = self.interval()
        return {
            "recall": self.recall,
            "ci95": [low, high],
            "ci_method": "percentile bootstrap over sampled images (widened to Clopper–Pearson over images below "
            "30 images with pairs)",
            "judgeable": self.judgeable,
            "true_pairs": self.true_pairs,
            "sampled_images": self.sampled_images,
            "images_with_pairs": self.images_with_pairs,
            "seed": self.seed,
        }


def sampled_recall(
    vectors: np.ndarray,
    pairs: np.ndarray,
    threshold: float,
    sample: int = 1000,
    *,
    valid: np.ndarray | None = None,
    seed: int = 0,
    chunk: int = 65_536,
) -> RecallEstimate:
    """Estimate recall against exact search where exact all-pairs search is too slow (hours at a million images).

    Every pair above the threshold that touches one of `sample` random images is found by brute force (a scan
    of sample × n similarities, chunk by chunk, so `vectors` may be a float16 memory map) and looked up among
    `pairs`. Each true pair is drawn with about the same probability, so this estimates the recall over all pairs.
    """
    n = len(vectors)
    candidates = np.arange(n) if valid is None else np.flatnonzero(valid)
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(candidates, size=min(sample, len(candidates)), replace=False))
    queries = np.asarray(vectors[rows], dtype=np.float32)
    found_pairs = []
    for start in range(0, n, chunk):
        block = np.asarray(vectors[start : start + chunk], dtype=np.float32)
        query, other = np.nonzero(queries @ block.T >= threshold)
        found_pairs.append(np.stack([rows[query], start + other], axis=1))
    around = np.concatenate(found_pairs) if found_pairs else np.zeros((0, 2), dtype=np.int64)
    around = around[around[:, 0] != around[:, 1]]  # (sampled image, other image): each true pair of each image
    known = unique_pairs(pairs, n) if len(pairs) else np.zeros((0, 2), dtype=np.int64)
    known_keys = known[:, 0] * np.int64(n) + known[:, 1]
    ordered = np.sort(around, axis=1)
    hit = np.isin(ordered[:, 0] * np.int64(n) + ordered[:, 1], known_keys)
    truth = unique_pairs(around, n)
    found = np.isin(truth[:, 0] * np.int64(n) + truth[:, 1], known_keys)
    images, position = np.unique(around[:, 0], return_inverse=True)
    true_per_image = np.bincount(position, minlength=len(images))
    found_per_image = np.bincount(position, weights=hit, minlength=len(images)).astype(np.int64)
    return RecallEstimate(
        float(found.mean()) if len(truth) else 1.0,
        int(len(truth)),
        int(len(rows)),
        seed,
        tuple(zip(true_per_image.tolist(), found_per_image.tolist())),
    )


def exact_duplicates(digests: pd.Series) -> pd.Series:
    """Group id (by file content hash) for byte-identical files; -1 for unique or unreadable files."""
    present = digests.fillna("") != ""
    counts = digests[present].map(digests[present].value_counts())
    duplicated = pd.Series(False, index=digests.index)
    duplicated[present] = counts > 1
    codes = pd.Series(-1, index=digests.index, dtype=np.int64)
    codes[duplicated] = pd.factorize(digests[duplicated])[0]
    return codes


def byte_identical_pairs(digests: pd.Series) -> np.ndarray:
    """(m, 2) row pairs of byte-identical files (each member joined to its group's first): duplicates with no
    pixels left to verify, which a flat image's few keypoints must not be able to hide."""
    codes = exact_duplicates(digests).to_numpy()
    rows = np.flatnonzero(codes >= 0)
    if not len(rows):
        return np.zeros((0, 2), dtype=np.int64)
    order = rows[np.argsort(codes[rows], kind="stable")]
    sorted_codes = codes[order]
    first = order[np.searchsorted(sorted_codes, sorted_codes, side="left")]
    pairs = np.stack([first, order], axis=1)
    return pairs[pairs[:, 0] != pairs[:, 1]].astype(np.int64)


def pair_similarities(vectors: np.ndarray, pairs: np.ndarray, chunk: int = 200_000) -> np.ndarray:
    """Cosine similarity of each pair, in chunks (10M pairs × 512 dims would be 20 GB in one go)."""
    out = np.zeros(len(pairs), dtype=np.float32)
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        out[start : start + chunk] = np.einsum(
            "ij,ij->i", as_float32(vectors[part[:, 0]]), as_float32(vectors[part[:, 1]])
        )
    return out


def removal_curve(
    vectors: np.ndarray, pairs: np.ndarray, thresholds: np.ndarray, similarities: np.ndarray | None = None
) -> pd.DataFrame:
    """Fraction of images dedup would remove at each threshold, from pairs found at the lowest one.

    Valid because the clusterings do not depend on the threshold: the pairs found at a higher threshold
    are exactly those found at the lowest one whose similarity reaches it.
    """
    similarities = pair_similarities(vectors, pairs) if similarities is None else similarities
    n = len(vectors)
    rows = []
    for threshold in thresholds:
        kept_pairs = pairs[similarities >= threshold]
        groups = groups_from_pairs(kept_pairs, n)
        n_groups = int(groups.max() + 1) if (groups >= 0).any() else 0
        in_groups = int((groups >= 0).sum())
        rows.append(
            {
                "threshold": float(threshold),
                "n_pairs": int(len(kept_pairs)),
                "n_groups": n_groups,
                "n_in_groups": in_groups,
                "fraction_removed": (in_groups - n_groups) / n if n else 0.0,
            }
        )
    return pd.DataFrame(rows)
