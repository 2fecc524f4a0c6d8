"""Importing embeddings made elsewhere: `.npy` + ids, or clip-retrieval's `img_emb/` + `metadata/` layout.

Layouts accepted for `precomputed:PATH`:
- PATH is a directory with `embeddings.npy` and `ids.txt` (one id per line) or `ids.parquet` (column `id`);
- PATH is a directory with `img_emb/img_emb_N.npy` and `metadata/metadata_N.parquet` (clip-retrieval), the
  id taken from `id`, `key` or `image_path` (matched against the manifest's `image` column).
Arrays are loaded with `allow_pickle=False`; shapes, dtypes, NaNs, zero rows and id coverage are checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.cache import atomic_save_json, atomic_save_npy, atomic_save_parquet
from analysis.embedders.base import l2_normalise
from analysis.errors import AuditInputError


def _load_array(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        raise AuditInputError(f"cannot be read as a numeric .npy array ({exc}).", path=path,
                              fix="save embeddings with numpy.save as a 2-D float array (no pickled objects).") from None
    except (OSError, EOFError) as exc:
        raise AuditInputError(f"is not a readable .npy file ({str(exc).splitlines()[0]}).", path=path,
                              fix="check the file is complete.") from None
    if array.ndim != 2:
        raise AuditInputError(f"has shape {array.shape}; embeddings must be 2-D (rows × dimensions).", path=path,
                              fix="reshape to (n_images, dim).")
    if not np.issubdtype(array.dtype, np.floating):
        raise AuditInputError(f"has dtype {array.dtype}; embeddings must be floating point.", path=path,
                              fix="store float16 or float32.")
    return np.asarray(array, dtype=np.float32)


def read_precomputed(path: Path) -> tuple[np.ndarray, pd.DataFrame]:
    """(vectors, ids frame with `id` and maybe `image`) from either layout, validated."""
    path = Path(path)
    if not path.exists():
        raise AuditInputError("precomputed embeddings not found.", path=path,
                              fix="pass a directory with embeddings.npy + ids.txt, or clip-retrieval's img_emb/ + metadata/.")
    if (path / "img_emb").is_dir():
        return _read_clip_retrieval(path)
    vectors_path = path / "embeddings.npy"
    if not vectors_path.exists():
        raise AuditInputError("no embeddings.npy and no img_emb/ directory here.", path=path,
                              fix="see docs/embeddings.md for the two accepted layouts.")
    vectors = _load_array(vectors_path)
    if (path / "ids.parquet").exists():
        ids = pd.read_parquet(path / "ids.parquet")
    elif (path / "ids.txt").exists():
        ids = pd.DataFrame({"id": (path / "ids.txt").read_text(encoding="utf-8").splitlines()})
    else:
        raise AuditInputError("no ids.txt or ids.parquet beside embeddings.npy.", path=path,
                              fix="write one id per line in ids.txt, in the order of the rows.")
    if "id" not in ids.columns:
        raise AuditInputError("ids.parquet has no 'id' column.", path=path / "ids.parquet", fix="name the column id.")
    if len(ids) != len(vectors):
        raise AuditInputError(f"{len(vectors):,} embedding rows but {len(ids):,} ids.", path=path,
                              fix="write exactly one id per embedding row, in the same order.")
    _check_values(vectors, vectors_path)
    return vectors, ids.assign(id=ids["id"].astype(str))


def _shard_number(path: Path) -> int:
    match = re.search(r"(\d+)$", path.stem)
    return int(match.group(1)) if match else 0


def _read_clip_retrieval(path: Path) -> tuple[np.ndarray, pd.DataFrame]:
    shards = sorted((path / "img_emb").glob("img_emb_*.npy"), key=_shard_number)
    if not shards:
        raise AuditInputError("img_emb/ has no img_emb_N.npy shards.", path=path / "img_emb",
                              fix="point to clip-retrieval's output folder.")
    vectors, frames, dim = [], [], None
    for shard in shards:
        array = _load_array(shard)
        if dim is not None and array.shape[1] != dim:
            raise AuditInputError(f"has dimension {array.shape[1]}, other shards have {dim}.", path=shard,
                                  fix="all shards must come from the same model.")
        dim = array.shape[1]
        meta_path = path / "metadata" / f"metadata_{_shard_number(shard)}.parquet"
        if not meta_path.exists():
            raise AuditInputError("metadata shard missing for this embeddings shard.", path=meta_path,
                                  fix="keep img_emb/ and metadata/ from the same clip-retrieval run.")
        meta = pd.read_parquet(meta_path)
        if len(meta) != len(array):
            raise AuditInputError(f"{len(meta):,} metadata rows for {len(array):,} embeddings in {shard.name}.",
                                  path=meta_path, fix="use matching shards.")
        _check_values(array, shard)
        vectors.append(array)
        frames.append(meta)
    meta = pd.concat(frames, ignore_index=True)
    key = next((c for c in ("id", "key", "image_path") if c in meta.columns), None)
    if key is None:
        raise AuditInputError(f"metadata has none of id, key, image_path (columns: {list(meta.columns)}).",
                              path=path / "metadata", fix="clip-retrieval writes image_path; keep it.")
    ids = pd.DataFrame({"id": meta[key].astype(str)})
    if key == "image_path":
        ids["image"] = ids["id"]
    return np.concatenate(vectors), ids


def _check_values(vectors: np.ndarray, path: Path) -> None:
    finite = np.isfinite(vectors).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise AuditInputError(f"row {row + 1} has NaN or infinite values ({int((~finite).sum())} such rows).",
                              path=path, fix="recompute or drop those embeddings.")
    zero = np.linalg.norm(vectors, axis=1) == 0
    if zero.any():
        raise AuditInputError(f"row {int(np.flatnonzero(zero)[0]) + 1} is all zeros ({int(zero.sum())} such rows).",
                              path=path, fix="recompute or drop those embeddings.")


def import_precomputed(workspace, path: Path, name: str | None = None) -> dict[str, Path]:
    """Align precomputed vectors with the manifests and store them like computed ones."""
    from analysis import __version__
    from analysis.embeddings import _rows, _set_dir, _write_current, embedding_key

    vectors, ids = read_precomputed(path)
    if ids["id"].duplicated().any():
        raise AuditInputError(f"duplicate id {ids['id'][ids['id'].duplicated()].iloc[0]!r} in the embeddings' ids.",
                              path=path, fix="each embedding row needs a unique id.")
    name = name or f"precomputed:{path}"
    version = f"imported from {path.resolve()}"
    key_version = f"imported from {name}"  # the cache key must not change when the workspace moves
    outputs = {}
    for which in ("original", "generated"):
        rows = _rows(workspace, which)
        if rows.empty:
            continue
        match_column = "image" if "image" in ids.columns else "id"
        position = pd.Series(np.arange(len(ids)), index=ids[match_column].to_numpy())
        found = rows[match_column].map(position)
        if which == "original" and found.notna().sum() == 0:
            raise AuditInputError(f"none of the {len(rows):,} original ids has an embedding.", path=path,
                                  fix="the ids must be the manifest's ids (or image paths for clip-retrieval).")
        matrix = np.zeros((len(rows), vectors.shape[1]), np.float32)
        hit = found.notna().to_numpy()
        matrix[hit] = l2_normalise(vectors[found[hit].astype(int).to_numpy()])
        key = embedding_key(workspace, which, name, key_version, "none")
        final = _set_dir(workspace, name) / f"{which}-{key}.npy"
        status = pd.DataFrame({"id": rows["id"].to_numpy(), "reason": np.where(hit, "", "no precomputed embedding"),
                               "sha256": ""})
        atomic_save_parquet(final.with_suffix(".status.parquet"), status)
        atomic_save_npy(final, matrix.astype(np.float16))
        atomic_save_json(final.with_suffix(".json"), {
            "which": which, "key": key, "embedder": name, "embedder_version": key_version, "source": version,
            "preprocessing": "none",
            "dim": int(vectors.shape[1]), "n_rows": len(rows), "n_embedded": int(hit.sum()),
            "n_skipped": int((~hit).sum()), "dtype": "float16", "normalised": "L2", "tool_version": __version__,
            "skipped_by_reason": {"no precomputed embedding": int((~hit).sum())} if (~hit).any() else {}})
        outputs[which] = final
    _write_current(workspace, name)
    return outputs
