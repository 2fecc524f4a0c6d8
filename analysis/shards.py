"""img2dataset output as input: its Parquet shards are the manifest, and its images are read inside its webdataset
`.tar` shards, in place (never extracted to disk), so a LAION download is audited where it lies.

An image inside a shard is written `SHARD.tar#KEY` (relative to the images root): `00000.tar#000000012` is the
member `000000012.jpg` (or .png, .webp) of `00000.tar`. img2dataset writes one `NNNNN.parquet` per `NNNNN.tar`,
with a `key` per row and a `status` ("success" for the rows whose image is in the tar).
"""

from __future__ import annotations

import tarfile
from functools import lru_cache
from pathlib import Path

import pandas as pd

from analysis.errors import AuditInputError

SEPARATOR = "#"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")


def shard_reference(relative: str) -> tuple[str, str] | None:
    """(shard path, member key) for `SHARD.tar#KEY`, else None."""
    shard, separator, member = relative.partition(SEPARATOR)
    if separator and shard.endswith(".tar") and member:
        return shard, member
    return None


@lru_cache(maxsize=256)
def _index(path: str, modified_ns: int) -> dict[str, tuple[int, int]]:
    """Member name → (offset of its data, size), also under the name without its image suffix; one pass over the
    tar's headers per shard and modification (the data itself is skipped)."""
    entries: dict[str, tuple[int, int]] = {}
    with tarfile.open(path, mode="r:") as archive:
        for member in archive:
            if not member.isfile():
                continue
            entries[member.name] = (member.offset_data, member.size)
            stem, dot, suffix = member.name.rpartition(".")
            if dot and f".{suffix.lower()}" in IMAGE_SUFFIXES:
                entries.setdefault(stem, (member.offset_data, member.size))
    return entries


def member_size(shard: Path, member: str) -> int | None:
    """The size in bytes of an image inside a shard, or None when it is not there."""
    entry = _index(str(shard), shard.stat().st_mtime_ns).get(member)
    return None if entry is None else entry[1]


def read_member(shard: Path, member: str) -> bytes | None:
    """The bytes of an image inside a shard, or None when it is not there."""
    try:
        entry = _index(str(shard), shard.stat().st_mtime_ns).get(member)
    except tarfile.TarError:
        return None
    if entry is None:
        return None
    offset, size = entry
    with shard.open("rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def is_img2dataset_folder(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*.parquet"))


def read_img2dataset(folder: Path) -> pd.DataFrame:
    """The rows of every Parquet shard whose image was downloaded (`status` "success" where the column exists),
    with `image` = `SHARD.tar#KEY` pointing into the tar of the same number."""
    shards = sorted(folder.glob("*.parquet"))
    if not shards:
        raise AuditInputError(
            "folder has no Parquet shards.", path=folder, fix="point to an img2dataset output folder (NNNNN.parquet)."
        )
    frames = []
    for shard in shards:
        try:
            frame = pd.read_parquet(shard)
        except (OSError, ValueError) as exc:
            raise AuditInputError(
                f"cannot be read as Parquet: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                path=shard,
                fix="check that the shard is complete (img2dataset may still be writing it).",
            ) from None
        if "key" not in frame.columns:
            raise AuditInputError(
                "img2dataset shard has no 'key' column.", path=shard, fix="is this img2dataset output?"
            )
        if "status" in frame.columns:
            frame = frame[frame["status"] == "success"]
        tar = shard.with_suffix(".tar")
        frame = frame.assign(image=[f"{tar.name}{SEPARATOR}{key}" for key in frame["key"].astype(str)])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
