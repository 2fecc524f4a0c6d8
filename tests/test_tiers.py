"""What kind of duplicate a verified pair is (analysis/copies/tiers.py), and what dedup and regurgitation do with
each kind: a copy is grouped and flagged, a second photograph of the same scene is shown but neither grouped nor
flagged unless asked for (`--tiers`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps
from skimage import data

from analysis.copies.local_features import extract, verify
from analysis.copies.tiers import COPY_AGREEMENT, pixel_agreement, tiers_of
from tests.helpers import run_cli, write_manifest


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def two_shots() -> tuple[Image.Image, Image.Image]:
    """One scene photographed twice: the camera moved 30 px and the subject in front changed (a person, then a
    cat): the background verifies, the foreground does not agree."""
    scene = photo("coffee")
    first = scene.crop((0, 0, 560, 400))
    first.paste(photo("astronaut").resize((220, 220)), (40, 90))
    second = scene.crop((30, 0, 590, 400))
    second.paste(photo("chelsea").resize((260, 190)), (250, 150))
    return first, second


def agreement_of(a: Image.Image, b: Image.Image) -> float | None:
    return pixel_agreement(a, b, verify(extract(a), extract(b)))


def test_a_crop_of_a_photo_agrees_with_it_and_is_a_copy() -> None:
    first, _ = two_shots()
    copy = first.crop((30, 20, 530, 380)).resize((400, 288))
    agreement = agreement_of(first, copy)
    assert agreement is not None and agreement > 0.9
    assert tiers_of(np.array([agreement]), np.array([False]))[0] == "copy"


def test_a_second_shot_of_a_scene_verifies_but_is_same_scene() -> None:
    first, second = two_shots()
    check = verify(extract(first), extract(second))
    assert check.inliers >= 10 and check.coverage > 0.3  # verification alone would call it a duplicate
    agreement = pixel_agreement(first, second, check)
    assert agreement is not None and agreement < COPY_AGREEMENT
    assert tiers_of(np.array([agreement]), np.array([False]))[0] == "same-scene"


def test_agreement_does_not_depend_on_the_order_of_the_pair() -> None:
    first, second = two_shots()
    assert agreement_of(first, second) == pytest.approx(agreement_of(second, first), abs=0.02)


def test_local_ssim_is_skimages_ssim_window_by_window() -> None:
    """The threshold was calibrated with skimage's SSIM; the box-filter version must give the same map (to
    rounding) wherever a window lies inside the image, on a photo against an edited copy of itself."""
    from skimage.metrics import structural_similarity

    from analysis.copies.aligned_similarity import SSIM_WINDOW, local_ssim

    first, second = (np.asarray(shot.convert("L").resize((128, 91)), np.float64) / 255 for shot in two_shots())
    _, expected = structural_similarity(first, second, data_range=1.0, win_size=SSIM_WINDOW, full=True)
    inner = (slice(SSIM_WINDOW // 2, -(SSIM_WINDOW // 2)),) * 2
    assert np.abs(local_ssim(first, second)[inner] - expected[inner]).max() < 1e-9
    assert 0.05 < float(expected[inner].mean()) < 0.95  # a pair whose SSIM map is neither flat nor trivial


def test_the_copy_threshold_is_inclusive_and_an_unjudged_pair_is_not_a_copy() -> None:
    agreement = np.array([COPY_AGREEMENT, np.nextafter(COPY_AGREEMENT, 0), np.nan, 0.1])
    assert tiers_of(agreement, np.zeros(4, bool)).tolist() == ["copy", "same-scene", "same-scene", "same-scene"]


def test_byte_identical_files_are_their_own_tier_whatever_their_pixels_say() -> None:
    assert tiers_of(np.array([np.nan, 0.1]), np.array([True, True])).tolist() == ["byte-identical"] * 2


@pytest.fixture(scope="module")
def scene_audit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Training: a photo, a crop of it, a second shot of its scene and four unrelated photos; generated: another
    shot of the scene, and a mirrored copy of an unrelated training photo."""
    root = tmp_path_factory.mktemp("tiers")
    (root / "img").mkdir()
    first, second = two_shots()
    images = {
        "first": first,
        "crop": first.crop((30, 20, 530, 380)).resize((400, 288)),
        "second": second,
        **{name: photo(name) for name in ("astronaut", "camera", "rocket", "chelsea")},
    }
    for name, image in images.items():
        image.save(root / "img" / f"{name}.jpg", quality=92)
    third = photo("coffee").crop((15, 10, 575, 400))
    third.paste(photo("rocket").resize((200, 260)), (300, 60))
    third.save(root / "img" / "g-third-shot.jpg", quality=92)
    photo("astronaut").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(root / "img" / "g-copy.jpg", quality=92)
    write_manifest(
        root / "original.csv",
        [{"id": name, "image": f"img/{name}.jpg", "caption": "a photo", "keep": True} for name in images],
    )
    write_manifest(
        root / "generated.csv",
        [
            {"id": "g-third-shot", "image": "img/g-third-shot.jpg", "prompt": "a cup"},
            {"id": "g-copy", "image": "img/g-copy.jpg", "prompt": "an astronaut"},
        ],
    )
    initialised = run_cli("init", str(root), "--original", "original.csv", "--generated", "generated.csv", cwd=root)
    assert initialised.returncode == 0, initialised.stderr
    prepared = run_cli("prepare", str(root))
    assert prepared.returncode == 0, prepared.stderr
    return root


