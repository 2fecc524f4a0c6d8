"""Map: the dataset drawn in two dimensions (UMAP of the image embeddings), coloured by what the filters removed,
by duplicate group, by visual cluster or by a score, with generated samples on top; a click or a lasso lists the
images under it (removed ones blurred)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from analysis.concepts.cached import generated_positions
from analysis.concepts.figures import GENERATED_SHOWN, MAP_POINTS, map_figure, shown_rows
from analysis.concepts.projection import rows_in_region
from analysis.dedup.cached import latest_dedup
from analysis.errors import AuditInputError
from dashboard.components import (
    analysis_result,
    cache_key,
    loaded_embeddings,
    require_embeddings,
    settings,
    settings_note,
)
from dashboard.concepts import concept_table, concepts_result, dataset_map, image_grid
from dashboard.concepts import warm as warm_concepts
from dashboard.review import review_store, reviewer_sidebar
from dashboard.state import current_workspace

LISTED = 24
STATUS, CLUSTER, GROUP = "kept / removed", "visual cluster", "duplicate group"


@st.cache_resource(show_spinner="Loading the duplicate groups…", max_entries=4)
def _groups(key: str, _workspace) -> np.ndarray | None:
    """Dedup's groups at the workspace's settings, as `pretrain-audit dedup` forms them."""
    result = latest_dedup(_workspace, loaded_embeddings(_workspace), settings("dedup", _workspace))
    return None if result is None else result.group_id


@st.cache_resource(show_spinner="Placing the generated samples on the map…", max_entries=4)
def _generated(key: str, _workspace, _projection):
    """Positions of at most GENERATED_SHOWN generated samples (those flagged as copies first), labels, and the
    positions of their nearest training images (None when the nearest-image search is not available)."""
    placed = generated_positions(_workspace, _projection, loaded_embeddings(_workspace))
    if placed is None:
        return None
    positions, rows = placed
    generated_ids = _workspace.generated["id"].astype(str).to_numpy()[rows]
    try:  # flagged as the Regurgitation page and the command flag them at the workspace's settings
        params = settings("regurgitation", _workspace)
        samples = analysis_result("regurgitation", _workspace, params, "Searching nearest training images…").samples
        samples = samples.set_index("id")
    except AuditInputError:
        samples = None
    flagged = (
        np.zeros(len(rows), dtype=bool)
        if samples is None
        else samples["flagged"].reindex(generated_ids).fillna(False).to_numpy(dtype=bool)
    )
    chosen = shown_rows(np.arange(len(rows)), np.flatnonzero(flagged), GENERATED_SHOWN)
    positions, generated_ids = positions[chosen], generated_ids[chosen]
    labels = pd.Series([f"generated {g}" for g in generated_ids])
    if samples is None:
        return positions, labels, None
    matches = _workspace.positions_of(samples["best_match"].reindex(generated_ids).fillna("").astype(str))
    if len(matches) != len(generated_ids):  # a sample without a match: no line for any, rather than wrong ones
        return positions, labels, None
    labels = pd.Series(
        [f"generated {g}<br>nearest training image {samples.at[g, 'best_match']}" for g in generated_ids]
    )
    return positions, labels, _projection.xy[matches]


def warm(workspace) -> None:
    """The table, the map and the first view's figure (kept / removed, generated samples on), before anyone asks."""
    warm_concepts(workspace)
    if loaded_embeddings(workspace) is not None and workspace.config.filtered.defined:
        _figure(cache_key(workspace), STATUS, workspace.n_generated > 0, workspace, dataset_map(workspace))


def _colouring(workspace, choice: str, rows: np.ndarray) -> tuple[pd.Series, str] | None:
    if choice == STATUS:
        return pd.Series(np.where(workspace.kept[rows], "kept", "removed")), STATUS
    if choice == CLUSTER:
        table = concept_table(workspace)
        labels = _cluster_labels(cache_key(workspace), workspace, table)
        return pd.Series(labels[rows]), CLUSTER
    if choice == GROUP:
        groups = _groups(cache_key(workspace), workspace)
        if groups is None:
            return None
        return pd.Series(np.where(groups[rows] >= 0, "in a duplicate group", "in no group")), GROUP
    column = choice.removeprefix("score: ")
    return pd.Series(workspace.original[column].to_numpy(dtype=np.float64)[rows]), column


