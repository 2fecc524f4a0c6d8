"""Local features cached in the workspace by image fingerprint, computed only for the images that appear in a
candidate pair, in parallel, resumable (each image's file is written atomically as soon as it is done), and
pair verification spread over the same worker processes, or over a Dask cluster's workers (`offload`), which
read the images and write the features in the workspace's shared cache directory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from analysis import __version__
from analysis.cache import atomic_save_npz, fingerprint
from analysis.copies.local_features import DECODING, MAX_SIDE, N_FEATURES, Features, extract_file, verify
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
# On a cluster, jobs are batched into tasks of about a second or more each (a task costs ~1 ms to schedule);
# `[compute] task_rows` replaces both (tests split a small set into several tasks with it).
IMAGES_PER_TASK = 128
PAIRS_PER_TASK = 2048


def features_directory(workspace: Workspace) -> Path:
    return workspace.config.cache_dir / "features" / fingerprint("sift", __version__, MAX_SIDE, N_FEATURES, DECODING)


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


def feature_path(directory: Path, key: str) -> Path:
    return directory / key[:2] / f"{key}.npz"


def save_features(path: Path, features: Features) -> None:
    atomic_save_npz(
        path,
        {
            "points": features.points,
            "descriptors": features.descriptors,
            "size": np.array([features.width, features.height]),
            "scale": np.float64(features.scale),
        },
    )


def load_features(path: Path) -> Features:
    with np.load(path, allow_pickle=False) as arrays:
        width, height = (int(v) for v in arrays["size"])
        return Features(arrays["points"], arrays["descriptors"], width, height, float(arrays["scale"]))


def stored_features(workspace: Workspace, images: np.ndarray, recorded: np.ndarray) -> Callable[[str], Features | None]:
    """A lookup of these images' cached local features (None for one not extracted), each read on first use: what
    verification just computed, so a second opinion on a verified pair need not extract it again."""
    keys = dict(zip(images, image_fingerprints(workspace, images, recorded)))
    directory = features_directory(workspace)

    def lookup(image: str) -> Features | None:
        key = keys.get(image)
        path = feature_path(directory, key) if key else None
        return load_features(path) if path is not None and path.exists() else None

    return lookup


def _extract_to(job: tuple[str, str, str]) -> str:
    """Worker: decode one image, extract, save. Unreadable images get empty features (no evidence, no match)."""
    images_root, relative, path = job
    save_features(Path(path), extract_file(Path(images_root), relative) or Features.empty())
    return path


def _extract_batch(jobs: list[tuple[str, str, str]]) -> list[str]:
    """Cluster task: a batch of images, each extracted and saved as `_extract_to` does in a local worker (a task
    per image would cost more to schedule than to run)."""
    return [_extract_to(job) for job in jobs]


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
) -> list[Path | None]:
    """The feature file of each image, extracting those not cached yet (with a progress bar on stderr, or the
    cluster's task lines); None for an image with no file under the images root (a dead link has no pixels to
    verify, and writing an empty feature file for each of a large set's dead links would cost more than the
    verification itself). Images in object storage are read through fsspec like any other."""

    paths: list[Path | None] = [feature_path(directory, key) for key in keys]
    todo = {}
    for position, (image, path) in enumerate(zip(images, paths)):
        if path is None or path.exists():
            continue
        if not is_object_url(image):
            source = resolve_image(images_root, image)
            if source is None or not source.is_file():
                paths[position] = None
                continue
        todo[str(path)] = (str(images_root), image, str(path))
    if todo:
        if log:
            log(f"local features: {len(todo):,} images to extract ({len(paths) - len(todo):,} cached or absent)")
        jobs = list(todo.values())
        if offload is not None:
            size = task_size(offload, 1, IMAGES_PER_TASK)
            batches = [(jobs[start : start + size],) for start in range(0, len(jobs), size)]
            offload.map(_extract_batch, batches, f"local features of {len(jobs):,} images")
            return paths
        bar = progress_bar(len(todo), "local features", enabled=log is not None)
        for _ in parallel_map(_extract_to, jobs, workers, chunksize=8):
            bar.update()
        bar.close()
    return paths


def _verify_chunk(job: tuple[list[str], np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worker: one chunk of pairs, as positions into the chunk's own file list, on one BLAS thread: the workers
    already fill the cores, and two workers of two BLAS threads each verified 4× slower (84,563 candidate pairs of
    real photos: 198 s against 50 s; docs/benchmarks.md, "Pixel verification: cost per core")."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _verify_pairs_of(*job)


def _verify_pairs_of(files: list[str], pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    loaded: dict[int, Features] = {}

    def get(position: int) -> Features:
        if position not in loaded:
            loaded[position] = load_features(Path(files[position]))
        return loaded[position]

    inliers = np.zeros(len(pairs), dtype=np.int32)
    mirrored = np.zeros(len(pairs), dtype=bool)
    coverage = np.zeros(len(pairs), dtype=np.float32)
    for row, (a, b) in enumerate(pairs):
        result = verify(get(int(a)), get(int(b)))
        inliers[row], mirrored[row], coverage[row] = result.inliers, result.mirrored, result.coverage
    return inliers, mirrored, coverage


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


def verify_pairs(
    files: list[Path | None],
    pairs: np.ndarray,
    *,
    workers: int = 2,
    log: Progress | None = None,
    offload: Offload | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inliers, mirror flag and coverage of each pair (positions into `files`), in chunks over worker processes
    or cluster tasks (the same answer either way: a pair's verification depends on its two feature files only).
    A pair with an absent image (file None) has no evidence: 0 inliers, without a job. Each job carries only the
    files its pairs name (a job carrying the whole list pickled it again per chunk: hours at a million images)."""

    inliers = np.zeros(len(pairs), dtype=np.int32)
    mirrored = np.zeros(len(pairs), dtype=bool)
    coverage = np.zeros(len(pairs), dtype=np.float32)
    present = np.array([f is not None for f in files], dtype=bool)
    chunks = pair_chunks(present, pairs, task_size(offload, CHUNK_PAIRS, PAIRS_PER_TASK))
    if not chunks:
        return inliers, mirrored, coverage
    jobs = [([str(files[p]) for p in needed], local) for _, needed, local in chunks]
    rows = [chunk for chunk, _, _ in chunks]
    if offload is not None:
        done = offload.map(_verify_chunk, [(job,) for job in jobs], f"verifying {sum(map(len, rows)):,} pairs")
        for chunk, result in zip(rows, done):
            inliers[chunk], mirrored[chunk], coverage[chunk] = result
        return inliers, mirrored, coverage
    bar = progress_bar(sum(len(r) for r in rows), "verifying pairs", unit="pair", enabled=log is not None)
    for chunk, result in zip(rows, parallel_map(_verify_chunk, jobs, workers, serial_below=2)):
        inliers[chunk], mirrored[chunk], coverage[chunk] = result
        bar.update(len(chunk))
    bar.close()
    return inliers, mirrored, coverage


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
