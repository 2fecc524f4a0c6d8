"""Local features cached in the workspace by image content, computed only for the images that appear in a
candidate pair, in parallel, in chunk files (`feature_chunks`: resumable, each chunk written atomically as soon as
its batch is done), and pair verification spread over the same worker processes, or over a Dask cluster's workers
(`offload`), which read the images and write and read the features in the workspace's shared cache directory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from analysis import __version__
from analysis.cache import fingerprint
from analysis.copies.aligned_similarity import Alignments, pair_models
from analysis.copies.feature_chunks import LAYOUT, OpenChunks, StoredFeatures, read_store, write_chunk
from analysis.copies.local_features import (
    DECODING,
    MAX_SIDE,
    MIN_COVERAGE,
    N_FEATURES,
    Features,
    extract_file,
    verify,
)
from analysis.embedding_store import EmbeddingSet
from analysis.images import resolve_image
from analysis.parallel import parallel_map
from analysis.progress import progress_bar
from analysis.storage import is_object_url
from analysis.workspace import Workspace

if TYPE_CHECKING:
    from analysis.index import Offload

Progress = Callable[[str], None]
CHUNK_PAIRS = 256
# Images per feature chunk, in a local worker or a cluster task: ~6 s of extraction on one core, 256 × ~37 KB of
# features per chunk, 4,000 chunks per million images. A kill loses the chunks being written, at most one per worker.
IMAGES_PER_CHUNK = 256
# On a cluster, verification jobs are batched into tasks of about a second or more each (a task costs ~1 ms to
# schedule); `[compute] task_rows` replaces this and the chunk size (tests split a small set into several tasks).
PAIRS_PER_TASK = 2048


def features_directory(workspace: Workspace) -> Path:
    return (
        workspace.config.cache_dir
        / "features"
        / fingerprint("sift", __version__, MAX_SIDE, N_FEATURES, DECODING, LAYOUT)
    )


def image_fingerprints(workspace: Workspace, images: np.ndarray, recorded: np.ndarray) -> np.ndarray:
    """One key per image: the sha256 of its bytes that `prepare` recorded (`recorded`, "" where none), else a
    hash of its path, size and modification time (the file is not read twice)."""
    keys = np.empty(len(images), dtype=object)
    for row, (relative, digest) in enumerate(zip(images, recorded)):
        if digest:
            keys[row] = digest
            continue
        path = resolve_image(workspace.config.images_root, str(relative))
        stat = path.stat() if path is not None and path.is_file() else None
        keys[row] = hashlib.sha256(
            f"{relative}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}".encode()
        ).hexdigest()
    return keys


def stored_features(workspace: Workspace, images: np.ndarray, recorded: np.ndarray) -> Callable[[str], Features | None]:
    """A lookup of these images' cached local features (None for one not extracted), each read on first use: what
    verification just computed, so a second opinion on a verified pair need not extract it again."""
    keys = dict(zip(images, image_fingerprints(workspace, images, recorded)))
    stored = read_store(features_directory(workspace))

    def lookup(image: str) -> Features | None:
        where = stored.get(keys.get(image, ""))
        return None if where is None else where.load()

    return lookup


def _extract_chunk(job: tuple[str, str, list[tuple[str, str]]]) -> dict[str, StoredFeatures]:
    """Worker or cluster task: decode and extract a batch of images, then store them as one chunk. Unreadable
    images get empty features (no evidence, no match)."""
    images_root, directory, batch = job
    features = [extract_file(Path(images_root), image) or Features.empty() for image, _ in batch]
    return write_chunk(Path(directory), [key for _, key in batch], features)


def task_size(offload: Offload | None, local: int, on_cluster: int) -> int:
    """Jobs per task: `local` in this machine's processes; on a cluster, `[compute] task_rows` or `on_cluster`."""
    return local if offload is None else (offload.task_rows or on_cluster)


