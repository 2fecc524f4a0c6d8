"""`prepare`: compute and cache image embeddings for the original and generated sets.

Work is split in chunks of rows; each finished chunk is written atomically under a directory keyed
by the fingerprint of (embedder, preprocessing, manifest ids and image paths), so an interrupted run
resumes where it stopped and a second run finds everything done. Images are decoded and resized in
DataLoader worker processes while the model runs; unreadable images are skipped with a reason.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.cache import atomic_save_npy, atomic_save_parquet
from analysis.copies.pdq import pdq_hashes
from analysis.embedding_store import SETS, is_complete, mark_current, set_path, set_rows, write_set_metadata
from analysis.errors import AuditInputError
from analysis.images import load_image
from analysis.index import Offload
from analysis.parallel import loader_worker_init
from analysis.progress import progress_bar
from analysis.workspace import Workspace

CHUNK_ROWS = 512
# Small batches are as fast per image on CPU, and at 4 EfficientNet-Lite0's largest activation (96 channels at 112 px,
# 19 MB) stays under glibc's 32 MB mmap limit, so a pass reuses the buffers the last one freed
# (analysis.embedders.base.keep_freed_buffers). In-process, 512 images, 3 runs each: 80–98 img/s at 4 and 6 with
# no page faults to speak of; 72–81 at 8, whose 38 MB activations are mapped and faulted in afresh (0.6–1.8 million
# faults); 41 at 32.
DEFAULT_BATCH_SIZE = 4


def default_workers() -> int:
    """Image-decoding processes: one core is left to the model (bench/embedding_throughput.py)."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


class _ImageDataset:
    """Decode + preprocess in worker processes; a failed image yields a zero tensor and its reason."""

    def __init__(self, images_root: Path, paths: list[str], preprocess: Callable, shape: tuple[int, int, int]):
        self.images_root, self.paths, self.preprocess, self.shape = images_root, paths, preprocess, shape

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int):
        result = load_image(self.images_root, self.paths[position], min_side=self.shape[-1], digest=True)
        if result.image is None:
            return np.zeros(self.shape, np.float32), result.reason or "unreadable", ""
        return self.preprocess(result.image), "", result.sha256


def _collate(items):
    arrays, reasons, digests = zip(*items)
    return np.stack(arrays), list(reasons), list(digests)


def prepare(
    workspace: Workspace,
    embedder_spec: str | None = None,
    *,
    workers: int = 2,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    offload: Offload | None = None,
) -> dict[str, Path]:
    """Compute (or reuse) embeddings for every image set of the workspace; returns the artifact per set.
    `offload`: each missing chunk embedded as a task on a Dask cluster (the model loaded once per worker), written
    to the same chunk files, so a run resumes whichever engine wrote them."""
    from filelock import FileLock, Timeout

    spec = embedder_spec or workspace.config.embedder
    if spec.startswith("precomputed:"):
        from analysis.embedders.precomputed import import_precomputed

        given = spec.removeprefix("precomputed:")
        path = Path(given).expanduser()
        return import_precomputed(workspace, path if path.is_absolute() else workspace.config.root / path, name=spec)
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    workspace.config.cache_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(workspace.config.cache_dir / "prepare.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise AuditInputError(
            "another `prepare` is running on this workspace.",
            path=workspace.config.root,
            fix="wait for it to finish (its progress is on its terminal), then rerun.",
        ) from None
    try:
        from analysis.embedders import get_embedder

        embedder = None
        outputs = {}
        for which in SETS:
            rows = set_rows(workspace, which)
            if rows.empty:
                continue
            if embedder is None:
                embedder = get_embedder(spec)
            outputs[which] = _prepare_set(
                workspace, which, rows, embedder, workers, batch_size, progress, log, chunk_rows, offload, spec
            )
        mark_current(workspace, spec)
        for which in outputs:  # the same images, hashed for the PDQ tier and hash-list matching
            pdq_hashes(workspace, which, workers=max(1, workers), log=log if progress else None, offload=offload)
        return outputs
    finally:
        lock.release()


