"""Workspace config and the three ways of defining the filtered set, with their validation errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.errors import AuditInputError
from analysis.workspace import init_workspace, load_workspace
from tests.helpers import run_cli, write_manifest

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


def test_non_finite_threshold_is_rejected(tmp_path: Path, original: Path) -> None:
    assert "threshold of --score nsfw is 'nan'" in _init_error(
        tmp_path, original="original.parquet", scores=["nsfw=nsfw:nan"]
    )


def test_score_filter_below_threshold_removes_low_scores(tmp_path: Path, original: Path) -> None:
    """`:<T` is for scores that mark what to keep (CLIP similarity, aesthetics): low scores are removed."""
    workspace = init_workspace(tmp_path, original="original.parquet", scores=["low=nsfw:<0.6"])
    assert workspace.kept.tolist() == [True, False, True, False]
    assert 'removed_when = "<"' in (tmp_path / "audit.toml").read_text()


def test_explicit_at_least_is_the_default_direction(tmp_path: Path, original: Path) -> None:
    workspace = init_workspace(tmp_path, original="original.parquet", scores=["high=nsfw:>=0.6"])
    assert workspace.kept.tolist() == [False, True, False, True]


def test_scores_need_not_be_probabilities(tmp_path: Path) -> None:
    write_manifest(
        tmp_path / "o.parquet", [{"id": f"r{i}", "caption": "x", "aesthetic": v} for i, v in enumerate([3.5, 6.2, 8.0])]
    )
    workspace = init_workspace(tmp_path, original="o.parquet", scores=["aesthetics=aesthetic:<5"])
    assert workspace.kept.tolist() == [False, True, True]


def test_laion_preset_applies_the_published_thresholds_to_the_columns_present(tmp_path: Path) -> None:
    rows = [
        {"key": "1", "TEXT": "a", "similarity": 0.35, "punsafe": 0.1, "pwatermark": 0.1},  # kept
        {"key": "2", "TEXT": "b", "similarity": 0.20, "punsafe": 0.1, "pwatermark": 0.1},  # low similarity
        {"key": "3", "TEXT": "c", "similarity": 0.35, "punsafe": 0.5, "pwatermark": 0.1},  # unsafe at 0.5
        {"key": "4", "TEXT": "d", "similarity": 0.35, "punsafe": 0.1, "pwatermark": 0.8},  # watermark at 0.8
        {"key": "5", "TEXT": "e", "similarity": 0.28, "punsafe": 0.49, "pwatermark": 0.79},  # kept: on the edges
    ]
    write_manifest(tmp_path / "laion.parquet", rows)
    workspace = init_workspace(tmp_path, original="laion.parquet", laion=True)
    assert workspace.kept.tolist() == [True, False, False, False, True]
    assert {f.name for f in workspace.config.filtered.scores} == {"clip-similarity", "unsafe", "watermark"}


def test_no_filter_is_a_valid_audit_of_one_dataset(tmp_path: Path, original: Path) -> None:
    workspace = init_workspace(tmp_path, original="original.parquet")
    assert workspace.n_removed == 0 and workspace.removed_by == {}
    assert not workspace.config.filtered.defined


def test_paths_inside_the_workspace_are_stored_relative_to_it(tmp_path: Path, original: Path) -> None:
    init_workspace(tmp_path, original=original.resolve(), kept_column="keep")
    assert 'manifest = "original.parquet"' in (tmp_path / "audit.toml").read_text()


def test_paths_outside_the_workspace_are_stored_absolute(tmp_path: Path, original: Path) -> None:
    init_workspace(tmp_path / "ws", original=original.resolve(), kept_column="keep")
    assert f'manifest = "{original.resolve()}"' in (tmp_path / "ws" / "audit.toml").read_text()


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


def test_at_most_one_filter_definition_is_allowed(tmp_path: Path, original: Path) -> None:
    assert "at most one of" in _init_error(
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


def test_init_with_several_captions_per_image_audits_images_and_remembers_the_choice(tmp_path: Path) -> None:
    """Issue 51: COCO and Flickr ship `image,caption` rows, five per image; users wrote a script to make one row per
    image with an id. A filtered manifest keyed the same way (image paths) selects the same images."""
    rows = "".join(
        f"{image}.jpg,{caption}\n" for image in ("a", "b", "c") for caption in (f"{image} one", f"{image} two")
    )
    (tmp_path / "captions.txt").write_text("image,caption\n" + rows)
    (tmp_path / "kept.txt").write_text("image,caption\na.jpg,a one\na.jpg,a two\nc.jpg,c one\n")
    result = run_cli(
        "init", str(tmp_path), "--original", str(tmp_path / "captions.txt"), "--filtered", str(tmp_path / "kept.txt"),
        "--captions", "join",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    workspace = load_workspace(tmp_path)
    assert workspace.original["id"].tolist() == ["a.jpg", "b.jpg", "c.jpg"]
    assert workspace.original["caption"].iloc[1] == "b one\nb two"
    assert workspace.kept.tolist() == [True, False, True]
    assert 'captions = "join"' in (tmp_path / "audit.toml").read_text()


def test_init_without_a_captions_choice_names_it_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "captions.csv").write_text("image,caption\na.jpg,one\na.jpg,two\n")
    result = run_cli("init", str(tmp_path), "--original", str(tmp_path / "captions.csv"))
    assert result.returncode != 0
    assert "--captions first" in result.stderr and "captions.csv" in result.stderr
    assert not (tmp_path / "audit.toml").exists()
