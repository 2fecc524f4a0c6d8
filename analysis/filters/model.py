"""The filter's classifier: logistic regression on standardised image embeddings (plus optional score columns),
cross-validated; weights kept as plain arrays (`weights.npz`, never a pickle) so that anyone can apply them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.cache import atomic_save_npz
from analysis.embedding_store import EmbeddingSet

CHUNK_ROWS = 65_536
SCALER_SAMPLE = 20_000
# Inverse regularisation strength on standardised features: chosen on the tuning half of Caltech-101 by
# `python -m bench.filter_builder` (docs/filter_builder.json, "c_chosen"; C = 0.01 to 1 were within 7 points there).
DEFAULT_C = 0.01
MIN_PER_CLASS = 2


@dataclass
class Features:
    """What the classifier sees for each row: the embedding (standardised with the population's mean and scale,
    estimated on a fixed random sample) and extra score columns (standardised likewise). Rows without an
    embedding have no features (`valid` False) and no score."""

    embeddings: np.ndarray  # memory map, n × d (float16)
    extra: np.ndarray  # n × e (float64), NaN → column mean
    valid: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    names: tuple[str, ...]

    @property
    def n_rows(self) -> int:
        return len(self.valid)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.int64)
        raw = np.hstack([self.embeddings[positions].astype(np.float32), self.extra[positions].astype(np.float32)])
        return (raw - self.mean) / self.scale


def build_features(embedded: EmbeddingSet, extra_columns: dict[str, np.ndarray], seed: int = 0) -> Features:
    mapped = embedded.mapped
    extra = np.column_stack([extra_columns[c] for c in extra_columns]) if extra_columns else np.zeros((len(mapped), 0))
    extra = extra.astype(np.float64)
    if extra.shape[1]:
        extra = np.where(np.isfinite(extra), extra, np.nanmean(np.where(np.isfinite(extra), extra, np.nan), axis=0))
    valid_rows = np.flatnonzero(embedded.valid)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(valid_rows, size=min(SCALER_SAMPLE, len(valid_rows)), replace=False))
    raw = np.hstack([mapped[sample].astype(np.float32), extra[sample].astype(np.float32)])
    mean = raw.mean(axis=0)
    scale = raw.std(axis=0)
    scale[scale < 1e-6] = 1.0
    names = tuple(f"embedding[{i}]" for i in range(mapped.shape[1])) + tuple(extra_columns)
    return Features(mapped, extra, embedded.valid.copy(), mean.astype(np.float32), scale.astype(np.float32), names)


@dataclass
class LinearModel:
    coef: np.ndarray
    intercept: float
    mean: np.ndarray
    scale: np.ndarray

    def probabilities(self, standardised: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(standardised @ self.coef + self.intercept)))

    def save(self, path: Path, names: tuple[str, ...]) -> None:
        atomic_save_npz(
            path,
            {
                "coef": self.coef,
                "intercept": np.float64(self.intercept),
                "mean": self.mean,
                "scale": self.scale,
                "feature_names": np.array(names, dtype=str),
            },
        )

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        with np.load(path, allow_pickle=False) as arrays:
            return cls(arrays["coef"], float(arrays["intercept"]), arrays["mean"], arrays["scale"])


def can_fit(y: np.ndarray) -> bool:
    return int(y.sum()) >= MIN_PER_CLASS and int((~y).sum()) >= MIN_PER_CLASS


def fit(x: np.ndarray, y: np.ndarray, features: Features, c: float = DEFAULT_C) -> LinearModel:
    from sklearn.linear_model import LogisticRegression  # imported here: every CLI call would pay ~0.7 s for it

    classifier = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    classifier.fit(x, y)
    return LinearModel(
        classifier.coef_[0].astype(np.float64), float(classifier.intercept_[0]), features.mean, features.scale
    )


def cross_validated(
    x: np.ndarray, y: np.ndarray, features: Features, c: float = DEFAULT_C, seed: int = 0
) -> np.ndarray:
    """Out-of-fold probabilities for the labelled rows (up to 5 stratified folds): the honest score of each
    labelled image, from a model that did not see its label."""
    folds = min(5, int(y.sum()), int((~y).sum()))
    scores = np.empty(len(y))
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y):
        scores[test] = fit(x[train], y[train], features, c).probabilities(x[test])
    return scores


def score_all(model: LinearModel, features: Features) -> np.ndarray:
    """Probabilities for every row (NaN where there is no embedding), reading the memory map in chunks."""
    scores = np.full(features.n_rows, np.nan, dtype=np.float32)
    valid = np.flatnonzero(features.valid)
    for start in range(0, len(valid), CHUNK_ROWS):
        positions = valid[start : start + CHUNK_ROWS]
        scores[positions] = model.probabilities(features.rows(positions))
    return scores


def similar_to(features: Features, anchors: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
    """The `k` rows most similar (cosine of the embeddings) to any anchor row, among valid rows not excluded."""
    if len(anchors) == 0:
        return np.zeros(0, dtype=np.int64)
    return nearest(features, features.embeddings[np.asarray(anchors)].astype(np.float32), exclude, k)


def nearest(features: Features, queries: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
    """The `k` valid, not excluded rows with the highest cosine to any of `queries` (embeddings of chosen images,
    or a prompt's text embedding), reading the memory map in chunks."""
    if k <= 0 or len(queries) == 0:
        return np.zeros(0, dtype=np.int64)
    queries = queries.astype(np.float32)
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    best = np.full(features.n_rows, -np.inf, dtype=np.float32)
    valid = np.flatnonzero(features.valid & ~exclude)
    for start in range(0, len(valid), CHUNK_ROWS):
        positions = valid[start : start + CHUNK_ROWS]
        block = features.embeddings[positions].astype(np.float32)
        block /= np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        best[positions] = (block @ queries.T).max(axis=1)
    return valid[np.argsort(-best[valid], kind="stable")[:k]]
