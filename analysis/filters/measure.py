"""How good a filter is, from what it can honestly be judged on: precision and recall on the random slice (held out
of training, and not used to choose the threshold, so no estimate is judged by what it measures), the
cross-validated ROC curve, the threshold for a target recall (DALL·E 2's filters favoured recall), and whether the
flagged set has stopped changing."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from analysis.stats import TOO_FEW, judgeable, proportion_interval

FIT_AGAIN = "fitted by an older version that did not count its trials: fit again"
STABLE_CHANGE = 0.05  # the flagged set changed by less than this share of its union: the rounds can stop


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
    # the slice's images at or above the threshold: the trials behind the precision. None: fitted by a version that
    # did not count them (and set the threshold on the slice itself), so its estimates cannot be judged: fit again
    n_slice_flagged: int | None = None
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
    def fitted_before_trials_were_counted(self) -> bool:
        return self.n_slice_flagged is None and self.precision is not None

    @property
    def precision_judgeable(self) -> bool:
        return self.n_slice_flagged is not None and judgeable(self.n_slice_flagged)

    @property
    def recall_judgeable(self) -> bool:
        return not self.fitted_before_trials_were_counted and judgeable(self.n_slice_positive)

    @property
    def stable(self) -> bool:
        return self.change is not None and self.change < STABLE_CHANGE

    def to_json(self) -> dict:
        payload = asdict(self)
        payload["stable"] = self.stable
        payload["precision_judgeable"] = self.precision_judgeable
        payload["recall_judgeable"] = self.recall_judgeable
        payload["precision_ci95"] = list(self.precision_ci95) if self.precision_ci95 else None
        payload["recall_ci95"] = list(self.recall_ci95) if self.recall_ci95 else None
        return payload

    @classmethod
    def from_json(cls, body: dict) -> FitReport:
        body = {k: v for k, v in body.items() if k not in ("stable", "precision_judgeable", "recall_judgeable")}
        for key in ("precision_ci95", "recall_ci95"):
            body[key] = tuple(body[key]) if body.get(key) else None
        return cls(**body)

    def summary_line(self) -> str:
        auc = "—" if self.cv_auc is None else f"{self.cv_auc:.3f}"
        parts = [f"{self.n_labels} labels ({self.n_positive} positive, {self.n_negative} negative)", f"cv AUC {auc}"]
        if self.threshold is not None:
            parts.append(f"threshold {self.threshold:.3f} for recall {self.target_recall:.0%}")
        mark = FIT_AGAIN if self.fitted_before_trials_were_counted else TOO_FEW
        for what, value, ci, enough in (
            ("precision", self.precision, self.precision_ci95, self.precision_judgeable),
            ("recall", self.recall, self.recall_ci95, self.recall_judgeable),
        ):
            if value is not None and ci is not None:
                parts.append(
                    f"{what} {value:.0%} (95% CI {ci[0]:.0%}–{ci[1]:.0%}" + ("" if enough else f"; {mark}") + ")"
                )
        parts.append(f"{self.n_flagged:,} flagged")
        return "; ".join(parts)


def threshold_for_recall(positive_scores: np.ndarray, target: float) -> float | None:
    """The highest threshold that keeps at least `target` of these positives flagged (score ≥ threshold)."""
    if len(positive_scores) == 0:
        return None
    ordered = np.sort(positive_scores)[::-1]
    return float(ordered[max(0, math.ceil(target * len(ordered)) - 1)])


@dataclass(frozen=True)
class SliceEstimate:
    """Precision and recall at one threshold, measured on the random slice (a simple random sample of the images the
    model was not trained on), with Clopper–Pearson 95% intervals; None where the slice has no trial for it."""

    flagged: int
    positives: int
    precision: float | None
    precision_ci95: tuple[float, float] | None
    recall: float | None
    recall_ci95: tuple[float, float] | None


def slice_estimates(slice_scores: np.ndarray, slice_truth: np.ndarray, threshold: float) -> SliceEstimate:
    flagged = slice_scores >= threshold
    true_flagged, n_flagged, n_positive = int((flagged & slice_truth).sum()), int(flagged.sum()), int(slice_truth.sum())
    return SliceEstimate(
        flagged=n_flagged,
        positives=n_positive,
        precision=true_flagged / n_flagged if n_flagged else None,
        precision_ci95=proportion_interval(true_flagged, n_flagged) if n_flagged else None,
        recall=true_flagged / n_positive if n_positive else None,
        recall_ci95=proportion_interval(true_flagged, n_positive) if n_positive else None,
    )


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
