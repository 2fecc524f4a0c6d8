"""The dataset as a 2-D map: UMAP (umap-learn) of the image embeddings, computed on at most `LANDMARKS` images and
extended to the rest by placing each image at the similarity-weighted mean of its nearest landmarks.

UMAP's cost grows faster than linearly and runs on one core with a fixed seed (10,000 points: about half a minute
here), so a million points would take hours; the landmark extension is one faiss k-NN search (minutes at a
million), and `bench/map_projection.py` measures on real photos that it keeps the neighbourhoods as well as UMAP
of every point does (trustworthiness, and how often a photo's nearest neighbour on the map shares its COCO
category).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np

from analysis.index import as_float32

LANDMARKS = 10_000
NEIGHBOURS = 15  # UMAP's n_neighbors (its default)
PLACED_BY = 8  # landmarks that place each other image
REDUCED_DIM = 64  # PCA before k-NN and UMAP: cheaper, and what UMAP's docs advise for high-dimensional inputs


@dataclass(frozen=True)
class MapProjection:
    xy: np.ndarray  # (n_rows, 2) float32; NaN for rows without an embedding
    landmarks: np.ndarray  # rows UMAP ran on
    method: str

    def place(self, vectors: np.ndarray, source: np.ndarray, chunk: int = 65_536) -> np.ndarray:
        """Positions on this map of other vectors (generated samples), placed like non-landmark images, using the
        landmark vectors `source` (the original set's embeddings)."""
        landmark_vectors = as_float32(source[self.landmarks])
        return _place(vectors, landmark_vectors, self.xy[self.landmarks], chunk)


def _pca(sample: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    mean = sample.mean(axis=0)
    _, _, vt = np.linalg.svd(sample - mean, full_matrices=False)
    return mean, vt[:dim].T


def _place(vectors: np.ndarray, landmark_vectors: np.ndarray, landmark_xy: np.ndarray, chunk: int) -> np.ndarray:
    index = faiss.IndexFlatIP(landmark_vectors.shape[1])
    index.add(np.ascontiguousarray(landmark_vectors))
    out = np.empty((len(vectors), 2), dtype=np.float32)
    k = min(PLACED_BY, len(landmark_vectors))
    for start in range(0, len(vectors), chunk):
        block = as_float32(vectors[start : start + chunk])
        similarity, nearest = index.search(np.ascontiguousarray(block), k)
        weight = np.exp((similarity - similarity[:, :1]) * 20.0)  # the nearest landmarks weigh most
        weight /= weight.sum(axis=1, keepdims=True)
        out[start : start + len(block)] = np.einsum("ij,ijk->ik", weight, landmark_xy[nearest])
    return out


def project(
    vectors: np.ndarray,
    valid: np.ndarray,
    seed: int = 0,
    landmarks: int = LANDMARKS,
    progress: Callable[[str], None] | None = None,
    chunk: int = 65_536,
) -> MapProjection:
    """2-D coordinates for every valid row of `vectors` (unit vectors; a float16 memory map is read in chunks)."""
    rows = np.flatnonzero(valid)
    xy = np.full((len(vectors), 2), np.nan, dtype=np.float32)
    if len(rows) < 3:
        return MapProjection(xy, rows, "too few images to draw a map")
    rng = np.random.default_rng(seed)
    chosen = rows if len(rows) <= landmarks else np.sort(rng.choice(rows, landmarks, replace=False))
    sample = as_float32(vectors[chosen])
    if progress:
        progress(f"UMAP of {len(chosen):,} images…")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that a fixed seed turns off its threads: that is the point
        import umap

        reduced = sample
        if sample.shape[1] > REDUCED_DIM and len(sample) > REDUCED_DIM:
            mean, basis = _pca(sample, REDUCED_DIM)
            reduced = (sample - mean) @ basis
        n_neighbors = max(2, min(NEIGHBOURS, len(chosen) - 1))
        reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, metric="cosine", random_state=seed)
        xy[chosen] = reducer.fit_transform(reduced).astype(np.float32)
    method = f"UMAP (umap-learn {umap.__version__}, cosine, {n_neighbors} neighbours, seed {seed})"
    others = np.setdiff1d(rows, chosen, assume_unique=True)
    if len(others):
        if progress:
            progress(f"placing the other {len(others):,} images by their {PLACED_BY} nearest landmarks…")
        for start in range(0, len(others), chunk):
            part = others[start : start + chunk]
            xy[part] = _place(vectors[part], sample, xy[chosen], chunk)
        method += f" of {len(chosen):,} landmark images; the others placed at the mean of their {PLACED_BY} nearest"
    return MapProjection(xy, chosen, method)


def rows_in_region(xy: np.ndarray, xs: list[float], ys: list[float]) -> np.ndarray:
    """Rows whose map position lies inside the polygon (xs, ys) — a lasso — or, with two corners, the box they
    span (even–odd rule; rows without a position are never inside)."""
    x, y = xy[:, 0], xy[:, 1]
    finite = np.isfinite(x) & np.isfinite(y)
    if len(xs) == 2:
        inside = (x >= min(xs)) & (x <= max(xs)) & (y >= min(ys)) & (y <= max(ys))
        return np.flatnonzero(inside & finite)
    inside = np.zeros(len(xy), dtype=bool)
    px, py = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    for i in range(len(px)):
        x0, y0, x1, y1 = px[i - 1], py[i - 1], px[i], py[i]
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < at)
    return np.flatnonzero(inside & finite)
