"""The concept analysis as the pages draw it: one result of the analysis's own `run` (clusters, table, map,
probes), shared by the Map page and the Bias page's "Visual concepts" section."""

from __future__ import annotations

import numpy as np
import streamlit as st

from analysis.concepts.contract import ConceptsResult, cluster_frame, probe_lines
from analysis.concepts.projection import MapProjection
from analysis.effects.clusters import ClusterRates
from analysis.effects.figures import lift_chart
from analysis.effects.lines import table_lines
from analysis.workspace import Workspace
from dashboard.components import (
    analysis_result,
    id_caption,
    image_tile,
    loaded_embeddings,
    require_embeddings,
    settings,
    show_figure,
)
from dashboard.review import Reviewer, allowed_reveals, review_store, reviewer_sidebar

CENTRAL_SHOWN = 6


COMPUTING = "Clustering the image embeddings and drawing the map (once per workspace, cached on disk)…"


def concepts_result(workspace: Workspace) -> ConceptsResult:
    """The concept analysis as `pretrain-audit concepts` computes it at the workspace's settings (`[concepts]`), map
    included: the clusters, their table, the map and the probes every concept view draws."""
    return analysis_result("concepts", workspace, settings("concepts", workspace, no_map=False), COMPUTING)


def concept_table(workspace: Workspace) -> ClusterRates:
    return concepts_result(workspace).table


def dataset_map(workspace: Workspace) -> MapProjection:
    projection = concepts_result(workspace).projection
    assert projection is not None  # asked for above (no_map=False)
    return projection


def warm(workspace: Workspace) -> None:
    if loaded_embeddings(workspace) is not None and workspace.config.filtered.defined:
        concepts_result(workspace)


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
    probes = concepts_result(workspace).probes
    st.markdown("**Text probes**")
    for line in probe_lines(probes):
        st.caption(line)
