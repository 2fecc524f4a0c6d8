"""Removals and Bias pages in Streamlit's AppTest, on the sample workspace."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analysis.registry import by_name
from analysis.verdicts.store import VerdictStore
from dashboard import summary
from dashboard.views import bias, duplicates, map, regurgitation, removals


def open_page(module: str, workspace: Path, monkeypatch: pytest.MonkeyPatch, section: str | None = None) -> AppTest:
    """The page as a fresh session opens it; `section` as a link to it does (`?section=NAME`)."""
    monkeypatch.setenv("PRETRAIN_AUDIT_WORKSPACE", str(workspace))
    app = AppTest.from_string(f"from dashboard.views import {module}\n{module}.render()\n", default_timeout=120)
    if section:
        app.query_params["section"] = section
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_removals_page_shows_counts_and_charts(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("removals", sample_copy, monkeypatch)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Removed"] == "50" and metrics["Share of original"] == "5.00%"
    assert len(app.get("plotly_chart")) == 1  # removal rate by term
    # score histograms and the what-if
    assert len(open_page("removals", sample_copy, monkeypatch, removals.WHAT_IF).get("plotly_chart")) == 2


def test_a_page_runs_only_its_open_section(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a section shows is neither computed nor sent until it is opened: the first view stays light."""
    first = open_page("removals", sample_copy, monkeypatch)
    assert [t.label for t in first.tabs] == [removals.WHO, removals.WHAT_IF, removals.REVIEW]
    assert not any(box.key.startswith("reveal-") for box in first.checkbox)  # the gallery did not run
    gallery = open_page("removals", sample_copy, monkeypatch, removals.REVIEW)
    assert not gallery.get("plotly_chart")  # nor the charts, once the gallery is open
    assert sum(box.key.startswith("reveal-") for box in gallery.checkbox) == removals.PAGE_SIZE


