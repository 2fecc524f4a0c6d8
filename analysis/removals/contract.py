"""Removals on the analysis contract: CLI `removals`, its report section and the removed-fraction gate."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pandas as pd

from analysis.captions import caption_index
from analysis.contract import Analysis, Gate, Headline, Log, ReportContext, ReportSection, quiet
from analysis.effects.removed import removed_by_filter
from analysis.effects.terms import removal_by_terms
from analysis.errors import AuditInputError
from analysis.images import tile_png
from analysis.removals.compute import RemovalSummary, filter_overlap, removal_summary, removed_page, threshold_sweep
from analysis.removals.params import RemovalsParams
from analysis.stats import TOO_FEW, judgeable
from analysis.workspace import Workspace


@dataclass(frozen=True)
class RemovalsResult:
    summary: RemovalSummary
    by_term: pd.DataFrame
    overlap: pd.DataFrame


def chosen_terms(workspace: Workspace, text: str | None) -> list[str]:
    """Comma-separated words from an option, else the workspace's default terms."""
    return text.split(",") if text else list(workspace.config.default_terms)


class Removals(
    Analysis,
    name="removals",
    title="Removals",
    page="removals",
    icon=":material/block:",
    help="what the filters removed: totals, per filter, by caption term",
    needs_filter=True,
):
    review_kind = "removal"
    Params = RemovalsParams

    def review_population(self, workspace: Workspace, subset: str | None = None) -> tuple[str, pd.DataFrame]:
        """A filter's removals (score: the filter's score), or every removed item once."""
        if not workspace.config.filtered.defined:
            raise AuditInputError("no filter is defined, so nothing was removed to review.", path=workspace.config.root)
        removed = removed_by_filter(workspace)
        if subset is None:
            return "all filters", removed.drop_duplicates("id")[["id", "score"]]
        if subset not in set(removed["filter"]):
            raise AuditInputError(
                f"--filter {subset}: no such filter in this workspace.",
                fix=f"use one of {sorted(set(removed['filter']))}.",
            )
        return f"filter {subset}", removed.loc[removed["filter"] == subset, ["id", "score"]]

    def run(self, workspace: Workspace, params: RemovalsParams, log: Log = quiet) -> RemovalsResult:
        by_term = removal_by_terms(
            caption_index(workspace), workspace.kept, chosen_terms(workspace, params.terms), workspace.config.groups
        )
        return RemovalsResult(removal_summary(workspace), by_term, filter_overlap(workspace))

    def to_json(self, result: RemovalsResult) -> dict:
        payload = result.summary.to_json()
        payload["by_term"] = result.by_term.astype(object).where(result.by_term.notna(), None).to_dict("records")
        payload["overlap"] = result.overlap.to_dict()
        return payload

    def summary_lines(self, result: RemovalsResult) -> list[str]:
        summary = result.summary
        lines = [f"{summary.n_removed:,} of {summary.n_original:,} removed ({summary.fraction_removed:.2%})"]
        lines += [
            f"  {f.name}: {f.n_removed:,} ({f.fraction_removed:.2%}), {f.n_only_this:,} by this filter alone"
            for f in summary.filters
        ]
        lines += [
            f"  {r['kind']} {r['name']!r}: {r['removed']:,}/{r['captions']:,} captions removed "
            f"({r['removal_rate']:.1%}, 95% CI {r['ci_low']:.1%}–{r['ci_high']:.1%})"
            + ("" if r["judgeable"] else f" — {TOO_FEW}")
            for r in result.by_term.to_dict("records")
            if r["captions"] and r["kind"] != "all"
        ]
        return lines

    def headline(self, workspace: Workspace) -> Headline:
        missing = self.unmeasured_headline(workspace)
        if missing is not None:
            return missing
        result = self.run(workspace, self.settings(workspace))
        summary = result.summary
        finding = f"{summary.n_removed:,} of {summary.n_original:,} images removed ({summary.fraction_removed:.2%})"
        terms = [r for r in result.by_term.to_dict("records") if r["kind"] == "term" and judgeable(r["captions"])]
        if terms:
            most = max(terms, key=lambda r: r["removal_rate"])
            finding += (
                f"; captions with “{most['name']}” the most: {most['removal_rate']:.1%} removed "
                f"(95% CI {most['ci_low']:.1%}–{most['ci_high']:.1%})"
            )
        return Headline(self.title, finding)

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        from analysis.removals.figures import removal_rate_chart, score_chart, what_if_chart

        workspace = context.workspace
        result = self.run(workspace, self.settings(workspace, terms=",".join(context.terms)))
        section = ReportSection("Removals: what the filters took out", summary=self.summary_lines(result))
        section.figures["removal_rate_by_term"] = removal_rate_chart(result.by_term, workspace)
        if workspace.config.filtered.scores:
            section.figures["score_distributions"] = score_chart(workspace)
            first = workspace.config.filtered.scores[0]
            sweep = threshold_sweep(workspace, context.index, first.name, context.terms)
            section.figures[f"what_if_{first.name}"] = what_if_chart(sweep, first, workspace)
        page, _ = removed_page(workspace, index=context.index, page_size=8)
        section.images.append(
            (
                "Removed images (blurred)",
                [
                    (
                        f"{row['id']}: {row['caption'][:60]}",
                        tile_png(workspace.config.images_root, str(row.get("image", "") or ""), blur=True, size=160),
                    )
                    for _, row in page.iterrows()
                ],
            )
        )
        return [section]

    def add_gate_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--max-removed-fraction", type=float, help="largest share of the data the filters may remove"
        )

    def gates(self, workspace: Workspace, options: argparse.Namespace) -> list[Gate]:
        if options.max_removed_fraction is None:
            return []
        defined = workspace.config.filtered.defined
        return [
            Gate(
                "removed fraction",
                options.max_removed_fraction,
                workspace.n_removed / workspace.n_original if defined else None,
                f"{workspace.n_removed:,} of {workspace.n_original:,} removed",
                unmeasured="" if defined else "no filter defined in this workspace",
                judgeable=judgeable(workspace.n_original),
            )
        ]
