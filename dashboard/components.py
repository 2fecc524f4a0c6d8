"""Drawing helpers shared by the pages: report-ready chart styling, image tiles, cached analyses."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import plotly.graph_objects as go
import streamlit as st

from analysis import images
from analysis.captions import DocTermIndex, caption_index
from analysis.embedding_store import EmbeddingSet, current_marker, load_embeddings
from analysis.workspace import Workspace
from dashboard.state import workspace_stamp


def show_figure(figure: go.Figure, key: str) -> None:
    st.plotly_chart(
        figure, key=key, config={"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
    )


SECTION_KEY = "section"


def open_section(names: list[str]) -> tuple[str, object]:
    """A page's sections as tabs of which only the open one runs and is sent to the browser (Streamlit's lazy
    tabs): a page's first view carries only its first section. Bound to the URL (`?section=NAME`), so a
    reviewer can link a section. Returns the open section's name and its container."""
    tabs = st.tabs(names, key=SECTION_KEY, bind="query-params")
    name, tab = next(((n, t) for n, t in zip(names, tabs) if t.open), (names[0], tabs[0]))
    return name, tab


def cache_key(workspace: Workspace) -> str:
    """The one key of every Streamlit cache of a page: the workspace, the state of its config and manifests, and
    the last `prepare` (which rewrites the current-embeddings marker). Cached functions take it first and
    underscore the objects it stands for (`_workspace`, `_found`), which Streamlit does not hash."""
    marker = current_marker(workspace)
    prepared = marker.stat().st_mtime_ns if marker.exists() else 0
    return f"{workspace.config.root.resolve()}|{workspace_stamp(workspace.config.root)}|{prepared}"


@st.cache_resource(show_spinner=False, max_entries=16)
def _analysis_result(key: str, name: str, fingerprint: str, _workspace: Workspace, _params: Any) -> Any:
    from analysis.registry import by_name

    return by_name(name).run(_workspace, _params)


def settings(name: str, workspace: Workspace, **overrides: Any) -> Any:
    """An analysis's parameters as the workspace sets them (audit.toml's `[name]`), with what the page's controls
    chose: the page builds these and nothing else. Work stays in this process (`scheduler="none"`): a page never
    starts a cluster."""
    from analysis.registry import by_name

    analysis = by_name(name)
    if "scheduler" in {spec.name for spec in dataclasses.fields(analysis.Params)}:
        overrides.setdefault("scheduler", "none")
    return analysis.settings(workspace, **overrides)


def copy_search_settings(
    name: str, workspace: Workspace, inliers: int | None, tiers: tuple[str, ...] = (), threshold: float | None = None
) -> Any:
    """The parameters of a copy search (dedup, regurgitation) as a copy page's controls chose them: verified on
    pixels at `inliers` acting on `tiers`, or, with `inliers` None, by cosine alone at `threshold`; the rest as the
    workspace sets it."""
    if inliers is None:
        return settings(name, workspace, verify="none", threshold=threshold)
    return settings(name, workspace, verify="local-features", inliers=inliers, tiers=",".join(tiers))


def first_copy_search(name: str, workspace: Workspace, found: EmbeddingSet, cosine_default: float) -> Any:
    """The parameters of a copy page's first view (its controls where the workspace's settings put them), which
    its `warm` computes before anyone asks."""
    configured = settings(name, workspace)
    inliers = initial_inliers(workspace, found, configured)
    if inliers is not None:
        return copy_search_settings(name, workspace, inliers, initial_tiers(configured))
    return copy_search_settings(name, workspace, None, threshold=configured.threshold or cosine_default)


def settings_note(name: str, workspace: Workspace) -> None:
    """One line saying which of the page's starting points come from audit.toml, so that a reviewer comparing two
    workspaces knows why their pages start apart."""
    body = workspace.config.analysis_settings.get(name)
    if body:
        chosen = ", ".join(f"{key} = {value!r}" for key, value in body.items())
        st.caption(f"Set in audit.toml [{name}]: {chosen} (the command, the report and `check` use them too).")


def analysis_result(name: str, workspace: Workspace, params: Any, spinner: str) -> Any:
    """`run(workspace, params)` of an analysis, as the CLI and the report call it, kept in memory per parameters'
    fingerprint (the computation itself is cached on disk by the analysis)."""
    with st.spinner(spinner):
        return _analysis_result(cache_key(workspace), name, params.fingerprint(), workspace, params)


@st.cache_resource(show_spinner="Indexing captions…", max_entries=4)
def _index(key: str, _workspace: Workspace) -> DocTermIndex:
    return caption_index(_workspace)


