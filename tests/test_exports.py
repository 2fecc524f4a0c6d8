"""`pretrain-audit export`: lists that others holding the dataset can act on without this tool (issue 49). The
removal list, read on its own, must turn the original manifest into exactly the audited filtered set, and every row
must say why it was removed; the keep-list must be what img2dataset reads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.workspace import load_workspace
from tests.helpers import run_cli


def export(workspace: Path, what: str, out: Path, *options: str) -> pd.DataFrame:
    result = run_cli("export", str(workspace), "--what", what, "--out", str(out), *options)
    assert result.returncode == 0, result.stderr
    return pd.read_csv(out, keep_default_na=False) if out.suffix == ".csv" else pd.read_parquet(out)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_removal_list_reapplied_to_the_original_manifest_gives_back_the_filtered_set(
    sample_dir: Path, tmp_path: Path, suffix: str
) -> None:
    """Re-LAION's use: someone with the original manifest and only our file removes the listed ids."""
    removals = export(sample_dir, "removals", tmp_path / f"removals{suffix}")
    original = pd.read_parquet(sample_dir / "original.parquet")
    cleaned = original[~original["id"].astype(str).isin(removals["id"].astype(str))]
    workspace = load_workspace(sample_dir)
    audited = set(workspace.original["id"].astype(str)[workspace.kept])
    assert set(cleaned["id"].astype(str)) == audited
    assert len(removals) == workspace.n_removed == 50 and removals["id"].is_unique


def test_each_removed_item_names_every_filter_that_removed_it_with_its_score(sample_dir: Path, tmp_path: Path) -> None:
    removals = export(sample_dir, "removals", tmp_path / "removals.csv").set_index("id")
    scores = pd.read_parquet(sample_dir / "original.parquet").set_index("id").loc[removals.index]
    for name in ("sexual", "violence"):
        removed = scores[name] >= 0.5  # the sample's [[filtered.scores]] rules
        assert (removals[f"filter:{name}"].astype(str) == removed.astype(str)).all(), name
        for identifier in removed[removed].index:
            text = f"{name}: {scores.loc[identifier, name]:.4g} (removed when '{name}' ≥ 0.5)"
            assert text in removals.loc[identifier, "reasons"], (identifier, removals.loc[identifier, "reasons"])
    both = removals[removals["reasons"].str.contains("; ")]
    assert len(both) and both["filter:sexual"].astype(str).eq("True").all()  # two reasons: both columns set
    assert both["filter:violence"].astype(str).eq("True").all()


def test_with_duplicates_the_list_also_names_what_dedups_keep_list_drops(sample_copy: Path, tmp_path: Path) -> None:
    """`--with-duplicates`: the images `dedup --out` marks keep = false join the list, each naming its group and the
    copy kept there, so the list re-applied gives the filtered set without its duplicates."""
    assert run_cli("dedup", str(sample_copy), "--out", str(tmp_path / "dedup.parquet")).returncode == 0
    dedup = pd.read_parquet(tmp_path / "dedup.parquet")
    removals = export(sample_copy, "removals", tmp_path / "removals.parquet", "--with-duplicates")
    workspace = load_workspace(sample_copy)
    filtered_out = set(workspace.original["id"].astype(str)[~workspace.kept])
    dropped = set(dedup.loc[~dedup["keep"], "id"].astype(str))
    assert set(removals["id"]) == filtered_out | dropped and len(dropped) == 105
    keepers = dedup[dedup["keep"] & dedup["group_id"].notna()].set_index("group_id")["id"]
    for row in removals[removals["filter:duplicates"]].itertuples():
        kept = keepers[row.duplicate_group]
        assert row.duplicate_kept == kept and f"duplicate: group {row.duplicate_group}, kept {kept}" in row.reasons


def test_with_contamination_the_list_also_names_each_training_copy_of_evaluation_data(
    sample_copy: Path, tmp_path: Path
) -> None:
    """`--with-contamination`: every training item holding a copy of an [[eval]] item's image or caption joins the
    list, naming the item and the evidence, so a holder can drop the evaluation data from the pool."""
    matches = json.loads(run_cli("contamination", str(sample_copy), "--json").stdout)["sets"][0]
    removals = export(sample_copy, "removals", tmp_path / "removals.parquet", "--with-contamination").set_index("id")
    holders = {m["train_id"] for m in matches["images"]["matches"] + matches["captions"]["matches"]}
    flagged = set(removals.index[removals["filter:contamination"]])
    assert flagged == holders
    workspace = load_workspace(sample_copy)
    assert set(removals.index) == set(workspace.original["id"].astype(str)[~workspace.kept]) | holders
    image = matches["images"]["matches"][0]
    row = removals.loc[image["train_id"]]
    assert f"contamination: image of bench-eval {image['eval_id']} ({image['inliers']} inliers)" in row["reasons"]
    assert f"bench-eval:{image['eval_id']}" in row["contaminates"]