def groups_of(root: Path, *extra: str) -> dict[str, list[str]]:
    keep_list = root / "keep.parquet"
    result = run_cli("dedup", str(root), "--json", "--out", str(keep_list), *extra)
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(keep_list).dropna(subset=["group_id"])
    return {str(g): sorted(members["id"]) for g, members in frame.groupby("group_id")}


def test_dedup_groups_a_copy_but_not_a_second_shot_of_its_scene(scene_audit: Path) -> None:
    assert list(groups_of(scene_audit).values()) == [["crop", "first"]]


def test_dedup_chains_through_same_scene_pairs_when_asked(scene_audit: Path) -> None:
    assert list(groups_of(scene_audit, "--tiers", "copy,same-scene").values()) == [["crop", "first", "second"]]


def test_pairs_out_lists_every_candidate_with_its_evidence_and_tier(scene_audit: Path) -> None:
    out = scene_audit / "pairs.parquet"
    assert run_cli("dedup", str(scene_audit), "--pairs-out", str(out)).returncode == 0
    pairs = pd.read_parquet(out)
    assert list(pairs.columns) == ["id_a", "id_b", "cosine", "inliers", "coverage", "mirrored", "verified", "tier"]
    tier = {frozenset((a, b)): t for a, b, t in zip(pairs["id_a"], pairs["id_b"], pairs["tier"])}
    assert tier[frozenset(("first", "crop"))] == "copy"
    assert tier[frozenset(("first", "second"))] == "same-scene"
    assert pairs.loc[~pairs["verified"], "tier"].isna().all()
    assert pairs["cosine"].is_monotonic_decreasing


def test_a_dedup_check_cached_before_transforms_were_kept_still_gives_every_tier(
    scene_audit: Path, tmp_path: Path
) -> None:
    """A check cached by an earlier version has no transforms: it is used as it is (not an error, not a second
    verification of every candidate), and the tier step verifies its verified pairs again, with the same tiers."""
    import shutil

    root = tmp_path / "audit"
    shutil.copytree(scene_audit, root)
    out = root / "pairs.parquet"
    assert run_cli("dedup", str(root), "--pairs-out", str(out)).returncode == 0
    fresh = pd.read_parquet(out)
    checks = list((root / ".audit-cache" / "dedup").glob("verified-*.npz"))
    assert checks
    for check in checks:
        with np.load(check) as arrays:
            assert "aligned_rows" in arrays.files
            older = {name: arrays[name] for name in arrays.files if not name.startswith("aligned_")}
        np.savez(check, **older)
    for agreement in (root / ".audit-cache" / "dedup").glob("agreement-*.npy"):
        agreement.unlink()
    again = run_cli("dedup", str(root), "--pairs-out", str(out))
    assert again.returncode == 0, again.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(out), fresh)


def test_an_unknown_tier_is_one_clear_error(scene_audit: Path) -> None:
    result = run_cli("dedup", str(scene_audit), "--tiers", "copy,scene")
    assert result.returncode == 2
    assert "--tiers" in result.stderr and "'scene'" in result.stderr and "Traceback" not in result.stderr


def flagged(root: Path, *extra: str) -> dict[str, tuple[bool, str | None]]:
    result = run_cli("regurgitation", str(root), "--json", *extra)
    assert result.returncode == 0, result.stderr
    return {s["id"]: (s["flagged"], s["tier"]) for s in json.loads(result.stdout)["samples"]}


def test_regurgitation_flags_a_copy_and_not_another_shot_of_a_training_scene(scene_audit: Path) -> None:
    assert flagged(scene_audit) == {"g-copy": (True, "copy"), "g-third-shot": (False, "same-scene")}


def test_regurgitation_flags_same_scene_matches_when_asked(scene_audit: Path) -> None:
    assert flagged(scene_audit, "--tiers", "copy,same-scene")["g-third-shot"] == (True, "same-scene")


