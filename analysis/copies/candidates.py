"""Stage two of copy detection over a set of candidate pairs: which of them the pixels confirm.

A duplicate pair or a regurgitation flag is a *candidate* (embedding cosine ≥ the candidate threshold, at most
`top_k` per image) that is *verified* (local-feature inliers ≥ the inlier threshold). Both numbers are kept for
every candidate; unverified candidates are shown, never counted (DESIGN.md §6).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from analysis.copies.aligned_similarity import Alignments
from analysis.copies.local_features import MIN_COVERAGE
from analysis.copies.tiers import TIERS
from analysis.embedders.base import default_for_embedder

# Calibrated on real COCO photos with standard copy edits (bench/copy_detection.py; docs/analyses.md).
CANDIDATE_THRESHOLDS = {"effnet-lite0": 0.50, "open_clip": 0.70, "precomputed": 0.70}
CANDIDATE_TOP_K = 20
INLIER_THRESHOLD = 10
VERIFY_CHOICES = ("local-features", "none")


@dataclass(frozen=True)
class CandidateCheck:
    """The candidates of one search and what verification said of each."""

    pairs: np.ndarray  # (m, 2) rows
    similarities: np.ndarray  # (m,) cosine
    inliers: np.ndarray  # (m,) int32
    mirrored: np.ndarray  # (m,) bool
    coverage: np.ndarray  # (m,) float32: share of the smaller image inside the inliers' convex hull
    candidate_threshold: float
    inlier_threshold: int
    tiers: np.ndarray | None = None  # (m,) object: the tier of a verified candidate (analysis/copies/tiers.py), None
    acted_tiers: tuple[str, ...] = ()  # the tiers that group (dedup) or flag (regurgitation)
    aligned: Alignments | None = None  # transforms verification fitted for the tiers (feature_store.verify_pairs)

    @property
    def verified(self) -> np.ndarray:
        return is_verified(self.inliers, self.coverage, self.inlier_threshold)

    @property
    def acted(self) -> np.ndarray:
        """Verified candidates of a tier acted on (every verified candidate before tiers are known)."""
        if self.tiers is None:
            return self.verified
        return self.verified & np.isin(self.tiers.astype(str), list(self.acted_tiers))

    def at_inliers(self, inlier_threshold: int) -> CandidateCheck:
        """The check at another inlier threshold (tiers dropped: they belong to the pairs verified before)."""
        return CandidateCheck(
            self.pairs,
            self.similarities,
            self.inliers,
            self.mirrored,
            self.coverage,
            self.candidate_threshold,
            inlier_threshold,
            aligned=self.aligned,
        )

    def with_tiers(self, tiers: np.ndarray, acted_tiers: tuple[str, ...]) -> CandidateCheck:
        return replace(self, tiers=tiers, acted_tiers=acted_tiers)

    def tier_counts(self) -> dict[str, int]:
        if self.tiers is None:
            return {}
        verified = self.tiers[self.verified].astype(str)
        return {tier: int((verified == tier).sum()) for tier in TIERS}

    def to_json(self) -> dict:
        return {
            "method": "local-features",
            "candidate_threshold": self.candidate_threshold,
            "inlier_threshold": self.inlier_threshold,
            "min_coverage": MIN_COVERAGE,
            "n_candidates": int(len(self.pairs)),
            "n_verified": int(self.verified.sum()),
            "n_mirrored": int((self.verified & self.mirrored).sum()),
            "tiers": self.tier_counts() or None,
            "acted_tiers": list(self.acted_tiers) or None,
        }


def is_verified(inliers: np.ndarray, coverage: np.ndarray, inlier_threshold: int) -> np.ndarray:
    """A candidate is verified when enough keypoints agree on one transform and they spread over the images."""
    return (np.asarray(inliers) >= inlier_threshold) & (np.asarray(coverage) >= MIN_COVERAGE)


def cap_per_image(pairs: np.ndarray, similarities: np.ndarray, top_k: int) -> np.ndarray:
    """Mask of the pairs among the `top_k` most similar of at least one of their two images: a bounded number of
    candidates per image, however crowded its neighbourhood."""
    if not len(pairs):
        return np.zeros(0, dtype=bool)
    m = len(pairs)
    images = pairs.T.ravel()  # both ends of every pair: entry e is pair e % m
    entries = np.lexsort((-np.tile(similarities, 2), images))  # by image, most similar first
    sorted_images = images[entries]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_images)) + 1]
    rank = np.arange(2 * m) - np.repeat(starts, np.diff(np.r_[starts, 2 * m]))
    keep = np.zeros(m, dtype=bool)
    keep[entries[rank < top_k] % m] = True
    return keep


# Per-embedder defaults, reasoning in docs/analyses.md (Regurgitation): a memorised copy sits far above the
# similarity of unrelated images and of light edits.
COPY_FLAG_THRESHOLDS = {"effnet-lite0": 0.95, "open_clip": 0.95, "precomputed": 0.95}


def copy_flag_threshold(embedder: str) -> float:
    """The cosine at which an image is flagged as a copy when pixels are not checked (regurgitation's and
    contamination's unverified flag): one number for both, so they agree on what a copy is."""
    return default_for_embedder(COPY_FLAG_THRESHOLDS, embedder)
