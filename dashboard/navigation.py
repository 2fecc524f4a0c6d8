"""The list of pages, in the order a reviewer works through an audit."""

from __future__ import annotations

import streamlit as st

from dashboard.views import bias, duplicates, overview, regurgitation, removals, report


def build_pages() -> list[st.Page]:
    return [
        st.Page(overview.render, title="Overview", icon=":material/home:", url_path="overview", default=True),
        st.Page(removals.render, title="Removals", icon=":material/block:", url_path="removals"),
        st.Page(bias.render, title="Bias", icon=":material/balance:", url_path="bias"),
        st.Page(duplicates.render, title="Duplicates", icon=":material/content_copy:", url_path="duplicates"),
        st.Page(regurgitation.render, title="Regurgitation", icon=":material/compare:", url_path="regurgitation"),
        st.Page(report.render, title="Report", icon=":material/description:", url_path="report"),
    ]
