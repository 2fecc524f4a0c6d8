"""The local-feature store: chunk files keyed by image content, resumable after a kill, each content extracted and
verified once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from analysis.copies import feature_store
from analysis.copies.feature_chunks import INDEX_SUFFIX, KEYPOINTS_SUFFIX, read_store
from analysis.copies.local_features import Features

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def write_photos(root: Path, count: int) -> tuple[list[str], list[str]]:
    """`count` distinct images (crops of real photos at different offsets) and a content key for each."""
    root.mkdir(parents=True, exist_ok=True)
    images = []
    for number in range(count):
        photo = Image.fromarray(getattr(data, PHOTOS[number % len(PHOTOS)])()).convert("RGB")
        offset = 12 * (number // len(PHOTOS))
        photo.crop((offset, offset, offset + 300, offset + 260)).save(root / f"{number:02d}.png")
        images.append(f"{number:02d}.png")
    return images, [f"key-{name}" for name in images]


def same_features(a: Features, b: Features) -> bool:
    return (
        np.array_equal(a.points, b.points)
        and np.array_equal(a.descriptors, b.descriptors)
        and (a.width, a.height, a.scale) == (b.width, b.height, b.scale)
    )


def counting_extractions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    extracted: list[str] = []
    real = feature_store.extract_file

    def counted(root: Path, image: str) -> Features | None:
        extracted.append(image)
        return real(root, image)

    monkeypatch.setattr(feature_store, "extract_file", counted)
    return extracted


def test_features_are_stored_in_chunk_files_not_one_file_per_image(tmp_path: Path) -> None:
    images, keys = write_photos(tmp_path / "images", 12)
    stored = feature_store.ensure_features(tmp_path / "images", tmp_path / "store", images, keys, workers=1)
    files = sorted(p.name for p in (tmp_path / "store").iterdir())
    assert len(files) == 4  # two chunks of 8 and 4 images, a keypoint file and an index each
    assert sum(name.endswith(INDEX_SUFFIX) for name in files) == 2
    assert sum(name.endswith(KEYPOINTS_SUFFIX) for name in files) == 2
    assert all(s is not None and s.load().points.shape[0] > 30 for s in stored)


def test_stored_features_are_what_extraction_gives(tmp_path: Path) -> None:
    from analysis.copies.local_features import extract_file

    images, keys = write_photos(tmp_path / "images", 5)
    stored = feature_store.ensure_features(tmp_path / "images", tmp_path / "store", images, keys, workers=1)
    for image, where in zip(images, stored):
        direct = extract_file(tmp_path / "images", image)
        assert where is not None and direct is not None and same_features(where.load(), direct)


def test_byte_identical_images_are_extracted_once_and_verified_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, keys = write_photos(tmp_path / "images", 2)
    (tmp_path / "images" / "copy.png").write_bytes((tmp_path / "images" / images[0]).read_bytes())
    extracted = counting_extractions(monkeypatch)
    named = [images[0], "copy.png", images[1]]
    same_content = [keys[0], keys[0], keys[1]]
    stored = feature_store.ensure_features(tmp_path / "images", tmp_path / "store", named, same_content, workers=1)
    assert extracted == [images[0], images[1]]
    assert stored[0] == stored[1]
    judged: list[tuple[int, int]] = []
    real_verify = feature_store.verify

    def counted(a: Features, b: Features):  # noqa: ANN202
        judged.append((a.width, b.width))
        return real_verify(a, b)

    monkeypatch.setattr(feature_store, "verify", counted)
    inliers, _, _, _ = feature_store.verify_pairs(stored, np.array([[0, 2], [1, 2], [2, 0]]), workers=1)
    assert len(judged) == 2  # (photo, other) once for the photo and its byte-identical copy; (other, photo) once
    assert inliers[0] == inliers[1]


def test_an_unreadable_chunk_index_costs_its_images_again_not_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images, keys = write_photos(tmp_path / "images", 10)
    first = feature_store.ensure_features(tmp_path / "images", tmp_path / "store", images, keys, workers=1)
    index = sorted((tmp_path / "store").glob(f"*{INDEX_SUFFIX}"))[0]
    index.write_bytes(b"not a zip file")
    lost = 10 - len(read_store(tmp_path / "store"))
    extracted = counting_extractions(monkeypatch)
    again = feature_store.ensure_features(tmp_path / "images", tmp_path / "store", images, keys, workers=1)
    assert 0 < lost == len(extracted)
    assert all(a is not None and b is not None and same_features(a.load(), b.load()) for a, b in zip(first, again))


KILLED_WRITER = r"""
import sys, time
from pathlib import Path
from analysis.copies import feature_chunks, feature_store

root, store, marker = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
images = sorted(p.name for p in root.iterdir())
real_save, calls = feature_chunks.atomic_save_npz, []

def index_written_slowly(path, arrays):
    calls.append(path)
    if len(calls) == 2:  # the second chunk: its keypoints are on disk, its index not yet
        marker.write_text(str(path))
        time.sleep(60)
    real_save(path, arrays)

feature_chunks.atomic_save_npz = index_written_slowly
feature_store.ensure_features(root, store, images, [f"key-{name}" for name in images], workers=1)
"""


def test_a_store_killed_mid_chunk_resumes_to_the_same_features(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    images, keys = write_photos(tmp_path / "images", 12)
    marker = tmp_path / "writing-second-index"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path / "images"), str(tmp_path / "store"), str(marker)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, "the writer ended before its second chunk's index"
        assert time.monotonic() < deadline, "waited 120 s for the writer to reach its second chunk's index"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert len(list((tmp_path / "store").glob(f"*{KEYPOINTS_SUFFIX}"))) == 2  # the killed chunk's keypoints
    assert len(read_store(tmp_path / "store")) == 8  # ... count for nothing without their index
    extracted = counting_extractions(monkeypatch)
    resumed = feature_store.ensure_features(tmp_path / "images", tmp_path / "store", images, keys, workers=1)
    assert extracted == images[8:]
    monkeypatch.undo()
    fresh = feature_store.ensure_features(tmp_path / "images", tmp_path / "fresh", images, keys, workers=1)
    assert all(a is not None and b is not None and same_features(a.load(), b.load()) for a, b in zip(resumed, fresh))


def opencv_threads_in_worker(image_file: str) -> tuple[int, np.ndarray, np.ndarray]:
    import cv2

    from analysis.copies.local_features import extract

    features = extract(Image.open(image_file))
    return cv2.getNumThreads(), features.points, features.descriptors


def test_pool_workers_run_opencv_on_one_thread_each_and_extract_the_same_features(tmp_path: Path) -> None:
    """Two workers with OpenCV's own thread pool are four threads on two cores: the workers run one thread each,
    the parent's setting comes back after the pool, and the features equal those extracted with two threads. The
    parent uses OpenCV's pool before forking (as the tests and a page do): a worker changing its own thread count
    would then hang."""
    import cv2

    from analysis.copies.local_features import extract
    from analysis.parallel import parallel_map

    images, _ = write_photos(tmp_path / "images", 4)
    files = [str(tmp_path / "images" / name) for name in images]
    cv2.setNumThreads(2)
    expected = [extract(Image.open(name)) for name in files]
    seen = list(parallel_map(opencv_threads_in_worker, files, workers=2, serial_below=2))
    assert [threads for threads, _, _ in seen] == [1, 1, 1, 1]
    assert cv2.getNumThreads() == 2
    for (_, points, descriptors), want in zip(seen, expected):
        assert np.array_equal(points, want.points) and np.array_equal(descriptors, want.descriptors)
