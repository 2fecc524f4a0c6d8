"""What kind of duplicate a verified pair is. Verification says that two images share pixels under one geometric
transform; it does not say whether one is a copy of the other or a second photograph of the same scene (burst
shots, one person in front of one wall): a reviewer needs the difference, dedup should not remove the second
photo of a scene unless asked, and a regurgitation flag should mean a copy.

- `byte-identical`: the same file content (sha256): nothing left to verify;
- `copy`: once the transform is undone, the pixels agree wherever the two images overlap (an edit such as a
  crop, a mirror, a banner or re-encoding leaves them agreeing);
- `same-scene`: they share a region, but the shared scene differs inside the overlap (the subject moved, another
  shot).

Pixel agreement is SSIM under the verified transform (analysis/copies/aligned_similarity.py), taken both ways
(b onto a, a onto b) and the lower kept, so a pair's tier does not depend on its order. The threshold was chosen
on a tuning split of real photos and reported on a disjoint test split (bench/duplicate_tiers.py,
docs/analyses.md "Duplicate tiers").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from analysis.copies.aligned_similarity import Alignments, Target, fitted_model, ssim_with_model, target_pixels
from analysis.copies.local_features import MIN_MATCHES, Features, Verification

if TYPE_CHECKING:
    from analysis.copies.feature_chunks import OpenChunks, StoredFeatures
    from analysis.index import Offload

TIERS = ("byte-identical", "copy", "same-scene")
GROUPED_TIERS = ("byte-identical", "copy")  # what dedup groups and regurgitation flags unless asked otherwise
COPY_AGREEMENT = 0.73  # lower SSIM of the two alignments at which a verified pair is a copy (tuning split)


def pixel_agreement(
    image_a: Image.Image, image_b: Image.Image, check: Verification, targets: tuple[Target, Target] | None = None
) -> float | None:
    """The lower of SSIM(b aligned onto a) and SSIM(a aligned onto b); None where no alignment can be judged.
    `targets`: the two images' `target_pixels`, where the caller keeps them for the images' other pairs."""
    if check.inliers < MIN_MATCHES:
        return None
    models = (
        fitted_model(check.points_a, check.points_b, check.mirrored, image_b.width),
        fitted_model(check.points_b, check.points_a, check.mirrored, image_a.width),
    )
    first, second = targets or (target_pixels(image_a), target_pixels(image_b))
    return agreement_under(first, second, image_a, image_b, models, check.mirrored)


def agreement_under(
    first: Target,
    second: Target,
    image_a: Image.Image,
    image_b: Image.Image,
    models: Sequence[np.ndarray | None],
    mirrored: bool = False,
) -> float | None:
    """`pixel_agreement` under known transforms (b onto a, a onto b; None where none was fitted that way)."""
    both = [
        None if model is None else ssim_with_model(target, moved, model, mirrored)
        for target, moved, model in ((first, image_b, models[0]), (second, image_a, models[1]))
    ]
    known = [value for value in both if value is not None]
    return min(known) if known else None


def tiers_of(agreement: np.ndarray, identical: np.ndarray) -> np.ndarray:
    """The tier of each verified pair from its pixel agreement (NaN: could not be judged, so not called a copy)
    and whether its files are byte-identical."""
    agreement = np.asarray(agreement, dtype=np.float64)
    copy = np.nan_to_num(agreement, nan=-1.0) >= COPY_AGREEMENT
    return np.where(np.asarray(identical, dtype=bool), TIERS[0], np.where(copy, TIERS[1], TIERS[2])).astype(object)


CHUNK_PAIRS = 64  # pairs per job: each job decodes its images once

# A chunk: images root, its image files and stored features, its pairs (positions into those), and per pair the
# two transforms fitted by verification (NaN where it fitted none: the pair is verified again here) and its mirror.
AgreementJob = tuple[str, list[str], list["StoredFeatures"], np.ndarray, np.ndarray, np.ndarray]


def _agreement_chunk(job: AgreementJob) -> np.ndarray:
    """Worker: the pixel agreement of a chunk's pairs. Each image is decoded, turned grey and shrunk as a target
    once per chunk (conversion to grey is per pixel, so it commutes with the mirror and precedes the resize either
    way); a pair is verified again only where verification fitted no transforms for it."""
    from pathlib import Path

    from threadpoolctl import threadpool_limits

    from analysis.copies.local_features import verify
    from analysis.images import load_image

    images_root, images, stored, pairs, models, mirrored = job
    decoded: dict[int, Image.Image | None] = {}
    shrunk: dict[int, Target] = {}
    loaded: dict[int, Features] = {}
    opened: OpenChunks = {}

    def image(position: int) -> Image.Image | None:
        if position not in decoded:
            found = load_image(Path(images_root), images[position]).image
            decoded[position] = None if found is None else found.convert("L")
        return decoded[position]

    def target(position: int) -> Target:
        if position not in shrunk:
            shrunk[position] = target_pixels(decoded[position])  # type: ignore[arg-type]
        return shrunk[position]

    def features(position: int) -> Features:
        if position not in loaded:
            loaded[position] = stored[position].load(opened)
        return loaded[position]

    out = np.full(len(pairs), np.nan)
    with threadpool_limits(limits=1, user_api="blas"):
        for row, (a, b) in enumerate(pairs):
            first, second = image(int(a)), image(int(b))
            if first is None or second is None:
                continue
            targets = target(int(a)), target(int(b))
            if np.isnan(models[row]).any():
                value = pixel_agreement(first, second, verify(features(int(a)), features(int(b))), targets)
            else:
                value = agreement_under(*targets, first, second, models[row], bool(mirrored[row]))
            out[row] = np.nan if value is None else value
    return out


def agreement_of_pairs(
    images_root: str,
    images: list[str],
    features: list[StoredFeatures | None],
    pairs: np.ndarray,
    *,
    workers: int = 2,
    log=None,
    offload: Offload | None = None,
    aligned: Alignments | None = None,
) -> np.ndarray:
    """Pixel agreement of each pair (positions into `images` and their `features`, as verification stored
    them); NaN where an image or its features are missing or no alignment can be judged. Verified pairs only are
    passed here. `aligned`: the transforms verification fitted, by position in `pairs`: those pairs are not
    verified again: the step took half the time on 72,023 real photos (509 s → 244 s; bench/copy_scale.py).
    On a cluster (`offload`) the chunks are its tasks."""
    from analysis.copies.feature_store import pair_chunks, task_size
    from analysis.parallel import parallel_map
    from analysis.progress import progress_bar

    out = np.full(len(pairs), np.nan)
    present = np.array([f is not None for f in features], dtype=bool)
    chunks = pair_chunks(present, pairs, task_size(offload, CHUNK_PAIRS, CHUNK_PAIRS))
    known = aligned or Alignments.none()
    jobs = [
        (images_root, [images[p] for p in needed], [features[p] for p in needed], local, *known.of_rows(chunk))
        for chunk, needed, local in chunks
    ]
    rows = [chunk for chunk, _, _ in chunks]
    if offload is not None:
        done = offload.map(_agreement_chunk, [(job,) for job in jobs], f"pixel agreement of {len(pairs):,} pairs")
        for chunk, result in zip(rows, done):
            out[chunk] = result
        return out
    bar = progress_bar(
        sum(len(r) for r in rows), "pixel agreement of verified pairs", unit="pair", enabled=log is not None
    )
    for chunk, result in zip(rows, parallel_map(_agreement_chunk, jobs, workers, serial_below=2)):
        out[chunk] = result
        bar.update(len(chunk))
    bar.close()
    return out
