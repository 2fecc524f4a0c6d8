"""Regurgitation: generated samples checked against their nearest training images.

A sample is flagged as a likely copy when its nearest training image has cosine similarity ≥ the
threshold (DESIGN.md §6). Each flagged pair also gets a pixel-level opinion that does not depend on the
embedder (SSIM of aligned grey thumbnails), and the size of the duplicate group of its nearest training
image (DALL·E 2: copies came from heavily duplicated images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.dedup import DedupResult
from analysis.images import load_image
from analysis.index import knn
from analysis.stats import wilson_interval

# Per-embedder defaults, reasoning in docs/regurgitation.md: a memorised copy sits far above the
# similarity of unrelated images and of light edits.
DEFAULT_THRESHOLDS = {"effnet-lite0": 0.95, "open_clip": 0.95, "precomputed": 0.95}
PIXEL_SIZE = 64


def default_threshold(embedder: str) -> float:
    return next((v for k, v in DEFAULT_THRESHOLDS.items() if embedder.startswith(k)), 0.95)


@dataclass(frozen=True)
class RegurgitationResult:
    samples: pd.DataFrame  # one row per generated sample
    neighbours: pd.DataFrame  # generated id, rank, training id, similarity
    threshold: float
    k: int
    method: str
    recall_at_k: float | None

    @property
    def n_flagged(self) -> int:
        return int(self.samples["flagged"].sum())

    @property
    def rate(self) -> float:
        return self.n_flagged / len(self.samples) if len(self.samples) else 0.0

    def to_json(self, limit: int | None = None) -> dict:
        ordered = self.samples.sort_values("similarity", ascending=False)
        if limit:
            ordered = ordered.head(limit)
        columns = ["id", "best_match", "similarity", "flagged", "group_size", "source_id", "source_similarity",
                   "source_rank", "best_similarity_after_dedup", "ssim"]
        records = ordered[[c for c in columns if c in ordered.columns]].astype(object)
        records = records.where(records.notna(), None).to_dict("records")
        low, high = wilson_interval(self.n_flagged, len(self.samples))
        return {"n_generated": int(len(self.samples)), "n_flagged": self.n_flagged, "rate": self.rate,
                "ci95": [low, high], "ci_method": "Wilson score interval", "threshold": self.threshold,
                "k": self.k, "search": self.method, "recall_at_k": self.recall_at_k, "samples": records}


def check_regurgitation(generated: pd.DataFrame, generated_vectors: np.ndarray, generated_valid: np.ndarray,
                        training: pd.DataFrame, training_vectors: np.ndarray, training_valid: np.ndarray, *,
                        threshold: float, k: int = 5, dedup: DedupResult | None = None,
                        images_root: Path | None = None) -> RegurgitationResult:
    base_rows = np.flatnonzero(training_valid)
    query_rows = np.flatnonzero(generated_valid)
    search = knn(generated_vectors[query_rows], training_vectors[base_rows], k)
    indices = np.where(search.indices >= 0, base_rows[np.maximum(search.indices, 0)], -1)
    training_ids = training["id"].to_numpy()
    samples = pd.DataFrame({"id": generated["id"].to_numpy(), "embedded": generated_valid})
    samples["best_match"] = None
    samples["similarity"] = np.nan
    samples.loc[query_rows, "best_match"] = training_ids[indices[:, 0]]
    samples.loc[query_rows, "similarity"] = search.similarities[:, 0].astype(np.float64)
    samples["flagged"] = samples["similarity"].fillna(-1.0) >= threshold
    neighbours = pd.DataFrame({
        "id": np.repeat(generated["id"].to_numpy()[query_rows], indices.shape[1]),
        "rank": np.tile(np.arange(1, indices.shape[1] + 1), len(query_rows)),
        "training_id": training_ids[indices.ravel()], "similarity": search.similarities.ravel().astype(np.float64)})

    if "source_id" in generated.columns:
        _add_source_columns(samples, generated, generated_vectors, training, training_vectors, query_rows, indices)
    if dedup is not None:
        sizes = np.zeros(len(training), dtype=np.int64) + 1
        in_group = dedup.group_id >= 0
        sizes[in_group] = dedup.group_sizes()[dedup.group_id[in_group]]
        position = pd.Series(np.arange(len(training)), index=training_ids)
        best = samples["best_match"].map(position)
        samples["group_size"] = [int(sizes[int(b)]) if pd.notna(b) else None for b in best]
        kept_rows = np.flatnonzero(dedup.keep & training_valid)
        after = knn(generated_vectors[query_rows], training_vectors[kept_rows], 1)
        samples["best_similarity_after_dedup"] = np.nan
        samples.loc[query_rows, "best_similarity_after_dedup"] = after.similarities[:, 0].astype(np.float64)
    else:
        samples["group_size"] = None
    if images_root is not None:
        samples["ssim"] = np.nan
        image_of = dict(zip(training_ids, training.get("image", pd.Series([""] * len(training))).astype(str)))
        for row in np.flatnonzero(samples["flagged"].to_numpy()):
            samples.loc[row, "ssim"] = pixel_similarity(images_root, str(generated["image"].iloc[row]),
                                                        image_of.get(samples.loc[row, "best_match"], ""))
    return RegurgitationResult(samples, neighbours, threshold, k, search.method, search.recall_at_k)


def _add_source_columns(samples: pd.DataFrame, generated: pd.DataFrame, generated_vectors: np.ndarray,
                        training: pd.DataFrame, training_vectors: np.ndarray, query_rows: np.ndarray,
                        indices: np.ndarray) -> None:
    """Similarity to the training image whose caption was the prompt, and its rank among the k neighbours."""
    position = pd.Series(np.arange(len(training)), index=training["id"].to_numpy())
    source = generated["source_id"].astype("string").fillna("").map(lambda s: position.get(s, -1)).to_numpy()
    samples["source_id"] = generated["source_id"].to_numpy()
    samples["source_similarity"] = np.nan
    samples["source_rank"] = None
    for local, row in enumerate(query_rows):
        if source[row] < 0:
            continue
        samples.loc[row, "source_similarity"] = float(generated_vectors[row] @ training_vectors[source[row]])
        hits = np.flatnonzero(indices[local] == source[row])
        samples.loc[row, "source_rank"] = int(hits[0] + 1) if len(hits) else None


def pixel_similarity(images_root: Path, generated_image: str, training_image: str) -> float | None:
    """SSIM of 64×64 grey thumbnails: a second opinion that does not depend on the embedder."""
    from skimage.metrics import structural_similarity

    first, second = load_image(images_root, generated_image), load_image(images_root, training_image)
    if first.image is None or second.image is None:
        return None
    a = np.asarray(first.image.convert("L").resize((PIXEL_SIZE, PIXEL_SIZE)), dtype=np.float64) / 255
    b = np.asarray(second.image.convert("L").resize((PIXEL_SIZE, PIXEL_SIZE)), dtype=np.float64) / 255
    return float(structural_similarity(a, b, data_range=1.0))
