"""Nearest-neighbour search with faiss: exact inner product unless an IVF index costs less.

Vectors are L2-normalised, so inner product = cosine similarity. The IVF parameters come from the
data size (nlist ≈ 2·√n, trained on 40 points per list) and nprobe is raised until recall@k on a sample of
queries, measured against exact search, reaches the target; the measured recall is returned with every search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import faiss
import numpy as np

EXACT_LIMIT = 200_000  # base size up to which exact search is used
RECALL_TARGET = 0.995  # tuned on a query sample; the margin keeps recall on all queries ≥ 0.99
TUNING_QUERIES = 2000  # queries searched exactly to tune nprobe
SCAN_CHUNK = 131_072  # base rows converted to float32 at a time by the exact scan
ASSIGN_CHUNK = 65_536
TIE_MARGIN = 8  # extra neighbours an exact scan asks faiss for, then re-scores and cuts to k
# float32 products of unit vectors are off by ~1e-6 and differ with the BLAS's blocking and thread count; a pair this
# close to a threshold is decided in float64, so one process and a cluster's workers find the same pairs
BORDER = 1e-4  # rows assigned to their nearest centroid at a time


@dataclass(frozen=True)
class SearchResult:
    similarities: np.ndarray  # (n_queries, k) float32, best first
    indices: np.ndarray  # (n_queries, k) int64 rows of the base; -1 where fewer than k exist
    method: str
    recall_at_k: float | None  # measured against exact on a query sample (None for exact search)
    nprobe: int | None = None


class Offload(Protocol):
    """Where the heavy, independent parts of a step run when not in this process (a Dask cluster:
    `analysis.distributed.DaskOffload`). Each method returns exactly what the local code computes, in its order,
    so a result does not depend on where it was computed and caches are shared."""

    task_rows: int | None  # `[compute] task_rows`: rows (images, pairs) per task instead of each step's default

    def map(self, function: Callable[..., Any], arguments: Sequence[tuple], what: str) -> list[Any]:
        """`[function(*a) for a in arguments]`, run as tasks."""
        ...

    def pairs_in_clusters(self, threshold: float, clusters: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """`pairs_above` of the embeddings' rows inside each cluster."""
        ...

    def nearest_centroid(self, centroids: faiss.Index, rows: np.ndarray) -> np.ndarray:
        """`nearest_centroid` of these rows of the embeddings."""
        ...

    def nearest_rows(self, queries: np.ndarray, rows: np.ndarray, k: int) -> SearchResult:
        """Exact k nearest of these rows of the embeddings for every query."""
        ...


def nearest_centroid(
    centroids: faiss.Index, vectors: np.ndarray, rows: np.ndarray, chunk: int = ASSIGN_CHUNK
) -> np.ndarray:
    """Label (nearest centroid) of each of `rows` of `vectors`, a chunk at a time (`vectors` may be a float16
    memory map)."""
    labels = np.empty(len(rows), dtype=np.int64)
    for start in range(0, len(rows), chunk):
        labels[start : start + chunk] = centroids.search(as_float32(vectors[rows[start : start + chunk]]), 1)[1][:, 0]
    return labels


