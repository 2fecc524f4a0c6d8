"""Pillow drawings for the synthetic sample: clocks, logos, random scenes, photo crops and edits.

The families mirror what DALL·E 2 found regurgitated: simple vector graphics with many
near-duplicates (the same clock at 1, 2, 3 o'clock; a logo in colour variants).
"""

from __future__ import annotations

import io
import math
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

SIZE = 128
# Real photographs that ship inside scikit-image (no download needed).
PHOTO_NAMES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "retina",
    "immunohistochemistry",
    "camera",
    "moon",
    "coins",
    "brick",
    "grass",
    "gravel",
    "page",
    "text",
    "motorcycle_left",
)


@cache
def photo(name: str) -> Image.Image:
    from skimage import data

    loader = getattr(data, name) if name != "motorcycle_left" else (lambda: data.stereo_motorcycle()[0])
    array = np.asarray(loader())
    if array.dtype != np.uint8:
        array = (255 * (array.astype(np.float64) / max(array.max(), 1))).astype(np.uint8)
    image = Image.fromarray(array)
    return image.convert("RGB")


def square(image: Image.Image, size: int = SIZE) -> Image.Image:
    return ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS)


def photo_crop(rng: np.random.Generator, name: str, size: int = SIZE) -> Image.Image:
    """A random crop (30–70% of the short side) of a real photo: a distinct 'photo' per call."""
    source = photo(name)
    width, height = source.size
    side = int(min(width, height) * rng.uniform(0.3, 0.7))
    left, top = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    crop = source.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS)
    return ImageEnhance.Color(crop).enhance(rng.uniform(0.6, 1.4))


def photo_edits(name: str) -> list[Image.Image]:
    """The original photo and five light edits of it (crop, rescale, colour, JPEG, rotation): re-uploads."""
    base = square(photo(name))
    crop = base.crop((4, 3, 124, 123)).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    rescaled = base.resize((96, 96), Image.Resampling.LANCZOS).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    colour = ImageEnhance.Color(ImageEnhance.Brightness(base).enhance(1.08)).enhance(0.85)
    buffer = io.BytesIO()
    base.save(buffer, format="JPEG", quality=75)
    jpeg = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    rotated = base.rotate(2, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))
    return [base, crop, rescaled, colour, jpeg, rotated]


CLOCK_STYLES = (
    {"face": (250, 250, 245), "rim": (30, 30, 30), "hands": (20, 20, 20), "background": (200, 220, 240)},
    {"face": (255, 235, 160), "rim": (150, 60, 20), "hands": (90, 30, 10), "background": (245, 245, 245)},
    {"face": (30, 40, 60), "rim": (200, 200, 210), "hands": (240, 240, 90), "background": (120, 130, 150)},
)


