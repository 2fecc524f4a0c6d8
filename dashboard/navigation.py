"""The list of pages: Overview, then one page per registered analysis (in the registry's order), then Report."""

from __future__ import annotations

import importlib

import streamlit as st

from analysis.registry import ANALYSES
from dashboard.views import overview, report


def build_pages() -> list[st.Page]:
    pages = [st.Page(overview.render, title="Overview", icon=":material/home:", url_path="overview", default=True)]
    for analysis in ANALYSES:
        if analysis.page:
            view = importlib.import_module(f"dashboard.views.{analysis.page}")
            pages.append(st.Page(view.render, title=analysis.title, icon=analysis.icon, url_path=analysis.page))
    pages.append(st.Page(report.render, title="Report", icon=":material/description:", url_path="report"))
    return pages
