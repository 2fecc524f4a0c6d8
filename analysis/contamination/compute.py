"""What one evaluation set has inside the training set: its images found by the two-stage copy search that dedup
and regurgitation use (embedding candidates, then pixels), its captions matched exactly or nearly
(analysis/contamination/captions.py), each match with its evidence, and the share of the set contaminated with its
interval.

An evaluation item is contaminated when its image has a verified copy in the training set (a copy or a byte-identical
file by default: a second photograph of the same scene is shown, not counted, as in regurgitation) or its caption
has an exact or near copy. What matters for a model trained on the filtered set is whether the copy survived the
filters, so every count is also given for the kept training images (`_kept`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.copies.candidates import MIN_COVERAGE, is_verified
from analysis.copies.tiers import TIERS
from analysis.stats import PROPORTION_METHOD, judgeable, proportion_interval

IMAGE_COLUMNS = ["eval_id", "train_id", "train_row", "cosine", "inliers", "mirrored", "coverage", "tier", "counted"]
CAPTION_COLUMNS = ["eval_id", "train_id", "train_row", "kind", "similarity"]


@dataclass(frozen=True)
class ImageSearch:
    """How the images were searched: candidates at `threshold` among the `k` nearest training images, verified on
    pixels at `inlier_threshold` (or by cosine alone when `verified` is False)."""

    threshold: float
    k: int
    verified: bool
    inlier_threshold: int | None
    acted_tiers: tuple[str, ...]
    method: str  # the nearest-neighbour search (exact, or IVF with its measured recall)

    def rule(self) -> str:
        if not self.verified:
            return f"a training image at cosine ≥ {self.threshold} (not verified on pixels)"
        return (
            f"a training image at cosine ≥ {self.threshold} verified on pixels (≥ {self.inlier_threshold} "
            f"local-feature inliers covering ≥ {MIN_COVERAGE:.0%}), of the kind {' or '.join(self.acted_tiers)}"
        )


@dataclass(frozen=True)
class SetContamination:
    name: str
    n: int
    items: pd.DataFrame  # the evaluation set: id, image (absolute, "" where none), caption
    images: pd.DataFrame  # IMAGE_COLUMNS: every candidate, counted or not
    captions: pd.DataFrame  # CAPTION_COLUMNS
    kept: np.ndarray  # per training row: kept by the filters
    n_images: int  # evaluation rows with an image path
    n_images_measured: int  # ... that could be read and embedded
    n_captions: int  # evaluation rows with a caption
    search: ImageSearch | None
    images_unmeasured: str = ""  # why no image was searched ("" when they were)
    tier_counts: dict[str, int] = field(default_factory=dict)

    def _counted(self, kept_only: bool) -> pd.DataFrame:
        counted = self.images[self.images["counted"]]
        return counted[self.kept[counted["train_row"].to_numpy(dtype=np.int64)]] if kept_only else counted

    def image_ids(self, kept_only: bool = False) -> set[str]:
        return set(self._counted(kept_only)["eval_id"])

    def caption_ids(self, kept_only: bool = False) -> set[str]:
        captions = self.captions
        if kept_only:
            captions = captions[self.kept[captions["train_row"].to_numpy(dtype=np.int64)]]
        return set(captions["eval_id"])

    def contaminated_ids(self, kept_only: bool = False) -> set[str]:
        """Evaluation items with an image or a caption in the training set (or its kept part)."""
        return self.image_ids(kept_only) | self.caption_ids(kept_only)

    def unmeasured(self) -> str:
        """What of the set's images could not be checked, in words ("" when every one was)."""
        if not self.n_images:
            return ""
        if self.images_unmeasured:
            return f"{self.n_images:,} evaluation images not searched: {self.images_unmeasured}"
        unread = self.n_images - self.n_images_measured
        return f"{unread:,} of {self.n_images:,} evaluation images could not be read" if unread else ""

    @property
    def n_contaminated(self) -> int:
        return len(self.contaminated_ids())

    @property
    def image_rate(self) -> float | None:
        return len(self.image_ids()) / self.n_images_measured if self.n_images_measured else None

    @property
    def judgeable(self) -> bool:
        return judgeable(self.n)

    def to_json(self) -> dict:
        matched = len(self.image_ids())
        counted = self.images[self.images["counted"]].sort_values(["eval_id", "inliers"], ascending=[True, False])
        image_matches = [
            {
                "eval_id": str(row.eval_id),
                "train_id": str(row.train_id),
                "cosine": round(float(row.cosine), 4),
                "inliers": None if pd.isna(row.inliers) else int(row.inliers),
                "tier": row.tier,
                "train_kept": bool(self.kept[int(row.train_row)]),
            }
            for row in counted.itertuples()
        ]
        caption_matches = [
            {
                "eval_id": str(row.eval_id),
                "train_id": str(row.train_id),
                "kind": row.kind,
                "similarity": round(float(row.similarity), 4),
                "train_kept": bool(self.kept[int(row.train_row)]),
            }
            for row in self.captions.itertuples()
        ]
        low, high = proportion_interval(matched, self.n_images_measured) if self.n_images_measured else (0.0, 1.0)
        caption_low, caption_high = (
            proportion_interval(len(self.caption_ids()), self.n_captions) if self.n_captions else (0.0, 1.0)
        )
        return {
            "name": self.name,
            "n": self.n,
            "n_contaminated": self.n_contaminated,
            "n_contaminated_kept": len(self.contaminated_ids(kept_only=True)),
            "judgeable": self.judgeable,
            "images": {
                "n_with_image": self.n_images,
                "n_measured": self.n_images_measured,
                "n_matched": matched,
                "n_matched_kept": len(self.image_ids(kept_only=True)),
                "rate": self.image_rate,
                "ci95": [low, high],
                "ci_method": PROPORTION_METHOD,
                "rule": self.search.rule() if self.search else None,
                "search": self.search.method if self.search else None,
                "n_candidates": int(len(self.images)),
                "tiers": self.tier_counts or None,
                "unmeasured": self.images_unmeasured or None,
                "matches": image_matches,
            },
            "captions": {
                "n_with_caption": self.n_captions,
                "n_matched": len(self.caption_ids()),
                "n_matched_kept": len(self.caption_ids(kept_only=True)),
                "ci95": [caption_low, caption_high],
                "n_exact": int((self.captions["kind"] == "exact").sum()),
                "n_near": int((self.captions["kind"] == "near").sum()),
                "matches": caption_matches,
            },
        }


