"""The evidence a reviewer sees for a verified copy: the two images side by side with a line from each inlier
keypoint in one to its match in the other. An image that must be blurred (removed by a filter, not revealed)
is blurred here too; the lines still show where the match is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from analysis.copies.local_features import extract_file, verify
from analysis.images import blurred, load_image, placeholder, to_png_bytes

HEIGHT = 300
LINE = (0, 200, 90)


@dataclass(frozen=True)
class Evidence:
    png: bytes
    inliers: int
    mirrored: bool


def pair_evidence(
    images_root: Path, image_a: str, image_b: str, *, blur_a: bool = False, blur_b: bool = False, max_lines: int = 40
) -> Evidence:
    """Side-by-side PNG of two images with their inlier matches drawn (at most `max_lines`, spread evenly)."""
    first, second = load_image(images_root, image_a), load_image(images_root, image_b)
    if first.image is None or second.image is None:
        reason = first.reason if first.image is None else second.reason
        return Evidence(to_png_bytes(placeholder(reason or "unavailable", HEIGHT)), 0, False)
    features_a, features_b = extract_file(images_root, image_a), extract_file(images_root, image_b)
    if features_a is None or features_b is None:
        return Evidence(to_png_bytes(placeholder("unavailable", HEIGHT)), 0, False)
    check = verify(features_a, features_b)
    scales = [HEIGHT / image.height for image in (first.image, second.image)]
    shown = [
        image.resize((max(1, round(image.width * s)), HEIGHT)) for image, s in zip((first.image, second.image), scales)
    ]
    shown = [blurred(image) if blur else image for image, blur in zip(shown, (blur_a, blur_b))]
    gap = 12
    canvas = Image.new("RGB", (shown[0].width + gap + shown[1].width, HEIGHT), (255, 255, 255))
    canvas.paste(shown[0], (0, 0))
    canvas.paste(shown[1], (shown[0].width + gap, 0))
    draw = ImageDraw.Draw(canvas)
    step = max(1, check.inliers // max_lines)
    for (xa, ya), (xb, yb) in list(zip(check.points_a, check.points_b))[::step]:
        start = (xa * scales[0], ya * scales[0])
        end = (shown[0].width + gap + xb * scales[1], yb * scales[1])
        draw.line([start, end], fill=LINE, width=1)
        for x, y in (start, end):
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], outline=LINE)
    return Evidence(to_png_bytes(canvas), check.inliers, check.mirrored)
