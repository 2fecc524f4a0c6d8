"""The synthetic sample: deterministic, labelled, and built with the DALL·E 2 filter asymmetry."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from data_samples.build import build_sample


def _doc_frequency(captions: pd.Series, word: str) -> float:
    """Independent count: share of captions containing `word` as a whole word (plain regex, no project code)."""
    pattern = re.compile(rf"(?<![^\W_]){word}(?![^\W_])", re.IGNORECASE)
    return float(captions.map(lambda c: bool(pattern.search(c))).mean())


def test_filter_removes_more_woman_captions_than_man_captions(sample_dir: Path) -> None:
    original = pd.read_parquet(sample_dir / "original.parquet")
    kept = original[(original["sexual"] < 0.5) & (original["violence"] < 0.5)]
    change = {
        w: _doc_frequency(kept["caption"], w) / _doc_frequency(original["caption"], w) - 1 for w in ("woman", "man")
    }
    assert -0.16 < change["woman"] < -0.12
    assert -0.08 < change["man"] < -0.04
    assert len(kept) / len(original) == 0.95
    truth = json.loads((sample_dir / "sample_truth.json").read_text())
    assert abs(truth["expected_relative_change"]["woman"] - change["woman"]) < 1e-12


def test_sample_is_deterministic(sample_dir: Path, tmp_path: Path) -> None:
    again = build_sample(tmp_path / "again")
    for name in ("original.parquet", "generated.parquet", "sample_truth.json", "images/train/train-0123.png"):
        assert (again / name).read_bytes() == (sample_dir / name).read_bytes(), name


def test_sample_is_labelled_synthetic(sample_dir: Path) -> None:
    assert "SYNTHETIC" in (sample_dir / "README.txt").read_text()
    assert "synthetic = true" in (sample_dir / "audit.toml").read_text()


def test_sample_plants_clock_family_and_generated_copies(sample_dir: Path) -> None:
    truth = json.loads((sample_dir / "sample_truth.json").read_text())
    assert [len(truth["near_duplicate_families"][f"clock-{s}"]) for s in range(3)] == [12, 12, 12]
    assert 10 <= len(truth["generated_copies"]) <= 20
    assert len(truth["generated_copies"]) + len(truth["generated_novel"]) == 100
