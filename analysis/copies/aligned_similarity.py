"""SSIM of a copy after undoing the edit that verification found: the training image is mirrored where the match
was mirrored, then moved onto the sample by the similarity transform of the inlier keypoints, and SSIM is taken
over the part of the sample it covers. SSIM of the two whole images as thumbnails contradicted correct flags:
0.27 and 0.03 for mirrored copies (issue 51), since a mirror, a crop or a pasted copy moves every pixel.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps

from analysis.copies.local_features import MIN_MATCHES, Features, Verification, extract, verify

ALIGNED_SIDE = 128  # the sample's long side when compared: detail beyond it is JPEG noise, not evidence
MIN_OVERLAP = 0.05  # share of the sample the aligned training image must cover (as the coverage rule of a copy)
SSIM_WINDOW = 7  # skimage's default window; the overlap is eroded by half of it so no window reads the border


def aligned_ssim(
    sample: Image.Image, training: Image.Image, features: tuple[Features, Features] | None = None
) -> float | None:
    """SSIM of the sample and the training image aligned onto it, over their overlap; None where local features
    find no transform (too few inliers) or the overlap is too small to judge. `features`: the two images' local
    features where verification already extracted them (the feature cache), else they are extracted here."""
    check = verify(*(features or (extract(sample), extract(training))))
    return ssim_under(check, sample, training)


def ssim_under(check: Verification, a: Image.Image, b: Image.Image, onto: str = "a") -> float | None:
    """SSIM under the transform of a verification of (a, b): b moved onto a (`onto="a"`), or a onto b."""
    if check.inliers < MIN_MATCHES:
        return None
    if onto == "a":
        target, moved, target_points, moved_points = a, b, check.points_a, check.points_b
    else:
        target, moved, target_points, moved_points = b, a, check.points_b, check.points_a
    model = fitted_model(target_points, moved_points, check.mirrored, moved.width)
    return None if model is None else ssim_with_model(target_pixels(target), moved, model, check.mirrored)


def fitted_model(
    target_points: np.ndarray, moved_points: np.ndarray, mirrored: bool, moved_width: int
) -> np.ndarray | None:
    """The similarity transform (2×3) that moves an image's inlier points, mirrored where the match was (about its
    width in original pixels), onto the other image's; None where the fit fails."""
    import cv2

    source = moved_points.astype(np.float32)
    if mirrored:
        source = source.copy()
        source[:, 0] = moved_width - 1 - source[:, 0]
    model, _ = cv2.estimateAffinePartial2D(source, target_points.astype(np.float32), method=cv2.LMEDS)
    return model


def pair_models(check: Verification) -> np.ndarray | None:
    """Both transforms of a verified pair, b onto a then a onto b ((2, 2, 3)), as `ssim_under` fits them; None
    where there is none to fit, or where the pair is mirrored and the features do not know the images' widths (a
    mirror is undone about the moved image's width in original pixels). Fitted in the verification task, which
    already has the inliers, so the tier step does not verify the pair again (analysis/copies/tiers.py)."""
    width_a, width_b = check.widths
    if check.inliers < MIN_MATCHES or (check.mirrored and not (width_a and width_b)):
        return None
    onto_a = fitted_model(check.points_a, check.points_b, check.mirrored, width_b)
    onto_b = fitted_model(check.points_b, check.points_a, check.mirrored, width_a)
    return None if onto_a is None or onto_b is None else np.stack([onto_a, onto_b])


