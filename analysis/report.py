"""The audit report: every analysis's key numbers and charts, sample images, and provenance, as one
self-contained HTML file (plotly.js and images inlined, so it opens offline), a PDF printed by headless
Chromium, and PNG/SVG figures.

All text from the data (captions, prompts, ids) is HTML-escaped: a caption is shown, never run.
"""

from __future__ import annotations

import base64
import html
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis import __version__, figures
from analysis.errors import AuditInputError
from analysis.images import tile_png
from analysis.workspace import Workspace


@dataclass
class ReportSection:
    title: str
    summary: list[str] = field(default_factory=list)
    figures: dict[str, go.Figure] = field(default_factory=dict)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    images: list[tuple[str, list[tuple[str, bytes]]]] = field(default_factory=list)  # (row title, [(label, png)])
    note: str | None = None


def provenance(workspace: Workspace, parameters: dict) -> dict:
    """What a reader needs to reproduce a number: inputs by content hash, embedder, parameters, versions, time."""
    from analysis.embeddings import load_embeddings
    from analysis.pipeline import manifest_fingerprints

    found = load_embeddings(workspace, "original", required=False)
    info = {"workspace": workspace.config.name, "workspace path": str(workspace.config.root.resolve()),
            "synthetic sample": "yes" if workspace.config.synthetic else "no",
            "tool": f"pretrain-audit {__version__}",
            "generated at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "filters": "; ".join(workspace.config.filtered.describe()),
            "embedder": f"{found.meta['embedder']} ({found.meta['embedder_version']})" if found else "not computed"}
    info.update({f"sha256 of {name}": digest for name, digest in manifest_fingerprints(workspace).items()})
    info.update({k: str(v) for k, v in parameters.items()})
    return info


def _tile(workspace: Workspace, relative: str, blur: bool, size: int = 160) -> bytes:
    return tile_png(workspace.config.images_root, relative, blur=blur, size=size)


