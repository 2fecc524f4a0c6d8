"""No worker outlives `prepare`: killed with SIGKILL in the middle of embedding or of PDQ hashing, every process
it started exits (issue 19). PRETRAIN_AUDIT_KILL_ROUNDS=20 runs the acceptance count; the suite runs 4."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import CLI, REPO, run_cli

ROUNDS = int(os.environ.get("PRETRAIN_AUDIT_KILL_ROUNDS", "4"))


def _group_members(group: int) -> list[int]:
    """Live processes (not zombies) in a process group, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, process_group = fields[0], int(fields[2])
        if process_group == group and state != "Z":
            members.append(int(entry.name))
    return members


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def prepared(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the prepared sample: each round deletes one phase's cache so that only that phase runs again."""
    directory = tmp_path_factory.mktemp("kill") / "ws"
    shutil.copytree(sample_dir, directory, ignore=shutil.ignore_patterns("reviews.sqlite*", "*.lock"))
    assert run_cli("prepare", str(directory), "--no-progress", "--workers", "2").returncode == 0  # all cached
    return directory


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to find the workers")
@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_killing_prepare_leaves_no_worker_behind(prepared: Path, round_number: int) -> None:
    phase = ("embeddings", "pdq")[round_number % 2]
    shutil.rmtree(prepared / ".audit-cache" / phase, ignore_errors=True)  # so that this phase runs again
    process = subprocess.Popen(
        [*CLI, "prepare", str(prepared), "--no-progress", "--workers", "2"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: every process it starts is found by the group id
    )
    try:
        started = _wait_for(lambda: len(_group_members(process.pid)) >= 3, timeout=120)
        assert started, f"prepare never started its workers ({phase})"
        time.sleep(random.Random(round_number).uniform(0.0, 1.0))
        workers = [pid for pid in _group_members(process.pid) if pid != process.pid]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        gone = _wait_for(lambda: not _group_members(process.pid), timeout=15)
        assert gone, f"workers {_group_members(process.pid)} of {workers} outlived prepare ({phase})"
    finally:
        for pid in _group_members(process.pid):
            os.kill(pid, signal.SIGKILL)