def ensure_features(
    images_root: Path,
    directory: Path,
    images: list[str],
    keys: list[str],
    *,
    workers: int = 2,
    log: Progress | None = None,
    offload: Offload | None = None,
) -> list[StoredFeatures | None]:
    """Where each image's features are stored, extracting those not stored yet, each content key once (with a
    progress bar on stderr, or the cluster's task lines); None for an image with no file under the images root (a
    dead link has no pixels to verify, and storing empty features for each of a large set's dead links would cost
    more than the verification itself). Images in object storage are read through fsspec like any other."""

    stored = read_store(directory)
    todo: dict[str, str] = {}
    absent: set[int] = set()
    for position, (image, key) in enumerate(zip(images, keys)):
        if key in stored or key in todo:
            continue
        if not is_object_url(image):
            source = resolve_image(images_root, image)
            if source is None or not source.is_file():
                absent.add(position)
                continue
        todo[key] = image
    if todo:
        directory.mkdir(parents=True, exist_ok=True)
        if log:
            log(f"local features: {len(todo):,} images to extract ({len(images) - len(todo):,} stored or absent)")
        batch = [(image, key) for key, image in todo.items()]
        size = task_size(offload, min(IMAGES_PER_CHUNK, max(8, -(-len(batch) // (4 * workers)))), IMAGES_PER_CHUNK)
        jobs = [(str(images_root), str(directory), batch[start : start + size]) for start in range(0, len(batch), size)]
        if offload is not None:
            for written in offload.map(
                _extract_chunk, [(job,) for job in jobs], f"local features of {len(batch):,} images"
            ):
                stored.update(written)
        else:
            bar = progress_bar(len(batch), "local features", enabled=log is not None)
            for written in parallel_map(_extract_chunk, jobs, workers, serial_below=2):
                stored.update(written)
                bar.update(len(written))
            bar.close()
    return [None if position in absent else stored.get(key) for position, key in enumerate(keys)]


def _verify_chunk(job: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray, Alignments]:
    """Worker: one chunk of pairs, as positions into the chunk's own file list, on one BLAS thread: the workers
    already fill the cores, and two workers of two BLAS threads each verified 4× slower (84,563 candidate pairs of
    real photos: 198 s against 50 s; docs/benchmarks.md, "Pixel verification: cost per core"). `job`: the files,
    the pairs, and optionally the inlier threshold from which the verified pairs' transforms are fitted."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _verify_pairs_of(*job)


def _verify_pairs_of(
    features: list[StoredFeatures], pairs: np.ndarray, align_from: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Alignments]:
    loaded: dict[int, Features] = {}
    opened: OpenChunks = {}

    def get(position: int) -> Features:
        if position not in loaded:
            loaded[position] = features[position].load(opened)
        return loaded[position]

    inliers = np.zeros(len(pairs), dtype=np.int32)
    mirrored = np.zeros(len(pairs), dtype=bool)
    coverage = np.zeros(len(pairs), dtype=np.float32)
    aligned: list[int] = []
    models: list[np.ndarray] = []
    flips: list[bool] = []
    for row, (a, b) in enumerate(pairs):
        result = verify(get(int(a)), get(int(b)))
        inliers[row], mirrored[row], coverage[row] = result.inliers, result.mirrored, result.coverage
        if align_from is not None and result.inliers >= align_from and result.coverage >= MIN_COVERAGE:
            fitted = pair_models(result)
            if fitted is not None:
                aligned.append(row)
                models.append(fitted)
                flips.append(result.mirrored)
    if not aligned:
        return inliers, mirrored, coverage, Alignments.none()
    return inliers, mirrored, coverage, Alignments(np.array(aligned, np.int64), np.stack(models), np.array(flips))


def pair_chunks(present: np.ndarray, pairs: np.ndarray, size: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The pairs whose two images are `present`, neighbours together (they share images: fewer loads per chunk), in
    chunks of `size`: (rows of `pairs`, the image positions the chunk needs, its pairs as positions into those).
    A job built from a chunk carries only its own images (one carrying the whole list pickled it again per chunk:
    hours at a million images)."""
    checkable = np.flatnonzero(present[pairs].all(axis=1)) if len(pairs) else np.zeros(0, dtype=np.int64)
    if not len(checkable):
        return []
    order = checkable[np.lexsort((pairs[checkable, 1], pairs[checkable, 0]))]
    chunks = []
    for start in range(0, len(order), size):
        chunk = order[start : start + size]
        needed, local = np.unique(pairs[chunk], return_inverse=True)
        chunks.append((chunk, needed, local.reshape(-1, 2)))
    return chunks


class PairChecks(NamedTuple):
    inliers: np.ndarray  # (m,) int32
    mirrored: np.ndarray  # (m,) bool
    coverage: np.ndarray  # (m,) float32
    aligned: Alignments  # the transforms of the pairs verified from `align_from` inliers (rows of the pairs)


def verify_pairs(
    features: list[StoredFeatures | None],
    pairs: np.ndarray,
    *,
    workers: int = 2,
    log: Progress | None = None,
    offload: Offload | None = None,
    align_from: int | None = None,
) -> PairChecks:
    """Inliers, mirror flag and coverage of each pair (positions into `features`), in chunks over worker processes
    or cluster tasks (the same answer either way: a pair's verification depends on its two images' features only).
    Pairs of the same content (byte-identical images stored once) are verified once. A pair with an absent image
    (None) has no evidence: 0 inliers, without a job. Each job carries only the features its pairs name (a job
    carrying the whole list pickled it again per chunk: hours at a million images). From `align_from` inliers (and
    the coverage rule), a pair's two transforms are fitted as the tiers' pixel agreement fits them, where the
    inliers are at hand: the tier step then does not verify the pair again (bench/tier_speed.py)."""

    empty = PairChecks(
        np.zeros(len(pairs), dtype=np.int32),
        np.zeros(len(pairs), dtype=bool),
        np.zeros(len(pairs), dtype=np.float32),
        Alignments.none(),
    )
    if not len(pairs):
        return empty
    first: dict[StoredFeatures, int] = {}
    same = np.array([i if f is None else first.setdefault(f, i) for i, f in enumerate(features)], dtype=np.int64)
    distinct, back = np.unique(same[np.asarray(pairs, dtype=np.int64)], axis=0, return_inverse=True)
    back = back.reshape(-1)
    present = np.array([f is not None for f in features], dtype=bool)
    chunks = pair_chunks(present, distinct, task_size(offload, CHUNK_PAIRS, PAIRS_PER_TASK))
    if not chunks:
        return empty
    found = (np.zeros(len(distinct), np.int32), np.zeros(len(distinct), bool), np.zeros(len(distinct), np.float32))
    aligned: list[Alignments] = []
    jobs = [([features[p] for p in needed], local, align_from) for _, needed, local in chunks]
    rows = [chunk for chunk, _, _ in chunks]

    def take(chunk: np.ndarray, result: tuple) -> None:
        for column, values in zip(found, result[:3]):
            column[chunk] = values
        aligned.append(result[3]._replace(rows=chunk[result[3].rows]))

    if offload is not None:
        done = offload.map(_verify_chunk, [(job,) for job in jobs], f"verifying {sum(map(len, rows)):,} pairs")
        for chunk, result in zip(rows, done):
            take(chunk, result)
    else:
        bar = progress_bar(sum(len(r) for r in rows), "verifying pairs", unit="pair", enabled=log is not None)
        for chunk, result in zip(rows, parallel_map(_verify_chunk, jobs, workers, serial_below=2)):
            take(chunk, result)
            bar.update(len(chunk))
        bar.close()
    return PairChecks(found[0][back], found[1][back], found[2][back], _aligned_back(aligned, back))


def _aligned_back(parts: list[Alignments], back: np.ndarray) -> Alignments:
    """The transforms fitted for distinct pairs, for every pair row that is one of them (rows ascending)."""
    if not sum(len(part.rows) for part in parts):
        return Alignments.none()
    rows = np.concatenate([part.rows for part in parts])
    models = np.concatenate([part.models for part in parts])
    mirrored = np.concatenate([part.mirrored for part in parts])
    slot = np.full(int(back.max()) + 1, -1, dtype=np.int64)
    slot[rows] = np.arange(len(rows))
    of_pair = slot[back]
    pair_rows = np.flatnonzero(of_pair >= 0)
    return Alignments(pair_rows.astype(np.int64), models[of_pair[pair_rows]], mirrored[of_pair[pair_rows]])


def verification_unavailable(workspace: Workspace, found: EmbeddingSet) -> str | None:
    """Why pixel verification cannot run on this workspace (None when it can): it needs the image files, which
    precomputed embeddings often come without."""
    if not workspace.has_images:
        return "the manifest has no image paths"
    if found.status["sha256"].ne("").any():
        return None  # `prepare` read the files
    images = workspace.original["image"].astype(str)
    sample = images[images != ""].head(20)
    if not any((path := resolve_image(workspace.config.images_root, p)) and path.is_file() for p in sample):
        return "the image files are not under the images root (precomputed embeddings without images)"
    return None
