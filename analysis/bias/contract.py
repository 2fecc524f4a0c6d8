"""Caption bias on the analysis contract: CLI `bias`, its report section and the term-shift gates."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.bias.cached import reweighting_with
from analysis.bias.compute import parse_terms, top_shifted_words
from analysis.bias.params import BiasParams
from analysis.bias.reweight import Reweighting
from analysis.captions import caption_index, normalise_term
from analysis.contract import Analysis, Gate, Headline, Log, ReportContext, ReportSection, quiet
from analysis.distributed import DaskOffload, offloaded
from analysis.effects.terms import (
    BiasReport,
    TermShift,
    bias_report,
    check_single_word,
    count_captions,
    report_from_counts,
    term_shifts,
)
from analysis.errors import AuditInputError
from analysis.stats import MIN_JUDGEABLE
from analysis.workspace import Workspace


@dataclass(frozen=True)
class BiasResult:
    report: BiasReport
    reweighting: Reweighting | None


def _shift_sentence(shift: TermShift) -> str:
    change = shift.relative_change or 0.0
    moved = "did not move" if round(abs(change), 3) == 0 else f"{'fell' if change < 0 else 'rose'} {abs(change):.1%}"
    text = f"“{shift.name}” {moved} in caption frequency"
    if shift.ci95:
        text += f" (95% CI {shift.ci95[0]:+.1%} to {shift.ci95[1]:+.1%})"
    if shift.reweighted_change is not None:
        text += f", {shift.reweighted_change:+.1%} after reweighting"
    return text


def parse_term_limits(options: list[str]) -> dict[str, float]:
    """`--max-term-shift woman=0.05` options as {term: limit}."""
    limits = {}
    for option in options:
        term, sep, value = option.partition("=")
        try:
            limits[term.strip().casefold()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not term.strip():
            raise AuditInputError(
                f"--max-term-shift {option!r} is not TERM=X.", fix="write e.g. --max-term-shift woman=0.05."
            )
    return limits


CAPTIONS_PER_TASK = 250_000  # ~25 MB of captions sent per task; tokenising them takes seconds


def distributed_report(
    workspace: Workspace, terms: list[str], groups: dict[str, tuple[str, ...]], offload: DaskOffload
) -> BiasReport:
    """Term and group counts per partition of the captions, counted on the workers and summed: the report
    `bias_report` gives in one process."""
    for word in list(terms) + [m for members in groups.values() for m in members]:
        check_single_word(normalise_term(word))
    captions, kept = workspace.original["caption"].astype(str), workspace.kept
    step = offload.task_rows or max(1, min(CAPTIONS_PER_TASK, -(-len(captions) // offload.workers)))  # a part a worker
    parts = [
        (captions.iloc[start : start + step].tolist(), kept[start : start + step], terms, groups)
        for start in range(0, len(captions), step)
    ]
    counted = offload.map(count_captions, parts, f"counting {len(captions):,} captions")
    return report_from_counts(sum(counted[1:], counted[0]), groups)


class Bias(
    Analysis,
    name="bias",
    title="Bias",
    page="bias",
    icon=":material/balance:",
    help="caption word-frequency shifts, with intervals, and the reweighting fix",
    needs_filter=True,
):
    Params = BiasParams

    def add_output_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--weights-out", help="write id, weight of the kept rows to this Parquet file")

    def params_from_cli(self, workspace: Workspace, options: argparse.Namespace) -> BiasParams:
        """`--weights-out` writes the reweighting's weights, so it fits one (as `--reweight` does)."""
        params = super().params_from_cli(workspace, options)
        return dataclasses.replace(params, reweight=True) if options.weights_out else params

    def run(self, workspace: Workspace, params: BiasParams, log: Log = quiet) -> BiasResult:
        terms = parse_terms(params.terms) if params.terms else list(workspace.config.default_terms)
        groups = dict(workspace.config.groups)
        if params.groups:
            groups = {name: members for name, members in groups.items() if name in params.groups.split(",")}
        with offloaded(params.scheduler, workspace.config.scheduler, log, None, workspace.config.task_rows) as offload:
            if offload is not None:
                if params.reweight:
                    raise AuditInputError(
                        "reweighting runs in one process: its classifier sees every caption at once.",
                        fix="drop --scheduler (or pass --scheduler none) for --reweight / --weights-out.",
                    )
                return BiasResult(distributed_report(workspace, terms, groups, offload), None)
        index = caption_index(workspace)
        fitted = None
        if params.reweight:
            log("fitting the reweighting classifier…")
            fitted = reweighting_with(workspace, index, params)
        report = bias_report(
            index,
            workspace.kept,
            terms,
            groups,
            None if fitted is None else fitted.weights,
            None if fitted is None else fitted.summary(),
        )
        return BiasResult(report, fitted)

    def to_json(self, result: BiasResult) -> dict:
        return result.report.to_json()

    def summary_lines(self, result: BiasResult) -> list[str]:
        report = result.report
        lines = [f"{report.n_original:,} original captions, {report.n_filtered:,} after filtering"]
        for kind, shift in [("term", t) for t in report.terms] + [("group", g) for g in report.groups]:
            if shift.relative_change is None:
                lines.append(f"  {kind} {shift.name}: not in any caption")
                continue
            text = (
                f"  {kind} {shift.name}: {shift.original_frequency:.2%} → {shift.filtered_frequency:.2%} "
                f"({shift.relative_change:+.1%}"
            )
            text += f", 95% CI {shift.ci95[0]:+.1%}..{shift.ci95[1]:+.1%})" if shift.ci95 else ")"
            if not shift.judgeable:
                text += f" — too few captions to judge ({shift.original_count:,} < {MIN_JUDGEABLE})"
            if shift.reweighted_change is not None:
                text += f"; reweighted {shift.reweighted_change:+.1%}"
                if shift.reweighted_ci95:
                    text += f" (95% CI {shift.reweighted_ci95[0]:+.1%}..{shift.reweighted_ci95[1]:+.1%})"
                text += ", held out of the classifier" if shift.held_out else ", a feature of the classifier"
            lines.append(text)
        fitted = result.reweighting
        if fitted is not None:
            lines.append(
                f"reweighting: effective sample size {fitted.effective_sample_size:,.0f} of {fitted.n_kept:,} kept; "
                f"{fitted.removed_without_kept_neighbour:.1%} of the removed items have no kept neighbour "
                f"(classifier AUC {fitted.auc:.3f})"
            )
            if fitted.warning:
                lines.append(f"warning: {fitted.warning}")
        return lines

    def headline(self, workspace: Workspace) -> Headline:
        """The two default terms whose caption frequency moved most (DALL·E 2's own headline: “woman” fell 14%,
        “man” 6%), each with its interval and, when fitted, the reweighted change."""
        missing = self.unmeasured_headline(workspace)
        if missing is not None:
            return missing
        try:  # with the reweighting fix, as the report shows it; without it where it cannot be fitted
            result = self.run(workspace, self.settings(workspace, reweight=True))
        except AuditInputError:
            result = self.run(workspace, self.settings(workspace))
        shifts = [s for s in result.report.terms if s.relative_change is not None and s.judgeable]
        if not shifts:
            return Headline(self.title, None, "no default term is in enough captions to judge its shift")
        moved = sorted(shifts, key=lambda s: -abs(s.relative_change or 0.0))[:2]
        return Headline(self.title, "; ".join(_shift_sentence(s) for s in moved))

    def write_outputs(self, workspace: Workspace, result: BiasResult, options: argparse.Namespace) -> list[str]:
        if not options.weights_out or result.reweighting is None:
            return []
        kept = workspace.kept
        pd.DataFrame(
            {"id": workspace.original["id"][kept].to_numpy(), "weight": result.reweighting.weights[kept]}
        ).to_parquet(Path(options.weights_out), index=False)
        return [f"weights of the {int(kept.sum()):,} kept rows written to {options.weights_out}"]

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        from analysis.bias.figures import top_words_chart, weights_chart
        from analysis.effects.figures import shift_chart

        workspace = context.workspace
        section = ReportSection("Caption bias: frequency shifts and the reweighting fix")
        terms = ",".join(context.terms)
        try:
            result = self.run(workspace, self.settings(workspace, terms=terms, reweight=True))
        except AuditInputError as exc:
            section.note = f"Reweighting not shown: {exc}"
            result = self.run(workspace, self.settings(workspace, terms=terms))
        section.summary = self.summary_lines(result)
        shifts = [s for s in result.report.terms + result.report.groups if s.relative_change is not None]
        if shifts:
            section.figures["term_shifts"] = shift_chart(shifts, workspace)
        top = top_shifted_words(context.index, workspace.kept)
        if not top.empty:
            section.figures["top_shifted_words"] = top_words_chart(top, workspace)
        if result.reweighting is not None:
            info = result.reweighting.summary()
            section.figures["reweighting_weights"] = weights_chart(
                result.reweighting.weights[workspace.kept], info, workspace
            )
            context.parameters["reweighting"] = (
                f"{info['method']}; C={info['C']}, clip={info['clip']}, features={info['features']}"
            )
        return [section]

    def add_gate_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--max-term-shift",
            action="append",
            metavar="TERM=X",
            help="largest |relative change| of a term's caption frequency, e.g. woman=0.05 (repeatable)",
        )
        parser.add_argument("--reweighted", action="store_true", help="judge term shifts after the reweighting fix")

    def gates(self, workspace: Workspace, options: argparse.Namespace) -> list[Gate]:
        limits = parse_term_limits(options.max_term_shift or [])
        if not limits:
            return []
        for term in limits:
            check_single_word(term)
        index = caption_index(workspace)
        weights = reweighting_with(workspace, index, self.settings(workspace)).weights if options.reweighted else None
        gates = []
        no_filter = "" if workspace.config.filtered.defined else "no filter defined in this workspace"
        for shift in term_shifts(index, workspace.kept, list(limits), weights):
            change = shift.reweighted_change if options.reweighted else shift.relative_change
            label = f"|shift of '{shift.name}'|" + (" after reweighting" if options.reweighted else "")
            gates.append(
                Gate(
                    label,
                    limits[shift.name],
                    None if change is None else abs(change),
                    f"relative change {change:+.2%} ({shift.original_count:,} captions with the term)"
                    if change is not None
                    else "term in no caption",
                    unmeasured=no_filter,
                    judgeable=shift.judgeable,
                )
            )
        return gates
