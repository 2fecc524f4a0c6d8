"""The bad-input catalogue (docs/robustness.md): each row gets one clear message naming what and where, or a
recorded per-item skip with its reason, and the run goes on where it sensibly can."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.embedding_store import load_embeddings
from analysis.embeddings import prepare
from analysis.errors import AuditInputError
from analysis.registry import open_workspace
from analysis.workspace import init_workspace, load_workspace
from tests.helpers import write_manifest

GOOD = [
    {"id": "a", "caption": "a woman", "image": "a.png", "s": 0.9, "keep": True},
    {"id": "b", "caption": "a man", "image": "b.png", "s": 0.1, "keep": False},
]


def _manifest(rows=GOOD, name: str = "o.parquet") -> Callable[[Path], dict]:
    def build(root: Path) -> dict:
        write_manifest(root / name, [dict(r) for r in rows] if isinstance(rows, list) else rows)
        return {"original": name, "kept_column": "keep"}

    return build


def _raw(content: bytes, name: str) -> Callable[[Path], dict]:
    def build(root: Path) -> dict:
        (root / name).write_bytes(content)
        return {"original": name, "kept_column": "keep"}

    return build


def _with(**changes) -> list[dict]:
    rows = [dict(r) for r in GOOD]
    for key, value in changes.items():
        rows[1][key] = value
    return rows


def _nested_caption(root: Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": ["a"], "caption": [["x", "y"]], "keep": [True]}), root / "o.parquet")
    return {"original": "o.parquet", "kept_column": "keep"}


def _truncated_parquet(root: Path) -> dict:
    write_manifest(root / "o.parquet", GOOD)
    data = (root / "o.parquet").read_bytes()
    (root / "o.parquet").write_bytes(data[: len(data) // 2])
    return {"original": "o.parquet", "kept_column": "keep"}


def _filtered_unknown(root: Path) -> dict:
    write_manifest(root / "o.parquet", GOOD)
    write_manifest(root / "f.csv", [{"id": "zzz"}])
    return {"original": "o.parquet", "filtered": "f.csv"}


def _scores(rows: list[dict], option: str = "s=s:0.5", name: str = "o.parquet") -> Callable[[Path], dict]:
    def build(root: Path) -> dict:
        write_manifest(root / name, rows)
        return {"original": name, "scores": [option]}

    return build


def _toml(text: str) -> Callable[[Path], dict]:
    def build(root: Path) -> dict:
        write_manifest(root / "o.parquet", GOOD)
        (root / "audit.toml").write_text(text)
        return {}

    return build


BASE_TOML = '[original]\nmanifest = "o.parquet"\n[filtered]\nkept_column = "keep"\n'

# (case, builder, expected message fragment)
MANIFEST_ERRORS = [
    ("missing id column", _manifest([{"caption": "x", "keep": True}]), "no 'id' column"),
    ("missing caption column", _manifest([{"id": "a", "keep": True}]), "no 'caption' column"),
    ("duplicate ids", _manifest(_with(id="a")), "duplicate id 'a' in rows [1, 2]"),
    ("null id", _manifest(_with(id=None)), "'id' is empty in row 2"),
    ("blank id", _manifest(_with(id="  ")), "'id' is empty in row 2"),
    ("NaN score", _scores(_with(s=float("nan"))), "non-numeric, NaN or infinite value"),
    ("infinite score", _scores(_with(s=float("inf"))), "non-numeric, NaN or infinite value"),
    ("text in a score column", _scores(_with(s="high"), name="o.jsonl"), "score column 's' has a non-numeric"),
    ("infinite threshold", _scores(GOOD, "s=s:>=inf"), "threshold of --score s is 'inf'"),
    (
        "unknown direction in audit.toml",
        _toml(
            '[original]\nmanifest = "o.parquet"\n[filtered]\nscores = '
            '[{name = "s", column = "s", threshold = 0.5, removed_when = ">"}]\n'
        ),
        "removed_when of filter 's' is '>'",
    ),
    ("threshold not a number", _scores(GOOD, "s=s:high"), "is not a number"),
    ("unknown score column", _scores(GOOD, "v=violence:0.5"), "score column 'violence' not found"),
    ("empty file", _raw(b"", "o.csv"), "is empty (0 bytes)"),
    ("header only", _raw(b"id,caption,keep\n", "o.csv"), "has no rows"),
    ("latin-1 CSV", _raw("id,caption,keep\na,caf\xe9,true\n".encode("latin-1"), "o.csv"), "not valid UTF-8"),
    (
        "invalid JSON line",
        _raw(b'{"id": "a", "caption": "x", "keep": true}\n{oops\n', "o.jsonl"),
        "line 2 is not valid JSON",
    ),
    ("JSON line that is a list", _raw(b'["a", "x"]\n', "o.jsonl"), "line 1 is a JSON list"),
    ("nested caption column", _nested_caption, "column 'caption' is nested"),
    ("truncated Parquet", _truncated_parquet, "cannot be read as PARQUET"),
    ("unsupported extension", _raw(b"PK\x03\x04", "o.xlsx"), "unsupported manifest format '.xlsx'"),
    ("image path with ..", _manifest(_with(image="../../etc/passwd")), "escapes the images root"),
    ("absolute image path", _manifest(_with(image="/etc/passwd")), "escapes the images root"),
    ("Windows absolute image path", _manifest(_with(image="C:\\secrets\\x.png")), "escapes the images root"),
    ("non-boolean kept column", _manifest(_with(keep="perhaps"), "o.jsonl"), "non-boolean value 'perhaps' in row 2"),
    ("filtered id not in original", _filtered_unknown, "id 'zzz' in row 1 is not in the original manifest"),
    ("unknown key in audit.toml", _toml(BASE_TOML + "[workspace]\ncolour = 'red'\n"), "unknown key(s) ['colour']"),
    ("unknown section in audit.toml", _toml(BASE_TOML + "[filters]\nx = 1\n"), "unknown section [filters]"),
    ("invalid TOML", _toml("[original\nmanifest = 'o.parquet'\n"), "is not valid TOML"),
    ("two filter definitions", _toml(BASE_TOML + 'manifest = "o.parquet"\n'), "at most one of"),
    (
        "threshold as text in audit.toml",
        _toml(
            '[original]\nmanifest = "o.parquet"\n[filtered]\nscores = '
            '[{name = "s", column = "s", threshold = "high"}]\n'
        ),
        "is not a number",
    ),
    (
        "missing original manifest file",
        _toml('[original]\nmanifest = "nope.parquet"\n[filtered]\nkept_column = "k"\n'),
        "manifest file not found",
    ),
]


@pytest.mark.parametrize("case,build,message", MANIFEST_ERRORS, ids=[c[0] for c in MANIFEST_ERRORS])
def test_bad_manifest_or_config_gets_one_clear_message(tmp_path: Path, case: str, build, message: str) -> None:
    options = build(tmp_path)
    with pytest.raises(AuditInputError) as info:
        init_workspace(tmp_path, **options) if options else open_workspace(tmp_path)  # as the CLI opens it
    text = str(info.value)
    assert message in text
    assert "\n" not in text, "one line"
    where = WHERE.get(case) or options.get("original") or "audit.toml"
    if where.startswith("--"):
        assert text.startswith(f"threshold of {where} "), text  # the command-line option that is wrong
    else:
        assert text.startswith(f"{tmp_path / where}: "), text  # the file that is wrong, first
    assert ". Fix: " in text, "and how to fix it"


# Where an error is, when it is not the original manifest (or audit.toml for a config case).
WHERE = {
    "infinite threshold": "--score s",
    "threshold not a number": "--score s",
    "filtered id not in original": "f.csv",
    "missing original manifest file": "nope.parquet",
}


# Inputs that are messy but valid: they load, and the data survives intact.
def test_mixed_line_endings_load(tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_bytes(b"id,caption,keep\r\na,one,true\nb,two,false\r\nc,three,true\n")
    workspace = init_workspace(tmp_path, original="o.csv", kept_column="keep")
    assert workspace.original["caption"].tolist() == ["one", "two", "three"]


def test_huge_caption_and_nul_bytes_load(tmp_path: Path) -> None:
    rows = _with(caption="woman " * 200_000 + "\x00end")
    workspace = init_workspace(tmp_path, **_manifest(rows)(tmp_path))
    assert workspace.original["caption"].iloc[1].endswith("end") and "\x00" not in workspace.original["caption"].iloc[1]


def test_numbers_as_captions_become_text(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path, **_manifest(_with(caption=12345), "o.jsonl")(tmp_path))
    assert workspace.original["caption"].tolist() == ["a woman", "12345"]


def test_unrelated_nested_column_is_ignored(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"id": ["a"], "caption": ["x"], "keep": [True], "exif": [{"iso": 100}]}), tmp_path / "o.parquet"
    )
    assert "exif" not in init_workspace(tmp_path, original="o.parquet", kept_column="keep").original.columns


# Images: every one of these is either embedded or skipped with its reason; none stops the run.
def _save(image: Image.Image, **kwargs) -> Callable[[Path], None]:
    return lambda path: image.save(path, **kwargs)


def _truncated(fmt: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, format=fmt)
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])

    return write


def _animated(path: Path) -> None:
    frames = [Image.new("P", (32, 32), i) for i in range(3)]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:])


def _symlink_out(path: Path) -> None:
    outside = path.parent.parent / "outside.png"
    Image.new("RGB", (8, 8)).save(outside)
    os.symlink(outside, path)


IMAGE_CASES = [
    ("missing file", "missing.png", None, "file not found"),
    ("zero-byte file", "zero.png", lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    ("truncated JPEG", "trunc.jpg", _truncated("JPEG"), "unreadable image"),
    ("truncated PNG", "trunc.png", _truncated("PNG"), "unreadable image"),
    ("not an image", "text.png", lambda p: p.write_text("hello"), "unreadable image"),
    ("decompression bomb", "bomb.png", _save(Image.new("1", (12000, 6000))), "too large"),
    ("remote URL", "https://example.com/a.jpg", None, "remote URL (not fetched)"),
    ("symlink escaping the root", "link.png", _symlink_out, "path escapes the images root"),
    ("PNG named .jpg", "png.jpg", _save(Image.new("RGB", (40, 30), "blue"), format="PNG"), ""),
    ("CMYK JPEG", "cmyk.jpg", _save(Image.new("CMYK", (40, 30), (0, 50, 100, 0))), ""),
    ("16-bit PNG", "sixteen.png", _save(Image.fromarray(np.full((30, 40), 40000, np.uint16))), ""),
    ("palette PNG with transparency", "palette.png", _save(Image.new("P", (40, 30), 3), transparency=3), ""),
    ("RGBA PNG", "rgba.png", _save(Image.new("RGBA", (40, 30), (10, 200, 10, 128))), ""),
    ("animated GIF", "anim.gif", _animated, ""),
    ("1×1 image", "tiny.png", _save(Image.new("RGB", (1, 1), "red")), ""),
    ("20000×50 banner", "banner.png", _save(Image.new("RGB", (20000, 50), "green")), ""),
]


def test_every_bad_image_is_embedded_or_skipped_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    rows = []
    for number, (case, name, write, _) in enumerate(IMAGE_CASES):
        if write is not None:
            write(tmp_path / "images" / name)
        rows.append({"id": f"i{number}", "caption": case, "image": name, "keep": True})
    write_manifest(tmp_path / "o.parquet", rows)
    workspace = init_workspace(tmp_path, original="o.parquet", kept_column="keep", images_root="images")
    prepare(workspace, progress=False, log=lambda m: None, workers=0)
    reasons = load_embeddings(load_workspace(tmp_path)).skipped.set_index("id")["reason"].to_dict()
    for number, (case, _, _, expected) in enumerate(IMAGE_CASES):
        got = reasons.get(f"i{number}", "")
        assert got.startswith(expected) if expected else got == "", (case, got)
