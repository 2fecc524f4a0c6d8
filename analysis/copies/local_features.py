"""Local-feature verification of a candidate copy: SIFT keypoints matched with Lowe's ratio test, one-to-one,
then a RANSAC similarity transform (rotation, scale, translation); the score is the number of inliers at
distinct positions. Mirror-aware without a second extraction: a SIFT descriptor of a mirrored image is a fixed
permutation of the original's (rows of the 4×4 grid reversed, orientation bins negated), so a pair is also
matched against the mirrored keypoints of one side. Matching is one BLAS matrix product per pair, of one image's
descriptors and their mirrors against the other's (OpenCV's brute-force matcher, run twice per pair, took most of
a pair's time; docs/benchmarks.md, "Pixel verification: cost per core").

Calibration (bench/copy_detection.py, real COCO photos): distinct photos stay at ≤ 4 inliers, edited copies
(crops, rotation, JPEG, greyscale, blur, banners, downscaling) mostly reach tens to hundreds. The defaults and
their figures are in docs/analyses.md ("Verified copies").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from analysis.images import load_image

MAX_SIDE = 320  # images are verified at this long side at most (chosen on real photos: docs/analyses.md)
N_FEATURES = 300  # strongest SIFT keypoints kept per image (matching cost grows with its square; docs/analyses.md)
RATIO = 0.8  # Lowe's ratio test
REPROJECTION_PX = 6.0  # RANSAC inlier distance, in pixels of the MAX_SIDE image
SCALE_RANGE = (0.2, 5.0)  # a copy is not shrunk or blown up beyond this
MIN_MATCHES = 4
# A verified pair's inliers' convex hull covers ≥ 5% of both images (rejects matches on a sign's lettering); the
# rule is applied in analysis/copies/candidates.py, and verification fits the tiers' transforms by it.
MIN_COVERAGE = 0.05
# How an image file becomes the grey picture SIFT sees (part of the feature cache's key: features of another
# decoding differ in a few pixels, so they are not mixed with these).
DECODING = "grey: a JPEG's luma alone"
STRONG_DIRECT = 50  # a direct match with this many inliers needs no mirror check
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
    original_width: int = 0  # in original pixels, where known (0: features stored before it was kept)

    @cached_property
    def matchable(self) -> np.ndarray:
        """RootSIFT of the keypoints and, below them, of the mirrored keypoints: computed once per image, however
        many candidates it has."""
        root = _root_sift(self.descriptors)
        return np.concatenate([root, root[:, MIRROR_PERMUTATION]])

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
    widths: tuple[int, int] = (0, 0)  # of a and b in original pixels, where the features know them (0: unknown)


Matches = tuple[np.ndarray, np.ndarray]  # (rows of a, rows of b), matched one to one
_NO_MATCHES: Matches = (np.zeros(0, np.int64), np.zeros(0, np.int64))
NO_MATCH = Verification(0, False, 0.0, np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32))


def extract_file(images_root: Path, relative: str) -> Features | None:
    """The local features of an image file, None where it cannot be read. A JPEG's luma alone is decoded (the
    colour was converted to grey anyway). Decoding at a smaller DCT scale (Pillow's draft) was measured and not
    taken: it changed the pixels SIFT sees and lost recall on the copy-detection benchmark (docs/analyses.md,
    "Verified copies"). Verification and the evidence a reviewer sees both extract through here, so the evidence
    drawn is the match that was judged."""
    result = load_image(images_root, relative, grey=True)
    return None if result.image is None else extract(result.image)


def extract(image: Image.Image) -> Features:
    import cv2

    width, height = image.size
    # Large photos shrink to MAX_SIDE. Small images are not enlarged: on flat graphics that multiplies keypoints
    # on shared details (a wordmark, clock hands) and pairs different designs.
    scale = min(1.0, MAX_SIDE / max(width, height))
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    grey = image.convert("L")
    if grey.size != target:
        grey = grey.resize(target, Image.Resampling.BILINEAR)
    pixels = np.asarray(grey)
    keypoints, descriptors = cv2.SIFT_create(nfeatures=N_FEATURES).detectAndCompute(pixels, None)  # type: ignore[attr-defined]
    if descriptors is None or not len(keypoints):
        return Features(
            np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8), grey.width, grey.height, scale, width
        )
    points = np.array([k.pt for k in keypoints], dtype=np.float32)
    return Features(points, np.clip(descriptors, 0, 255).astype(np.uint8), grey.width, grey.height, scale, width)


def _root_sift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT (Arandjelović & Zisserman 2012): Hellinger kernel, better matching than raw SIFT. Its rows have unit
    length, so a squared distance is 2 − 2 · dot product and matching is one matrix product (BLAS)."""
    values = descriptors.astype(np.float32)
    return np.sqrt(values / (values.sum(axis=1, keepdims=True) + 1e-7))


def ratio_matches(a: Features, b: Features) -> tuple[Matches, Matches]:
    """Lowe-ratio matches of a's keypoints into b's, one per keypoint of b (its closest), for b as it is and for b
    mirrored: ((rows of a, rows of b), (rows of a, rows of mirrored b)).

    One product of a's RootSIFT stacked over a's mirrored RootSIFT against b's gives both: a mirrored descriptor of
    a against b is at the distance of a against b's mirror (the permutation is its own inverse). This replaced
    OpenCV's brute-force matcher, run twice per pair and most of a pair's time (docs/benchmarks.md, "Pixel
    verification: cost per core")."""
    if len(a.descriptors) < MIN_MATCHES or len(b.descriptors) < 2:
        return _NO_MATCHES, _NO_MATCHES
    similarity = a.matchable @ b.matchable[: len(b.descriptors)].T
    rows = np.arange(len(similarity))
    nearest = similarity.argmax(axis=1)
    first = similarity[rows, nearest]
    similarity[rows, nearest] = -np.inf
    second = similarity.max(axis=1)
    squared_first = np.maximum(2.0 - 2.0 * first, 0.0)
    squared_second = np.maximum(2.0 - 2.0 * second, 0.0)
    passed = squared_first < RATIO * RATIO * squared_second  # distance ratio < RATIO, without square roots
    n_query = len(a.descriptors)
    direct, mirrored = (
        _one_per_target(np.flatnonzero(passed[half]), nearest[half], squared_first[half])
        for half in (slice(0, n_query), slice(n_query, 2 * n_query))
    )
    return direct, mirrored


def _one_per_target(queries: np.ndarray, nearest: np.ndarray, distance: np.ndarray) -> Matches:
    """Each target keypoint keeps its closest query (ties: the first query), listed in the order the targets were
    first reached by a query, as the loop over queries this replaced listed them (RANSAC draws its samples in
    this order, so the order is part of the result)."""
    if not len(queries):
        return _NO_MATCHES
    targets = nearest[queries]
    by_target = np.lexsort((queries, distance[queries], targets))  # target, then closest, then first query
    unique_targets, group_start = np.unique(targets[by_target], return_index=True)
    closest = by_target[group_start]
    _, first_reached = np.unique(targets, return_index=True)  # queries ascend: the first query to reach it
    order = np.argsort(first_reached, kind="stable")
    return queries[closest[order]], unique_targets[order]


def _inliers(source: np.ndarray, target: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """RANSAC similarity transform between matched points; its inliers counted at distinct positions."""
    import cv2

    none = (0, np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32))
    if len(source) < MIN_MATCHES:
        return none
    model, mask = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION_PX, maxIters=2000, confidence=0.99
    )
    if model is None or mask is None:
        return none
    scale = float(np.hypot(model[0, 0], model[1, 0]))
    if not SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]:
        return none
    inside = mask.ravel().astype(bool)
    # Count positions, not matches: many matches collapsing onto a few points are no evidence of a copy.
    distinct = min(_distinct_positions(source[inside]), _distinct_positions(target[inside]))
    return distinct, source[inside], target[inside]