def clock(style: int, hour: int, minute: int = 0, size: int = SIZE) -> Image.Image:
    """A flat clock face at a given time: the canonical DALL·E 2 near-duplicate family."""
    colours = CLOCK_STYLES[style]
    image = Image.new("RGB", (size, size), colours["background"])
    draw = ImageDraw.Draw(image)
    centre, radius = size / 2, size * 0.42
    box = [centre - radius, centre - radius, centre + radius, centre + radius]
    rim = max(2, size // 24)
    # Each style is its own design (face shape and ticks), not a recolouring of one drawing: a recoloured
    # drawing is a copy, and only the times of one style form a family.
    if style == 0:
        draw.ellipse(box, fill=colours["face"], outline=colours["rim"], width=rim)
    elif style == 1:
        draw.rounded_rectangle(box, radius=size // 8, fill=colours["face"], outline=colours["rim"], width=rim)
    else:
        corners = [
            (
                centre + radius * math.cos(math.radians(22.5 + 45 * k)),
                centre + radius * math.sin(math.radians(22.5 + 45 * k)),
            )
            for k in range(8)
        ]
        draw.polygon(corners, fill=colours["face"], outline=colours["rim"], width=rim)
    for tick in range(12):
        angle = math.radians(tick * 30)
        if style == 1 and tick % 3:
            continue  # four bold marks only
        if style == 2:
            x, y = centre + radius * 0.8 * math.sin(angle), centre - radius * 0.8 * math.cos(angle)
            dot = 4 if tick % 3 == 0 else 2
            draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=colours["rim"])
            continue
        inner, outer = radius * (0.78 if tick % 3 else 0.62), radius * 0.9
        draw.line(
            [
                centre + inner * math.sin(angle),
                centre - inner * math.cos(angle),
                centre + outer * math.sin(angle),
                centre - outer * math.cos(angle),
            ],
            fill=colours["rim"],
            width=2 if tick % 3 else 5,
        )
    hour_angle = math.radians((hour % 12) * 30 + minute * 0.5)
    minute_angle = math.radians(minute * 6)
    draw.line(
        [centre, centre, centre + radius * 0.5 * math.sin(hour_angle), centre - radius * 0.5 * math.cos(hour_angle)],
        fill=colours["hands"],
        width=max(3, size // 20),
    )
    draw.line(
        [
            centre,
            centre,
            centre + radius * 0.8 * math.sin(minute_angle),
            centre - radius * 0.8 * math.cos(minute_angle),
        ],
        fill=colours["hands"],
        width=max(2, size // 40),
    )
    draw.ellipse([centre - 4, centre - 4, centre + 4, centre + 4], fill=colours["hands"])
    return image


LOGO_SHAPES = ("star", "ring", "triangle", "diamond", "bolt", "cross")


def logo(shape: int, hue: float, size: int = SIZE) -> Image.Image:
    """A flat icon on white in a given hue: colour variants of one logo are near-duplicates."""
    import colorsys

    red, green, blue = (int(255 * c) for c in colorsys.hsv_to_rgb(hue % 1.0, 0.8, 0.85))
    fill = (red, green, blue)
    image = Image.new("RGB", (size, size), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    c, r = size / 2, size * 0.38
    name = LOGO_SHAPES[shape]
    if name == "star":
        points = [
            (
                c + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
                c - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5),
            )
            for i in range(10)
        ]
        draw.polygon(points, fill=fill)
    elif name == "ring":
        draw.ellipse([c - r, c - r, c + r, c + r], fill=fill)
        draw.ellipse([c - r * 0.55, c - r * 0.55, c + r * 0.55, c + r * 0.55], fill=(255, 255, 255))
        draw.rectangle([c - r * 0.15, c - r, c + r * 0.15, c + r], fill=fill)
    elif name == "triangle":
        draw.polygon([(c, c - r), (c + r, c + r * 0.8), (c - r, c + r * 0.8)], fill=fill)
        draw.ellipse([c - r * 0.3, c - r * 0.05, c + r * 0.3, c + r * 0.55], fill=(255, 255, 255))
    elif name == "diamond":
        draw.polygon([(c, c - r), (c + r, c), (c, c + r), (c - r, c)], fill=fill)
        draw.polygon([(c, c - r * 0.5), (c + r * 0.5, c), (c, c + r * 0.5), (c - r * 0.5, c)], fill=(20, 20, 20))
    elif name == "bolt":
        draw.polygon(
            [
                (c + r * 0.2, c - r),
                (c - r * 0.6, c + r * 0.1),
                (c - r * 0.05, c + r * 0.1),
                (c - r * 0.3, c + r),
                (c + r * 0.6, c - r * 0.15),
                (c + r * 0.05, c - r * 0.15),
            ],
            fill=fill,
        )
    else:
        w = r * 0.35
        draw.rectangle([c - w, c - r, c + w, c + r], fill=fill)
        draw.rectangle([c - r, c - w, c + r, c + w], fill=fill)
    draw.text((8, size - 16), "ACME", fill=(60, 60, 60))
    return image


def scene(rng: np.random.Generator, size: int = SIZE) -> Image.Image:
    """A novel image: a procedural texture (random waves and noise in random colours, unique per call, so no two
    scenes share pixels the way crops of one photo would) or a colour gradient, with random shapes on top."""
    if rng.random() < 0.75:
        y, x = np.mgrid[0:size, 0:size] / size
        field = np.zeros((size, size))
        for _ in range(4):
            fx, fy, phase = rng.uniform(1, 9), rng.uniform(1, 9), rng.uniform(0, 2 * np.pi)
            field += np.sin(2 * np.pi * (fx * x + fy * y) + phase) * rng.uniform(0.3, 1.0)
        field += rng.normal(0, 0.6, (size, size))
        field = (field - field.min()) / (np.ptp(field) + 1e-9)
        low, high = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        pixels = low * (1 - field[..., None]) + high * field[..., None]
        image = Image.fromarray(pixels.astype(np.uint8))
    else:
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ramp = np.linspace(0, 1, size)[:, None, None]
        gradient = (top * (1 - ramp) + bottom * ramp).repeat(size, axis=1).astype(np.uint8)
        image = Image.fromarray(gradient)
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 7))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = rng.integers(0, size - 20, 2)
        x1, y1 = x0 + rng.integers(15, size // 2), y0 + rng.integers(15, size // 2)
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse([int(x0), int(y0), int(x1), int(y1)], fill=colour)
        elif kind == 1:
            draw.rectangle([int(x0), int(y0), int(x1), int(y1)], fill=colour)
        else:
            draw.line([int(x0), int(y0), int(x1), int(y1)], fill=colour, width=int(rng.integers(2, 8)))
    return image


def near_copy(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """What a model that memorised an image would draw: a copy off by a pixel and a few percent of brightness."""
    dx, dy = (int(v) for v in rng.integers(-1, 2, 2))
    corner = image.getpixel((0, 0))
    assert isinstance(corner, (int, tuple))
    shifted = ImageOps.expand(image, border=4, fill=corner).crop(
        (4 + dx, 4 + dy, 4 + dx + image.width, 4 + dy + image.height)
    )
    return ImageEnhance.Brightness(shifted).enhance(float(rng.uniform(0.97, 1.03)))


# The visual concepts the sample's filters target: every scene whose caption is in a risky context (removed, or
# kept just under the threshold) is drawn with its concept's motif, so that the planted bias is visible in image
# space too (a filter removes what images look like, not only what captions say).
CONCEPT_MOTIFS = ("sexual", "violence")


def with_concept(image: Image.Image, concept: str) -> Image.Image:
    """`image` overlaid with the motif of a visual concept ("safe": unchanged). The motif's placement is drawn
    from a generator seeded by the image's own pixels, so the sample's other random draws do not move."""
    if concept == "safe":
        return image
    size = image.width
    local = np.random.default_rng(int(np.asarray(image, dtype=np.int64).sum()))  # the sample's own draws stay put
    overlay = Image.new("RGB", image.size, (0, 0, 0))
    mask = Image.new("L", image.size, 0)
    draw, shape = ImageDraw.Draw(overlay), ImageDraw.Draw(mask)
    if concept == "sexual":  # skin-toned round shapes
        for _ in range(14):
            x, y = local.integers(0, size, 2)
            radius = int(local.integers(size // 14, size // 7))
            disc = [int(x) - radius, int(y) - radius, int(x) + radius, int(y) + radius]
            draw.ellipse(disc, fill=(226, 170, 140))
            shape.ellipse(disc, fill=220)
    elif concept == "violence":  # dark red splashes
        for k in range(3):
            x, y = local.integers(0, size, 2)
            radius = int(local.integers(size // 8, size // 8 + size // 6))
            blot = [
                (int(x) + radius * math.cos(a) * (1 + 0.4 * math.sin(5 * a + k)), int(y) + radius * math.sin(a))
                for a in np.linspace(0, 2 * math.pi, 24, endpoint=False)
            ]
            draw.polygon(blot, fill=(140, 0, 0))
            shape.polygon(blot, fill=200)
    else:
        raise ValueError(f"unknown visual concept {concept!r}")
    return Image.composite(overlay, image, mask)
