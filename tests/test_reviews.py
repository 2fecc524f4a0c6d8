"""The verdict store: append-only, one vote per reviewer, nothing lost under concurrent writers, safe exports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis.errors import AuditInputError
from analysis.review.summary import all_verdicts_precision
from analysis.verdicts.decisions import decide
from analysis.verdicts.store import VerdictStore, export_verdicts
from tests.helpers import REPO


def test_a_reviewer_changing_their_mind_replaces_only_their_own_vote(tmp_path: Path) -> None:
    store = VerdictStore.for_workspace(tmp_path)
    store.record("removal", "a", "false positive", "ana")
    store.record("removal", "a", "correct removal", "ana", "looked again")
    store.record("removal", "b", "unsure", "ana")
    assert len(store.history()) == 3
    decisions = decide(store.history("removal")).set_index("item_id")
    assert decisions.loc["a", "verdict"] == "correct removal" and decisions.loc["a", "status"] == "single"
    assert store.own_latest("removal", "ana") == {"a": "correct removal", "b": "unsure"}


def test_invalid_verdicts_are_rejected(tmp_path: Path) -> None:
    store = VerdictStore.for_workspace(tmp_path)
    with pytest.raises(AuditInputError, match="not a removal verdict"):
        store.record("removal", "a", "copy", "ana")
    with pytest.raises(AuditInputError, match="reviewer name"):
        store.record("removal", "a", "unsure", "  ")


WRITER = (
    "import sys; from pathlib import Path; from analysis.verdicts.store import VerdictStore\n"
    "store = VerdictStore(Path(sys.argv[1])); writer, count = sys.argv[2], int(sys.argv[3])\n"
    "for i in range(count):\n"
    "    store.record('removal', f'item-{writer}-{i}', 'correct removal', f'reviewer-{writer}')\n"
)


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    store = VerdictStore.for_workspace(tmp_path)
    writers, each = 6, 40
    processes = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(store.path), str(w), str(each)], cwd=REPO)
        for w in range(writers)
    ]
    assert [process.wait(timeout=120) for process in processes] == [0] * writers
    history = store.history()
    assert len(history) == writers * each
    assert history["item_id"].nunique() == writers * each


def test_committed_verdicts_survive_sigkill(tmp_path: Path) -> None:
    store = VerdictStore.for_workspace(tmp_path)
    code = (
        "import sys; from pathlib import Path; from analysis.verdicts.store import VerdictStore\n"
        "s = VerdictStore(Path(sys.argv[1]))\n"
        "for i in range(100000):\n"
        "    s.record('removal', f'k{i}', 'unsure', 'bot'); print(i, flush=True)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(store.path)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    confirmed = -1
    deadline = time.monotonic() + 30
    while confirmed < 50 and time.monotonic() < deadline:
        confirmed = int(process.stdout.readline())
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    ids = set(VerdictStore.for_workspace(tmp_path).history()["item_id"])
    assert {f"k{i}" for i in range(confirmed + 1)} <= ids


def test_csv_export_neutralises_formulas(tmp_path: Path) -> None:
    store = VerdictStore.for_workspace(tmp_path)
    store.record("removal", '=HYPERLINK("http://x")', "unsure", "@ana", "+1 looks fine")
    exported = pd.read_csv(export_verdicts(store, tmp_path / "v.csv")[0])
    assert exported.loc[0, "item_id"].startswith("'=")
    assert exported.loc[0, "reviewer"] == "'@ana" and exported.loc[0, "note"] == "'+1 looks fine"


def test_precision_with_clopper_pearson_interval() -> None:
    verdicts = ["correct removal"] * 3 + ["false positive", "unsure"]
    history = pd.DataFrame(
        {"kind": "removal", "item_id": list("abcde"), "verdict": verdicts, "reviewer": "ana", "role": "reviewer"}
    )
    removed = pd.DataFrame({"id": list("abcde"), "filter": "sex", "score": [0.6, 0.7, 0.8, 0.9, 0.95]})
    table = all_verdicts_precision(decide(history), removed)
    overall = table[table["score_band"] == "all scores"].iloc[0]
    assert (overall["judged"], overall["correct"]) == (4, 3)
    assert overall["precision"] == pytest.approx(0.75)
    # 3 of 4: Clopper–Pearson 0.1941–0.9937 (R: binom.test(3, 4)$conf.int)
    assert overall["ci_low"] == pytest.approx(0.1941, abs=1e-4) and overall["ci_high"] == pytest.approx(
        0.9937, abs=1e-4
    )
    assert not overall["judgeable"], "4 verdicts are too few to judge"


def _open_when_all_are_ready(root: str, barrier) -> None:
    barrier.wait()
    VerdictStore.for_workspace(Path(root))


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Six labellers or reviewers opening a workspace's store for the first time at the same moment: each one's
    schema upgrade (the `role` column) must not trip over another's ("duplicate column name")."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for attempt in range(5):
        root = tmp_path / str(attempt)
        root.mkdir()
        barrier = context.Barrier(6)
        processes = [context.Process(target=_open_when_all_are_ready, args=(str(root), barrier)) for _ in range(6)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert [process.exitcode for process in processes] == [0] * 6, f"attempt {attempt}"
    columns = pd.read_sql(
        "PRAGMA table_info(verdicts)", __import__("sqlite3").connect(tmp_path / "0" / "reviews.sqlite")
    )
    assert "role" in set(columns["name"])
