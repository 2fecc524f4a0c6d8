"""Embedders, `prepare` (cache, resume, skips) and the precomputed import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from analysis.embedders import get_embedder
from analysis.embedding_store import load_embeddings
from analysis.embeddings import DEFAULT_BATCH_SIZE, prepare
from analysis.errors import AuditInputError
from analysis.workspace import load_workspace
from data_samples import drawing
from tests.helpers import REPO, scene_workspace


@pytest.fixture(scope="module")
def effnet():
    return get_embedder("effnet-lite0")


def test_effnet_weights_map_onto_timm_and_classify_real_photos(effnet) -> None:
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    photos = {"chelsea": ("cat",), "coffee": ("espresso", "cup", "coffee")}
    batch = np.stack([effnet.preprocess(drawing.photo(name)) for name in photos])
    top = effnet.classify(batch).argmax(1)
    for (name, expected), label in zip(photos.items(), top):
        description = info.index_to_description(int(label)).lower()
        assert any(word in description for word in expected), (name, description)


def test_edited_copies_are_closest_to_their_original(effnet) -> None:
    names = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "retina")
    originals = np.stack([effnet.preprocess(drawing.square(drawing.photo(n))) for n in names])
    base = effnet.embed(originals)
    for position, name in enumerate(names):
        edits = drawing.photo_edits(name)[1:]
        queries = effnet.embed(np.stack([effnet.preprocess(e) for e in edits]))
        assert ((queries @ base.T).argmax(1) == position).all(), name


def test_a_model_pass_reuses_its_freed_buffers_instead_of_faulting_them_in_again(effnet) -> None:
    """With glibc's defaults each pass's activations are mapped afresh and faulted in (~13,000 minor faults per pass of
    4 images, ~330,000 at batch 32: 40% of `prepare`'s CPU went to the kernel); kept, under 100 at the default batch.
    At batch 8 the largest activation passes glibc's mmap limit again (~9,000–28,000 a pass)."""
    import resource

    batch = np.zeros((DEFAULT_BATCH_SIZE, 3, 224, 224), np.float32)
    for _ in range(2):
        effnet.embed(batch)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(8):
        effnet.embed(batch)
    per_pass = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 8
    assert per_pass < 2_000, f"{per_pass:,.0f} minor page faults per pass of {DEFAULT_BATCH_SIZE} images"


def test_embeddings_are_unit_length(sample_dir: Path) -> None:
    found = load_embeddings(load_workspace(sample_dir))
    assert found.vectors.shape == (1000, 1280) and found.valid.all()
    assert np.allclose(np.linalg.norm(found.vectors, axis=1), 1.0, atol=2e-3)
    assert found.meta["embedder"] == "effnet-lite0" and "centre square crop" in found.meta["preprocessing"]


def test_second_prepare_is_a_no_op(sample_copy: Path) -> None:
    workspace = load_workspace(sample_copy)
    before = {p: p.stat().st_mtime_ns for p in (sample_copy / ".audit-cache").rglob("*.npy")}
    messages: list[str] = []
    prepare(workspace, progress=False, log=messages.append)
    assert all("nothing to do" in m for m in messages) and len(messages) == 2
    assert {p: p.stat().st_mtime_ns for p in (sample_copy / ".audit-cache").rglob("*.npy")} == before


def _small_workspace(tmp_path: Path, n: int = 48) -> Path:
    return scene_workspace(tmp_path, n, 96)


def test_killed_prepare_resumes_to_the_same_embeddings(tmp_path: Path) -> None:
    reference = _small_workspace(tmp_path / "a")
    prepare(load_workspace(reference), progress=False, log=lambda m: None, chunk_rows=8)
    expected = load_embeddings(load_workspace(reference)).vectors

    interrupted = _small_workspace(tmp_path / "b")
    command = [
        sys.executable,
        "-m",
        "pretrain_audit.cli",
        "prepare",
        str(interrupted),
        "--chunk-rows",
        "8",
        "--workers",
        "0",
        "--no-progress",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(interrupted.rglob("000001.npy")):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not list(interrupted.rglob("original-*.json")), "killed before finishing"
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "resuming" in result.stderr
    assert np.array_equal(load_embeddings(load_workspace(interrupted)).vectors, expected)


def test_bad_images_are_skipped_with_a_reason(tmp_path: Path) -> None:
    workspace = _small_workspace(tmp_path, n=4)
    (workspace / "img" / "0.png").unlink()
    (workspace / "img" / "1.png").write_bytes(b"")
    good = (workspace / "img" / "2.png").read_bytes()
    (workspace / "img" / "2.png").write_bytes(good[: len(good) // 3])
    bomb = Image.new("1", (12000, 6000))
    bomb.save(workspace / "img" / "3.png")
    prepare(load_workspace(workspace), progress=False, log=lambda m: None)
    reasons = load_embeddings(load_workspace(workspace)).skipped.set_index("id")["reason"].to_dict()
    assert reasons["r0"] == "file not found"
    assert reasons["r1"] == "empty file (0 bytes)"
    assert reasons["r2"].startswith("unreadable image")
    assert reasons["r3"].startswith("too large")


def test_open_clip_plumbing_with_a_tiny_local_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import open_clip
    import torch

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    (tmp_path / "tiny-test-clip.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "tiny-test-clip.json")
    model = open_clip.create_model("tiny-test-clip", pretrained=None)
    torch.save(model.state_dict(), tmp_path / "tiny.pt")  # random weights: plumbing only, no claims on quality
    embedder = get_embedder(f"open_clip:tiny-test-clip:{tmp_path / 'tiny.pt'}")
    images = embedder.embed(np.stack([embedder.preprocess(drawing.clock(0, h)) for h in (1, 2)]))
    texts = embedder.embed_text(["a clock", "a logo"])
    assert images.shape == (2, 16) and texts.shape == (2, 16)
    assert np.allclose(np.linalg.norm(images, axis=1), 1, atol=1e-5)


def test_open_clip_tag_offline_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AuditInputError, match="pass its local path"):
        get_embedder("open_clip:ViT-B-32:laion2b_s34b_b79k")


def test_unknown_embedder_is_a_user_error() -> None:
    with pytest.raises(AuditInputError, match="unknown embedder"):
        get_embedder("resnet9000")


def _precomputed(tmp_path: Path, vectors: np.ndarray, ids: list[str]) -> Path:
    directory = tmp_path / "emb"
    directory.mkdir()
    np.save(directory / "embeddings.npy", vectors)
    (directory / "ids.txt").write_text("\n".join(ids))
    return directory


def test_precomputed_import_round_trips(tmp_path: Path) -> None:
    workspace = _small_workspace(tmp_path / "ws", n=6)
    vectors = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
    path = _precomputed(tmp_path, vectors, [f"r{i}" for i in range(5)])
    prepare(load_workspace(workspace), f"precomputed:{path}")
    found = load_embeddings(load_workspace(workspace))
    expected = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert np.allclose(found.vectors[:5], expected, atol=2e-3)
    assert found.valid.tolist() == [True] * 5 + [False]
    assert load_embeddings(load_workspace(workspace)).skipped["reason"].tolist() == ["no precomputed embedding"]


def test_clip_retrieval_layout_is_read(tmp_path: Path) -> None:
    from analysis.embedders.precomputed import read_precomputed

    for shard, rows in enumerate((["img/0.png", "img/1.png"], ["img/2.png"])):
        (tmp_path / "img_emb").mkdir(exist_ok=True)
        (tmp_path / "metadata").mkdir(exist_ok=True)
        np.save(tmp_path / "img_emb" / f"img_emb_{shard}.npy", np.ones((len(rows), 4), np.float16))
        pd.DataFrame({"image_path": rows}).to_parquet(tmp_path / "metadata" / f"metadata_{shard}.parquet")
    vectors, ids = read_precomputed(tmp_path)
    assert vectors.shape == (3, 4) and ids["image"].tolist() == ["img/0.png", "img/1.png", "img/2.png"]


def test_shards_of_different_dimensions_are_named(tmp_path: Path) -> None:
    from analysis.embedders.precomputed import read_precomputed

    for shard, dim in enumerate((4, 3)):
        (tmp_path / "img_emb").mkdir(exist_ok=True)
        (tmp_path / "metadata").mkdir(exist_ok=True)
        np.save(tmp_path / "img_emb" / f"img_emb_{shard}.npy", np.ones((2, dim), np.float16))
        pd.DataFrame({"image_path": [f"img/{shard}-{i}.png" for i in range(2)]}).to_parquet(
            tmp_path / "metadata" / f"metadata_{shard}.parquet"
        )
    with pytest.raises(AuditInputError) as info:
        read_precomputed(tmp_path)
    assert "img_emb_1.npy" in str(info.value) and "has dimension 3, other shards have 4" in str(info.value)


@pytest.mark.parametrize(
    "vectors,ids,message",
    [
        (np.array([[1.0, np.nan], [1.0, 0.0]]), ["a", "b"], "row 1 has NaN"),
        (np.ones((3, 2)), ["a", "b"], "3 embedding rows but 2 ids"),
        (np.ones(4), ["a", "b", "c", "d"], "must be 2-D"),
        (np.zeros((2, 3)), ["a", "b"], "all zeros"),
        (np.ones((2, 2), dtype=np.int64), ["a", "b"], "must be floating point"),
    ],
)
def test_bad_precomputed_embeddings_are_named(tmp_path: Path, vectors, ids, message) -> None:
    from analysis.embedders.precomputed import read_precomputed

    with pytest.raises(AuditInputError, match=message):
        read_precomputed(_precomputed(tmp_path, vectors, ids))


def test_pickled_embeddings_are_refused(tmp_path: Path) -> None:
    from analysis.embedders.precomputed import read_precomputed

    directory = tmp_path / "emb"
    directory.mkdir()
    np.save(directory / "embeddings.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    (directory / "ids.txt").write_text("a")
    with pytest.raises(AuditInputError, match="no pickled objects"):
        read_precomputed(directory)


def test_the_file_digest_comes_from_the_same_read_as_the_image(tmp_path: Path) -> None:
    import hashlib

    from PIL import Image

    from analysis.images import load_image

    Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / "red.jpg")
    with_digest = load_image(tmp_path, "red.jpg", digest=True)
    assert with_digest.sha256 == hashlib.sha256((tmp_path / "red.jpg").read_bytes()).hexdigest()
    assert load_image(tmp_path, "red.jpg").sha256 == "" and with_digest.image.size == (40, 30)
