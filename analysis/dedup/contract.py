"""Near-duplicates on the analysis contract: CLI `dedup`, its report section and the duplicate-fraction gate."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.contract import Analysis, Gate, Headline, Log, ReportContext, ReportSection, quiet
from analysis.copies.duplicate_groups import DuplicateGroups
from analysis.copies.evidence import pair_evidence
from analysis.copies.feature_store import verification_unavailable
from analysis.copies.pdq import MATCH_DISTANCE, pair_pdq_distances, pdq_hashes
from analysis.dedup.cached import dedup_recall_for, dedup_with, latest_dedup
from analysis.dedup.compute import (
    DedupResult,
    RecallEstimate,
    exact_duplicates,
    groups_from_pairs,
)
from analysis.dedup.effects import DedupEffects, dedup_effects, effect_lines
from analysis.dedup.pair_table import pair_table
from analysis.dedup.params import DedupParams
from analysis.distributed import offloaded
from analysis.embedding_store import EmbeddingSet, load_embeddings
from analysis.images import tile_png
from analysis.index import Offload
from analysis.stats import judgeable
from analysis.workspace import Workspace

NOT_PREPARED = "Not computed: run `pretrain-audit prepare DIR` first."


@dataclass(frozen=True)
class DuplicatesResult:
    result: DedupResult
    embeddings: EmbeddingSet
    recall_estimate: RecallEstimate | None
    byte_groups: pd.Series  # per row: group of byte-identical files, -1 for none
    pdq_distances: np.ndarray | None = None  # PDQ Hamming distance of each duplicate pair (None without images)
    effects: DedupEffects | None = None  # term shifts and per-cluster removal caused by the keep-list

    def keep_list(self, ids: np.ndarray) -> pd.DataFrame:
        """id, group_id (null outside groups), keep: the `--out` table."""
        group_id = self.result.group_id
        frame = pd.DataFrame(
            {
                "id": ids,
                "group_id": pd.array(np.where(group_id >= 0, group_id, -1), dtype="Int64"),
                "keep": self.result.keep,
            }
        )
        frame.loc[frame["group_id"] < 0, "group_id"] = pd.NA
        return frame


class Duplicates(
    Analysis,
    name="dedup",
    title="Duplicates",
    page="duplicates",
    icon=":material/content_copy:",
    help="near-duplicate groups by clustered search (DALL·E 2), with recall vs exact",
):
    Params = DedupParams

    def duplicate_groups(self, workspace: Workspace, found: EmbeddingSet | None = None) -> DuplicateGroups | None:
        """The groups at the shipped defaults (verified on pixels where the images are there), as regurgitation
        uses them; None before `prepare`."""
        result = latest_dedup(workspace, found, self.settings(workspace))
        return None if result is None else result.duplicate_groups()

    def add_output_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", help="write id, group_id, keep to this Parquet file")
        parser.add_argument(
            "--pairs-out",
            help="write every candidate pair to this Parquet file: id_a, id_b, cosine, inliers, coverage, mirrored, "
            "verified, tier",
        )

    def run(self, workspace: Workspace, params: DedupParams, log: Log = quiet) -> DuplicatesResult:
        found = load_embeddings(workspace, "original")
        assert found is not None
        with offloaded(
            params.scheduler, workspace.config.scheduler, log, found.path, workspace.config.task_rows
        ) as offload:
            return self._run(workspace, params, found, offload, log)

    def _run(self, workspace, params: DedupParams, found, offload: Offload | None, log: Log) -> DuplicatesResult:
        def progress(done: int, total: int, pairs: int) -> None:
            log(f"clustering {done}/{total}: {pairs:,} duplicate pairs so far")

        result = dedup_with(workspace, params, found, log, offload, progress)
        estimate = None
        if params.estimate_recall:
            log(f"estimating recall on {params.estimate_recall:,} random images…")
            estimate = dedup_recall_for(workspace, result, found, sample=params.estimate_recall)
        distances = None
        if params.verify == "none" or verification_unavailable(workspace, found) is None:
            distances = pair_pdq_distances(pdq_hashes(workspace, "original", log=log), result.pairs)
        log("measuring what the keep-list removes: caption term shifts and removal per visual cluster…")
        effects = dedup_effects(workspace, result.keep, found, offload=offload)
        return DuplicatesResult(result, found, estimate, exact_duplicates(found.status["sha256"]), distances, effects)

    def to_json(self, outcome: DuplicatesResult) -> dict:
        payload = outcome.result.to_json()
        payload["recall_estimate"] = None if outcome.recall_estimate is None else outcome.recall_estimate.to_json()
        byte_groups = outcome.byte_groups
        payload["exact_byte_duplicates"] = {
            "n_images": int((byte_groups >= 0).sum()),
            "n_groups": int(byte_groups.max() + 1) if (byte_groups >= 0).any() else 0,
        }
        payload["n_without_embedding"] = outcome.embeddings.n_missing
        payload["embedder"] = outcome.embeddings.embedder
        if outcome.effects is not None:
            payload.update(outcome.effects.to_json())
        if payload["verification"] is None:
            payload["verification"] = {"method": "none"}
        payload["pdq_tier"] = None
        if outcome.pdq_distances is not None:
            close = outcome.result.pairs[outcome.pdq_distances <= MATCH_DISTANCE]
            groups = groups_from_pairs(close, outcome.result.n_images)
            payload["pdq_tier"] = {
                "max_distance": MATCH_DISTANCE,
                "n_pairs": int(len(close)),
                "n_images": int((groups >= 0).sum()),
                "n_groups": int(groups.max() + 1) if (groups >= 0).any() else 0,
            }
        return payload

    def headline(self, workspace: Workspace) -> Headline:
        payload = self.to_json(self.run(workspace, self.settings(workspace)))
        finding = (
            f"dedup removes {payload['n_removed']:,} of {payload['n_images']:,} images "
            f"({payload['fraction_removed']:.1%}): "
            f"{payload['n_in_groups']:,} images in {payload['n_groups']:,} duplicate groups"
        )
        verification = payload["verification"]
        if verification.get("method") == "local-features":
            finding += f", {verification['n_verified']:,} candidate pairs verified on pixels"
        else:
            finding += f" at embedding cosine ≥ {payload['threshold']} (not verified on pixels)"
        return Headline(self.title, finding)

    def summary_lines(self, outcome: DuplicatesResult) -> list[str]:
        payload = self.to_json(outcome)
        lines = [
            f"{payload['n_in_groups']:,} images in {payload['n_groups']:,} duplicate groups "
            f"({payload['n_pairs']:,} pairs) at cosine ≥ {payload['threshold']}; dedup removes "
            f"{payload['n_removed']:,} ({payload['fraction_removed']:.1%})"
        ]
        if payload["recall_vs_exact"] is not None:
            lines.append(
                f"recall vs exact search: {payload['recall_vs_exact']:.1%} "
                f"(by clusterings: {', '.join(f'{r:.1%}' for r in payload['recall_by_clusterings'])})"
            )
        if payload["recall_estimate"]:
            estimate = payload["recall_estimate"]
            lines.append(
                f"recall estimated on {estimate['sampled_images']:,} random images: {estimate['recall']:.2%} "
                f"(95% CI {estimate['ci95'][0]:.2%}–{estimate['ci95'][1]:.2%}, {estimate['true_pairs']:,} "
                "true pairs touch them)"
            )
        verification = payload["verification"]
        if verification.get("method") == "local-features":
            lines.append(
                f"verified on pixels: {verification['n_verified']:,} of {verification['n_candidates']:,} candidate "
                f"pairs (cosine ≥ {verification['candidate_threshold']}) reached ≥ {verification['inlier_threshold']} "
                f"local-feature inliers ({verification['n_mirrored']:,} of them mirrored); unverified candidates "
                "are not counted"
            )
        if verification.get("tiers"):
            counts = verification["tiers"]
            left_out = [tier for tier in counts if tier not in verification["acted_tiers"] and counts[tier]]
            lines.append(
                "kinds of verified pair: "
                + ", ".join(f"{counts[tier]:,} {tier}" for tier in counts)
                + f"; groups join {', '.join(verification['acted_tiers'])} pairs"
                + (f" ({', '.join(left_out)} pairs shown, not grouped: --tiers to include)" if left_out else "")
            )
        if payload["pdq_tier"]:
            tier = payload["pdq_tier"]
            lines.append(
                f"re-encodes and resizes (PDQ distance ≤ {tier['max_distance']}): {tier['n_images']:,} images in "
                f"{tier['n_groups']:,} groups ({tier['n_pairs']:,} of the duplicate pairs)"
            )
        lines.append(
            f"byte-identical files: {payload['exact_byte_duplicates']['n_images']:,} in "
            f"{payload['exact_byte_duplicates']['n_groups']:,} groups"
        )
        if outcome.effects is not None:
            lines += effect_lines(outcome.effects)
        return lines

    def write_outputs(self, workspace: Workspace, outcome: DuplicatesResult, options: argparse.Namespace) -> list[str]:
        written = []
        ids = workspace.original["id"].to_numpy()
        if options.out:
            outcome.keep_list(ids).to_parquet(options.out, index=False)
            written.append(f"keep list written to {options.out}")
        if getattr(options, "pairs_out", None):
            table = pair_table(outcome.result, ids, outcome.embeddings.status["sha256"].to_numpy(dtype=object))
            table.to_parquet(options.pairs_out, index=False)
            written.append(f"{len(table):,} candidate pairs written to {options.pairs_out}")
        return written

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        from analysis.dedup.figures import effect_figures, group_size_chart

        workspace = context.workspace
        if load_embeddings(workspace, "original", required=False) is None:
            return [ReportSection("Near-duplicates", note=NOT_PREPARED)]
        params = self.settings(workspace)
        outcome = self.run(workspace, params)
        dedup = outcome.result
        context.parameters["dedup"] = (
            f"cosine ≥ {dedup.threshold}, K={dedup.clusters}, R={dedup.clusterings}, keep={params.keep}"
        )
        section = ReportSection(
            "Near-duplicates (clustered search, DALL·E 2 method)", summary=self.summary_lines(outcome)
        )
        section.figures["duplicate_group_sizes"] = group_size_chart(dedup, workspace)
        if outcome.effects is not None:
            section.figures.update(effect_figures(outcome.effects, workspace))
        ids = workspace.original["id"].to_numpy()
        images = (
            workspace.original["image"].astype(str).to_numpy()
            if "image" in workspace.original
            else np.full(len(ids), "")
        )
        if dedup.verification is not None:
            check = dedup.verification
            tiers = check.tiers if check.tiers is not None else np.full(len(check.pairs), None, dtype=object)
            verified = np.flatnonzero(check.verified)
            strongest = verified[np.argsort(-check.inliers[verified], kind="stable")][:3]
            for a, b, tier in zip(check.pairs[strongest, 0], check.pairs[strongest, 1], tiers[strongest]):
                evidence = pair_evidence(
                    workspace.config.images_root,
                    images[a],
                    images[b],
                    blur_a=not workspace.kept[a],
                    blur_b=not workspace.kept[b],
                )
                section.evidence.append(
                    (
                        f"{ids[a]} ↔ {ids[b]}: {evidence.inliers} matched keypoints"
                        + (" (mirrored)" if evidence.mirrored else "")
                        + (f"; {tier}" if tier else ""),
                        evidence.png,
                    )
                )
        for group in range(min(3, dedup.n_groups)):
            members = np.flatnonzero(dedup.group_id == group)[:8]
            section.images.append(
                (
                    f"Group {group} ({int((dedup.group_id == group).sum())} images)",
                    [
                        (
                            f"{ids[m]}{' (kept)' if dedup.keep[m] else ''}",
                            tile_png(workspace.config.images_root, images[m], blur=not workspace.kept[m], size=160),
                        )
                        for m in members
                    ],
                )
            )
        return [section]

    def add_gate_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--max-duplicate-fraction", type=float, help="largest share of images dedup would remove")

    def gates(self, workspace: Workspace, options: argparse.Namespace) -> list[Gate]:
        if options.max_duplicate_fraction is None:
            return []
        outcome = self.run(workspace, self.settings(workspace))  # what the command and the report say
        found, dedup = outcome.embeddings, outcome.result
        n_measured = int(found.valid.sum())
        return [
            Gate(
                "near-duplicate fraction removed",
                options.max_duplicate_fraction,
                dedup.n_removed / n_measured if n_measured else None,
                f"{dedup.n_removed:,} of {n_measured:,} readable images"
                + (
                    f" in groups of verified pairs ({dedup.verification.inlier_threshold}+ inliers)"
                    if dedup.verification is not None
                    else f" at cosine ≥ {dedup.threshold}"
                ),
                unmeasured=(
                    f"{found.n_missing:,} of {dedup.n_images:,} images could not be read (not searched for duplicates)"
                    if found.n_missing
                    else ""
                ),
                judgeable=judgeable(n_measured),
            )
        ]
