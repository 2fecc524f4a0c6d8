"""Removal breakdowns and the what-if sweep against hand-computed numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.captions import build_index
from analysis.effects.terms import removal_by_terms
from analysis.removals.compute import filter_overlap, removal_summary, removed_page, score_histogram, threshold_sweep
from analysis.workspace import init_workspace, load_workspace
from tests.helpers import write_manifest


@pytest.fixture()
def small(tmp_path: Path):
    rows = [
        ("a woman", 0.9, 0.1),
        ("a woman", 0.2, 0.7),
        ("a woman", 0.1, 0.1),
        ("a man", 0.6, 0.9),
        ("a man", 0.1, 0.1),
        ("a man", 0.1, 0.2),
        ("a dog", 0.3, 0.1),
        ("a cat", 0.1, 0.1),
    ]
    write_manifest(
        tmp_path / "o.parquet", [{"id": f"r{i}", "caption": c, "sex": s, "vio": v} for i, (c, s, v) in enumerate(rows)]
    )
    return init_workspace(tmp_path, original="o.parquet", scores=["sex=sex:0.5", "vio=vio:0.5"])


def test_summary_counts_per_filter_and_alone(small) -> None:
    summary = removal_summary(small)
    assert (summary.n_removed, summary.n_kept) == (3, 5)
    by_name = {f.name: f for f in summary.filters}
    assert (by_name["sex"].n_removed, by_name["sex"].n_only_this) == (2, 1)
    assert (by_name["vio"].n_removed, by_name["vio"].n_only_this) == (2, 1)
    assert filter_overlap(small).loc["sex", "vio"] == 1


def test_removal_rate_by_term(small) -> None:
    table = removal_by_terms(build_index(small.original["caption"]), small.kept, ["woman", "man", "zebra"])
    rates = table.set_index("name")["removal_rate"]
    assert rates["woman"] == pytest.approx(2 / 3) and rates["man"] == pytest.approx(1 / 3)
    assert np.isnan(rates["zebra"])
    assert rates["all captions"] == pytest.approx(3 / 8)


def test_sweep_at_the_configured_threshold_equals_the_filter(small) -> None:
    index = build_index(small.original["caption"])
    sweep = threshold_sweep(small, index, "sex", ["woman"], thresholds=np.array([0.5, 0.95, 0.15]))
    assert sweep["n_removed"].tolist() == [3, 2, 4]  # at 0.15: sex ≥ 0.15 is rows 0,1,3,6; vio adds none
    # at 0.5: woman kept 1 of 3, n_kept 5 → (1/5)/(3/8) − 1
    assert sweep["change_woman"].iloc[0] == pytest.approx((1 / 5) / (3 / 8) - 1)


def test_sweep_matches_brute_force_on_the_sample(sample_dir: Path) -> None:
    workspace = load_workspace(sample_dir)
    index = build_index(workspace.original["caption"])
    thresholds = np.array([0.2, 0.35, 0.5, 0.8])
    sweep = threshold_sweep(workspace, index, "sexual", ["woman"], thresholds)
    woman = index.docs_containing(["woman"])
    for threshold, row in zip(thresholds, sweep.itertuples()):
        removed = (workspace.original["sexual"].to_numpy() >= threshold) | workspace.removed_by["violence"]
        kept = ~removed
        assert row.n_removed == removed.sum()
        assert row.change_woman == pytest.approx((woman & kept).sum() / kept.sum() / woman.mean() - 1)


def test_score_histogram_counts_every_row(small) -> None:
    hist = score_histogram(small.original["sex"].to_numpy(), small.kept, bins=10)
    assert hist["kept"].sum() + hist["removed"].sum() == 8


def test_removed_page_filters_sorts_and_pages(small) -> None:
    index = build_index(small.original["caption"])
    frame, total = removed_page(small, index=index, sort_by="sex", page_size=2)
    assert total == 3 and frame["id"].tolist() == ["r0", "r3"]
    frame, total = removed_page(small, index=index, words=["man"])
    assert total == 1 and frame["removed_by"].tolist() == ["sex, vio"]
    frame, total = removed_page(small, index=index, filter_name="vio", sort_by="sex", page=1, page_size=1)
    assert total == 2 and frame["id"].tolist() == ["r1"]
    assert isinstance(frame, pd.DataFrame)
