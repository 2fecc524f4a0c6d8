"""`pretrain-audit cache DIR [--clean NAME]`: what is cached, and removing it without touching what cannot be
derived again (verdicts, labels, score files)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import run_cli


def listed(workspace: Path) -> dict[str, dict]:
    result = run_cli("cache", str(workspace), "--json")
    assert result.returncode == 0, result.stderr
    return {kind["name"]: kind for kind in json.loads(result.stdout)["kinds"]}


def test_the_list_names_each_kind_with_its_files_and_size(sample_copy: Path) -> None:
    kinds = listed(sample_copy)
    assert {"embeddings", "pdq", "features", "dedup", "regurgitation", "contamination"} <= set(kinds)
    folder = sample_copy / ".audit-cache" / "embeddings"
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert kinds["embeddings"]["files"] == len(files)
    assert kinds["embeddings"]["bytes"] == sum(p.stat().st_size for p in files)
    text = run_cli("cache", str(sample_copy)).stdout
    assert "embeddings" in text and "to recompute" in text and "--clean NAME" in text


def test_cleaning_one_kind_removes_it_alone_and_it_is_computed_again_the_same(sample_copy: Path) -> None:
    before = json.loads(run_cli("regurgitation", str(sample_copy), "--json").stdout)
    assert (
        run_cli(
            "verdicts", "add", str(sample_copy), "--kind", "regurgitation", "gen-001=copy", "--reviewer", "ann"
        ).returncode
        == 0
    )
    verdicts = (sample_copy / "reviews.sqlite").read_bytes()
    result = run_cli("cache", str(sample_copy), "--clean", "regurgitation")
    assert result.returncode == 0, result.stderr
    kinds = listed(sample_copy)
    assert "regurgitation" not in kinds and {"embeddings", "dedup", "features"} <= set(kinds)
    assert (sample_copy / "reviews.sqlite").read_bytes() == verdicts
    assert json.loads(run_cli("regurgitation", str(sample_copy), "--json").stdout) == before


def test_an_unknown_kind_removes_nothing_and_names_the_kinds_there_are(sample_copy: Path) -> None:
    before = listed(sample_copy)
    result = run_cli("cache", str(sample_copy), "--clean", "dedup", "--clean", "embedings")
    assert result.returncode == 2 and "'embedings'" in result.stderr and "embeddings" in result.stderr
    assert listed(sample_copy) == before


def test_cleaning_all_empties_the_cache_and_keeps_labels_verdicts_and_scores(sample_copy: Path) -> None:
    kept = {
        "reviews.sqlite": b"verdicts",
        "filters/animals/labels.sqlite": b"labels",
        "scores/open-nsfw.parquet": b"scores",
    }
    for name, content in kept.items():
        (sample_copy / name).parent.mkdir(parents=True, exist_ok=True)
        (sample_copy / name).write_bytes(content)
    result = run_cli("cache", str(sample_copy), "--clean", "all", "--json")
    assert result.returncode == 0, result.stderr
    assert {kind["name"] for kind in json.loads(result.stdout)["removed"]} >= {"embeddings", "features"}
    assert listed(sample_copy) == {}
    assert all((sample_copy / name).read_bytes() == content for name, content in kept.items())


def test_cleaning_while_prepare_runs_is_refused(sample_copy: Path) -> None:
    from filelock import FileLock

    before = listed(sample_copy)
    with FileLock(str(sample_copy / ".audit-cache" / "prepare.lock")):
        result = run_cli("cache", str(sample_copy), "--clean", "embeddings")
    assert result.returncode == 2 and "`prepare` is running" in result.stderr
    assert listed(sample_copy) == before
