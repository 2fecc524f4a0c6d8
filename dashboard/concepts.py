"""The concept analysis as the pages draw it: cached tables and the map, shared by the Map page, the Bias page's
"Visual concepts" section and the Duplicates page's "What dedup removes" section."""

from __future__ import annotations

import numpy as np
import streamlit as st

from analysis.concepts.cached import map_for, probes_for
from analysis.concepts.contract import cluster_frame, probe_lines
from analysis.concepts.probes import ProbeResult
from analysis.concepts.projection import MapProjection
from analysis.effects.cached import concept_table_for, dedup_cluster_table
from analysis.effects.clusters import ClusterRates
from analysis.effects.figures import lift_chart
from analysis.effects.lines import table_lines
from analysis.workspace import Workspace
from dashboard.components import (
    cache_key,
    id_caption,
    image_tile,
    loaded_embeddings,
    require_embeddings,
    show_figure,
    workspace_index,
)
from dashboard.review import Reviewer, allowed_reveals, review_store, reviewer_sidebar

CENTRAL_SHOWN = 6


@st.cache_resource(show_spinner="Clustering the image embeddings (once per workspace, cached on disk)…", max_entries=4)
def _table(key: str, _workspace: Workspace) -> ClusterRates:
    return concept_table_for(_workspace, found=loaded_embeddings(_workspace), index=workspace_index(_workspace))


@st.cache_resource(
    show_spinner="Drawing the map of the dataset (UMAP; once per workspace, cached on disk)…", max_entries=4
)
def _map(key: str, _workspace: Workspace) -> MapProjection:
    return map_for(_workspace, found=loaded_embeddings(_workspace))


@st.cache_resource(show_spinner="Comparing images with the text probes…", max_entries=4)
def _probes(key: str, _workspace: Workspace) -> ProbeResult:
    return probes_for(_workspace, found=loaded_embeddings(_workspace))


@st.cache_resource(show_spinner=False, max_entries=4)
def _dedup_table(key: str, _workspace: Workspace, _keep: np.ndarray) -> ClusterRates:
    return dedup_cluster_table(
        _workspace, _keep, found=loaded_embeddings(_workspace), index=workspace_index(_workspace)
    )


def concept_table(workspace: Workspace) -> ClusterRates:
    return _table(cache_key(workspace), workspace)


def dataset_map(workspace: Workspace) -> MapProjection:
    return _map(cache_key(workspace), workspace)


def dedup_table(workspace: Workspace, keep: np.ndarray, label: str) -> ClusterRates:
    """`label` names the keep-list (its threshold and verification), which the cache key must tell apart."""
    return _dedup_table(f"{cache_key(workspace)}|{label}", workspace, keep)


def warm(workspace: Workspace) -> None:
    if loaded_embeddings(workspace) is not None and workspace.config.filtered.defined:
        concept_table(workspace)
        dataset_map(workspace)


def image_grid(workspace: Workspace, rows: np.ndarray, reviewer: Reviewer, *, key: str, page: str) -> None:
    """Images with id and caption, six to a row; those the filters removed stay blurred unless the reviewer
    reveals them (each reveal logged, within the hourly cap)."""
    ids = workspace.original["id"].astype(str).to_numpy()
    captions = workspace.original["caption"].astype(str).to_numpy()
    images = workspace.original["image"].astype(str).to_numpy() if workspace.has_images else None
    removed = [str(ids[row]) for row in rows if not workspace.kept[row]]
    reveal = bool(removed) and st.toggle("Reveal images removed by the safety filters", key=f"{key}-reveal")
    revealed = allowed_reveals(workspace, review_store(workspace), reviewer, removed if reveal else [], page)
    columns = st.columns(6)
    for i, row in enumerate(rows):
        with columns[i % 6]:
            sensitive = not workspace.kept[row]
            if images is not None:
                image_tile(
                    workspace,
                    images[row],
                    blur=sensitive and str(ids[row]) not in revealed,
                    greyscale=sensitive and reviewer.greyscale,
                )
            id_caption(ids[row], "removed" if sensitive else "")
            st.text(captions[row][:100])


def central_images(workspace: Workspace, table: ClusterRates, reviewer: Reviewer, key: str) -> None:
    """The most central images of a chosen cluster."""
    if not table.clusters:
        return
    by_cluster = {c.cluster: c for c in table.clusters}
    chosen = st.selectbox(
        "Most central images of cluster",
        list(by_cluster),
        format_func=lambda c: (
            f"cluster {c}: {', '.join(by_cluster[c].top_words[:4])} "
            f"({by_cluster[c].removed}/{by_cluster[c].size} removed)"
        ),
        key=key,
    )
    image_grid(workspace, np.array(by_cluster[chosen].central_rows[:CENTRAL_SHOWN]), reviewer, key=key, page="bias")


def concept_section(workspace: Workspace) -> None:
    """The Bias page's section: which visual clusters the filters removed most."""
    require_embeddings(workspace)
    table = concept_table(workspace)
    st.markdown("\n".join(f"- {line.strip()}" for line in table_lines(table, "the filters")))
    show_figure(lift_chart(table, workspace), "concept-lift")
    st.dataframe(cluster_frame(table, limit=len(table.clusters)), hide_index=True, width="stretch")
    central_images(workspace, table, reviewer_sidebar(workspace, review_store(workspace)), "concept-central")
    probes = _probes(cache_key(workspace), workspace)
    st.markdown("**Text probes**")
    for line in probe_lines(probes):
        st.caption(line)
