"""Term shifts, intervals, top-shifted words, nPMI and reweighting, against hand counts and the sample's truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.bias.cached import audited_words
from analysis.bias.compute import npmi_table, parse_terms, top_shifted_words
from analysis.bias.reweight import caption_features, fit_weights, removed_without_kept_neighbour
from analysis.captions import build_index
from analysis.effects.terms import bias_report, shift_for_mask, term_shifts
from analysis.errors import AuditInputError
from analysis.workspace import load_workspace

CAPTIONS = ["A woman's hat", "a man", "woman-owned cafe", "a dog", "Woman and man", "a man with a dog"]
KEPT = np.array([False, True, True, True, True, False])


def test_relative_change_matches_hand_count() -> None:
    (woman,) = term_shifts(build_index(CAPTIONS), KEPT, ["Woman"])
    # original: 3 of 6 captions; filtered (4 kept): 2 of 4 → (2/4)/(3/6) − 1 = 0
    assert (woman.original_count, woman.filtered_count) == (3, 2)
    assert woman.relative_change == pytest.approx(0.0)
    (man,) = term_shifts(build_index(CAPTIONS), KEPT, ["man"])
    assert man.relative_change == pytest.approx((2 / 4) / (3 / 6) - 1)
    assert man.removal_rate == pytest.approx(1 / 3)


def test_absent_term_has_no_change() -> None:
    (shift,) = term_shifts(build_index(CAPTIONS), KEPT, ["zebra"])
    assert shift.original_count == 0 and shift.relative_change is None and shift.ci95 is None


def test_multi_word_term_is_a_user_error() -> None:
    with pytest.raises(AuditInputError, match="not a single word"):
        parse_terms("woman,young woman")


def test_interval_covers_the_true_change_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(1)
    n, p_term, keep_term, keep_other = 4000, 0.1, 0.8, 0.95
    truth = (p_term * keep_term / (p_term * keep_term + (1 - p_term) * keep_other)) / p_term - 1
    covered = 0
    trials = 200
    for trial in range(trials):
        contains = rng.random(n) < p_term
        kept = np.where(contains, rng.random(n) < keep_term, rng.random(n) < keep_other)
        low, high = shift_for_mask("t", ("t",), contains, kept, seed=trial).ci95
        covered += low <= truth <= high
    assert 0.90 <= covered / trials <= 0.99


def test_sample_reproduces_the_planted_shifts_exactly(sample_dir: Path) -> None:
    workspace = load_workspace(sample_dir)
    truth = json.loads((sample_dir / "sample_truth.json").read_text())["expected_relative_change"]
    report = bias_report(
        build_index(workspace.original["caption"]), workspace.kept, ["woman", "man"], workspace.config.groups
    )
    changes = {t.name: t.relative_change for t in report.terms}
    assert changes["woman"] == pytest.approx(truth["woman"], abs=1e-12)
    assert changes["man"] == pytest.approx(truth["man"], abs=1e-12)
    assert changes["woman"] == pytest.approx(-0.14, abs=0.01) and changes["man"] == pytest.approx(-0.06, abs=0.01)


def test_reweighting_repairs_the_sample_shift(sample_dir: Path) -> None:
    workspace = load_workspace(sample_dir)
    index = build_index(workspace.original["caption"])
    result = fit_weights(workspace.kept, index=index)
    report = bias_report(index, workspace.kept, ["woman", "man"], {}, result.weights)
    for shift in report.terms:
        assert abs(shift.relative_change) > 0.05, "the unweighted shift stays large"
        assert abs(shift.reweighted_change) <= 0.02, (shift.name, shift.reweighted_change)
    kept_weights = result.weights[workspace.kept]
    assert kept_weights.mean() == pytest.approx(1.0)
    assert (result.weights[~workspace.kept] == 0).all()
    assert 0 < result.effective_sample_size <= workspace.n_kept


def test_top_shifted_words_rank_removed_contexts_first(sample_dir: Path) -> None:
    workspace = load_workspace(sample_dir)
    top = top_shifted_words(build_index(workspace.original["caption"]), workspace.kept, limit=10)
    assert {"lingerie", "knife", "bloody"} <= set(top["word"])
    assert (top["original_count"] >= 5).all()


def test_npmi_shows_removed_contexts_of_woman(sample_dir: Path) -> None:
    workspace = load_workspace(sample_dir)
    table = npmi_table(build_index(workspace.original["caption"]), workspace.kept, ["woman"])
    assert "woman" not in set(table["word"])
    assert (table["change"].iloc[:5] < 0).all()


def test_npmi_is_one_for_words_that_always_cooccur() -> None:
    index = build_index(["woman hat", "woman hat", "dog", "cat"])
    table = npmi_table(index, np.ones(4, dtype=bool), ["woman"], min_count=1)
    assert table.set_index("word").loc["hat", "npmi_original"] == pytest.approx(1.0)


def test_collocations_find_phrases_around_the_identity_term() -> None:
    import pandas as pd

    from analysis.bias.compute import identity_collocations

    captions = pd.Series(["a young woman reading"] * 4 + ["a young woman in lingerie"] * 3 + ["a dog"] * 5)
    kept = np.array([True] * 4 + [False] * 3 + [True] * 5)
    table = identity_collocations(captions, build_index(captions), kept, ["woman"], min_count=3)
    young = table.set_index("bigram").loc["young woman"]
    assert (young["original_count"], young["filtered_count"]) == (7, 4)
    assert "in lingerie" not in set(table["bigram"])  # bigrams must contain the identity word


def test_large_inputs_are_cross_fitted_on_a_sample_and_scored_out_of_sample() -> None:
    rng = np.random.default_rng(0)
    captions = np.where(rng.random(3000) < 0.3, "a woman in a red dress", "a man on a bike")
    kept = np.where(np.char.find(captions.astype(str), "woman") >= 0, rng.random(3000) < 0.8, rng.random(3000) < 0.95)
    index = build_index(list(captions))
    full = fit_weights(kept, index=index)
    sampled = fit_weights(kept, index=index, max_train_rows=1000)
    assert sampled.weights[kept].mean() == pytest.approx(1.0)
    assert np.corrcoef(full.weights[kept], sampled.weights[kept])[0, 1] > 0.9


def test_held_out_words_are_not_classifier_features() -> None:
    index = build_index(["a woman here", "a woman there", "a woman again", "a man here", "a man there", "a man again"])
    full = caption_features(index, min_count=3)
    held = caption_features(index, min_count=3, held_out=["woman"])
    assert full.shape[1] == held.shape[1] + 1


def test_reweighting_repairs_audited_words_it_never_saw(sample_dir: Path) -> None:
    """The repair measured on held-out words: the classifier sees neither 'woman' nor 'man' (nor any gender word),
    yet the weights it learns from the rest of the captions close most of their shift."""
    workspace = load_workspace(sample_dir)
    index = build_index(workspace.original["caption"])
    result = fit_weights(workspace.kept, index=index, features="captions", held_out_words=audited_words(workspace))
    assert {"woman", "man", "girl", "boy"} <= set(result.held_out_words)
    report = bias_report(index, workspace.kept, ["woman", "man"], {}, result.weights, result.summary())
    for shift in report.terms:
        assert shift.held_out is True
        assert abs(shift.reweighted_change) < abs(shift.relative_change) / 3, (shift.name, shift.reweighted_change)
        low, high = shift.reweighted_ci95
        assert low < shift.reweighted_change < high


def test_the_weights_chart_carries_one_bar_per_bin_whatever_the_number_of_items(sample_dir: Path) -> None:
    from analysis.bias.figures import weights_chart

    weights = np.random.default_rng(0).lognormal(0, 0.5, 200_000)
    figure = weights_chart(weights, {"features": "captions", "C": 1.0}, load_workspace(sample_dir))
    (bars,) = figure.data
    assert len(bars.x) == 60
    assert int(np.sum(bars.y)) == len(weights)  # every item counted once
    assert len(figure.to_json()) < 50_000  # a go.Histogram of the raw weights serialised 1.6 MB here


def _word_filtered_captions(removal_of_dress: float, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """3,000 captions; those with "dress" are removed with the given probability, the others 5% of the time."""
    rng = np.random.default_rng(seed)
    subjects = rng.choice(["a woman", "a man", "a child", "a dog"], 3000)
    things = rng.choice(["in a red dress", "on a bike", "with a hat", "at the beach", "in a park"], 3000)
    captions = [f"{subject} {thing}" for subject, thing in zip(subjects, things)]
    dress = np.char.find(np.array(captions), "dress") >= 0
    chance = rng.random(3000)
    return captions, ~np.where(dress, chance < removal_of_dress, chance < 0.05)


def test_a_filter_that_removes_every_caption_with_a_word_is_reported_as_not_repairable() -> None:
    """Issue 51: with a caption-word filter the AUC was 0.9996, the weights stayed near 1 and the "reweighted" shifts
    equalled the raw ones, without a word of warning."""
    captions, kept = _word_filtered_captions(removal_of_dress=1.0)
    fitted = fit_weights(kept, index=build_index(captions), held_out_words=["woman", "man"])
    assert fitted.removed_without_kept_neighbour > 0.7
    assert not fitted.identifiable
    assert fitted.warning is not None and "cannot repair" in fitted.warning
    assert fitted.summary()["warning"] == fitted.warning


def test_a_filter_that_leaves_some_of_what_it_removes_is_repairable_and_not_warned() -> None:
    captions, kept = _word_filtered_captions(removal_of_dress=0.6)
    fitted = fit_weights(kept, index=build_index(captions), held_out_words=["woman", "man"])
    assert fitted.removed_without_kept_neighbour < 0.05
    assert fitted.identifiable and fitted.warning is None


def test_a_removed_item_has_a_kept_neighbour_only_within_the_caliper() -> None:
    """Logits −6, −6, 6, 6 kept and −5.1, 4.6 removed: their SD is 5.64, so the caliper (0.2 SD) is 1.13. The first
    removed item is 0.9 from a kept one (0.8 calipers: a neighbour), the second 1.4 (1.25 calipers: none)."""
    logits = np.array([-6.0, -6.0, 6.0, 6.0, -5.1, 4.6])
    kept = np.array([True, True, True, True, False, False])
    assert removed_without_kept_neighbour(1 / (1 + np.exp(-logits)), kept) == pytest.approx(0.5)


def test_bias_reweight_warns_on_the_command_line_when_the_fix_cannot_work(tmp_path: Path) -> None:
    from analysis.workspace import init_workspace
    from tests.helpers import run_cli, write_manifest

    captions, kept = _word_filtered_captions(removal_of_dress=1.0)
    write_manifest(
        tmp_path / "original.parquet",
        [{"id": str(i), "caption": caption, "kept": bool(k)} for i, (caption, k) in enumerate(zip(captions, kept))],
    )
    init_workspace(tmp_path, original="original.parquet", kept_column="kept")
    result = run_cli("bias", str(tmp_path), "--reweight", "--terms", "woman")
    assert result.returncode == 0, result.stderr
    assert "of the removed items have no kept neighbour" in result.stdout
    assert "warning: Reweighting cannot repair this filter" in result.stdout