def _distinct_positions(points: np.ndarray) -> int:
    """Points in distinct 2-pixel cells (one integer code per cell: a 1-D unique, cheaper than unique rows)."""
    cells = np.round(points / 2).astype(np.int64)
    return len(np.unique(cells[:, 0] * 1_000_003 + cells[:, 1]))


def verify(a: Features, b: Features) -> Verification:
    """The better of a↔b and a↔mirror(b); the mirror is not tried where the direct match is already strong, or
    where it has too few matches to beat the direct inliers (inliers are a subset of the matches)."""
    (direct_a, direct_b), (mirror_a, mirror_b) = ratio_matches(a, b)
    inliers, points_a, points_b = _inliers(a.points[direct_a], b.points[direct_b])
    mirrored = False
    if inliers < STRONG_DIRECT and len(mirror_a) > inliers:
        flipped = b.points[mirror_b].copy()  # a's mirrored descriptors matched b: as geometry, b's points mirrored
        flipped[:, 0] = b.width - 1 - flipped[:, 0]
        inliers_m, points_a_m, points_b_m = _inliers(a.points[mirror_a], flipped)
        if inliers_m > inliers:
            inliers, points_a, mirrored = inliers_m, points_a_m, True
            points_b = points_b_m.copy()
            points_b[:, 0] = b.width - 1 - points_b[:, 0]
    if not inliers:
        return NO_MATCH
    coverage = min(_hull_share(points_a, a), _hull_share(points_b, b))
    return Verification(
        inliers, mirrored, coverage, points_a / a.scale, points_b / b.scale, (a.original_width, b.original_width)
    )


def _hull_share(points: np.ndarray, features: Features) -> float:
    """Share of the image inside the convex hull of the matched points: a copy matches across much of both
    images; two photos of STOP signs match only on the lettering (bench/copy_detection.py)."""
    import cv2

    if len(points) < 3 or not features.width or not features.height:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(points.astype(np.float32)))) / (features.width * features.height)