class Alignments(NamedTuple):
    """The transforms verification fitted for the pixel agreement of the pairs that verified (`pair_models`), kept
    for those rows only: dense, they would cost 96 bytes for every candidate (1.3 GB at 13M candidates)."""

    rows: np.ndarray  # (k,) int64: rows of the checked pairs, ascending
    models: np.ndarray  # (k, 2, 2, 3) float64
    mirrored: np.ndarray  # (k,) bool: the match was mirrored (the moved image is mirrored before its transform)

    @staticmethod
    def none() -> Alignments:
        return Alignments(np.zeros(0, np.int64), np.zeros((0, 2, 2, 3)), np.zeros(0, bool))

    def of_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The models and mirror flags of these rows ((len(rows), 2, 2, 3), (len(rows),)); NaN models where
        verification fitted none."""
        models, mirrored = np.full((len(rows), 2, 2, 3), np.nan), np.zeros(len(rows), bool)
        slot, found = _find_sorted(self.rows, rows)
        models[found], mirrored[found] = self.models[slot[found]], self.mirrored[slot[found]]
        return models, mirrored

    def at(self, rows: np.ndarray) -> Alignments:
        """The alignments of a subset of the pairs (`rows`, ascending), numbered by position in that subset."""
        position, kept = _find_sorted(np.asarray(rows, dtype=np.int64), self.rows)
        return Alignments(position[kept], self.models[kept], self.mirrored[kept])


def _find_sorted(ascending: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each value sits in an ascending array, and whether it is there at all."""
    values = np.asarray(values, dtype=np.int64)
    slot = np.searchsorted(ascending, values).astype(np.int64)
    found = slot < len(ascending)
    found[found] = ascending[slot[found]] == values[found]
    return slot, found


class Target(NamedTuple):
    """An image as the target of an alignment: its grey levels (0–1) at a long side of ALIGNED_SIDE at most, and
    that size over its original size."""

    pixels: np.ndarray
    shrink: float


def target_pixels(image: Image.Image) -> Target:
    """Depends on the image alone, so a worker judging many pairs of one image computes it once."""
    shrink = min(1.0, ALIGNED_SIDE / max(image.size))
    width, height = max(1, round(image.width * shrink)), max(1, round(image.height * shrink))
    return Target(np.asarray(_grey(image).resize((width, height), Image.Resampling.BILINEAR), np.float64) / 255, shrink)


def ssim_with_model(target: Target, moved_image: Image.Image, model: np.ndarray, mirrored: bool) -> float | None:
    """`moved_image` mirrored where the match was, moved onto the target (its `target_pixels`) by `model` (in
    original pixels, the mirror undone), SSIM over the part of the target it covers."""
    import cv2

    if mirrored:
        moved_image = ImageOps.mirror(moved_image)
    height, width = target.pixels.shape
    shrink = target.shrink
    # shrink the moved image to about the scale it lands at, so the warp does not alias
    lands_at = shrink * float(np.hypot(model[0, 0], model[1, 0]))
    pre = min(1.0, lands_at)
    small = _grey(moved_image).resize(
        (max(1, round(moved_image.width * pre)), max(1, round(moved_image.height * pre))), Image.Resampling.BILINEAR
    )
    warp = model.astype(np.float64)
    warp[:, :2] *= shrink / pre
    warp[:, 2] *= shrink
    moved = cv2.warpAffine(np.asarray(small, np.float64) / 255, warp, (width, height), flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.ones(small.size[::-1], np.uint8), warp, (width, height), flags=cv2.INTER_NEAREST)
    inside = cv2.erode(inside, np.ones((SSIM_WINDOW, SSIM_WINDOW), np.uint8)).astype(bool)
    if inside.mean() < MIN_OVERLAP or min(width, height) < SSIM_WINDOW:
        return None
    return float(local_ssim(target.pixels, moved)[inside].mean())


def _grey(image: Image.Image) -> Image.Image:
    """The image in grey levels; one already grey is used as it is (the tiers' workers convert each image once, and
    `convert` would copy it again per pair and direction)."""
    return image if image.mode == "L" else image.convert("L")


def local_ssim(x: np.ndarray, y: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """SSIM of every 7×7 window, as skimage's `structural_similarity(..., full=True)` computes it (uniform window,
    sample covariance, K1 = 0.01, K2 = 0.03), with OpenCV's box filter in place of scipy's `uniform_filter`: the
    same sums to rounding (tests/test_tiers.py compares them), a third of the time, and SSIM was a third of the
    pixel agreement's cost (bench/tier_speed.py). Only windows inside the images are read by the callers, so
    the filters' border rule does not matter."""
    import cv2

    def mean(image: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(image, cv2.CV_64F, (SSIM_WINDOW, SSIM_WINDOW), borderType=cv2.BORDER_REFLECT)

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    cov_norm = SSIM_WINDOW**2 / (SSIM_WINDOW**2 - 1)
    ux, uy = mean(x), mean(y)
    vx = cov_norm * (mean(x * x) - ux * ux)
    vy = cov_norm * (mean(y * y) - uy * uy)
    vxy = cov_norm * (mean(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
