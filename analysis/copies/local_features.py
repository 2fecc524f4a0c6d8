"""Local-feature verification of a candidate copy: SIFT keypoints matched with Lowe's ratio test, one-to-one,
then a RANSAC similarity transform (rotation, scale, translation); the score is the number of inliers at
distinct positions. Mirror-aware without a second extraction: a SIFT descriptor of a mirrored image is a fixed
permutation of the original's (rows of the 4×4 grid reversed, orientation bins negated), so a pair is also
matched against the mirrored keypoints of one side.

Calibration (bench/copy_detection.py, real COCO photos): distinct photos stay at ≤ 4 inliers, edited copies
(crops, rotation, JPEG, greyscale, blur, banners, downscaling) mostly reach tens to hundreds. The defaults and
their figures are in docs/analyses.md ("Verified copies").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

MAX_SIDE = 512  # images are verified at this long side at most: copies of web photos keep their content here
N_FEATURES = 500  # strongest SIFT keypoints kept per image
RATIO = 0.8  # Lowe's ratio test
REPROJECTION_PX = 6.0  # RANSAC inlier distance, in pixels of the MAX_SIDE image
SCALE_RANGE = (0.2, 5.0)  # a copy is not shrunk or blown up beyond this
MIN_MATCHES = 4
# Descriptor permutation that maps SIFT of an image to SIFT of its mirror (rows i → 3 − i, bins k → −k mod 8).
_GRID = np.arange(128).reshape(4, 4, 8)
MIRROR_PERMUTATION = _GRID[np.ix_(3 - np.arange(4), np.arange(4), (-np.arange(8)) % 8)].ravel()


@dataclass(frozen=True)
class Features:
    """SIFT of one image: keypoint positions in the verification-size grey image, raw descriptors (uint8),
    that image's size and its scale from the original pixels."""

    points: np.ndarray  # (n, 2) float32 x, y
    descriptors: np.ndarray  # (n, 128) uint8
    width: int
    height: int
    scale: float  # verification pixels per original pixel

    def mirrored(self) -> Features:
        points = self.points.copy()
        points[:, 0] = self.width - 1 - points[:, 0]
        return Features(points, self.descriptors[:, MIRROR_PERMUTATION], self.width, self.height, self.scale)

    @staticmethod
    def empty() -> Features:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8), 0, 0, 1.0)


@dataclass(frozen=True)
class Verification:
    inliers: int  # matched keypoints consistent with one similarity transform, at distinct positions
    mirrored: bool  # the match was found against the mirrored image
    coverage: float  # area of the inliers' convex hull over the image area, the smaller of the two images
    points_a: np.ndarray  # (inliers, 2) in original pixels of image a (for drawing the evidence)
    points_b: np.ndarray  # (inliers, 2) in original pixels of image b (mirror undone)


NO_MATCH = Verification(0, False, 0.0, np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32))


def extract(image: Image.Image) -> Features:
    import cv2

    grey = image.convert("L")
    # Large photos shrink to MAX_SIDE. Small images are not enlarged: on flat graphics that multiplies keypoints
    # on shared details (a wordmark, clock hands) and pairs different designs.
    scale = min(1.0, MAX_SIDE / max(grey.size))
    if scale < 1.0:
        grey = grey.resize(
            (max(1, round(grey.width * scale)), max(1, round(grey.height * scale))), Image.Resampling.BILINEAR
        )
    pixels = np.asarray(grey)
    keypoints, descriptors = cv2.SIFT_create(nfeatures=N_FEATURES).detectAndCompute(pixels, None)  # type: ignore[attr-defined]
    if descriptors is None or not len(keypoints):
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8), grey.width, grey.height, scale)
    points = np.array([k.pt for k in keypoints], dtype=np.float32)
    return Features(points, np.clip(descriptors, 0, 255).astype(np.uint8), grey.width, grey.height, scale)


def _root_sift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT (Arandjelović & Zisserman 2012): Hellinger kernel, better matching than raw SIFT."""
    values = descriptors.astype(np.float32)
    return np.sqrt(values / (values.sum(axis=1, keepdims=True) + 1e-7))


def _verify_one_way(a: Features, b: Features) -> tuple[int, np.ndarray, np.ndarray]:
    import cv2

    if len(a.descriptors) < MIN_MATCHES or len(b.descriptors) < 2:
        return 0, np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    matches = cv2.BFMatcher(cv2.NORM_L2).knnMatch(_root_sift(a.descriptors), _root_sift(b.descriptors), k=2)
    best: dict[int, tuple[float, int]] = {}  # one match per keypoint of b: the closest
    for pair in matches:
        if len(pair) == 2 and pair[0].distance < RATIO * pair[1].distance:
            first = pair[0]
            if first.trainIdx not in best or first.distance < best[first.trainIdx][0]:
                best[first.trainIdx] = (first.distance, first.queryIdx)
    if len(best) < MIN_MATCHES:
        return 0, np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    source = a.points[[query for _, query in best.values()]]
    target = b.points[list(best)]
    model, mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_PX, maxIters=2000, confidence=0.99
    )
    if model is None or mask is None:
        return 0, np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    scale = float(np.hypot(model[0, 0], model[1, 0]))
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        return 0, np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    inside = mask.ravel().astype(bool)
    # Count positions, not matches: many matches collapsing onto a few points are no evidence of a copy.
    distinct = min(
        len(np.unique(np.round(source[inside] / 2), axis=0)), len(np.unique(np.round(target[inside] / 2), axis=0))
    )
    return distinct, source[inside], target[inside]


def verify(a: Features, b: Features) -> Verification:
    """The better of a↔b and a↔mirror(b)."""
    inliers, points_a, points_b = _verify_one_way(a, b)
    mirrored = False
    if inliers < 50:  # a strong direct match needs no mirror check
        mirror = b.mirrored()
        inliers_m, points_a_m, points_b_m = _verify_one_way(a, mirror)
        if inliers_m > inliers:
            inliers, points_a, points_b, mirrored = inliers_m, points_a_m, points_b_m, True
            points_b = points_b.copy()
            points_b[:, 0] = b.width - 1 - points_b[:, 0]
    if not inliers:
        return NO_MATCH
    coverage = min(_hull_share(points_a, a), _hull_share(points_b, b))
    return Verification(inliers, mirrored, coverage, points_a / a.scale, points_b / b.scale)


def _hull_share(points: np.ndarray, features: Features) -> float:
    """Share of the image inside the convex hull of the matched points: a copy matches across much of both
    images; two photos of STOP signs match only on the lettering (bench/copy_detection.py)."""
    import cv2

    if len(points) < 3 or not features.width or not features.height:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(points.astype(np.float32)))) / (features.width * features.height)
