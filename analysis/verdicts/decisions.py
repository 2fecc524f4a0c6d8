"""From verdicts to decisions: each reviewer's latest verdict is their vote, an adjudicator's latest verdict is
final, and otherwise a stated rule decides. Nothing is erased: a disagreement stays visible, with every vote,
until an adjudicator resolves it.

Rules (`[review] decision` in audit.toml):
- `unanimous` (default): the reviewers who judged the item all gave the same verdict;
- `majority`: more than half of them gave it (two reviewers who differ are a disagreement under both rules).
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

DecisionRule = Literal["unanimous", "majority"]
DECISION_RULES: tuple[DecisionRule, ...] = ("unanimous", "majority")
DECISION_COLUMNS = ["kind", "item_id", "verdict", "status", "n_reviewers", "votes"]


def reviewer_votes(history: pd.DataFrame) -> pd.DataFrame:
    """One row per (kind, item, reviewer): that reviewer's latest verdict, adjudications left out."""
    votes = history[history["role"] != "adjudicator"]
    return votes.drop_duplicates(["kind", "item_id", "reviewer"], keep="last").reset_index(drop=True)


def decide(history: pd.DataFrame, rule: DecisionRule = "unanimous") -> pd.DataFrame:
    """One row per judged item: `verdict` (None while disputed), `status` (single, agreed, majority, disagreement
    or adjudicated), how many reviewers voted, and the votes as `reviewer: verdict` text."""
    if rule not in DECISION_RULES:
        raise ValueError(f"unknown decision rule {rule!r}")
    if history.empty:
        return pd.DataFrame(columns=DECISION_COLUMNS)
    adjudicated = (
        history[history["role"] == "adjudicator"]
        .drop_duplicates(["kind", "item_id"], keep="last")
        .set_index(["kind", "item_id"])["verdict"]
        .to_dict()
    )
    rows = []
    votes = reviewer_votes(history)
    keys = history[["kind", "item_id"]].drop_duplicates()
    grouped = {key: part for key, part in votes.groupby(["kind", "item_id"], sort=False)}
    for kind, item in keys.itertuples(index=False):
        part = grouped.get((kind, item), votes.iloc[0:0])
        counts = part["verdict"].value_counts()
        text = "; ".join(f"{r}: {v}" for r, v in zip(part["reviewer"], part["verdict"]))
        if (kind, item) in adjudicated:
            verdict, status = adjudicated[(kind, item)], "adjudicated"
        elif len(part) == 1:
            verdict, status = part["verdict"].iloc[0], "single"
        elif len(counts) == 1:
            verdict, status = counts.index[0], "agreed"
        elif rule == "majority" and counts.iloc[0] * 2 > len(part):
            verdict, status = counts.index[0], "majority"
        else:
            verdict, status = None, "disagreement"
        rows.append((kind, item, verdict, status, len(part), text))
    return pd.DataFrame(rows, columns=DECISION_COLUMNS)


def disagreements(decisions: pd.DataFrame) -> pd.DataFrame:
    """The disagreement queue: items whose reviewers differ and that no adjudicator has resolved yet."""
    return decisions[decisions["status"] == "disagreement"].reset_index(drop=True)


def decided(decisions: pd.DataFrame, kind: str) -> pd.DataFrame:
    """item_id, verdict of the items of one kind that have a decision (what estimates count)."""
    part = decisions[(decisions["kind"] == kind) & decisions["verdict"].notna()]
    return part[["item_id", "verdict", "status"]].reset_index(drop=True)
