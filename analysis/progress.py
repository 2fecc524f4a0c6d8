"""Progress of long work, as every command shows it: how far, how fast, and how long is left in words a user reads
without knowing tqdm's notation (`[00:27<01:45]` was read as no estimate at all)."""

from __future__ import annotations

import sys
import time
from typing import Any

BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{rate_fmt}, {elapsed} elapsed, ~{remaining} left]"


def progress_bar(total: int, desc: str, unit: str = "img", enabled: bool = True, initial: int = 0) -> Any:
    """A tqdm bar on standard error with the time left spelled out."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
        bar_format=BAR_FORMAT,
    )


def clock(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def tasks_line(what: str, done: int, total: int, started: float, now: float | None = None) -> str:
    """One log line for work done in tasks (a cluster's), with the time left projected from the rate so far."""
    elapsed = (time.monotonic() if now is None else now) - started
    line = f"{what}: {done}/{total} tasks done, {clock(elapsed)} elapsed"
    if 0 < done < total:
        line += f", about {clock(elapsed / done * (total - done))} left"
    return line
