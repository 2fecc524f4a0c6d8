"""Entry point: `streamlit run dashboard/app.py -- --workspace DIR` (or `pretrain-audit dashboard DIR`)."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run` puts this file's folder, not the repository, on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard.navigation import build_pages  # noqa: E402

st.set_page_config(page_title="pretrain-audit", page_icon="🔎", layout="wide")
page = st.navigation(build_pages())
page.run()
