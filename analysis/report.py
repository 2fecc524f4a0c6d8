"""The audit report: every analysis's key numbers and charts, sample images, and provenance, as one
self-contained HTML file (plotly.js and images inlined, so it opens offline), a PDF printed by headless
Chromium, and PNG/SVG figures.

All text from the data (captions, prompts, ids) is HTML-escaped: a caption is shown, never run.
"""

from __future__ import annotations

import base64
import html
import json
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from analysis import __version__
from analysis.contract import ReportContext, ReportSection
from analysis.errors import AuditInputError
from analysis.workspace import Workspace, manifest_fingerprints


def provenance(workspace: Workspace, parameters: dict) -> dict:
    """What a reader needs to reproduce a number: inputs by content hash, embedder, parameters, versions, time."""
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
    info.update({f"sha256 of {name}": digest for name, digest in manifest_fingerprints(workspace).items()})
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


def render_html(workspace: Workspace, sections: list[ReportSection], parameters: dict) -> str:
    from plotly.offline import get_plotlyjs

    escape = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Audit report: {escape(workspace.config.name)}</title>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        "<style>body{font-family:Arial,sans-serif;max-width:1100px;margin:24px auto;color:#222}"
        "h1{font-size:28px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}"
        ".warn{background:#fff6d6;padding:8px 12px;border-radius:6px}.note{color:#666}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}"
        ".tiles{display:flex;flex-wrap:wrap;gap:8px}.tile{width:160px;font-size:11px;color:#555;word-wrap:break-word}"
        ".tile img{width:160px;height:160px;object-fit:contain;background:#f4f4f4}"
        ".evidence img{max-width:100%;border:1px solid #ddd}.evidence figcaption{font-size:12px;color:#555}"
        "@media print{.figure{break-inside:avoid}h2{break-before:page}}</style>",
        f"<script>{get_plotlyjs()}</script></head><body>",
        f"<h1>Training-data audit: {escape(workspace.config.name)}</h1>",
    ]
    if workspace.config.synthetic:
        parts.append(
            "<p class='warn'>SYNTHETIC sample workspace built by <code>pretrain-audit sample</code>: "
            "not real training data.</p>"
        )
    parts.append(
        f"<p>{workspace.n_original:,} original images, {workspace.n_kept:,} after filtering, "
        f"{workspace.n_removed:,} removed; {workspace.n_generated:,} generated samples.</p>"
    )
    for section in sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        if section.note:
            parts.append(f"<p class='note'>{escape(section.note)}</p>")
        if section.summary:
            parts.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in section.summary) + "</ul>")
        for title, table in section.tables:  # cells escaped by pandas (escape=True): ids and notes are data
            parts.append(f"<h3>{escape(title)}</h3>")
            parts.append(
                table.to_html(index=False, escape=True, border=0, na_rep="—", float_format=lambda x: f"{x:.3f}")
            )
        for name, figure in section.figures.items():
            parts.append(
                f"<div class='figure' id='{escape(name)}'>"
                + figure.to_html(
                    full_html=False,
                    include_plotlyjs=False,
                    div_id=f"fig-{escape(name)}",
                    config={"staticPlot": False, "displaylogo": False},
                )
                + "</div>"
            )
        for caption, png in section.evidence:
            data = base64.b64encode(png).decode("ascii")
            parts.append(
                f"<figure class='evidence'><img alt='{escape(caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{escape(caption)}</figcaption></figure>"
            )
        for title, tiles in section.images:
            parts.append(f"<h3>{escape(title)}</h3><div class='tiles'>")
            for label, png in tiles:
                data = base64.b64encode(png).decode("ascii")
                parts.append(
                    f"<div class='tile'><img alt='{escape(label)}' src='data:image/png;base64,{data}'>"
                    f"<div>{escape(label)}</div></div>"
                )
            parts.append("</div>")
    parts.append("<h2>Provenance</h2><table>")
    for key, value in provenance(workspace, parameters).items():
        parts.append(f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>")
    parts.append("</table></body></html>")
    return "".join(parts)


def write_report(
    workspace: Workspace, out: Path, *, terms: list[str] | None = None, figures_dir: Path | None = None
) -> Path:
    """Write `out` (.html or .pdf) and, optionally, every chart as PNG and SVG into `figures_dir`."""
    if out.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise AuditInputError(f"unsupported report format '{out.suffix}'.", path=out, fix="use .html or .pdf.")
    sections, parameters = build_sections(workspace, terms)
    document = render_html(workspace, sections, parameters)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".pdf":
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "report.html"
            source.write_text(document, encoding="utf-8")
            print_pdf(source, out)
    else:
        from analysis.cache import atomic_write_bytes

        atomic_write_bytes(out, document.encode("utf-8"))
    if figures_dir is not None:
        export_figures(sections, figures_dir)
    return out


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AuditInputError(
        "a Chromium browser is needed for PDF and PNG/SVG export, and none was found.",
        fix="install it (Debian: apt-get install chromium), or write .html.",
    )


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
