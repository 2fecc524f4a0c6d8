"""The intervals and the judgeable rule (analysis/stats.py); their coverage is simulated in
bench/interval_coverage.py, these tests pin the behaviours that make them honest."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.stats import (
    MIN_JUDGEABLE,
    clustered_ratio_interval,
    judgeable,
    proportion_interval,
    relative_change_interval,
    reweighted_change_interval,
)


def test_proportion_interval_is_clopper_pearson() -> None:
    # R: binom.test(3, 10)$conf.int = 0.06673951 0.65245285
    low, high = proportion_interval(3, 10)
    assert low == pytest.approx(0.0667395, abs=1e-6) and high == pytest.approx(0.6524529, abs=1e-6)


def test_proportion_interval_reaches_the_bounds_at_zero_and_all() -> None:
    assert proportion_interval(0, 5)[0] == 0.0 and proportion_interval(5, 5)[1] == 1.0
    assert proportion_interval(0, 0) == (0.0, 1.0)


def test_a_term_seen_once_and_kept_spans_a_halving_to_an_increase() -> None:
    """The COCO case of issue 19: 'boy' in 1 of 79 captions, kept; the old bootstrap said +9.7% … +31.7%."""
    low, high = relative_change_interval(1, 0, 62, 16)
    assert low <= -0.5 and high > 0


def test_relative_change_interval_holds_the_estimate_at_large_counts() -> None:
    term_kept, term_removed, other_kept, other_removed = 900, 300, 8600, 200
    n_kept, n = term_kept + other_kept, 10_000
    estimate = (term_kept / n_kept) / ((term_kept + term_removed) / n) - 1
    low, high = relative_change_interval(term_kept, term_removed, other_kept, other_removed)
    assert low < estimate < high and high - low < 0.1


def test_nothing_removed_means_no_change() -> None:
    assert relative_change_interval(5, 0, 95, 0) == (0.0, 0.0)


def test_no_term_or_nothing_kept_gives_no_interval() -> None:
    assert relative_change_interval(0, 0, 90, 10) is None
    assert relative_change_interval(0, 5, 0, 95) is None


def test_reweighted_interval_is_wide_below_the_judgeable_count() -> None:
    few = reweighted_change_interval(np.array([1.0, 1.1]), 1, 900, 100, (0.05, 20.0))
    many = reweighted_change_interval(np.full(300, 1.05), 30, 9000, 1000, (0.05, 20.0))
    assert few[1] - few[0] > 5 * (many[1] - many[0])
    assert many[0] < 1.05 * (1 + (300 / 9000) / (330 / 10_000) - 1) - 1 < many[1]


def test_clustered_recall_interval_is_wider_than_treating_pairs_as_independent() -> None:
    """Images whose pairs are all found or all missed: 40 images × 10 pairs, 30 found — 40 units, not 400."""
    total = np.full(40, 10)
    found = np.where(np.arange(40) < 30, 10, 0)
    low, high = clustered_ratio_interval(found, total)
    independent = proportion_interval(300, 400)
    assert (high - low) > 1.8 * (independent[1] - independent[0])


def test_clustered_interval_below_the_judgeable_count_covers_clopper_pearson_over_images() -> None:
    low, high = clustered_ratio_interval(np.array([3]), np.array([3]))
    assert low <= proportion_interval(1, 1)[0] and high == 1.0


def test_judgeable_rule() -> None:
    assert not judgeable(MIN_JUDGEABLE - 1) and judgeable(MIN_JUDGEABLE)


def test_clustered_interval_when_every_pair_was_found_is_not_a_point() -> None:
    """51 images, all their pairs found: the bootstrap alone says [1, 1]; Clopper–Pearson over images 0.930 … 1."""
    low, high = clustered_ratio_interval(np.full(51, 5), np.full(51, 5))
    assert low == pytest.approx(0.025 ** (1 / 51), abs=1e-6) and high == 1.0
