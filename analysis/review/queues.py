"""Review queues by design: a stratified random sample of what a filter removed (or of the flagged generated
samples), with each item's inclusion probability, so that precision is estimated without the bias of whatever a
reviewer chose to open in a gallery sorted by score.

Strata are score bands of equal size (the score is the filter's classifier score, or a flagged sample's
similarity), since precision changes with the score; the sample is allocated to them in proportion to their size
(largest remainders, at least two per stratum where the queue allows, so each stratum has a variance), drawn
without replacement, and shuffled so the queue's order reveals no score.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from analysis.errors import AuditInputError
from analysis.stats import STRATIFIED_METHOD, judgeable, stratified_proportion
from analysis.verdicts.store import POSITIVE_VERDICT, VerdictStore

Strata = Literal["score-band", "none"]
STRATA: tuple[Strata, ...] = ("score-band", "none")
DEFAULT_BANDS = 4


def score_bands(scores: np.ndarray, bands: int) -> np.ndarray:
    """A label per item: equal-count bands of the score, named by their score range."""
    if len(scores) == 0:
        return np.array([], dtype=object)
    ranks = pd.Series(scores).rank(method="first").to_numpy() - 1
    band = np.minimum((ranks * bands // len(scores)).astype(int), bands - 1)
    labels = np.empty(len(scores), dtype=object)
    for b in np.unique(band):
        members = scores[band == b]
        labels[band == b] = f"{b + 1}: {members.min():.3f}–{members.max():.3f}"
    return labels


def allocate(sizes: np.ndarray, n: int) -> np.ndarray:
    """Items per stratum: proportional to size by largest remainders, at least min(2, size) each when n allows."""
    n = min(n, int(sizes.sum()))
    floor = np.minimum(sizes, 2 if n >= 2 * len(sizes) else 1 if n >= len(sizes) else 0)
    share = sizes / sizes.sum() * n
    counts = np.maximum(np.floor(share).astype(int), floor)
    while counts.sum() > n:  # the floors overshot: take from the stratum furthest above its share
        over = np.where(counts > floor, counts - share, -np.inf)
        counts[int(np.argmax(over))] -= 1
    while counts.sum() < n:  # hand out the rest by largest remainder, never beyond a stratum's size
        room = np.where(counts < sizes, share - counts, -np.inf)
        counts[int(np.argmax(room))] += 1
    return counts


def draw_queue(population: pd.DataFrame, n: int, strata: Strata, bands: int, seed: int) -> pd.DataFrame:
    """position, item_id, stratum, stratum_size, stratum_sampled, inclusion_probability for a sample of `n` of
    `population` (`id`, `score`)."""
    if n < 1:
        raise AuditInputError(f"a review queue needs at least one item (--n {n}).", fix="use --n 1 or more.")
    if population.empty:
        raise AuditInputError("there is nothing to review: the population is empty.", fix="choose another filter.")
    population = population.drop_duplicates("id").reset_index(drop=True)
    labels = (
        score_bands(population["score"].to_numpy(float), bands)
        if strata == "score-band"
        else np.full(len(population), "all", dtype=object)
    )
    names, sizes = np.unique(labels, return_counts=True)
    counts = allocate(sizes, n)
    rng = np.random.default_rng(seed)
    parts = []
    for name, size, count in zip(names, sizes, counts):
        members = np.flatnonzero(labels == name)
        chosen = rng.choice(members, size=int(count), replace=False)
        parts.append(
            pd.DataFrame(
                {
                    "item_id": population["id"].to_numpy(str)[chosen],
                    "stratum": name,
                    "stratum_size": int(size),
                    "stratum_sampled": int(count),
                    "inclusion_probability": count / size,
                }
            )
        )
    items = pd.concat(parts, ignore_index=True)
    items = items.iloc[rng.permutation(len(items))].reset_index(drop=True)
    return items.assign(position=np.arange(len(items)))


@dataclass(frozen=True)
class QueueRequest:
    kind: str  # "removal" or "regurgitation"
    population: str  # "filter NAME", "all filters" or "flagged samples"
    n: int
    strata: Strata = "score-band"
    bands: int = DEFAULT_BANDS
    seed: int = 0

    @property
    def name(self) -> str:
        strata = f"{self.strata}{self.bands}" if self.strata == "score-band" else self.strata
        return f"{self.kind}: {self.population} · n={self.n} · {strata} · seed {self.seed}"


def open_queue(store: VerdictStore, request: QueueRequest, population: pd.DataFrame) -> pd.DataFrame:
    """The queue this request names: drawn and stored the first time, read back after (the same seed and the same
    population give the same queue, and a stored queue never changes, so its verdicts keep their weights)."""
    existing = store.queues(request.kind)
    if request.name not in set(existing["name"]):
        items = draw_queue(population, request.n, request.strata, request.bands, request.seed)
        store.save_queue(
            {
                "name": request.name,
                "kind": request.kind,
                "population": request.population,
                "strata": request.strata if request.strata == "none" else f"{request.strata}:{request.bands}",
                "seed": request.seed,
                "n_requested": request.n,
                "created_at": time.time(),
            },
            items,
        )
    return store.queue_items(request.name)


@dataclass(frozen=True)
class QueueEstimate:
    """What a queue's verdicts say: the positive share (a filter's precision, or the share of flagged samples that
    are real copies) over the population the queue was drawn from, with its interval and progress."""

    queue: str
    kind: str
    size: int
    decided: int  # queue items with a decision other than "unsure"
    unsure: int
    disputed: int  # reviewers disagree and no adjudicator has decided yet
    pending: int  # not judged yet
    estimate: float | None
    ci95: tuple[float, float]
    effective_n: float
    strata: pd.DataFrame  # stratum, stratum_size, sampled, decided, positive, share
    strata_unjudged: int
    method: str = STRATIFIED_METHOD

    @property
    def judgeable(self) -> bool:
        return judgeable(self.decided)

    def to_json(self) -> dict:
        return {
            "queue": self.queue,
            "kind": self.kind,
            "size": self.size,
            "decided": self.decided,
            "unsure": self.unsure,
            "disputed": self.disputed,
            "pending": self.pending,
            "estimate": self.estimate,
            "ci95": list(self.ci95),
            "effective_n": round(self.effective_n, 1),
            "judgeable": self.judgeable,
            "strata_unjudged": self.strata_unjudged,
            "method": self.method,
            "strata": self.strata.astype(object).where(self.strata.notna(), None).to_dict("records"),
        }


def queue_estimate(queue: str, kind: str, items: pd.DataFrame, decisions: pd.DataFrame) -> QueueEstimate:
    """The stratified estimate from the decisions (`analysis.verdicts.decisions.decide`) on a queue's items; verdicts
    on items outside the queue do not enter it."""
    mine = decisions[decisions["kind"] == kind].set_index("item_id")
    joined = items.assign(
        verdict=items["item_id"].map(mine["verdict"]) if len(mine) else None,
        status=items["item_id"].map(mine["status"]) if len(mine) else None,
    )
    usable = joined["verdict"].notna() & (joined["verdict"] != "unsure")
    joined = joined.assign(decided=usable, positive=usable & (joined["verdict"] == POSITIVE_VERDICT[kind]))
    per_stratum = (
        joined.groupby("stratum", sort=True)
        .agg(
            stratum_size=("stratum_size", "first"),
            sampled=("item_id", "size"),
            decided=("decided", "sum"),
            positive=("positive", "sum"),
        )
        .reset_index()
    )
    per_stratum["share"] = per_stratum["positive"] / per_stratum["decided"].where(per_stratum["decided"] > 0)
    estimate, interval, effective = stratified_proportion(
        per_stratum["positive"].to_numpy(), per_stratum["decided"].to_numpy(), per_stratum["stratum_size"].to_numpy()
    )
    return QueueEstimate(
        queue=queue,
        kind=kind,
        size=len(items),
        decided=int(usable.sum()),
        unsure=int((joined["verdict"] == "unsure").sum()),
        disputed=int((joined["status"] == "disagreement").sum()),
        pending=int(joined["status"].isna().sum()),
        estimate=estimate,
        ci95=interval,
        effective_n=effective,
        strata=per_stratum,
        strata_unjudged=int((per_stratum["decided"] == 0).sum()),
    )


def queue_table(estimates: list[QueueEstimate]) -> pd.DataFrame:
    """The readable table of queue estimates (report): progress, the estimate with its interval, judgeable."""

    def value(e: QueueEstimate) -> str:
        if e.estimate is None:
            return "—"
        return f"{e.estimate:.1%} ({e.ci95[0]:.1%}–{e.ci95[1]:.1%})"

    return pd.DataFrame(
        {
            "queue": [e.queue for e in estimates],
            "decided": [f"{e.decided} of {e.size}" for e in estimates],
            "pending": [e.pending for e in estimates],
            "disputed": [e.disputed for e in estimates],
            "unsure": [e.unsure for e in estimates],
            "positive share (95% CI)": [value(e) for e in estimates],
            "judgeable": ["yes" if e.judgeable else f"no: {e.decided} decided, 30 needed" for e in estimates],
        }
    )
