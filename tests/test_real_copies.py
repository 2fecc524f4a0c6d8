"""Copies of real photos, the edits copies carry on the web, found by the shipped defaults through the CLI:
`dedup` joins each to its original and `regurgitation` flags it (verified on pixels); distinct photos stay
apart. Skipped when ../shared/real is absent."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from bench.copy_edits import FAMILIES
from bench.duplicate_tiers import TUNING_ORIGINALS
from tests.helpers import REAL_DATA, run_cli

pytestmark = [
    pytest.mark.real_data,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (REAL_DATA / "coco-mini").exists(),
        reason="../shared/real (COCO-mini photos) is not present on this machine",
    ),
]
EDITS = ("mirror", "crop 70%", "greyscale", "text banner")


@pytest.fixture(scope="module")
def copies_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 COCO originals with the four edits each, 60 distinct COCO photos; generated: one edit of each kind
    (of four other originals) and four distinct photos. All from bench.copy_detection's *test* split (originals
    from o080 on, every other distractor from the second), never from the photos its defaults were chosen on."""
    root = tmp_path_factory.mktemp("real-copies")
    (root / "img").mkdir()
    photos = sorted((REAL_DATA / "coco-mini" / "images").glob("*.jpg"))[TUNING_ORIGINALS:]
    distinct = sorted((REAL_DATA / "photos-coco2014").glob("*.jpg"))[1::2]
    rng = random.Random(1)
    rows, generated = [], []
    for number, path in enumerate(photos[:16]):
        image = Image.open(path).convert("RGB")
        original = f"o{number}"
        image.save(root / "img" / f"{original}.jpg")
        rows.append({"id": original, "image": f"img/{original}.jpg"})
        if number < 12:
            for edit in EDITS:
                name = f"{original}-{edit.split()[0]}"
                FAMILIES[edit](image, rng, image).save(root / "img" / f"{name}.jpg")
                rows.append({"id": name, "image": f"img/{name}.jpg"})
        else:
            name = f"g-{EDITS[number - 12].split()[0]}"
            FAMILIES[EDITS[number - 12]](image, rng, image).save(root / "img" / f"{name}.jpg")
            generated.append({"id": name, "image": f"img/{name}.jpg", "prompt": "p", "source_id": original})
    for number, path in enumerate(distinct[:64]):
        shutil.copy(path, root / "img" / f"d{number}.jpg")
        if number < 60:
            rows.append({"id": f"d{number}", "image": f"img/d{number}.jpg"})
        else:
            generated.append(
                {"id": f"g-distinct{number}", "image": f"img/d{number}.jpg", "prompt": "p", "source_id": None}
            )
    pd.DataFrame(rows).assign(caption="a photo", keep=True).to_parquet(root / "o.parquet", index=False)
    pd.DataFrame(generated).to_parquet(root / "g.parquet", index=False)
    assert (
        run_cli(
            "init", str(root), "--original", "o.parquet", "--kept-column", "keep", "--generated", "g.parquet", cwd=root
        ).returncode
        == 0
    )
    prepared = run_cli("prepare", str(root), "--no-progress")
    assert prepared.returncode == 0, prepared.stderr
    return root


@pytest.mark.parametrize("edit", [e.split()[0] for e in EDITS])
def test_dedup_joins_each_edited_copy_to_its_original(copies_workspace: Path, tmp_path: Path, edit: str) -> None:
    out = tmp_path / "keep.parquet"
    result = run_cli("dedup", str(copies_workspace), "--json", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verification"]["method"] == "local-features"
    groups = pd.read_parquet(out).set_index("id")["group_id"]
    for number in range(12):
        assert pd.notna(groups[f"o{number}"]) and groups[f"o{number}-{edit}"] == groups[f"o{number}"], number


def test_dedup_keeps_distinct_photos_apart(copies_workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "keep.parquet"
    assert run_cli("dedup", str(copies_workspace), "--out", str(out)).returncode == 0
    groups = pd.read_parquet(out).set_index("id")["group_id"]
    family_groups = {groups[f"o{n}"] for n in range(12)}
    assert len(family_groups) == 12  # one group per original, none merged
    assert groups[[f"d{n}" for n in range(60)]].isna().all()


def test_regurgitation_flags_each_edited_copy_with_its_original_and_no_distinct_photo(copies_workspace: Path) -> None:
    result = run_cli("regurgitation", str(copies_workspace), "--json")
    assert result.returncode == 0, result.stderr
    samples = {s["id"]: s for s in json.loads(result.stdout)["samples"]}
    for number, edit in enumerate(EDITS):
        sample = samples[f"g-{edit.split()[0]}"]
        assert sample["flagged"] and sample["best_match"] == f"o{12 + number}", sample
        assert sample["inliers"] >= 10
    assert not any(s["flagged"] for i, s in samples.items() if i.startswith("g-distinct"))


def test_four_chance_inliers_between_two_distinct_real_photos_do_not_verify() -> None:
    """Among all 33,670 pairs of the first 260 distinct COCO photos, two find a transform of 4 inliers spread over
    more than 5% of the images; nothing with fewer than INLIER_THRESHOLD (10) verifies, and a threshold of 4 had
    passed every other test."""
    from analysis.copies.candidates import INLIER_THRESHOLD, MIN_COVERAGE, is_verified
    from analysis.copies.local_features import extract, verify
    from analysis.images import load_image

    root = REAL_DATA / "photos-coco2014"
    a, b = (extract(load_image(root, f"COCO_train2014_{number:012d}.jpg").image) for number in (250, 670))
    result = verify(a, b)
    assert result.inliers >= 4 and result.coverage >= MIN_COVERAGE  # a chance transform the threshold must refuse
    assert not is_verified([result.inliers], [result.coverage], INLIER_THRESHOLD)[0]


def test_a_real_second_shot_is_same_scene_and_a_real_meme_copy_is_a_copy() -> None:
    """The tier threshold's band on real photos (bench/duplicate_tiers.py chose 0.73): two shots of one tennis
    rally, seconds apart, verify (94 inliers) but agree at about 0.67 once aligned; a COCO photo with a meme's
    text banner agrees at about 0.78 (its banner hides a fifth of the photo)."""
    from analysis.copies.local_features import extract, verify
    from analysis.copies.tiers import pixel_agreement, tiers_of
    from analysis.images import load_image
    from bench.copy_edits import banner, jpeg

    root = REAL_DATA / "photos-coco2014"
    first, second = (load_image(root, f"COCO_train2014_{number:012d}.jpg").image for number in (419, 15658))
    photo = Image.open(REAL_DATA / "coco-mini" / "images" / "000000022892.jpg").convert("RGB")
    meme = jpeg(banner(photo, random.Random(0)), 92)
    tiers = []
    for a, b in ((first, second), (photo, meme)):
        assert a is not None and b is not None
        check = verify(extract(a), extract(b))
        assert check.inliers >= 10
        tiers.append(tiers_of([pixel_agreement(a, b, check)], [False])[0])
    assert tiers == ["same-scene", "copy"]
