"""Workspace config and the three ways of defining the filtered set, with their validation errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.errors import AuditInputError
from analysis.workspace import init_workspace, load_workspace
from tests.helpers import write_manifest

ORIGINAL = [
    {"id": f"r{i}", "caption": c, "image": f"img/{i}.png", "nsfw": s, "keep": k}
    for i, (c, s, k) in enumerate(
        [("a woman", 0.9, False), ("a man", 0.1, True), ("a dog", 0.6, False), ("a cat", 0.2, True)]
    )
]


@pytest.fixture()
def original(tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "original.parquet", ORIGINAL)


def _init_error(tmp_path: Path, **kwargs) -> str:
    with pytest.raises(AuditInputError) as info:
        init_workspace(tmp_path, **kwargs)
    return str(info.value)


def test_score_filters_remove_rows_at_or_above_threshold(tmp_path: Path, original: Path) -> None:
    workspace = init_workspace(tmp_path, original="original.parquet", scores=["nsfw=nsfw:0.6"])
    assert workspace.kept.tolist() == [False, True, False, True]
    assert workspace.removed_by["nsfw"].tolist() == [True, False, True, False]


def test_kept_column_defines_the_filtered_set(tmp_path: Path, original: Path) -> None:
    assert init_workspace(tmp_path, original="original.parquet", kept_column="keep").kept.tolist() == [
        False,
        True,
        False,
        True,
    ]


def test_filtered_manifest_defines_the_filtered_set(tmp_path: Path, original: Path) -> None:
    write_manifest(tmp_path / "kept.csv", [{"id": "r1"}, {"id": "r3"}])
    workspace = init_workspace(tmp_path, original="original.parquet", filtered="kept.csv")
    assert workspace.n_kept == 2 and workspace.n_removed == 2


def test_filtered_ids_must_be_in_the_original(tmp_path: Path, original: Path) -> None:
    write_manifest(tmp_path / "kept.csv", [{"id": "r1"}, {"id": "zzz"}])
    message = _init_error(tmp_path, original="original.parquet", filtered="kept.csv")
    assert "id 'zzz' in row 2 is not in the original manifest" in message
    assert not (tmp_path / "audit.toml").exists(), "a failed init must not leave a config behind"


def test_non_numeric_score_names_column_and_row(tmp_path: Path) -> None:
    rows = [dict(r) for r in ORIGINAL]
    rows[2]["nsfw"] = "high"
    write_manifest(tmp_path / "o.csv", rows)
    message = _init_error(tmp_path, original="o.csv", scores=["nsfw=nsfw:0.5"])
    assert "score column 'nsfw'" in message and "row 3" in message


def test_threshold_out_of_range_is_rejected(tmp_path: Path, original: Path) -> None:
    assert "outside [0, 1]" in _init_error(tmp_path, original="original.parquet", scores=["nsfw=nsfw:1.5"])


def test_unknown_score_column(tmp_path: Path, original: Path) -> None:
    assert "score column 'violence' not found" in _init_error(
        tmp_path, original="original.parquet", scores=["v=violence:0.5"]
    )


def test_image_path_escaping_the_root_is_rejected(tmp_path: Path) -> None:
    rows = [dict(r) for r in ORIGINAL]
    rows[1]["image"] = "../../etc/passwd"
    write_manifest(tmp_path / "o.parquet", rows)
    message = _init_error(tmp_path, original="o.parquet", kept_column="keep")
    assert "escapes the images root" in message and "row 2" in message


def test_absolute_image_path_is_rejected(tmp_path: Path) -> None:
    rows = [dict(r) for r in ORIGINAL]
    rows[0]["image"] = "/etc/passwd"
    write_manifest(tmp_path / "o.parquet", rows)
    assert "escapes the images root" in _init_error(tmp_path, original="o.parquet", kept_column="keep")


def test_exactly_one_filter_definition_is_required(tmp_path: Path, original: Path) -> None:
    assert "exactly one of" in _init_error(
        tmp_path, original="original.parquet", kept_column="keep", scores=["n=nsfw:0.5"]
    )


def test_caption_only_manifest_without_images_loads(tmp_path: Path) -> None:
    write_manifest(
        tmp_path / "laion.parquet",
        [{"key": "1", "TEXT": "a woman", "punsafe": 0.9}, {"key": "2", "TEXT": "a man", "punsafe": 0.1}],
    )
    workspace = init_workspace(tmp_path, original="laion.parquet", scores=["unsafe=punsafe:0.5"])
    assert workspace.n_removed == 1 and not workspace.has_images


def test_unknown_config_key_is_named(tmp_path: Path, original: Path) -> None:
    init_workspace(tmp_path, original="original.parquet", kept_column="keep")
    config = tmp_path / "audit.toml"
    config.write_text(config.read_text() + "\n[original.extra]\n")
    with pytest.raises(AuditInputError, match=r"unknown key\(s\) \['extra'\] in \[original\]"):
        load_workspace(tmp_path)


def test_generated_source_ids_must_exist(tmp_path: Path, original: Path) -> None:
    write_manifest(tmp_path / "gen.csv", [{"id": "g1", "image": "g1.png", "prompt": "x", "source_id": "nope"}])
    assert "source_id 'nope'" in _init_error(
        tmp_path, original="original.parquet", kept_column="keep", generated="gen.csv"
    )


def test_sample_workspace_loads_with_its_counts(sample_dir: Path) -> None:
    workspace = load_workspace(sample_dir)
    assert (workspace.n_original, workspace.n_removed, workspace.n_generated) == (1000, 50, 100)
    assert workspace.config.synthetic
    assert np.array_equal(workspace.kept, ~(workspace.removed_by["sexual"] | workspace.removed_by["violence"]))