def test_the_removal_lists_hashes_are_those_of_the_image_files(sample_dir: Path, tmp_path: Path) -> None:
    """What lets a holder whose ids differ find the same files: the sha256 of the bytes and the PDQ hash."""
    removals = export(sample_dir, "removals", tmp_path / "removals.parquet")
    images_root = load_workspace(sample_dir).config.images_root
    for row in removals.head(5).itertuples():
        assert row.sha256 == hashlib.sha256((images_root / row.image).read_bytes()).hexdigest()
    assert removals["pdq"].str.fullmatch(r"[0-9a-f]{64}").all()


def test_the_keep_list_is_what_img2dataset_reads(sample_dir: Path, tmp_path: Path) -> None:
    """img2dataset's --url_col url --caption_col caption --save_additional_columns '["key"]': the sample's images
    have no URL, so each is its file's file:// URI (img2dataset downloads those too)."""
    keep = export(sample_dir, "keep", tmp_path / "keep.parquet")
    workspace = load_workspace(sample_dir)
    assert list(keep.columns) == ["url", "caption", "key"]
    assert list(keep["key"]) == list(workspace.original["id"].astype(str)[workspace.kept])
    assert list(keep["caption"]) == list(workspace.original["caption"][workspace.kept])
    first = keep["url"].iloc[0]
    assert first.startswith("file://") and Path(first.removeprefix("file://")).is_file()


def test_the_manifests_urls_are_kept_when_it_has_them(tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text("id,caption,url,keep\na,a red car,https://example.org/a.jpg,True\nb,a dog,,False\n")
    assert run_cli("init", str(tmp_path), "--original", "o.csv", "--kept-column", "keep", cwd=tmp_path).returncode == 0
    keep = export(tmp_path, "keep", tmp_path / "keep.csv")
    removals = export(tmp_path, "removals", tmp_path / "removals.csv")
    assert keep.to_dict("records") == [{"url": "https://example.org/a.jpg", "caption": "a red car", "key": "a"}]
    assert list(removals["id"]) == ["b"] and list(removals["sha256"]) == [""]  # no image: nothing to hash


def test_an_export_in_an_unknown_format_is_one_clear_error_and_writes_nothing(sample_dir: Path, tmp_path: Path) -> None:
    result = run_cli("export", str(sample_dir), "--what", "removals", "--out", str(tmp_path / "removals.xlsx"))
    assert result.returncode == 2
    assert "cannot write an export as .xlsx" in result.stderr and "name the file .csv or .parquet" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_workspace_without_a_filter_has_no_removal_list_to_export(tmp_path: Path) -> None:
    (tmp_path / "o.csv").write_text("id,caption\na,a red car\n")
    assert run_cli("init", str(tmp_path), "--original", "o.csv", cwd=tmp_path).returncode == 0
    result = run_cli("export", str(tmp_path), "--what", "removals", "--out", str(tmp_path / "r.csv"))
    assert result.returncode == 2 and "defines no filter, so nothing was removed" in result.stderr
    assert not (tmp_path / "r.csv").exists()


def test_export_json_says_what_was_written(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "keep.csv"
    result = run_cli("export", str(sample_dir), "--what", "keep", "--out", str(out), "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"export": "keep", "out": str(out), "rows": 950}


def test_the_croissant_description_passes_mlcroissant_and_names_every_mitigation(
    sample_copy: Path, tmp_path: Path
) -> None:
    """MLCommons' own reader validates the file (a ValidationError on any error) and reads the records it points
    to; the RAI fields carry each filter's rule and the measured findings with their intervals, as the report."""
    import mlcroissant as mlc

    out = tmp_path / "audit" / "croissant.json"
    result = run_cli("export", str(sample_copy), "--what", "croissant", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"export": "croissant", "out": str(out)}
    dataset = mlc.Dataset(jsonld=str(out))
    first = next(iter(dataset.records("items")))
    assert first["items/id"] == b"train-0000" and first["items/caption"]
    document = json.loads(out.read_text())
    assert (
        document["distribution"][0]["sha256"]
        == hashlib.sha256((sample_copy / "original.parquet").read_bytes()).hexdigest()
    )
    protocol = " ".join(document["rai:dataPreprocessingProtocol"])
    for mitigation in ("removed when 'sexual' ≥ 0.5", "removed when 'violence' ≥ 0.5", "Removals: 50 of 1,000"):
        assert mitigation in protocol, mitigation
    assert "Duplicates: dedup removes" in protocol
    biases = " ".join(document["rai:dataBiases"])
    assert "“woman” fell 14.0%" in biases and "95% CI" in biases
    assert document["rai:dataSocialImpact"][0].startswith("Regurgitation: ")
    assert any("Known-bad hashes: not measured" in line for line in document["rai:dataLimitations"])
    assert document["rai:dataLimitations"][0].startswith(
        "Evaluation-set contamination: bench-eval: 13 of 40 evaluation items found in the training set"
    )


def test_a_croissant_description_must_be_json(sample_dir: Path, tmp_path: Path) -> None:
    result = run_cli("export", str(sample_dir), "--what", "croissant", "--out", str(tmp_path / "c.csv"))
    assert result.returncode == 2 and "name the file .json" in result.stderr
    assert not (tmp_path / "c.csv").exists()