@dataclass(frozen=True)
class ContaminationResult:
    sets: list[SetContamination]

    def by_name(self, name: str) -> SetContamination | None:
        return next((one for one in self.sets if one.name == name), None)

    def to_json(self) -> dict:
        return {"sets": [one.to_json() for one in self.sets]}

    def training_reasons(self, n_training: int) -> pd.DataFrame:
        """Per training row: `filter:contamination` (it holds a copy of an evaluation item's image or caption), the
        evaluation items it copies (`contaminates`: "SET:ID, ...") and the `reason` in words, for the removal list
        (DataComp removes such copies from its pool)."""
        reasons: list[list[str]] = [[] for _ in range(n_training)]
        items: list[list[str]] = [[] for _ in range(n_training)]
        for one in self.sets:
            for row in one.images[one.images["counted"]].itertuples():
                evidence = f"{int(row.inliers)} inliers" if not pd.isna(row.inliers) else f"cosine {row.cosine:.3f}"
                reasons[int(row.train_row)].append(f"contamination: image of {one.name} {row.eval_id} ({evidence})")
                items[int(row.train_row)].append(f"{one.name}:{row.eval_id}")
            for row in one.captions.itertuples():
                reasons[int(row.train_row)].append(f"contamination: caption of {one.name} {row.eval_id} ({row.kind})")
                items[int(row.train_row)].append(f"{one.name}:{row.eval_id}")
        return pd.DataFrame(
            {
                "filter:contamination": [bool(r) for r in reasons],
                "contaminates": [", ".join(dict.fromkeys(i)) for i in items],
                "reason": ["; ".join(dict.fromkeys(r)) for r in reasons],
            }
        )


def no_candidates() -> pd.DataFrame:
    """The image matches of a set whose images were not searched (or had no candidate)."""
    return pd.DataFrame({column: pd.Series(dtype=object) for column in IMAGE_COLUMNS}).astype(
        {"train_row": np.int64, "cosine": np.float64, "counted": bool}
    )


def candidates_from_neighbours(
    eval_ids: np.ndarray,
    query_rows: np.ndarray,
    indices: np.ndarray,
    similarities: np.ndarray,
    training_ids: np.ndarray,
    threshold: float,
) -> pd.DataFrame:
    """The (evaluation image, training image) pairs among the k nearest whose cosine reaches `threshold`."""
    keep = (similarities >= threshold) & (indices >= 0)
    rows, ranks = np.nonzero(keep)
    train_rows = indices[rows, ranks].astype(np.int64)
    return pd.DataFrame(
        {
            "eval_id": eval_ids[query_rows[rows]],
            "train_id": training_ids[train_rows],
            "train_row": train_rows,
            "cosine": similarities[rows, ranks].astype(np.float64),
        }
    )


def judge_candidates(
    candidates: pd.DataFrame, checks: pd.DataFrame | None, search: ImageSearch
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The candidates with what verification said (`checks`: inliers, mirrored, coverage and the tier of each
    verified one, aligned with them) and whether each counts: verified and of an acted tier; without verification,
    every candidate (the cosine threshold is then the rule)."""
    frame = candidates.copy()
    if not search.verified or checks is None or search.inlier_threshold is None:
        frame["inliers"] = pd.array([None] * len(frame), dtype="Int64")
        frame["mirrored"], frame["coverage"], frame["tier"] = False, np.nan, None
        frame["counted"] = True
        return frame[IMAGE_COLUMNS], {}
    verified = is_verified(checks["inliers"].to_numpy(), checks["coverage"].to_numpy(), search.inlier_threshold)
    frame["inliers"] = checks["inliers"].to_numpy().astype(np.int64)
    frame["mirrored"], frame["coverage"] = checks["mirrored"].to_numpy(), checks["coverage"].to_numpy()
    frame["tier"] = pd.Series(checks["tier"].to_numpy(dtype=object)).where(verified, None).to_numpy(dtype=object)
    frame["counted"] = verified & np.isin(frame["tier"].astype(str), list(search.acted_tiers))
    counts = {tier: int((frame["tier"] == tier).sum()) for tier in TIERS}
    return frame[IMAGE_COLUMNS], counts


def caption_matches_of(
    matches: pd.DataFrame, eval_ids: np.ndarray, eval_rows: np.ndarray, training_ids: np.ndarray
) -> pd.DataFrame:
    """`match_captions`' rows (positions into the captions searched) as ids: `eval_rows` maps its evaluation
    positions back to rows of the evaluation set."""
    return pd.DataFrame(
        {
            "eval_id": eval_ids[eval_rows[matches["eval_row"].to_numpy(dtype=np.int64)]],
            "train_id": training_ids[matches["train_row"].to_numpy(dtype=np.int64)],
            "train_row": matches["train_row"].to_numpy(dtype=np.int64),
            "kind": matches["kind"].to_numpy(),
            "similarity": matches["similarity"].to_numpy(dtype=np.float64),
        },
        columns=CAPTION_COLUMNS,
    )
