"""The heavy steps on a Dask cluster (`--scheduler local[:N] | tcp://HOST:PORT`), with the same results as the
single-process engine: the work is cut where it is independent (the in-cluster pair search of each k-means
cluster), run as tasks, and gathered in a fixed order on the client.

Workers read the embeddings from the workspace's cache by path (a memory map), so they must see the same files:
a shared filesystem (or localhost). Dask is pure Python, runs a LocalCluster on a laptop and a real cluster with
the same code; it is what NeMo Curator's semantic dedup was built on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.errors import AuditInputError

ROWS_PER_TASK = 50_000  # clusters are batched into tasks of about this many images (a task costs ~1 ms to schedule)


@dataclass(frozen=True)
class Scheduler:
    address: str | None  # tcp://HOST:PORT, or None for a LocalCluster
    workers: int | None = None  # LocalCluster workers (default: one per core)

    def describe(self) -> str:
        return self.address or f"local cluster ({self.workers or 'one per core'} workers)"


def parse_scheduler(text: str | None) -> Scheduler | None:
    """`local`, `local:N` or `tcp://HOST:PORT`; None (no flag) keeps the single-process engine."""
    if not text:
        return None
    match = re.fullmatch(r"local(?::(\d+))?", text)
    if match:
        workers = int(match.group(1)) if match.group(1) else None
        if workers == 0:
            raise AuditInputError("--scheduler local:0 has no workers.", fix="give local:N with N ≥ 1, or local.")
        return Scheduler(None, workers)
    if re.fullmatch(r"tcp://[^\s:/]+:\d+", text):
        return Scheduler(text)
    raise AuditInputError(
        f"--scheduler {text!r} is not local, local:N or tcp://HOST:PORT.",
        fix="e.g. --scheduler local:2, or the address `dask scheduler` prints (tcp://10.0.0.5:8786).",
    )


@contextmanager
def dask_client(scheduler: Scheduler, log: Callable[[str], None]) -> Iterator:
    """A connected Dask client (and its LocalCluster when asked for one); prints the Dask dashboard's link."""
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler.address is None:
            cluster = LocalCluster(
                n_workers=scheduler.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
            client = Client(cluster)
        else:
            client = Client(scheduler.address, timeout="20s")
    except OSError as exc:
        raise AuditInputError(
            f"cannot reach the Dask scheduler at {scheduler.describe()} ({exc}).",
            fix="start `dask scheduler` and `dask worker tcp://HOST:PORT` processes, or use --scheduler local.",
        ) from None
    try:
        workers = len(client.scheduler_info().get("workers", {}))
        log(f"Dask: {scheduler.describe()}, {workers} workers; dashboard {client.dashboard_link}")
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _pairs_in_clusters(path: str, threshold: float, members: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """On a worker: the pairs above the threshold inside each of these clusters (rows of the embeddings file)."""
    from analysis.index import pairs_above

    vectors = np.load(path, allow_pickle=False, mmap_mode="r")
    found = [pairs_above(vectors, threshold, rows, with_similarities=True) for rows in members]
    if not found:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    return np.concatenate([p for p, _ in found]), np.concatenate([s for _, s in found])


@dataclass
class ClusterPairSearch:
    """The in-cluster pair search of dedup as Dask tasks: clusters batched into tasks of about ROWS_PER_TASK rows,
    results gathered in the clusters' order, so the pairs are those the single-process search finds."""

    client: object
    embeddings: Path
    log: Callable[[str], None]

    def __call__(self, threshold: float, clusters: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        from distributed import as_completed

        batches: list[list[np.ndarray]] = [[]]
        size = 0
        for rows in clusters:
            if size >= ROWS_PER_TASK:
                batches.append([])
                size = 0
            batches[-1].append(rows)
            size += len(rows)
        futures = self.client.map(  # type: ignore[attr-defined]
            _pairs_in_clusters, [str(self.embeddings)] * len(batches), [threshold] * len(batches), batches, pure=False
        )
        done = 0
        for _ in as_completed(futures):
            done += 1
            if done == len(futures) or done % max(1, len(futures) // 10) == 0:
                self.log(f"pair search: {done}/{len(futures)} tasks done")
        return self.client.gather(futures)  # type: ignore[attr-defined]


def add_scheduler_argument(parser) -> None:
    parser.add_argument(
        "--scheduler",
        metavar="local[:N]|tcp://HOST:PORT",
        help="run the heavy step on a Dask cluster (same results; workers must see the workspace's files)",
    )


@contextmanager
def scheduled(text: str | None, log: Callable[[str], None]) -> Iterator:
    """The Dask client for a `--scheduler` value, or None without one (the single-process engine)."""
    scheduler = parse_scheduler(text)
    if scheduler is None:
        yield None
        return
    with dask_client(scheduler, log) as client:
        yield client


def _nearest_in_rows(path: str, queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """On a worker: the exact k nearest of `rows` of the embeddings file for every query."""
    from analysis.index import exact_knn

    return exact_knn(queries, np.load(path, allow_pickle=False, mmap_mode="r"), k, rows)


@dataclass
class PartitionedKnn:
    """Exact k-nearest search of the training set, one task per partition of it, top-k merged on the client in
    the scan's order: the same neighbours as one exact scan."""

    client: object
    embeddings: Path
    log: Callable[[str], None]

    def __call__(self, queries: np.ndarray, rows: np.ndarray, k: int):
        from analysis.index import SCAN_CHUNK, SearchResult, merge_top_k

        k = min(k, len(rows))
        partitions = [rows[start : start + 4 * SCAN_CHUNK] for start in range(0, len(rows), 4 * SCAN_CHUNK)]
        shared = self.client.scatter(np.ascontiguousarray(queries, dtype=np.float32), broadcast=True)  # type: ignore[attr-defined]
        futures = [
            self.client.submit(_nearest_in_rows, str(self.embeddings), shared, part, k, pure=False)  # type: ignore[attr-defined]
            for part in partitions
        ]
        self.log(f"nearest training images: {len(futures)} partitions on the cluster")
        best_similarities = np.full((len(queries), k), -np.inf, dtype=np.float32)
        best_rows = np.full((len(queries), k), -1, dtype=np.int64)
        for similarities, found in self.client.gather(futures):  # type: ignore[attr-defined]
            best_similarities, best_rows = merge_top_k(best_similarities, best_rows, similarities, found, k)
        return SearchResult(best_similarities, best_rows, f"exact, {len(partitions)} partitions on Dask", None)
