"""Repeated captions on the analysis contract: CLI `caption-repeats`, its report section and its headline."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.caption_repeats.compute import RepeatedCaptions, RepeatShare, repeated_captions
from analysis.caption_repeats.params import RepeatsParams
from analysis.contract import Analysis, Headline, Log, ReportContext, ReportSection, quiet
from analysis.stats import TOO_FEW
from analysis.workspace import Workspace


def share_sentence(name: str, share: RepeatShare) -> str:
    payload = share.to_json()
    if not share.n_with_caption:
        return f"{name}: no image has a caption"
    low, high = payload["ci95"]
    return (
        f"{name}: {share.n_repeated:,} of {share.n_with_caption:,} captioned images ({payload['share']:.1%}, 95% CI "
        f"{low:.1%}–{high:.1%}) share their caption" + ("" if payload["judgeable"] else f" — {TOO_FEW}")
    )


class CaptionRepeats(
    Analysis,
    name="caption-repeats",
    title="Repeated captions",
    page="caption_repeats",
    icon=":material/repeat:",
    help="captions that several images carry (what models memorise), before and after filtering",
):
    Params = RepeatsParams

    def add_output_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", help="write the most repeated captions (caption, images, kept) to this CSV file")

    def run(self, workspace: Workspace, params: RepeatsParams, log: Log = quiet) -> RepeatedCaptions:
        return repeated_captions(workspace.original["caption"], workspace.kept, params.min_images, params.top)

    def to_json(self, result: RepeatedCaptions) -> dict:
        return result.to_json()

    def summary_lines(self, result: RepeatedCaptions) -> list[str]:
        shared = "shared" if result.min_images == 2 else f"carried by {result.min_images}+ images"
        lines = [
            share_sentence("original", result.original),
            share_sentence("after filtering", result.filtered),
            f"(a caption counts when {shared}, compared after case, punctuation and spacing are folded)",
        ]
        lines += [
            f"  {row.images:,} images ({row.kept:,} kept): {row.caption[:100]}"
            for row in result.top.head(5).itertuples()
        ]
        return lines

    def write_outputs(self, workspace: Workspace, result: RepeatedCaptions, options: argparse.Namespace) -> list[str]:
        if not options.out:
            return []
        result.top.to_csv(Path(options.out), index=False)
        return [f"{len(result.top):,} most repeated captions written to {options.out}"]

    def headline(self, workspace: Workspace) -> Headline:
        result = self.run(workspace, self.settings(workspace))
        if result.original.share is None:
            return Headline(self.audit_title, None, "no image has a caption")
        kept = result.filtered.share
        return Headline(
            self.audit_title,
            f"{result.original.share:.1%} of captioned images share their caption with another image"
            + ("" if kept is None else f"; {kept:.1%} after filtering"),
        )

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        from analysis.caption_repeats.figures import top_captions_chart

        result = self.run(context.workspace, self.settings(context.workspace))
        section = ReportSection("Repeated captions", summary=self.summary_lines(result))
        if len(result.top):
            section.figures["repeated_captions"] = top_captions_chart(result, context.workspace)
            section.tables.append(("Most repeated captions", result.top))
        return [section]
