"""Local features stored in chunk files: a million images in a few thousand files rather than a million (shared
filesystems and object stores handle millions of small files badly; the store before this one wrote one `.npz` per
image).

A chunk holds the features of one batch of images, keyed by each image's content key: a keypoint file (one row per
keypoint: its position and its SIFT descriptor; a task reads only the rows of the images it verifies) and an index
(each key's rows, image size and scale). Both are written atomically, the index last: a chunk exists once its index
does. A process killed mid-chunk leaves at most a temporary file or a keypoint file that no index names; the next
run ignores them and extracts those images again. A chunk's name is a hash of its keys, so two runs that extract the
same batch write the same files.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from analysis.cache import atomic_save_npy, atomic_save_npz, fingerprint
from analysis.copies.local_features import Features

KEYPOINT = np.dtype([("xy", np.float32, (2,)), ("descriptor", np.uint8, (128,))])  # 136 bytes per keypoint
LAYOUT = "chunks of keypoint rows with an index written last"  # part of the store's directory key
INDEX_SUFFIX = ".index.npz"
KEYPOINTS_SUFFIX = ".keypoints.npy"

OpenChunks = dict[str, int]  # where the rows of each keypoint file a worker has read begin, by path


class StoredFeatures(NamedTuple):
    """Where one image's features lie in the store: small enough to travel with every task that needs them."""

    chunk: str  # the chunk's keypoint file
    start: int
    length: int  # keypoints
    width: int
    height: int
    scale: float
    original_width: int = 0  # 0 in a chunk written before the store kept it

    def load(self, opened: OpenChunks | None = None) -> Features:
        """The features, read from the chunk file: its rows alone, by offset (`opened` keeps each chunk's header
        length across a task). Not a memory map: mapped pages count in a worker's resident memory (308 MB of 835 in
        the two workers of a 7,404-photo dedup) and a read is ~30 µs against ~1 ms per pair verified."""
        if self.length == 0:
            return Features(
                np.zeros((0, 2), np.float32),
                np.zeros((0, 128), np.uint8),
                self.width,
                self.height,
                self.scale,
                self.original_width,
            )
        offset = _rows_offset(self.chunk, opened)
        keypoints = np.fromfile(
            self.chunk, dtype=KEYPOINT, count=self.length, offset=offset + self.start * KEYPOINT.itemsize
        )
        return Features(
            np.ascontiguousarray(keypoints["xy"]),
            np.ascontiguousarray(keypoints["descriptor"]),
            self.width,
            self.height,
            self.scale,
            self.original_width,
        )


def _rows_offset(chunk: str, opened: OpenChunks | None) -> int:
    """Where a keypoint file's rows begin (after its .npy header), checking that it holds keypoint rows."""
    if opened is not None and chunk in opened:
        return opened[chunk]
    with open(chunk, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{chunk}: .npy format {version} is not the one this store writes")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(handle)
        if dtype != KEYPOINT or fortran or len(shape) != 1:
            raise ValueError(f"{chunk}: not a keypoint chunk (dtype {dtype}, shape {shape})")
        offset = handle.tell()
    if opened is not None:
        opened[chunk] = offset
    return offset


def write_chunk(directory: Path, keys: list[str], features: list[Features]) -> dict[str, StoredFeatures]:
    """Store one batch of images' features as a chunk, keypoints first and the index last, each atomically."""
    name = fingerprint(LAYOUT, *keys)
    keypoints_path = directory / f"{name}{KEYPOINTS_SUFFIX}"
    counts = np.array([len(f.points) for f in features], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    rows = np.zeros(int(counts.sum()), KEYPOINT)
    if len(rows):
        rows["xy"] = np.concatenate([f.points for f in features])
        rows["descriptor"] = np.concatenate([f.descriptors for f in features])
    sizes = np.array([[f.width, f.height] for f in features], dtype=np.int64).reshape(-1, 2)
    scales = np.array([f.scale for f in features], dtype=np.float64)
    widths = np.array([f.original_width for f in features], dtype=np.int64)
    atomic_save_npy(keypoints_path, rows)
    atomic_save_npz(
        directory / f"{name}{INDEX_SUFFIX}",
        {
            "keys": np.array([k.encode() for k in keys]),
            "start": starts,
            "count": counts,
            "size": sizes,
            "scale": scales,
            "original_width": widths,
        },
    )
    return _entries(str(keypoints_path), keys, starts, counts, sizes, scales, widths)


def read_store(directory: Path) -> dict[str, StoredFeatures]:
    """Every stored image's features by key, from the chunk indexes (an index that cannot be read is skipped: its
    images are extracted again, as after a kill)."""
    stored: dict[str, StoredFeatures] = {}
    if not directory.is_dir():
        return stored
    for index in sorted(directory.glob(f"*{INDEX_SUFFIX}")):
        keypoints = index.with_name(index.name[: -len(INDEX_SUFFIX)] + KEYPOINTS_SUFFIX)
        if not keypoints.is_file():
            continue
        try:
            with np.load(index, allow_pickle=False) as arrays:
                keys = [k.decode() for k in arrays["keys"].tolist()]
                widths = arrays["original_width"] if "original_width" in arrays else np.zeros(len(keys), np.int64)
                stored.update(
                    _entries(
                        str(keypoints), keys, arrays["start"], arrays["count"], arrays["size"], arrays["scale"], widths
                    )
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            continue
    return stored


def _entries(
    chunk: str,
    keys: list[str],
    starts: np.ndarray,
    counts: np.ndarray,
    sizes: np.ndarray,
    scales: np.ndarray,
    widths: np.ndarray,
) -> dict[str, StoredFeatures]:
    return {
        key: StoredFeatures(chunk, start, count, width, height, scale, original)
        for key, start, count, (width, height), scale, original in zip(
            keys, starts.tolist(), counts.tolist(), sizes.tolist(), scales.tolist(), widths.tolist()
        )
    }
