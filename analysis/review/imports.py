"""Verdicts from outside the dashboard: `ID=VERDICT` arguments and CSV files from an external labelling tool,
validated line by line before anything is written (a file with one bad line writes nothing)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from analysis.errors import AuditInputError
from analysis.verdicts.store import VerdictRow, VerdictStore, verdict_problem
from analysis.workspace import Workspace

REQUIRED_COLUMNS = ("id", "verdict", "reviewer", "time")
OPTIONAL_COLUMNS = ("kind", "note", "role")
SHOWN_ERRORS = 5


def known_ids(workspace: Workspace, kind: str) -> set[str]:
    """The ids a verdict of this kind may name: training rows for removals, generated samples for copies."""
    frame = workspace.generated if kind == "regurgitation" else workspace.original
    return set() if frame is None else set(frame["id"].astype(str))


def parse_assignments(
    assignments: Sequence[str], kind: str, reviewer: str, ids: set[str], role: str = "reviewer", note: str = ""
) -> list[VerdictRow]:
    """`ID=VERDICT` arguments (quote a verdict with a space: `a1="correct removal"`) into validated rows."""
    rows, errors = [], []
    for text in assignments:
        item, sep, verdict = text.partition("=")
        problem = (
            ("not ID=VERDICT", "write e.g. a1='false positive'")
            if not sep or not item
            else (f"unknown id '{item}'", f"use an id of the {kind} set")
            if item not in ids
            else verdict_problem(kind, verdict, reviewer, role)
        )
        if problem:
            errors.append(f"{text!r}: {problem[0]} ({problem[1]})")
        else:
            rows.append(VerdictRow(kind, item, verdict, reviewer, note, role))
    if errors:
        raise AuditInputError(_joined(errors), fix="correct these arguments; nothing was recorded.")
    return rows


def read_verdict_file(path: Path, workspace: Workspace, default_kind: str | None) -> list[VerdictRow]:
    """Rows of a CSV with columns id, verdict, reviewer, time (ISO 8601 or seconds since 1970) and optionally kind,
    note and role; every line is checked and every problem reported with its line number."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise AuditInputError("file not found.", path=path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise AuditInputError(f"is not a readable CSV ({exc}).", path=path, fix="export it as UTF-8 CSV.") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing or ("kind" not in frame.columns and default_kind is None):
        needed = missing + ([] if "kind" in frame.columns or default_kind else ["kind (or --kind)"])
        raise AuditInputError(
            f"missing column(s) {', '.join(needed)}.",
            path=path,
            fix=f"the columns are {', '.join(REQUIRED_COLUMNS)} and optionally {', '.join(OPTIONAL_COLUMNS)}.",
        )
    ids = {kind: known_ids(workspace, kind) for kind in ("removal", "regurgitation")}
    rows, errors = [], []
    for line, record in enumerate(frame.to_dict("records"), start=2):  # line 1 is the header
        kind = record.get("kind") or default_kind or ""
        role = record.get("role") or "reviewer"
        when = _timestamp(record["time"])
        problem = verdict_problem(kind, record["verdict"], record["reviewer"], role)
        if problem is None and record["id"] not in ids[kind]:
            problem = (f"unknown id '{record['id']}'", f"use an id of the {kind} set")
        if problem is None and when is None:
            problem = (f"time '{record['time']}' is not a date", "write ISO 8601, e.g. 2026-11-26T09:30:00Z")
        if problem:
            errors.append(f"line {line}: {problem[0]} ({problem[1]})")
            continue
        assert when is not None
        rows.append(
            VerdictRow(kind, record["id"], record["verdict"], record["reviewer"], record.get("note", ""), role, when)
        )
    if errors:
        raise AuditInputError(_joined(errors), path=path, fix="correct these lines; nothing was imported.")
    return rows


def import_verdicts(store: VerdictStore, rows: list[VerdictRow]) -> tuple[int, int]:
    """(written, already present): a row equal to a stored verdict (kind, id, verdict, reviewer, role, time) is
    skipped, so importing the same export twice adds nothing."""
    history = store.history()
    seen = set(
        zip(
            history["kind"],
            history["item_id"],
            history["verdict"],
            history["reviewer"],
            history["role"],
            ((history["created_at"].astype("int64") + 500_000) // 1_000_000).to_numpy(),  # to the millisecond
        )
    )
    fresh = [
        row
        for row in rows
        if (
            row.kind,
            row.item_id,
            row.verdict,
            row.reviewer.strip(),
            row.role,
            int(round((row.created_at or 0) * 1000)),
        )
        not in seen
    ]
    if fresh:
        store.record_many(fresh)
    return len(fresh), len(rows) - len(fresh)


def _timestamp(text: str) -> float | None:
    """Seconds since 1970 from ISO 8601 (UTC when no zone is given) or a number; words like "yesterday", which a
    lenient parser would read relative to today, are refused."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)).timestamp()


def _joined(errors: list[str]) -> str:
    more = len(errors) - SHOWN_ERRORS
    return "; ".join(errors[:SHOWN_ERRORS]) + (f"; and {more} more" if more > 0 else "")
