"""Regurgitation: generated samples checked against their nearest training images.

A sample is flagged as a likely copy when its nearest training image has cosine similarity ≥ the
threshold (DESIGN.md §6). Each flagged pair also gets a pixel-level opinion that does not depend on the
embedder (SSIM of aligned grey thumbnails), and the size of the duplicate group of its nearest training
image (DALL·E 2: copies came from heavily duplicated images).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.copies.candidates import MIN_COVERAGE, is_verified
from analysis.copies.local_features import Features
from analysis.copies.tiers import GROUPED_TIERS, TIERS
from analysis.images import load_image
from analysis.index import Offload, knn
from analysis.stats import PROPORTION_METHOD, judgeable, proportion_interval

PIXEL_SIZE = 64


@dataclass(frozen=True)
class RegurgitationResult:
    samples: pd.DataFrame  # one row per generated sample
    neighbours: pd.DataFrame  # generated id, rank, training id, similarity
    threshold: float
    k: int
    method: str
    recall_at_k: float | None
    verification: dict | None = None  # candidates and inlier threshold when flags were verified on pixels
    n_training_unreadable: int = 0  # training images that could not be embedded: copies of them go unseen

    @property
    def n_flagged(self) -> int:
        return int(self.samples["flagged"].sum())

    @property
    def n_measured(self) -> int:
        """Samples that could be read and searched: the denominator of every rate (an unreadable sample is
        not a sample that was checked and found clean)."""
        return int(self.samples["embedded"].sum())

    @property
    def n_unreadable(self) -> int:
        return len(self.samples) - self.n_measured

    @property
    def rate(self) -> float | None:
        return self.n_flagged / self.n_measured if self.n_measured else None

    @property
    def judgeable(self) -> bool:
        return judgeable(self.n_measured)

    def interval(self) -> tuple[float, float]:
        return proportion_interval(self.n_flagged, self.n_measured)

    def unmeasured(self) -> str:
        """What could not be checked, in words ("" when everything was)."""
        parts = []
        if self.n_unreadable:
            parts.append(f"{self.n_unreadable:,} of {len(self.samples):,} generated samples could not be read")
        if self.n_training_unreadable:
            parts.append(f"{self.n_training_unreadable:,} training images could not be read (copies of them go unseen)")
        return "; ".join(parts)

    def to_json(self, limit: int | None = None) -> dict:
        ordered = self.samples.sort_values("similarity", ascending=False)
        if limit:
            ordered = ordered.head(limit)
        columns = [
            "id",
            "best_match",
            "similarity",
            "flagged",
            "group_size",
            "source_id",
            "source_similarity",
            "source_rank",
            "best_similarity_after_dedup",
            "ssim",
            "ssim_aligned",
            "inliers",
            "mirrored",
            "tier",
            "tier_match",
        ]
        records = ordered[[c for c in columns if c in ordered.columns]].astype(object)
        records = records.where(records.notna(), None).to_dict("records")
        low, high = self.interval()
        return {
            "n_generated": int(len(self.samples)),
            "n_measured": self.n_measured,
            "n_unreadable": self.n_unreadable,
            "n_training_unreadable": self.n_training_unreadable,
            "n_flagged": self.n_flagged,
            "rate": self.rate,
            "ci95": [low, high],
            "ci_method": PROPORTION_METHOD,
            "judgeable": self.judgeable,
            "threshold": self.threshold,
            "k": self.k,
            "search": self.method,
            "recall_at_k": self.recall_at_k,
            "verification": self.verification,
            "samples": records,
        }


def nearest_training(
    generated_ids: np.ndarray,
    generated_vectors: np.ndarray,
    generated_valid: np.ndarray,
    training_ids: np.ndarray,
    training_vectors: np.ndarray,
    training_valid: np.ndarray,
    k: int,
    offload: Offload | None = None,
) -> tuple[pd.DataFrame, str, float | None]:
    """The k nearest training images of every embedded generated sample (the expensive, threshold-free part).
    `offload`: the exact search run elsewhere (a Dask cluster: `analysis.distributed`)."""
    query_rows = np.flatnonzero(generated_valid)
    if offload is not None:
        search = offload.nearest_rows(np.asarray(generated_vectors[query_rows]), np.flatnonzero(training_valid), k)
    else:
        search = knn(
            np.asarray(generated_vectors[query_rows]),
            training_vectors,
            k,
            rows=None if training_valid.all() else np.flatnonzero(training_valid),
        )
    indices = search.indices
    neighbours = pd.DataFrame(
        {
            "id": np.repeat(generated_ids[query_rows], indices.shape[1]),
            "rank": np.tile(np.arange(1, indices.shape[1] + 1), len(query_rows)),
            "training_row": indices.ravel(),
            "training_id": training_ids[indices.ravel()],
            "similarity": search.similarities.ravel().astype(np.float64),
        }
    )
    return neighbours, search.method, search.recall_at_k


def summarise(
    generated: pd.DataFrame,
    training: pd.DataFrame,
    neighbours: pd.DataFrame,
    *,
    threshold: float,
    k: int,
    method: str,
    recall: float | None,
    group_sizes: np.ndarray | None = None,
    after_dedup: pd.Series | None = None,
    source_similarity: pd.Series | None = None,
    images_root: Path | None = None,
    checks: pd.DataFrame | None = None,
    inlier_threshold: int = 0,
    training_unreadable: int = 0,
    features_of: Callable[[str], Features | None] | None = None,
    acted_tiers: tuple[str, ...] = GROUPED_TIERS,
) -> RegurgitationResult:
    """Per-sample table from the neighbours: best match, flag at `threshold`, group size, source rank, SSIM.

    With `checks` (the verified candidates: id, training_row, training_id, similarity, inliers, mirrored, and the
    `tier` of each verified one) a sample is flagged when a candidate reaches `inlier_threshold` and is of a tier
    in `acted_tiers` (a second photo of the same scene is not a copy); its best match is that candidate."""
    best = neighbours[neighbours["rank"] == 1].set_index("id")
    samples = pd.DataFrame({"id": generated["id"].to_numpy()})
    samples["embedded"] = samples["id"].isin(best.index)
    samples["best_match"] = samples["id"].map(best["training_id"])
    samples["similarity"] = samples["id"].map(best["similarity"]).astype(np.float64)
    samples["flagged"] = samples["similarity"].fillna(-1.0) >= threshold
    verification = None
    if checks is not None:
        best, verification = _act_on_checks(samples, best, checks, threshold, inlier_threshold, acted_tiers)
    if group_sizes is not None:
        samples["group_size"] = (
            samples["id"]
            .map(best["training_row"])
            .map(lambda row: int(group_sizes[int(row)]) if pd.notna(row) else None)
        )
    else:
        samples["group_size"] = None
    if after_dedup is not None:
        samples["best_similarity_after_dedup"] = samples["id"].map(after_dedup)
    if "source_id" in generated.columns:
        _add_source_ranks(samples, generated, neighbours, source_similarity)
    if images_root is not None:
        _add_pixel_opinions(samples, generated, training, images_root, features_of)
    return RegurgitationResult(
        samples, neighbours, threshold, k, method, recall, verification, n_training_unreadable=training_unreadable
    )


def _act_on_checks(
    samples: pd.DataFrame,
    best: pd.DataFrame,
    checks: pd.DataFrame,
    threshold: float,
    inlier_threshold: int,
    acted_tiers: tuple[str, ...],
) -> tuple[pd.DataFrame, dict]:
    """Flags from the verified candidates (written into `samples`): a sample's strongest candidate decides, and
    a flagged sample's best match becomes that candidate. Returns the best matches so moved and the record."""
    verified = is_verified(checks["inliers"], checks["coverage"], inlier_threshold)
    tiers = checks["tier"] if "tier" in checks else pd.Series(None, index=checks.index, dtype=object)
    checks = checks.assign(
        verified=verified,
        acted=verified & (tiers.isin(acted_tiers) if "tier" in checks else True),
        tier=tiers.where(verified, None),
    )
    strongest = checks.sort_values(["acted", "verified", "inliers", "similarity"], ascending=False)
    strongest = strongest.drop_duplicates("id").set_index("id")
    samples["inliers"] = samples["id"].map(strongest["inliers"]).fillna(0).astype(int)
    samples["mirrored"] = samples["id"].map(strongest["mirrored"]).fillna(False).astype(bool)
    samples["flagged"] = samples["id"].map(strongest["acted"]).fillna(False).astype(bool)
    samples["tier"] = samples["id"].map(strongest["tier"]).astype(object)
    samples["tier"] = samples["tier"].where(samples["tier"].notna(), None)
    # the verified training image the tier belongs to (for an unflagged sample, not its cosine-best match)
    samples["tier_match"] = samples["id"].map(strongest["training_id"]).where(samples["tier"].notna(), None)
    flagged_ids = samples.loc[samples["flagged"], "id"]
    best = best.copy()
    if len(flagged_ids):  # (pandas refuses an empty assignment into a float column)
        samples.loc[samples["flagged"], "best_match"] = flagged_ids.map(strongest["training_id"]).to_numpy()
        samples.loc[samples["flagged"], "similarity"] = flagged_ids.map(strongest["similarity"]).to_numpy()
        best.loc[flagged_ids.to_numpy(), "training_row"] = flagged_ids.map(strongest["training_row"]).to_numpy()
    verification = {
        "method": "local-features",
        "candidate_threshold": threshold,
        "inlier_threshold": inlier_threshold,
        "min_coverage": MIN_COVERAGE,
        "n_candidates": int(len(checks)),
        "n_verified": int(checks["verified"].sum()),
        "tiers": {tier: int((checks["tier"] == tier).sum()) for tier in TIERS} if "tier" in checks else None,
        "acted_tiers": list(acted_tiers) if "tier" in checks else None,
    }
    return best, verification


