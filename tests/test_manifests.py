"""Loading manifests: formats, LAION/img2dataset column names, and one clear error per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.errors import AuditInputError
from analysis.manifests import load_manifest
from tests.helpers import write_manifest

ROWS = [
    {"id": "a", "caption": "A woman reading", "image": "a.png"},
    {"id": "b", "caption": "A man cooking", "image": "b.png"},
]


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_each_format_loads_to_the_same_rows(tmp_path: Path, suffix: str) -> None:
    frame = load_manifest(write_manifest(tmp_path / f"m{suffix}", ROWS))
    assert frame[["id", "caption", "image"]].to_dict("records") == ROWS


def test_laion_column_names_are_recognised(tmp_path: Path) -> None:
    path = write_manifest(
        tmp_path / "laion.parquet", [{"key": "000001", "URL": "http://x/1.jpg", "TEXT": "a dog", "punsafe": 0.2}]
    )
    frame = load_manifest(path)
    assert list(frame[["id", "url", "caption", "punsafe"]].iloc[0]) == ["000001", "http://x/1.jpg", "a dog", 0.2]


def test_integer_ids_become_strings(tmp_path: Path) -> None:
    frame = load_manifest(write_manifest(tmp_path / "m.csv", [{"id": 7, "caption": "x"}, {"id": 8, "caption": "y"}]))
    assert frame["id"].tolist() == ["7", "8"]


def test_null_captions_become_empty_and_nul_bytes_are_dropped(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.parquet", [{"id": "a", "caption": None}, {"id": "b", "caption": "a\x00b"}])
    assert load_manifest(path)["caption"].tolist() == ["", "ab"]


def test_csv_with_newlines_inside_captions(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text('id,caption\na,"line one\nline two"\nb,plain\n', encoding="utf-8")
    assert load_manifest(path)["caption"].tolist() == ["line one\nline two", "plain"]


def _error(path: Path, **kwargs) -> str:
    with pytest.raises(AuditInputError) as info:
        load_manifest(path, **kwargs)
    return str(info.value)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    assert "missing.parquet: manifest file not found" in _error(tmp_path / "missing.parquet")


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_bytes(b"")
    assert "is empty (0 bytes)" in _error(tmp_path / "e.csv")


def test_missing_caption_column_lists_the_columns(tmp_path: Path) -> None:
    message = _error(write_manifest(tmp_path / "m.csv", [{"id": "a", "text_en": "x"}]))
    assert "no 'caption' column" in message and "text_en" in message


def test_duplicate_ids_name_the_rows(tmp_path: Path) -> None:
    message = _error(write_manifest(tmp_path / "m.csv", [{"id": "a", "caption": "x"}, {"id": "a", "caption": "y"}]))
    assert "duplicate id 'a' in rows [1, 2]" in message


def test_empty_id_names_the_row(tmp_path: Path) -> None:
    message = _error(write_manifest(tmp_path / "m.jsonl", [{"id": "a", "caption": "x"}, {"id": None, "caption": "y"}]))
    assert "'id' is empty in row 2" in message


def test_manifest_with_header_only_is_empty(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("id,caption\n")
    assert "has no rows" in _error(tmp_path / "m.csv")


def test_invalid_json_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "a", "caption": "x"}) + "\n{not json\n")
    assert "line 2 is not valid JSON" in _error(tmp_path / "m.jsonl")


def test_non_utf8_csv_is_named(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_bytes("id,caption\na,caf\xe9\n".encode("latin-1"))
    message = _error(tmp_path / "m.csv")
    assert message.startswith(f"{tmp_path / 'm.csv'}: ") and "column 'caption' is not valid UTF-8 text" in message


def test_truncated_parquet_is_named(tmp_path: Path) -> None:
    good = write_manifest(tmp_path / "m.parquet", pd.DataFrame({"id": list("abcdef"), "caption": list("uvwxyz")}))
    good.write_bytes(good.read_bytes()[:-40])
    assert "cannot be read as PARQUET" in _error(good)


def test_unsupported_extension(tmp_path: Path) -> None:
    (tmp_path / "m.xlsx").write_bytes(b"PK")
    assert "unsupported manifest format '.xlsx'" in _error(tmp_path / "m.xlsx")


def test_ids_in_agrees_with_pandas_isin() -> None:
    import numpy as np
    import pandas as pd

    from analysis.manifests import ids_in

    reference = pd.Series(["a", "b", "c", "ü"], dtype="string")
    values = pd.Series(["c", "x", "", "a", "ü", "A"], dtype="string")
    assert ids_in(values, reference).tolist() == [True, False, False, True, True, False]
    assert np.array_equal(ids_in(values, reference), values.isin(reference).to_numpy())
    assert ids_in(pd.Series([], dtype="string"), reference).shape == (0,)


@pytest.mark.parametrize("separator", [",", "\t"])
def test_a_txt_manifest_is_read_as_csv_or_tsv_by_its_header(tmp_path: Path, separator: str) -> None:
    """Issue 51: caption datasets often ship as .txt files that are CSV; they were refused."""
    lines = [separator.join(ROWS[0])] + [separator.join(row.values()) for row in ROWS]
    (tmp_path / "captions.txt").write_text("\n".join(lines) + "\n")
    frame = load_manifest(tmp_path / "captions.txt")
    assert frame[["id", "caption", "image"]].to_dict("records") == ROWS


def test_a_txt_manifest_without_separators_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("just some prose\nand more\n")
    with pytest.raises(AuditInputError, match="neither commas nor tabs") as caught:
        load_manifest(tmp_path / "notes.txt")
    assert "notes.txt" in str(caught.value)


FLICKR_STYLE = "image,caption\n" + "".join(
    f"{image}.jpg,{caption}\n"
    for image, captions in (
        ("dog", ("a dog runs", "a brown dog", "dog on grass")),
        ("cat", ("a cat", "a sleeping cat")),
    )
    for caption in captions
)


def test_without_an_id_column_the_image_path_is_the_id(tmp_path: Path) -> None:
    (tmp_path / "captions.csv").write_text("image,caption\nimgs/a.jpg,first\nimgs/b.jpg,second\n")
    frame = load_manifest(tmp_path / "captions.csv")
    assert frame["id"].tolist() == ["imgs/a.jpg", "imgs/b.jpg"]


def test_several_captions_per_image_without_a_choice_name_the_option(tmp_path: Path) -> None:
    (tmp_path / "captions.txt").write_text(FLICKR_STYLE)
    with pytest.raises(AuditInputError) as caught:
        load_manifest(tmp_path / "captions.txt")
    message = str(caught.value)
    assert "'dog.jpg' in rows [1, 2, 3]" in message and "2 images with several rows" in message
    assert "--captions first" in message and "join" in message and "rows" in message


def test_captions_first_keeps_each_images_first_caption_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "captions.txt").write_text(FLICKR_STYLE)
    frame = load_manifest(tmp_path / "captions.txt", captions="first")
    assert frame[["id", "caption"]].values.tolist() == [["dog.jpg", "a dog runs"], ["cat.jpg", "a cat"]]
    assert frame["image"].tolist() == ["dog.jpg", "cat.jpg"]


def test_captions_join_makes_one_caption_of_all_of_an_images_captions(tmp_path: Path) -> None:
    (tmp_path / "captions.txt").write_text(FLICKR_STYLE)
    frame = load_manifest(tmp_path / "captions.txt", captions="join")
    assert frame["id"].tolist() == ["dog.jpg", "cat.jpg"]
    assert frame["caption"].tolist() == ["a dog runs\na brown dog\ndog on grass", "a cat\na sleeping cat"]


def test_captions_rows_keeps_every_caption_with_numbered_ids(tmp_path: Path) -> None:
    (tmp_path / "captions.txt").write_text(FLICKR_STYLE)
    frame = load_manifest(tmp_path / "captions.txt", captions="rows")
    assert frame["id"].tolist() == ["dog.jpg#1", "dog.jpg#2", "dog.jpg#3", "cat.jpg#1", "cat.jpg#2"]
    assert frame["image"].tolist() == ["dog.jpg"] * 3 + ["cat.jpg"] * 2


def test_an_unknown_captions_choice_is_named(tmp_path: Path) -> None:
    (tmp_path / "captions.txt").write_text(FLICKR_STYLE)
    with pytest.raises(AuditInputError, match="'all' is not one of first, join, rows"):
        load_manifest(tmp_path / "captions.txt", captions="all")
