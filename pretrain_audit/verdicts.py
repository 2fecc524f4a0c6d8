"""`pretrain-audit verdicts`: summary and export (the default action), add, import and agreement."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pretrain_audit.output import emit, log

ACTIONS = ("summary", "add", "import", "agreement")


def with_default_action(argv: list[str]) -> list[str]:
    """`verdicts DIR ...` keeps meaning `verdicts summary DIR ...`."""
    if len(argv) >= 2 and argv[0] == "verdicts" and argv[1] not in ACTIONS and argv[1] not in ("-h", "--help"):
        return [argv[0], "summary", *argv[1:]]
    return argv


def _state(args: argparse.Namespace):
    from analysis.registry import open_workspace
    from analysis.review.summary import review_state
    from analysis.verdicts.store import VerdictStore

    workspace = open_workspace(args.dir)
    store = VerdictStore.for_workspace(workspace.config.root)
    return workspace, store, review_state(workspace, store, getattr(args, "kind", None))


def cmd_summary(args: argparse.Namespace) -> int:
    from analysis.verdicts.store import export_verdicts

    _, store, state = _state(args)
    if args.out:
        written = export_verdicts(store, Path(args.out), args.kind)
        log(f"verdict history written to {written[0]}, reveal log to {written[1]}")
    payload = state.to_json()
    emit(
        payload if args.json else None,
        [f"{payload['n_verdicts']:,} verdicts on {payload['n_items']:,} items (decision rule: {state.rule})"]
        + [f"  {r['kind']}: {r['verdict']}: {r['items']:,}" for r in payload["latest_by_verdict"]]
        + [f"  disagreements awaiting an adjudicator: {len(payload['disagreements']):,}"]
        + [f"  reveals: {payload['reveals']['total']:,}"],
    )
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from analysis.registry import open_workspace
    from analysis.review.imports import known_ids, parse_assignments
    from analysis.verdicts.store import VerdictStore

    workspace = open_workspace(args.dir)
    role = "adjudicator" if args.adjudicate else "reviewer"
    rows = parse_assignments(
        args.assignments, args.kind, args.reviewer, known_ids(workspace, args.kind), role, args.note or ""
    )
    ids = VerdictStore.for_workspace(workspace.config.root).record_many(rows)
    emit({"recorded": len(ids), "seq": ids} if args.json else None, [f"{len(ids)} verdict(s) recorded as {role}"])
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from analysis.registry import open_workspace
    from analysis.review.imports import import_verdicts, read_verdict_file
    from analysis.verdicts.store import VerdictStore

    workspace = open_workspace(args.dir)
    rows = read_verdict_file(Path(args.file), workspace, args.kind)
    written, skipped = import_verdicts(VerdictStore.for_workspace(workspace.config.root), rows)
    emit(
        {"imported": written, "already_present": skipped} if args.json else None,
        [f"{written:,} verdicts imported from {args.file}; {skipped:,} were already in the store"],
    )
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    _, _, state = _state(args)
    lines = []
    for a in state.agreement:
        percent = "—" if a.percent_agreement is None else f"{a.percent_agreement:.1%}"
        kappa = "—" if a.kappa is None else f"{a.kappa:.3f}"
        interval = f" (95% CI {a.kappa_ci95[0]:.3f}–{a.kappa_ci95[1]:.3f})" if a.kappa_ci95 else ""
        lines.append(
            f"{a.group}: {a.n_items} items judged by 2+ of {a.n_reviewers} reviewers; agreement {percent}; "
            f"{a.statistic or 'kappa'} {kappa}{interval}" + ("" if a.judgeable else " — too few to judge")
        )
    emit(
        {"decision_rule": state.rule, "agreement": [a.to_json() for a in state.agreement]} if args.json else None,
        lines or ["no item has verdicts from two reviewers yet"],
    )
    return 0


def add_verdict_commands(sub: Any, workspace_command) -> None:
    parser = sub.add_parser("verdicts", help="reviewer verdicts: summary and export (default), add, import, agreement")
    actions = parser.add_subparsers(dest="verdicts_action", required=True, metavar="ACTION")
    p = workspace_command(
        actions, "summary", "decisions, disagreements, agreement, queues, reveals; --out exports", cmd_summary
    )
    p.add_argument("--kind", choices=["removal", "regurgitation"], help="only this kind of verdict")
    p.add_argument("--out", help="write the verdict history to F.csv or F.parquet (reveal log beside it)")

    p = workspace_command(actions, "add", "record verdicts: ID=VERDICT ...", cmd_add)
    p.add_argument("assignments", nargs="+", metavar="ID=VERDICT")
    p.add_argument("--kind", choices=["removal", "regurgitation"], required=True)
    p.add_argument("--reviewer", required=True)
    p.add_argument("--adjudicate", action="store_true", help="record as the adjudicator: final for these items")
    p.add_argument("--note")

    p = workspace_command(actions, "import", "import verdicts from a CSV (id, verdict, reviewer, time)", cmd_import)
    p.add_argument("file", type=Path)
    p.add_argument("--kind", choices=["removal", "regurgitation"], help="for a file without a kind column")

    p = workspace_command(actions, "agreement", "percent agreement and Cohen's/Fleiss' kappa per filter", cmd_agreement)
    p.add_argument("--kind", choices=["removal", "regurgitation"])
