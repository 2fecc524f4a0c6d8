"""Images in object storage, read through fsspec: a manifest's image may be a URL such as `s3://bucket/a.jpg`, or
`s3://bucket/00000.tar#KEY` for an image inside a webdataset shard there (img2dataset writes to S3 as readily as to
disk), so Dask workers on other machines read the images without a shared filesystem. Any protocol fsspec knows
works (`s3://` needs s3fs, `gs://` gcsfs); credentials and endpoints come from the usual places (AWS_* variables,
`FSSPEC_S3_ENDPOINT_URL`, ~/.aws). http(s) URLs are never fetched: in scraped data they are the original links.
"""

from __future__ import annotations

import re
import tarfile
from functools import lru_cache
from typing import Any

from analysis.shards import IMAGE_SUFFIXES, shard_reference

OBJECT_URL = re.compile(r"^(?!https?://)[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_object_url(text: str) -> bool:
    return bool(OBJECT_URL.match(text))


def _filesystem(url: str) -> tuple[Any, str]:
    import fsspec

    return fsspec.core.url_to_fs(url)


@lru_cache(maxsize=64)
def _shard_index(url: str, version: str) -> dict[str, tuple[int, int]]:
    """Member → (offset, size) of a remote tar: one pass over its headers through fsspec's read-ahead cache, once
    per shard version (its ETag or size), so each image is then one ranged read."""
    filesystem, path = _filesystem(url)
    entries: dict[str, tuple[int, int]] = {}
    with filesystem.open(path, "rb") as handle, tarfile.open(fileobj=handle, mode="r:") as archive:
        for member in archive:
            if member.isfile():
                entries[member.name] = (member.offset_data, member.size)
                stem, dot, suffix = member.name.rpartition(".")
                if dot and f".{suffix.lower()}" in IMAGE_SUFFIXES:
                    entries.setdefault(stem, (member.offset_data, member.size))
    return entries


def object_size_and_reader(url: str) -> tuple[int, Any] | None:
    """(size, a function returning the bytes) of the object or of the image inside a remote shard; None when the
    shard has no such member. Raises OSError (FileNotFoundError when there is no such object)."""
    inside = shard_reference(url)
    filesystem, path = _filesystem(inside[0] if inside else url)
    if inside is None:
        return int(filesystem.size(path)), lambda: filesystem.cat_file(path)
    info = filesystem.info(path)
    try:
        entry = _shard_index(inside[0], str(info.get("ETag") or info.get("mtime") or info.get("size")))
    except tarfile.TarError as exc:
        raise OSError(f"not a tar shard: {exc}") from None
    found = entry.get(inside[1])
    if found is None:
        return None
    offset, size = found
    return size, lambda: filesystem.cat_file(path, start=offset, end=offset + size)
