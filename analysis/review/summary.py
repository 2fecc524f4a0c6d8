"""What the review adds up to, for `verdicts --json`, the pages and the report: decisions, disagreements,
agreement per filter, every queue's stratified estimate, the reveals it took, and — kept apart and labelled —
precision from all verdicts, which is not a random sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.effects.removed import removed_by_filter
from analysis.review.agreement import Agreement, agreement_by_group
from analysis.review.queues import QueueEstimate, queue_estimate
from analysis.stats import judgeable, proportion_interval, verdicts_for_width
from analysis.verdicts.decisions import decide, decided, disagreements
from analysis.verdicts.store import VerdictStore
from analysis.workspace import Workspace

ALL_VERDICTS_CAVEAT = (
    "from every verdict given, in whatever order reviewers chose to judge: not a random sample, so biased "
    "towards what the gallery showed first; the queue estimates are the unbiased ones"
)


@dataclass(frozen=True)
class ReviewState:
    history: pd.DataFrame
    decisions: pd.DataFrame
    agreement: list[Agreement]
    queues: list[QueueEstimate]
    reveals: pd.DataFrame
    rule: str

    def to_json(self) -> dict:
        by_verdict = (
            self.decisions.dropna(subset=["verdict"]).groupby(["kind", "verdict"]).size().reset_index(name="items")
        )
        return {
            "n_verdicts": int(len(self.history)),
            "n_items": int(len(self.decisions)),
            "latest_by_verdict": by_verdict.to_dict("records"),
            "decision_rule": self.rule,
            "by_status": {str(k): int(v) for k, v in self.decisions["status"].value_counts().sort_index().items()},
            "disagreements": disagreements(self.decisions)[["kind", "item_id", "votes"]].to_dict("records"),
            "agreement": [a.to_json() for a in self.agreement],
            "queues": [q.to_json() for q in self.queues],
            "reveals": {
                "total": int(len(self.reveals)),
                "by_reviewer": {
                    str(k): int(v) for k, v in self.reveals["reviewer"].value_counts().sort_index().items()
                },
            },
        }


def agreement_groups(workspace: Workspace, kind: str) -> dict[str, set[str]] | None:
    """The item groups agreement is reported for: each filter's removals (and all of them), or None (all items)."""
    if kind != "removal" or not workspace.config.filtered.defined:
        return None
    removed = removed_by_filter(workspace)
    groups = {"all filters": set(removed["id"].astype(str))}
    groups.update({name: set(part["id"].astype(str)) for name, part in removed.groupby("filter", sort=True)})
    return groups


def review_state(workspace: Workspace, store: VerdictStore, kind: str | None = None) -> ReviewState:
    history = store.history(kind)
    rule = workspace.config.review.decision
    decisions = decide(history, rule)
    kinds = [kind] if kind else ["removal", "regurgitation"]
    found_agreement = [
        a
        for k in kinds
        if (history["kind"] == k).any()
        for a in agreement_by_group(history[history["kind"] == k], agreement_groups(workspace, k))
    ]
    return ReviewState(
        history, decisions, found_agreement, queue_estimates(store, decisions, kind), store.reveals(), rule
    )


def queue_estimates(store: VerdictStore, decisions: pd.DataFrame, kind: str | None = None) -> list[QueueEstimate]:
    """Every stored queue's estimate from these decisions, oldest queue first."""
    queues = store.queues(kind)
    return [
        queue_estimate(name, queue_kind, store.queue_items(name), decisions)
        for name, queue_kind in zip(queues["name"], queues["kind"])
    ]


def all_verdicts_precision(
    decisions: pd.DataFrame, removed: pd.DataFrame, *, bands: int = 4, target_width: float = 0.1
) -> pd.DataFrame:
    """Filter precision from every decided removal verdict, per filter and per score band (Clopper–Pearson 95%),
    `judgeable` False below the one count rule. Not a random sample (`ALL_VERDICTS_CAVEAT`).

    `removed` has one row per (removed item, filter that removed it): `id`, `filter`, `score`.
    Precision = correct removals / (correct + false positives); `unsure` verdicts are left out."""
    verdicts = decided(decisions, "removal")
    judged = removed.merge(verdicts[["item_id", "verdict"]], left_on="id", right_on="item_id", how="inner")
    judged = judged[judged["verdict"] != "unsure"]
    rows = []
    for filter_name, group in judged.groupby("filter", sort=True):
        edges = np.linspace(group["score"].min(), group["score"].max() + 1e-9, bands + 1) if len(group) else [0, 1]
        group = group.assign(band=pd.cut(group["score"], edges, include_lowest=True).astype(str))
        for band, part in [("all scores", group)] + list(group.groupby("band", sort=True)):
            correct, total = int((part["verdict"] == "correct removal").sum()), len(part)
            low, high = proportion_interval(correct, total)
            needed = verdicts_for_width(correct / total if total else 0.5, target_width)
            rows.append(
                {
                    "filter": filter_name,
                    "score_band": band,
                    "judged": total,
                    "correct": correct,
                    "precision": correct / total if total else np.nan,
                    "ci_low": low,
                    "ci_high": high,
                    "judgeable": judgeable(total),
                    f"more_verdicts_for_width_{target_width:g}": max(0, needed - total),
                }
            )
    return pd.DataFrame(rows)


def confirmed_copies(decisions: pd.DataFrame) -> tuple[int, int, tuple[float, float]]:
    """(copies, judged, Clopper–Pearson 95% interval of the share) among decided regurgitation verdicts other than
    "unsure"."""
    verdicts = decided(decisions, "regurgitation")
    judged = verdicts[verdicts["verdict"] != "unsure"]
    copies = int((judged["verdict"] == "copy").sum())
    return copies, len(judged), proportion_interval(copies, len(judged))