@st.cache_data(show_spinner=False, max_entries=4)
def _cluster_labels(key: str, _workspace, _table) -> np.ndarray:
    clusters = concepts_result(_workspace).clusters
    words = {c.cluster: ", ".join(c.top_words[:2]) for c in _table.clusters}
    names = np.array([f"{c}: {words.get(c, '')}" for c in range(clusters.n_clusters)] + ["no embedding"], dtype=object)
    return names[clusters.labels]


@st.cache_data(show_spinner=False, max_entries=8)
def _hover(key: str, _workspace, rows_key: int, _rows: np.ndarray) -> pd.Series:
    ids = _workspace.original["id"].astype(str).to_numpy()[_rows]
    captions = _workspace.original["caption"].astype(str).str.slice(0, 60).to_numpy()[_rows]
    return pd.Series([f"{i}<br>{c}" for i, c in zip(ids, captions)])


@st.cache_resource(show_spinner=False, max_entries=16)
def _figure(key: str, choice: str, overlay: bool, _workspace, _projection):
    """The map for one colouring: drawn once per workspace and choice (sampling, density and the view's range scan a
    million positions), then only sent."""
    valid_rows = np.flatnonzero(np.isfinite(_projection.xy).all(axis=1))
    rows = shown_rows(valid_rows, None, MAP_POINTS)  # uniform: colours keep their true proportions
    colouring = _colouring(_workspace, choice, rows)
    if colouring is None:
        return None
    colour, name = colouring
    return map_figure(
        _workspace,
        _projection.xy,
        rows,
        colour,
        name,
        _hover(key, _workspace, len(rows), rows),
        method=_projection.method,
        generated=_generated(key, _workspace, _projection) if overlay else None,
    )


def render() -> None:
    workspace = current_workspace()
    st.title("Map of the dataset")
    st.caption(
        "Each point is an image, placed by UMAP so that images the embedder sees as alike lie close together. "
        "Choose a point, or drag a lasso or a box around a region, to list its images below (removed ones blurred)."
    )
    settings_note("concepts", workspace)
    require_embeddings(workspace)
    reviewer = reviewer_sidebar(workspace, review_store(workspace))
    projection = dataset_map(workspace)
    scores = [f"score: {f.column}" for f in workspace.config.filtered.scores if f.column in workspace.original]
    left, right = st.columns([2, 1])
    choice = left.selectbox("Colour by", [STATUS, CLUSTER, GROUP] + scores, key="map-colour")
    overlay = right.toggle(
        "Generated samples", value=workspace.n_generated > 0, key="map-generated", disabled=workspace.n_generated == 0
    )
    figure = _figure(cache_key(workspace), choice, overlay, workspace, projection)
    if figure is None:
        st.info("No duplicate groups yet: open the Duplicates page or run `pretrain-audit dedup DIR` first.")
        return
    event = st.plotly_chart(
        figure,
        key="map",
        on_select="rerun",
        selection_mode=("points", "box", "lasso"),
        config={"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}},
    )
    selected = selected_rows(projection.xy, event)
    if selected is None:
        st.caption("Nothing chosen yet: click a point, or use the lasso (the default drag) or the box.")
        return
    list_images(workspace, selected, reviewer)


def selected_rows(xy: np.ndarray, event) -> np.ndarray | None:
    """Every image inside a lasso or box (all of them, not only the points drawn), or the points clicked."""
    selection = (event or {}).get("selection") or {}
    for region in list(selection.get("lasso") or []) + list(selection.get("box") or []):
        if region.get("x") and region.get("y"):
            return rows_in_region(xy, list(region["x"]), list(region["y"]))
    points = selection.get("points") or []
    rows = []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, list):
            data = data[0] if data else None
        if data is not None:
            rows.append(int(data))
    return np.array(sorted(set(rows)), dtype=np.int64) if rows else None


def list_images(workspace, rows: np.ndarray, reviewer) -> None:
    removed = int((~workspace.kept[rows]).sum())
    st.subheader(f"{len(rows):,} images chosen · {removed:,} removed by the filters")
    if len(rows) > LISTED:
        st.caption(f"The first {LISTED} by row order.")
    if len(rows):
        image_grid(workspace, rows[:LISTED], reviewer, key="map-chosen", page="map")
