"""Contamination on the analysis contract: CLI `contamination`, its report section and the gate
`check --max-contamination SET=N`."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.contamination.cached import contamination_for
from analysis.contamination.compute import ContaminationResult, SetContamination
from analysis.contamination.eval_sets import eval_sets_for
from analysis.contamination.params import ContaminationParams
from analysis.contract import Analysis, Gate, Headline, Log, ReportContext, ReportSection, quiet
from analysis.copies.candidates import CANDIDATE_THRESHOLDS, INLIER_THRESHOLD, copy_flag_threshold
from analysis.copies.verification_options import chosen_tiers, chosen_verification
from analysis.distributed import offloaded
from analysis.embedders.base import default_for_embedder
from analysis.embedding_store import load_embeddings
from analysis.errors import AuditInputError
from analysis.stats import TOO_FEW
from analysis.workspace import Workspace

NO_EVAL_SET = (
    "no evaluation set is declared",
    'add [[eval]] tables to audit.toml (name = "coco", manifest = "coco-val.parquet"), or pass '
    "--eval NAME=MANIFEST to `pretrain-audit contamination`",
)


def set_sentence(one: SetContamination) -> str:
    """One set's finding: items contaminated, then images and captions separately, and what the filters kept."""
    payload = one.to_json()
    images, captions = payload["images"], payload["captions"]
    parts = []
    if images["unmeasured"]:
        parts.append(f"images not searched ({images['unmeasured']})")
    elif images["n_with_image"]:
        low, high = images["ci95"]
        rate = "—" if images["rate"] is None else f"{images['rate']:.1%}"
        parts.append(
            f"{images['n_matched']:,} of {images['n_measured']:,} images have a copy in the training set "
            f"({rate}, 95% CI {low:.1%}–{high:.1%})"
        )
    if captions["n_with_caption"]:
        parts.append(
            f"{captions['n_matched']:,} of {captions['n_with_caption']:,} captions are there "
            f"({captions['n_exact']:,} exact, {captions['n_near']:,} near pairs)"
        )
    kept = payload["n_contaminated_kept"]
    return (
        f"{one.name}: {one.n_contaminated:,} of {one.n:,} evaluation items found in the training set, "
        f"{kept:,} of them still in the filtered set — " + "; ".join(parts) + ("" if one.judgeable else f" — {TOO_FEW}")
    )


