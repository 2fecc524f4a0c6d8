"""The review on the analysis contract: CLI `review-queue` (draw or reopen a stratified queue and read its
estimate) and the report's "Review" section (decisions, agreement, queue estimates, reveals)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from analysis.contract import Analysis, Log, ReportContext, ReportSection, quiet
from analysis.effects.removed import removed_by_filter
from analysis.errors import AuditInputError
from analysis.params import ParamError
from analysis.review.agreement import agreement_table
from analysis.review.params import QueueParams
from analysis.review.queues import (
    QueueEstimate,
    QueueRequest,
    open_queue,
    queue_estimate,
    queue_table,
)
from analysis.review.summary import ALL_VERDICTS_CAVEAT, all_verdicts_precision, queue_estimates, review_state
from analysis.stats import TOO_FEW
from analysis.verdicts.decisions import decide, disagreements
from analysis.verdicts.store import VerdictStore
from analysis.workspace import Workspace


@dataclass(frozen=True)
class QueueResult:
    request: QueueRequest | None
    items: pd.DataFrame
    estimate: QueueEstimate | None
    listed: list[QueueEstimate]  # every queue's estimate, when no queue was asked for


def estimate_line(estimate: QueueEstimate) -> str:
    noun = "precision" if estimate.kind == "removal" else "share of real copies"
    if estimate.estimate is None:
        value = "no decided verdicts yet"
    else:
        low, high = estimate.ci95
        value = f"{noun} {estimate.estimate:.1%} (95% CI {low:.1%}–{high:.1%})" + (
            "" if estimate.judgeable else f" — {TOO_FEW}"
        )
    progress = (
        f"{estimate.decided} of {estimate.size} decided, {estimate.pending} pending, {estimate.disputed} disputed"
    )
    return f"{estimate.queue}: {value}; {progress}"


class ReviewQueue(
    Analysis,
    name="review-queue",
    title="Review",
    help="draw a stratified random review queue of what a filter removed (or of flagged samples) and estimate from it",
):
    def __init__(self, reviewed: Iterable[Analysis] = ()) -> None:
        """`reviewed`: the analyses whose items people judge, each under its `review_kind` (the registry passes
        them: the review process knows no analysis by name)."""
        self.reviewed = {analysis.review_kind: analysis for analysis in reviewed if analysis.review_kind}

    def population(self, workspace: Workspace, kind: str, subset: str | None = None) -> tuple[str, pd.DataFrame]:
        """(description, `id`, `score`) of what a queue of `kind` samples: the reviewed analysis's own population."""
        if kind not in self.reviewed:
            raise AuditInputError(
                f"--kind {kind}: nothing is reviewed under that kind.", fix=f"use one of {list(self.reviewed)}."
            )
        return self.reviewed[kind].review_population(workspace, subset)

    Params = QueueParams

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        self.Params.add_arguments(parser, choices={"kind": tuple(self.reviewed)})

    def params(self, **overrides) -> QueueParams:
        """The first reviewed kind unless another is asked for; a kind nothing is reviewed under is refused."""
        params = super().params(**overrides)
        if params.kind is None and self.reviewed:
            params = dataclasses.replace(params, kind=next(iter(self.reviewed)))
        if params.kind is not None and params.kind not in self.reviewed:
            raise ParamError("kind", f"is {params.kind!r}", fix=f"use one of {', '.join(self.reviewed)}.")
        return params

    def run(self, workspace: Workspace, params: QueueParams, log: Log = quiet) -> QueueResult:
        store = VerdictStore.for_workspace(workspace.config.root)
        decisions = decide(store.history(), workspace.config.review.decision)
        if params.n is None:
            return QueueResult(None, pd.DataFrame(), None, queue_estimates(store, decisions))
        kind = params.given("kind")
        described, members = self.population(workspace, kind, params.filter)
        request = QueueRequest(kind, described, params.n, params.strata, params.bands, params.seed)
        items = open_queue(store, request, members)
        return QueueResult(request, items, queue_estimate(request.name, request.kind, items, decisions), [])

    def to_json(self, result: QueueResult) -> dict:
        if result.request is None:
            return {"queues": [q.to_json() for q in result.listed]}
        assert result.estimate is not None
        return {
            "queue": result.request.name,
            "items": result.items.to_dict("records"),
            "estimate": result.estimate.to_json(),
        }

    def summary_lines(self, result: QueueResult) -> list[str]:
        if result.request is None:
            return [estimate_line(q) for q in result.listed] or ["no review queues yet: draw one with --n N"]
        assert result.estimate is not None
        lines = [estimate_line(result.estimate), "position  item  stratum  inclusion probability"]
        lines += [
            f"{row.position:>8}  {row.item_id}  {row.stratum}  {row.inclusion_probability:.3f}"
            for row in result.items.itertuples()
        ]
        return lines

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        workspace = context.workspace
        state = review_state(workspace, VerdictStore.for_workspace(workspace.config.root))
        if state.history.empty and state.reveals.empty and not state.queues:
            return [ReportSection("Review", note="No reviewer has judged or revealed anything in this workspace yet.")]
        counts = state.decisions["status"].value_counts()
        reviewers = state.history["reviewer"].nunique()
        summary = [
            f"{len(state.history):,} verdicts by {reviewers} reviewer(s) on {len(state.decisions):,} items; decision "
            f"rule: {state.rule} (an adjudicator's verdict is final); "
            + ", ".join(f"{status} {count:,}" for status, count in counts.sort_index().items()),
            f"The review needed {len(state.reveals):,} reveals of blurred images by "
            f"{state.reveals['reviewer'].nunique()} reviewer(s).",
        ]
        summary += [estimate_line(q) for q in state.queues]
        section = ReportSection("Review", summary=summary)
        if state.queues:
            section.tables.append(
                (
                    "Queue estimates: stratified random samples; positive share = precision (removals) or real copies "
                    "among flagged samples; Korn–Graubard 95% intervals",
                    queue_table(state.queues),
                )
            )
        if state.agreement:
            section.tables.append(("Agreement between reviewers", agreement_table(state.agreement)))
        disputed = disagreements(state.decisions)
        if len(disputed):
            section.tables.append(
                (
                    f"Disagreements awaiting an adjudicator ({len(disputed):,}; first 50)",
                    disputed[["kind", "item_id", "votes"]].head(50),
                )
            )
        if workspace.config.filtered.defined and (state.decisions["kind"] == "removal").any():
            table = all_verdicts_precision(state.decisions, removed_by_filter(workspace))
            if len(table):
                section.tables.append((f"Precision {ALL_VERDICTS_CAVEAT}", table))
        return [section]
