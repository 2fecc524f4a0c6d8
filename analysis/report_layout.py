"""How the report reads on screen and on paper: the executive summary block that opens it, the contents list, the
stylesheet, and the charts as static SVG for print.

On paper (the PDF that auditors paste into their documents) a chart is a vector image rendered at the width it was
designed for and scaled to the page: no toolbar, and no title or footer cut at the margin (an interactive chart
printed at page width had both). Headings stay with their first content, every page carries its number, and the
paper is A4 or Letter.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from analysis import __version__
from analysis.contract import ReportSection
from analysis.errors import AuditInputError
from analysis.summary import ExecutiveSummary

PAPERS = {"a4": "A4", "letter": "letter"}
CHART_WIDTH = 1000  # px: the width the house charts are designed for (their footers fit in it)

SCREEN_STYLE = (
    "body{font-family:Arial,sans-serif;max-width:1100px;margin:24px auto;color:#222}"
    "h1{font-size:28px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}"
    ".warn{background:#fff6d6;padding:8px 12px;border-radius:6px}.note{color:#666}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;"
    "vertical-align:top}"
    ".tiles{display:flex;flex-wrap:wrap;gap:8px}.tile{width:160px;font-size:11px;color:#555;word-wrap:break-word}"
    ".tile img{width:160px;height:160px;object-fit:contain;background:#f4f4f4}"
    ".evidence img{max-width:100%;border:1px solid #ddd}.evidence figcaption{font-size:12px;color:#555}"
    ".summary{border:1px solid #ccc;border-radius:6px;padding:4px 16px 12px;background:#fafafa}"
    ".summary h2{margin-top:12px}.scope{margin:4px 0;font-size:14px}.findings{width:100%}"
    ".findings th{width:150px}.status-pass{color:#1a7f37;font-weight:bold}"
    ".status-fail,.status-unmeasured{color:#b42318;font-weight:bold}.status-insufficient{color:#9a6700}"
    ".chart{width:100%;display:block}.contents ol{columns:2;font-size:14px}"
)


def _css_string(text: str) -> str:
    """Data as a CSS string: every character outside a safe set escaped, so that a workspace name cannot close the
    string or the stylesheet."""
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_.,:()")
    return '"' + "".join(c if c in safe else f"\\{ord(c):x} " for c in text) + '"'


def chromium_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise AuditInputError(
        "a Chromium browser is needed for PDF and PNG/SVG export, and none was found.",
        fix="install it (Debian: apt-get install chromium), or write .html.",
    )


def print_style(name: str, paper: str) -> str:
    footer = _css_string(f"Audit: {name} · pretrain-audit {__version__}")
    return (
        f"@page{{size:{PAPERS[paper]};margin:16mm 14mm 18mm 14mm;"
        f"@bottom-left{{content:{footer};font:8pt Arial,sans-serif;color:#777}}"
        '@bottom-right{content:"Page " counter(page) " of " counter(pages);font:8pt Arial,sans-serif;color:#777}}'
        "@media print{body{max-width:none;margin:0;font-size:10pt}h1{font-size:20pt;margin:0 0 6px}"
        "h2{margin-top:18px}.front{break-after:page}.keep,.figure,figure,.tile,tr,li,.chart{break-inside:avoid}"
        "h2,h3{break-after:avoid}table{width:100%;font-size:8.5pt}td,th{overflow-wrap:anywhere}"
        ".findings{font-size:9.5pt}.evidence img{max-height:95mm;max-width:100%}.contents ol{columns:1}"
        "a{color:inherit;text-decoration:none}}"
    )


def summary_html(summary: ExecutiveSummary) -> str:
    escape = html.escape
    parts = [
        "<section class='summary keep' id='summary'><h2>Summary</h2>",
        f"<p class='scope'><b>Scope.</b> {escape(summary.scope)}</p>",
        f"<p class='scope'><b>Provenance.</b> {escape(summary.provenance)} The full table closes the report.</p>",
        "<h3>Findings</h3><table class='findings'>",
    ]
    parts += [f"<tr><th>{escape(h.audit)}</th><td>{escape(h.finding or '')}</td></tr>" for h in summary.measured]
    parts.append("</table><h3>Gates</h3>")
    if summary.gates:
        parts.append("<table><tr><th>gate</th><th>limit</th><th>measured</th><th>status</th></tr>")
        for judged in summary.gates:
            gate = judged.gate
            measured = "n/a" if gate.measured is None else f"{gate.measured:.4g}"
            status = judged.status.split()[0]
            parts.append(
                f"<tr><td>{escape(gate.name)}</td><td>{gate.limit:g}</td><td>{measured}</td>"
                f"<td class='status-{status}'>{escape(judged.status.upper())}</td></tr>"
            )
        parts.append("</table>")
    parts.append(f"<p>{escape(summary.gates_verdict)}.</p>")
    if summary.not_measured:
        parts.append("<h3>Not measured</h3><ul>")
        parts += [f"<li><b>{escape(h.audit)}</b>: {escape(h.not_measured)}</li>" for h in summary.not_measured]
        parts.append("</ul>")
    parts.append("</section>")
    return "".join(parts)


def contents_html(sections: list[ReportSection]) -> str:
    items = "".join(
        f"<li><a href='#section-{number}'>{html.escape(section.title)}</a></li>"
        for number, section in enumerate(sections, start=1)
    )
    items += "<li><a href='#provenance'>Provenance</a></li>"
    return f"<nav class='contents keep'><h2>Contents</h2><ol>{items}</ol></nav>"


def static_charts(sections: list[ReportSection]) -> dict[int, str]:
    """Every chart as an SVG data URL, keyed by the figure's id(): one kaleido call for all of them (it starts
    Chromium once)."""
    import plotly.io as pio

    figures = [figure for section in sections for figure in section.figures.values()]
    if not figures:
        return {}
    os.environ.setdefault("BROWSER_PATH", chromium_path())
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"{number}.svg" for number in range(len(figures))]
        pio.write_images(figures, paths, width=CHART_WIDTH, height=[figure.layout.height or 450 for figure in figures])
        return {
            id(figure): "data:image/svg+xml;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
            for figure, path in zip(figures, paths)
        }


def chart_html(name: str, figure: Any, static: dict[int, str]) -> str:
    escape = html.escape
    if id(figure) in static:
        title = figure.layout.title.text or name
        image = f"<img class='chart' alt='{escape(title)}' src='{static[id(figure)]}'>"
        return f"<div class='figure' id='{escape(name)}'>{image}</div>"
    return (
        f"<div class='figure' id='{escape(name)}'>"
        + figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"fig-{escape(name)}",
            config={"staticPlot": False, "displaylogo": False},
        )
        + "</div>"
    )
