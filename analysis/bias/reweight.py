"""The DALL·E 2 fix for filter-induced bias: reweight the filtered data back towards the original.

A deliberately weak, regularised classifier predicts whether an item was kept by the filter. Each
kept item gets weight 1 / P(kept | x) (the density ratio p_original(x) / p_filtered(x) up to a
constant), normalised to mean 1 over the kept items. Probabilities are out-of-fold, so an item's
weight never comes from a model that saw it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from analysis.captions import DocTermIndex
from analysis.errors import AuditInputError
from analysis.stats import effective_sample_size

if TYPE_CHECKING:  # scipy and sklearn are imported where used: every CLI command imports this module
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

FeatureKind = Literal["captions", "embeddings", "both"]

# A removed item "has a kept neighbour" when some kept item's classifier logit is within this many standard deviations
# of the logits of its own: the caliper that propensity-score matching uses to find a comparable unit (Austin 2011,
# 0.2 SD of the logit). Weights can only stand in for removed items that kept items resemble.
CALIPER_SD = 0.2
# Above this share of removed items without a kept neighbour the fix is reported as not identifiable. Chosen on
# Conceptual Captions filters (below 14.7%, the smallest share at which the weights gave back less than half of
# what a filter removed) and reported frozen on LAION captions (bench/reweight_overlap.py, docs/analyses.md "When
# reweighting cannot work").
MAX_WITHOUT_KEPT_NEIGHBOUR = 0.14


@dataclass(frozen=True)
class Reweighting:
    weights: np.ndarray  # per original row; 0 for removed rows, mean 1 over kept rows
    features: FeatureKind
    regularisation: float
    clip: float | None
    auc: float
    effective_sample_size: float
    n_kept: int
    held_out_words: tuple[str, ...] = ()  # left out of the caption features: their repair is measured, not fitted
    removed_without_kept_neighbour: float = 0.0  # share of removed items no kept item resembles (`overlap`)

    @property
    def identifiable(self) -> bool:
        """Can weights on the kept items stand in for the removed ones? Not when most removed items are unlike every
        kept item (a filter that removes whatever has a word or a feature): the weights then stay near 1 and the
        "reweighted" shifts equal the raw ones, however good the classifier's AUC."""
        return self.removed_without_kept_neighbour <= MAX_WITHOUT_KEPT_NEIGHBOUR

    @property
    def warning(self) -> str | None:
        if self.identifiable:
            return None
        return (
            f"Reweighting cannot repair this filter: {self.removed_without_kept_neighbour:.0%} of the removed items "
            f"have no kept item like them (none within {CALIPER_SD} SD of their classifier score; AUC "
            f"{self.auc:.3f}). Weights only multiply what was kept, so the reweighted shifts stay close to the raw "
            "ones; the filter removed a kind of item that the filtered set no longer contains."
        )

    def summary(self) -> dict:
        kept_weights = self.weights[self.weights > 0]
        quantiles = np.quantile(kept_weights, [0.0, 0.01, 0.5, 0.99, 1.0]) if len(kept_weights) else [0.0] * 5
        return {
            "method": "logistic regression, out-of-fold P(kept|x); weight = 1/P(kept|x), mean 1 over kept",
            "features": self.features,
            "C": self.regularisation,
            "clip": self.clip,
            "classifier_auc": self.auc,
            "effective_sample_size": self.effective_sample_size,
            "n_kept": self.n_kept,
            "held_out_words": list(self.held_out_words),
            "removed_without_kept_neighbour": self.removed_without_kept_neighbour,
            "identifiable": self.identifiable,
            "warning": self.warning,
            "weight_quantiles": dict(zip(["min", "p01", "median", "p99", "max"], map(float, quantiles))),
        }


