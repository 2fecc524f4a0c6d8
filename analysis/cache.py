"""Fingerprinted, atomically written artifacts.

Every derived artifact is keyed by a hash of its inputs and parameters and written to a temporary
file that is renamed into place, so an interrupted run never leaves a half-written artifact and a
rerun with the same inputs finds the finished one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd


def file_fingerprint(path: Path) -> str:
    """Content hash of a file (sha256, hex); streams so that large manifests do not fill memory. For a folder (an
    img2dataset output), the hash of its Parquet shards' hashes in name order."""
    digest = hashlib.sha256()
    if Path(path).is_dir():
        for shard in sorted(Path(path).glob("*.parquet")):
            digest.update(f"{shard.name}:{file_fingerprint(shard)}".encode())
        return digest.hexdigest()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(*parts: Any) -> str:
    """A short stable key for a set of JSON-able inputs (paths, parameters, other fingerprints)."""
    payload = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()[:16]


def array_fingerprint(array: np.ndarray) -> str:
    """A short key for an array's content (dtype, shape and bytes): where a result depends on which rows, not on
    how many, a count in its key would hand one answer to another."""
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file in the target's folder (so the rename is atomic), readable as an ordinary file would be:
    mkstemp creates it 0600, which would make exported reports and tables unreadable to the user's colleagues."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())
    return fd, tmp


def _umask() -> int:
    """The process umask, read without setting it (os.umask would race with the dashboard's other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


@contextmanager
def atomic_path(path: Path) -> Iterator[str]:
    """A temporary path beside `path` for the caller to write; renamed onto `path` when the block completes,
    removed when it fails. Every artifact and export is written through here."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_beside(path)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def atomic_save_npz(path: Path, arrays: dict[str, Any]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def atomic_save_parquet(path: Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def atomic_save_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, json.dumps(payload, indent=2, sort_keys=True, default=str).encode("utf-8"))


@contextmanager
def atomic_npy_writer(path: Path, shape: tuple[int, ...], dtype: Any) -> Iterator[np.ndarray]:
    """A writable memory-mapped .npy, filled by the caller in pieces, renamed into place only when complete."""
    with atomic_path(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        yield array
        array.flush()
        del array


T = TypeVar("T")


def load_or_compute(
    files: Sequence[Path],
    load: Callable[[], T],
    compute: Callable[[], T],
    save: Callable[[T], None],
    *,
    use_cache: bool = True,
) -> T:
    """The one caching rule of the workspace: when every file of an artifact exists, load it; otherwise compute it
    and save it. `save` writes each file atomically and the last of `files` last, so the presence of all of them
    means a complete artifact, and an interrupted run leaves nothing that a rerun would mistake for one."""
    if use_cache and all(Path(f).exists() for f in files):
        return load()
    value = compute()
    save(value)
    return value


def load_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
