"""The audit report: every analysis's key numbers and charts, sample images, and provenance, as one
self-contained HTML file (plotly.js and images inlined, so it opens offline), a PDF printed by headless
Chromium, and PNG/SVG figures.

All text from the data (captions, prompts, ids) is HTML-escaped: a caption is shown, never run.
"""

from __future__ import annotations

import base64
import html
import json
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from analysis import __version__
from analysis.contract import ReportContext, ReportSection
from analysis.errors import AuditInputError
from analysis.report_layout import chromium_path
from analysis.workspace import Workspace, manifest_fingerprints


def provenance(workspace: Workspace, parameters: dict, fingerprints: dict[str, str] | None = None) -> dict:
    """What a reader needs to reproduce a number: inputs by content hash (`fingerprints`, when the caller has
    hashed the manifests already), embedder, parameters, versions, time."""
    from analysis.embedding_store import load_embeddings

    found = load_embeddings(workspace, "original", required=False)
    info = {
        "workspace": workspace.config.name,
        "workspace path": str(workspace.config.root.resolve()),
        "synthetic sample": "yes" if workspace.config.synthetic else "no",
        "tool": f"pretrain-audit {__version__}",
        "generated at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "filters": "; ".join(workspace.config.filtered.describe()),
        "embedder": f"{found.meta['embedder']} ({found.meta['embedder_version']})" if found else "not computed",
    }
    digests = manifest_fingerprints(workspace) if fingerprints is None else fingerprints
    info.update({f"sha256 of {name}": digest for name, digest in digests.items()})
    for name, path in workspace.config.computed_scores.items():  # which model made each computed score
        card = path.with_suffix(".json")
        if card.exists():
            model = json.loads(card.read_text())
            info[f"model of score {name}"] = f"{model.get('model')} (sha256 {model.get('model_sha256')})"
    info.update({k: str(v) for k, v in parameters.items()})
    return info


def build_sections(workspace: Workspace, terms: list[str] | None = None) -> tuple[list[ReportSection], dict]:
    """Every registered analysis's report sections, in the registry's order, and the parameters they used."""
    from analysis.registry import ANALYSES

    context = ReportContext(workspace, terms or list(workspace.config.default_terms))
    context.parameters["terms"] = ", ".join(context.terms)
    sections = []
    for analysis in ANALYSES:
        missing = analysis.missing_input(workspace)
        if missing:
            sections.append(
                ReportSection(analysis.title, note=f"{missing[0].capitalize()}. To add a filter: {missing[1]}")
            )
        else:
            sections += analysis.report_sections(context)
    return sections, context.parameters