def _add_source_ranks(
    samples: pd.DataFrame, generated: pd.DataFrame, neighbours: pd.DataFrame, source_similarity: pd.Series | None
) -> None:
    """Where a sample names the training image it was made from: that image's rank among its neighbours."""
    samples["source_id"] = generated["source_id"].to_numpy()
    ranks = samples[["id", "source_id"]].merge(
        neighbours[["id", "training_id", "rank"]],
        left_on=["id", "source_id"],
        right_on=["id", "training_id"],
        how="left",
    )["rank"]
    samples["source_rank"] = ranks.astype("Int64").to_numpy()
    samples["source_similarity"] = samples["id"].map(source_similarity) if source_similarity is not None else np.nan


def _add_pixel_opinions(
    samples: pd.DataFrame,
    generated: pd.DataFrame,
    training: pd.DataFrame,
    images_root: Path,
    features_of: Callable[[str], Features | None] | None,
) -> None:
    """SSIM of each flagged sample against its best match, aligned by the pair's own features when known."""
    samples["ssim"] = np.nan
    image_of = dict(zip(training["id"], training.get("image", pd.Series([""] * len(training))).astype(str)))
    generated_image = dict(zip(generated["id"], generated.get("image", pd.Series([""] * len(generated))).astype(str)))
    samples["ssim_aligned"] = False
    for row in np.flatnonzero(samples["flagged"].to_numpy()):
        sample_id = samples.loc[row, "id"]
        pair = generated_image.get(sample_id, ""), image_of.get(samples.loc[row, "best_match"], "")
        features = None
        if features_of is not None:
            first, second = (features_of(image) for image in pair)
            features = (first, second) if first is not None and second is not None else None
        opinion = pixel_similarity(images_root, *pair, features=features)
        samples.loc[row, "ssim"], samples.loc[row, "ssim_aligned"] = opinion


