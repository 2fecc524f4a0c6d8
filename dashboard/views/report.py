"""Report: the same report as `pretrain-audit report`, built and downloaded from here: the HTML file, or the PDF
paginated for signing (A4 or Letter), both opening with the summary that heads the Overview page."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import streamlit as st

from analysis.errors import AuditInputError
from analysis.exports import export_bytes
from analysis.filter_spec import NO_FILTER_HINT
from analysis.report import build_sections, provenance, render_html, write_report
from analysis.workspace import Workspace
from dashboard.state import current_workspace


def render() -> None:
    workspace = current_workspace()
    st.title("Audit report")
    st.caption(
        "One self-contained HTML file (charts and images inlined; opens offline), or a PDF paginated for signing: the "
        "summary (each finding with its interval, the gates, what was not measured) on page 1, then every analysis "
        "with blurred samples of removals, top duplicate groups and regurgitation pairs, and a provenance table. "
        "The CLI writes the same files: `pretrain-audit report DIR --out report.html` (or .pdf)."
    )
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in workspace.config.name)
    html_column, pdf_column = st.columns(2)
    if html_column.button("Build the HTML report", type="primary", key="report-build"):
        with st.spinner("Running every analysis and rendering the report…"):
            sections, parameters = build_sections(workspace)
            st.session_state["report-html"] = render_html(workspace, sections, parameters)
            st.session_state["report-provenance"] = provenance(workspace, parameters)
    paper = pdf_column.radio("PDF paper", ["a4", "letter"], format_func=str.capitalize, horizontal=True, key="paper")
    if pdf_column.button("Build the PDF", key="report-build-pdf"):
        with st.spinner("Running every analysis and printing the PDF…"), tempfile.TemporaryDirectory() as folder:
            try:
                st.session_state["report-pdf"] = write_report(
                    workspace, Path(folder) / "report.pdf", paper=paper
                ).read_bytes()
            except AuditInputError as exc:
                pdf_column.error(str(exc))
    if st.session_state.get("report-pdf"):
        pdf_column.download_button(
            "Download report.pdf",
            st.session_state["report-pdf"],
            file_name=f"audit-report-{name}.pdf",
            mime="application/pdf",
            key="report-download-pdf",
        )
    exports(workspace, name)
    document = st.session_state.get("report-html")
    if document:
        html_column.download_button(
            "Download report.html",
            document.encode("utf-8"),
            file_name=f"audit-report-{name}.html",
            mime="text/html",
            key="report-download",
        )
        st.subheader("Provenance")
        st.table(
            {
                "field": list(st.session_state["report-provenance"]),
                "value": list(st.session_state["report-provenance"].values()),
            }
        )


def exports(workspace: Workspace, name: str) -> None:
    """The lists others holding the dataset can act on, built when the button is pressed (a callable download)."""
    st.subheader("Lists others can act on")
    st.caption(
        "As Re-LAION-5B published after LAION-5B's audit: the **removal list** has one row per removed item (id, URL, "
        "image path, sha256 and PDQ hash from `prepare`, and every reason: each filter with its score and rule), so "
        "anyone holding a copy can clean it by id or by hash; the **keep-list** is what the filters kept, in "
        "img2dataset's columns (url, caption, key) to download the filtered set again; the **Croissant** file "
        "describes the dataset in MLCommons Croissant 1.0 with the audit in its Responsible-AI fields (filters and "
        "what they removed, term shifts with intervals, duplicates, regurgitation, what was not measured). The CLI "
        "writes the same files: `pretrain-audit export DIR --what removals|keep|croissant --out F` (.csv, .parquet, "
        ".json)."
    )
    removals_column, keep_column, croissant_column = st.columns(3)
    if not workspace.config.filtered.defined:
        removals_column.info(f"No filter is defined, so nothing was removed: {NO_FILTER_HINT}")
    for column, what, label, file_name, mime in (
        (removals_column, "removals", f"the removal list ({workspace.n_removed:,} rows)", "csv", "text/csv"),
        (keep_column, "keep", f"the keep-list ({workspace.n_kept:,} rows)", "csv", "text/csv"),
        (croissant_column, "croissant", "the Croissant file (JSON-LD)", "json", "application/ld+json"),
    ):
        if what == "removals" and not workspace.config.filtered.defined:
            continue
        column.download_button(
            f"Download {label}",
            functools.partial(export_bytes, workspace, what),
            file_name=f"{what}-{name}.{file_name}",
            mime=mime,
            on_click="ignore",
            key=f"export-{what}",
        )
