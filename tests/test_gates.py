"""`pretrain-audit check` never passes on what it did not see: unreadable inputs, too few observations, or no
filter. Exit status: 0 pass, 1 fail or unmeasured, 3 insufficient data (docs/cli.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run_cli


@pytest.fixture(scope="module")
def emptied_copies(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample with its 15 planted copies (gen-000 … gen-014) replaced by empty files, prepared afresh. The
    original set's cached embeddings and hashes are kept (its images are untouched); the generated set's are not
    (its cache is keyed by ids and paths, which did not change), so `prepare` reads the emptied files again.
    The regurgitation results the dashboard's warm-up stored in the sample come along and must not be served:
    results are keyed on what the images were (`EmbeddingSet.results_key`), so these tests fail if they are."""
    workspace = tmp_path_factory.mktemp("gates") / "emptied"

    def stale(directory: str, names: list[str]) -> set[str]:
        in_cache = ".audit-cache" in Path(directory).parts
        return {n for n in names if n.startswith("reviews.sqlite") or (in_cache and n.startswith("generated-"))}

    shutil.copytree(sample_dir, workspace, ignore=stale)
    generated = pd.read_parquet(workspace / "generated.parquet")
    for image in generated.loc[generated["id"].isin([f"gen-{i:03d}" for i in range(15)]), "image"]:
        (workspace / "images" / image).write_bytes(b"")
    prepared = run_cli("prepare", str(workspace), "--no-progress")
    assert prepared.returncode == 0, prepared.stderr
    assert "original: " in prepared.stderr and "embeddings already cached" in prepared.stderr, prepared.stderr
    return workspace


def test_unreadable_samples_make_the_regurgitation_gate_unmeasured(emptied_copies: Path) -> None:
    workspace = emptied_copies
    result = run_cli("check", str(workspace), "--max-regurgitation-rate", "0.01", "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    (gate,) = json.loads(result.stdout)["gates"]
    assert gate["status"] == "unmeasured" and not gate["passed"]
    assert gate["unmeasured"] == "15 of 100 generated samples could not be read"
    assert "0 of 85 measured samples" in gate["detail"]


def test_allow_unmeasured_judges_on_what_was_read(emptied_copies: Path) -> None:
    workspace = emptied_copies
    result = run_cli("check", str(workspace), "--max-regurgitation-rate", "0.01", "--allow-unmeasured")
    assert result.returncode == 0, result.stdout
    assert "unmeasured: 15 of 100 generated samples could not be read" in result.stdout
    text = run_cli("regurgitation", str(workspace)).stdout
    assert "of 85 measured generated samples" in text and "15 of 100 generated samples could not be read" in text


def test_a_term_with_too_few_captions_is_insufficient_data_not_a_pass(sample_copy: Path) -> None:
    result = run_cli("check", str(sample_copy), "--max-term-shift", "dog=0.5", "--json")
    assert result.returncode == 3, result.stdout + result.stderr
    payload = json.loads(result.stdout)
    assert payload["status"] == "insufficient data" and payload["gates"][0]["judgeable"] is False


def test_a_failing_gate_outranks_insufficient_data(sample_copy: Path) -> None:
    result = run_cli("check", str(sample_copy), "--max-term-shift", "dog=0.5", "--max-term-shift", "woman=0.01")
    assert result.returncode == 1
    assert "INSUFFICIENT DATA |shift of 'dog'|" in result.stdout and "FAIL |shift of 'woman'|" in result.stdout


def test_term_gates_without_a_filter_are_unmeasured(tmp_path: Path) -> None:
    pd.DataFrame({"id": [f"r{i}" for i in range(40)], "caption": ["a woman"] * 40}).to_parquet(tmp_path / "o.parquet")
    assert run_cli("init", str(tmp_path), "--original", "o.parquet", cwd=tmp_path).returncode == 0
    result = run_cli("check", str(tmp_path), "--max-term-shift", "woman=0.05", "--max-removed-fraction", "0.1")
    assert result.returncode == 1
    assert result.stdout.count("no filter defined in this workspace") == 2
