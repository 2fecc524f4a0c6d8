"""How often a scorer fires on ordinary photos at a threshold: the false-positive share a filter on that score starts
from, before it removes a single unsafe image. Measured on 4,998 distinct COCO photos (a curated set of everyday
scenes: web photos run higher, e.g. 1.1% of Flickr photos at open-nsfw ≥ 0.5 in issue 51, against 0.26% here)
by `python -m bench.score_throughput --write`, which stores every photo's score beside this module so that any
threshold can be answered exactly, with its Clopper–Pearson interval."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from analysis.filter_spec import ScoreFilter
from analysis.stats import proportion_interval

REFERENCE_DIRECTORY = Path(__file__).resolve().parent / "reference"


@dataclass(frozen=True)
class OrdinaryRate:
    model: str
    threshold: float
    direction: str  # ">=": removed at or above the threshold; "<": removed below it
    flagged: int
    photos: int
    interval: tuple[float, float]  # 95% Clopper–Pearson
    source: str  # what the photos were
    measured: str  # the commit, date and command that scored them

    @property
    def share(self) -> float:
        return self.flagged / self.photos

    @property
    def symbol(self) -> str:
        return "≥" if self.direction == ">=" else "<"

    def to_json(self) -> dict:
        return {
            "threshold": self.threshold,
            "removed_when": self.direction,
            "flagged": self.flagged,
            "photos": self.photos,
            "share": self.share,
            "ci95": list(self.interval),
            "source": self.source,
            "measured": self.measured,
        }

    def sentence(self) -> str:
        low, high = self.interval
        return (
            f"On {self.photos:,} ordinary photos ({self.source}), {self.model} {self.symbol} {self.threshold:g} flags "
            f"{self.flagged:,} ({self.share:.2%}, 95% CI {low:.2%}–{high:.2%}): the false-positive share to expect "
            f"before any unsafe image is removed; web photos can run higher (measured: {self.measured})."
        )


def reference_path(model: str) -> Path:
    return REFERENCE_DIRECTORY / f"{model}.json"


@cache
def _reference(model: str) -> tuple[np.ndarray, str, str] | None:
    path = reference_path(model)
    if not path.is_file():
        return None
    payload = json.loads(path.read_text())
    return np.asarray(payload["scores"], dtype=np.float64), payload["photos_source"], payload["measured"]


def ordinary_rate(model: str, threshold: float, direction: str = ">=") -> OrdinaryRate | None:
    """The share of the reference photos this filter would remove; None for a score with no reference (a column
    from the manifest, or a scorer not measured yet)."""
    reference = _reference(model)
    if reference is None:
        return None
    scores, source, measured = reference
    flagged = int((scores >= threshold).sum() if direction == ">=" else (scores < threshold).sum())
    interval = proportion_interval(flagged, len(scores))
    return OrdinaryRate(model, threshold, direction, flagged, len(scores), interval, source, measured)


GUIDE_THRESHOLDS = (0.5, 0.8)  # shown when no filter on the score is set yet: the two thresholds users start from


def rates_to_expect(model: str, filters: Sequence[ScoreFilter]) -> list[OrdinaryRate]:
    """The reference rate at each threshold the workspace filters this score with, or at the usual thresholds
    when it filters it with none yet; empty for a score with no reference."""
    chosen = [(f.threshold, f.removed_when) for f in filters if f.column == model]
    rates = [
        ordinary_rate(model, threshold, direction)
        for threshold, direction in chosen or [(t, ">=") for t in GUIDE_THRESHOLDS]
    ]
    return [rate for rate in rates if rate is not None]
