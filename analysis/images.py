"""Safe image access: paths confined to the images root (images inside webdataset tar shards read in place,
`analysis/shards.py`), decoding that never crashes the caller.

Images in scraped data are missing, truncated, mislabelled or hostile (decompression bombs);
every failure becomes a short reason string instead of an exception.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageOps

from analysis.shards import member_size, read_member, shard_reference
from analysis.storage import is_object_url, object_size_and_reader

# Anything larger than this many pixels is refused before decoding (a decompression bomb guard).
MAX_PIXELS = 50_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
MAX_FILE_BYTES = 512 * 1024 * 1024  # files are read whole; no real image file comes near this


@dataclass(frozen=True)
class ImageResult:
    image: Image.Image | None
    reason: str | None = None  # why there is no image, when there is none
    sha256: str = ""  # of the file's bytes, when asked for and the image decoded


def resolve_image(images_root: Path, relative: str) -> Path | None:
    """The file for `relative` inside `images_root` (for `SHARD.tar#KEY`, the shard that holds it), or None when
    the path escapes the root (symlinks included)."""
    if not relative or relative.startswith(("http://", "https://")):
        return None
    inside = shard_reference(relative)
    root = images_root.resolve()
    candidate = (root / (inside[0] if inside else relative)).resolve()
    if not candidate.is_relative_to(root):
        return None
    return candidate


def load_image(
    images_root: Path,
    relative: str,
    min_side: int | None = None,
    digest: bool = False,
    *,
    grey: bool = False,
) -> ImageResult:
    """Decode an image as RGB (or, with `grey`, as 8-bit grey) with EXIF orientation applied, or say why it cannot
    be.

    With `min_side`, JPEGs are decoded at the smallest DCT scale that keeps both sides ≥ min_side (Pillow's
    draft mode): a 640 px photo embedded at 224 px decodes several times faster with no visible difference. With
    `grey`, a JPEG's luma alone is decoded, whole (the grey picture the RGB conversion gives, within a level, for
    less work: local features). With `digest`, the sha256 of the file comes from the same single read
    (byte-duplicate detection needs it).
    """
    if not relative:
        return ImageResult(None, "no image path")
    if relative.startswith(("http://", "https://")):
        return ImageResult(None, "remote URL (not fetched)")
    decoding = _Decoding(min_side, grey)
    if is_object_url(relative):
        return _load_object(relative, decoding, digest)
    path = resolve_image(images_root, relative)
    if path is None:
        return ImageResult(None, "path escapes the images root")
    if not path.is_file():
        return ImageResult(None, "file not found")
    inside = shard_reference(relative)
    try:
        size = path.stat().st_size if inside is None else member_size(path, inside[1])
        if size is None:
            return ImageResult(None, f"not in the shard {inside[0] if inside else ''}")
        if size > MAX_FILE_BYTES:
            return ImageResult(None, f"file too large ({size / 2**20:,.0f} MB)")
        data = path.read_bytes() if inside is None else read_member(path, inside[1])
    except (OSError, tarfile.TarError) as exc:
        return ImageResult(None, f"unreadable file ({getattr(exc, 'strerror', None) or exc})")
    if data is None:
        return ImageResult(None, "not in the shard")
    return _decode(data, decoding, digest)


def _load_object(url: str, decoding: _Decoding, digest: bool) -> ImageResult:
    """An image in object storage (`analysis/storage.py`), with the same guards as a local file."""
    try:
        found = object_size_and_reader(url)
        if found is None:
            return ImageResult(None, "not in the shard")
        size, read = found
        if size > MAX_FILE_BYTES:
            return ImageResult(None, f"file too large ({size / 2**20:,.0f} MB)")
        data = read()
    except FileNotFoundError:
        return ImageResult(None, "file not found")
    except (OSError, ValueError, ImportError) as exc:
        return ImageResult(
            None, f"unreadable object ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})"
        )
    return _decode(data, decoding, digest)


@dataclass(frozen=True)
class _Decoding:
    min_side: int | None
    grey: bool


def _decode(data: bytes, decoding: _Decoding, digest: bool) -> ImageResult:
    if not data:
        return ImageResult(None, "empty file (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as handle:
            width, height = handle.size
            if width * height > MAX_PIXELS:
                return ImageResult(None, f"too large ({width}×{height} px, decompression-bomb guard)")
            handle.seek(0)
            if handle.format == "JPEG" and (decoding.min_side or decoding.grey):
                draft = (decoding.min_side, decoding.min_side) if decoding.min_side else handle.size
                handle.draft("L" if decoding.grey else "RGB", draft)
            image = ImageOps.exif_transpose(handle)
            image = _to_grey(image) if decoding.grey else _to_rgb(image)
            image.load()
            return ImageResult(image, sha256=hashlib.sha256(data).hexdigest() if digest else "")
    except Image.DecompressionBombError:
        return ImageResult(None, "too large (decompression-bomb guard)")
    except (OSError, SyntaxError, ValueError) as exc:
        return ImageResult(None, f"unreadable image ({str(exc).splitlines()[0][:80]})")


def _to_grey(image: Image.Image) -> Image.Image:
    """8-bit grey as the RGB conversion would give it, then its luma (a grey JPEG decoded in grey is kept)."""
    return image if image.mode == "L" else _to_rgb(image).convert("L")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Flatten alpha onto white and convert palette, CMYK, 16-bit and grey images to 8-bit RGB."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.point(lambda value: value * (1 / 256)).convert("L").convert("RGB")
    return image.convert("RGB")


def thumbnail(image: Image.Image, size: int = 256) -> Image.Image:
    copy = image.copy()
    copy.thumbnail((size, size))
    return copy


# (thumbnail side, Gaussian radius): "strong" keeps the layout recognisable but not the content; "maximum" keeps
# only the colours. `[review] blur` in audit.toml picks one.
BLUR_LEVELS = {"strong": (48, 4), "maximum": (16, 4)}


def blurred(image: Image.Image, level: str = "strong") -> Image.Image:
    """The blur of removed images, everywhere they are shown until a reviewer reveals them."""
    side, radius = BLUR_LEVELS[level]
    small = thumbnail(image, side)
    return small.filter(ImageFilter.GaussianBlur(radius=radius)).resize(image.size, Image.Resampling.BILINEAR)


def placeholder(reason: str, size: int = 256) -> Image.Image:
    """A grey tile saying why there is no image, so galleries keep their layout."""
    tile = Image.new("RGB", (size, size), (236, 236, 236))
    draw = ImageDraw.Draw(tile)
    draw.rectangle([0, 0, size - 1, size - 1], outline=(200, 200, 200))
    words, lines, line = reason.split(), [], ""
    for word in ["no image:"] + words:
        if len(line) + len(word) > 22:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    for i, text in enumerate(lines):
        draw.text((12, size // 2 - 10 * len(lines) + 20 * i), text, fill=(90, 90, 90))
    return tile


def tile_png(
    images_root: Path, relative: str, *, blur: bool, size: int = 256, level: str = "strong", greyscale: bool = False
) -> bytes:
    """PNG bytes of a thumbnail, blurred when asked (at `level`), else in greyscale when asked (a reviewer's
    gentler reveal), or a placeholder tile saying why there is no image."""
    result = load_image(images_root, relative)
    if result.image is None:
        return to_png_bytes(placeholder(result.reason or "unavailable", size))
    image = thumbnail(result.image, size)
    if blur:
        return to_png_bytes(blurred(image, level))
    return to_png_bytes(image.convert("L").convert("RGB") if greyscale else image)


def to_png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