def render_html(
    workspace: Workspace,
    sections: list[ReportSection],
    parameters: dict,
    *,
    paper: str | None = None,
) -> str:
    """The report as one HTML document. With `paper` ("a4" or "letter") it is laid out for printing: charts as
    static SVG sized to the page, page numbers, the summary and contents alone on the first pages."""
    from plotly.offline import get_plotlyjs

    from analysis.report_layout import (
        SCREEN_STYLE,
        chart_html,
        contents_html,
        print_style,
        static_charts,
        summary_html,
    )
    from analysis.summary import executive_summary

    escape = html.escape
    summary = executive_summary(workspace)
    static = static_charts(sections) if paper else {}
    style = SCREEN_STYLE + (print_style(workspace.config.name, paper) if paper else "")
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Audit report: {escape(workspace.config.name)}</title>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<style>{style}</style>",
        "" if paper else f"<script>{get_plotlyjs()}</script>",
        "</head><body><div class='front'>",
        f"<h1>Training-data audit: {escape(workspace.config.name)}</h1>",
    ]
    if workspace.config.synthetic:
        parts.append(
            "<p class='warn'>SYNTHETIC sample workspace built by <code>pretrain-audit sample</code>: "
            "not real training data.</p>"
        )
    parts += [summary_html(summary), contents_html(sections), "</div>"]
    for number, section in enumerate(sections, start=1):
        parts.append(f"<section id='section-{number}'><div class='keep'><h2>{escape(section.title)}</h2>")
        if section.note:
            parts.append(f"<p class='note'>{escape(section.note)}</p>")
        if section.summary:
            parts.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in section.summary) + "</ul>")
        parts.append("</div>")
        for title, table in section.tables:  # cells escaped by pandas (escape=True): ids and notes are data
            parts.append(f"<div class='keep'><h3>{escape(title)}</h3>")
            parts.append(
                table.to_html(index=False, escape=True, border=0, na_rep="—", float_format=lambda x: f"{x:.3f}")
            )
            parts.append("</div>")
        parts += [chart_html(name, figure, static) for name, figure in section.figures.items()]
        for caption, png in section.evidence:
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f"<figure class='evidence'><img alt='{escape(caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{escape(caption)}</figcaption></figure>"
            )
        for title, tiles in section.images:
            parts.append(f"<div class='keep'><h3>{escape(title)}</h3><div class='tiles'>")
            for label, png in tiles:
                data = base64.b64encode(png).decode("ascii")
                parts.append(
                    f"<div class='tile'><img alt='{escape(label)}' src='data:image/png;base64,{data}'>"
                    f"<div>{escape(label)}</div></div>"
                )
            parts.append("</div></div>")
        parts.append("</section>")
    parts.append("<section id='provenance'><h2>Provenance</h2><table>")
    for key, value in provenance(workspace, parameters, summary.fingerprints).items():
        parts.append(f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>")
    parts.append("</table></section></body></html>")
    return "".join(parts)


def write_report(
    workspace: Workspace,
    out: Path,
    *,
    terms: list[str] | None = None,
    figures_dir: Path | None = None,
    paper: str = "a4",
) -> Path:
    """Write `out` (.html or .pdf on `paper`) and, optionally, every chart as PNG and SVG into `figures_dir`."""
    from analysis.report_layout import PAPERS

    if out.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise AuditInputError(f"unsupported report format '{out.suffix}'.", path=out, fix="use .html or .pdf.")
    if paper not in PAPERS:
        raise AuditInputError(f"unknown paper size '{paper}'.", fix=f"use one of {', '.join(PAPERS)}.")
    sections, parameters = build_sections(workspace, terms)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".pdf":
        document = render_html(workspace, sections, parameters, paper=paper)
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "report.html"
            source.write_text(document, encoding="utf-8")
            print_pdf(source, out)
    else:
        from analysis.cache import atomic_write_bytes

        atomic_write_bytes(out, render_html(workspace, sections, parameters).encode("utf-8"))
    if figures_dir is not None:
        export_figures(sections, figures_dir)
    return out


def print_pdf(source: Path, out: Path) -> None:
    command = [
        chromium_path(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--run-all-compositor-stages-before-draw",
        "--virtual-time-budget=15000",
        "--no-pdf-header-footer",
        f"--print-to-pdf={out.resolve()}",
        source.resolve().as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if completed.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise AuditInputError(
            f"Chromium could not print the PDF ({completed.stderr.strip()[-200:]}).",
            path=out,
            fix="check that chromium runs headless on this machine, or write .html.",
        )


def export_figures(sections: list[ReportSection], directory: Path, width: int = 1100) -> list[Path]:
    """Each chart as PNG (2× scale) and SVG, through Plotly's kaleido and the local Chromium. All of them in one
    `write_images` call: kaleido then starts Chromium once, not once per file (14 starts for the sample's seven
    charts took most of a report's export time)."""
    import os

    import plotly.io as pio

    os.environ.setdefault("BROWSER_PATH", chromium_path())
    directory.mkdir(parents=True, exist_ok=True)
    figures, paths, scales, heights = [], [], [], []
    for section in sections:
        for name, figure in section.figures.items():
            for suffix, scale in ((".png", 2), (".svg", 1)):
                figures.append(figure)
                paths.append(directory / f"{name}{suffix}")
                scales.append(scale)
                heights.append(figure.layout.height or 450)
    if figures:
        pio.write_images(figures, paths, scale=scales, width=width, height=heights)
    return paths
