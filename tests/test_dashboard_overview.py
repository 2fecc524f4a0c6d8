"""The Overview page in Streamlit's AppTest: counts, the audit's summary, filters and the synthetic label."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import REPO

APP = str(REPO / "dashboard" / "app.py")


def open_app(workspace: Path, monkeypatch: pytest.MonkeyPatch, page: str | None = None) -> AppTest:
    monkeypatch.setenv("PRETRAIN_AUDIT_WORKSPACE", str(workspace))
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    if page:
        app.switch_page(page)
        app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_overview_shows_counts_and_synthetic_warning(sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_app(sample_dir, monkeypatch)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {
        "Original images": "1,000",
        "Kept by filters": "950",
        "Removed": "50",
        "Generated samples": "100",
    }
    assert any("SYNTHETIC" in w.value for w in app.warning)


def test_overview_lists_each_filter(sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = open_app(sample_dir, monkeypatch)
    table = next(frame.value for frame in app.dataframe if "filter" in frame.value.columns)
    assert set(table["filter"]) == {"sexual", "violence"}


def test_overview_opens_with_the_reports_summary(sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same findings and gates as the report's first page: the sample's [gates] fail on its planted bias and
    copies, and the gap (no hash list) is named."""
    app = open_app(sample_dir, monkeypatch)
    text = " ".join(m.value for m in app.markdown)
    assert "Regurgitation" in text and "14 of 100 generated samples" in text and "Known-bad hashes" in text
    gates = next(frame.value for frame in app.dataframe if "gate" in frame.value.columns)
    assert dict(zip(gates["gate"], gates["status"]))["regurgitation rate"] == "FAIL"
    assert "2 of 5 gates failed" in app.error[0].value


def test_bad_workspace_shows_an_error_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRETRAIN_AUDIT_WORKSPACE", str(tmp_path))
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception
    assert "no audit.toml" in app.error[0].value


def test_an_id_wraps_only_at_its_separators_and_is_never_read_as_markdown() -> None:
    """Issue 51: gallery ids wrapped mid-word in narrow cards; an id with * or [ ] would have been Markdown."""
    from dashboard.components import breakable

    assert breakable("flickr/100_6b.jpg") == "flickr&#47;<wbr>100&#95;<wbr>6b&#46;<wbr>jpg"
    assert breakable("*bold* [x](y)") == "&#42;bold&#42; &#91;x&#93;&#40;y&#41;"