class Contamination(
    Analysis,
    name="contamination",
    title="Contamination",
    page="contamination",
    icon=":material/fact_check:",
    help="evaluation sets (images and captions) found inside the training set",
):
    Params = ContaminationParams

    def add_output_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", help="write every match (images and captions) to this Parquet file")

    def run(self, workspace: Workspace, params: ContaminationParams, log: Log = quiet) -> ContaminationResult:
        sets = eval_sets_for(workspace, list(params.eval or ()))
        training = load_embeddings(workspace, "original", required=False)
        verify, threshold = False, params.threshold
        if training is not None and not training.embedder.startswith("precomputed"):
            method, reason = chosen_verification(workspace, training, params.verify)
            if reason:
                log(f"verification: none ({reason}); images are matched by embedding cosine alone")
            verify = method == "local-features"
            if threshold is None:
                threshold = (
                    default_for_embedder(CANDIDATE_THRESHOLDS, training.embedder, 0.7)
                    if verify
                    else copy_flag_threshold(training.embedder)
                )
        elif training is None and any(one.has_images for one in sets):
            log("images: not searched (run `pretrain-audit prepare DIR` to embed the training images)")
        with offloaded(
            params.scheduler,
            workspace.config.scheduler,
            log,
            training.path if training is not None else None,
            workspace.config.task_rows,
        ) as offload:
            return contamination_for(
                workspace,
                sets,
                threshold=1.0 if threshold is None else threshold,
                k=params.k,
                verify=verify,
                inlier_threshold=INLIER_THRESHOLD if params.inliers is None else params.inliers,
                tiers=chosen_tiers(params.tiers),
                log=log,
                offload=offload,
            )

    def to_json(self, result: ContaminationResult) -> dict:
        return result.to_json()

    def summary_lines(self, result: ContaminationResult) -> list[str]:
        lines = []
        for one in result.sets:
            lines.append(set_sentence(one))
            if one.search is not None:
                lines.append(f"  an image counts when it has {one.search.rule()}")
            payload = one.to_json()
            for kind in ("images", "captions"):
                by_item: dict[str, list[dict]] = {}
                for match in payload[kind]["matches"]:
                    by_item.setdefault(match["eval_id"], []).append(match)
                for eval_id, matches in list(by_item.items())[:5]:
                    best = matches[0]
                    evidence = (
                        f"cosine {best['cosine']:.3f}"
                        + ("" if best["inliers"] is None else f", {best['inliers']} inliers, {best['tier']}")
                        if kind == "images"
                        else f"{best['kind']}, {best['similarity']:.2f}"
                    )
                    more = f"; {len(matches) - 1:,} more training copies" if len(matches) > 1 else ""
                    lines.append(f"  {kind[:-1]} {eval_id} ≈ {best['train_id']} ({evidence}{more})")
        return lines

    def write_outputs(
        self, workspace: Workspace, result: ContaminationResult, options: argparse.Namespace
    ) -> list[str]:
        if not options.out:
            return []
        import pandas as pd

        from analysis.cache import atomic_save_parquet

        frames = []
        for one in result.sets:
            frames.append(one.images[one.images["counted"]].assign(set=one.name, what="image"))
            frames.append(one.captions.assign(set=one.name, what="caption"))
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        atomic_save_parquet(Path(options.out), table)
        return [f"{len(table):,} matches written to {options.out}"]

    def headline(self, workspace: Workspace) -> Headline:
        if not workspace.config.evals:
            return Headline(self.title, None, f"{NO_EVAL_SET[0]}. {NO_EVAL_SET[1][0].upper()}{NO_EVAL_SET[1][1:]}")
        result = self.run(workspace, self.settings(workspace))
        return Headline(self.title, "; ".join(set_sentence(one) for one in result.sets))

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        from analysis.contamination.figures import match_evidence, match_tables

        if not context.workspace.config.evals:
            return [ReportSection("Evaluation-set contamination", note=f"{NO_EVAL_SET[0]}: {NO_EVAL_SET[1]}.")]
        result = self.run(context.workspace, self.settings(context.workspace))
        context.parameters["contamination"] = "; ".join(
            f"{one.name}: {one.search.rule() if one.search else 'captions only'}" for one in result.sets
        )
        section = ReportSection("Evaluation-set contamination", summary=self.summary_lines(result))
        section.tables += match_tables(context.workspace, result)
        section.evidence += match_evidence(context.workspace, result)
        return [section]

    def add_gate_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--max-contamination",
            action="append",
            metavar="SET=N",
            help="most items of the evaluation set SET (an [[eval]] name) whose image or caption may be in the "
            "filtered training set; repeat for several sets",
        )

    def gates(self, workspace: Workspace, options: argparse.Namespace) -> list[Gate]:
        asked = getattr(options, "max_contamination", None)
        if not asked:
            return []
        limits = {}
        for given in asked:
            name, _, limit = given.partition("=")
            try:
                limits[name.strip()] = float(limit)
            except ValueError:
                raise AuditInputError(
                    f"--max-contamination {given!r} is not SET=N.", fix="write e.g. --max-contamination coco=0."
                ) from None
        declared = {name for name, _ in workspace.config.evals}
        unknown = [name for name in limits if name not in declared]
        if unknown:
            raise AuditInputError(
                f"--max-contamination names {', '.join(map(repr, unknown))}, not an [[eval]] set of this workspace "
                f"({', '.join(sorted(declared)) or 'none declared'}).",
                path=workspace.config.config_path,
                fix="declare it with [[eval]] name = ... manifest = ... in audit.toml.",
            )
        result = self.run(workspace, self.settings(workspace))
        gates = []
        for name, limit in limits.items():
            one = result.by_name(name)
            assert one is not None
            gates.append(
                Gate(
                    f"contamination of {name}",
                    limit,
                    float(len(one.contaminated_ids(kept_only=True))),
                    f"{len(one.contaminated_ids(kept_only=True)):,} of {one.n:,} evaluation items with an image or "
                    "caption in the filtered training set",
                    unmeasured=one.unmeasured(),
                )
            )
        return gates
