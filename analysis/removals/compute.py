"""What the filters removed: totals, per-filter counts and overlap, removal rate by caption term,
score distributions, the gallery's paging, and the threshold what-if sweep."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.captions import DocTermIndex, normalise_term
from analysis.errors import AuditInputError
from analysis.workspace import Workspace


@dataclass(frozen=True)
class FilterCount:
    name: str
    n_removed: int
    fraction_removed: float
    n_only_this: int  # removed by this filter and no other


@dataclass(frozen=True)
class RemovalSummary:
    n_original: int
    n_kept: int
    n_removed: int
    filters: list[FilterCount]

    @property
    def fraction_removed(self) -> float:
        return self.n_removed / self.n_original if self.n_original else 0.0

    def to_json(self) -> dict:
        return {
            "n_original": self.n_original,
            "n_kept": self.n_kept,
            "n_removed": self.n_removed,
            "fraction_removed": self.fraction_removed,
            "filters": [
                {
                    "name": f.name,
                    "n_removed": f.n_removed,
                    "fraction_removed": f.fraction_removed,
                    "n_only_this_filter": f.n_only_this,
                }
                for f in self.filters
            ],
        }


def removal_summary(workspace: Workspace) -> RemovalSummary:
    n = workspace.n_original
    masks = workspace.removed_by
    counts = np.sum(list(masks.values()), axis=0) if masks else np.zeros(n)
    filters = [
        FilterCount(name, int(mask.sum()), float(mask.mean()) if n else 0.0, int((mask & (counts == 1)).sum()))
        for name, mask in masks.items()
    ]
    return RemovalSummary(n, workspace.n_kept, workspace.n_removed, filters)


def filter_overlap(workspace: Workspace) -> pd.DataFrame:
    """Rows removed by both filters, for every pair (the diagonal is each filter's own count)."""
    names = list(workspace.removed_by)
    masks = np.array([workspace.removed_by[n] for n in names], dtype=np.int64)
    return pd.DataFrame(masks @ masks.T, index=names, columns=names)


def score_range(scores: np.ndarray) -> tuple[float, float]:
    """The axis of a score: [0, 1] for probabilities, else the range the data spans (similarities, 0–10 ratings).
    Rows without a score (NaN: an image a computed score could not read) are not on the axis."""
    scores = scores[np.isfinite(scores)]
    low, high = (float(scores.min()), float(scores.max())) if len(scores) else (0.0, 1.0)
    if low >= 0.0 and high <= 1.0:
        return 0.0, 1.0
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def score_histogram(scores: np.ndarray, kept: np.ndarray, bins: int = 40) -> pd.DataFrame:
    """Counts of kept and removed rows per score bin over the score's range (aggregated: draws fast at any size)."""
    edges = np.linspace(*score_range(scores), bins + 1)
    scored = np.isfinite(scores)
    kept_counts, _ = np.histogram(scores[kept & scored], bins=edges)
    removed_counts, _ = np.histogram(scores[~kept & scored], bins=edges)
    return pd.DataFrame({"bin_start": edges[:-1], "bin_end": edges[1:], "kept": kept_counts, "removed": removed_counts})


def threshold_sweep(
    workspace: Workspace,
    index: DocTermIndex,
    filter_name: str,
    terms: Iterable[str],
    thresholds: np.ndarray | None = None,
) -> pd.DataFrame:
    """What-if for one score filter: fraction removed and term relative changes at each threshold.

    The other filters stay at their configured thresholds. Vectorised with sorted scores and
    binary search, so a sweep over a million rows is interactive.
    """
    spec = {f.name: f for f in workspace.config.filtered.scores}
    if filter_name not in spec:
        raise AuditInputError(
            f"no score filter named '{filter_name}' (have: {', '.join(spec) or 'none'}).",
            fix="threshold what-ifs need score filters defined in audit.toml.",
        )
    varied = spec[filter_name]
    scores = workspace.original[varied.column].to_numpy(dtype=np.float64)
    others = [m for name, m in workspace.removed_by.items() if name != filter_name]
    removed_by_others = np.logical_or.reduce(others) if others else np.zeros(len(scores), dtype=bool)
    scored = np.isfinite(scores)  # a row without a score is never removed by its threshold
    if thresholds is None:
        low, high = score_range(scores)
        thresholds = np.round(np.linspace(low + (high - low) * 0.05, high, 96), 4)
    n = len(scores)

    def removed_count(mask: np.ndarray) -> np.ndarray:
        free = np.sort(scores[mask & ~removed_by_others & scored])
        if varied.removed_when == "<":
            by_threshold = np.searchsorted(free, thresholds, side="left")
        else:
            by_threshold = len(free) - np.searchsorted(free, thresholds, side="left")
        return (mask & removed_by_others).sum() + by_threshold

    everything = np.ones(n, dtype=bool)
    n_removed = removed_count(everything)
    frame = pd.DataFrame({"threshold": thresholds, "n_removed": n_removed, "fraction_removed": n_removed / n})
    n_kept = n - n_removed
    for raw in terms:
        term = normalise_term(raw)
        contains = index.docs_containing([term])
        total = int(contains.sum())
        term_kept = total - removed_count(contains)
        with np.errstate(divide="ignore", invalid="ignore"):
            frame[f"change_{term}"] = (term_kept / n_kept) / (total / n) - 1 if total else np.nan
    return frame


def removed_positions(
    workspace: Workspace,
    *,
    index: DocTermIndex | None = None,
    filter_name: str | None = None,
    words: Iterable[str] = (),
    sort_by: str | None = None,
    descending: bool = True,
) -> np.ndarray:
    """Row positions of the removed rows matching a filter and caption words, in gallery order."""
    mask = ~workspace.kept
    if filter_name:
        if filter_name not in workspace.removed_by:
            raise AuditInputError(f"unknown filter '{filter_name}'.", fix=f"use one of {list(workspace.removed_by)}.")
        mask = mask & workspace.removed_by[filter_name]
    words = [normalise_term(w) for w in words if w.strip()]
    if words:
        if index is None:
            raise ValueError("a caption index is needed to filter by words")
        for word in words:  # every word must appear
            mask = mask & index.docs_containing([word])
    positions = np.flatnonzero(mask)
    if sort_by and sort_by in workspace.original.columns:
        values = workspace.original[sort_by].to_numpy()[positions]
        order = np.argsort(-values if descending else values, kind="stable")
        positions = positions[order]
    return positions


def page_rows(workspace: Workspace, positions: np.ndarray, page: int, page_size: int) -> pd.DataFrame:
    """The rows of one gallery page, with the filters that removed each; other pages are never touched."""
    chosen = positions[page * page_size : (page + 1) * page_size]
    frame = workspace.original.iloc[chosen].copy()
    frame["removed_by"] = [", ".join(name for name, m in workspace.removed_by.items() if m[i]) for i in chosen]
    return frame


def removed_page(
    workspace: Workspace, *, page: int = 0, page_size: int = 24, **selection: Any
) -> tuple[pd.DataFrame, int]:
    """One page of removed rows and the total matching; `selection` as for `removed_positions`."""
    positions = removed_positions(workspace, **selection)
    return page_rows(workspace, positions, page, page_size), len(positions)
