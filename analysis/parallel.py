"""One way to spread independent image work over worker processes, shared by the copy-detection steps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

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
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(function, jobs, chunksize=chunksize)


def batches(items: Iterable[Result], size: int) -> Iterator[list[Result]]:
    batch: list[Result] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
