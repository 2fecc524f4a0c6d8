"""Analysis subcommands of the CLI (removals, bias, ...), kept apart from the workspace commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

REGISTRY: list[Callable[[Any], None]] = []


def default_workers() -> int:
    import os

    return max(1, min(4, (os.cpu_count() or 2) - 1))


def _command(sub: Any, name: str, help: str, handler: Callable[[argparse.Namespace], int], *,
             json: bool = True) -> argparse.ArgumentParser:
    """A subcommand on a workspace DIR, with `--json` unless it prints no report."""
    parser = sub.add_parser(name, help=help)
    parser.add_argument("dir")
    if json:
        parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=handler)
    return parser


def register(function: Callable[[Any], None]) -> Callable[[Any], None]:
    REGISTRY.append(function)
    return function


def _emit(payload: dict, as_json: bool, lines: list[str]) -> None:
    if as_json:
        from analysis.cli import _print_json

        _print_json(payload)
    else:
        print("\n".join(lines))


def cmd_removals(args: argparse.Namespace) -> int:
    from analysis.pipeline import caption_index
    from analysis.removals import filter_overlap, removal_by_terms, removal_summary
    from analysis.workspace import load_workspace

    workspace = load_workspace(Path(args.dir))
    summary = removal_summary(workspace)
    index = caption_index(workspace)
    terms = args.terms.split(",") if args.terms else list(workspace.config.default_terms)
    by_term = removal_by_terms(index, workspace.kept, terms, workspace.config.groups)
    payload = summary.to_json()
    payload["by_term"] = by_term.astype(object).where(by_term.notna(), None).to_dict("records")
    payload["overlap"] = filter_overlap(workspace).to_dict()
    lines = [f"{summary.n_removed:,} of {summary.n_original:,} removed ({summary.fraction_removed:.2%})"]
    lines += [f"  {f.name}: {f.n_removed:,} ({f.fraction_removed:.2%}), {f.n_only_this:,} by this filter alone"
              for f in summary.filters]
    lines += [f"  {r['kind']} {r['name']!r}: {r['removed']:,}/{r['captions']:,} captions removed ({r['removal_rate']:.1%})"
              for r in payload["by_term"] if r["captions"] and r["kind"] != "all"]
    _emit(payload, args.json, lines)
    return 0


@register
def _removals(sub: Any) -> None:
    p = _command(sub, "removals", "what the filters removed: totals, per filter, by caption term", cmd_removals)
    p.add_argument("--terms", help="comma-separated words (default: the workspace's default terms)")


def cmd_bias(args: argparse.Namespace) -> int:
    from analysis.bias import bias_report, parse_terms
    from analysis.pipeline import caption_index, reweighting
    from analysis.workspace import load_workspace

    workspace = load_workspace(Path(args.dir))
    terms = parse_terms(args.terms) if args.terms else list(workspace.config.default_terms)
    groups = dict(workspace.config.groups)
    if args.groups:
        groups = {name: members for name, members in groups.items() if name in args.groups.split(",")}
    index = caption_index(workspace)
    weights = info = None
    if args.reweight or args.weights_out:
        print("fitting the reweighting classifier…", file=sys.stderr)
        result = reweighting(workspace, index, features=args.reweight_features, regularisation=args.C,
                             clip=args.clip)
        weights, info = result.weights, result.summary()
        if args.weights_out:
            out = Path(args.weights_out)
            pd.DataFrame({"id": workspace.original["id"][workspace.kept].to_numpy(),
                          "weight": weights[workspace.kept]}).to_parquet(out, index=False)
            print(f"weights of the {int(workspace.kept.sum()):,} kept rows written to {out}", file=sys.stderr)
    report = bias_report(index, workspace.kept, terms, groups, weights, info)
    payload = report.to_json()
    lines = [f"{report.n_original:,} original captions, {report.n_filtered:,} after filtering"]
    for kind, shift in [("term", t) for t in report.terms] + [("group", g) for g in report.groups]:
        if shift.relative_change is None:
            lines.append(f"  {kind} {shift.name}: not in any caption")
            continue
        text = (f"  {kind} {shift.name}: {shift.original_frequency:.2%} → {shift.filtered_frequency:.2%} "
                f"({shift.relative_change:+.1%}, 95% CI {shift.ci95[0]:+.1%}..{shift.ci95[1]:+.1%})"
                if shift.ci95 else f"  {kind} {shift.name}: {shift.relative_change:+.1%}")
        if shift.reweighted_change is not None:
            text += f"; reweighted {shift.reweighted_change:+.1%}"
        lines.append(text)
    _emit(payload, args.json, lines)
    return 0


@register
def _bias(sub: Any) -> None:
    p = _command(sub, "bias", "caption word-frequency shifts, with intervals, and the reweighting fix", cmd_bias)
    p.add_argument("--terms", help="comma-separated words, e.g. woman,man (default: the workspace's terms)")
    p.add_argument("--groups", help="comma-separated group names from audit.toml (default: all)")
    p.add_argument("--reweight", action="store_true", help="fit the DALL·E 2 reweighting and report reweighted shifts")
    p.add_argument("--reweight-features", choices=["captions", "embeddings", "both"],
                   help="classifier features (default: both when embeddings are cached, else captions)")
    p.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the weak classifier (default 1.0)")
    p.add_argument("--clip", type=float, default=20.0, help="largest weight, relative to the mean (default 20)")
    p.add_argument("--weights-out", help="write id, weight of the kept rows to this Parquet file")


def cmd_prepare(args: argparse.Namespace) -> int:
    from analysis.embeddings import load_embeddings, prepare
    from analysis.workspace import load_workspace

    workspace = load_workspace(Path(args.dir))
    outputs = prepare(workspace, args.embedder, workers=args.workers, batch_size=args.batch_size,
                      progress=not args.no_progress, chunk_rows=args.chunk_rows)
    summary = {}
    for which in outputs:
        found = load_embeddings(workspace, which, args.embedder)
        summary[which] = {"n_rows": int(len(found.valid)), "n_embedded": int(found.valid.sum()),
                          "n_skipped": found.n_missing, "skipped_by_reason": found.meta.get("skipped_by_reason", {}),
                          "embedder": found.meta["embedder"], "dim": found.meta["dim"]}
    if args.json:
        from analysis.cli import _print_json

        _print_json(summary)
    return 0


@register
def _prepare(sub: Any) -> None:
    p = _command(sub, "prepare", "compute and cache image embeddings (resumable, with progress)", cmd_prepare)
    p.add_argument("--embedder", help="effnet-lite0 (default) | open_clip:MODEL:PRETRAINED | precomputed:PATH")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="image decoding processes (default: cores − 1, at least 1; bench/embedding_throughput.py)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--chunk-rows", type=int, default=512, help="rows per resumable chunk (default 512)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_dedup(args: argparse.Namespace) -> int:
    from analysis.dedup import exact_duplicates
    from analysis.embeddings import load_embeddings
    from analysis.pipeline import dedup_for, dedup_recall_for
    from analysis.workspace import load_workspace

    workspace = load_workspace(Path(args.dir))

    def progress(done: int, total: int, pairs: int) -> None:
        print(f"clustering {done}/{total}: {pairs:,} duplicate pairs so far", file=sys.stderr, flush=True)

    found = load_embeddings(workspace, "original")
    result = dedup_for(workspace, threshold=args.threshold, clusters=args.clusters, clusterings=args.clusterings,
                       exact=args.exact, keep_rule=args.keep, progress=progress, found=found)
    payload = result.to_json()
    payload["recall_estimate"] = None
    if args.estimate_recall:
        print(f"estimating recall on {args.estimate_recall:,} random images…", file=sys.stderr, flush=True)
        payload["recall_estimate"] = dedup_recall_for(workspace, result, found, sample=args.estimate_recall).to_json()
    byte_groups = exact_duplicates(found.status["sha256"])
    payload["exact_byte_duplicates"] = {"n_images": int((byte_groups >= 0).sum()),
                                        "n_groups": int(byte_groups.max() + 1) if (byte_groups >= 0).any() else 0}
    payload["n_without_embedding"] = found.n_missing
    payload["embedder"] = found.embedder
    if args.out:
        ids = workspace.original["id"].to_numpy()
        frame = pd.DataFrame({"id": ids, "group_id": pd.array(np.where(result.group_id >= 0, result.group_id, -1),
                                                             dtype="Int64"), "keep": result.keep})
        frame.loc[frame["group_id"] < 0, "group_id"] = pd.NA
        frame.to_parquet(args.out, index=False)
        print(f"keep list written to {args.out}", file=sys.stderr)
    lines = [f"{payload['n_in_groups']:,} images in {payload['n_groups']:,} duplicate groups ({payload['n_pairs']:,} "
             f"pairs) at cosine ≥ {payload['threshold']}; dedup removes {payload['n_removed']:,} "
             f"({payload['fraction_removed']:.1%})"]
    if payload["recall_vs_exact"] is not None:
        lines.append(f"recall vs exact search: {payload['recall_vs_exact']:.1%} "
                     f"(by clusterings: {', '.join(f'{r:.1%}' for r in payload['recall_by_clusterings'])})")
    if payload["recall_estimate"]:
        estimate = payload["recall_estimate"]
        lines.append(f"recall estimated on {estimate['sampled_images']:,} random images: {estimate['recall']:.2%} "
                     f"(95% CI {estimate['ci95'][0]:.2%}–{estimate['ci95'][1]:.2%}, {estimate['true_pairs']:,} "
                     "true pairs touch them)")
    lines.append(f"byte-identical files: {payload['exact_byte_duplicates']['n_images']:,} in "
                 f"{payload['exact_byte_duplicates']['n_groups']:,} groups")
    _emit(payload, args.json, lines)
    return 0


@register
def _dedup(sub: Any) -> None:
    p = _command(sub, "dedup", "near-duplicate groups by clustered search (DALL·E 2), with recall vs exact", cmd_dedup)
    p.add_argument("--threshold", type=float, help="cosine similarity for a duplicate pair (default per embedder)")
    p.add_argument("--clusters", type=int, help="k-means clusters K (default ≈ n / 1,000: clusters of ~1,000 images)")
    p.add_argument("--clusterings", type=int, default=5, help="independent clusterings R (default 5, as DALL·E 2)")
    p.add_argument("--exact", action="store_true", help="also run exact all-pairs search and report recall")
    p.add_argument("--estimate-recall", type=int, default=0, metavar="S",
                   help="estimate recall from all pairs of S random images (for sets too large for --exact)")
    p.add_argument("--keep", choices=["centre", "first", "resolution"], default="centre",
                   help="which image of a group is kept (default: closest to the group centre)")
    p.add_argument("--out", help="write id, group_id, keep to this Parquet file")


def cmd_regurgitation(args: argparse.Namespace) -> int:
    from analysis.pipeline import regurgitation_for
    from analysis.workspace import load_workspace

    workspace = load_workspace(Path(args.dir))
    result = regurgitation_for(workspace, threshold=args.threshold, k=args.k)
    payload = result.to_json()
    if args.out:
        result.samples.to_parquet(args.out, index=False)
        print(f"per-sample matches written to {args.out}", file=sys.stderr)
    lines = [f"{payload['n_flagged']:,} of {payload['n_generated']:,} generated samples flagged as likely copies "
             f"({payload['rate']:.1%}, 95% CI {payload['ci95'][0]:.1%}–{payload['ci95'][1]:.1%}) at cosine ≥ "
             f"{payload['threshold']}"]
    for sample in payload["samples"][:10]:
        if sample["flagged"]:
            lines.append(f"  {sample['id']} ≈ {sample['best_match']} (cosine {sample['similarity']:.3f}, group of "
                         f"{sample.get('group_size') or 1})")
    _emit(payload, args.json, lines)
    return 0


@register
def _regurgitation(sub: Any) -> None:
    p = _command(sub, "regurgitation", "generated samples vs their nearest training images", cmd_regurgitation)
    p.add_argument("--threshold", type=float, help="cosine similarity that flags a likely copy (default per embedder)")
    p.add_argument("--k", type=int, default=5, help="nearest training images kept per sample (default 5)")
    p.add_argument("--out", help="write the per-sample matches to this Parquet file")


def cmd_verdicts(args: argparse.Namespace) -> int:
    from analysis.reviews import VerdictStore, export_verdicts
    from analysis.workspace import read_config

    config = read_config(Path(args.dir))
    store = VerdictStore.for_workspace(config.root)
    if args.out:
        export_verdicts(store, Path(args.out), args.kind)
        print(f"verdict history written to {args.out}", file=sys.stderr)
    latest = store.latest(args.kind) if args.kind else store.history().drop_duplicates(["kind", "item_id"], keep="last")
    counts = latest.groupby(["kind", "verdict"]).size().reset_index(name="items")
    payload = {"n_verdicts": int(len(store.history(args.kind))), "n_items": int(len(latest)),
               "latest_by_verdict": counts.to_dict("records")}
    _emit(payload, args.json, [f"{payload['n_verdicts']:,} verdicts on {payload['n_items']:,} items"]
          + [f"  {r['kind']}: {r['verdict']}: {r['items']:,}" for r in payload["latest_by_verdict"]])
    return 0


@register
def _verdicts(sub: Any) -> None:
    p = _command(sub, "verdicts", "summarise and export reviewer verdicts (CSV or Parquet)", cmd_verdicts)
    p.add_argument("--kind", choices=["removal", "regurgitation"], help="only this kind of verdict")
    p.add_argument("--out", help="write the full history to F.csv or F.parquet")


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import write_report
    from analysis.workspace import load_workspace

    workspace = load_workspace(Path(args.dir))
    terms = args.terms.split(",") if args.terms else None
    out = write_report(workspace, Path(args.out), terms=terms,
                       figures_dir=Path(args.figures) if args.figures else None)
    print(f"report written to {out}" + (f"; figures in {args.figures}" if args.figures else ""), file=sys.stderr)
    return 0


@register
def _report(sub: Any) -> None:
    p = _command(sub, "report", "self-contained HTML (or PDF) audit report with provenance", cmd_report,
                 json=False)
    p.add_argument("--out", required=True, help="report.html or report.pdf")
    p.add_argument("--figures", help="also write every chart as PNG and SVG into this directory")
    p.add_argument("--terms", help="comma-separated words for the bias sections (default: the workspace's terms)")


def cmd_check(args: argparse.Namespace) -> int:
    from analysis.gates import evaluate_gates, parse_term_limits
    from analysis.workspace import load_workspace

    workspace = load_workspace(Path(args.dir))
    gates = evaluate_gates(workspace, max_removed_fraction=args.max_removed_fraction,
                           max_term_shift=parse_term_limits(args.max_term_shift or []),
                           max_regurgitation_rate=args.max_regurgitation_rate,
                           max_duplicate_fraction=args.max_duplicate_fraction, reweighted=args.reweighted)
    passed = all(g.passed for g in gates)
    lines = [f"{'PASS' if g.passed else 'FAIL'} {g.name}: measured "
             f"{'n/a' if g.measured is None else f'{g.measured:.4f}'} (limit {g.limit:g}) — {g.detail}" for g in gates]
    lines.append("all gates passed" if passed else f"{sum(not g.passed for g in gates)} gate(s) failed")
    _emit({"passed": passed, "gates": [g.to_json() for g in gates]}, args.json, lines)
    return 0 if passed else 1


@register
def _check(sub: Any) -> None:
    p = _command(sub, "check", "pass/fail gates for a training pipeline (exit 1 when a gate fails)", cmd_check)
    p.add_argument("--max-removed-fraction", type=float, help="largest share of the data the filters may remove")
    p.add_argument("--max-term-shift", action="append", metavar="TERM=X",
                   help="largest |relative change| of a term's caption frequency, e.g. woman=0.05 (repeatable)")
    p.add_argument("--reweighted", action="store_true", help="judge term shifts after the reweighting fix")
    p.add_argument("--max-regurgitation-rate", type=float, help="largest share of generated samples flagged as copies")
    p.add_argument("--max-duplicate-fraction", type=float, help="largest share of images dedup would remove")
