"""The standard edits that copies of web photos carry, as in the DISC21 / SSCD augmentation sets: crops,
flips, small rotations, JPEG re-encoding, downscaling, colour jitter, greyscale, blur, text and emoji overlays,
borders, pasting onto another photo. Each family is a function (image, rng, other photo) → edited image."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

Edit = Callable[[Image.Image, random.Random, Image.Image], Image.Image]


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def crop(image: Image.Image, rng: random.Random, area: float) -> Image.Image:
    """A crop keeping `area` of the pixels, at a random place, aspect ratio kept."""
    side = area**0.5
    width, height = max(1, int(image.width * side)), max(1, int(image.height * side))
    left, top = rng.randint(0, image.width - width), rng.randint(0, image.height - height)
    return image.crop((left, top, left + width, top + height))


def banner(image: Image.Image, rng: random.Random) -> Image.Image:
    """A meme-style text banner over the bottom fifth."""
    edited = image.copy()
    draw = ImageDraw.Draw(edited)
    top = int(image.height * 0.8)
    draw.rectangle((0, top, image.width, image.height), fill=(15, 15, 15))
    words = rng.choice(["WHEN YOU SEE IT", "monday mood lol", "share if you agree!!", "best day ever"])
    draw.text((10, top + 8), words * 2, fill=(255, 255, 255))
    return edited


def emoji(image: Image.Image, rng: random.Random) -> Image.Image:
    """A few opaque 'stickers' (yellow discs with a face), the way emoji overlays hide parts of a photo."""
    edited = image.copy()
    draw = ImageDraw.Draw(edited)
    for _ in range(3):
        radius = max(8, image.width // 12)
        x, y = rng.randint(radius, image.width - radius), rng.randint(radius, image.height - radius)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(255, 204, 0), outline=(0, 0, 0))
        draw.arc((x - radius // 2, y - radius // 3, x + radius // 2, y + radius // 2), 20, 160, fill=(0, 0, 0))
    return edited


def paste(image: Image.Image, rng: random.Random, other: Image.Image) -> Image.Image:
    """The photo shrunk to 70% and pasted onto another photo."""
    background = other.convert("RGB").resize((image.width, image.height))
    small = image.resize((int(image.width * 0.7), int(image.height * 0.7)))
    background.paste(small, (rng.randint(0, image.width - small.width), rng.randint(0, image.height - small.height)))
    return background


FAMILIES: dict[str, Edit] = {
    "crop 50% + JPEG 50": lambda im, rng, _: jpeg(crop(im, rng, 0.5), 50),
    "crop 70%": lambda im, rng, _: crop(im, rng, 0.7),
    "crop 90% + mirror": lambda im, rng, _: ImageOps.mirror(crop(im, rng, 0.9)),
    "mirror": lambda im, rng, _: ImageOps.mirror(im),
    "rotate ±10°": lambda im, rng, _: im.rotate(rng.choice([-10, -6, 6, 10]), expand=True, fillcolor=(0, 0, 0)),
    "JPEG 20": lambda im, rng, _: jpeg(im, 20),
    "downscale 35%": lambda im, rng, _: im.resize((max(1, im.width * 35 // 100), max(1, im.height * 35 // 100))),
    "colour jitter": lambda im, rng, _: ImageEnhance.Contrast(
        ImageEnhance.Brightness(ImageEnhance.Color(im).enhance(rng.uniform(0.3, 1.8))).enhance(rng.uniform(0.7, 1.3))
    ).enhance(rng.uniform(0.7, 1.3)),
    "greyscale": lambda im, rng, _: ImageOps.grayscale(im).convert("RGB"),
    "blur + greyscale": lambda im, rng, _: ImageOps.grayscale(im.filter(ImageFilter.GaussianBlur(2))).convert("RGB"),
    "text banner": lambda im, rng, _: banner(im, rng),
    "emoji overlay": lambda im, rng, _: emoji(im, rng),
    "border + padding": lambda im, rng, _: ImageOps.expand(im, border=max(8, im.width // 10), fill=(255, 255, 255)),
    "pasted onto another photo": paste,
}
