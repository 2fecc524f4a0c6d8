"""Images in object storage: a manifest whose images are `s3://` URLs (loose files and images inside a webdataset
tar shard) is embedded as the same images on disk are, in one process and on Dask workers that have no shared
filesystem with the images. S3 is a real S3 API on localhost (moto's server), reached through s3fs."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.images import load_image
from tests.helpers import free_port, run_cli

pytestmark = pytest.mark.cluster  # an S3 server on localhost, and a local Dask cluster: not in `make test-fast`

BUCKET = "audit-images"


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture()
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch):
    """An s3fs filesystem on the local S3 with an empty bucket; commands started from the test reach it too."""
    import fsspec
    import s3fs

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "FSSPEC_S3_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3_endpoint})
    s3fs.S3FileSystem.clear_instance_cache()
    filesystem = s3fs.S3FileSystem(endpoint_url=s3_endpoint)
    if not filesystem.exists(BUCKET):
        filesystem.mkdir(BUCKET)
    return filesystem


def _upload_sample_images(sample_dir: Path, s3, count: int) -> pd.DataFrame:
    """The first `count` sample images: half as loose objects, half inside one tar shard; the manifest names them
    by URL."""
    original = pd.read_parquet(sample_dir / "original.parquet").head(count).copy()
    shard = io.BytesIO()
    urls = []
    with tarfile.open(fileobj=shard, mode="w") as archive:
        for number, (identifier, image) in enumerate(zip(original["id"], original["image"])):
            data = (sample_dir / "images" / image).read_bytes()
            suffix = Path(image).suffix
            if number % 2 == 0:
                s3.pipe(f"{BUCKET}/loose/{identifier}{suffix}", data)
                urls.append(f"s3://{BUCKET}/loose/{identifier}{suffix}")
            else:
                member = tarfile.TarInfo(f"{number:09d}{suffix}")
                member.size = len(data)
                archive.addfile(member, io.BytesIO(data))
                urls.append(f"s3://{BUCKET}/shards/00000.tar#{number:09d}")
    s3.pipe(f"{BUCKET}/shards/00000.tar", shard.getvalue())
    original["image"] = urls
    return original


def test_an_image_in_s3_reads_as_the_same_file_on_disk(sample_dir: Path, s3) -> None:
    manifest = _upload_sample_images(sample_dir, s3, 4)
    local = pd.read_parquet(sample_dir / "original.parquet").head(4)
    for url, path in zip(manifest["image"], local["image"]):
        remote, on_disk = load_image(sample_dir, url, digest=True), load_image(sample_dir / "images", path, digest=True)
        assert remote.image is not None, remote.reason
        assert remote.sha256 == on_disk.sha256  # the same bytes, loose or inside the shard
    assert "#" in manifest["image"].iloc[1]  # the comparison covered an image inside a tar shard


def test_missing_objects_are_reasons_not_crashes(s3) -> None:
    s3.pipe(f"{BUCKET}/shards/empty.tar", b"")
    assert load_image(Path("."), f"s3://{BUCKET}/nothing-here.jpg").reason == "file not found"
    assert load_image(Path("."), f"s3://{BUCKET}/shards/00000.tar#999999999").reason in (
        "not in the shard",
        "file not found",
    )
    assert load_image(Path("."), "https://example.invalid/a.jpg").reason == "remote URL (not fetched)"


@pytest.mark.parametrize("scheduler", [None, "local:2"])
def test_prepare_embeds_images_in_s3_like_the_same_images_on_disk(
    sample_dir: Path, tmp_path: Path, s3, scheduler: str | None
) -> None:
    manifest = _upload_sample_images(sample_dir, s3, 24)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    manifest[["id", "caption", "image"]].to_parquet(workspace / "original.parquet", index=False)
    assert run_cli("init", str(workspace), "--original", str(workspace / "original.parquet")).returncode == 0
    extra = ["--scheduler", scheduler] if scheduler else []
    completed = run_cli("prepare", str(workspace), "--no-progress", "--json", *extra)
    assert completed.returncode == 0, completed.stderr
    assert '"n_embedded": 24' in completed.stdout.replace("\n", "").replace("  ", " ")
    if scheduler:
        assert "embedding original (1 chunks of 512): 1/1 tasks done" in completed.stderr  # read by a worker

    from analysis.embedding_store import load_embeddings
    from analysis.workspace import load_workspace

    remote = load_embeddings(load_workspace(workspace), "original")
    reference = load_embeddings(load_workspace(sample_dir), "original")
    assert remote is not None and reference is not None
    expected = np.asarray(reference.vectors[:24], dtype=np.float32)
    assert np.abs(np.asarray(remote.vectors, dtype=np.float32) - expected).max() < 2e-3


def test_a_copy_in_s3_is_verified_on_its_pixels(sample_dir: Path, tmp_path: Path, s3) -> None:
    """Pixel verification (local features) reads objects too: a resized, re-encoded copy of a photo (not
    byte-identical, so only its pixels can verify it) is one group with its original."""
    from PIL import Image
    from skimage import data

    manifest = _upload_sample_images(sample_dir, s3, 12)
    photo = Image.fromarray(data.astronaut())  # a real, textured photograph (scikit-image ships it)
    for key, image, quality in (("photo", photo, 95), ("copy", photo.resize((460, 460)), 80)):
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=quality)
        s3.pipe(f"{BUCKET}/photos/{key}.jpg", encoded.getvalue())
    extra = pd.DataFrame(
        {
            "id": ["photo", "copy-of-photo"],
            "caption": ["an astronaut", "an astronaut, resized and re-encoded"],
            "image": [f"s3://{BUCKET}/photos/photo.jpg", f"s3://{BUCKET}/photos/copy.jpg"],
        }
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    pd.concat([manifest[["id", "caption", "image"]], extra]).to_parquet(workspace / "original.parquet", index=False)
    assert run_cli("init", str(workspace), "--original", str(workspace / "original.parquet")).returncode == 0
    assert run_cli("prepare", str(workspace), "--no-progress").returncode == 0
    completed = run_cli("dedup", str(workspace), "--json", "--out", str(tmp_path / "keep.parquet"))
    assert completed.returncode == 0, completed.stderr
    assert '"method": "local-features"' in completed.stdout
    keep = pd.read_parquet(tmp_path / "keep.parquet").set_index("id")
    assert not pd.isna(keep.at["photo", "group_id"])
    assert keep.at["copy-of-photo", "group_id"] == keep.at["photo", "group_id"]
