"""The audit report (HTML, PDF, figures) and the `check` gates."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from analysis.report import write_report
from analysis.workspace import load_workspace
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def report_html(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    workspace_dir = tmp_path_factory.mktemp("report") / "ws"
    shutil.copytree(sample_dir, workspace_dir)
    return write_report(load_workspace(workspace_dir), workspace_dir / "report.html")


def test_report_has_every_section_and_the_provenance(report_html: Path) -> None:
    text = report_html.read_text()
    for heading in ("Removals", "Caption bias", "Near-duplicates", "Regurgitation", "Provenance"):
        assert f"<h2>{heading}" in text
    assert "sha256 of original" in text and "effnet-lite0" in text and "pretrain-audit 0.1.0" in text
    assert "SYNTHETIC" in text


def test_report_is_self_contained(report_html: Path) -> None:
    text = report_html.read_text()
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=['\"]?https?:", text), "no external resources"
    assert "data:image/png;base64," in text
    assert text.count("Plotly.newPlot") >= 6


def test_report_escapes_captions(sample_dir: Path, tmp_path: Path) -> None:
    import pandas as pd

    workspace_dir = tmp_path / "ws"
    shutil.copytree(sample_dir, workspace_dir)
    original = pd.read_parquet(workspace_dir / "original.parquet")
    removed = original.index[original["sexual"] >= 0.5][0]
    original.loc[removed, "caption"] = "<img src=x onerror=alert(1)> <script>alert(2)</script>"
    original.to_parquet(workspace_dir / "original.parquet", index=False)
    text = write_report(load_workspace(workspace_dir), workspace_dir / "r.html").read_text()
    assert "<script>alert(2)</script>" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


@pytest.mark.browser
def test_report_opens_offline_in_a_real_browser_without_errors(report_html: Path, browser) -> None:
    from tests.helpers import ARTIFACTS

    context = browser.new_context(viewport={"width": 1200, "height": 1600}, offline=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report_html.as_uri())
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30000)
    assert page.locator(".js-plotly-plot").count() >= 6
    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests), [u for u in requests if "://" in u][:3]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
    context.close()


@pytest.mark.browser
def test_pdf_and_figures(sample_dir: Path, tmp_path: Path) -> None:
    from tests.helpers import require_browser

    require_browser()
    workspace_dir = tmp_path / "ws"
    shutil.copytree(sample_dir, workspace_dir)
    pdf = write_report(load_workspace(workspace_dir), tmp_path / "report.pdf", figures_dir=tmp_path / "figures")
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 50_000
    from PIL import Image

    png = tmp_path / "figures" / "term_shifts.png"
    with Image.open(png) as image:
        assert image.width == 2200 and image.height > 400
    assert (tmp_path / "figures" / "term_shifts.svg").read_text().lstrip().startswith(("<svg", "<?xml"))
    assert len(list((tmp_path / "figures").glob("*.png"))) >= 6


def test_check_fails_with_a_strict_gate_and_passes_with_a_lenient_one(sample_copy: Path) -> None:
    strict = run_cli(
        "check", str(sample_copy), "--max-term-shift", "woman=0.05", "--max-regurgitation-rate", "0.01", "--json"
    )
    assert strict.returncode == 1, strict.stderr
    payload = json.loads(strict.stdout)
    assert payload["passed"] is False
    by_name = {g["gate"]: g for g in payload["gates"]}
    assert by_name["|shift of 'woman'|"]["measured"] == pytest.approx(0.1404, abs=1e-3)
    assert by_name["regurgitation rate"]["measured"] == pytest.approx(0.14)  # 14 of 15 planted copies verified
    lenient = run_cli(
        "check",
        str(sample_copy),
        "--max-term-shift",
        "woman=0.2",
        "--max-regurgitation-rate",
        "0.2",
        "--max-removed-fraction",
        "0.1",
    )
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert "all gates passed" in lenient.stdout


def test_check_after_reweighting_passes_a_tight_gate(sample_copy: Path) -> None:
    result = run_cli("check", str(sample_copy), "--max-term-shift", "woman=0.03", "--reweighted")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_without_gates_is_a_user_error(sample_copy: Path) -> None:
    result = run_cli("check", str(sample_copy))
    assert result.returncode == 2 and "no gate given" in result.stderr