def as_float32(matrix: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(matrix, dtype=np.float32)


def ivf_lists(n: int) -> int:
    return int(max(16, min(65536, 2 * np.sqrt(n))))


def exact_is_cheaper(
    n_queries: int, n_base: int, exact_limit: int = EXACT_LIMIT, tuning_queries: int = TUNING_QUERIES
) -> bool:
    """Exact search costs n_queries · n_base; IVF costs n_base · nlist to build plus an exact search of its
    tuning sample, so it only pays off for a small base never, and for a large one beyond that many queries."""
    return n_base <= exact_limit or n_queries <= tuning_queries + ivf_lists(n_base)


def exact_knn(
    queries: np.ndarray, base: np.ndarray, k: int, rows: np.ndarray | None = None, chunk: int = SCAN_CHUNK
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of `base` (or of its `rows`) by inner product, best first (ties: the lower row first),
    as rows of `base`, with similarities re-scored in float64 (`exact_similarities`), so one process, any chunk size
    and a cluster's partitions give the same neighbours and the same values.

    The base is scanned a chunk at a time, so it may be a float16 memory map: memory stays at chunk × d
    floats however large it is, and no float32 copy of the whole base is made.
    """
    query = as_float32(queries)
    total = len(base) if rows is None else len(rows)
    k = min(k, total)
    best_similarities = np.full((len(query), k), -np.inf, dtype=np.float32)
    best_rows = np.full((len(query), k), -1, dtype=np.int64)
    for start in range(0, total, chunk):
        stop = min(start + chunk, total)
        part = np.arange(start, stop) if rows is None else np.asarray(rows[start:stop], dtype=np.int64)
        block = as_float32(base[start:stop] if rows is None else base[part])
        # a few more than k, re-scored exactly, so a row a unit in the last place behind the k-th is not lost
        _, local = faiss.knn(query, block, min(k + TIE_MARGIN, len(part)), metric=faiss.METRIC_INNER_PRODUCT)
        found = np.where(local >= 0, part[np.maximum(local, 0)], -1)
        similarities = exact_similarities(query, block, local)
        best_similarities, best_rows = merge_top_k(best_similarities, best_rows, similarities, found, k)
    return best_similarities, best_rows


def merge_top_k(
    best_similarities: np.ndarray, best_rows: np.ndarray, similarities: np.ndarray, found: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k best of two candidate lists per query, by similarity and, on ties, by the lower row: an order that does
    not depend on how the rows were cut into chunks or partitions (tests/test_distributed.py)."""
    merged_similarities = np.concatenate([best_similarities, similarities], axis=1)
    merged_rows = np.concatenate([best_rows, found], axis=1)
    by_row = np.argsort(np.where(merged_rows < 0, np.iinfo(np.int64).max, merged_rows), axis=1, kind="stable")
    merged_similarities = np.take_along_axis(merged_similarities, by_row, axis=1)
    merged_rows = np.take_along_axis(merged_rows, by_row, axis=1)
    order = np.argsort(-merged_similarities, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(merged_similarities, order, axis=1), np.take_along_axis(merged_rows, order, axis=1)


def exact_similarities(queries: np.ndarray, block: np.ndarray, local: np.ndarray, batch: int = 1024) -> np.ndarray:
    """The inner product of each query with each of its found rows of `block` (`local`, −1 for none: −inf), in
    float64 and rounded once to float32: the same value whatever chunk or partition the row was found in (faiss's
    BLAS products round differently with the block's size, by a unit in the last place)."""
    out = np.full(local.shape, -np.inf, dtype=np.float32)
    for start in range(0, len(local), batch):
        rows = local[start : start + batch]
        valid = rows >= 0
        found = np.asarray(block[np.maximum(rows, 0)], dtype=np.float64)
        values = np.einsum("qd,qkd->qk", np.asarray(queries[start : start + batch], dtype=np.float64), found)
        out[start : start + batch] = np.where(valid, values, -np.inf).astype(np.float32)
    return out


def knn(
    queries: np.ndarray,
    base: np.ndarray,
    k: int = 10,
    *,
    rows: np.ndarray | None = None,
    exact_limit: int = EXACT_LIMIT,
    tuning_queries: int = TUNING_QUERIES,
    recall_target: float = RECALL_TARGET,
    seed: int = 0,
) -> SearchResult:
    """k nearest base rows (or `rows` of the base) of every query by cosine similarity."""
    n_base = len(base) if rows is None else len(rows)
    k = min(k, n_base)
    if exact_is_cheaper(len(queries), n_base, exact_limit, tuning_queries):
        similarities, indices = exact_knn(queries, base, k, rows)
        return SearchResult(similarities, indices, "exact (faiss)", None)
    index, nlist = build_ivf(base, rows=rows, seed=seed)
    nprobe, recall = tune_nprobe(index, queries, base, k, recall_target, seed, tuning_queries, rows=rows)
    index.nprobe = nprobe
    similarities, indices = index.search(as_float32(queries), k)
    return SearchResult(similarities, indices, f"IVF{nlist},SQfp16 nprobe={nprobe}", recall, nprobe)


def build_ivf(base: np.ndarray, rows: np.ndarray | None = None, seed: int = 0) -> tuple[faiss.IndexIVF, int]:
    """IVF (float16 codes) over the base (or its `rows`, kept as the ids the index returns), added in chunks."""
    rows = np.arange(len(base)) if rows is None else np.asarray(rows, dtype=np.int64)
    dim = base.shape[1]
    nlist = ivf_lists(len(rows))
    quantizer = faiss.IndexFlatIP(dim)
    # float16 codes: embeddings are stored as float16, so this loses nothing and halves the index (1M × 512: 1 GB)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )
    index.by_residual = False  # codes are the vectors themselves, so similarities equal exact search's
    rng = np.random.default_rng(seed)
    sample = rows[np.sort(rng.choice(len(rows), size=min(len(rows), 40 * nlist), replace=False))]
    index.cp.seed = seed
    index.train(as_float32(base[sample]))
    for start in range(0, len(rows), SCAN_CHUNK):  # a float32 chunk at a time: the index itself holds float16
        part = rows[start : start + SCAN_CHUNK]
        index.add_with_ids(as_float32(base[part]), part)
    return index, nlist


def tune_nprobe(
    index: faiss.IndexIVF,
    queries: np.ndarray,
    base: np.ndarray,
    k: int,
    target: float,
    seed: int = 0,
    sample_size: int = TUNING_QUERIES,
    rows: np.ndarray | None = None,
) -> tuple[int, float]:
    """Smallest power-of-two nprobe whose recall@k on a query sample reaches `target` (vs exact search), then
    doubled as a safety margin for the queries outside the sample; returns it with its measured sample recall."""
    rng = np.random.default_rng(seed)
    sample = as_float32(queries[rng.choice(len(queries), size=min(sample_size, len(queries)), replace=False)])
    _, truth = exact_knn(sample, base, k, rows)
    nprobe = 1
    while nprobe < index.nlist:
        index.nprobe = nprobe
        _, found = index.search(sample, k)
        if recall_at_k(found, truth) >= target:
            break
        nprobe *= 2
    nprobe = min(nprobe * 2, index.nlist)
    index.nprobe = nprobe
    _, found = index.search(sample, k)
    return nprobe, recall_at_k(found, truth)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true k nearest neighbours that were returned."""
    hits = sum(len(np.intersect1d(f[f >= 0], t[t >= 0])) for f, t in zip(found, truth))
    total = int((truth >= 0).sum())
    return hits / total if total else 1.0


def pairs_above(
    vectors: np.ndarray,
    threshold: float,
    subset: np.ndarray | None = None,
    block: int = 4096,
    *,
    with_similarities: bool = False,
):
    """All pairs (i < j) of `vectors` (or of the rows in `subset`) with cosine similarity ≥ threshold.

    Blocked matrix products keep memory at block × n floats whatever the subset size. Returns an
    (m, 2) int64 array of row indices into `vectors`, and with `with_similarities` also their similarities.
    """
    rows = np.arange(len(vectors)) if subset is None else np.asarray(subset, dtype=np.int64)
    found, similarity_of = [np.zeros((0, 2), dtype=np.int64)], [np.zeros(0, dtype=np.float32)]
    matrix = as_float32(vectors[rows])
    for start in range(0, len(rows), block):
        similarities = matrix[start : start + block] @ matrix[start:].T
        local_i, local_j = np.nonzero(similarities >= threshold - BORDER)
        keep = local_j > local_i
        local_i, local_j = local_i[keep], local_j[keep]
        values = similarities[local_i, local_j]
        accepted = values >= threshold
        near = values < threshold + BORDER
        if near.any():  # decided in float64, one pair at a time: the same verdict with any BLAS or thread count
            exact = np.einsum(
                "ij,ij->i",
                matrix[start + local_i[near]].astype(np.float64),
                matrix[start + local_j[near]].astype(np.float64),
            )
            accepted[near] = exact >= threshold
            values[near] = exact
        found.append(np.stack([rows[start + local_i[accepted]], rows[start + local_j[accepted]]], axis=1))
        similarity_of.append(values[accepted])
    pairs = np.concatenate(found)
    return (pairs, np.concatenate(similarity_of)) if with_similarities else pairs


def exact_pairs_above(vectors: np.ndarray, threshold: float, block: int = 8192) -> np.ndarray:
    """All pairs above the threshold over the whole set with faiss range search (the `--exact` reference)."""
    index = faiss.IndexFlatIP(vectors.shape[1])
    matrix = as_float32(vectors)
    index.add(matrix)
    found = []
    for start in range(0, len(matrix), block):
        limits, similarities, labels = index.range_search(matrix[start : start + block], float(threshold) - 1e-4)
        query = np.repeat(np.arange(start, start + len(limits) - 1), np.diff(limits).astype(np.int64))
        keep = (labels > query) & (similarities >= threshold)
        found.append(np.stack([query[keep], labels[keep]], axis=1))
    return np.concatenate(found).astype(np.int64) if found else np.zeros((0, 2), dtype=np.int64)
