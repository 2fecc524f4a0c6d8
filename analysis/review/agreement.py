"""How much reviewers agree, per filter: percent agreement and chance-corrected agreement — Cohen's κ when
exactly two reviewers judged the same items, Fleiss' κ when more did.

Percent agreement is the share of multiply-judged items on which every reviewer gave the same verdict, with a
Clopper–Pearson interval over items. κ's 95% interval is a percentile bootstrap over items (2,000 resamples,
fixed seed): items are the unit that was sampled, and the bootstrap needs no large-sample variance formula. Fleiss'
κ needs the same number of ratings per item, so it uses the items with the most common number of reviewers (≥ 2)
and says how many that is. Coverage of both intervals: `python -m bench.interval_coverage` (docs/analyses.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analysis.stats import judgeable, proportion_interval
from analysis.verdicts.decisions import reviewer_votes

BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Agreement:
    group: str  # a filter's name, "all filters" or "flagged samples"
    statistic: str  # "Cohen's kappa", "Fleiss' kappa" or "" when fewer than two reviewers judged an item
    n_items: int  # items judged by two or more reviewers
    n_reviewers: int
    percent_agreement: float | None
    percent_ci95: tuple[float, float]
    kappa: float | None
    kappa_ci95: tuple[float, float] | None
    n_items_kappa: int  # items κ is computed on (Fleiss: those with the modal number of reviewers)
    judgeable: bool

    def to_json(self) -> dict:
        payload = asdict(self)
        payload["percent_ci95"] = list(self.percent_ci95)
        payload["kappa_ci95"] = list(self.kappa_ci95) if self.kappa_ci95 else None
        return payload


def cohen_kappa(first: np.ndarray, second: np.ndarray) -> float | None:
    """κ = (p_o − p_e) / (1 − p_e) for two raters' category codes on the same items; None when p_e = 1."""
    return _cohen_from_one_hot(*_one_hot_pair(first, second))[0]


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' κ from an items × categories matrix of rating counts, every row summing to the same m ≥ 2."""
    return _fleiss(counts[None, ...])[0]


def _one_hot_pair(first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    categories = np.unique(np.concatenate([first, second]))
    return (first[:, None] == categories).astype(float)[None], (second[:, None] == categories).astype(float)[None]


def _cohen_from_one_hot(a: np.ndarray, b: np.ndarray) -> list[float | None]:
    """κ per resample; `a`, `b` are resamples × items × categories."""
    observed = (a * b).sum(axis=2).mean(axis=1)
    expected = (a.mean(axis=1) * b.mean(axis=1)).sum(axis=1)
    return [None if e >= 1 - 1e-12 else float((o - e) / (1 - e)) for o, e in zip(observed, expected)]


def _fleiss(counts: np.ndarray) -> list[float | None]:
    """κ per resample; `counts` is resamples × items × categories."""
    m = counts.sum(axis=2)[:, :1]
    per_item = ((counts**2).sum(axis=2) - m) / (m * (m - 1))
    observed = per_item.mean(axis=1)
    shares = counts.sum(axis=1) / counts.sum(axis=(1, 2))[:, None]
    expected = (shares**2).sum(axis=1)
    return [None if e >= 1 - 1e-12 else float((o - e) / (1 - e)) for o, e in zip(observed, expected)]


def _bootstrap(statistic, arrays: tuple[np.ndarray, ...], seed: int) -> tuple[float, float] | None:
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, BOOTSTRAP_RESAMPLES, 250):  # in blocks, so memory stays at 250 resamples
        index = rng.integers(0, n, size=(min(250, BOOTSTRAP_RESAMPLES - start), n))
        values += [v for v in statistic(*(array[index] for array in arrays)) if v is not None]
    if len(values) < BOOTSTRAP_RESAMPLES // 2:
        return None
    low, high = np.percentile(values, [2.5, 97.5])
    # Widened by t(n − 1) / z about the centre: the plain percentile interval holds the truth 89% of the time at
    # 10 items (bench/review_sampling.py); the t factor is the usual small-sample correction of a standard error.
    from scipy import stats as scipy_stats  # lazy: the CLI starts without scipy.stats

    widen = float(scipy_stats.t.ppf(0.975, max(n - 1, 1)) / scipy_stats.norm.ppf(0.975))
    centre = (low + high) / 2
    return float(max(-1.0, centre - (centre - low) * widen)), float(min(1.0, centre + (high - centre) * widen))


