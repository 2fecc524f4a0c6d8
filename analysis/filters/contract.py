"""`pretrain-audit filter DIR ACTION NAME ...`: build a filter (new, seed, next, label, fit, preview, apply,
export); without an action, the filters of the workspace. The page is "Filter builder"; the report prints each
filter's specification and measured figures."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.contract import Analysis, Log, ReportContext, ReportSection, quiet
from analysis.errors import AuditInputError
from analysis.filters import compute
from analysis.filters.definition import DEFAULT_TARGET_RECALL, list_filters, new_filter, parse_labels, record_labels
from analysis.filters.measure import FIT_AGAIN, FitReport
from analysis.filters.params import FilterRequest
from analysis.stats import TOO_FEW
from analysis.workspace import Workspace


@dataclass
class FilterResult:
    action: str
    payload: dict
    lines: list[str] = field(default_factory=list)


def _items_json(builder: compute.Builder, items: pd.DataFrame) -> list[dict]:
    captions = builder.workspace.original.set_index(builder.workspace.original["id"].astype(str))["caption"]
    return [
        {"id": row.item_id, "reason": row.reason, "caption": str(captions.get(row.item_id, ""))}
        for row in items.itertuples()
    ]


def _preview_json(table: pd.DataFrame) -> list[dict]:
    rows = []
    for record in table.to_dict("records"):
        rows.append(
            {
                k: (None if isinstance(v, float) and v != v else (list(v) if isinstance(v, tuple) else v))
                for k, v in record.items()
            }
        )
    return rows


def _score_band(text: str) -> tuple[str, float, float]:
    try:
        column, low, high = text.rsplit(":", 2)
        return column, float(low), float(high)
    except ValueError:
        raise AuditInputError(
            f"--score-band {text!r} is not COLUMN:LOW:HIGH.", fix="write e.g. open-nsfw:0.6:1"
        ) from None


def filter_overview(workspace: Workspace) -> list[dict]:
    """Every filter of the workspace: its specification, labels, latest figures and whether it is applied."""
    rows = []
    for name in list_filters(workspace):
        builder = compute.Builder.open(workspace, name)
        report = builder.latest_fit()
        applied = builder.applied()
        items = builder.rounds()
        rows.append(
            {
                "name": name,
                "spec": builder.definition.spec,
                "labels": len(builder.labels()),
                "rounds": int(items["round"].max()) if len(items) else 0,
                "figures": report.to_json() if report else None,
                "applied": applied,
            }
        )
    return rows


def _list(workspace: Workspace) -> FilterResult:
    overview = filter_overview(workspace)
    lines = [f"{len(overview)} filter(s)"] + [
        f"  {f['name']}: {f['labels']} labels, {f['rounds']} rounds"
        + (f"; applied at {f['applied']['threshold']:.3f}" if f["applied"] else "; not applied")
        for f in overview
    ]
    return FilterResult("list", {"filters": overview}, lines)


def _items(action: str, builder: compute.Builder, items: pd.DataFrame) -> FilterResult:
    payload = _items_json(builder, items)
    lines = [f"{len(payload)} image(s) to label:"] + [f"  {i['id']}  ({i['reason']})  {i['caption']}" for i in payload]
    return FilterResult(action, {"filter": builder.definition.name, "items": payload}, lines)


def _seed(builder: compute.Builder, request: FilterRequest) -> FilterResult:
    text = request.text
    items = compute.seed(
        builder,
        caption_words=request.caption_words.split(",") if request.caption_words else None,
        like=request.like.split(",") if request.like else None,
        score_band=_score_band(request.score_band) if request.score_band else None,
        text=text,
        text_vector=compute.text_vector(builder.workspace, text) if text else None,
        n=request.n,
    )
    return _items("seed", builder, items)


def _next(builder: compute.Builder, request: FilterRequest) -> FilterResult:
    return _items("next", builder, compute.next_round(builder, request.n))


def _label(builder: compute.Builder, request: FilterRequest) -> FilterResult:
    assignments = parse_labels(list(request.assignments), set(builder.ids))
    record_labels(builder.store, builder.definition, assignments, request.given("labeller"))
    left = compute.pending(builder)
    return FilterResult(
        "label",
        {"recorded": len(assignments), "pending": len(left)},
        [f"{len(assignments)} label(s) recorded; {len(left)} image(s) of this round left to label"],
    )


def _fit(builder: compute.Builder, request: FilterRequest) -> FilterResult:
    report = compute.fit(builder, request.target_recall)
    lines = [report.summary_line()]
    if report.stable:
        lines.append(f"the flagged set changed by {report.change:.1%} since the last fit: it has stopped changing")
    return FilterResult("fit", report.to_json(), lines)


def _preview(builder: compute.Builder, request: FilterRequest) -> FilterResult:
    threshold, table = compute.preview(builder, request.threshold)
    lines = [f"at threshold {threshold:.3f}:"] + [
        f"  {r['name']}: removal rate {r['removal_rate_now']:.1%} now, "
        f"{r['removal_rate_with_filter']:.1%} with the filter"
        + (
            ""
            if r["change_with_filter"] is None
            else f"; change {r['change_now']:+.1%} → {r['change_with_filter']:+.1%}"
        )
        for r in _preview_json(table)
        if r["captions"]
    ]
    return FilterResult("preview", {"threshold": threshold, "terms": _preview_json(table)}, lines)


def _apply(builder: compute.Builder, request: FilterRequest) -> FilterResult:
    changed, applied = compute.apply(builder, request.threshold, request.target_recall)
    return FilterResult(
        "apply",
        {**applied, "n_removed": changed.n_removed, "n_original": changed.n_original},
        [
            f"filter '{request.name}' applied at threshold {applied['threshold']:.3f}: it flags "
            f"{applied['n_flagged']:,} images; {changed.n_removed:,} of {changed.n_original:,} are removed in all"
        ],
    )


def _unapply(builder: compute.Builder, request: FilterRequest) -> FilterResult:
    changed, record = compute.unapply(builder)
    return FilterResult(
        "unapply",
        {**record, "n_removed": changed.n_removed, "n_original": changed.n_original},
        [
            f"filter '{request.name}' no longer applied: {changed.n_removed:,} of {changed.n_original:,} "
            "are removed in all (its score, labels and model are kept; `apply` applies it again)"
        ],
    )


def _export(builder: compute.Builder, request: FilterRequest) -> FilterResult:
    path = compute.export(builder, request.given("out"))
    return FilterResult("export", {"path": str(path)}, [f"scores written to {path}"])


# The actions on one filter, by their CLI name (`new` and the overview need no filter opened).
_BUILDER_ACTIONS: dict[str, Callable[[compute.Builder, FilterRequest], FilterResult]] = {
    "seed": _seed,
    "next": _next,
    "label": _label,
    "fit": _fit,
    "preview": _preview,
    "apply": _apply,
    "unapply": _unapply,
    "export": _export,
}


class FilterBuilder(
    Analysis,
    name="filter",
    title="Filter builder",
    page="filter_builder",
    icon=":material/tune:",
    help="build a filter: new, seed, next, label, fit, preview, apply, export (none: list the filters)",
):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="filter_action", metavar="ACTION")

        def action(name: str, help: str) -> argparse.ArgumentParser:
            sub = actions.add_parser(name, help=help)
            sub.add_argument("name", help="the filter's name (lowercase letters, digits, - and _)")
            sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")
            return sub

        p = action("new", "create a filter with its written specification")
        p.add_argument("--spec", required=True, help="what counts as positive, with examples and exclusions")
        p.add_argument("--extra-score", action="append", default=[], help="a score column used as a feature too")
        p.add_argument(
            "--target-recall",
            type=float,
            default=DEFAULT_TARGET_RECALL,
            help=f"recall the threshold aims for ({DEFAULT_TARGET_RECALL})",
        )
        p.add_argument("--by", default="", help="who wrote the specification")
        p = action("seed", "propose seed images to label (a round of their own)")
        how = p.add_mutually_exclusive_group(required=True)
        how.add_argument("--caption-words", help="w1,w2: images whose caption contains any of them")
        how.add_argument("--like", help="ID,...: images nearest to these")
        how.add_argument("--score-band", help="COLUMN:LOW:HIGH: images whose score lies in the band")
        how.add_argument("--text", help="a prompt (embedders with a text tower only: open_clip)")
        p.add_argument("--n", type=int, default=20)
        p = action("next", "the images to label now, with the reason each was chosen")
        p.add_argument("--n", type=int, default=20, help="images in a new round (default 20)")
        p = action("label", "record labels: ID=positive|negative|skip ...")
        p.add_argument("assignments", nargs="+", metavar="ID=LABEL")
        p.add_argument("--labeller", required=True, help="your name")
        p = action("fit", "fit and measure: cv AUC, precision and recall with intervals, threshold")
        p.add_argument("--target-recall", type=float)
        p = action("preview", "term shifts and removal rates the filter would cause, beside the current ones")
        p.add_argument("--threshold", type=float)
        p = action("apply", "make the filter a score filter of the workspace")
        p.add_argument("--threshold", type=float)
        p.add_argument("--target-recall", type=float)
        action("unapply", "undo apply: the workspace filters as before (score, labels and model are kept)")
        p = action("export", "write id, score, flagged, label")
        p.add_argument("--out", required=True, type=Path, help="F.parquet or F.csv")

    Params = FilterRequest

    def run(self, workspace: Workspace, request: FilterRequest, log: Log = quiet) -> FilterResult:
        action = request.filter_action
        if action is None:
            return _list(workspace)
        if action == "new":
            definition = new_filter(
                workspace,
                request.given("name"),
                request.given("spec"),
                created_by=request.by,
                extra_scores=tuple(request.extra_score),
                target_recall=DEFAULT_TARGET_RECALL if request.target_recall is None else request.target_recall,
            )
            return FilterResult("new", definition.to_json(), [f"filter '{definition.name}' created"])
        return _BUILDER_ACTIONS[action](compute.Builder.open(workspace, request.given("name")), request)

    def to_json(self, result: FilterResult) -> dict:
        return {"action": result.action, **result.payload}

    def summary_lines(self, result: FilterResult) -> list[str]:
        return result.lines

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        overview = filter_overview(context.workspace)
        if not overview:
            return []
        lines, rows = [], []
        for f in overview:
            fit = FitReport.from_json(f["figures"]) if f["figures"] else None
            # a fit saved before its slice trials were counted cannot be judged at all: it says fit again
            mark = FIT_AGAIN if fit is not None and fit.fitted_before_trials_were_counted else TOO_FEW
            lines.append(f"Filter '{f['name']}' — specification: {f['spec']}")
            rows.append(
                {
                    "filter": f["name"],
                    "labels": f["labels"],
                    "rounds": f["rounds"],
                    "cv AUC": fit.cv_auc if fit else None,
                    "precision (random slice)": _with_interval(
                        fit.precision, fit.precision_ci95, fit.precision_judgeable, mark
                    )
                    if fit
                    else "—",
                    "recall (random slice)": _with_interval(fit.recall, fit.recall_ci95, fit.recall_judgeable, mark)
                    if fit
                    else "—",
                    "applied at": f["applied"]["threshold"] if f["applied"] else "not applied",
                }
            )
        return [ReportSection("Filters built in the tool", lines, tables=[("Filters", pd.DataFrame(rows))])]


def _with_interval(value: float | None, interval: tuple[float, float] | None, judgeable: bool, mark: str) -> str:
    """A slice estimate with its interval; `mark` when it cannot be judged (too few slice images, or an older fit)."""
    if value is None or not interval:
        return "—"
    return f"{value:.0%} (95% CI {interval[0]:.0%}–{interval[1]:.0%}, random slice)" + (
        "" if judgeable else f"; {mark}"
    )
