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


def report_sections(text: str) -> dict[str, str]:
    """The report's text per <h2> section, tags stripped and entities decoded."""
    import html

    sections = {}
    for chunk in text.split("<h2>")[1:]:
        title, _, body = chunk.partition("</h2>")
        sections[html.unescape(title)] = html.unescape(re.sub(r"<[^>]+>", " ", body.split("<script")[0]))
    return sections


def section_starting(sections: dict[str, str], prefix: str) -> str:
    return next(body for title, body in sections.items() if title.startswith(prefix))


def test_report_has_every_section_and_the_provenance(report_html: Path) -> None:
    text = report_html.read_text()
    for heading in ("Removals", "Caption bias", "Near-duplicates", "Regurgitation", "Provenance"):
        assert f"<h2>{heading}" in text
    assert "sha256 of original" in text and "effnet-lite0" in text and "pretrain-audit 0.1.0" in text
    assert "SYNTHETIC" in text


def test_report_states_the_figures_the_cli_measures(report_html: Path) -> None:
    """Each section carries the numbers of its analysis, the same the CLI prints, and the sample's planted truths."""
    workspace = str(report_html.parent)
    sections = report_sections(report_html.read_text())
    removals = json.loads(run_cli("removals", workspace, "--json").stdout)
    assert f"{removals['n_removed']:,} of {removals['n_original']:,} removed" in section_starting(sections, "Removals")
    assert "50 of 1,000 removed (5.00%)" in section_starting(sections, "Removals")  # the sample's 50 planted removals
    bias = section_starting(sections, "Caption bias")
    woman = next(t for t in json.loads(run_cli("bias", workspace, "--json").stdout)["terms"] if t["term"] == "woman")
    assert f"term woman: {woman['original']['frequency']:.2%} → {woman['filtered']['frequency']:.2%}" in bias
    assert "(-14.0%" in bias  # the sample is built to reproduce DALL·E 2's 14% drop of "woman"
    dedup = json.loads(run_cli("dedup", workspace, "--json").stdout)
    assert f"{dedup['n_in_groups']:,} images in {dedup['n_groups']:,} duplicate groups" in section_starting(
        sections, "Near-duplicates"
    )
    regurgitation = json.loads(run_cli("regurgitation", workspace, "--json").stdout)
    flagged = f"{regurgitation['n_flagged']:,} of 100 measured generated samples flagged"
    assert flagged in section_starting(sections, "Regurgitation")
    assert regurgitation["n_flagged"] == 14  # 14 of the 15 planted copies are verified on pixels


def test_report_blurs_a_removed_image_and_shows_a_kept_one_sharp(sample_dir: Path, tmp_path: Path) -> None:
    import base64
    import io

    import pandas as pd
    from PIL import Image

    from analysis.images import load_image, thumbnail
    from tests.helpers import is_blurred

    workspace_dir = tmp_path / "ws"
    shutil.copytree(sample_dir, workspace_dir)
    dedup = run_cli("dedup", str(workspace_dir), "--out", str(tmp_path / "groups.parquet"))
    assert dedup.returncode == 0, dedup.stderr
    groups = pd.read_parquet(tmp_path / "groups.parquet")
    largest = groups[groups["group_id"] == 0]["id"].tolist()  # the report shows the first 8 of groups 0–2
    removed_id, kept_id = largest[0], largest[1]
    original = pd.read_parquet(workspace_dir / "original.parquet")
    original.loc[original["id"] == removed_id, "sexual"] = 0.99  # the sample's filter removes sexual ≥ 0.5
    original.loc[original["id"] == kept_id, ["sexual", "violence"]] = 0.0
    original.to_parquet(workspace_dir / "original.parquet", index=False)
    text = write_report(load_workspace(workspace_dir), workspace_dir / "r.html").read_text()
    tiles = dict(re.findall(r"<img alt='([^']*)' src='data:image/png;base64,([^']+)'>", text))
    images = dict(zip(original["id"], original["image"]))
    root = load_workspace(workspace_dir).config.images_root

    def shown(item: str):
        return Image.open(io.BytesIO(base64.b64decode(next(v for k, v in tiles.items() if k.startswith(item)))))

    def source(item: str):
        return thumbnail(load_image(root, images[item]).image, 160)

    assert is_blurred(shown(removed_id), source(removed_id)), "a removed image is blurred in the report"
    assert not is_blurred(shown(kept_id), source(kept_id), ratio=0.9), "a kept image is shown as it is"


