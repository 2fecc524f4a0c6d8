"""The executive summary on the Overview page: the same findings, gates and gaps that open the report
(analysis.summary), computed once per state of the workspace and warmed with the pages."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from analysis.summary import ExecutiveSummary, executive_summary
from analysis.workspace import Workspace
from dashboard.components import cache_key

_MARKDOWN = re.compile(r"([\\`*_\[\]|$<>~])")  # what Markdown or LaTeX reads inside a line


def plain(text: str) -> str:
    """Text from the data (cluster words, workspace names) shown as itself, never as Markdown or LaTeX, where it
    does not start a line (a bullet's text after its label, a caption)."""
    return _MARKDOWN.sub(r"\\\1", text)


@st.cache_resource(show_spinner="Summarising the audit…", max_entries=4)
def _summary(key: str, _workspace: Workspace) -> ExecutiveSummary:
    return executive_summary(_workspace)


def audit_summary(workspace: Workspace) -> ExecutiveSummary:
    return _summary(cache_key(workspace), workspace)


def draw_summary(summary: ExecutiveSummary) -> None:
    st.subheader("Summary")
    st.caption(f"{plain(summary.scope)}  \n{plain(summary.provenance)}")
    st.markdown("\n".join(f"- **{plain(h.audit)}**: {plain(h.finding or '')}" for h in summary.measured))
    st.markdown("**Gates**")
    if summary.gates:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "gate": judged.gate.name,
                        "limit": f"{judged.gate.limit:g}",
                        "measured": "n/a" if judged.gate.measured is None else f"{judged.gate.measured:.4g}",
                        "status": judged.status.upper(),
                    }
                    for judged in summary.gates
                ]
            ),
            hide_index=True,
            width="content",
        )
    verdict = plain(summary.gates_verdict)
    if any(judged.status in ("fail", "unmeasured") for judged in summary.gates):
        st.error(verdict)
    elif summary.gates:
        st.success(verdict)
    else:
        st.info(verdict)
    if summary.not_measured:
        st.markdown(
            "**Not measured**\n\n"
            + "\n".join(f"- **{plain(h.audit)}**: {plain(h.not_measured)}" for h in summary.not_measured)
        )
