"""Regurgitation on the analysis contract: CLI `regurgitation`, its report section and the rate gate."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pandas as pd

from analysis.contract import Analysis, Gate, Headline, Log, ReportContext, ReportSection, quiet
from analysis.copies.duplicate_groups import DuplicateGroups
from analysis.copies.evidence import pair_evidence
from analysis.copies.verification_options import chosen_tiers, chosen_verification
from analysis.distributed import offloaded
from analysis.embedding_store import EmbeddingSet, load_embeddings
from analysis.images import tile_png
from analysis.regurgitation.cached import regurgitation_for
from analysis.regurgitation.compute import RegurgitationResult, flagged_items
from analysis.regurgitation.params import RegurgitationParams
from analysis.stats import TOO_FEW
from analysis.workspace import Workspace


def flag_rule(result: RegurgitationResult) -> str:
    """How a sample was flagged, in words: by cosine alone, or verified on pixels."""
    if result.verification:
        acted = result.verification.get("acted_tiers")
        return (
            f"verified on pixels (a neighbour with cosine ≥ {result.threshold} and ≥ "
            f"{result.verification['inlier_threshold']} local-feature inliers"
            + (f", of the kind {' or '.join(acted)}" if acted else "")
            + ")"
        )
    return f"at cosine ≥ {result.threshold}"


DuplicateGroupsProvider = Callable[[Workspace, EmbeddingSet | None], DuplicateGroups | None]


class Regurgitation(
    Analysis,
    name="regurgitation",
    title="Regurgitation",
    page="regurgitation",
    icon=":material/compare:",
    help="generated samples vs their nearest training images",
):
    review_kind = "regurgitation"
    Params = RegurgitationParams

    def __init__(self, duplicate_groups: DuplicateGroupsProvider | None = None) -> None:
        """`duplicate_groups`: where dedup's groups come from (analysis/registry.py passes dedup's), for each
        sample's group size and its best match once dedup removed the rest of the group; without it, neither."""
        self.duplicate_groups = duplicate_groups

    def duplicates(self, workspace: Workspace, found: EmbeddingSet | None = None) -> DuplicateGroups | None:
        return None if self.duplicate_groups is None else self.duplicate_groups(workspace, found)

    def review_population(self, workspace: Workspace, subset: str | None = None) -> tuple[str, pd.DataFrame]:
        """The flagged generated samples (score: similarity to their training match), flagged as this command, its
        page and `check` flag them by default (verified on pixels where the images are there)."""
        return "flagged samples", flagged_items(self.run(workspace, self.settings(workspace)).samples)

    def add_output_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", help="write the per-sample matches to this Parquet file")

    def run(self, workspace: Workspace, params: RegurgitationParams, log: Log = quiet) -> RegurgitationResult:
        found = load_embeddings(workspace, "original")
        assert found is not None
        method, reason = chosen_verification(workspace, found, params.verify)
        if reason:
            log(f"verification: none ({reason}); flags are judged by embedding cosine alone")
        with offloaded(
            params.scheduler, workspace.config.scheduler, log, found.path, workspace.config.task_rows
        ) as offload:
            return regurgitation_for(
                workspace,
                threshold=params.threshold,
                k=params.k,
                duplicates=self.duplicates(workspace, found),
                verify=method == "local-features",
                inlier_threshold=params.inliers,
                log=log,
                offload=offload,
                tiers=chosen_tiers(params.tiers),
            )

    def to_json(self, result: RegurgitationResult) -> dict:
        return result.to_json()

    def headline(self, workspace: Workspace) -> Headline:
        if workspace.generated is None:
            return Headline(
                self.title,
                None,
                "no generated samples in this workspace. Add `[generated] manifest = ...` to audit.toml",
            )
        result = self.run(workspace, self.settings(workspace))
        if result.rate is None:
            return Headline(self.title, None, "no generated sample could be read")
        low, high = result.to_json()["ci95"]
        finding = (
            f"{result.n_flagged:,} of {result.n_measured:,} generated samples flagged as copies of training images "
            f"({result.rate:.1%}, 95% CI {low:.1%}–{high:.1%})"
            + (" verified on pixels" if result.verification else " by embedding cosine alone")
            + ("" if result.judgeable else f" — {TOO_FEW}")
        )
        return Headline(self.title, finding)

    def summary_lines(self, result: RegurgitationResult) -> list[str]:
        payload = result.to_json()
        rate = "no sample could be read" if result.rate is None else f"{result.rate:.1%}"
        lines = [
            f"{payload['n_flagged']:,} of {result.n_measured:,} measured generated samples flagged as likely copies "
            f"({rate}, 95% CI {payload['ci95'][0]:.1%}–{payload['ci95'][1]:.1%}) {flag_rule(result)}"
            + ("" if result.judgeable else f" — {TOO_FEW}")
        ]
        if result.unmeasured():
            lines.append(f"  unmeasured: {result.unmeasured()}")
        tiers = (result.verification or {}).get("tiers")
        if tiers:
            not_acted = [t for t in tiers if t not in result.verification["acted_tiers"] and tiers[t]]  # type: ignore[index]
            lines.append(
                "  kinds of verified match: "
                + ", ".join(f"{count:,} {tier}" for tier, count in tiers.items())
                + (f" ({', '.join(not_acted)} shown, not flagged: --tiers to include)" if not_acted else "")
            )
        for sample in payload["samples"][:10]:
            if sample["flagged"]:
                inliers = f", {sample['inliers']} inliers" if sample.get("inliers") is not None else ""
                lines.append(
                    f"  {sample['id']} ≈ {sample['best_match']} (cosine {sample['similarity']:.3f}{inliers}, group "
                    f"of {sample.get('group_size') or 1})"
                )
        return lines

    def write_outputs(
        self, workspace: Workspace, result: RegurgitationResult, options: argparse.Namespace
    ) -> list[str]:
        if not options.out:
            return []
        result.samples.to_parquet(options.out, index=False)
        return [f"per-sample matches written to {options.out}"]

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        from analysis.regurgitation.figures import copy_group_chart, similarity_chart

        workspace = context.workspace
        if (
            workspace.generated is None
            or load_embeddings(workspace, "original", required=False) is None
            or load_embeddings(workspace, "generated", required=False) is None
        ):
            return [
                ReportSection(
                    "Regurgitation", note="No generated samples (or not prepared: run `pretrain-audit prepare DIR`)."
                )
            ]
        result = self.run(workspace, self.settings(workspace))
        context.parameters["regurgitation"] = f"cosine ≥ {result.threshold}, k={result.k}, search: {result.method}"
        section = ReportSection(
            "Regurgitation: generated samples vs nearest training images", summary=self.summary_lines(result)
        )
        section.figures["regurgitation_similarity"] = similarity_chart(result.samples, result.threshold, workspace)
        if result.samples["group_size"].notna().any():
            section.figures["copies_vs_group_size"] = copy_group_chart(result.samples, result.threshold, workspace)
        root = workspace.config.images_root
        generated_images = dict(zip(workspace.generated["id"], workspace.generated["image"].astype(str)))
        original = workspace.original
        training_images = dict(
            zip(original["id"], original["image"].astype(str) if "image" in original else [""] * len(original))
        )
        kept_of = dict(zip(original["id"], workspace.kept))
        if result.verification:
            flagged = result.samples[result.samples["flagged"]].sort_values("inliers", ascending=False).head(6)
            for _, sample in flagged.iterrows():
                match = sample["best_match"]
                evidence = pair_evidence(
                    root, generated_images[sample["id"]], training_images[match], blur_b=not kept_of[match]
                )
                section.evidence.append(
                    (
                        f"{sample['id']} ↔ {match}: {evidence.inliers} matched keypoints"
                        + (" (mirrored)" if evidence.mirrored else "")
                        + (" · training image blurred: removed by a filter" if not kept_of[match] else ""),
                        evidence.png,
                    )
                )
        for _, sample in result.samples.sort_values("similarity", ascending=False).head(4).iterrows():
            match = sample["best_match"]
            section.images.append(
                (
                    f"{sample['id']} (cos {sample['similarity']:.3f})",
                    [
                        ("generated", tile_png(root, generated_images[sample["id"]], blur=False, size=160)),
                        (
                            f"nearest: {match}",
                            tile_png(root, training_images[match], blur=not kept_of[match], size=160),
                        ),
                    ],
                )
            )
        return [section]

    def add_gate_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--max-regurgitation-rate", type=float, help="largest share of generated samples flagged as copies"
        )

    def gates(self, workspace: Workspace, options: argparse.Namespace) -> list[Gate]:
        if options.max_regurgitation_rate is None:
            return []
        result = self.run(workspace, self.settings(workspace))
        return [
            Gate(
                "regurgitation rate",
                options.max_regurgitation_rate,
                result.rate,
                f"{result.n_flagged:,} of {result.n_measured:,} measured samples {flag_rule(result)}",
                unmeasured=result.unmeasured(),
                judgeable=result.judgeable,
            )
        ]
