"""Report: the same self-contained HTML report as `pretrain-audit report`, built and downloaded from here."""

from __future__ import annotations

import streamlit as st

from analysis.report import build_sections, provenance, render_html
from dashboard.state import current_workspace


def render() -> None:
    workspace = current_workspace()
    st.title("Audit report")
    st.caption(
        "One self-contained HTML file (charts and images inlined; opens offline) with the key numbers of every "
        "analysis, blurred samples of removals, top duplicate groups and regurgitation pairs, and a provenance "
        "table. The CLI writes the same file: `pretrain-audit report DIR --out report.html` (or .pdf)."
    )
    if st.button("Build the report", type="primary", key="report-build"):
        with st.spinner("Running every analysis and rendering the report…"):
            sections, parameters = build_sections(workspace)
            st.session_state["report-html"] = render_html(workspace, sections, parameters)
            st.session_state["report-provenance"] = provenance(workspace, parameters)
    document = st.session_state.get("report-html")
    if document:
        name = "".join(c if c.isalnum() or c in "-_" else "-" for c in workspace.config.name)
        st.download_button(
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
