"""Importing embeddings made elsewhere: `.npy` + ids, or clip-retrieval's `img_emb/` + `metadata/` layout.

Layouts accepted for `precomputed:PATH`:
- PATH is a directory with `embeddings.npy` and `ids.txt` (one id per line) or `ids.parquet` (column `id`);
- PATH is a directory with `img_emb/img_emb_N.npy` and `metadata/metadata_N.parquet` (clip-retrieval), the
  id taken from `id`, `key` or `image_path` (matched against the manifest's `image` column).
Arrays are memory-mapped with `allow_pickle=False` and read a chunk of rows at a time (a million 512-d rows
never sit in memory as float32); shapes, dtypes, NaNs, zero rows and id coverage are checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.cache import atomic_npy_writer
from analysis.embedders.base import l2_normalise
from analysis.embedding_store import SETS, mark_current, set_path, set_rows, write_set_metadata
from analysis.errors import AuditInputError
from analysis.workspace import Workspace


def _load_array(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        raise AuditInputError(
            f"cannot be read as a numeric .npy array ({exc}).",
            path=path,
            fix="save embeddings with numpy.save as a 2-D float array (no pickled objects).",
        ) from None
    except (OSError, EOFError) as exc:
        raise AuditInputError(
            f"is not a readable .npy file ({str(exc).splitlines()[0]}).", path=path, fix="check the file is complete."
        ) from None
    if array.ndim != 2:
        raise AuditInputError(
            f"has shape {array.shape}; embeddings must be 2-D (rows × dimensions).",
            path=path,
            fix="reshape to (n_images, dim).",
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise AuditInputError(
            f"has dtype {array.dtype}; embeddings must be floating point.", path=path, fix="store float16 or float32."
        )
    return array


CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class ShardedRows:
    """Rows of one or more memory-mapped .npy shards addressed as one array, without concatenating them."""

    shards: list[np.ndarray]

    @property
    def shape(self) -> tuple[int, int]:
        return sum(len(s) for s in self.shards), int(self.shards[0].shape[1])

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, positions: np.ndarray) -> np.ndarray:
        """float32 rows at `positions` (global row numbers)."""
        offsets = np.cumsum([0] + [len(s) for s in self.shards])
        shard_of = np.searchsorted(offsets, positions, side="right") - 1
        out = np.empty((len(positions), self.shape[1]), dtype=np.float32)
        for shard in np.unique(shard_of):
            selected = shard_of == shard
            out[selected] = self.shards[shard][positions[selected] - offsets[shard]]
        return out


def read_precomputed(path: Path) -> tuple[ShardedRows, pd.DataFrame]:
    """(vectors, ids frame with `id` and maybe `image`) from either layout, validated."""
    path = Path(path)
    if not path.exists():
        raise AuditInputError(
            "precomputed embeddings not found.",
            path=path,
            fix="pass a directory with embeddings.npy + ids.txt, or clip-retrieval's img_emb/ + metadata/.",
        )
    if (path / "img_emb").is_dir():
        return _read_clip_retrieval(path)
    vectors_path = path / "embeddings.npy"
    if not vectors_path.exists():
        raise AuditInputError(
            "no embeddings.npy and no img_emb/ directory here.",
            path=path,
            fix="see docs/embeddings.md for the two accepted layouts.",
        )
    vectors = _load_array(vectors_path)
    if (path / "ids.parquet").exists():
        ids = pd.read_parquet(path / "ids.parquet")
    elif (path / "ids.txt").exists():
        ids = pd.DataFrame({"id": (path / "ids.txt").read_text(encoding="utf-8").splitlines()})
    else:
        raise AuditInputError(
            "no ids.txt or ids.parquet beside embeddings.npy.",
            path=path,
            fix="write one id per line in ids.txt, in the order of the rows.",
        )
    if "id" not in ids.columns:
        raise AuditInputError("ids.parquet has no 'id' column.", path=path / "ids.parquet", fix="name the column id.")
    if len(ids) != len(vectors):
        raise AuditInputError(
            f"{len(vectors):,} embedding rows but {len(ids):,} ids.",
            path=path,
            fix="write exactly one id per embedding row, in the same order.",
        )
    _check_values(vectors, vectors_path)
    return ShardedRows([vectors]), ids.assign(id=ids["id"].astype(str))


def _shard_number(path: Path) -> int:
    match = re.search(r"(\d+)$", path.stem)
    return int(match.group(1)) if match else 0


def _read_clip_retrieval(path: Path) -> tuple[ShardedRows, pd.DataFrame]:
    shards = sorted((path / "img_emb").glob("img_emb_*.npy"), key=_shard_number)
    if not shards:
        raise AuditInputError(
            "img_emb/ has no img_emb_N.npy shards.",
            path=path / "img_emb",
            fix="point to clip-retrieval's output folder.",
        )
    vectors, frames, dim = [], [], None
    for shard in shards:
        array = _load_array(shard)
        if dim is not None and array.shape[1] != dim:
            raise AuditInputError(
                f"has dimension {array.shape[1]}, other shards have {dim}.",
                path=shard,
                fix="all shards must come from the same model.",
            )
        dim = array.shape[1]
        meta_path = path / "metadata" / f"metadata_{_shard_number(shard)}.parquet"
        if not meta_path.exists():
            raise AuditInputError(
                "metadata shard missing for this embeddings shard.",
                path=meta_path,
                fix="keep img_emb/ and metadata/ from the same clip-retrieval run.",
            )
        meta = pd.read_parquet(meta_path)
        if len(meta) != len(array):
            raise AuditInputError(
                f"{len(meta):,} metadata rows for {len(array):,} embeddings in {shard.name}.",
                path=meta_path,
                fix="use matching shards.",
            )
        _check_values(array, shard)
        vectors.append(array)
        frames.append(meta)
    meta = pd.concat(frames, ignore_index=True)
    key = next((c for c in ("id", "key", "image_path") if c in meta.columns), None)
    if key is None:
        raise AuditInputError(
            f"metadata has none of id, key, image_path (columns: {list(meta.columns)}).",
            path=path / "metadata",
            fix="clip-retrieval writes image_path; keep it.",
        )
    ids = pd.DataFrame({"id": meta[key].astype(str)})
    if key == "image_path":
        ids["image"] = ids["id"]
    return ShardedRows(vectors), ids


def _check_values(vectors: np.ndarray, path: Path) -> None:
    """No NaN, infinite or all-zero rows; checked a chunk at a time, the first bad row and the count reported."""
    for problem, is_bad, fix in (
        (
            "has NaN or infinite values",
            lambda block: ~np.isfinite(block).all(axis=1),
            "recompute or drop those embeddings.",
        ),
        ("is all zeros", lambda block: ~block.any(axis=1), "recompute or drop those embeddings."),
    ):
        first, count = None, 0
        for start in range(0, len(vectors), CHUNK_ROWS):
            bad = np.flatnonzero(is_bad(np.asarray(vectors[start : start + CHUNK_ROWS])))
            if len(bad) and first is None:
                first = start + int(bad[0])
            count += len(bad)
        if first is not None:
            raise AuditInputError(f"row {first + 1} {problem} ({count} such rows).", path=path, fix=fix)


def import_precomputed(workspace: Workspace, path: Path, name: str | None = None) -> dict[str, Path]:
    """Align precomputed vectors with the manifests and store them like computed ones."""
    vectors, ids = read_precomputed(path)
    if ids["id"].duplicated().any():
        raise AuditInputError(
            f"duplicate id {ids['id'][ids['id'].duplicated()].iloc[0]!r} in the embeddings' ids.",
            path=path,
            fix="each embedding row needs a unique id.",
        )
    name = name or f"precomputed:{path}"
    key_version = f"imported from {name}"  # the cache key must not change when the workspace moves
    outputs = {}
    for which in SETS:
        rows = set_rows(workspace, which)
        if rows.empty:
            continue
        match_column = "image" if "image" in ids.columns else "id"
        position = pd.Series(np.arange(len(ids)), index=ids[match_column].to_numpy())
        found = rows[match_column].map(position)
        if which == "original" and found.notna().sum() == 0:
            raise AuditInputError(
                f"none of the {len(rows):,} original ids has an embedding.",
                path=path,
                fix="the ids must be the manifest's ids (or image paths for clip-retrieval).",
            )
        hit = found.notna().to_numpy()
        source = found.fillna(-1).astype(np.int64).to_numpy()
        final = set_path(workspace, which, name, key_version, "none")
        with atomic_npy_writer(final, (len(rows), vectors.shape[1]), np.float16) as matrix:
            for start in range(0, len(rows), CHUNK_ROWS):
                block = np.zeros((min(CHUNK_ROWS, len(rows) - start), vectors.shape[1]), np.float32)
                chunk_hit = hit[start : start + CHUNK_ROWS]
                block[chunk_hit] = l2_normalise(vectors.take(source[start : start + CHUNK_ROWS][chunk_hit]))
                matrix[start : start + len(block)] = block
        status = pd.DataFrame(
            {"id": rows["id"].to_numpy(), "reason": np.where(hit, "", "no precomputed embedding"), "sha256": ""}
        )
        write_set_metadata(
            final,
            which=which,
            embedder=name,
            embedder_version=key_version,
            preprocessing="none",
            dim=int(vectors.shape[1]),
            status=status,
            source=f"imported from {path.resolve()}",
        )
        outputs[which] = final
    mark_current(workspace, name)
    return outputs