def workspace_index(workspace: Workspace) -> DocTermIndex:
    return _index(cache_key(workspace), workspace)


@st.cache_data(max_entries=2000, show_spinner=False)
def tile_png(
    images_root: str, relative: str, blur: bool, size: int = 256, level: str = "strong", greyscale: bool = False
) -> bytes:
    """Blurred on the server, so the unblurred pixels never reach the browser."""
    return images.tile_png(Path(images_root), relative, blur=blur, size=size, level=level, greyscale=greyscale)


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


def grid_cells(count: int, per_row: int) -> Iterator[Any]:
    """One cell per item, row by row. Each row is its own `st.columns`, so a row's cards start at the same height;
    in one set of columns filled in turn, each column stacked its own cards and the rows drifted apart."""
    for start in range(0, count, per_row):
        yield from st.columns(per_row)[: min(per_row, count - start)]


ID_BREAKS = "/_-.:#"  # where a long id may wrap: after the separators of paths, shard keys and file names


def breakable(text: str) -> str:
    """`text` as HTML for a Markdown element: every character but ASCII letters, digits and spaces written as an
    entity (so an id is never read as Markdown or HTML) and a line-break opportunity after each separator, so that a
    long id ("flickr30k/1000268201_693b08cb0e.jpg") wraps at its parts instead of mid-word in a narrow card."""
    parts = []
    for character in text:
        plain = (character.isascii() and character.isalnum()) or character == " "
        parts.append(character if plain else f"&#{ord(character)};")
        if character in ID_BREAKS:
            parts.append("<wbr>")
    return "".join(parts)


def id_caption(item_id: str, detail: str = "") -> None:
    """A card's id line: the id (wrapping at its separators, never mid-word) and, after it, what the card says."""
    st.caption(breakable(str(item_id)) + (" · " + breakable(detail) if detail else ""), unsafe_allow_html=True)


def image_tile(
    workspace: Workspace, relative: str, *, blur: bool, caption: str | None = None, greyscale: bool = False
) -> None:
    """An image (or a placeholder saying why there is none), blurred at the workspace's `[review] blur` level, or in
    greyscale when a reviewer reveals it so; `caption` is shown as plain text."""
    level = workspace.config.review.blur
    st.image(tile_png(str(workspace.config.images_root), relative or "", blur, 256, level, greyscale), width="stretch")
    if caption is not None:
        st.text(caption[:300])


@st.cache_resource(show_spinner=False, max_entries=8)
def _embeddings(key: str, which: str, _workspace: Workspace) -> EmbeddingSet | None:
    return load_embeddings(_workspace, which, required=False)


def loaded_embeddings(workspace: Workspace, which: str = "original") -> EmbeddingSet | None:
    """The embeddings `prepare` cached for this workspace (memory-mapped, loaded once per change), or None."""
    return _embeddings(cache_key(workspace), which, workspace)


def require_embeddings(workspace: Workspace, which: str = "original"):
    """The cached embeddings, or an explanation and a button that computes them (with progress)."""
    from analysis.embeddings import prepare

    found = loaded_embeddings(workspace, which)
    if found is not None:
        return found
    st.info(
        "This page needs image embeddings, which have not been computed for this workspace yet. "
        "Run `pretrain-audit prepare DIR` in a terminal, or compute them here."
    )
    if st.button("Compute embeddings now", key=f"prepare-{which}"):
        status = st.status("Computing embeddings…", expanded=True)
        prepare(workspace, progress=False, log=status.write)
        status.update(label="Embeddings ready", state="complete")
        st.rerun()
    st.stop()


def verdict_control(
    store,
    kind: str,
    item: str,
    verdict: str | None,
    reviewer: str,
    *,
    key: str,
    label: str,
    options: tuple[str, ...],
    labels: dict[str, str] | None = None,
    show_label: bool = True,
    role: str = "reviewer",
) -> None:
    """One verdict widget: shows this reviewer's stored latest verdict (`verdict`) and appends a new one, in the
    reviewer's role, when they pick."""
    if st.session_state.get(key) != verdict:
        st.session_state[key] = verdict  # the stored verdict, including one made in another session
    st.segmented_control(
        label,
        options,
        key=key,
        format_func=(lambda option: labels.get(option, option)) if labels else str,
        label_visibility="visible" if show_label else "collapsed",
        disabled=not reviewer,
        help=None if reviewer else "Enter your reviewer name in the sidebar first.",
        on_change=_record_verdict,
        args=(store, kind, item, key, reviewer, role),
    )