def build_sections(workspace: Workspace, terms: list[str] | None = None) -> tuple[list[ReportSection], dict]:
    from analysis.bias import bias_report, top_shifted_words
    from analysis.embeddings import load_embeddings
    from analysis.pipeline import caption_index, dedup_for, regurgitation_for, reweighting
    from analysis.removals import removal_by_terms, removal_summary, removed_page, threshold_sweep

    terms = terms or list(workspace.config.default_terms)
    index = caption_index(workspace)
    sections: list[ReportSection] = []
    parameters: dict = {"terms": ", ".join(terms)}

    summary = removal_summary(workspace)
    removals = ReportSection("Removals: what the filters took out")
    removals.summary.append(f"{summary.n_removed:,} of {summary.n_original:,} images removed "
                            f"({summary.fraction_removed:.2%}).")
    removals.summary += [f"{f.name}: {f.n_removed:,} ({f.fraction_removed:.2%}); {f.n_only_this:,} by this filter alone."
                         for f in summary.filters]
    by_term = removal_by_terms(index, workspace.kept, terms, workspace.config.groups)
    removals.figures["removal_rate_by_term"] = figures.removal_rate_chart(by_term, workspace)
    if workspace.config.filtered.kind == "scores":
        removals.figures["score_distributions"] = figures.score_chart(workspace)
        first = workspace.config.filtered.scores[0]
        sweep = threshold_sweep(workspace, index, first.name, terms)
        removals.figures[f"what_if_{first.name}"] = figures.what_if_chart(sweep, first.name, first.threshold, workspace)
    page, _ = removed_page(workspace, index=index, page_size=8)
    removals.images.append(("Removed images (blurred)", [
        (f"{row['id']}: {row['caption'][:60]}", _tile(workspace, str(row.get("image", "") or ""), blur=True))
        for _, row in page.iterrows()]))
    sections.append(removals)

    weights = info = None
    bias_section = ReportSection("Caption bias: frequency shifts and the reweighting fix")
    try:
        fitted = reweighting(workspace, index)
        weights, info = fitted.weights, fitted.summary()
    except AuditInputError as exc:
        bias_section.note = f"Reweighting not shown: {exc}"
    report = bias_report(index, workspace.kept, terms, workspace.config.groups, weights, info)
    shifts = [s for s in report.terms + report.groups if s.relative_change is not None]
    for shift in shifts:
        line = f"“{shift.name}”: {shift.original_frequency:.2%} → {shift.filtered_frequency:.2%} " \
               f"({shift.relative_change:+.1%}, 95% CI {shift.ci95[0]:+.1%} … {shift.ci95[1]:+.1%})"
        if shift.reweighted_change is not None:
            line += f"; after reweighting {shift.reweighted_change:+.1%}"
        bias_section.summary.append(line)
    if shifts:
        bias_section.figures["term_shifts"] = figures.shift_chart(shifts, workspace)
    top = top_shifted_words(index, workspace.kept)
    if not top.empty:
        bias_section.figures["top_shifted_words"] = figures.top_words_chart(top, workspace)
    if info:
        bias_section.figures["reweighting_weights"] = figures.weights_chart(weights[workspace.kept], info, workspace)
        parameters["reweighting"] = f"{info['method']}; C={info['C']}, clip={info['clip']}, features={info['features']}"
    sections.append(bias_section)

    found = load_embeddings(workspace, "original", required=False)
    if found is None:
        sections.append(ReportSection("Near-duplicates", note="Not computed: run `pretrain-audit prepare DIR` first."))
        sections.append(ReportSection("Regurgitation", note="Not computed: run `pretrain-audit prepare DIR` first."))
        return sections, parameters
    dedup = dedup_for(workspace)
    parameters["dedup"] = f"cosine ≥ {dedup.threshold}, K={dedup.clusters}, R={dedup.clusterings}, keep=centre"
    duplicates = ReportSection("Near-duplicates (clustered search, DALL·E 2 method)")
    duplicates.summary.append(f"{dedup.n_in_groups:,} images in {dedup.n_groups:,} duplicate groups "
                              f"({len(dedup.pairs):,} pairs); dedup removes {dedup.n_removed:,} "
                              f"({dedup.n_removed / dedup.n_images:.1%}).")
    duplicates.figures["duplicate_group_sizes"] = figures.group_size_chart(dedup, workspace)
    ids = workspace.original["id"].to_numpy()
    images = workspace.original["image"].astype(str).to_numpy() if "image" in workspace.original else np.full(len(ids), "")
    for group in range(min(3, dedup.n_groups)):
        members = np.flatnonzero(dedup.group_id == group)[:8]
        duplicates.images.append((f"Group {group} ({int((dedup.group_id == group).sum())} images)", [
            (f"{ids[m]}{' (kept)' if dedup.keep[m] else ''}", _tile(workspace, images[m], blur=not workspace.kept[m]))
            for m in members]))
    sections.append(duplicates)

    if workspace.generated is None or load_embeddings(workspace, "generated", required=False) is None:
        sections.append(ReportSection("Regurgitation", note="No generated samples (or not prepared)."))
        return sections, parameters
    result = regurgitation_for(workspace)
    parameters["regurgitation"] = f"cosine ≥ {result.threshold}, k={result.k}, search: {result.method}"
    payload = result.to_json()
    regurgitation = ReportSection("Regurgitation: generated samples vs nearest training images")
    regurgitation.summary.append(f"{payload['n_flagged']:,} of {payload['n_generated']:,} generated samples flagged as "
                                 f"likely copies ({payload['rate']:.1%}, 95% CI {payload['ci95'][0]:.1%} – "
                                 f"{payload['ci95'][1]:.1%}).")
    regurgitation.figures["regurgitation_similarity"] = figures.similarity_chart(result.samples, result.threshold,
                                                                                 workspace)
    if result.samples["group_size"].notna().any():
        regurgitation.figures["copies_vs_group_size"] = figures.copy_group_chart(result.samples, result.threshold,
                                                                                 workspace)
    generated_images = dict(zip(workspace.generated["id"], workspace.generated["image"].astype(str)))
    training_images = dict(zip(ids, images))
    kept_of = dict(zip(ids, workspace.kept))
    for _, sample in result.samples.sort_values("similarity", ascending=False).head(4).iterrows():
        regurgitation.images.append((f"{sample['id']} (cos {sample['similarity']:.3f})", [
            ("generated", _tile(workspace, generated_images[sample["id"]], blur=False)),
            (f"nearest: {sample['best_match']}", _tile(workspace, training_images[sample["best_match"]],
                                                        blur=not kept_of[sample["best_match"]]))]))
    sections.append(regurgitation)
    return sections, parameters