def test_removals_gallery_is_blurred_until_revealed(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("removals", sample_copy, monkeypatch, removals.REVIEW)
    assert app.toggle(key="g-reveal").value is False
    assert all(not box.value for box in app.checkbox if box.key.startswith("reveal-"))


def test_verdict_needs_a_reviewer_and_is_recorded(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("removals", sample_copy, monkeypatch, removals.REVIEW)
    app.text_input(key="reviewer").input("ana").run()
    first = next(w for w in app.get("button_group") if w.key and w.key.startswith("v-"))
    item = first.key.removeprefix("v-")
    first.set_value("false positive").run()
    assert not app.exception
    assert VerdictStore.for_workspace(sample_copy).own_latest("removal", "ana")[item] == "false positive"
    assert any("precision" in str(d.value.columns.tolist()) for d in app.dataframe)


def test_bias_page_reports_the_sample_shift(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("bias", sample_copy, monkeypatch)
    table = app.dataframe[0].value.set_index("term / group")
    assert table.loc["“woman”", "change"] == "-14.0%" and table.loc["“man”", "change"] == "-6.1%"
    assert table.loc["group: women", "change"].startswith("-")  # a group is told apart from a term
    assert len(app.get("plotly_chart")) == 1
    for section in (bias.REWEIGHTING, bias.MOVED):
        assert len(open_page("bias", sample_copy, monkeypatch, section).get("plotly_chart")) == 1


def test_bias_page_shows_the_reweighted_change_the_cli_reports(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from tests.helpers import run_cli

    cli = run_cli("bias", str(sample_copy), "--terms", "woman,man", "--reweight", "--json")
    assert cli.returncode == 0, cli.stderr
    reweighted = {t["term"]: t["reweighted"]["relative_change"] for t in json.loads(cli.stdout)["terms"]}
    table = open_page("bias", sample_copy, monkeypatch).dataframe[0].value.set_index("term / group")
    for term in ("woman", "man"):
        assert table.loc[f"“{term}”", "reweighted change"].startswith(f"{reweighted[term]:+.1%} (")


def test_bias_page_warns_beside_the_shifts_and_the_weights_when_reweighting_cannot_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis.workspace import init_workspace
    from tests.helpers import write_manifest
    from tests.test_bias import _word_filtered_captions

    captions, kept = _word_filtered_captions(removal_of_dress=1.0)
    write_manifest(
        tmp_path / "original.parquet",
        [{"id": str(i), "caption": caption, "kept": bool(k)} for i, (caption, k) in enumerate(zip(captions, kept))],
    )
    init_workspace(tmp_path, original="original.parquet", kept_column="kept")
    for section in (None, bias.REWEIGHTING):
        app = open_page("bias", tmp_path, monkeypatch, section)
        assert any("Reweighting cannot repair this filter" in w.value for w in app.warning), section
    metrics = {m.label: m.value for m in app.metric}
    assert float(metrics["Removed with no kept neighbour"].rstrip("%")) > 70


def test_bias_page_rejects_a_phrase_as_a_term(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("bias", sample_copy, monkeypatch)
    app.text_input(key="b-terms-workspace default").input("young woman").run()
    assert "not a single word" in app.error[0].value


def test_duplicates_page_shows_groups(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("duplicates", sample_copy, monkeypatch, duplicates.GROUPS)
    metrics = {m.label: m.value for m in app.metric}
    assert int(metrics["Groups"].replace(",", "")) >= 20
    assert metrics["Byte-identical files"] == "20"
    # verified on pixels by default: the largest group is one planted clock family of 12, not several merged
    assert any("Group 0: 12 images" in c.value for c in app.caption)
    assert duplicates.PAIRS in [t.label for t in app.tabs]
    pairs = open_page("duplicates", sample_copy, monkeypatch, duplicates.PAIRS)
    assert any("inliers" in c.value for c in pairs.caption)


def test_duplicates_search_by_id(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    truth = json.loads((sample_copy / "sample_truth.json").read_text())
    logo = truth["near_duplicate_families"]["logo-star"][0]
    app = open_page("duplicates", sample_copy, monkeypatch, duplicates.GROUPS)
    app.text_input(key="d-search").input(logo).run()
    assert not app.exception
    assert any(": 8 images" in c.value for c in app.caption)


def test_duplicates_recall_estimate_on_demand(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("duplicates", sample_copy, monkeypatch)
    app.radio(key="d-mode").set_value("embedding cosine only").run()  # the recall of the cosine search
    assert "Recall vs exact search (estimated)" not in {m.label for m in app.metric}  # a scan: only when asked
    app.button(key="d-recall").click().run()
    assert not app.exception
    # The sample's 1,000 images form one cluster, so the clustered search is exact there.
    assert {m.label: m.value for m in app.metric}["Recall vs exact search (estimated)"] == "100.00%"


def test_duplicates_page_offers_to_prepare_when_no_embeddings(
    bare_sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = open_page("duplicates", bare_sample, monkeypatch)
    assert "not been computed" in app.info[0].value
    assert app.button(key="prepare-original").label == "Compute embeddings now"


def test_regurgitation_page_flags_and_records_verdicts(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("regurgitation", sample_copy, monkeypatch, regurgitation.SAMPLES)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Flagged as likely copies"] == "14" and metrics["Measured (of 100)"] == "100"
    app.text_input(key="reviewer").input("ana").run()
    control = next(w for w in app.get("button_group") if w.key and w.key.startswith("rv-"))
    control.set_value("copy").run()
    assert not app.exception
    assert list(VerdictStore.for_workspace(sample_copy).own_latest("regurgitation", "ana").values()) == ["copy"]
    assert {m.label: m.value for m in app.metric}["Confirmed copies (verdicts)"] == "1 of 1"


def test_pages_that_need_a_filter_say_how_to_add_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from analysis.workspace import init_workspace

    pd.DataFrame({"id": ["a", "b"], "caption": ["a woman", "a man"]}).to_parquet(tmp_path / "o.parquet")
    init_workspace(tmp_path, original="o.parquet")
    for name in ("removals", "bias"):
        monkeypatch.setenv("PRETRAIN_AUDIT_WORKSPACE", str(tmp_path))
        app = AppTest.from_string(
            "from analysis.registry import ANALYSES\n"
            "from dashboard.navigation import when_runnable\n"
            f"from dashboard.views import {name}\n"
            f"when_runnable(next(a for a in ANALYSES if a.page == '{name}'), {name}.render)()\n",
            default_timeout=60,
        )
        app.run()
        assert not app.exception, [e.message for e in app.exception]
        assert "No filter is defined in this workspace" in app.info[0].value
        assert "--laion-filters" in app.info[0].value


def test_reveals_pause_at_the_hourly_cap(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = sample_copy / "audit.toml"
    config.write_text(config.read_text() + "\n[review]\nmax_reveals_per_hour = 5\n")
    app = open_page("removals", sample_copy, monkeypatch, removals.REVIEW)
    app.text_input(key="reviewer").input("ana").run()
    app.toggle(key="g-reveal").set_value(True).run()
    assert not app.exception
    assert any("Time for a break" in w.value for w in app.warning)
    assert len(VerdictStore.for_workspace(sample_copy).reveals("ana")) == 5  # 5 of the page's 12, then a pause
    assert any("**5** of 5 in the last hour" in c.value for c in app.sidebar.caption)


def test_a_reveal_without_a_reviewer_name_is_refused(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("removals", sample_copy, monkeypatch, removals.REVIEW)
    app.toggle(key="g-reveal").set_value(True).run()
    assert any("Enter your reviewer name" in w.value for w in app.warning)
    assert VerdictStore.for_workspace(sample_copy).reveals().empty


def test_a_review_queue_is_drawn_and_estimated_on_the_page(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("removals", sample_copy, monkeypatch, removals.REVIEW)
    app.text_input(key="reviewer").input("ana").run()
    app.radio(key="g-show").set_value("random review queue").run()
    app.selectbox(key="g-qpop").set_value("sexual").run()
    app.number_input(key="g-qn").set_value(12).run()
    app.button(key="g-qdraw").click().run()
    assert not app.exception
    queues = VerdictStore.for_workspace(sample_copy).queues("removal")
    assert queues["name"].tolist() == ["removal: filter sexual · n=12 · score-band4 · seed 0"]
    assert {m.label: m.value for m in app.metric}["Decided"] == "0 of 12"
    first = next(w for w in app.get("button_group") if w.key and w.key.startswith("v-"))
    first.set_value("correct removal").run()
    assert {m.label: m.value for m in app.metric}["Precision (queue)"] == "100.0%"


def test_warming_computes_each_pages_first_view_before_anyone_asks(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pretrain-audit dashboard` warms the caches its sessions share; a page opened afterwards computes nothing."""
    from dashboard import warm

    logged: list[str] = []
    warmed = warm.warm_caches(sample_copy, logged.append)
    assert warmed == ["Removals", "Bias", "Map", "Duplicates", "Regurgitation", "Contamination", "Overview"]
    assert logged and "caches warm in" in logged[-1]

    def must_not_run(*args, **kwargs):
        raise AssertionError("computed again after warming")

    monkeypatch.setattr(bias, "reweighting_with", must_not_run)
    for name in ("removals", "concepts", "dedup", "regurgitation", "contamination"):  # pages calling `run`
        monkeypatch.setattr(type(by_name(name)), "run", must_not_run)
    monkeypatch.setattr(summary, "executive_summary", must_not_run)
    for page in ("removals", "bias", "duplicates", "regurgitation", "contamination", "map", "overview"):
        open_page(page, sample_copy, monkeypatch)  # asserts that the page raised nothing


def test_map_page_draws_the_map_with_every_colouring(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("map", sample_copy, monkeypatch)
    assert len(app.get("plotly_chart")) == 1
    options = app.selectbox(key="map-colour").options
    assert options[:3] == [map.STATUS, map.CLUSTER, map.GROUP] and "score: sexual" in options
    for choice in options[1:]:
        app.selectbox(key="map-colour").set_value(choice).run()
        assert not app.exception and len(app.get("plotly_chart")) == 1, choice


def test_a_lasso_on_the_map_chooses_every_image_inside_it_not_only_the_points_drawn() -> None:
    import numpy as np

    xy = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]], dtype=np.float32)
    lasso = {"selection": {"points": [], "lasso": [{"x": [-1, 2, 2, -1], "y": [-1, -1, 2, 2]}], "box": []}}
    assert map.selected_rows(xy, lasso).tolist() == [0, 1]
    clicked = {"selection": {"points": [{"customdata": 2}, {"customdata": [1]}], "lasso": [], "box": []}}
    assert map.selected_rows(xy, clicked).tolist() == [1, 2]
    assert map.selected_rows(xy, {"selection": {"points": [], "lasso": [], "box": []}}) is None


def test_bias_page_shows_the_visual_concepts_section(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("bias", sample_copy, monkeypatch, bias.CONCEPTS)
    assert len(app.get("plotly_chart")) == 1 and len(app.dataframe) == 1
    assert app.toggle(key="concept-central-reveal").value is False  # the top cluster's removed images: blurred
    assert any("no text tower" in caption.value for caption in app.caption)


def test_duplicates_page_shows_what_dedup_removes(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_page("duplicates", sample_copy, monkeypatch, duplicates.EFFECTS)
    assert len(app.get("plotly_chart")) == 2 and len(app.dataframe) == 1


def test_the_what_if_is_offered_when_score_filters_sit_beside_a_kept_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept column and a score filter together (a dataset's own flag plus a score): the page and the report show
    the score histogram and the threshold what-if, with the kept column's removals held fixed."""
    import numpy as np
    import pandas as pd

    from analysis.captions import caption_index
    from analysis.removals.compute import threshold_sweep
    from analysis.report import build_sections
    from analysis.workspace import init_workspace, load_workspace

    rng = np.random.default_rng(0)
    n = 200
    ids = [f"r{i}" for i in range(n)]
    pd.DataFrame(
        {
            "id": ids,
            "caption": ["a woman walking" if i % 2 else "a man walking" for i in range(n)],
            "flagged_ok": [i % 10 != 0 for i in range(n)],
        }
    ).to_parquet(tmp_path / "o.parquet")
    score = rng.uniform(0, 1, n)
    score[:5] = np.nan  # a computed score (`pretrain-audit score`) could not read these: never removed by it
    pd.DataFrame({"id": ids[5:], "score": score[5:]}).to_parquet(tmp_path / "nsfw.parquet")
    init_workspace(tmp_path, original="o.parquet", kept_column="flagged_ok")
    with (tmp_path / "audit.toml").open("a") as config:
        config.write('\n[scores]\nnsfw = "nsfw.parquet"\n')
        config.write('\n[[filtered.scores]]\nname = "nsfw"\ncolumn = "nsfw"\nthreshold = 0.8\n')
    workspace = load_workspace(tmp_path)
    assert workspace.config.filtered.kind == "kept_column" and len(workspace.removed_by) == 2

    app = open_page("removals", tmp_path, monkeypatch, removals.WHAT_IF)
    assert [h.value for h in app.subheader][:1] == ["Threshold what-if"]
    assert len(app.get("plotly_chart")) == 2  # the score histogram and the what-if
    sweep = threshold_sweep(workspace, caption_index(workspace), "nsfw", ["woman"])
    flagged = ~workspace.original["flagged_ok"].to_numpy()
    for threshold, n_removed in zip(sweep["threshold"], sweep["n_removed"]):
        # the kept column's 20 removals held fixed, plus the scored rows at or above the threshold (NaN never)
        assert n_removed == int((flagged | (np.nan_to_num(score, nan=-1.0) >= threshold)).sum()), threshold
    sections, _ = build_sections(workspace, ["woman"])
    (removals_section,) = [section for section in sections if section.title.startswith("Removals")]
    assert {"score_distributions", "what_if_nsfw"} <= set(removals_section.figures)


def test_the_what_if_states_the_scorers_rate_on_ordinary_photos_at_the_filters_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    import pandas as pd

    from analysis.scoring.ordinary_rates import ordinary_rate
    from analysis.workspace import init_workspace

    ids = [f"r{i}" for i in range(60)]
    pd.DataFrame({"id": ids, "caption": ["a photo"] * 60}).to_parquet(tmp_path / "o.parquet")
    scores = np.random.default_rng(1).uniform(0, 1, 60)
    pd.DataFrame({"id": ids, "score": scores}).to_parquet(tmp_path / "open-nsfw.parquet")
    init_workspace(tmp_path, original="o.parquet")
    with (tmp_path / "audit.toml").open("a") as config:
        config.write('\n[scores]\n"open-nsfw" = "open-nsfw.parquet"\n')
        config.write('\n[[filtered.scores]]\nname = "nsfw"\ncolumn = "open-nsfw"\nthreshold = 0.7\n')
    app = open_page("removals", tmp_path, monkeypatch, removals.WHAT_IF)
    expected = ordinary_rate("open-nsfw", 0.7)
    assert expected is not None
    assert any(expected.sentence() in caption.value for caption in app.caption)


@pytest.mark.browser
def test_report_page_prints_the_pdf_on_the_paper_chosen(sample_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pypdfium2

    from tests.helpers import require_browser

    require_browser()
    app = open_page("report", sample_copy, monkeypatch)
    app.radio(key="paper").set_value("letter").run()
    app.button(key="report-build-pdf").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    pdf = pypdfium2.PdfDocument(app.session_state["report-pdf"])
    assert pdf[0].get_size() == pytest.approx((612, 792), abs=1)  # US Letter, in points
    assert "Summary" in pdf[0].get_textpage().get_text_range()
