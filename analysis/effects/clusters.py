"""Which visual concepts a filter removed: spherical k-means of the original set's image embeddings, and per
cluster its removal rate with a Clopper–Pearson interval, its lift over the overall rate, a binomial test with
Benjamini–Hochberg q-values over the clusters tested, its characteristic caption words (class-based TF-IDF) and its
most central images.

The same table describes any removal: the safety filters' (`concepts`) and deduplication's (`dedup --json`
`clusters`), so a reviewer compares them on one definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import faiss
import numpy as np

from analysis.captions import DocTermIndex
from analysis.index import Offload, as_float32, nearest_centroid
from analysis.stats import MIN_JUDGEABLE, benjamini_hochberg, binomial_p_value, judgeable, proportion_interval

CENTRAL_IMAGES = 6
TRAIN_PER_CENTROID = 128
TOP_WORDS = 6
MAX_CLUSTERS = 1024
MEAN_CLUSTER_SIZE = 50  # at least: so that most clusters hold the 30 images a rate needs to be judged
SIGNIFICANT_Q = 0.05


def default_concept_clusters(n: int) -> int:
    """K ≈ √(n/2) (a common rule of thumb for k-means), at most n / 50 so that a typical cluster holds enough images
    to judge its rate, and between 2 and 1,024: 3 clusters for 159 photos, 20 for 1,000 images, 707 for a
    million."""
    return int(min(MAX_CLUSTERS, max(2, min(round(np.sqrt(n / 2)), n // MEAN_CLUSTER_SIZE))))


@dataclass(frozen=True)
class ConceptClusters:
    """One clustering of the embedded images: a label per row (-1 without an embedding) and, per cluster, its
    rows ordered from the most central (cosine to the cluster's mean direction)."""

    labels: np.ndarray
    central: list[np.ndarray]
    k: int
    seed: int

    @property
    def n_clusters(self) -> int:
        return len(self.central)


@dataclass(frozen=True)
class ClusterRate:
    cluster: int
    size: int
    removed: int
    removal_rate: float
    ci95: tuple[float, float]
    lift: float | None
    p_value: float | None
    q_value: float | None
    top_words: list[str]
    central_rows: list[int]
    rank: int | None = None  # 1 = highest lift among the judgeable clusters; None: not ranked

    @property
    def judgeable(self) -> bool:
        return judgeable(self.size)

    @property
    def significant(self) -> bool:
        return self.q_value is not None and self.q_value < SIGNIFICANT_Q

    def to_json(self, ids: np.ndarray | None = None) -> dict:
        payload = {
            "cluster": self.cluster,
            "size": self.size,
            "removed": self.removed,
            "removal_rate": self.removal_rate,
            "ci95": list(self.ci95),
            "lift": self.lift,
            "p_value": self.p_value,
            "q_value": self.q_value,
            "judgeable": self.judgeable,
            "rank": self.rank,
            "top_words": self.top_words,
        }
        if ids is not None:
            payload["central_ids"] = [str(ids[row]) for row in self.central_rows]
        return payload


@dataclass(frozen=True)
class ClusterRates:
    """Removal per cluster, judgeable clusters first by lift, then the rest (marked, not ranked)."""

    clusters: list[ClusterRate]
    n_images: int  # embedded images
    n_removed: int
    k: int
    removal: str  # what "removed" means here: "filters" or "dedup"
    n_without_embedding: int = 0
    ids: np.ndarray | None = field(default=None, repr=False)

    @property
    def overall_rate(self) -> float:
        return self.n_removed / self.n_images if self.n_images else 0.0

    @property
    def significant(self) -> list[ClusterRate]:
        return [c for c in self.clusters if c.significant and (c.lift or 0) > 1]

    def to_json(self) -> dict:
        return {
            "removal": self.removal,
            "n_images": self.n_images,
            "n_removed": self.n_removed,
            "overall_rate": self.overall_rate,
            "n_clusters": self.k,
            "n_without_embedding": self.n_without_embedding,
            "ci_method": "Clopper–Pearson 95% interval",
            "test": "two-sided exact binomial test against the overall rate; Benjamini–Hochberg q-values",
            "min_judgeable": MIN_JUDGEABLE,
            "clusters": [c.to_json(self.ids) for c in self.clusters],
        }


def cluster_concepts(
    vectors: np.ndarray,
    valid: np.ndarray,
    k: int,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    chunk: int = 65_536,
    offload: Offload | None = None,
) -> ConceptClusters:
    """Flat spherical k-means of the valid rows (trained on at most `TRAIN_PER_CENTROID` points per centroid, the
    best of `restarts` runs on sets up to 100,000 images), then each cluster's rows from the most central.
    `vectors` may be a float16 memory map: it is read in chunks. `offload`: the assignment on a Dask cluster.

    Flat, not the dedup engine's hierarchical splitting: dedup needs small clusters fast and does not mind where
    a concept is cut; here a cluster should be one concept, and on the sample the flat clustering put the planted
    concept in one cluster at every seed tried where the hierarchical one split it."""
    rows = np.flatnonzero(valid)
    labels = np.full(len(vectors), -1, dtype=np.int64)
    if len(rows) == 0:
        return ConceptClusters(labels, [], k, seed)
    k = min(k, len(rows))
    if progress:
        progress(f"clustering {len(rows):,} images into {k} visual clusters…")
    rng = np.random.default_rng(seed)
    limit = TRAIN_PER_CENTROID * k
    sample = rows if len(rows) <= limit else np.sort(rng.choice(rows, limit, replace=False))
    kmeans = faiss.Kmeans(
        vectors.shape[1],
        k,
        niter=25,
        nredo=3 if len(rows) <= 100_000 else 1,
        spherical=True,
        seed=seed,
        max_points_per_centroid=TRAIN_PER_CENTROID,
        verbose=False,
    )
    kmeans.train(as_float32(vectors[sample]))
    if offload is not None:  # the n · K assignment, the one pass that grows with K, on the cluster
        labels[rows] = offload.nearest_centroid(kmeans.index, rows)
    else:
        labels[rows] = nearest_centroid(kmeans.index, vectors, rows, chunk)
    labels[rows] = np.unique(labels[rows], return_inverse=True)[1]  # no empty cluster numbers
    n_clusters = int(labels.max()) + 1
    sums = np.zeros((n_clusters, vectors.shape[1]), dtype=np.float64)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        np.add.at(sums, labels[part], as_float32(vectors[part]))
    directions = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    closeness = np.zeros(len(vectors), dtype=np.float32)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        closeness[part] = np.einsum("ij,ij->i", as_float32(vectors[part]), directions[labels[part]])
    order = rows[np.lexsort((-closeness[rows], labels[rows]))]
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return ConceptClusters(labels, np.split(order, bounds), k, seed)


def class_tfidf_words(
    index: DocTermIndex, labels: np.ndarray, n_clusters: int, top: int = TOP_WORDS
) -> list[list[str]]:
    """Each cluster's most characteristic caption words by class-based TF-IDF (BERTopic's c-TF-IDF): the captions
    of a cluster form one document; W(t, c) = tf(t, c) · log(1 + A / f(t)), with tf the share of the cluster's
    word occurrences, A the average words per cluster and f(t) the word's count over all clusters. English stop
    words and words in fewer than 2 of the cluster's captions are left out."""
    if n_clusters == 0:
        return []
    pair_labels = labels[index.rows]
    inside = pair_labels >= 0
    from scipy.sparse import coo_matrix  # here, not at the top: the CLI's start-up (bench/cli_startup.py)

    counts = coo_matrix(
        (np.ones(int(inside.sum()), dtype=np.float64), (pair_labels[inside], index.terms[inside])),
        shape=(n_clusters, len(index.vocabulary)),
    ).tocsr()
    counts.sum_duplicates()
    per_word = np.asarray(counts.sum(axis=0)).ravel()
    per_cluster = np.asarray(counts.sum(axis=1)).ravel()
    average = per_cluster.mean() if len(per_cluster) else 0.0
    idf = np.log1p(average / np.maximum(per_word, 1))
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS as stop_words  # lazy: the CLI starts without it

    usable = np.array([len(w) > 1 and not w.isdigit() and w not in stop_words for w in index.vocabulary.tolist()])
    words: list[list[str]] = []
    for cluster in range(n_clusters):
        row = counts.getrow(cluster)
        terms, values = row.indices, row.data
        keep = usable[terms] & (values >= 2)
        terms, values = terms[keep], values[keep]
        scores = values / max(per_cluster[cluster], 1) * idf[terms]
        best = terms[np.argsort(-scores, kind="stable")[:top]]
        words.append([str(index.vocabulary[t]) for t in best])
    return words


def removal_by_cluster(
    clusters: ConceptClusters,
    removed: np.ndarray,
    index: DocTermIndex | None,
    removal: str,
    ids: np.ndarray | None = None,
) -> ClusterRates:
    """The removal table of one clustering for one removal mask (per row of the original set)."""
    labels = clusters.labels
    embedded = labels >= 0
    n_clusters = clusters.n_clusters
    sizes = np.bincount(labels[embedded], minlength=n_clusters)
    gone = np.bincount(labels[embedded & removed], minlength=n_clusters)
    n_images, n_removed = int(embedded.sum()), int((embedded & removed).sum())
    overall = n_removed / n_images if n_images else 0.0
    words = class_tfidf_words(index, labels, n_clusters) if index is not None else [[] for _ in range(n_clusters)]
    p_values = np.array([binomial_p_value(int(gone[c]), int(sizes[c]), overall) for c in range(n_clusters)])
    tested = np.flatnonzero([judgeable(int(s)) for s in sizes])
    q_values = np.full(n_clusters, np.nan)
    q_values[tested] = benjamini_hochberg(p_values[tested])
    rows = []
    for c in range(n_clusters):
        rate = gone[c] / sizes[c] if sizes[c] else 0.0
        rows.append(
            ClusterRate(
                cluster=c,
                size=int(sizes[c]),
                removed=int(gone[c]),
                removal_rate=float(rate),
                ci95=proportion_interval(int(gone[c]), int(sizes[c])),
                lift=float(rate / overall) if overall > 0 else None,
                p_value=float(p_values[c]),
                q_value=None if np.isnan(q_values[c]) else float(q_values[c]),
                top_words=words[c],
                central_rows=clusters.central[c][:CENTRAL_IMAGES].tolist(),
            )
        )
    ranked = sorted((r for r in rows if r.judgeable), key=lambda r: (-(r.lift or 0), -r.size, r.cluster))
    unranked = sorted((r for r in rows if not r.judgeable), key=lambda r: (-(r.lift or 0), -r.size, r.cluster))
    ordered = [_with_rank(r, i + 1) for i, r in enumerate(ranked)] + unranked
    return ClusterRates(ordered, n_images, n_removed, n_clusters, removal, int((~embedded).sum()), ids)


def _with_rank(rate: ClusterRate, rank: int) -> ClusterRate:
    return replace(rate, rank=rank)
