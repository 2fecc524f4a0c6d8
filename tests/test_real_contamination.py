"""Evaluation-set contamination on real photos and captions, through the CLI at the shipped defaults.

The evaluation set: 24 COCO val2017 photos (coco-mini, from bench.copy_detection's *test* split: originals o080 on)
with their first COCO caption where COCO-mini has one. The training set: 120 distinct COCO train2014 photos (the test
half of the distractors) with LAION captions (the caption threshold's *test* set), and planted inside it 8 of the
evaluation photos as web copies carry them (a 70% crop, JPEG at quality 20, a text banner, a mirrored 90% crop) and
4 of the evaluation captions copied (2 with case and punctuation changed, 2 with a word misspelt). Skipped when
../shared/real is absent."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from bench.contamination_real import coco_first_captions, misspelt
from bench.copy_edits import FAMILIES
from bench.duplicate_tiers import TUNING_ORIGINALS
from tests.helpers import REAL_DATA, run_cli

pytestmark = [
    pytest.mark.real_data,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (REAL_DATA / "coco-mini").exists() or not (REAL_DATA / "captions").exists(),
        reason="../shared/real (COCO-mini photos, COCO train2014 photos, LAION captions) is not present here",
    ),
]
EDITS = ("crop 70%", "JPEG 20", "text banner", "crop 90% + mirror")
N_EVAL, N_PLANTED, N_TRAINING = 24, 8, 120


@pytest.fixture(scope="module")
def contaminated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("real-contamination")
    (root / "img").mkdir()
    (root / "coco-val" / "images").mkdir(parents=True)
    captions_of = coco_first_captions()
    with_caption = [p for p in sorted((REAL_DATA / "coco-mini" / "images").glob("*.jpg")) if p.name in captions_of]
    without = [p for p in sorted((REAL_DATA / "coco-mini" / "images").glob("*.jpg")) if p.name not in captions_of]
    # the test split (o080 on, in file order), captioned photos first so that captions can be planted
    test_split = sorted((REAL_DATA / "coco-mini" / "images").glob("*.jpg"))[TUNING_ORIGINALS:]
    photos = [p for p in with_caption if p in test_split] + [p for p in without if p in test_split]
    laion = pd.read_parquet(REAL_DATA / "captions" / "laion400m_sample_10000.parquet")["TEXT"].dropna()
    laion = [t for t in laion.astype(str) if t.strip()][: N_TRAINING + 40]
    distinct = sorted((REAL_DATA / "photos-coco2014").glob("*.jpg"))[1::2][:N_TRAINING]
    rng = random.Random(7)
    evaluation, training, planted = [], [], {"images": {}, "captions": {}}
    for number, path in enumerate(photos[:N_EVAL]):
        eval_id = f"e{number:02d}"
        shutil.copy(path, root / "coco-val" / "images" / f"{eval_id}.jpg")
        evaluation.append({"id": eval_id, "image": f"images/{eval_id}.jpg", "caption": captions_of.get(path.name, "")})
        if number < N_PLANTED:
            edit = EDITS[number % len(EDITS)]
            image = Image.open(path).convert("RGB")
            FAMILIES[edit](image, rng, image).save(root / "img" / f"copy-{eval_id}.jpg")
            training.append({"id": f"copy-{eval_id}", "image": f"img/copy-{eval_id}.jpg", "caption": laion.pop()})
            planted["images"][eval_id] = f"copy-{eval_id}"
    for number, path in enumerate(distinct):
        shutil.copy(path, root / "img" / f"d{number}.jpg")
        training.append({"id": f"d{number}", "image": f"img/d{number}.jpg", "caption": laion.pop()})
    captioned = [row for row in evaluation if row["caption"]]
    assert len(captioned) >= 12, "COCO-mini's captions cover too few test-split photos"
    for number, row in enumerate(captioned[N_PLANTED : N_PLANTED + 4]):  # photos without a planted image copy
        text = row["caption"]
        copy = text.upper().rstrip(".") + " !!" if number < 2 else misspelt(text)
        training[N_PLANTED + 10 * number]["caption"] = copy
        planted["captions"][row["id"]] = training[N_PLANTED + 10 * number]["id"]
    pd.DataFrame(evaluation).to_parquet(root / "coco-val" / "eval.parquet", index=False)
    pd.DataFrame(training).assign(keep=True).to_parquet(root / "train.parquet", index=False)
    assert run_cli("init", str(root), "--original", "train.parquet", "--kept-column", "keep", cwd=root).returncode == 0
    config = root / "audit.toml"
    config.write_text(config.read_text() + '\n[[eval]]\nname = "coco"\nmanifest = "coco-val/eval.parquet"\n')
    prepared = run_cli("prepare", str(root), "--no-progress")
    assert prepared.returncode == 0, prepared.stderr
    planted["n_captioned"] = len(captioned)
    return root, planted


def test_planted_copies_of_real_evaluation_photos_are_found_with_evidence_and_distinct_ones_are_not(
    contaminated: tuple[Path, dict],
) -> None:
    root, planted = contaminated
    result = run_cli("contamination", str(root), "--json")
    assert result.returncode == 0, result.stderr
    images = json.loads(result.stdout)["sets"][0]["images"]
    found = {(m["eval_id"], m["train_id"]) for m in images["matches"]}
    assert found == set(planted["images"].items()), found
    assert images["n_measured"] == N_EVAL and images["n_matched"] == N_PLANTED
    assert all(m["inliers"] >= 10 and m["tier"] == "copy" for m in images["matches"])


def test_planted_copies_of_real_evaluation_captions_are_found_and_no_distinct_caption_is(
    contaminated: tuple[Path, dict],
) -> None:
    """24 COCO captions against 120 LAION captions (2,880 pairs compared): none matches but the planted ones."""
    root, planted = contaminated
    captions = json.loads(run_cli("contamination", str(root), "--json").stdout)["sets"][0]["captions"]
    found = {(m["eval_id"], m["train_id"]): m["kind"] for m in captions["matches"]}
    assert set(found) == set(planted["captions"].items()), found
    assert sorted(found.values()) == ["exact", "exact", "near", "near"]
    assert captions["n_with_caption"] == planted["n_captioned"]


def test_the_report_shows_the_evidence_and_the_gate_fails_on_the_planted_copies(
    contaminated: tuple[Path, dict], tmp_path: Path
) -> None:
    root, _ = contaminated
    gate = run_cli("check", str(root), "--max-contamination", "coco=0")
    assert gate.returncode == 1 and f"measured {N_PLANTED + 4}.0000" in gate.stdout, gate.stdout + gate.stderr
    out = tmp_path / "report.html"
    assert run_cli("report", str(root), "--out", str(out)).returncode == 0
    html = out.read_text()
    assert "Evaluation-set contamination" in html and "matched keypoints" in html
