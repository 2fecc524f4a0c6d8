"""Where a workspace keeps its embeddings: the cache key, the file layout, the metadata, the current embedder.

`prepare` (computed) and `precomputed` (imported) both write through `write_set`, and every reader goes through
`load_embeddings`, so the layout and the metadata schema are defined here and nowhere else. Layout:
`.audit-cache/embeddings/<embedder>/<set>-<key>.npy` (float16, L2-normalised, one row per manifest row, zeros
where no embedding), `.status.parquet` (id, reason, sha256) and `.json` (metadata, written last: its presence
means the set is complete).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import __version__
from analysis.cache import atomic_save_json, atomic_save_parquet, fingerprint
from analysis.errors import AuditInputError
from analysis.workspace import Workspace

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

    @cached_property
    def results_key(self) -> str:
        """The key of every result computed from these embeddings (dedup, regurgitation, concepts, the map).

        The set's own key names its rows and embedder, not its images: re-preparing after images changed under
        the same ids and paths writes new vectors under the same key. So results are keyed on what the images
        were too (each file's sha256 and why a row has none), and, for imported vectors (no image hashes), on
        the array file itself; a copied or moved workspace keeps its results."""
        digest = hashlib.sha256()
        for column in ("id", "reason", "sha256"):
            digest.update("\x1f".join(map(str, self.status[column].tolist())).encode("utf-8"))
        imported = not self.status["sha256"].astype(bool).any()
        stat = self.path.stat() if imported else None
        return fingerprint(self.meta.get("key"), digest.hexdigest(), stat and (stat.st_size, stat.st_mtime_ns))

    @property
    def n_missing(self) -> int:
        return int((~self.valid).sum())

    @property
    def skipped(self) -> pd.DataFrame:
        """Rows without an embedding and why (missing file, unreadable, too small, not in the import)."""
        return self.status[self.status["reason"] != ""][["id", "reason"]].reset_index(drop=True)


def set_rows(workspace: Workspace, which: str) -> pd.DataFrame:
    """id and image path of every row of one image set (empty when the workspace has no such set)."""
    frame = workspace.original if which == "original" else workspace.generated
    if frame is None:
        return pd.DataFrame(columns=["id", "image"])
    images = frame["image"] if "image" in frame.columns else pd.Series([""] * len(frame))
    return pd.DataFrame({"id": frame["id"].to_numpy(), "image": images.to_numpy()})


def embedding_key(
    workspace: Workspace, which: str, embedder_name: str, embedder_version: str, preprocessing: str
) -> str:
    rows = set_rows(workspace, which)
    digest = hashlib.sha256()
    for column in ("id", "image"):
        digest.update("\x1f".join(map(str, rows[column].tolist())).encode("utf-8"))
    # The images root enters relative to the workspace when inside it, so a moved workspace keeps its cache.
    root, images = workspace.config.root.resolve(), workspace.config.images_root.resolve()
    images_root = str(images.relative_to(root)) if images.is_relative_to(root) else str(images)
    return fingerprint(
        "embeddings", which, embedder_name, embedder_version, preprocessing, digest.hexdigest(), images_root
    )


def set_directory(workspace: Workspace, embedder_name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in embedder_name)
    return workspace.config.cache_dir / "embeddings" / safe


def set_path(workspace: Workspace, which: str, embedder_name: str, embedder_version: str, preprocessing: str) -> Path:
    """The .npy of one set; its .status.parquet and .json sit beside it."""
    key = embedding_key(workspace, which, embedder_name, embedder_version, preprocessing)
    return set_directory(workspace, embedder_name) / f"{which}-{key}.npy"


def is_complete(path: Path) -> bool:
    return path.exists() and path.with_suffix(".json").exists()


def write_set_metadata(
    path: Path,
    *,
    which: str,
    embedder: str,
    embedder_version: str,
    preprocessing: str,
    dim: int,
    status: pd.DataFrame,
    **extra: Any,
) -> None:
    """Finish a set whose .npy is already in place: its status table, then its metadata (the completion mark)."""
    atomic_save_parquet(path.with_suffix(".status.parquet"), status)
    skipped = status[status["reason"] != ""]
    atomic_save_json(
        path.with_suffix(".json"),
        {
            "which": which,
            "key": path.stem.removeprefix(f"{which}-"),
            "embedder": embedder,
            "embedder_version": embedder_version,
            "preprocessing": preprocessing,
            "dim": int(dim),
            "n_rows": int(len(status)),
            "n_embedded": int(len(status) - len(skipped)),
            "n_skipped": int(len(skipped)),
            "dtype": "float16",
            "normalised": "L2",
            "tool_version": __version__,
            "skipped_by_reason": {str(k): int(v) for k, v in skipped["reason"].value_counts().items()},
            **extra,
        },
    )


def mark_current(workspace: Workspace, spec: str) -> None:
    atomic_save_json(workspace.config.cache_dir / "embeddings" / "current.json", {"embedder": spec})


def current_marker(workspace: Workspace) -> Path:
    return workspace.config.cache_dir / "embeddings" / "current.json"


def current_embedder(workspace: Workspace) -> str | None:
    path = current_marker(workspace)
    return json.loads(path.read_text())["embedder"] if path.exists() else None


def load_embeddings(
    workspace: Workspace, which: str = "original", embedder_spec: str | None = None, required: bool = True
) -> EmbeddingSet | None:
    """The cached embeddings of `which` for the current manifests, or a clear error / None when absent."""
    spec = embedder_spec or current_embedder(workspace) or workspace.config.embedder
    rows = set_rows(workspace, which)
    directory = set_directory(workspace, spec)
    candidates = sorted(directory.glob(f"{which}-*.json")) if directory.exists() else []
    for meta_path in candidates:
        meta = json.loads(meta_path.read_text())
        if meta.get("n_rows") != len(rows):
            continue
        key = embedding_key(workspace, which, meta["embedder"], meta["embedder_version"], meta["preprocessing"])
        if meta.get("key") == key:
            status = pd.read_parquet(meta_path.with_suffix(".status.parquet"))
            return EmbeddingSet(
                which, meta_path.with_suffix(".npy"), (status["reason"] == "").to_numpy(), spec, meta, status
            )
    if required:
        raise AuditInputError(
            f"no {which} embeddings for the current manifests (embedder {spec}).",
            path=workspace.config.root,
            fix="run `pretrain-audit prepare DIR` first.",
        )
    return None
