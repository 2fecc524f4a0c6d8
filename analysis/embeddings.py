"""`prepare`: compute and cache image embeddings for the original and generated sets.

Work is split in chunks of rows; each finished chunk is written atomically under a directory keyed
by the fingerprint of (embedder, preprocessing, manifest ids and image paths), so an interrupted run
resumes where it stopped and a second run finds everything done. Images are decoded and resized in
DataLoader worker processes while the model runs; unreadable images are skipped with a reason.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from analysis import __version__
from analysis.cache import atomic_save_json, atomic_save_npy, atomic_save_parquet, fingerprint
from analysis.errors import AuditInputError
from analysis.images import load_image
from analysis.workspace import Workspace

CHUNK_ROWS = 512
SETS = ("original", "generated")


@dataclass(frozen=True)
class EmbeddingSet:
    """Embeddings of one image set, aligned with its manifest rows; `valid` marks rows that have one.

    The array stays on disk (memory-mapped float16) until `vectors` is first used, so pages that only show a
    few rows (`take`) never hold a million embeddings in memory.
    """

    which: str
    path: Path
    valid: np.ndarray  # bool
    embedder: str
    meta: dict
    status: pd.DataFrame  # id, reason ("" when embedded), sha256 of the file bytes

    @cached_property
    def vectors(self) -> np.ndarray:
        """(n_rows, dim) float32, zero rows where not valid."""
        return np.load(self.path, allow_pickle=False).astype(np.float32)

    @property
    def mapped(self) -> np.ndarray:
        """(n_rows, dim) float16 memory map: for scans that read the array once, chunk by chunk."""
        return np.load(self.path, allow_pickle=False, mmap_mode="r")

    def take(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.mapped[np.asarray(rows)], dtype=np.float32)

    @property
    def n_missing(self) -> int:
        return int((~self.valid).sum())


def _rows(workspace: Workspace, which: str) -> pd.DataFrame:
    frame = workspace.original if which == "original" else workspace.generated
    if frame is None:
        return pd.DataFrame(columns=["id", "image"])
    images = frame["image"] if "image" in frame.columns else pd.Series([""] * len(frame))
    return pd.DataFrame({"id": frame["id"].to_numpy(), "image": images.to_numpy()})


def embedding_key(workspace: Workspace, which: str, embedder_name: str, embedder_version: str,
                  preprocessing: str) -> str:
    rows = _rows(workspace, which)
    digest = hashlib.sha256()
    for column in ("id", "image"):
        digest.update("\x1f".join(map(str, rows[column].tolist())).encode("utf-8"))
    # The images root enters relative to the workspace when inside it, so a moved workspace keeps its cache.
    root, images = workspace.config.root.resolve(), workspace.config.images_root.resolve()
    images_root = str(images.relative_to(root)) if images.is_relative_to(root) else str(images)
    return fingerprint("embeddings", which, embedder_name, embedder_version, preprocessing, digest.hexdigest(),
                       images_root)


def _set_dir(workspace: Workspace, embedder_name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in embedder_name)
    return workspace.config.cache_dir / "embeddings" / safe


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


def prepare(workspace: Workspace, embedder_spec: str | None = None, *, workers: int = 2, batch_size: int = 32,
            progress: bool = True, log: Callable[[str], None] | None = None,
            chunk_rows: int = CHUNK_ROWS) -> dict[str, Path]:
    """Compute (or reuse) embeddings for every image set of the workspace; returns the artifact per set."""
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
        raise AuditInputError("another `prepare` is running on this workspace.", path=workspace.config.root,
                              fix="wait for it to finish (its progress is on its terminal), then rerun.") from None
    try:
        from analysis.embedders import get_embedder

        embedder = None
        outputs = {}
        for which in SETS:
            rows = _rows(workspace, which)
            if rows.empty:
                continue
            if embedder is None:
                embedder = get_embedder(spec)
            outputs[which] = _prepare_set(workspace, which, rows, embedder, workers, batch_size, progress, log,
                                          chunk_rows)
        _write_current(workspace, spec)
        return outputs
    finally:
        lock.release()


def _prepare_set(workspace: Workspace, which: str, rows: pd.DataFrame, embedder, workers: int, batch_size: int,
                 progress: bool, log: Callable[[str], None], chunk_rows: int) -> Path:
    import torch
    from tqdm import tqdm

    key = embedding_key(workspace, which, embedder.name, embedder.version, embedder.preprocessing)
    directory = _set_dir(workspace, embedder.name)
    final = directory / f"{which}-{key}.npy"
    if final.exists() and final.with_suffix(".json").exists():
        log(f"{which}: {len(rows):,} embeddings already cached ({final.name}); nothing to do.")
        return final
    chunk_dir = directory / f"{which}-{key}.chunks-{chunk_rows}"
    chunk_dir.mkdir(parents=True, exist_ok=True)
    n_chunks = -(-len(rows) // chunk_rows)
    todo = [c for c in range(n_chunks) if not (chunk_dir / f"{c:06d}.npy").exists()
            or not (chunk_dir / f"{c:06d}.parquet").exists()]
    if len(todo) < n_chunks:
        log(f"{which}: resuming, {n_chunks - len(todo)} of {n_chunks} chunks already done.")
    size = embedder.preprocess.size
    bar = tqdm(total=len(rows), initial=(n_chunks - len(todo)) * chunk_rows if todo else len(rows),
               desc=f"embedding {which}", unit="img", file=sys.stderr, disable=not progress, dynamic_ncols=True)
    for chunk in todo:
        part = rows.iloc[chunk * chunk_rows:(chunk + 1) * chunk_rows]
        dataset = _ImageDataset(workspace.config.images_root, part["image"].astype(str).tolist(),
                                embedder.preprocess, (3, size, size))
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers,
                                             collate_fn=_collate, persistent_workers=False)
        vectors, reasons, digests = [], [], []
        for batch, batch_reasons, batch_digests in loader:
            ok = np.array([not r for r in batch_reasons])
            out = np.zeros((len(batch), embedder.dim), np.float32)
            if ok.any():
                out[ok] = embedder.embed(batch[ok])
            vectors.append(out)
            reasons += batch_reasons
            digests += batch_digests
            bar.update(len(batch))
        atomic_save_parquet(chunk_dir / f"{chunk:06d}.parquet",
                            pd.DataFrame({"id": part["id"].to_numpy(), "reason": reasons, "sha256": digests}))
        atomic_save_npy(chunk_dir / f"{chunk:06d}.npy", np.concatenate(vectors).astype(np.float16))
    bar.close()
    matrix = np.concatenate([np.load(chunk_dir / f"{c:06d}.npy", allow_pickle=False) for c in range(n_chunks)])
    status = pd.concat([pd.read_parquet(chunk_dir / f"{c:06d}.parquet") for c in range(n_chunks)], ignore_index=True)
    atomic_save_parquet(final.with_suffix(".status.parquet"), status)
    atomic_save_npy(final, matrix)
    skipped = status[status["reason"] != ""]
    atomic_save_json(final.with_suffix(".json"), {
        "which": which, "key": key, "embedder": embedder.name, "embedder_version": embedder.version,
        "preprocessing": embedder.preprocessing, "dim": embedder.dim, "n_rows": len(rows),
        "n_embedded": int(len(rows) - len(skipped)), "n_skipped": int(len(skipped)), "dtype": "float16",
        "normalised": "L2", "tool_version": __version__,
        "skipped_by_reason": skipped["reason"].value_counts().to_dict()})
    import shutil

    shutil.rmtree(chunk_dir, ignore_errors=True)
    log(f"{which}: {len(rows) - len(skipped):,} embedded, {len(skipped):,} skipped "
        + (f"({', '.join(f'{n} {r}' for r, n in skipped['reason'].value_counts().items())})" if len(skipped) else ""))
    return final


def _write_current(workspace: Workspace, spec: str) -> None:
    atomic_save_json(workspace.config.cache_dir / "embeddings" / "current.json", {"embedder": spec})


def current_embedder(workspace: Workspace) -> str | None:
    path = workspace.config.cache_dir / "embeddings" / "current.json"
    return json.loads(path.read_text())["embedder"] if path.exists() else None


def load_embeddings(workspace: Workspace, which: str = "original", embedder_spec: str | None = None,
                    required: bool = True) -> EmbeddingSet | None:
    """The cached embeddings of `which` for the current manifests, or a clear error / None when absent."""
    spec = embedder_spec or current_embedder(workspace) or workspace.config.embedder
    rows = _rows(workspace, which)
    directory = _set_dir(workspace, spec)
    candidates = sorted(directory.glob(f"{which}-*.json")) if directory.exists() else []
    for meta_path in candidates:
        meta = json.loads(meta_path.read_text())
        if meta.get("n_rows") != len(rows):
            continue
        key = embedding_key(workspace, which, meta["embedder"], meta["embedder_version"], meta["preprocessing"])
        if meta.get("key") == key:
            status = pd.read_parquet(meta_path.with_suffix(".status.parquet"))
            return EmbeddingSet(which, meta_path.with_suffix(".npy"), (status["reason"] == "").to_numpy(), spec,
                                meta, status)
    if required:
        raise AuditInputError(f"no {which} embeddings for the current manifests (embedder {spec}).",
                              path=workspace.config.root, fix="run `pretrain-audit prepare DIR` first.")
    return None


def skipped_images(workspace: Workspace, which: str = "original") -> pd.DataFrame:
    """Rows whose image could not be embedded, with the reason (shown in the dashboard and the CLI)."""
    found = load_embeddings(workspace, which, required=False)
    if found is None:
        return pd.DataFrame(columns=["id", "reason"])
    return found.status[found.status["reason"] != ""][["id", "reason"]].reset_index(drop=True)


