"""The review store: one append-only SQLite file in the workspace holding every verdict (per item and reviewer),
every reveal of a blurred image, and every review queue drawn.

Verdicts are evidence, so nothing is ever updated or deleted: a change of mind is a new row, and a second
reviewer's verdict sits beside the first instead of replacing it (`analysis.verdicts.decisions` turns them into one
decision). WAL mode plus a busy timeout lets several browser sessions and CLI processes write at once without
losing a row; every write is its own committed transaction. Stores made before reviewer roles, reveals and
queues existed are migrated in place by adding what is missing; no existing row is touched.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.errors import AuditInputError

DATABASE_NAME = "reviews.sqlite"
REMOVAL_VERDICTS = ("correct removal", "false positive", "unsure")
COPY_VERDICTS = ("copy", "not a copy", "unsure")
VERDICTS_BY_KIND = {"removal": REMOVAL_VERDICTS, "regurgitation": COPY_VERDICTS}
POSITIVE_VERDICT = {"removal": "correct removal", "regurgitation": "copy"}
ROLES = ("reviewer", "adjudicator")
# Labels of a filter being built (analysis/filters) live in their own database of the same design; their kind
# is "filter:NAME".
FILTER_LABELS = ("positive", "negative", "skip")
FILTER_KIND_PREFIX = "filter:"

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
CREATE TABLE IF NOT EXISTS reveals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    reviewer TEXT NOT NULL,
    item_id TEXT NOT NULL,
    page TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS reveals_reviewer ON reveals (reviewer, created_at);
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    population TEXT NOT NULL,
    strata TEXT NOT NULL,
    seed INTEGER NOT NULL,
    n_requested INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS queue_items (
    queue TEXT NOT NULL REFERENCES queues(name),
    position INTEGER NOT NULL,
    item_id TEXT NOT NULL,
    stratum TEXT NOT NULL,
    stratum_size INTEGER NOT NULL,
    stratum_sampled INTEGER NOT NULL,
    inclusion_probability REAL NOT NULL,
    PRIMARY KEY (queue, position)
);
"""
QUEUE_COLUMNS = ("name", "kind", "population", "strata", "seed", "n_requested", "created_at")
QUEUE_ITEM_COLUMNS = ("position", "item_id", "stratum", "stratum_size", "stratum_sampled", "inclusion_probability")


@dataclass(frozen=True)
class VerdictRow:
    """One verdict to append; `created_at` (seconds since the epoch) defaults to now, an import keeps its own."""

    kind: str
    item_id: str
    verdict: str
    reviewer: str
    note: str = ""
    role: str = "reviewer"
    created_at: float | None = None


