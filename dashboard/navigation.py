"""The list of pages: Overview, then one page per registered analysis (in the registry's order), then Report.

Every page has its own URL (`/overview`, `/removals`, ...). Streamlit serves its default page at the root and
nowhere else, so the default is a hidden page that switches to `/overview`: the sidebar's name is the URL.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

import streamlit as st

from analysis.contract import Analysis
from analysis.registry import ANALYSES
from dashboard.state import current_workspace
from dashboard.views import overview, report


def when_runnable(analysis: Analysis, render: Callable[[], None]) -> Callable[[], None]:
    """The page, or a plain notice of what the workspace lacks for it (a filter, say) and how to add it."""

    def page() -> None:
        missing = analysis.missing_input(current_workspace())
        if missing is None:
            render()
            return
        st.title(analysis.title)
        st.info(f"{missing[0].capitalize()}.\n\nTo add a filter: {missing[1]}")

    return page


def analysis_views() -> list[tuple[Analysis, ModuleType]]:
    """Each registered analysis that has a page, with its view module (`dashboard/views/<page>.py`)."""
    return [(a, importlib.import_module(f"dashboard.views.{a.page}")) for a in ANALYSES if a.page]


def build_pages() -> list[st.Page]:
    overview_page = st.Page(overview.render, title="Overview", icon=":material/home:", url_path="overview")
    pages = [
        st.Page(
            lambda: st.switch_page(overview_page), title="Overview", url_path="start", default=True, visibility="hidden"
        ),
        overview_page,
    ]
    for analysis, view in analysis_views():
        pages.append(
            st.Page(
                when_runnable(analysis, view.render),
                title=analysis.title,
                icon=analysis.icon,
                url_path=analysis.page,
            )
        )
    pages.append(st.Page(report.render, title="Report", icon=":material/description:", url_path="report"))
    return pages
