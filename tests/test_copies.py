"""Copy detection on pixels: local-feature verification (mirror-aware), the candidate cap, PDQ hashes and
hash-list matching. Photos are the real ones that ship with scikit-image; the CLI runs on the sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageOps
from skimage import data

from analysis.copies import local_features
from analysis.copies.candidates import INLIER_THRESHOLD, cap_per_image
from analysis.copies.feature_chunks import read_store, write_chunk
from analysis.copies.hash_list import read_hash_list
from analysis.copies.local_features import Features, extract, ratio_matches, verify
from analysis.errors import AuditInputError
from analysis.images import load_image
from tests.helpers import run_cli


def photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def test_a_mirrored_crop_verifies_against_its_original_and_says_it_was_mirrored() -> None:
    original = photo("astronaut")
    copy = ImageOps.mirror(original.crop((60, 40, 460, 440)))
    result = verify(extract(copy), extract(original))
    assert result.mirrored
    assert result.inliers >= 5 * INLIER_THRESHOLD


def test_two_different_photos_do_not_verify() -> None:
    assert verify(extract(photo("astronaut")), extract(photo("coffee"))).inliers < INLIER_THRESHOLD
    assert verify(extract(photo("chelsea")), extract(photo("rocket"))).inliers < INLIER_THRESHOLD


def test_inlier_points_are_given_in_the_original_pixels_of_each_image() -> None:
    original = photo("astronaut")  # 512 px: shrunk to MAX_SIDE for verification
    copy = original.resize((256, 256))
    result = verify(extract(copy), extract(original))
    ratio = np.median(result.points_b / np.maximum(result.points_a, 1), axis=0)
    assert np.allclose(ratio, 2.0, atol=0.1)


def test_a_jpeg_decoded_for_features_is_the_grey_picture_of_its_colours(tmp_path: Path) -> None:
    """Local features decode a JPEG's luma alone: whole, and within a grey level of converting its colours (but
    where clipped colours round apart)."""
    photo("astronaut").save(tmp_path / "photo.jpg", quality=92)
    grey = load_image(tmp_path, "photo.jpg", grey=True).image
    colour = load_image(tmp_path, "photo.jpg").image
    assert grey is not None and colour is not None and grey.mode == "L" and grey.size == colour.size
    difference = np.abs(np.asarray(grey, float) - np.asarray(colour.convert("L"), float))
    assert difference.mean() < 0.1 and (difference > 1).mean() < 0.01


def test_the_evidence_drawn_is_the_match_that_was_cached(tmp_path: Path) -> None:
    """Verification and the evidence card extract the same way, so the card shows the judged inliers."""
    from analysis.copies.evidence import pair_evidence
    from analysis.copies.feature_store import ensure_features

    original = photo("astronaut").resize((800, 800))
    original.save(tmp_path / "a.jpg", quality=95)
    original.crop((0, 0, 640, 700)).save(tmp_path / "b.jpg", quality=70)
    a, b = ensure_features(tmp_path, tmp_path / "features", ["a.jpg", "b.jpg"], ["a", "b"], workers=1)
    assert a is not None and b is not None
    judged = verify(a.load(), b.load())
    assert judged.inliers >= INLIER_THRESHOLD
    assert pair_evidence(tmp_path, "a.jpg", "b.jpg").inliers == judged.inliers


def features_of(descriptors: list[dict[int, int]]) -> Features:
    """Keypoints on a diagonal, each with a SIFT descriptor that is zero but in the dimensions given."""
    rows = np.zeros((len(descriptors), 128), np.uint8)
    for row, values in enumerate(descriptors):
        for dimension, value in values.items():
            rows[row, dimension] = value
    points = np.array([[10.0 * i, 10.0 * i] for i in range(len(descriptors))], np.float32)
    return Features(points, rows, 100, 100, 1.0)


def test_a_keypoint_whose_two_nearest_are_about_as_close_is_not_matched() -> None:
    """Lowe's ratio test: a keypoint as near to two of the other image's keypoints is ambiguous, and dropped."""
    a = features_of([{0: 100}, {4: 100}, {8: 50, 9: 50}, {12: 100}])
    b = features_of([{0: 100}, {4: 100}, {8: 60, 9: 40}, {8: 40, 9: 60}])
    (queries, targets), _ = ratio_matches(a, b)
    # a's row 2 lies halfway between b's rows 2 and 3; a's row 3 is as far from all of b
    assert list(zip(queries.tolist(), targets.tolist())) == [(0, 0), (1, 1)]


def test_two_keypoints_matching_one_keep_only_the_closer_in_the_place_of_the_first() -> None:
    """One match per keypoint of b, its closest; listed in the order the keypoints of b were first reached (RANSAC
    samples in this order, so it is part of the answer)."""
    a = features_of([{0: 80, 1: 20}, {4: 100}, {0: 90, 1: 10}, {12: 100}])  # rows 0 and 2 both nearest to b's 1
    b = features_of([{4: 100}, {0: 90, 1: 10}, {8: 100}, {16: 100}])
    (queries, targets), _ = ratio_matches(a, b)
    assert list(zip(queries.tolist(), targets.tolist())) == [(2, 1), (1, 0)]


def test_a_mirrored_keypoint_matches_the_keypoint_it_mirrors() -> None:
    """The mirrored half of the match: a's mirrored descriptor against b's, through the fixed SIFT permutation."""
    a = features_of([{0: 100}, {40: 100}, {77: 100}, {100: 100}])
    b = Features(a.points, a.descriptors[:, local_features.MIRROR_PERMUTATION], 100, 100, 1.0)
    direct, mirrored = ratio_matches(a, b)
    assert mirrored[0].tolist() == mirrored[1].tolist() == [0, 1, 2, 3]
    assert len(direct[0]) < 4


def test_the_mirror_is_matched_only_where_it_could_beat_the_direct_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """A strong direct match skips the mirrored one (a copy is not re-verified as its own mirror); a weak one
    tries it. Both are cost rules: a broken rule shows here as a second RANSAC call, or as a missing one."""
    calls: list[int] = []
    real = local_features._inliers

    def counted(source: np.ndarray, target: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        calls.append(len(source))
        return real(source, target)

    monkeypatch.setattr(local_features, "_inliers", counted)
    original = photo("astronaut")
    half = original.crop((0, 0, 256, 512))
    symmetric = Image.new("RGB", (512, 512))  # its mirror matches about as many keypoints as itself
    symmetric.paste(half, (0, 0))
    symmetric.paste(ImageOps.mirror(half), (256, 0))
    strong = verify(extract(symmetric.resize((384, 384))), extract(symmetric))
    assert strong.inliers >= local_features.STRONG_DIRECT and not strong.mirrored
    assert len(calls) == 1
    calls.clear()
    copy = ImageOps.mirror(original.crop((60, 40, 460, 440)))
    assert verify(extract(copy), extract(original)).mirrored
    assert len(calls) == 2


def test_the_candidate_cap_keeps_each_images_most_similar_partners() -> None:
    # image 0 has five partners; with k=2 only its two most similar survive, unless the partner keeps them
    pairs = np.array([[0, 1], [0, 2], [0, 3], [0, 4], [0, 5], [4, 6]])
    similarities = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.95], dtype=np.float32)
    kept = cap_per_image(pairs, similarities, 2)
    # (0,3) is among 3's top 2 (its only pair), so every pair is someone's top-2: nothing is dropped here
    assert kept.all()
    crowded = np.array([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]])
    kept = cap_per_image(crowded, np.array([0.9, 0.8, 0.7, 0.85, 0.75, 0.6], dtype=np.float32), 1)
    # each image's single best: 0→(0,1), 1→(0,1), 2→(1,2), 3→(1,3)
    assert kept.tolist() == [True, False, False, True, True, False]


def test_dead_links_are_neither_extracted_nor_verified_and_jobs_carry_only_their_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis.copies import feature_store

    root = tmp_path / "images"
    root.mkdir()
    original = photo("astronaut")
    original.save(root / "a.png")
    ImageOps.mirror(original.crop((60, 40, 460, 440))).save(root / "b.png")
    photo("coffee").save(root / "c.png")
    images = ["a.png", "b.png", "gone.jpg", "c.png", "also-gone.jpg"]
    keys = [f"{i:02d}{name}" for i, name in enumerate(images)]
    files = feature_store.ensure_features(root, tmp_path / "features", images, keys, workers=1)
    assert [f is None for f in files] == [False, False, True, False, True]
    assert len(read_store(tmp_path / "features")) == 3  # nothing stored for a dead link
    jobs: list = []

    def serial(function, items, workers, **options):
        jobs.extend(items)
        return [function(item) for item in items]

    monkeypatch.setattr(feature_store, "parallel_map", serial)
    monkeypatch.setattr(feature_store, "CHUNK_PAIRS", 2)
    pairs = np.array([[0, 1], [0, 2], [3, 4], [1, 3], [0, 3]])
    inliers, mirrored, _, _ = feature_store.verify_pairs(files, pairs, workers=1)
    assert inliers[0] >= INLIER_THRESHOLD and mirrored[0]  # the mirrored crop, found through the chunking
    assert inliers[1] == 0 and inliers[2] == 0  # a dead link: no evidence
    assert inliers[3] < INLIER_THRESHOLD and inliers[4] < INLIER_THRESHOLD
    assert sum(len(job[1]) for job in jobs) == 3  # pairs with a dead link were never sent
    assert all(len(job[0]) <= 2 * len(job[1]) for job in jobs)  # each job names only the files of its pairs


def test_a_verification_worker_matches_on_one_blas_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers already fill the cores: with BLAS threads of their own they verified 4× slower."""
    from threadpoolctl import threadpool_info

    from analysis.copies import feature_store

    stored = write_chunk(tmp_path, ["astronaut", "coffee"], [extract(photo(name)) for name in ("astronaut", "coffee")])
    files = [stored["astronaut"], stored["coffee"]]
    threads: list[int] = []

    def observed(a: Features, b: Features) -> local_features.Verification:
        threads.append(max(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"))
        return verify(a, b)

    monkeypatch.setattr(feature_store, "verify", observed)
    feature_store._verify_chunk((files, np.array([[0, 1], [1, 0]])))
    assert threads == [1, 1]


def test_ssim_of_a_mirrored_crop_is_taken_after_undoing_the_mirror_and_the_crop() -> None:
    """A flagged mirrored copy scored 0.03 on whole thumbnails, contradicting its flag (issue 51)."""
    from analysis.copies.aligned_similarity import aligned_ssim

    original = photo("astronaut")
    copy = ImageOps.mirror(original.crop((60, 40, 460, 440)))
    aligned = aligned_ssim(copy, original)
    assert aligned is not None and aligned > 0.9


def test_ssim_of_a_photo_pasted_onto_another_covers_the_pasted_part_only() -> None:
    from analysis.copies.aligned_similarity import aligned_ssim

    original = photo("astronaut")
    composite = photo("coffee").resize((600, 400))
    composite.paste(original.resize((200, 200)), (300, 100))
    aligned = aligned_ssim(composite, original)
    assert aligned is not None and aligned > 0.9


def test_two_different_photos_have_no_aligned_ssim() -> None:
    from analysis.copies.aligned_similarity import aligned_ssim

    assert aligned_ssim(photo("chelsea"), photo("astronaut")) is None


def test_pdq_of_a_reencoded_resize_is_close_and_of_another_photo_far(tmp_path: Path) -> None:
    from analysis.copies.pdq import as_bits, hamming, pdq_of_file

    photo("astronaut").save(tmp_path / "a.png")
    photo("astronaut").resize((200, 200)).save(tmp_path / "b.jpg", quality=40)
    photo("coffee").save(tmp_path / "c.png")
    hashes = [pdq_of_file((str(tmp_path), name))[0] for name in ("a.png", "b.jpg", "c.png")]
    bits = as_bits(hashes)
    assert hamming(bits[[0]], bits[[1]])[0] <= 31
    assert hamming(bits[[0]], bits[[2]])[0] > 80


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("pdq,label\n" + "a" * 64 + ",ok\nnot-a-hash,bad\n", "row 2"),
        ("hash_value\n" + "a" * 64 + "\n", "no pdq column"),
        ("pdq\n", "empty"),
    ],
)
def test_a_malformed_hash_list_is_refused_with_the_row_named(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "list.csv"
    path.write_text(content)
    with pytest.raises(AuditInputError, match=needle):
        read_hash_list(path)


@pytest.mark.slow
def test_a_hash_list_match_is_removed_blurred_and_fails_the_gate(sample_copy: Path, tmp_path: Path) -> None:
    from analysis.copies.pdq import pdq_hashes
    from analysis.filter_spec import HASH_FILTER
    from analysis.removals.compute import removed_page
    from analysis.workspace import load_workspace

    hashes = pdq_hashes(load_workspace(sample_copy))
    target = hashes[hashes["quality"] >= 50].iloc[3]
    listed = tmp_path / "known.csv"
    pd.DataFrame({"pdq": [target["pdq"], "0" * 64], "label": ["known-bad test", "other"]}).to_csv(listed, index=False)
    matched = run_cli("match-hashes", str(sample_copy), "--list", str(listed), "--json")
    assert matched.returncode == 0, matched.stderr
    assert target["id"] in {m["id"] for m in json.loads(matched.stdout)["matches"]}
    workspace = load_workspace(sample_copy)
    assert workspace.removed_by[HASH_FILTER][workspace.original["id"] == target["id"]].all()
    page, _ = removed_page(workspace, filter_name=HASH_FILTER)
    assert target["id"] in set(page["id"])  # in the Removals gallery, which blurs every removed image
    gate = run_cli("check", str(sample_copy), "--max-hash-matches", "0", "--json")
    assert gate.returncode == 1
    assert json.loads(gate.stdout)["gates"][0]["measured"] >= 1


def test_match_hashes_with_a_malformed_list_exits_2_with_one_line(sample_copy: Path, tmp_path: Path) -> None:
    listed = tmp_path / "known.csv"
    listed.write_text("pdq\nzz\n")
    result = run_cli("match-hashes", str(sample_copy), "--list", str(listed))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "row 1" in result.stderr and "known.csv" in result.stderr


def test_a_match_confined_to_a_small_shared_patch_is_not_a_verified_copy() -> None:
    """Two different photos that share only a small region (a sign's lettering, a logo) match on it; the
    inliers' convex hull covers little of either image, so the pair is not a copy."""
    from analysis.copies.candidates import is_verified

    patch = photo("astronaut").crop((180, 60, 300, 180))  # the face, 120 px
    first, second = photo("coffee"), photo("chelsea")
    first.paste(patch, (40, 40))
    second.paste(patch, (250, 150))
    result = verify(extract(first), extract(second))
    assert result.inliers >= INLIER_THRESHOLD  # the patch matches…
    assert not is_verified(np.array([result.inliers]), np.array([result.coverage]), INLIER_THRESHOLD)[0]
    copy = verify(extract(photo("coffee").resize((300, 200))), extract(photo("coffee")))
    assert is_verified(np.array([copy.inliers]), np.array([copy.coverage]), INLIER_THRESHOLD)[0]
