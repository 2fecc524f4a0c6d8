"""The heavy steps on a real Dask cluster — a `dask scheduler` and two `dask worker` processes on localhost, started
as a user starts them — give the same results as the single-process engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from analysis.distributed import parse_scheduler
from analysis.errors import AuditInputError
from tests.helpers import free_port, run_cli

DASK = Path(sys.executable).parent / "dask"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """tcp://127.0.0.1:PORT of a scheduler with two single-threaded workers; stopped after the module."""
    port = free_port()
    logs = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{port}"
    processes = [
        subprocess.Popen(
            [str(DASK), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
            stdout=subprocess.DEVNULL,
            stderr=(logs / "scheduler.log").open("w"),
        )
    ]
    time.sleep(2)
    for number in range(2):
        processes.append(
            subprocess.Popen(
                [str(DASK), "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard"],
                stdout=subprocess.DEVNULL,
                stderr=(logs / f"worker{number}.log").open("w"),
            )
        )
    from distributed import Client

    with Client(address, timeout="30s") as client:
        client.wait_for_workers(2, timeout=60)
    yield address
    for process in processes[::-1]:
        process.terminate()
        process.wait(timeout=30)


def _fresh_copy(sample_dir: Path, target: Path) -> Path:
    """The prepared sample without any dedup or regurgitation result cached, so each run computes its own."""
    shutil.copytree(
        sample_dir, target, ignore=shutil.ignore_patterns("reviews.sqlite*", "*.lock", "dedup", "regurgitation")
    )
    return target


def test_dedup_on_a_two_worker_cluster_gives_the_same_keep_list(sample_dir: Path, tmp_path: Path, cluster: str) -> None:
    single, distributed = _fresh_copy(sample_dir, tmp_path / "single"), _fresh_copy(sample_dir, tmp_path / "dask")
    assert run_cli("dedup", str(single), "--out", str(tmp_path / "single.parquet")).returncode == 0
    completed = run_cli("dedup", str(distributed), "--scheduler", cluster, "--out", str(tmp_path / "dask.parquet"))
    assert completed.returncode == 0, completed.stderr
    assert "Dask: tcp://127.0.0.1" in completed.stderr and "2 workers" in completed.stderr
    assert "pair search:" in completed.stderr  # the in-cluster searches ran as tasks
    expected, found = pd.read_parquet(tmp_path / "single.parquet"), pd.read_parquet(tmp_path / "dask.parquet")
    pd.testing.assert_frame_equal(found, expected)
    assert (~expected["keep"]).sum() > 50  # the sample's families are found: the comparison is not of empty lists


def test_regurgitation_on_a_two_worker_cluster_flags_the_same_samples(
    sample_dir: Path, tmp_path: Path, cluster: str
) -> None:
    single, distributed = _fresh_copy(sample_dir, tmp_path / "single"), _fresh_copy(sample_dir, tmp_path / "dask")
    expected = run_cli("regurgitation", str(single), "--json")
    found = run_cli("regurgitation", str(distributed), "--json", "--scheduler", cluster)
    assert expected.returncode == 0 and found.returncode == 0, found.stderr
    assert "partitions on the cluster" in found.stderr
    a, b = json.loads(expected.stdout), json.loads(found.stdout)
    assert a["n_flagged"] == b["n_flagged"] > 0
    pick = lambda payload: {s["id"]: (s["flagged"], s["best_match"]) for s in payload["samples"]}  # noqa: E731
    assert pick(a) == pick(b)


def test_a_local_cluster_runs_with_the_same_switch(sample_dir: Path, tmp_path: Path) -> None:
    workspace = _fresh_copy(sample_dir, tmp_path / "local")
    completed = run_cli("dedup", str(workspace), "--scheduler", "local:2", "--json", "--verify", "none")
    assert completed.returncode == 0, completed.stderr
    assert "Dask: local cluster (2 workers)" in completed.stderr


@pytest.mark.parametrize("bad", ["local:0", "tcp://nohost", "yarn", "tcp://host:port"])
def test_a_bad_scheduler_is_one_clear_error(bad: str) -> None:
    with pytest.raises(AuditInputError, match="--scheduler"):
        parse_scheduler(bad)


def test_an_unreachable_scheduler_exits_2_with_one_line(sample_dir: Path, tmp_path: Path) -> None:
    workspace = _fresh_copy(sample_dir, tmp_path / "gone")
    completed = run_cli("dedup", str(workspace), "--scheduler", f"tcp://127.0.0.1:{free_port()}")
    assert completed.returncode == 2
    assert "cannot reach the Dask scheduler" in completed.stderr and "Traceback" not in completed.stderr
