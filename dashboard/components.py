"""Drawing helpers shared by the pages: report-ready chart styling, image tiles, cached analyses."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from analysis.captions import DocTermIndex
from analysis import images
from analysis.pipeline import caption_index
from analysis.workspace import Workspace

def show_figure(figure: go.Figure, key: str) -> None:
    st.plotly_chart(figure, key=key, config={"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}})


def cache_key(workspace: Workspace) -> str:
    """Key of derived dashboard artifacts: the workspace and the state of its config and manifests."""
    from dashboard.state import _stamp

    return f"{workspace.config.root.resolve()}|{_stamp(workspace.config.root)}"


@st.cache_resource(show_spinner="Indexing captions…", max_entries=4)
def _index(directory: str, stamp: tuple, _workspace: Workspace) -> DocTermIndex:
    return caption_index(_workspace)


def workspace_index(workspace: Workspace) -> DocTermIndex:
    from dashboard.state import _stamp

    return _index(str(workspace.config.root.resolve()), _stamp(workspace.config.root), workspace)


@st.cache_data(max_entries=2000, show_spinner=False)
def tile_png(images_root: str, relative: str, blur: bool, size: int = 256) -> bytes:
    """Blurred on the server, so the unblurred pixels never reach the browser."""
    return images.tile_png(Path(images_root), relative, blur=blur, size=size)


def reviewer_name() -> str:
    """The logged-in user's identity when Streamlit auth is configured, else the name typed in the sidebar."""
    try:
        if st.user.is_logged_in:
            return str(st.user.get("email") or st.user.get("name") or "")
    except Exception:  # auth not configured: fall back to the typed name
        pass
    return st.session_state.get("reviewer", "").strip()


def reviewer_box() -> str:
    name = reviewer_name()
    if name and "reviewer" not in st.session_state:
        st.sidebar.caption(f"Reviewing as **{name}** (from login)")
        return name
    st.sidebar.text_input("Reviewer name", key="reviewer", placeholder="your name, recorded with each verdict")
    return reviewer_name()


def image_tile(workspace: Workspace, relative: str, *, blur: bool, caption: str | None = None) -> None:
    """An image (or a placeholder saying why there is none); `caption` is shown as plain text."""
    st.image(tile_png(str(workspace.config.images_root), relative or "", blur), width="stretch")
    if caption is not None:
        st.text(caption[:300])


@st.cache_resource(show_spinner=False, max_entries=8)
def _embeddings(directory: str, stamp: tuple, cache_stamp: float, which: str, _workspace: Workspace):
    from analysis.embeddings import load_embeddings

    return load_embeddings(_workspace, which, required=False)


def loaded_embeddings(workspace: Workspace, which: str = "original"):
    """The embeddings `prepare` cached for this workspace (memory-mapped, loaded once per change), or None."""
    from dashboard.state import _stamp

    marker = workspace.config.cache_dir / "embeddings" / "current.json"
    return _embeddings(str(workspace.config.root.resolve()), _stamp(workspace.config.root),
                       marker.stat().st_mtime if marker.exists() else 0.0, which, workspace)


def require_embeddings(workspace: Workspace, which: str = "original"):
    """The cached embeddings, or an explanation and a button that computes them (with progress)."""
    from analysis.embeddings import prepare

    found = loaded_embeddings(workspace, which)
    if found is not None:
        return found
    st.info("This page needs image embeddings, which have not been computed for this workspace yet. "
            "Run `pretrain-audit prepare DIR` in a terminal, or compute them here.")
    if st.button("Compute embeddings now", key=f"prepare-{which}"):
        status = st.status("Computing embeddings…", expanded=True)
        prepare(workspace, progress=False, log=status.write)
        status.update(label="Embeddings ready", state="complete")
        st.rerun()
    st.stop()


def verdict_control(store, kind: str, item: str, verdict: str | None, reviewer: str, *, key: str, label: str,
                    options: tuple[str, ...], labels: dict[str, str] | None = None, show_label: bool = True) -> None:
    """One verdict widget: shows the stored latest verdict and appends a new one when the reviewer picks."""
    if st.session_state.get(key) != verdict:
        st.session_state[key] = verdict  # the stored verdict, including one made in another session
    st.segmented_control(label, options, key=key, format_func=labels.get if labels else str,
                         label_visibility="visible" if show_label else "collapsed", disabled=not reviewer,
                         help=None if reviewer else "Enter your reviewer name in the sidebar first.",
                         on_change=_record_verdict, args=(store, kind, item, key, reviewer))


def _record_verdict(store, kind: str, item: str, key: str, reviewer: str) -> None:
    choice = st.session_state.get(key)
    if choice:
        store.record(kind, item, choice, reviewer)
        st.toast(f"{item}: {choice} (recorded)")