def verdict_problem(kind: str, verdict: str, reviewer: str, role: str = "reviewer") -> tuple[str, str] | None:
    """(what is wrong, how to fix it) with one verdict, or None: the one validation of the store, the CLI and
    imports."""
    allowed = FILTER_LABELS if kind.startswith(FILTER_KIND_PREFIX) else VERDICTS_BY_KIND.get(kind)
    if allowed is None:
        return f"unknown verdict kind '{kind}'", f"use one of {list(VERDICTS_BY_KIND)}"
    if verdict not in allowed:
        return f"'{verdict}' is not a {kind} verdict", f"use one of {list(allowed)}"
    if not reviewer.strip():
        return "a verdict needs a reviewer name", "enter your name before judging"
    if role not in ROLES:
        return f"unknown role '{role}'", f"use one of {list(ROLES)}"
    return None


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
        """Create or upgrade the schema. Under a lock file beside the database: processes opening a new store at
        the same moment (labellers, reviewers, workers) would otherwise both add the `role` column, or meet
        SQLite's busy WAL switch, and fail (tests/test_reviews.py)."""
        from filelock import FileLock, Timeout

        try:
            with FileLock(f"{self.path}.lock", timeout=60), closing(self._connect()) as connection:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.executescript(SCHEMA)
                columns = {row[1] for row in connection.execute("PRAGMA table_info(verdicts)")}
                if "role" not in columns:  # a store from before double review: every earlier verdict is a reviewer's
                    connection.execute("ALTER TABLE verdicts ADD COLUMN role TEXT NOT NULL DEFAULT 'reviewer'")
        except sqlite3.DatabaseError as exc:
            raise AuditInputError(
                f"verdict database cannot be opened ({exc}).",
                path=self.path,
                fix="restore it from a backup or move it aside; it is never rewritten.",
            ) from None
        except Timeout:
            raise AuditInputError(
                "verdict database is being set up by another process that has not finished in 60 s.",
                path=self.path,
                fix=f"stop the other process, or remove {self.path.name}.lock if none is running.",
            ) from None

    def record(
        self, kind: str, item_id: str, verdict: str, reviewer: str, note: str = "", role: str = "reviewer"
    ) -> int:
        """Append one verdict; returns its sequence number once it is committed to disk."""
        return self.record_many([VerdictRow(kind, str(item_id), verdict, reviewer, note, role)])[-1]

    def record_many(self, rows: Sequence[VerdictRow]) -> list[int]:
        """Append verdicts in one transaction (all or none); each is validated first."""
        for row in rows:
            problem = verdict_problem(row.kind, row.verdict, row.reviewer, row.role)
            if problem:
                raise AuditInputError(f"{problem[0]}.", fix=f"{problem[1]}.")
        now = time.time()
        values = [
            (
                r.kind,
                r.item_id,
                r.verdict,
                r.reviewer.strip(),
                r.note,
                r.role,
                now if r.created_at is None else r.created_at,
            )
            for r in rows
        ]
        return self._insert_all(
            "INSERT INTO verdicts (kind, item_id, verdict, reviewer, note, role, created_at) VALUES (?,?,?,?,?,?,?)",
            values,
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (busy_timeout waits for concurrent writers): all or nothing."""
        with closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    def _insert_all(self, statement: str, values: Iterable[tuple]) -> list[int]:
        with self._transaction() as connection:
            return [int(connection.execute(statement, value).lastrowid or 0) for value in values]

    def history(self, kind: str | None = None) -> pd.DataFrame:
        """Every verdict, oldest first."""
        query = "SELECT seq, kind, item_id, verdict, reviewer, role, note, created_at FROM verdicts"
        return self._read(query + (" WHERE kind = ?" if kind else "") + " ORDER BY seq", (kind,) if kind else ())

    def _read(self, query: str, params: tuple = ()) -> pd.DataFrame:
        with closing(self._connect()) as connection:
            frame = pd.read_sql_query(query, connection, params=params)
        if "created_at" in frame.columns:
            frame["created_at"] = pd.to_datetime(frame["created_at"], unit="s", utc=True)
        return frame

    def own_latest(self, kind: str, reviewer: str) -> dict[str, str]:
        """item → this reviewer's latest verdict: what a reviewer's own verdict widgets show."""
        frame = self._read(
            "SELECT item_id, verdict FROM verdicts WHERE kind = ? AND reviewer = ? ORDER BY seq", (kind, reviewer)
        )
        return dict(zip(frame["item_id"], frame["verdict"]))

    # Reveals: the exposure log.
    def record_reveals(self, reviewer: str, item_ids: Sequence[str], page: str) -> list[int]:
        """Log that `reviewer` saw these images unblurred on `page`, in one transaction."""
        if not reviewer.strip():
            raise AuditInputError("a reveal needs a reviewer name.", fix="enter your name before revealing images.")
        now = time.time()
        return self._insert_all(
            "INSERT INTO reveals (reviewer, item_id, page, created_at) VALUES (?,?,?,?)",
            [(reviewer.strip(), str(item), page, now) for item in item_ids],
        )

    def reveals(self, reviewer: str | None = None) -> pd.DataFrame:
        query = "SELECT seq, reviewer, item_id, page, created_at FROM reveals"
        return self._read(
            query + (" WHERE reviewer = ?" if reviewer else "") + " ORDER BY seq", (reviewer,) if reviewer else ()
        )

    # Queues: stratified random samples, with what an estimate needs to weight them.
    def save_queue(self, queue: dict, items: pd.DataFrame) -> None:
        """Store a queue and its items in one transaction; a queue of the same name is never overwritten."""
        with self._transaction() as connection:
            if connection.execute("SELECT 1 FROM queues WHERE name = ?", (queue["name"],)).fetchone():
                raise AuditInputError(
                    f"a review queue named '{queue['name']}' already exists.",
                    fix="another session drew it a moment ago; run the command again to reopen it.",
                )
            connection.execute(
                f"INSERT INTO queues ({', '.join(QUEUE_COLUMNS)}) VALUES ({', '.join('?' * len(QUEUE_COLUMNS))})",
                tuple(queue[c] for c in QUEUE_COLUMNS),
            )
            connection.executemany(
                f"INSERT INTO queue_items (queue, {', '.join(QUEUE_ITEM_COLUMNS)}) VALUES "
                f"({', '.join('?' * (len(QUEUE_ITEM_COLUMNS) + 1))})",
                [(queue["name"], *(row[c] for c in QUEUE_ITEM_COLUMNS)) for row in items.to_dict("records")],
            )

    def queues(self, kind: str | None = None) -> pd.DataFrame:
        query = f"SELECT {', '.join(QUEUE_COLUMNS)} FROM queues"
        return self._read(query + (" WHERE kind = ?" if kind else "") + " ORDER BY created_at", (kind,) if kind else ())

    def queue_items(self, name: str) -> pd.DataFrame:
        return self._read(
            f"SELECT {', '.join(QUEUE_ITEM_COLUMNS)} FROM queue_items WHERE queue = ? ORDER BY position", (name,)
        )


def export_verdicts(store: VerdictStore, path: Path, kind: str | None = None) -> list[Path]:
    """The full verdict history, and beside it the reveal log (`NAME-reveals.csv`), as CSV or Parquet.
    CSV cells that a spreadsheet would run as formulas are quoted."""
    if path.suffix not in (".csv", ".parquet"):
        raise AuditInputError(f"unsupported export format '{path.suffix}'.", path=path, fix="use .csv or .parquet.")
    reveals_path = path.with_name(f"{path.stem}-reveals{path.suffix}")
    for frame, target in ((store.history(kind), path), (store.reveals(), reveals_path)):
        if path.suffix == ".parquet":
            frame.to_parquet(target, index=False)
        else:
            text_columns = [c for c in ("item_id", "verdict", "reviewer", "note", "page") if c in frame.columns]
            frame.assign(**{c: frame[c].map(neutralise_formula) for c in text_columns}).to_csv(target, index=False)
    return [path, reveals_path]


def neutralise_formula(value: object) -> object:
    """Prefix cells starting with = + - @ (or tab/CR) with a quote so spreadsheets show them as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
