"""Reviewer verdicts: an append-only SQLite log in the workspace; the latest verdict per item wins.

Verdicts are evidence, so nothing is ever updated or deleted: a change of mind is a new row.
WAL mode plus a busy timeout lets several browser sessions and CLI processes write at once
without losing a verdict; every write is its own committed transaction.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.errors import AuditInputError
from analysis.stats import judgeable, proportion_interval, verdicts_for_width

DATABASE_NAME = "reviews.sqlite"
REMOVAL_VERDICTS = ("correct removal", "false positive", "unsure")
COPY_VERDICTS = ("copy", "not a copy", "unsure")
VERDICTS_BY_KIND = {"removal": REMOVAL_VERDICTS, "regurgitation": COPY_VERDICTS}

SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_item ON verdicts (kind, item_id, seq);
"""


@dataclass(frozen=True)
class VerdictStore:
    path: Path

    @classmethod
    def for_workspace(cls, root: Path) -> VerdictStore:
        store = cls(Path(root) / DATABASE_NAME)
        store.initialise()
        return store

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        connection.execute("PRAGMA busy_timeout = 30000")
        connection.execute("PRAGMA synchronous = FULL")
        return connection

    def initialise(self) -> None:
        try:
            with closing(self._connect()) as connection:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise AuditInputError(
                f"verdict database cannot be opened ({exc}).",
                path=self.path,
                fix="restore it from a backup or move it aside; it is never rewritten.",
            ) from None

    def record(self, kind: str, item_id: str, verdict: str, reviewer: str, note: str = "") -> int:
        """Append one verdict; returns its sequence number once it is committed to disk."""
        allowed = VERDICTS_BY_KIND.get(kind)
        if allowed is None:
            raise AuditInputError(f"unknown verdict kind '{kind}'.", fix=f"use one of {list(VERDICTS_BY_KIND)}.")
        if verdict not in allowed:
            raise AuditInputError(f"'{verdict}' is not a {kind} verdict.", fix=f"use one of {list(allowed)}.")
        reviewer = reviewer.strip()
        if not reviewer:
            raise AuditInputError("a verdict needs a reviewer name.", fix="enter your name before judging.")
        with closing(self._connect()) as connection:  # busy_timeout waits for concurrent writers
            cursor = connection.execute(
                "INSERT INTO verdicts (kind, item_id, verdict, reviewer, note, created_at) VALUES (?,?,?,?,?,?)",
                (kind, str(item_id), verdict, reviewer, note, time.time()),
            )
            return int(cursor.lastrowid or 0)

    def history(self, kind: str | None = None) -> pd.DataFrame:
        query = "SELECT seq, kind, item_id, verdict, reviewer, note, created_at FROM verdicts"
        params: tuple = ()
        if kind:
            query += " WHERE kind = ?"
            params = (kind,)
        with closing(self._connect()) as connection:
            frame = pd.read_sql_query(query + " ORDER BY seq", connection, params=params)
        frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True)
        return frame

    def latest(self, kind: str) -> pd.DataFrame:
        """One row per judged item: its most recent verdict."""
        history = self.history(kind)
        return history.drop_duplicates("item_id", keep="last").reset_index(drop=True)


def verdict_summary(store: VerdictStore, kind: str | None = None) -> dict:
    """Counts of verdicts and of judged items by their latest verdict (`pretrain-audit verdicts --json`)."""
    latest = store.latest(kind) if kind else store.history().drop_duplicates(["kind", "item_id"], keep="last")
    counts = latest.groupby(["kind", "verdict"]).size().reset_index(name="items")
    return {
        "n_verdicts": int(len(store.history(kind))),
        "n_items": int(len(latest)),
        "latest_by_verdict": counts.to_dict("records"),
    }


def confirmed_copies(latest: pd.DataFrame) -> tuple[int, int, tuple[float, float]]:
    """(copies, judged, Clopper–Pearson 95% interval of the share) among regurgitation verdicts other than "unsure"."""
    judged = latest[latest["verdict"] != "unsure"]
    copies = int((judged["verdict"] == "copy").sum())
    return copies, len(judged), proportion_interval(copies, len(judged))


def export_verdicts(store: VerdictStore, path: Path, kind: str | None = None) -> Path:
    """CSV or Parquet of the full history. CSV cells that a spreadsheet would run as formulas are quoted."""
    frame = store.history(kind)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        safe = frame.copy()
        for column in ("item_id", "verdict", "reviewer", "note"):
            safe[column] = safe[column].map(neutralise_formula)
        safe.to_csv(path, index=False)
    else:
        raise AuditInputError(f"unsupported export format '{path.suffix}'.", path=path, fix="use .csv or .parquet.")
    return path


def neutralise_formula(value: object) -> object:
    """Prefix cells starting with = + - @ (or tab/CR) with a quote so spreadsheets show them as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def precision_estimates(
    latest: pd.DataFrame, removed: pd.DataFrame, *, bands: int = 4, target_width: float = 0.1
) -> pd.DataFrame:
    """Filter precision on what it removed, from verdicts: per filter and per score band, Clopper–Pearson
    95%, `judgeable` False below the one count rule (`analysis.stats.judgeable`).

    `removed` has one row per removed item: `id`, `filter` (one row per filter that removed it) and `score`.
    Precision = correct removals / (correct + false positives); `unsure` verdicts are left out.
    """
    judged = removed.merge(latest[["item_id", "verdict"]], left_on="id", right_on="item_id", how="inner")
    judged = judged[judged["verdict"] != "unsure"]
    rows = []
    for filter_name, group in judged.groupby("filter", sort=True):
        edges = np.linspace(group["score"].min(), group["score"].max() + 1e-9, bands + 1) if len(group) else [0, 1]
        group = group.assign(band=pd.cut(group["score"], edges, include_lowest=True).astype(str))
        for band, part in [("all scores", group)] + list(group.groupby("band", sort=True)):
            correct, total = int((part["verdict"] == "correct removal").sum()), len(part)
            low, high = proportion_interval(correct, total)
            needed = verdicts_for_width(correct / total if total else 0.5, target_width)
            rows.append(
                {
                    "filter": filter_name,
                    "score_band": band,
                    "judged": total,
                    "correct": correct,
                    "precision": correct / total if total else np.nan,
                    "ci_low": low,
                    "ci_high": high,
                    "judgeable": judgeable(total),
                    f"more_verdicts_for_width_{target_width:g}": max(0, needed - total),
                }
            )
    return pd.DataFrame(rows)
