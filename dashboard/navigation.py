"""The list of pages, in the order a reviewer works through an audit."""

from __future__ import annotations

import streamlit as st

from dashboard.pages import overview


def build_pages() -> list[st.Page]:
    return [
        st.Page(overview.render, title="Overview", icon="🏠", url_path="overview", default=True),
    ]
