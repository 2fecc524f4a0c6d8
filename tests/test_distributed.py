"""The heavy steps on a real Dask cluster — a `dask scheduler` and two `dask worker` processes on localhost, started
as a user starts them — give the same results as the single-process engine."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.distributed import parse_scheduler
from analysis.errors import AuditInputError
from bench.distributed_bench import start_cluster
from tests.helpers import CLI, free_port, run_cli

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


def test_contamination_on_a_two_worker_cluster_finds_the_same_items(
    sample_dir: Path, tmp_path: Path, cluster: str
) -> None:
    single = _fresh_copy(sample_dir, tmp_path / "single")
    distributed = _fresh_copy(sample_dir, tmp_path / "dask")
    for workspace in (single, distributed):  # no cached search: each run does its own
        shutil.rmtree(workspace / ".audit-cache" / "contamination", ignore_errors=True)
    expected = run_cli("contamination", str(single), "--json")
    found = run_cli("contamination", str(distributed), "--json", "--scheduler", cluster)
    assert expected.returncode == 0 and found.returncode == 0, found.stderr
    assert "nearest training images: 1/1 tasks done" in found.stderr
    assert "caption chunks: 1/1 tasks done" in found.stderr
    a, b = json.loads(expected.stdout)["sets"][0], json.loads(found.stdout)["sets"][0]
    assert a["captions"] == b["captions"] and a["captions"]["n_matched"] == 5
    assert a["images"]["n_matched"] == b["images"]["n_matched"] == 8
    assert a["images"]["matches"] == b["images"]["matches"]


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
    on that image alone, so they must equal one process's on the same images, to the last bit where the threads
    are the same."""
    workspaces = []
    for name in ("cluster", "one-thread"):
        workspace = tmp_path / name
        shutil.copytree(
            sample_dir, workspace, ignore=shutil.ignore_patterns("reviews.sqlite*", "*.lock", ".audit-cache")
        )
        original = pd.read_parquet(workspace / "original.parquet")
        original.sample(96, random_state=0).to_parquet(workspace / "original.parquet", index=False)
        generated = pd.read_parquet(workspace / "generated.parquet").head(8).assign(source_id=None)
        generated.to_parquet(workspace / "generated.parquet", index=False)
        workspaces.append(workspace)
    completed = run_cli("prepare", str(workspaces[0]), "--scheduler", cluster, "--no-progress", "--chunk-rows", "32")
    assert completed.returncode == 0, completed.stderr
    assert "embedding original (3 chunks of 32)" in completed.stderr, completed.stderr
    assert "PDQ hashes (original): " in completed.stderr
    # one process with one thread, as each single-threaded worker runs the model
    single = subprocess.run(
        [*CLI, "prepare", str(workspaces[1]), "--no-progress", "--chunk-rows", "32"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    assert single.returncode == 0, single.stderr
    vectors, hashes = _embeddings(workspaces[0])
    assert len(vectors) == 96
    one_thread, _ = _embeddings(workspaces[1])
    assert np.array_equal(vectors.to_numpy(), one_thread.loc[vectors.index].to_numpy())  # the last bit of float16
    # Against the sample prepared with two threads: the model's reductions add in another order, and 0.4% of the
    # float16 values round the other way, by one unit in the last place (6.1e-5), measured on these images.
    expected_vectors, expected_hashes = _embeddings(sample_dir)
    found, expected = vectors.to_numpy(), expected_vectors.loc[vectors.index].to_numpy()
    one_unit = np.spacing(np.maximum(np.abs(found), np.abs(expected)).astype(np.float16)).astype(np.float32)
    assert (np.abs(found - expected) <= one_unit).all()
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


@pytest.mark.parametrize(
    ("setting", "named"),
    [('scheduler = "yarn"', "[compute] scheduler 'yarn'"), ("task_rows = 0", "[compute] task_rows must be a positive")],
)
def test_a_bad_compute_setting_in_the_config_is_one_error_naming_the_file(
    sample_dir: Path, tmp_path: Path, setting: str, named: str
) -> None:
    workspace = _fresh_copy(sample_dir, tmp_path / "bad")
    config = workspace / "audit.toml"
    config.write_text(config.read_text() + f"\n[compute]\n{setting}\n")
    completed = run_cli("bias", str(workspace))
    assert completed.returncode == 2
    assert "audit.toml" in completed.stderr and named in completed.stderr and "Traceback" not in completed.stderr


TASK_ROWS = 300  # the sample's 1,000 images in 4 tasks: every offloaded step is really split and merged
REGURGITATION_TASK_ROWS = 30  # its 100 samples' candidates and their images in >= 3 tasks


def _split_copy(sample_dir: Path, target: Path, task_rows: int = TASK_ROWS) -> Path:
    """A fresh copy whose `[compute] task_rows` cuts every offloaded step into ≥ 3 tasks, with no cached result
    of a step that runs on the cluster (only embeddings and hashes are kept: local features are extracted on the
    cluster too)."""
    workspace = _fresh_copy(sample_dir, target)
    for cached in ("concepts", "captions", "contamination", "features"):
        shutil.rmtree(workspace / ".audit-cache" / cached, ignore_errors=True)
    config = workspace / "audit.toml"
    config.write_text(config.read_text() + f"\n[compute]\ntask_rows = {task_rows}\n")
    return workspace


def _tasks(stderr: str, what: str) -> int:
    """How many tasks the last progress line of `what` (the start of the step's name) reports (0 when the step
    did not run on the cluster)."""
    counts = re.findall(rf"{re.escape(what)}[^:\n]*: (\d+)/(\d+) tasks done", stderr)
    assert not counts or counts[-1][0] == counts[-1][1], counts
    return int(counts[-1][1]) if counts else 0


def _run_both(command: str, sample_dir: Path, tmp_path: Path, cluster: str, *extra: str, task_rows: int = TASK_ROWS):
    """`command` in one process and split over the cluster, on fresh copies: (one process, cluster) as
    (JSON, --out table, stderr of the cluster run)."""
    runs = []
    for name, scheduler in (("single", ()), ("split", ("--scheduler", cluster))):
        workspace = _split_copy(sample_dir, tmp_path / name, task_rows)
        out = tmp_path / f"{name}.parquet"
        completed = run_cli(command, str(workspace), "--json", "--out", str(out), *extra, *scheduler)
        assert completed.returncode == 0, completed.stderr
        runs.append((json.loads(completed.stdout), pd.read_parquet(out), completed.stderr))
    return runs


def test_dedup_split_into_tasks_equals_one_process_in_whole(sample_dir: Path, tmp_path: Path, cluster: str) -> None:
    """The search, the local features and the pixel verification of every candidate each run as several tasks:
    the same groups (`--json`, `--out`), and the same inliers, coverage, mirror flag and tier for every candidate
    pair (`--pairs-out`)."""
    runs = []
    for name, scheduler in (("single", ()), ("split", ("--scheduler", cluster))):
        workspace = _split_copy(sample_dir, tmp_path / name)
        out, pairs = tmp_path / f"{name}.parquet", tmp_path / f"{name}-pairs.parquet"
        completed = run_cli(
            "dedup", str(workspace), "--clusters", "8", "--json", "--out", str(out), "--pairs-out", str(pairs),
            *scheduler,
        )  # fmt: skip
        assert completed.returncode == 0, completed.stderr
        runs.append((json.loads(completed.stdout), pd.read_parquet(out), pd.read_parquet(pairs)))
    stderr = completed.stderr
    assert _tasks(stderr, "assigning 1,000 images") >= 3 and _tasks(stderr, "pair search") >= 3, stderr
    assert _tasks(stderr, "local features of") >= 3 and _tasks(stderr, "verifying") >= 3, stderr
    assert _tasks(stderr, "pixel agreement of") >= 1, stderr
    (expected, expected_out, expected_pairs), (found, found_out, found_pairs) = runs
    assert found == expected and expected["n_groups"] > 10
    pd.testing.assert_frame_equal(found_out, expected_out)
    assert len(expected_pairs) > 100 and expected_pairs["verified"].sum() > 10
    pd.testing.assert_frame_equal(found_pairs, expected_pairs)


def test_regurgitation_split_into_tasks_equals_one_process_in_whole(
    sample_dir: Path, tmp_path: Path, cluster: str
) -> None:
    """The partial top-k of each partition of the training set are merged on the client: the merge must give the
    one-process neighbours, ties included."""
    (expected, expected_out, _), (found, found_out, stderr) = _run_both(
        "regurgitation", sample_dir, tmp_path, cluster, task_rows=REGURGITATION_TASK_ROWS
    )
    assert _tasks(stderr, "nearest training images") >= 3, stderr
    assert _tasks(stderr, "local features of") >= 3 and _tasks(stderr, "verifying") >= 3, stderr
    # the search's name says where it ran ("exact (faiss)", "exact, 4 partitions on Dask"): nothing else differs
    assert found.pop("search").startswith("exact, ") and expected.pop("search").startswith("exact")
    assert found == expected and expected["n_flagged"] > 0
    pd.testing.assert_frame_equal(found_out, expected_out)


def test_bias_split_into_tasks_equals_one_process_in_whole(sample_dir: Path, tmp_path: Path, cluster: str) -> None:
    expected = _json("bias", str(_split_copy(sample_dir, tmp_path / "single")))
    completed = run_cli("bias", str(_split_copy(sample_dir, tmp_path / "split")), "--json", "--scheduler", cluster)
    assert completed.returncode == 0, completed.stderr
    assert _tasks(completed.stderr, "counting 1,000 captions") >= 3, completed.stderr
    assert json.loads(completed.stdout) == expected


def test_concepts_split_into_tasks_equal_one_process_in_whole(sample_dir: Path, tmp_path: Path, cluster: str) -> None:
    (expected, expected_out, _), (found, found_out, stderr) = _run_both(
        "concepts", sample_dir, tmp_path, cluster, "--no-map"
    )
    assert _tasks(stderr, "assigning 1,000 images") >= 3, stderr
    assert found == expected and len(expected["clusters"]) > 2
    pd.testing.assert_frame_equal(found_out, expected_out)


def test_contamination_split_into_tasks_equals_one_process_in_whole(
    sample_dir: Path, tmp_path: Path, cluster: str
) -> None:
    """The training set's partitions for the image search and its caption chunks, each run as a task: the merged
    matches are those of one process."""
    (expected, expected_out, _), (found, found_out, stderr) = _run_both("contamination", sample_dir, tmp_path, cluster)
    assert _tasks(stderr, "nearest training images") >= 3 and _tasks(stderr, "caption chunks") >= 3, stderr
    # the search's name says where it ran ("exact (faiss)", "exact, 4 partitions on Dask"): nothing else differs
    found_images, expected_images = found["sets"][0]["images"], expected["sets"][0]["images"]
    assert found_images.pop("search").startswith("exact, ") and expected_images.pop("search").startswith("exact")
    assert found == expected and expected["sets"][0]["n_contaminated"] == 13
    pd.testing.assert_frame_equal(found_out, expected_out)
