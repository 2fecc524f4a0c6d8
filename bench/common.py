"""Shared helpers for benchmarks: synthetic embeddings with planted duplicates, timing, peak memory."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
REAL = REPO.parent / "shared" / "real"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(payload: dict) -> None:
    payload["peak_rss_mb"] = round(peak_rss_mb(), 1)
    sys.stdout.write(json.dumps(payload) + "\n")


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def planted_embeddings(
    n: int, dim: int = 512, seed: int = 0, duplicate_share: float = 0.1, topics: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """A realistic background (images gathered around `topics` centres, cosine within a topic ~0.3–0.7) plus
    duplicate families of Zipf-distributed sizes (2 to 500) whose members are cosine ~0.89–0.98 to each other.

    Returns (float32 unit vectors, family label per row; -1 for background).
    """
    rng = np.random.default_rng(seed)
    centres = unit(rng.standard_normal((topics, dim), dtype=np.float32))
    n_duplicates = int(n * duplicate_share)
    sizes = []
    while sum(sizes) < n_duplicates:
        sizes.append(int(min(500, max(2, rng.zipf(1.8)))))
    sizes[-1] -= sum(sizes) - n_duplicates
    if sizes[-1] < 2:
        sizes[-2] += sizes.pop()
    n_background = n - sum(sizes)
    out = np.empty((n, dim), dtype=np.float32)
    labels = np.full(n, -1, dtype=np.int64)
    spread = rng.uniform(0.8, 1.6, topics).astype(np.float32)
    block = 100_000
    for start in range(0, n_background, block):
        count = min(block, n_background - start)
        topic = rng.integers(0, topics, count)
        noise = rng.standard_normal((count, dim), dtype=np.float32) * (spread[topic, None] / np.sqrt(dim))
        out[start : start + count] = unit(centres[topic] + noise)
    position = n_background
    for family, size in enumerate(sizes):
        base = out[rng.integers(0, n_background)] if rng.random() < 0.5 else centres[rng.integers(0, topics)]
        # Family tightness varies: member-to-member cosine from ~0.98 down to ~0.89, so some pairs sit just above
        # or below a 0.92 threshold and some families straddle k-means cluster boundaries, as real ones do.
        sigma = rng.uniform(0.12, 0.3)
        noise = rng.standard_normal((size, dim), dtype=np.float32) * (sigma / np.sqrt(dim))
        out[position : position + size] = unit(base[None, :] + noise)
        labels[position : position + size] = family
        position += size
    order = rng.permutation(n)
    return out[order], labels[order]


def run_record(command: str) -> dict:
    """Commit, date and command of a benchmark run: what every recorded figure names."""
    import subprocess
    import time

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    # Uncommitted code changes (results written under docs/ do not count) make the commit an approximation.
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--", ".", ":!docs"], capture_output=True, text=True, cwd=REPO
    )
    dirty = "+uncommitted" if changed.stdout.strip() else ""
    return {"commit": commit.stdout.strip() + dirty, "date": time.strftime("%Y-%m-%d"), "command": command}


def replace_section(path: Path, start: str, end: str, section: str, before: str | None = None) -> None:
    """Put `section` (which begins with `start` and ends with `end`) in place of the old one in a doc, or insert
    it before the line `before` (else at the end) the first time."""
    text = path.read_text()
    if start in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    elif before and before in text:
        text = text.replace(before, section + "\n\n" + before)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def record_footer(payload: dict) -> str:
    """The line under a recorded section that names its run (every figure names its commit and command)."""
    return f"Commit `{payload['commit']}`, {payload['date']}: `{payload['command']}`"


def write_record(
    name: str, payload: dict, doc: str, start: str, end: str, section: str, before: str | None = None
) -> None:
    """Keep a benchmark's run: its payload as docs/NAME.json (so the section can be rendered again without rerunning)
    and its section in docs/DOC between its markers."""
    import json

    (REPO / "docs" / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n")
    replace_section(REPO / "docs" / doc, start, end, section, before=before)


@contextmanager
def baseline_worktree(commit: str, scratch: Path) -> Iterator[Path]:
    """A throwaway git worktree of `commit` under `scratch`, for a benchmark that runs the before and after trees
    in one run; removed afterwards whatever happens."""
    worktree = scratch / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(worktree), commit], cwd=REPO, check=True)
    try:
        yield worktree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=False)