def render_html(workspace: Workspace, sections: list[ReportSection], parameters: dict) -> str:
    from plotly.offline import get_plotlyjs

    escape = html.escape
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             f"<title>Audit report: {escape(workspace.config.name)}</title>",
             "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
             "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
             "<style>body{font-family:Arial,sans-serif;max-width:1100px;margin:24px auto;color:#222}"
             "h1{font-size:28px}h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}"
             ".warn{background:#fff6d6;padding:8px 12px;border-radius:6px}.note{color:#666}"
             "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left}"
             ".tiles{display:flex;flex-wrap:wrap;gap:8px}.tile{width:160px;font-size:11px;color:#555;word-wrap:break-word}"
             ".tile img{width:160px;height:160px;object-fit:contain;background:#f4f4f4}"
             "@media print{.figure{break-inside:avoid}h2{break-before:page}}</style>",
             f"<script>{get_plotlyjs()}</script></head><body>",
             f"<h1>Training-data audit: {escape(workspace.config.name)}</h1>"]
    if workspace.config.synthetic:
        parts.append("<p class='warn'>SYNTHETIC sample workspace built by <code>pretrain-audit sample</code>: "
                     "not real training data.</p>")
    parts.append(f"<p>{workspace.n_original:,} original images, {workspace.n_kept:,} after filtering, "
                 f"{workspace.n_removed:,} removed; {workspace.n_generated:,} generated samples.</p>")
    for number, section in enumerate(sections):
        parts.append(f"<h2>{escape(section.title)}</h2>")
        if section.note:
            parts.append(f"<p class='note'>{escape(section.note)}</p>")
        if section.summary:
            parts.append("<ul>" + "".join(f"<li>{escape(line)}</li>" for line in section.summary) + "</ul>")
        for name, figure in section.figures.items():
            parts.append(f"<div class='figure' id='{escape(name)}'>"
                         + figure.to_html(full_html=False, include_plotlyjs=False, div_id=f"fig-{escape(name)}",
                                          config={"staticPlot": False, "displaylogo": False}) + "</div>")
        for title, tiles in section.images:
            parts.append(f"<h3>{escape(title)}</h3><div class='tiles'>")
            for label, png in tiles:
                data = base64.b64encode(png).decode("ascii")
                parts.append(f"<div class='tile'><img alt='{escape(label)}' src='data:image/png;base64,{data}'>"
                             f"<div>{escape(label)}</div></div>")
            parts.append("</div>")
    parts.append("<h2>Provenance</h2><table>")
    for key, value in provenance(workspace, parameters).items():
        parts.append(f"<tr><th>{escape(key)}</th><td>{escape(value)}</td></tr>")
    parts.append("</table></body></html>")
    return "".join(parts)


def write_report(workspace: Workspace, out: Path, *, terms: list[str] | None = None,
                 figures_dir: Path | None = None) -> Path:
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
    raise AuditInputError("a Chromium browser is needed for PDF and PNG/SVG export, and none was found.",
                          fix="install it (Debian: apt-get install chromium), or write .html.")


def print_pdf(source: Path, out: Path) -> None:
    command = [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--run-all-compositor-stages-before-draw",
               "--virtual-time-budget=15000", "--no-pdf-header-footer", f"--print-to-pdf={out.resolve()}",
               source.resolve().as_uri()]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if completed.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise AuditInputError(f"Chromium could not print the PDF ({completed.stderr.strip()[-200:]}).", path=out,
                              fix="check that chromium runs headless on this machine, or write .html.")


def export_figures(sections: list[ReportSection], directory: Path, width: int = 1100) -> list[Path]:
    """Each chart as PNG (2× scale) and SVG, through Plotly's kaleido and the local Chromium."""
    import os

    import plotly.io as pio

    os.environ.setdefault("BROWSER_PATH", chromium_path())
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for section in sections:
        for name, figure in section.figures.items():
            for suffix, scale in ((".png", 2), (".svg", 1)):
                path = directory / f"{name}{suffix}"
                pio.write_image(figure, path, width=width, height=figure.layout.height or 450, scale=scale)
                written.append(path)
    return written
