"""How good a filter is, from what it can honestly be judged on: precision and recall on the random slice (scored
out of fold, so no image is judged by a model that saw its label), the cross-validated ROC curve, the threshold
for a target recall (DALL·E 2's filters favoured recall), and whether the flagged set has stopped changing."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from analysis.stats import proportion_interval

STABLE_CHANGE = 0.05  # the flagged set changed by less than this share of its union: the rounds can stop
MIN_SLICE_POSITIVES = 10  # fewer random-slice positives: the threshold is set on every labelled positive


@dataclass
class FitReport:
    n_labels: int
    n_positive: int
    n_negative: int
    n_skipped: int
    rounds: int
    cv_auc: float | None
    roc: dict[str, list[float]] = field(default_factory=dict)
    target_recall: float = 0.9
    threshold: float | None = None
    threshold_basis: str = ""
    n_slice: int = 0
    n_slice_positive: int = 0
    precision: float | None = None
    precision_ci95: tuple[float, float] | None = None
    recall: float | None = None
    recall_ci95: tuple[float, float] | None = None
    n_flagged: int = 0
    newly_flagged: int = 0
    no_longer_flagged: int = 0
    change: float | None = None  # |symmetric difference| / |union| with the previous fit's flagged set
    fitted_at: str = ""

    @property
    def stable(self) -> bool:
        return self.change is not None and self.change < STABLE_CHANGE

    def to_json(self) -> dict:
        payload = asdict(self)
        payload["stable"] = self.stable
        payload["precision_ci95"] = list(self.precision_ci95) if self.precision_ci95 else None
        payload["recall_ci95"] = list(self.recall_ci95) if self.recall_ci95 else None
        return payload

    @classmethod
    def from_json(cls, body: dict) -> FitReport:
        body = {k: v for k, v in body.items() if k != "stable"}
        for key in ("precision_ci95", "recall_ci95"):
            body[key] = tuple(body[key]) if body.get(key) else None
        return cls(**body)

    def summary_line(self) -> str:
        auc = "—" if self.cv_auc is None else f"{self.cv_auc:.3f}"
        parts = [f"{self.n_labels} labels ({self.n_positive} positive, {self.n_negative} negative)", f"cv AUC {auc}"]
        if self.threshold is not None:
            parts.append(f"threshold {self.threshold:.3f} for recall {self.target_recall:.0%}")
        for what, value, ci in (
            ("precision", self.precision, self.precision_ci95),
            ("recall", self.recall, self.recall_ci95),
        ):
            if value is not None and ci is not None:
                parts.append(f"{what} {value:.0%} (95% CI {ci[0]:.0%}–{ci[1]:.0%})")
        parts.append(f"{self.n_flagged:,} flagged")
        return "; ".join(parts)


def threshold_for_recall(positive_scores: np.ndarray, target: float) -> float | None:
    """The highest threshold that keeps at least `target` of these positives flagged (score ≥ threshold)."""
    if len(positive_scores) == 0:
        return None
    ordered = np.sort(positive_scores)[::-1]
    return float(ordered[max(0, math.ceil(target * len(ordered)) - 1)])


def slice_estimates(
    slice_scores: np.ndarray, slice_truth: np.ndarray, threshold: float
) -> tuple[float | None, tuple[float, float] | None, float | None, tuple[float, float] | None]:
    """Precision and recall at `threshold` on a simple random sample, with Clopper–Pearson 95% intervals."""
    flagged = slice_scores >= threshold
    true_flagged = int((flagged & slice_truth).sum())
    precision = recall = None
    precision_ci = recall_ci = None
    if flagged.any():
        precision, precision_ci = (
            true_flagged / int(flagged.sum()),
            proportion_interval(true_flagged, int(flagged.sum())),
        )
    if slice_truth.any():
        recall, recall_ci = (
            true_flagged / int(slice_truth.sum()),
            proportion_interval(true_flagged, int(slice_truth.sum())),
        )
    return precision, precision_ci, recall, recall_ci


def roc_points(truth: np.ndarray, scores: np.ndarray) -> tuple[float | None, dict[str, list[float]]]:
    if truth.all() or not truth.any():
        return None, {}
    from sklearn.metrics import roc_auc_score, roc_curve  # imported here: the CLI starts without sklearn

    fpr, tpr, thresholds = roc_curve(truth, scores)
    finite = np.isfinite(thresholds)
    return float(roc_auc_score(truth, scores)), {
        "fpr": fpr[finite].round(4).tolist(),
        "tpr": tpr[finite].round(4).tolist(),
        "threshold": thresholds[finite].round(4).tolist(),
    }


def flagged_change(previous: np.ndarray | None, current: np.ndarray) -> tuple[int, int, float | None]:
    if previous is None or len(previous) != len(current):
        return int(current.sum()), 0, None
    union = int((previous | current).sum())
    newly, dropped = int((current & ~previous).sum()), int((previous & ~current).sum())
    return newly, dropped, (newly + dropped) / union if union else 0.0
