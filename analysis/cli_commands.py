"""Analysis subcommands of the CLI (removals, bias, ...), kept apart from the workspace commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import pandas as pd

REGISTRY: list[Callable[[Any], None]] = []


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
    p = sub.add_parser("removals", help="what the filters removed: totals, per filter, by caption term")
    p.add_argument("dir")
    p.add_argument("--terms", help="comma-separated words (default: the workspace's default terms)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(handler=cmd_removals)


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
        result = reweighting(workspace, index, embeddings=_embeddings_if_any(workspace, args.reweight_features),
                             features=args.reweight_features, regularisation=args.C, clip=args.clip)
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


def _embeddings_if_any(workspace: Any, features: str | None):
    if features == "captions":
        return None
    try:
        from analysis.embeddings import cached_embeddings
    except ImportError:
        return None
    return cached_embeddings(workspace, required=features in ("embeddings", "both"))


@register
def _bias(sub: Any) -> None:
    p = sub.add_parser("bias", help="caption word-frequency shifts, with intervals, and the reweighting fix")
    p.add_argument("dir")
    p.add_argument("--terms", help="comma-separated words, e.g. woman,man (default: the workspace's terms)")
    p.add_argument("--groups", help="comma-separated group names from audit.toml (default: all)")
    p.add_argument("--reweight", action="store_true", help="fit the DALL·E 2 reweighting and report reweighted shifts")
    p.add_argument("--reweight-features", choices=["captions", "embeddings", "both"],
                   help="classifier features (default: both when embeddings are cached, else captions)")
    p.add_argument("--C", type=float, default=1.0, help="inverse L2 strength of the weak classifier (default 1.0)")
    p.add_argument("--clip", type=float, default=20.0, help="largest weight, relative to the mean (default 20)")
    p.add_argument("--weights-out", help="write id, weight of the kept rows to this Parquet file")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(handler=cmd_bias)
