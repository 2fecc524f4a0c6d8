"""Seed candidates: where a filter's first labels come from before there is a model to ask."""

from __future__ import annotations

import numpy as np

from analysis.captions import DocTermIndex
from analysis.errors import AuditInputError
from analysis.filters.definition import check_score_columns
from analysis.filters.model import Features, nearest, similar_to
from analysis.workspace import Workspace


def by_caption_words(index: DocTermIndex, features: Features, words: list[str], n: int, seed: int = 0) -> np.ndarray:
    """A random draw of `n` images whose caption contains any of `words` (random, so the seeds are not all the
    same kind of caption)."""
    found = np.flatnonzero(index.docs_containing([w.strip().casefold() for w in words if w.strip()]) & features.valid)
    if len(found) == 0:
        raise AuditInputError(f"no caption contains any of {words}.", fix="try other words (single words).")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(found, size=min(n, len(found)), replace=False))


def like(features: Features, anchors: np.ndarray, n: int) -> np.ndarray:
    """The `n` images nearest (cosine) to any of the chosen images."""
    if not features.valid[anchors].all():
        raise AuditInputError(
            "some of the chosen images have no embedding.", fix="choose images that `prepare` embedded."
        )
    exclude = np.zeros(features.n_rows, dtype=bool)
    exclude[anchors] = True
    return similar_to(features, anchors, exclude, n)


def by_score_band(
    workspace: Workspace, features: Features, column: str, low: float, high: float, n: int, seed: int = 0
) -> np.ndarray:
    """A random draw of `n` images whose `column` lies in [low, high]."""
    check_score_columns(workspace, [column])
    values = workspace.original[column].to_numpy(dtype=np.float64)
    found = np.flatnonzero((values >= low) & (values <= high) & features.valid)
    if len(found) == 0:
        raise AuditInputError(f"no image has {column} in [{low}, {high}].", fix="widen the band.")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(found, size=min(n, len(found)), replace=False))


def by_text(text_vector: np.ndarray | None, features: Features, n: int) -> np.ndarray:
    """The `n` images nearest to a text prompt's embedding; only embedders with a text tower (open_clip) have one."""
    if text_vector is None:
        raise AuditInputError(
            "this workspace's embedder has no text tower, so a text prompt cannot find images.",
            fix="seed by caption words, by chosen images or by a score band, or prepare with an open_clip embedder.",
        )
    return nearest(features, np.asarray(text_vector)[None, :], np.zeros(features.n_rows, dtype=bool), n)
