"""What a removal does to captions: how the frequency of words and word groups shifted, and the share of
captions with each term that it removed. Any removed set is measured this way: the safety filters (the `bias`
and `removals` analyses), deduplication's keep-list (`dedup`), and a filter before it is applied (the filter
builder's preview).

Frequency is document frequency: the share of captions that contain the term at least once.
Relative change = filtered frequency / original frequency − 1 (DALL·E 2's "woman −14%").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from analysis.captions import DocTermIndex, build_index, normalise_term
from analysis.errors import AuditInputError
from analysis.stats import (
    CHANGE_METHOD,
    judgeable,
    proportion_interval,
    relative_change_interval,
    reweighted_change_interval,
)

FREQUENCY_DEFINITION = "share of captions containing the term at least once (document frequency)"
CI_METHOD = CHANGE_METHOD


def term_label(name: str, is_group: bool) -> str:
    """How charts and tables name a term or group: “woman”, group: women (a group may share a term's name)."""
    return f"group: {name}" if is_group else f"“{name}”"


@dataclass(frozen=True)
class TermShift:
    """One term (or group) in the original, filtered and (optionally) reweighted caption sets."""

    name: str
    members: tuple[str, ...]
    original_count: int
    original_frequency: float
    filtered_count: int
    filtered_frequency: float
    relative_change: float | None
    ci95: tuple[float, float] | None
    removal_rate: float | None  # share of the captions containing the term that the filters removed
    reweighted_frequency: float | None = None
    reweighted_change: float | None = None
    kind: str = "term"  # or "group"
    reweighted_ci95: tuple[float, float] | None = None
    held_out: bool | None = None  # reweighted: were its words left out of the classifier's caption features?

    @property
    def label(self) -> str:
        return term_label(self.name, self.kind == "group")

    @property
    def judgeable(self) -> bool:
        """Enough captions with the term to rank its shift and to gate on it (`analysis.stats.judgeable`)."""
        return judgeable(self.original_count)

    def to_json(self, key: str = "term") -> dict:
        payload: dict[str, Any] = {
            key: self.name,
            "original": {"count": self.original_count, "frequency": self.original_frequency},
            "filtered": {"count": self.filtered_count, "frequency": self.filtered_frequency},
            "relative_change": self.relative_change,
            "ci95": list(self.ci95) if self.ci95 else None,
            "judgeable": self.judgeable,
            "removal_rate": self.removal_rate,
            "reweighted": None
            if self.reweighted_frequency is None
            else {
                "frequency": self.reweighted_frequency,
                "relative_change": self.reweighted_change,
                "ci95": list(self.reweighted_ci95) if self.reweighted_ci95 else None,
                "held_out": self.held_out,
            },
        }
        if key == "group":
            payload["members"] = [str(member) for member in self.members]
        return payload


def shift_for_mask(
    name: str,
    members: tuple[str, ...],
    contains: np.ndarray,
    kept: np.ndarray,
    weights: np.ndarray | None = None,
    seed: int = 0,
    held_out_words: Iterable[str] = (),
) -> TermShift:
    """The shift of one term given the captions that contain it (`contains`) and what was kept."""
    n, n_kept = len(kept), int(kept.sum())
    term_kept = int((contains & kept).sum())
    term_total = int(contains.sum())
    shift = shift_from_counts(name, members, term_total, term_kept, n, n_kept, seed)
    if weights is None:
        return shift
    kept_weights = weights[kept]
    reweighted_frequency = float(kept_weights[contains[kept]].sum() / kept_weights.sum())
    return replace(
        shift,
        reweighted_frequency=reweighted_frequency,
        reweighted_change=reweighted_frequency / shift.original_frequency - 1 if term_total else None,
        reweighted_ci95=reweighted_change_interval(
            kept_weights[contains[kept]] / kept_weights.mean(),
            term_total - term_kept,
            n_kept,
            n - n_kept,
            (float(kept_weights.min() / kept_weights.mean()), float(kept_weights.max() / kept_weights.mean())),
            seed=seed,
        ),
        held_out=set(members) <= set(held_out_words),
    )


def shift_from_counts(
    name: str, members: tuple[str, ...], term_total: int, term_kept: int, n: int, n_kept: int, seed: int = 0
) -> TermShift:
    """The shift of one term from four counts: captions, kept captions, and those of them with the term. Counts
    add up across partitions of the captions, so a distributed run gives the same shift."""
    original_frequency = term_total / n if n else 0.0
    filtered_frequency = term_kept / n_kept if n_kept else 0.0
    return TermShift(
        name,
        members,
        term_total,
        original_frequency,
        term_kept,
        filtered_frequency,
        filtered_frequency / original_frequency - 1 if term_total else None,
        relative_change_interval(
            term_kept, term_total - term_kept, n_kept - term_kept, n - n_kept - (term_total - term_kept), seed=seed
        ),
        (term_total - term_kept) / term_total if term_total else None,
    )


@dataclass(frozen=True)
class CaptionCounts:
    """Per term and per group: captions containing it, and how many of them were kept (one partition's, or the
    sum of all partitions')."""

    n: int
    n_kept: int
    terms: dict[str, tuple[int, int]]
    groups: dict[str, tuple[int, int]]

    def __add__(self, other: CaptionCounts) -> CaptionCounts:
        def add(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
            return {key: (a[key][0] + b[key][0], a[key][1] + b[key][1]) for key in a}

        return CaptionCounts(
            self.n + other.n, self.n_kept + other.n_kept, add(self.terms, other.terms), add(self.groups, other.groups)
        )


def count_captions(
    captions: Sequence[str], kept: np.ndarray, terms: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> CaptionCounts:
    """The counts behind every term and group shift, for one partition of the captions (a Dask task)."""
    index = build_index(list(captions))

    def counts(words: Iterable[str]) -> tuple[int, int]:
        contains = index.docs_containing([normalise_term(w) for w in words])
        return int(contains.sum()), int((contains & kept).sum())

    return CaptionCounts(
        len(kept),
        int(kept.sum()),
        {normalise_term(t): counts([t]) for t in terms},
        {name: counts(members) for name, members in groups.items()},
    )


def report_from_counts(counts: CaptionCounts, groups: Mapping[str, Iterable[str]]) -> BiasReport:
    """The bias report (without reweighting) from summed counts: what `bias_report` gives on the same captions."""
    return BiasReport(
        counts.n,
        counts.n_kept,
        [shift_from_counts(t, (t,), *pair, counts.n, counts.n_kept) for t, pair in counts.terms.items()],
        [
            replace(
                shift_from_counts(name, tuple(normalise_term(m) for m in groups[name]), *pair, counts.n, counts.n_kept),
                kind="group",
            )
            for name, pair in counts.groups.items()
        ],
        None,
    )


def term_shifts(
    index: DocTermIndex,
    kept: np.ndarray,
    terms: Iterable[str],
    weights: np.ndarray | None = None,
    held_out_words: Iterable[str] = (),
) -> list[TermShift]:
    """Per-term shifts. Terms must be single words (the unit of the definition); unknown words count zero."""
    shifts = []
    for raw in terms:
        term = normalise_term(raw)
        check_single_word(term)
        shifts.append(
            shift_for_mask(term, (term,), index.docs_containing([term]), kept, weights, held_out_words=held_out_words)
        )
    return shifts


def group_shifts(
    index: DocTermIndex,
    kept: np.ndarray,
    groups: Mapping[str, Iterable[str]],
    weights: np.ndarray | None = None,
    held_out_words: Iterable[str] = (),
) -> list[TermShift]:
    """Per-group shifts: a caption counts once for a group if it contains any member."""
    shifts = []
    for name, raw_members in groups.items():
        members = tuple(normalise_term(m) for m in raw_members)
        for member in members:
            check_single_word(member)
        shifts.append(
            replace(
                shift_for_mask(
                    name, members, index.docs_containing(members), kept, weights, held_out_words=held_out_words
                ),
                kind="group",
            )
        )
    return shifts


@dataclass(frozen=True)
class BiasReport:
    n_original: int
    n_filtered: int
    terms: list[TermShift]
    groups: list[TermShift]
    reweighting: dict | None = None

    def to_json(self) -> dict:
        payload = {
            "n_original": self.n_original,
            "n_filtered": self.n_filtered,
            "frequency_definition": FREQUENCY_DEFINITION,
            "ci_method": CI_METHOD,
            "terms": [t.to_json("term") for t in self.terms],
            "groups": [g.to_json("group") for g in self.groups],
        }
        if self.reweighting is not None:
            payload["reweighting"] = self.reweighting
        return _finite(payload)


def _finite(value):
    """JSON has no NaN: non-finite floats become null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def bias_report(
    index: DocTermIndex,
    kept: np.ndarray,
    terms: Iterable[str],
    groups: Mapping[str, Iterable[str]],
    weights: np.ndarray | None = None,
    reweighting: dict | None = None,
) -> BiasReport:
    held_out = (reweighting or {}).get("held_out_words", [])
    return BiasReport(
        index.n_docs,
        int(kept.sum()),
        term_shifts(index, kept, terms, weights, held_out),
        group_shifts(index, kept, groups, weights, held_out),
        reweighting,
    )


def check_single_word(term: str) -> None:
    import re

    if not term or not re.fullmatch(r"[^\W_]+", term):
        raise AuditInputError(
            f"term {term!r} is not a single word (letters or digits only).",
            fix="give words such as woman,man; use a group for several words.",
        )


def removal_by_terms(
    index: DocTermIndex, kept: np.ndarray, terms: Iterable[str], groups: Mapping[str, Iterable[str]] | None = None
) -> pd.DataFrame:
    """Share of captions with each term (or group) that the filters removed, with a Clopper–Pearson 95%
    interval; `judgeable` is False below the one count rule (`analysis.stats.judgeable`)."""
    entries: list[tuple[str, str, tuple[str, ...]]] = [("term", normalise_term(t), (normalise_term(t),)) for t in terms]
    entries += [("group", name, tuple(normalise_term(m) for m in members)) for name, members in (groups or {}).items()]
    rows = []
    for kind, name, members in entries:
        contains = index.docs_containing(members)
        total, removed = int(contains.sum()), int((contains & ~kept).sum())
        low, high = proportion_interval(removed, total)
        rows.append(
            {
                "kind": kind,
                "name": name,
                "captions": total,
                "removed": removed,
                "removal_rate": removed / total if total else np.nan,
                "ci_low": low,
                "ci_high": high,
                "judgeable": judgeable(total),
            }
        )
    overall_removed = int((~kept).sum())
    low, high = proportion_interval(overall_removed, len(kept))
    rows.append(
        {
            "kind": "all",
            "name": "all captions",
            "captions": len(kept),
            "removed": overall_removed,
            "removal_rate": overall_removed / len(kept) if len(kept) else np.nan,
            "ci_low": low,
            "ci_high": high,
            "judgeable": judgeable(len(kept)),
        }
    )
    return pd.DataFrame(rows)
