"""The heavy steps on a Dask cluster (`--scheduler local[:N] | tcp://HOST:PORT`, or `[compute] scheduler` in
audit.toml), with the same results as the single-process engine: the work is cut where it is independent (image
chunks to embed, k-means assignment of row partitions, the in-cluster pair search of each cluster, partitions of the
training set to search, caption partitions to count), run as tasks, and gathered in a fixed order on the client.

Workers read the embeddings from the workspace's cache by path (a memory map), so they must see the same files:
a shared filesystem (or localhost). Dask is pure Python, runs a LocalCluster on a laptop and a real cluster with
the same code; it is what NeMo Curator's semantic dedup was built on.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.errors import AuditInputError
from analysis.params import setting
from analysis.progress import tasks_line

if TYPE_CHECKING:
    from analysis.index import SearchResult

ROWS_PER_TASK = 50_000  # clusters are batched into tasks of about this many images (a task costs ~1 ms to schedule)


@dataclass(frozen=True)
class Scheduler:
    address: str | None  # tcp://HOST:PORT, or None for a LocalCluster
    workers: int | None = None  # LocalCluster workers (default: one per core)

    def describe(self) -> str:
        return self.address or f"local cluster ({self.workers or 'one per core'} workers)"


def parse_scheduler(text: str | None) -> Scheduler | None:
    """`local`, `local:N` or `tcp://HOST:PORT`; None (no flag) or `none` keeps the single-process engine."""
    if not text or text == "none":
        return None
    match = re.fullmatch(r"local(?::(\d+))?", text)
    if match:
        workers = int(match.group(1)) if match.group(1) else None
        if workers == 0:
            raise AuditInputError(f"scheduler {text!r} has no workers.", fix="give local:N with N ≥ 1, or local.")
        return Scheduler(None, workers)
    if re.fullmatch(r"tcp://[^\s:/]+:\d+", text):
        return Scheduler(text)
    raise AuditInputError(
        f"scheduler {text!r} is not local, local:N, tcp://HOST:PORT or none.",
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
            refused = _nothing_listens(scheduler.address)
            if refused:
                raise OSError(refused)
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


def _nothing_listens(address: str) -> str | None:
    """Why nothing can answer at a tcp:// address, found by one plain connect: a refused port or a host name
    that does not resolve is said at once, where Dask's client retries for its whole 20 s timeout. None when the
    port accepts, or when the network is slow to say (Dask's timeout then decides)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    if not parts.hostname or not parts.port:
        return None
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=5):
            return None
    except (ConnectionRefusedError, socket.gaierror) as exc:
        return f"{exc.strerror or exc}"
    except OSError:
        return None


def _pairs_in_clusters(path: str, threshold: float, members: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """On a worker: the pairs above the threshold inside each of these clusters (rows of the embeddings file)."""
    from analysis.index import pairs_above

    vectors = np.load(path, allow_pickle=False, mmap_mode="r")
    found = [pairs_above(vectors, threshold, rows, with_similarities=True) for rows in members]
    if not found:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.float32)
    return np.concatenate([p for p, _ in found]), np.concatenate([s for _, s in found])


