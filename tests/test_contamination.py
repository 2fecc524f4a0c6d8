"""Evaluation-set contamination on the sample: its planted evaluation items (8 image copies, 3 exact and 2 misspelt
captions of training captions, in sample_truth.json) are found with their evidence, and its 27 distinct items are
not; the gate, the config and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run_cli, write_manifest


def truth(workspace: Path) -> dict:
    return json.loads((workspace / "sample_truth.json").read_text())


def contamination_json(workspace: Path, *args: str) -> dict:
    result = run_cli("contamination", str(workspace), "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_planted_image_copy_is_found_verified_on_pixels_and_no_distinct_image_is(sample_copy: Path) -> None:
    planted = truth(sample_copy)["eval_image_copies"]
    images = contamination_json(sample_copy)["sets"][0]["images"]
    found = {m["eval_id"] for m in images["matches"]}
    assert found == set(planted)
    assert images["n_matched"] == len(planted) and images["n_measured"] == 40
    for match in images["matches"]:
        assert match["inliers"] >= 10 and match["tier"] in ("copy", "byte-identical")
    sources = {(m["eval_id"], m["train_id"]) for m in images["matches"]}
    assert all((eval_id, source) in sources for eval_id, source in planted.items())


def test_exact_and_misspelt_captions_are_found_and_distinct_captions_are_not(sample_copy: Path) -> None:
    planted = truth(sample_copy)["eval_caption_copies"]
    captions = contamination_json(sample_copy)["sets"][0]["captions"]
    kinds = {}
    for match in captions["matches"]:
        kinds.setdefault(match["eval_id"], set()).add(match["kind"])
    assert set(kinds) == set(planted)
    for eval_id, copy in planted.items():
        assert copy["kind"] in kinds[eval_id]
        assert any(m["eval_id"] == eval_id and m["train_id"] == copy["train_id"] for m in captions["matches"])
    assert captions["n_matched"] == 5 and captions["n_with_caption"] == 40


def test_an_item_counts_once_however_many_training_copies_it_has(sample_copy: Path) -> None:
    one = contamination_json(sample_copy)["sets"][0]
    assert len(one["images"]["matches"]) > one["images"]["n_matched"]  # photo families: several copies each
    assert one["n_contaminated"] == 13 and one["n"] == 40
    low, high = one["images"]["ci95"]
    assert low < 8 / 40 < high


def test_a_copy_the_filters_removed_is_counted_in_the_pool_but_not_in_the_filtered_set(sample_copy: Path) -> None:
    planted = truth(sample_copy)["eval_image_copies"]
    original = pd.read_parquet(sample_copy / "original.parquet")
    matched = {m["train_id"] for m in contamination_json(sample_copy)["sets"][0]["images"]["matches"]}
    copies_of_first = {m for m in matched if m in set(original["id"])}
    removed = set(copies_of_first)  # remove every training copy of every planted image by a kept column
    original["kept"] = ~original["id"].isin(removed)
    write_manifest(sample_copy / "original.parquet", original)
    config = (sample_copy / "audit.toml").read_text()
    start = config.index("[filtered]")
    end = config.index("\n[", start + 1)
    (sample_copy / "audit.toml").write_text(config[:start] + '[filtered]\nkept_column = "kept"\n' + config[end:])
    one = contamination_json(sample_copy)["sets"][0]
    assert one["images"]["n_matched"] == len(planted)
    assert one["images"]["n_matched_kept"] == 0
    assert not any(m["train_kept"] for m in one["images"]["matches"])


def test_the_gate_fails_on_the_planted_copies_and_passes_a_limit_above_them(sample_copy: Path) -> None:
    failed = run_cli("check", str(sample_copy), "--max-contamination", "bench-eval=0")
    assert failed.returncode == 1, failed.stderr
    assert "FAIL contamination of bench-eval: measured 13.0000 (limit 0)" in failed.stdout
    passed = run_cli("check", str(sample_copy), "--max-contamination", "bench-eval=13")
    assert passed.returncode == 0, passed.stdout + passed.stderr


def test_a_gate_on_an_undeclared_set_names_it_and_the_declared_ones(sample_copy: Path) -> None:
    result = run_cli("check", str(sample_copy), "--max-contamination", "imagenet=0")
    assert result.returncode == 2
    assert "'imagenet'" in result.stderr and "bench-eval" in result.stderr and "Traceback" not in result.stderr


def test_an_eval_set_given_on_the_command_line_replaces_the_declared_ones(sample_copy: Path, tmp_path: Path) -> None:
    folder = tmp_path / "elsewhere"
    shutil.copytree(sample_copy / "eval", folder)
    frame = pd.read_parquet(folder / "eval.parquet").iloc[8:13]  # the caption copies only, images relative to it
    frame.to_parquet(folder / "captions.parquet")
    result = contamination_json(sample_copy, "--eval", f"mine={folder / 'captions.parquet'}")
    assert [one["name"] for one in result["sets"]] == ["mine"]
    assert result["sets"][0]["captions"]["n_matched"] == 5 and result["sets"][0]["images"]["n_matched"] == 0


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("no-equals-sign", "is not NAME=MANIFEST"),
        ("x=missing.parquet", "missing.parquet"),
    ],
)
def test_a_bad_eval_option_is_one_line_naming_it(sample_copy: Path, given: str, says: str) -> None:
    result = run_cli("contamination", str(sample_copy), "--eval", given)
    assert result.returncode == 2 and says in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_an_eval_manifest_without_images_or_captions_names_its_columns(sample_copy: Path, tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "ids.csv", [{"id": "a", "label": 1}])
    result = run_cli("contamination", str(sample_copy), "--eval", f"ids={path}")
    assert result.returncode == 2 and "neither an 'image' nor a 'caption'" in result.stderr


def test_an_eval_table_without_a_manifest_is_named_in_audit_toml(sample_copy: Path) -> None:
    config = sample_copy / "audit.toml"
    config.write_text(config.read_text().replace('manifest = "eval/eval.parquet"', 'path = "eval/eval.parquet"'))
    result = run_cli("contamination", str(sample_copy))
    assert result.returncode == 2 and "[[eval]] table 1" in result.stderr and "audit.toml" in result.stderr


def test_without_an_eval_set_the_command_says_how_to_declare_one(sample_copy: Path) -> None:
    config = sample_copy / "audit.toml"
    text = config.read_text()
    start = text.index("eval = [")
    config.write_text(text[:start] + text[text.index("]\n", start) + 2 :])
    result = run_cli("contamination", str(sample_copy))
    assert result.returncode == 2 and "--eval NAME=MANIFEST" in result.stderr


def test_the_out_file_holds_every_counted_match(sample_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "matches.parquet"
    payload = contamination_json(sample_copy, "--out", str(out))["sets"][0]
    table = pd.read_parquet(out)
    assert (table["what"] == "image").sum() == len(payload["images"]["matches"])
    assert (table["what"] == "caption").sum() == len(payload["captions"]["matches"])


def test_the_page_shows_the_sets_counts_and_each_image_match_with_its_evidence(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_dashboard_pages import open_page

    app = open_page("contamination", sample_copy, monkeypatch)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Items in the training set"] == "13 of 40"
    assert metrics["Images with a copy"] == "8 (20.0%)" and metrics["Captions found"] == "5 of 40"
    evidence = [i for i in app.get("image") if "matched keypoints" in str(i.proto)]
    assert len(evidence) == 6  # one per contaminated evaluation image (8), 6 on the first page
    app.toggle(key="c-same-scene").set_value(True).run()  # the sample plants copies only: the same 8 items
    assert not app.exception and {m.label: m.value for m in app.metric}["Images with a copy"] == "8 (20.0%)"


def test_the_pages_caption_section_puts_both_captions_side_by_side(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_dashboard_pages import open_page

    app = open_page("contamination", sample_copy, monkeypatch, section="Caption matches")
    table = app.dataframe[0].value
    assert sorted(table["evaluation id"]) == sorted(truth(sample_copy)["eval_caption_copies"])  # one row per caption
    misspelt = table[table["kind"] == "near"].iloc[0]
    assert misspelt["evaluation caption"] != misspelt["closest training caption"]
    assert (table["training copies"] >= 1).all() and (table["in filtered set"] <= table["training copies"]).all()


def test_without_an_eval_set_the_page_says_how_to_declare_one(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_dashboard_pages import open_page

    config = sample_copy / "audit.toml"
    text = config.read_text()
    start = text.index("eval = [")
    config.write_text(text[:start] + text[text.index("]\n", start) + 2 :])
    app = open_page("contamination", sample_copy, monkeypatch)
    assert "[[eval]]" in app.info[0].value


def test_a_verified_second_shot_of_the_same_scene_is_shown_but_not_counted() -> None:
    """As for regurgitation: pixels agree on a shared region but the scene differs, so it is not evaluation data."""
    import numpy as np

    from analysis.contamination.compute import ImageSearch, judge_candidates

    candidates = pd.DataFrame(
        {"eval_id": ["e1", "e2", "e3"], "train_id": ["t1", "t2", "t3"], "train_row": [0, 1, 2], "cosine": [0.9] * 3}
    )
    checks = pd.DataFrame(
        {
            "inliers": [40, 40, 4],
            "mirrored": [False] * 3,
            "coverage": np.array([0.5, 0.5, 0.5], dtype=np.float32),
            "tier": ["copy", "same-scene", None],
        }
    )
    search = ImageSearch(0.5, 5, True, 10, ("byte-identical", "copy"), "exact")
    judged, tiers = judge_candidates(candidates, checks, search)
    assert judged["counted"].tolist() == [True, False, False]
    assert tiers == {"byte-identical": 0, "copy": 1, "same-scene": 1}


def test_the_gate_judges_what_the_filters_kept(sample_copy: Path) -> None:
    """Copies the filters removed are not in what the model trains on: removing every image copy leaves the 5
    caption copies for the gate, while the counts over the pool stay 13."""
    matched = {m["train_id"] for m in contamination_json(sample_copy)["sets"][0]["images"]["matches"]}
    original = pd.read_parquet(sample_copy / "original.parquet")
    original["kept"] = ~original["id"].isin(matched)
    write_manifest(sample_copy / "original.parquet", original)
    config = (sample_copy / "audit.toml").read_text()
    start = config.index("[filtered]")
    (sample_copy / "audit.toml").write_text(
        config[:start] + '[filtered]\nkept_column = "kept"\n' + config[config.index("\n[", start + 1) :]
    )
    result = run_cli("check", str(sample_copy), "--max-contamination", "bench-eval=0", "--json")
    gate = json.loads(result.stdout)["gates"][0]
    assert gate["measured"] == 5 and gate["status"] == "fail"
    assert contamination_json(sample_copy)["sets"][0]["n_contaminated"] == 13


def test_the_reports_provenance_names_the_evaluation_set_it_was_measured_against(
    sample_copy: Path, tmp_path: Path
) -> None:
    import hashlib

    out = tmp_path / "report.html"
    assert run_cli("report", str(sample_copy), "--out", str(out)).returncode == 0
    html = out.read_text()
    digest = hashlib.sha256((sample_copy / "eval" / "eval.parquet").read_bytes()).hexdigest()
    assert "eval:bench-eval" in html and digest in html
    assert "Evaluation-set contamination" in html and "matched keypoints" in html
