"""img2dataset output as input: Parquet shards as the manifest, images read inside webdataset tar shards in place."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.images import load_image, resolve_image
from analysis.shards import read_img2dataset, shard_reference
from tests.helpers import run_cli, screenshot, serve_dashboard, wait_for_app


def write_img2dataset_folder(folder: Path, shards: int = 3, per_shard: int = 12) -> dict[str, str]:
    """What `img2dataset --output_format webdataset` writes: NNNNN.tar with KEY.jpg, KEY.txt, KEY.json per sample,
    and NNNNN.parquet with key, url, caption, status. Each shard has one failed download (in the Parquet, not the
    tar) and the first shard holds an exact copy of an image of the second. Returns {key: family} of the copies."""
    from data_samples import drawing

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    copies: dict[str, str] = {}
    copied: bytes | None = None
    for shard in range(shards):
        rows = []
        with tarfile.open(folder / f"{shard:05d}.tar", "w") as archive:
            for item in range(per_shard):
                key = f"{shard:05d}{item:04d}"
                buffer = io.BytesIO()
                drawing.scene(rng, 96).save(buffer, format="JPEG", quality=90)
                data = buffer.getvalue()
                if shard == 1 and item == 0:
                    copied = data
                if shard == 2 and item == 0 and copied is not None:
                    data, copies[key] = copied, f"{1:05d}{0:04d}"
                caption = f"a scene number {item} of shard {shard}"
                for name, payload in ((f"{key}.jpg", data), (f"{key}.txt", caption.encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(payload)
                    archive.addfile(info, io.BytesIO(payload))
                rows.append(
                    {"key": key, "url": f"https://example.invalid/{key}.jpg", "caption": caption, "status": "success"}
                )
        rows.append(
            {
                "key": f"{shard:05d}9999",
                "url": "https://example.invalid/gone.jpg",
                "caption": "gone",
                "status": "failed_to_download",
            }
        )
        pd.DataFrame(rows).to_parquet(folder / f"{shard:05d}.parquet")
    return copies


@pytest.fixture()
def laion_download(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "download"
    return folder, write_img2dataset_folder(folder)


def test_the_manifest_is_every_downloaded_row_pointing_into_its_shard(laion_download) -> None:
    folder, _ = laion_download
    frame = read_img2dataset(folder)
    assert len(frame) == 36 and "gone" not in set(frame["caption"])  # failed downloads are not rows
    assert frame["image"].iloc[0] == "00000.tar#000000000"
    assert shard_reference(frame["image"].iloc[0]) == ("00000.tar", "000000000")


def test_an_image_is_read_inside_its_shard_without_extracting_it(laion_download) -> None:
    folder, _ = laion_download
    loaded = load_image(folder, "00001.tar#000010003", digest=True)
    assert loaded.image is not None and loaded.image.size == (96, 96) and loaded.sha256
    assert load_image(folder, "00001.tar#nothere").reason == "not in the shard 00001.tar"
    assert resolve_image(folder, "../00001.tar#000010003") is None  # confined like any path
    assert sorted(p.name for p in folder.iterdir() if p.suffix not in (".tar", ".parquet")) == []


def test_an_img2dataset_folder_is_audited_end_to_end(laion_download, tmp_path: Path) -> None:
    """init with the folder as the manifest, prepare, dedup: the planted copy across shards is found."""
    folder, copies = laion_download
    workspace = tmp_path / "audit"
    completed = run_cli("init", str(workspace), "--original", str(folder))
    assert completed.returncode == 0, completed.stderr
    completed = run_cli("prepare", str(workspace), "--json")
    assert completed.returncode == 0, completed.stderr
    completed = run_cli("dedup", str(workspace), "--json", "--out", str(tmp_path / "keep.parquet"))
    assert completed.returncode == 0, completed.stderr
    payload = json.loads(completed.stdout)
    assert payload["n_images"] == 36 and payload["n_without_embedding"] == 0
    keep = pd.read_parquet(tmp_path / "keep.parquet").set_index("id")
    for copy, original in copies.items():
        assert keep.at[copy, "group_id"] == keep.at[original, "group_id"] is not pd.NA
    assert payload["exact_byte_duplicates"]["n_images"] == 2


def test_the_dashboard_shows_images_from_inside_the_shards(
    laion_download, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    folder, copies = laion_download
    workspace = tmp_path / "audit"
    assert run_cli("init", str(workspace), "--original", str(folder)).returncode == 0
    assert run_cli("prepare", str(workspace)).returncode == 0
    monkeypatch.setenv("PRETRAIN_AUDIT_WORKSPACE", str(workspace))
    app = AppTest.from_string("from dashboard.views import duplicates\nduplicates.render()\n", default_timeout=120)
    app.query_params["section"] = "Groups, largest first"
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    assert len(app.get("imgs")) >= 2 or len(app.get("image")) >= 2


def test_a_sharded_download_prepared_on_a_cluster_is_browsed_in_the_real_browser(
    laion_download, tmp_path: Path, browser
) -> None:
    """The whole path a LAION audit takes: init on the folder, prepare and dedup on a Dask cluster, then the
    Duplicates page in Chromium shows the planted copy's group with both images decoded from inside the tars."""
    folder, copies = laion_download
    workspace = tmp_path / "audit"
    assert run_cli("init", str(workspace), "--original", str(folder)).returncode == 0
    for step in ("prepare", "dedup"):
        completed = run_cli(step, str(workspace), "--scheduler", "local:2")
        assert completed.returncode == 0, completed.stderr
        assert "Dask: local cluster (2 workers)" in completed.stderr
    with serve_dashboard(workspace) as url:
        page = browser.new_context(viewport={"width": 1400, "height": 3600}).new_page()
        page.goto(f"{url}/duplicates?section=Groups%2C+largest+first")
        wait_for_app(page, 120000)
        decoded = page.evaluate(
            "() => Array.from(document.querySelectorAll('[data-testid=\"stImage\"] img'))"
            ".filter(i => i.complete && i.naturalWidth > 0).length"
        )
        screenshot(page, "shards-duplicates")
        page.context.close()
    assert decoded >= 2  # both members of the copy's group, read from their shards