def _nearest_centroid_of_rows(path: str, centroids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """On a worker: the nearest centroid of these rows of the embeddings file (the index arrives serialised)."""
    import faiss

    from analysis.index import nearest_centroid

    return nearest_centroid(faiss.deserialize_index(centroids), np.load(path, allow_pickle=False, mmap_mode="r"), rows)


def _nearest_in_rows(path: str, queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """On a worker: the exact k nearest of `rows` of the embeddings file for every query."""
    from analysis.index import exact_knn

    return exact_knn(queries, np.load(path, allow_pickle=False, mmap_mode="r"), k, rows)


@dataclass
class DaskOffload:
    """`analysis.index.Offload` on a Dask cluster. Work is cut where it is independent, run as tasks, and
    gathered in submission order, so every method returns what the single-process code computes.

    `embeddings`: the cached embeddings file the row-based methods read on the workers (by path, as a memory map:
    the workers must see the workspace's files). `task_rows` (`[compute] task_rows`): rows per task instead of each
    step's default; smaller tasks spread a small set over more workers, and let tests split every step."""

    client: Any
    log: Callable[[str], None]
    embeddings: Path | None = None
    task_rows: int | None = None

    def map(self, function: Callable[..., Any], arguments: Sequence[tuple], what: str) -> list[Any]:
        from distributed import as_completed

        futures = [self.client.submit(function, *a, pure=False) for a in arguments]
        done, step, started = 0, max(1, len(futures) // 10), time.monotonic()
        for _ in as_completed(futures):
            done += 1
            if done == len(futures) or done % step == 0:
                self.log(tasks_line(what, done, len(futures), started))
        return self.client.gather(futures)

    @property
    def workers(self) -> int:
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def _path(self) -> str:
        assert self.embeddings is not None, "this step needs the embeddings' path"
        return str(self.embeddings)

    def pairs_in_clusters(self, threshold: float, clusters: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        batches: list[list[np.ndarray]] = [[]]
        size = 0
        for rows in clusters:
            if size >= (self.task_rows or ROWS_PER_TASK):
                batches.append([])
                size = 0
            batches[-1].append(rows)
            size += len(rows)
        return self.map(_pairs_in_clusters, [(self._path(), threshold, b) for b in batches], "pair search")

    def nearest_centroid(self, centroids: Any, rows: np.ndarray) -> np.ndarray:
        import faiss

        from analysis.index import ASSIGN_CHUNK

        serialised = self.client.scatter(faiss.serialize_index(centroids), broadcast=True)
        step = self.task_rows or 4 * ASSIGN_CHUNK
        parts = [(self._path(), serialised, rows[start : start + step]) for start in range(0, len(rows), step)]
        return np.concatenate(self.map(_nearest_centroid_of_rows, parts, f"assigning {len(rows):,} images"))

    def nearest_rows(self, queries: np.ndarray, rows: np.ndarray, k: int) -> SearchResult:
        from analysis.index import SCAN_CHUNK, SearchResult, merge_top_k

        k = min(k, len(rows))
        step = self.task_rows or 4 * SCAN_CHUNK
        shared = self.client.scatter(np.ascontiguousarray(queries, dtype=np.float32), broadcast=True)
        parts = [(self._path(), shared, rows[start : start + step], k) for start in range(0, len(rows), step)]
        best_similarities = np.full((len(queries), k), -np.inf, dtype=np.float32)
        best_rows = np.full((len(queries), k), -1, dtype=np.int64)
        for similarities, found in self.map(_nearest_in_rows, parts, "nearest training images"):
            best_similarities, best_rows = merge_top_k(best_similarities, best_rows, similarities, found, k)
        return SearchResult(best_similarities, best_rows, f"exact, {len(parts)} partitions on Dask", None)


SCHEDULER_HELP = (
    "run the heavy step on a Dask cluster (same results; workers must see the workspace's files); "
    "default: [compute] scheduler in audit.toml, else this process"
)
SCHEDULER_METAVAR = "local[:N]|tcp://HOST:PORT|none"


def add_scheduler_argument(parser) -> None:
    """`--scheduler` of `prepare`, a workspace command rather than an analysis."""
    parser.add_argument("--scheduler", metavar=SCHEDULER_METAVAR, help=SCHEDULER_HELP)


def scheduler_setting() -> Any:
    """The `--scheduler` parameter of the analyses that offload work: where it runs, so not part of a result's key
    (the answers are the same on the cluster) and not an analysis setting of audit.toml ([compute] scheduler is)."""
    return setting(
        help=SCHEDULER_HELP,
        metavar=SCHEDULER_METAVAR,
        in_toml=False,
        affects_result=False,
    )


@contextmanager
def offloaded(
    option: str | None,
    configured: str | None,
    log: Callable[[str], None],
    embeddings: Path | None = None,
    task_rows: int | None = None,
) -> Iterator[DaskOffload | None]:
    """The Dask offload for `--scheduler` (or, without the flag, `[compute] scheduler`), or None for the
    single-process engine (no scheduler, or `--scheduler none`)."""
    scheduler = parse_scheduler(configured if option is None else option)
    if scheduler is None:
        yield None
        return
    with dask_client(scheduler, log) as client:
        yield DaskOffload(client, log, embeddings, task_rows)