def flagged_items(samples: pd.DataFrame) -> pd.DataFrame:
    """The flagged samples as a review population: `id`, and `score`, the similarity to their training match."""
    flagged = samples[samples["flagged"]]
    return pd.DataFrame({"id": flagged["id"].astype(str), "score": flagged["similarity"]})


def best_after_dedup(
    neighbours: pd.DataFrame,
    generated_ids: np.ndarray,
    generated_vectors: np.ndarray,
    generated_valid: np.ndarray,
    training_vectors: np.ndarray,
    kept: np.ndarray,
) -> pd.Series:
    """Best similarity against the deduplicated training set: is the copy still reachable after dedup?

    Read off the k nearest neighbours when one of them is kept (the first kept one is the best kept one);
    searched again, over the kept rows, only for the samples whose k neighbours dedup all removed.
    """
    training_rows = neighbours["training_row"].to_numpy()
    is_kept = (training_rows >= 0) & kept[np.maximum(training_rows, 0)]
    best = neighbours[is_kept].sort_values(["id", "rank"]).drop_duplicates("id").set_index("id")["similarity"]
    queries = np.flatnonzero(generated_valid)
    missing = queries[~pd.Series(generated_ids[queries]).isin(best.index).to_numpy()]
    if len(missing):
        result = knn(np.asarray(generated_vectors[missing]), training_vectors, 1, rows=np.flatnonzero(kept))
        searched = pd.Series(result.similarities[:, 0].astype(np.float64), index=generated_ids[missing])
        best = pd.concat([best, searched])
    return best.reindex(generated_ids[queries]).astype(np.float64)


def source_similarities(
    generated: pd.DataFrame, generated_vectors: np.ndarray, training: pd.DataFrame, training_vectors: np.ndarray
) -> pd.Series | None:
    """Similarity of each sample to the training image whose caption was its prompt."""
    if "source_id" not in generated.columns:
        return None
    position = pd.Series(np.arange(len(training)), index=training["id"].to_numpy())
    source = generated["source_id"].astype("string").fillna("").map(lambda s: position.get(s, -1)).to_numpy()
    has = source >= 0
    values = np.full(len(generated), np.nan)
    values[has] = np.einsum("ij,ij->i", generated_vectors[has], training_vectors[source[has]])
    return pd.Series(values, index=generated["id"].to_numpy())


def pixel_similarity(
    images_root: Path, generated_image: str, training_image: str, features: tuple[Features, Features] | None = None
) -> tuple[float | None, bool]:
    """SSIM as a second opinion that does not depend on the embedder, and whether it was aligned: after undoing the
    mirror, crop, scale and rotation that local features find (analysis/copies/aligned_similarity.py); where they
    find none, of 64×64 grey thumbnails."""
    from skimage.metrics import structural_similarity

    from analysis.copies.aligned_similarity import aligned_ssim

    first, second = load_image(images_root, generated_image), load_image(images_root, training_image)
    if first.image is None or second.image is None:
        return None, False
    aligned = aligned_ssim(first.image, second.image, features)
    if aligned is not None:
        return aligned, True
    a = np.asarray(first.image.convert("L").resize((PIXEL_SIZE, PIXEL_SIZE)), dtype=np.float64) / 255
    b = np.asarray(second.image.convert("L").resize((PIXEL_SIZE, PIXEL_SIZE)), dtype=np.float64) / 255
    return float(structural_similarity(a, b, data_range=1.0)), False