def test_the_duplicates_page_groups_a_second_shot_only_when_asked(
    scene_audit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_dashboard_pages import open_page

    app = open_page("duplicates", scene_audit, monkeypatch)
    assert {m.label: m.value for m in app.metric}["Images in groups"] == "2"
    assert any("1 copy, 2 same scene" in c.value for c in app.caption)
    app.toggle(key="d-same-scene").set_value(True).run()
    assert {m.label: m.value for m in app.metric}["Images in groups"] == "3"


def test_the_regurgitation_page_flags_a_second_shot_only_when_asked(
    scene_audit: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_dashboard_pages import open_page

    app = open_page("regurgitation", scene_audit, monkeypatch)
    assert {m.label: m.value for m in app.metric}["Flagged as likely copies"] == "1"
    app.toggle(key="r-same-scene").set_value(True).run()
    assert {m.label: m.value for m in app.metric}["Flagged as likely copies"] == "2"


def tier_photos(root: Path) -> list[str]:
    """Real photos on disk as dedup reads them: a photo, a mirrored crop of it, a rescaled copy, a second shot of a
    scene (portrait-shaped, so the mirror's width is not the long side) and a distinct photo."""
    first, second = two_shots()
    shots = {
        "first.jpg": first,
        "mirrored.jpg": ImageOps.mirror(first.crop((20, 10, 520, 390))),
        "smaller.jpg": first.resize((300, 214)),
        "second.jpg": second,
        "portrait.jpg": first.crop((100, 0, 380, 400)),
        "portrait-mirrored.jpg": ImageOps.mirror(first.crop((110, 5, 370, 395))),
        "other.jpg": photo("rocket"),
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, image in shots.items():
        image.save(root / name, quality=90)
    return list(shots)


def test_tiers_from_the_transforms_verification_fitted_equal_those_verified_again(tmp_path: Path) -> None:
    """Verification fits each verified pair's transforms where it has the inliers, so the tier step skips a second
    verification; the agreement must be the same to the last bit, mirrored pairs included."""
    from analysis.copies.feature_store import _extract_chunk, verify_pairs
    from analysis.copies.tiers import agreement_of_pairs

    images = tier_photos(tmp_path / "images")
    written = _extract_chunk((str(tmp_path / "images"), str(tmp_path / "features"), [(i, i) for i in images]))
    files = [written[name] for name in images]
    pairs = np.array([[a, b] for a in range(len(images)) for b in range(a + 1, len(images))])
    checked = verify_pairs(files, pairs, workers=1, align_from=10)
    verified = np.flatnonzero((checked.inliers >= 10) & (checked.coverage >= 0.05))
    assert checked.aligned.rows.tolist() == verified.tolist()  # every verified pair has its transforms
    assert checked.aligned.mirrored.sum() >= 2 and checked.mirrored[verified].sum() == checked.aligned.mirrored.sum()
    root, names = str(tmp_path / "images"), images
    again = agreement_of_pairs(root, names, files, pairs[verified], workers=1)
    reused = agreement_of_pairs(root, names, files, pairs[verified], workers=1, aligned=checked.aligned.at(verified))
    assert np.array_equal(again, reused, equal_nan=True)
    assert (tiers_of(reused, np.zeros(len(reused), bool)) == "copy").sum() >= 4


def test_features_stored_without_the_image_width_still_give_every_tier(tmp_path: Path) -> None:
    """A feature store written before the original width was kept: a mirrored pair cannot be fitted in
    verification, so the tier step verifies it again, with the same answer."""
    from analysis.copies.feature_chunks import read_store
    from analysis.copies.feature_store import _extract_chunk, verify_pairs
    from analysis.copies.tiers import agreement_of_pairs

    images = tier_photos(tmp_path / "images")
    _extract_chunk((str(tmp_path / "images"), str(tmp_path / "features"), [(i, i) for i in images]))
    for index in (tmp_path / "features").glob("*.index.npz"):
        with np.load(index) as arrays:
            kept = {name: arrays[name] for name in arrays.files if name != "original_width"}
        np.savez(index, **kept)
    files = [read_store(tmp_path / "features")[name] for name in images]
    assert {f.original_width for f in files} == {0}
    pairs = np.array([[0, 1], [0, 2], [4, 5]])
    checked = verify_pairs(files, pairs, workers=1, align_from=10)
    assert checked.mirrored[[0, 2]].all() and checked.aligned.rows.tolist() == [1]  # the unmirrored pair only
    root = str(tmp_path / "images")
    reused = agreement_of_pairs(root, images, files, pairs, workers=1, aligned=checked.aligned)
    assert np.array_equal(reused, agreement_of_pairs(root, images, files, pairs, workers=1), equal_nan=True)
    assert (reused > COPY_AGREEMENT).all()