def _record_verdict(store, kind: str, item: str, key: str, reviewer: str, role: str) -> None:
    choice = st.session_state.get(key)
    if choice:
        store.record(kind, item, choice, reviewer, role=role)
        st.toast(f"{item}: {choice} (recorded{' as adjudicator' if role == 'adjudicator' else ''})")


def initial_inliers(workspace: Workspace, found: EmbeddingSet, configured: Any) -> int | None:
    """Where `verification_control` starts, from the workspace's settings: the inlier threshold when verifying on
    pixels (the default where the images are there, unless audit.toml sets verify = "none"), else None. A page's
    `warm` computes this first view."""
    from analysis.copies.candidates import INLIER_THRESHOLD
    from analysis.copies.feature_store import verification_unavailable

    if configured.verify == "none" or verification_unavailable(workspace, found):
        return None
    return INLIER_THRESHOLD if configured.inliers is None else int(configured.inliers)


def verification_control(
    workspace: Workspace, found: EmbeddingSet, configured: Any, *, key: str, judged: str, noun: str
) -> int | None:
    """The choice a copy page shares: verified on pixels (and its inlier slider) or embedding cosine alone, starting
    from the workspace's settings (`configured`: the analysis's parameters). Returns the inlier threshold, or None
    for cosine alone (the only choice when the images are absent)."""
    from analysis.copies.candidates import INLIER_THRESHOLD
    from analysis.copies.feature_store import verification_unavailable

    unavailable = verification_unavailable(workspace, found)
    start = initial_inliers(workspace, found, configured)
    modes = ([] if unavailable else [VERIFIED_MODE]) + [COSINE_MODE]
    mode = st.radio(
        judged,
        modes,
        index=modes.index(COSINE_MODE if start is None else VERIFIED_MODE),
        horizontal=True,
        key=f"{key}-mode",
    )
    if unavailable:
        st.caption(f"Pixel verification is off: {unavailable}. {noun} judged by embedding cosine alone.")
    if mode != VERIFIED_MODE:
        return None
    inliers = INLIER_THRESHOLD if configured.inliers is None else int(configured.inliers)
    return int(
        st.slider(
            "Local-feature inliers that verify a copy",
            4,
            max(60, inliers),
            inliers,
            key=f"{key}-inliers",
            help=f"default {INLIER_THRESHOLD}, calibrated on real photos (docs/analyses.md, Verified copies)"
            + ("" if inliers == INLIER_THRESHOLD else f"; {inliers} is this workspace's setting (audit.toml)"),
        )
    )


def initial_tiers(configured: Any) -> tuple[str, ...]:
    """Where `tier_control` starts: the tiers the workspace's settings act on."""
    from analysis.copies.verification_options import chosen_tiers

    return chosen_tiers(configured.tiers)


def tier_control(key: str, verb: str, configured: Any) -> tuple[str, ...]:
    """Which kinds of verified pair the page acts on: as the workspace sets it (byte-identical files and copies by
    default); second photos of the same scene when asked (they are shown either way)."""
    from analysis.copies.tiers import TIERS

    include = st.toggle(
        f"Also {verb} second shots of the same scene",
        value="same-scene" in initial_tiers(configured),
        key=f"{key}-same-scene",
        help="A verified pair is a copy when its pixels agree once the edit is undone, and the same scene when they "
        "share a region but differ inside it (burst shots, one place photographed twice). Rule and figures: "
        "docs/analyses.md, Duplicate tiers.",
    )
    return TIERS if include else tuple(tier for tier in TIERS if tier != "same-scene")


TIER_COLOURS: dict[str, Literal["violet", "red", "orange"]] = {
    "byte-identical": "violet",
    "copy": "red",
    "same-scene": "orange",
}


def tier_badge(tier: str | None, acted: bool) -> None:
    """The kind of a verified pair, and whether the page acts on it (a same-scene pair is shown, not counted)."""
    if tier:
        st.badge(tier.replace("-", " ") + ("" if acted else " · not counted"), color=TIER_COLOURS.get(tier, "orange"))


VERIFIED_MODE = "verified on pixels (local features)"
COSINE_MODE = "embedding cosine only"


@st.cache_data(show_spinner="Drawing the matched keypoints…", max_entries=64)
def pair_evidence_png(images_root: str, image_a: str, image_b: str, blur_a: bool, blur_b: bool):
    """The matched-keypoints picture of a pair (blurred sides stay blurred), once per pair and blur state."""
    from analysis.copies.evidence import pair_evidence

    return pair_evidence(Path(images_root), image_a, image_b, blur_a=blur_a, blur_b=blur_b)