def test_report_content_security_policy_blocks_outside_resources(report_html: Path) -> None:
    policy = re.search(r"http-equiv='Content-Security-Policy' content=\"([^\"]+)\"", report_html.read_text())
    assert policy, "the report carries a Content-Security-Policy"
    directives = dict(d.strip().split(" ", 1) for d in policy.group(1).split(";"))
    assert directives["default-src"] == "'none'" and directives["img-src"] == "data:"
    assert "http" not in policy.group(1) and directives["script-src"] == "'unsafe-inline'"


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
def test_report_policy_stops_an_injected_outside_image_in_a_real_browser(
    report_html: Path, browser, tmp_path: Path
) -> None:
    """Should a caption ever slip past escaping, the policy still keeps the report from loading anything outside."""
    probe = (
        "<script>window.violations=[];document.addEventListener('securitypolicyviolation',"
        "e=>window.violations.push(e.blockedURI))</script><img id='probe' src='http://127.0.0.1:9/tracker.png'>"
    )
    injected = tmp_path / "injected.html"
    injected.write_text(report_html.read_text().replace("<body>", "<body>" + probe, 1))
    context = browser.new_context()
    page = context.new_page()
    failures: dict[str, str] = {}
    page.on("requestfailed", lambda request: failures.__setitem__(request.url, request.failure or ""))
    page.goto(injected.as_uri())
    page.wait_for_function("window.violations && window.violations.length > 0", timeout=10000)
    assert "http://127.0.0.1:9/tracker.png" in page.evaluate("window.violations")
    page.wait_for_timeout(500)
    assert failures.get("http://127.0.0.1:9/tracker.png") == "csp", failures  # blocked before it left
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


@pytest.mark.browser
def test_the_printed_report_opens_with_its_summary_and_keeps_to_the_page(sample_dir: Path, tmp_path: Path) -> None:
    """Issue 50: page 1 is the summary (findings, the gates' status, what was not measured), every page is
    numbered, nothing is drawn in the side margins, no heading is left alone at the bottom of a page, and the
    charts are static images (no plotly.js, hence no toolbar)."""
    from analysis.report import build_sections, print_pdf, render_html
    from tests.helpers import ink_in_side_margins, pdf_pages, require_browser

    require_browser()
    workspace = load_workspace(sample_dir)
    sections, parameters = build_sections(workspace)
    document = render_html(workspace, sections, parameters, paper="a4")  # what write_report prints
    assert "<script" not in document and "modebar" not in document and "data:image/svg+xml" in document
    source = tmp_path / "report.html"
    source.write_text(document, encoding="utf-8")
    print_pdf(source, tmp_path / "report.pdf")
    pages = pdf_pages(tmp_path / "report.pdf")
    first = pages[0][0]
    for expected in ("Summary", "Findings", "14 of 100 generated samples", "FAIL", "Not measured", "Known-bad"):
        assert expected in first, expected
    headings = {s.title for s in sections} | {t for s in sections for t, _ in s.tables + s.images}
    for number, (text, pixels) in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in " ".join(text.split()), number
        assert ink_in_side_margins(pixels) == 0, f"page {number} draws into its margin"
        lines = [line.strip() for line in text.splitlines() if line.strip() and "Page " not in line]
        assert lines[-1] not in headings, f"page {number} ends with the heading {lines[-1]!r}"
    assert pages[0][1].shape[0] / pages[0][1].shape[1] == pytest.approx(297 / 210, abs=0.01)  # A4


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
    from analysis.workspace import update_config

    update_config(sample_copy, lambda body: body.pop("gates"))
    result = run_cli("check", str(sample_copy))
    assert result.returncode == 2 and "no gate given" in result.stderr and "[gates]" in result.stderr