def agreement(votes: pd.DataFrame, group: str, seed: int = 0) -> Agreement:
    """Agreement among reviewers' latest verdicts (`reviewer_votes`) on the items of one group."""
    multi = votes.groupby("item_id").filter(lambda part: len(part) >= 2) if len(votes) else votes
    items = multi["item_id"].unique()
    reviewers = multi["reviewer"].unique()
    n_items = len(items)
    same = multi.groupby("item_id")["verdict"].nunique().eq(1).sum() if n_items else 0
    percent = float(same / n_items) if n_items else None
    kappa, interval, n_kappa, statistic = None, None, 0, ""
    if n_items and len(reviewers) == 2:
        statistic = "Cohen's kappa"
        table = multi.pivot(index="item_id", columns="reviewer", values="verdict")
        a, b = _one_hot_pair(table.iloc[:, 0].to_numpy(str), table.iloc[:, 1].to_numpy(str))
        kappa, n_kappa = _cohen_from_one_hot(a, b)[0], len(table)
        interval = _bootstrap(_cohen_from_one_hot, (a[0], b[0]), seed) if kappa is not None else None
    elif n_items:
        statistic = "Fleiss' kappa"
        counts = pd.crosstab(multi["item_id"], multi["verdict"])
        modal = int(counts.sum(axis=1).mode().iloc[0])
        matrix = counts[counts.sum(axis=1) == modal].to_numpy(float)
        kappa, n_kappa = _fleiss(matrix[None])[0], len(matrix)
        interval = _bootstrap(_fleiss, (matrix,), seed) if kappa is not None else None
    return Agreement(
        group=group,
        statistic=statistic,
        n_items=n_items,
        n_reviewers=len(reviewers),
        percent_agreement=percent,
        percent_ci95=proportion_interval(int(same), n_items),
        kappa=kappa,
        kappa_ci95=interval,
        n_items_kappa=n_kappa,
        judgeable=judgeable(n_kappa),
    )


def agreement_by_group(history: pd.DataFrame, groups: dict[str, set[str]] | None = None) -> list[Agreement]:
    """Agreement per group of items (per filter for removals); all judged items together when no groups."""
    votes = reviewer_votes(history)
    if groups is None:
        return [agreement(votes, "all items")]
    return [agreement(votes[votes["item_id"].isin(members)], name) for name, members in groups.items()]


def agreement_table(found: list[Agreement]) -> pd.DataFrame:
    """The readable table of the page and the report: one row per group, intervals beside their values."""

    def share(value: float | None, interval: tuple[float, float] | None) -> str:
        if value is None:
            return "—"
        return f"{value:.0%}" + (f" ({interval[0]:.0%}–{interval[1]:.0%})" if interval else "")

    def kappa(a: Agreement) -> str:
        if a.kappa is None:
            return "—"
        return f"{a.kappa:.2f}" + (f" ({a.kappa_ci95[0]:.2f}–{a.kappa_ci95[1]:.2f})" if a.kappa_ci95 else "")

    return pd.DataFrame(
        {
            "items": [a.group for a in found],
            "judged by 2+ reviewers": [a.n_items for a in found],
            "reviewers": [a.n_reviewers for a in found],
            "agreement (95% CI)": [share(a.percent_agreement, a.percent_ci95 if a.n_items else None) for a in found],
            "statistic": [a.statistic or "—" for a in found],
            "κ (95% CI)": [kappa(a) for a in found],
            "judgeable": ["yes" if a.judgeable else f"no: {a.n_items_kappa} item(s), 30 needed" for a in found],
        }
    )
