"""The heavy steps on a real Dask cluster — a `dask scheduler` and two `dask worker` processes on localhost, started
as a user starts them — give the same results as the single-process engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.distributed import parse_scheduler
from analysis.errors import AuditInputError
from bench.distributed_bench import start_cluster
from tests.helpers import free_port, run_cli

pytestmark = pytest.mark.cluster  # a Dask cluster (tcp:// or local): not in `make test-fast`


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """tcp://127.0.0.1:PORT of a scheduler with two single-threaded workers; stopped after the module."""
    address, processes = start_cluster(tmp_path_factory.mktemp("dask"))
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
    clusters = ("--clusters", "8")  # the sample is one cluster by default; 8 makes the k-means assignment run
    assert run_cli("dedup", str(single), *clusters, "--out", str(tmp_path / "single.parquet")).returncode == 0
    completed = run_cli(
        "dedup", str(distributed), *clusters, "--scheduler", cluster, "--out", str(tmp_path / "dask.parquet")
    )
    assert completed.returncode == 0, completed.stderr
    assert "Dask: tcp://127.0.0.1" in completed.stderr and "2 workers" in completed.stderr
    assert "pair search:" in completed.stderr  # the in-cluster searches ran as tasks
    assert "assigning" in completed.stderr  # and the k-means assignment of every image
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
    assert "nearest training images: 1/1 tasks done" in found.stderr
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
    with pytest.raises(
        AuditInputError, match="scheduler '.*' (is not local, local:N, tcp://HOST:PORT or none|has no workers)"
    ):
        parse_scheduler(bad)


@pytest.mark.parametrize(("host", "reason"), [("127.0.0.1", "Connection refused"), ("no-such-host.invalid", "")])
def test_an_unreachable_scheduler_exits_2_with_one_line(sample_dir: Path, tmp_path: Path, host, reason) -> None:
    """A refused port or an unknown host is said at once, by one plain connect (Dask's client would retry for 20 s)."""
    workspace = _fresh_copy(sample_dir, tmp_path / "gone")
    completed = run_cli("dedup", str(workspace), "--scheduler", f"tcp://{host}:{free_port()}")
    assert completed.returncode == 2
    assert "cannot reach the Dask scheduler" in completed.stderr and "Traceback" not in completed.stderr
    assert reason in completed.stderr and len(completed.stderr.strip().splitlines()) == 1


def _embeddings(workspace: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The original set's embeddings (one row per id) and PDQ hashes."""
    from analysis.copies.pdq import pdq_hashes
    from analysis.embedding_store import load_embeddings
    from analysis.workspace import load_workspace

    loaded = load_workspace(workspace)
    found = load_embeddings(loaded, "original")
    assert found is not None
    vectors = pd.DataFrame(np.asarray(found.vectors, dtype=np.float32), index=loaded.original["id"].astype(str))
    return vectors, pdq_hashes(loaded, "original")


def test_prepare_on_a_two_worker_cluster_embeds_and_hashes_the_same_images(
    sample_dir: Path, tmp_path: Path, cluster: str
) -> None:
    """96 of the sample's images in 3 chunks, so that both workers embed; each image's embedding and hash depends
    on that image alone, so they must equal the single-process ones of the full prepared sample."""
    workspace = tmp_path / "fresh"
    shutil.copytree(sample_dir, workspace, ignore=shutil.ignore_patterns("reviews.sqlite*", "*.lock", ".audit-cache"))
    original = pd.read_parquet(workspace / "original.parquet")
    original.sample(96, random_state=0).to_parquet(workspace / "original.parquet", index=False)
    generated = pd.read_parquet(workspace / "generated.parquet").head(8).assign(source_id=None)
    generated.to_parquet(workspace / "generated.parquet", index=False)
    completed = run_cli("prepare", str(workspace), "--scheduler", cluster, "--no-progress", "--chunk-rows", "32")
    assert completed.returncode == 0, completed.stderr
    assert "embedding original (3 chunks of 32)" in completed.stderr, completed.stderr
    assert "PDQ hashes (original): " in completed.stderr
    vectors, hashes = _embeddings(workspace)
    expected_vectors, expected_hashes = _embeddings(sample_dir)
    assert len(vectors) == 96
    # float16 storage of float32 model outputs: one process per worker (one BLAS thread) may round the last bit
    assert np.abs(vectors.to_numpy() - expected_vectors.loc[vectors.index].to_numpy()).max() < 2e-3
    expected_hashes = expected_hashes.set_index("id").loc[hashes["id"]].reset_index()
    pd.testing.assert_frame_equal(hashes, expected_hashes[hashes.columns])


def _json(*args: str) -> dict:
    completed = run_cli(*args, "--json")
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def test_bias_counts_on_a_two_worker_cluster_equal_one_process(sample_dir: Path, cluster: str) -> None:
    expected = _json("bias", str(sample_dir), "--terms", "woman,man,clock,dog")
    found = _json("bias", str(sample_dir), "--terms", "woman,man,clock,dog", "--scheduler", cluster)
    assert found == expected
    assert expected["terms"][0]["original"]["count"] > 30  # the comparison is of real counts, not of zeros


def test_bias_reweighting_with_a_scheduler_is_a_clear_error(sample_dir: Path, cluster: str) -> None:
    completed = run_cli("bias", str(sample_dir), "--reweight", "--scheduler", cluster)
    assert completed.returncode == 2
    assert "reweighting runs in one process" in completed.stderr and "Traceback" not in completed.stderr


def test_concept_clusters_on_a_two_worker_cluster_equal_one_process(
    sample_dir: Path, tmp_path: Path, cluster: str
) -> None:
    single, distributed = _fresh_copy(sample_dir, tmp_path / "single"), _fresh_copy(sample_dir, tmp_path / "dask")
    for cache in (single, distributed):
        shutil.rmtree(cache / ".audit-cache" / "concepts", ignore_errors=True)
    expected = _json("concepts", str(single), "--no-map", "--out", str(tmp_path / "single.parquet"))
    found = _json(
        "concepts", str(distributed), "--no-map", "--scheduler", cluster, "--out", str(tmp_path / "d.parquet")
    )
    assert found == expected and len(expected["clusters"]) > 2
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "d.parquet"), pd.read_parquet(tmp_path / "single.parquet"))


def test_the_workspace_config_names_the_scheduler_and_the_flag_overrides_it(
    sample_dir: Path, tmp_path: Path, cluster: str
) -> None:
    workspace = _fresh_copy(sample_dir, tmp_path / "configured")
    config = workspace / "audit.toml"
    config.write_text(config.read_text() + f'\n[compute]\nscheduler = "{cluster}"\n')
    assert "Dask: tcp://127.0.0.1" in run_cli("dedup", str(workspace), "--verify", "none").stderr
    assert "Dask:" not in run_cli("dedup", str(workspace), "--verify", "none", "--scheduler", "none").stderr


def test_a_bad_scheduler_in_the_config_names_the_file(sample_dir: Path, tmp_path: Path) -> None:
    workspace = _fresh_copy(sample_dir, tmp_path / "bad")
    config = workspace / "audit.toml"
    config.write_text(config.read_text() + '\n[compute]\nscheduler = "yarn"\n')
    completed = run_cli("bias", str(workspace))
    assert completed.returncode == 2
    assert "audit.toml" in completed.stderr and "[compute] scheduler 'yarn'" in completed.stderr
