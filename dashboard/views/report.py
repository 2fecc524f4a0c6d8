"""Report: the same report as `pretrain-audit report`, built and downloaded from here: the HTML file, or the PDF
paginated for signing (A4 or Letter), both opening with the summary that heads the Overview page."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from analysis.errors import AuditInputError
from analysis.report import build_sections, provenance, render_html, write_report
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
