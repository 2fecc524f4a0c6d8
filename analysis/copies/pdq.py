"""PDQ perceptual hashes (Meta's open standard for matching images against lists of known-bad content): 256 bits
per image; re-encodes and resizes of one image stay within Hamming distance 31 (PDQ's published match
threshold). Computed once per image set, cached by the set's embedding key (the ids and image paths), in
parallel, resumable per chunk."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.cache import atomic_save_parquet, fingerprint, load_or_compute
from analysis.embedding_store import embedding_key, set_rows
from analysis.images import load_image
from analysis.index import Offload
from analysis.parallel import batches, parallel_map
from analysis.progress import progress_bar
from analysis.workspace import Workspace

MATCH_DISTANCE = 31  # PDQ's recommended threshold for "same image" (Meta, "The TMK+PDQF and PDQ hashing algorithms")
QUALITY_FLOOR = 50  # PDQ marks hashes of flat, featureless images with low quality; they match too easily
CHUNK_ROWS = 2048


def pdq_of_file(job: tuple[str, str]) -> tuple[str, int]:
    """(64 hex digits, quality) of one image; ("", 0) when it cannot be decoded."""
    import pdqhash

    images_root, relative = job
    result = load_image(Path(images_root), relative, min_side=256)
    if result.image is None:
        return "", 0
    bits, quality = pdqhash.compute(np.asarray(result.image))
    return np.packbits(bits.astype(np.uint8)).tobytes().hex(), int(quality)


def pdq_hashes(
    workspace: Workspace,
    which: str = "original",
    *,
    workers: int = 2,
    log: Callable[[str], None] | None = None,
    offload: Offload | None = None,
) -> pd.DataFrame:
    """id, pdq (hex, "" when unreadable), quality for every row of an image set (cached); `offload`: one task per
    missing chunk on a Dask cluster."""

    rows = set_rows(workspace, which)
    key = fingerprint("pdq", embedding_key(workspace, which, "pdq", "pdqhash", "none"))
    path = workspace.config.cache_dir / "pdq" / f"{which}-{key}.parquet"
    chunk_dir = path.with_suffix(".chunks")

    def compute() -> pd.DataFrame:
        jobs = [(str(workspace.config.images_root), str(image)) for image in rows["image"]]
        bar = progress_bar(len(jobs), f"PDQ hashes ({which})", enabled=log is not None)
        chunks = [chunk_dir / f"{number:06d}.parquet" for number in range(-(-len(jobs) // CHUNK_ROWS))]
        todo = [number for number, part in enumerate(chunks) if not part.exists()]
        bar.update(len(jobs) - sum(len(jobs[n * CHUNK_ROWS : (n + 1) * CHUNK_ROWS]) for n in todo))
        # One pool (or one task per chunk) for every missing chunk; each is saved as soon as it is done (resumable).
        if offload is not None:
            per_chunk = [(jobs[number * CHUNK_ROWS : (number + 1) * CHUNK_ROWS],) for number in todo]
            results: Iterable = (
                found for chunk in offload.map(pdq_of_files, per_chunk, f"PDQ hashes ({which})") for found in chunk
            )
        else:
            pending = [job for number in todo for job in jobs[number * CHUNK_ROWS : (number + 1) * CHUNK_ROWS]]
            results = parallel_map(pdq_of_file, pending, workers, chunksize=32, serial_below=33)
        for number, found in zip(todo, batches(results, CHUNK_ROWS)):
            atomic_save_parquet(chunks[number], pd.DataFrame(found, columns=["pdq", "quality"]))
            bar.update(len(found))
        parts = [pd.read_parquet(part) for part in chunks]
        bar.close()
        hashes = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["pdq", "quality"])
        return pd.DataFrame(
            {"id": rows["id"].to_numpy(), "pdq": hashes["pdq"].to_numpy(), "quality": hashes["quality"].to_numpy()}
        )

    def save(frame: pd.DataFrame) -> None:
        atomic_save_parquet(path, frame)
        import shutil

        shutil.rmtree(chunk_dir, ignore_errors=True)

    return load_or_compute([path], lambda: pd.read_parquet(path), compute, save)


def pdq_of_files(jobs: list[tuple[str, str]]) -> list[tuple[str, int]]:
    """The PDQ hash and quality of each (images root, path): one chunk, as a Dask task."""
    return [pdq_of_file(job) for job in jobs]


def as_bits(hexes: pd.Series | list[str]) -> np.ndarray:
    """(n, 32) uint8 of 64-hex-digit hashes (the layout faiss's binary indexes take)."""
    values = list(hexes)
    return np.frombuffer(b"".join(bytes.fromhex(h) for h in values), dtype=np.uint8).reshape(len(values), 32)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Hamming distance of two (n, 32) uint8 arrays."""
    return np.unpackbits(np.bitwise_xor(a, b), axis=1).sum(axis=1)


def within(queries: np.ndarray, references: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (query row, reference row, distance) with Hamming distance ≤ max_distance, by faiss's binary index."""
    import faiss

    if not len(queries) or not len(references):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    index = faiss.IndexBinaryFlat(256)
    index.add(references)
    limits, distances, labels = index.range_search(queries, max_distance + 1)  # strict "<" radius in faiss
    bounds = np.asarray(limits, dtype=np.int64)
    counts = (bounds[1:] - bounds[:-1]).astype(np.int64)
    query_rows = np.repeat(np.arange(len(queries)), counts)
    return query_rows, labels.astype(np.int64), distances.astype(np.int64)


def pair_pdq_distances(hashes: pd.DataFrame, pairs: np.ndarray) -> np.ndarray:
    """PDQ Hamming distance of each pair of rows (256, the maximum, where either image has no hash)."""
    if not len(pairs):
        return np.zeros(0, dtype=np.int64)
    known = (hashes["pdq"] != "").to_numpy()
    bits = as_bits(hashes["pdq"].where(hashes["pdq"] != "", "0" * 64))
    distances = hamming(bits[pairs[:, 0]], bits[pairs[:, 1]])
    return np.where(known[pairs[:, 0]] & known[pairs[:, 1]], distances, 256)