def caption_features(index: DocTermIndex, min_count: int = 3, held_out: Iterable[str] = ()) -> sp.csr_matrix:
    """Binary caption × word matrix over words seen in at least `min_count` captions, except `held_out` words:
    a classifier that saw "woman" would repair the frequency of "woman" by construction, so the words an audit
    measures are left out and their repair is a measurement."""
    import scipy.sparse as sp

    counts = np.bincount(index.terms, minlength=len(index.vocabulary))
    eligible = counts >= min_count
    held = set(held_out)
    if held:
        eligible &= ~np.isin(np.asarray(index.vocabulary, dtype=object), list(held))
    frequent = np.flatnonzero(eligible)
    column = np.full(len(index.vocabulary), -1, dtype=np.int64)
    column[frequent] = np.arange(len(frequent))
    keep = column[index.terms] >= 0
    data = np.ones(int(keep.sum()), dtype=np.float32)
    return sp.csr_matrix((data, (index.rows[keep], column[index.terms[keep]])), shape=(index.n_docs, len(frequent)))


MAX_TRAIN_ROWS = 200_000
TRAIN_NONZEROS = 30_000_000  # design-matrix entries the classifier trains on: ~0.4 GB per copy the folds make
PREDICT_CHUNK = 100_000


def training_rows(n_rows: int, nonzeros_per_row: float, max_train_rows: int = MAX_TRAIN_ROWS) -> int:
    """Rows the classifier trains on: all up to `max_train_rows`, fewer when each row is wide (512-d embeddings
    add 512 entries to a row of ~10 caption words), so that memory stays bounded, and never below 20,000."""
    budget = int(TRAIN_NONZEROS / max(1.0, nonzeros_per_row))
    return min(n_rows, max_train_rows, max(20_000, budget))


def fit_weights(
    kept: np.ndarray,
    *,
    index: DocTermIndex | None = None,
    embeddings: np.ndarray | None = None,
    features: FeatureKind | None = None,
    regularisation: float = 1.0,
    clip: float | None = 20.0,
    folds: int = 5,
    seed: int = 0,
    max_train_rows: int = MAX_TRAIN_ROWS,
    held_out_words: Iterable[str] = (),
) -> Reweighting:
    """Fit the weak kept-classifier and return per-row weights (0 for removed rows).

    Beyond `max_train_rows` (fewer for wide rows: `training_rows`), the classifier is cross-fitted on a
    stratified sample of that size (out-of-fold probabilities for the sampled rows) and a model fitted on the
    whole sample scores the other rows, which it never saw: every probability is still out-of-sample, at a
    bounded cost.
    """
    from sklearn.metrics import roc_auc_score

    if features is None:
        features = (
            "both"
            if (embeddings is not None and index is not None)
            else ("embeddings" if embeddings is not None else "captions")
        )
    held_out_words = tuple(sorted(set(held_out_words)))
    captions = (
        caption_features(index, held_out=held_out_words)
        if features in ("captions", "both") and index is not None
        else None
    )
    n_removed = int((~kept).sum())
    if n_removed < folds or int(kept.sum()) < folds:
        raise AuditInputError(
            f"reweighting needs at least {folds} kept and {folds} removed items "
            f"(have {int(kept.sum())} kept, {n_removed} removed).",
            fix="reweighting only makes sense when the filter removed something.",
        )
    from sklearn.linear_model import LogisticRegression  # imported here: every CLI call would pay ~0.7 s for it
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    model = LogisticRegression(C=regularisation, max_iter=2000, solver="lbfgs")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    labels = kept.astype(int)
    width = (captions.nnz / max(1, captions.shape[0]) if captions is not None else 0.0) + (
        embeddings.shape[1] if features in ("embeddings", "both") and embeddings is not None else 0
    )
    max_train_rows = training_rows(len(kept), width, max_train_rows)
    if len(kept) <= max_train_rows:
        matrix = _design_matrix(features, captions, embeddings, np.arange(len(kept)))
        probability = cross_val_predict(model, matrix, labels, cv=splitter, method="predict_proba")[:, 1]
    else:
        from sklearn.model_selection import train_test_split

        sample, rest = train_test_split(
            np.arange(len(kept)), train_size=max_train_rows, stratify=labels, random_state=seed
        )
        sample, rest = np.sort(sample), np.sort(rest)
        probability = np.empty(len(kept), dtype=np.float64)
        matrix = _design_matrix(features, captions, embeddings, sample)
        probability[sample] = cross_val_predict(model, matrix, labels[sample], cv=splitter, method="predict_proba")[
            :, 1
        ]
        model.fit(matrix, labels[sample])
        for start in range(0, len(rest), PREDICT_CHUNK):  # bounded memory: the design matrix is built per chunk
            rows = rest[start : start + PREDICT_CHUNK]
            probability[rows] = _probability_kept(model, features, captions, embeddings, rows)
    weights = np.zeros(len(kept), dtype=np.float64)
    weights[kept] = 1.0 / np.clip(probability[kept], 1e-6, 1.0)
    weights[kept] /= weights[kept].mean()
    if clip is not None:
        weights[kept] = np.minimum(weights[kept], clip)
        weights[kept] /= weights[kept].mean()
    return Reweighting(
        weights,
        features,
        regularisation,
        clip,
        float(roc_auc_score(kept, probability)),
        effective_sample_size(weights[kept]),
        int(kept.sum()),
        held_out_words,
        removed_without_kept_neighbour(probability, kept),
    )


