"""One way to spread independent image work over worker processes, shared by the copy-detection steps, and the
rule that no worker outlives the command that started it."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

PR_SET_PDEATHSIG = 1  # linux/prctl.h

Job = TypeVar("Job")
Result = TypeVar("Result")


def parallel_map(
    function: Callable[[Job], Result], jobs: list[Job], workers: int, chunksize: int = 1, serial_below: int = 8
) -> Iterator[Result]:
    """`function` over `jobs` in order: in this process for one worker or few jobs (no start-up cost), else in
    one pool of `workers` processes for the whole list. `function` must be importable (picklable)."""
    if workers <= 1 or len(jobs) < serial_below:
        yield from map(function, jobs)
        return
    with (
        opencv_threads(1),
        ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool,
    ):
        yield from pool.map(function, jobs, chunksize=chunksize)


@contextmanager
def opencv_threads(count: int) -> Iterator[None]:
    """OpenCV's thread count in this process, restored after. Set in the parent before a pool forks its workers,
    which inherit it: the workers already fill the cores, and with OpenCV's own pool (SIFT, resizes, warps) two
    workers ran four threads on two cores (bench/copy_scale.py's phases). A forked worker must not change it
    itself: OpenCV then waits for the parent's pool threads, which a fork does not copy, and hangs. Results are
    the same on any number of threads (tests/test_feature_store.py)."""
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def batches(items: Iterable[Result], size: int) -> Iterator[list[Result]]:
    batch: list[Result] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def die_with_parent(parent: int) -> None:
    """Worker initialiser: the kernel kills this worker when the process that started it dies, even by SIGKILL
    (which runs no clean-up of ours). Without it a pool worker blocked on its task queue sleeps forever.
    Elsewhere than Linux, nothing (those platforms' pools are not used by the CLI's tests)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def loader_worker_init(parent: int) -> Any:
    """`die_with_parent` as a torch DataLoader `worker_init_fn` (which is called with the worker's number)."""
    return partial(_loader_init, parent)


def _loader_init(parent: int, worker_id: int) -> None:
    die_with_parent(parent)
