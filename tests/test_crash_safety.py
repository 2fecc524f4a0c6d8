"""Killing `prepare` at random moments never corrupts the cache; two `prepare` runs cannot collide."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from analysis.embedding_store import load_embeddings
from analysis.embeddings import prepare
from analysis.errors import AuditInputError
from analysis.workspace import load_workspace
from tests.helpers import REPO, PrepareForker, scene_workspace

KILLS = 20
ROWS = 320  # 80 chunks of 4: 20 runs, each killed within its first 1-3 chunks, leave work for the last run


def _workspace(root: Path, n: int = ROWS) -> Path:
    return scene_workspace(root, n, 64)


def _finished_chunks(target: Path) -> int:
    return sum(1 for _ in target.rglob("*.chunks-4/*.npy"))


@pytest.mark.slow
def test_random_sigkills_leave_a_cache_that_finishes_identically(tmp_path: Path) -> None:
    reference = _workspace(tmp_path / "reference")
    prepare(load_workspace(reference), progress=False, log=lambda m: None, chunk_rows=4, workers=0)
    expected = load_embeddings(load_workspace(reference)).vectors

    target = _workspace(tmp_path / "target")
    command = [
        sys.executable,
        "-c",
        "import sys; from pathlib import Path; from analysis.embeddings import prepare; "
        "from analysis.workspace import load_workspace; "
        "prepare(load_workspace(Path(sys.argv[1])), progress=False, log=lambda m: None, chunk_rows=4, workers=0)",
        str(target),
    ]
    chooser = random.Random(1)
    kills = 0
    # Each killed run is a fork of a process that has imported the engine (torch included) and run nothing: the
    # kill lands in the same work as a fresh process's would, without paying 3-5 s of imports per run.
    with PrepareForker() as forker:
        for _ in range(KILLS):
            # Killed while it works, not while it imports: after 1-2 new chunks, somewhere inside the next one
            # (a chunk takes ~0.2 s), so the kill can land mid-computation or mid-write.
            wanted = _finished_chunks(target) + chooser.randint(1, 2)
            pid = forker.start(target, chunk_rows=4)
            deadline = time.monotonic() + 120
            while forker.alive(pid) and _finished_chunks(target) < wanted and time.monotonic() < deadline:
                time.sleep(0.005)
            time.sleep(chooser.uniform(0.0, 0.1))
            if forker.alive(pid):
                os.kill(pid, signal.SIGKILL)
                kills += 1
            forker.wait(pid)
            # Whatever state the kill left, the workspace still loads and never shows a half-written artifact.
            found = load_embeddings(load_workspace(target), required=False)
            if found is not None:
                assert np.array_equal(found.vectors, expected)
            for chunk in target.rglob("*.chunks-4/*.npy"):
                assert np.load(chunk, allow_pickle=False).shape == (4, 1280)
    error = target / "forked-prepare-error.txt"  # where a run that failed on its own left its traceback
    assert kills == KILLS, (
        "every run must be interrupted while it works for the test to mean anything",
        error.read_text() if error.exists() else "no run failed",
    )
    assert 0 < _finished_chunks(target) < ROWS // 4, "the killed runs made progress and left work to resume"
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert np.array_equal(load_embeddings(load_workspace(target)).vectors, expected)
    assert not list(target.rglob("*.tmp")), "no temporary files left behind"


def test_second_prepare_on_the_same_workspace_is_refused(tmp_path: Path) -> None:
    from filelock import FileLock

    workspace = _workspace(tmp_path, n=4)
    (workspace / ".audit-cache").mkdir(exist_ok=True)
    with FileLock(str(workspace / ".audit-cache" / "prepare.lock")):
        with pytest.raises(AuditInputError, match="another `prepare` is running"):
            prepare(load_workspace(workspace), progress=False)


def test_written_files_get_ordinary_permissions_not_mkstemps_0600(tmp_path: Path) -> None:
    import os

    from analysis.cache import atomic_write_bytes

    target = tmp_path / "report.html"
    atomic_write_bytes(target, b"<html></html>")
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~_current_umask()


def _current_umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
