"""Repeated captions (`caption-repeats`): which images share their caption, before and after filtering."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.caption_repeats.compute import repeated_captions
from tests.helpers import run_cli


def shares(captions: list[str], kept: list[bool], min_images: int = 2):
    return repeated_captions(pd.Series(captions), np.array(kept), min_images, top=10)


def test_captions_that_differ_only_in_case_punctuation_and_spacing_are_one_caption() -> None:
    result = shares(["A dog.", "a  dog", "A DOG!", "a cat"], [True] * 4)
    assert result.original.n_repeated == 3 and result.original.n_with_caption == 4
    assert result.top.to_dict("records") == [{"caption": "A dog.", "images": 3, "kept": 3}]


def test_an_empty_caption_repeats_nothing_and_is_not_counted() -> None:
    result = shares(["", "", " ", "a cat"], [True] * 4)
    assert (result.original.n_with_caption, result.original.n_repeated) == (1, 0)


def test_after_filtering_repetition_is_counted_within_the_filtered_set() -> None:
    """Two of three copies removed: the survivor no longer shares its caption with anything a model sees."""
    result = shares(["a dog", "a dog", "a dog", "a cat", "a cat"], [True, False, False, True, True])
    assert (result.original.n_repeated, result.original.n_with_caption) == (5, 5)
    assert (result.filtered.n_repeated, result.filtered.n_with_caption) == (2, 3)
    assert result.top.set_index("caption").to_dict("index") == {
        "a dog": {"images": 3, "kept": 1},
        "a cat": {"images": 2, "kept": 2},
    }


def test_a_caption_counts_as_repeated_from_min_images_on() -> None:
    captions = ["a dog", "a dog", "a cat", "a cat", "a cat"]
    assert shares(captions, [True] * 5, min_images=3).original.n_repeated == 3
    assert shares(captions, [True] * 5, min_images=2).original.n_repeated == 5


def test_the_command_prints_the_shares_honours_its_setting_and_writes_the_table(sample_copy: Path) -> None:
    out = sample_copy / "repeats.csv"
    result = run_cli("caption-repeats", str(sample_copy), "--json", "--out", str(out))
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    original = payload["original"]
    assert 0 < original["n_repeated"] <= original["n_with_caption"]
    assert pd.read_csv(out).to_dict("records") == payload["top"]
    (sample_copy / "audit.toml").write_text(
        (sample_copy / "audit.toml").read_text() + "\n[caption-repeats]\nmin_images = 1000000\n", encoding="utf-8"
    )
    stricter = json.loads(run_cli("caption-repeats", str(sample_copy), "--json").stdout)
    assert stricter["min_images"] == 1000000 and stricter["original"]["n_repeated"] == 0