def removed_without_kept_neighbour(probability_kept: np.ndarray, kept: np.ndarray) -> float:
    """Share of removed items with no kept item within `CALIPER_SD` standard deviations of their logit of
    P(kept | x): the common-support check of propensity matching, in the one dimension the weights depend on."""
    logit = np.log(np.clip(probability_kept, 1e-9, 1.0)) - np.log(np.clip(1.0 - probability_kept, 1e-9, 1.0))
    removed, kept_logits = logit[~kept], np.sort(logit[kept])
    if len(removed) == 0 or len(kept_logits) == 0:
        return 0.0
    caliper = CALIPER_SD * float(logit.std())
    right = np.clip(np.searchsorted(kept_logits, removed), 0, len(kept_logits) - 1)
    left = np.clip(right - 1, 0, len(kept_logits) - 1)
    nearest = np.minimum(np.abs(kept_logits[right] - removed), np.abs(kept_logits[left] - removed))
    return float((nearest > caliper).mean())


def _probability_kept(
    model: LogisticRegression,
    features: FeatureKind,
    captions: sp.csr_matrix | None,
    embeddings: np.ndarray | None,
    rows: np.ndarray,
) -> np.ndarray:
    """P(kept) of `rows`, the caption and embedding parts scored apart and summed: no stacked sparse copy of a
    dense 512-d block (what made scoring a million rows cost gigabytes)."""
    from scipy.special import expit

    weights, score = model.coef_[0], np.full(len(rows), float(model.intercept_[0]))
    offset = 0
    if features in ("captions", "both"):
        assert captions is not None
        score += captions[rows] @ weights[: captions.shape[1]]
        offset = captions.shape[1]
    if features in ("embeddings", "both"):
        assert embeddings is not None
        score += np.asarray(embeddings[rows], dtype=np.float32) @ weights[offset:].astype(np.float32)
    return expit(score)


def _design_matrix(
    features: FeatureKind, captions: sp.csr_matrix | None, embeddings: np.ndarray | None, rows: np.ndarray
):
    """Features of `rows` only, so that a million rows never need one huge matrix."""
    import scipy.sparse as sp

    parts = []
    if features in ("captions", "both"):
        if captions is None:
            raise AuditInputError("caption features need captions.", fix="use --reweight-features embeddings.")
        parts.append(captions[rows])
    if features in ("embeddings", "both"):
        if embeddings is None:
            raise AuditInputError(
                "no embeddings for reweighting: run `pretrain-audit prepare DIR` first.",
                fix="or use caption features (--reweight-features captions).",
            )
        dense = np.asarray(embeddings[rows], dtype=np.float32)
        if not parts:
            return dense
        parts.append(sp.csr_matrix(dense))
    return parts[0] if len(parts) == 1 else sp.hstack(parts, format="csr")