def _prepare_set(
    workspace: Workspace,
    which: str,
    rows: pd.DataFrame,
    embedder,
    workers: int,
    batch_size: int,
    progress: bool,
    log: Callable[[str], None],
    chunk_rows: int,
    offload: Offload | None = None,
    spec: str = "",
) -> Path:
    final = set_path(workspace, which, embedder.name, embedder.version, embedder.preprocessing)
    if is_complete(final):
        log(f"{which}: {len(rows):,} embeddings already cached ({final.name}); nothing to do.")
        return final
    chunk_dir = final.parent / f"{final.stem}.chunks-{chunk_rows}"
    chunk_dir.mkdir(parents=True, exist_ok=True)
    n_chunks = -(-len(rows) // chunk_rows)
    todo = [
        c
        for c in range(n_chunks)
        if not (chunk_dir / f"{c:06d}.npy").exists() or not (chunk_dir / f"{c:06d}.parquet").exists()
    ]
    if len(todo) < n_chunks:
        log(f"{which}: resuming, {n_chunks - len(todo)} of {n_chunks} chunks already done.")
    bar = progress_bar(
        len(rows),
        f"embedding {which}",
        enabled=progress,
        initial=(n_chunks - len(todo)) * chunk_rows if todo else len(rows),
    )
    if offload is not None:
        _embed_chunks_on_cluster(workspace, which, rows, todo, chunk_dir, chunk_rows, batch_size, offload, spec)
    else:
        for chunk in todo:
            part = rows.iloc[chunk * chunk_rows : (chunk + 1) * chunk_rows]
            _embed_chunk_here(workspace, part, chunk, chunk_dir, embedder, workers, batch_size, bar)
    bar.close()
    status = _merge_chunks(final, chunk_dir, n_chunks, which, embedder)
    shutil.rmtree(chunk_dir, ignore_errors=True)
    skipped = status[status["reason"] != ""]
    log(
        f"{which}: {len(rows) - len(skipped):,} embedded, {len(skipped):,} skipped "
        + (f"({', '.join(f'{n} {r}' for r, n in skipped['reason'].value_counts().items())})" if len(skipped) else "")
    )
    return final


def _embed_chunks_on_cluster(
    workspace: Workspace,
    which: str,
    rows: pd.DataFrame,
    todo: list[int],
    chunk_dir: Path,
    chunk_rows: int,
    batch_size: int,
    offload: Offload,
    spec: str,
) -> None:
    """The chunks left to do as tasks: each worker opens the embedder from its `spec` and writes its chunk."""
    tasks = [
        (
            spec,
            str(workspace.config.images_root),
            rows["image"].iloc[chunk * chunk_rows : (chunk + 1) * chunk_rows].astype(str).tolist(),
            rows["id"].iloc[chunk * chunk_rows : (chunk + 1) * chunk_rows].to_numpy(),
            str(chunk_dir),
            chunk,
            batch_size,
        )
        for chunk in todo
    ]
    offload.map(embed_chunk, tasks, f"embedding {which} ({len(todo)} chunks of {chunk_rows})")


def _embed_chunk_here(
    workspace: Workspace,
    part: pd.DataFrame,
    chunk: int,
    chunk_dir: Path,
    embedder,
    workers: int,
    batch_size: int,
    bar,
) -> None:
    """One chunk in this process, its images decoded by `workers` loader processes; written when whole."""
    import torch

    size = embedder.preprocess.size
    dataset = _ImageDataset(
        workspace.config.images_root, part["image"].astype(str).tolist(), embedder.preprocess, (3, size, size)
    )
    loader: Any = torch.utils.data.DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate,
        persistent_workers=False,
        worker_init_fn=loader_worker_init(os.getpid()),
    )
    vectors, reasons, digests = [], [], []
    for batch, batch_reasons, batch_digests in loader:
        vectors.append(_embed_readable(embedder, batch, batch_reasons))
        reasons += batch_reasons
        digests += batch_digests
        bar.update(len(batch))
    _save_chunk(Path(chunk_dir), chunk, part["id"].to_numpy(), vectors, reasons, digests)


def _merge_chunks(final: Path, chunk_dir: Path, n_chunks: int, which: str, embedder) -> pd.DataFrame:
    """Every chunk into the set's one matrix and its status table (written atomically, metadata last)."""
    matrix = np.concatenate([np.load(chunk_dir / f"{c:06d}.npy", allow_pickle=False) for c in range(n_chunks)])
    status = pd.concat([pd.read_parquet(chunk_dir / f"{c:06d}.parquet") for c in range(n_chunks)], ignore_index=True)
    atomic_save_npy(final, matrix)
    write_set_metadata(
        final,
        which=which,
        embedder=embedder.name,
        embedder_version=embedder.version,
        preprocessing=embedder.preprocessing,
        dim=embedder.dim,
        status=status,
    )
    return status


def _embed_readable(embedder, batch: np.ndarray, reasons: list[str]) -> np.ndarray:
    """Embeddings of a batch; rows whose image could not be read stay zero (their reason says why)."""
    ok = np.array([not r for r in reasons])
    out = np.zeros((len(batch), embedder.dim), np.float32)
    if ok.any():
        out[ok] = embedder.embed(batch[ok])
    return out


def _save_chunk(
    chunk_dir: Path, chunk: int, ids: np.ndarray, vectors: list[np.ndarray], reasons: list[str], digests: list[str]
) -> None:
    atomic_save_parquet(
        chunk_dir / f"{chunk:06d}.parquet", pd.DataFrame({"id": ids, "reason": reasons, "sha256": digests})
    )
    atomic_save_npy(chunk_dir / f"{chunk:06d}.npy", np.concatenate(vectors).astype(np.float16))


@lru_cache(maxsize=2)
def _embedder_of_this_process(spec: str):
    """A Dask worker loads the model once and keeps it for every chunk it is given."""
    from analysis.embedders import get_embedder

    return get_embedder(spec)


def embed_chunk(
    spec: str, images_root: str, paths: list[str], ids: np.ndarray, chunk_dir: str, chunk: int, batch_size: int
) -> int:
    """One chunk of `prepare`, as a Dask task: decode, embed and write the chunk's files (a worker is one process
    with one thread, so images are decoded here, not in loader processes). Returns how many were unreadable."""
    embedder = _embedder_of_this_process(spec)
    size = embedder.preprocess.size
    dataset = _ImageDataset(Path(images_root), paths, embedder.preprocess, (3, size, size))
    vectors, reasons, digests = [], [], []
    for start in range(0, len(paths), batch_size):
        arrays, batch_reasons, batch_digests = _collate(
            [dataset[i] for i in range(start, min(start + batch_size, len(paths)))]
        )
        vectors.append(_embed_readable(embedder, arrays, batch_reasons))
        reasons += batch_reasons
        digests += batch_digests
    _save_chunk(Path(chunk_dir), chunk, ids, vectors, reasons, digests)
    return sum(1 for reason in reasons if reason)
