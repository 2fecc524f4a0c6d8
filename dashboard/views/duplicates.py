"""Duplicates: near-duplicate groups found by clustered search, browsable largest first."""

from __future__ import annotations

import numpy as np
import streamlit as st

from analysis.dedup.cached import dedup_curve_for, dedup_for, dedup_recall_for
from analysis.dedup.compute import CURVE_LOW, default_threshold, exact_duplicates
from analysis.dedup.figures import dedup_curve_chart, group_size_chart
from dashboard.components import cache_key, image_tile, require_embeddings, show_figure
from dashboard.state import current_workspace

MEMBERS_SHOWN = 24


@st.cache_resource(show_spinner="Grouping the duplicate pairs at this threshold…", max_entries=4)
def _dedup(key: str, threshold: float, _workspace, _found):
    return dedup_for(_workspace, threshold=threshold, found=_found)


@st.cache_data(
    show_spinner=f"Clustering the embeddings and searching for duplicate pairs at cosine ≥ {CURVE_LOW} "
    "(once per workspace, cached on disk; every threshold on the slider is derived from it)…",
    max_entries=8,
)
def _curve(key: str, _workspace, _found):
    return dedup_curve_for(_workspace, found=_found)


def render() -> None:
    workspace = current_workspace()
    st.title("Near-duplicates")
    st.caption(
        "DALL·E 2's method: spherical k-means on image embeddings, duplicate pairs (cosine ≥ threshold) "
        "searched within clusters, union over 5 clusterings; a group is a connected component of pairs."
    )
    found = require_embeddings(workspace)
    default = default_threshold(found.embedder)
    threshold = st.slider(
        "Cosine similarity threshold for a duplicate pair",
        CURVE_LOW,
        0.99,
        float(default),
        0.01,
        key="d-threshold",
        help=f"default for {found.embedder}: {default}",
    )
    key = cache_key(workspace)
    curve = _curve(key, workspace, found)  # first: the search every threshold reuses
    result = _dedup(key, threshold, workspace, found)
    byte_groups = exact_duplicates(found.status["sha256"])
    columns = st.columns(5)
    columns[0].metric("Images in groups", f"{result.n_in_groups:,}")
    columns[1].metric("Groups", f"{result.n_groups:,}")
    columns[2].metric("Duplicate pairs", f"{len(result.pairs):,}")
    columns[3].metric(
        "Removed by dedup",
        f"{result.n_removed / result.n_images:.1%}",
        help=f"{result.n_removed:,} images: all but one per group",
    )
    columns[4].metric(
        "Byte-identical files",
        f"{int((byte_groups >= 0).sum()):,}",
        help="identical file contents (sha256), reported apart from near-duplicates",
    )
    if found.n_missing:
        st.caption(f"{found.n_missing:,} images have no embedding (missing or unreadable) and are not judged.")

    recall_check(workspace, found, result)
    left, right = st.columns(2)
    with left:
        show_figure(group_size_chart(result, workspace), "group-sizes")
    with right:
        show_figure(dedup_curve_chart(curve, threshold, workspace), "dedup-curve")
    group_browser(workspace, found, result)


RECALL_SAMPLE = 1000


def recall_check(workspace, found, result) -> None:
    """How many true duplicate pairs the clustered search misses, estimated on demand (a scan of 1,000 × n)."""
    with st.expander("How complete is this search? Estimate recall against exact search"):
        st.caption(
            f"All pairs of {RECALL_SAMPLE:,} random images with every other image are found by brute force "
            "and looked up among the pairs the clustered search found (`pretrain-audit dedup "
            "--estimate-recall`)."
        )
        if st.button("Estimate recall", key="d-recall"):
            with st.spinner(f"Comparing {RECALL_SAMPLE:,} random images with all {result.n_images:,}…"):
                st.session_state["d-recall-result"] = (
                    result.threshold,
                    dedup_recall_for(workspace, result, found, sample=RECALL_SAMPLE),
                )
        shown = st.session_state.get("d-recall-result")
        if shown and shown[0] == result.threshold:
            estimate = shown[1]
            low, high = estimate.interval()
            st.metric("Recall vs exact search (estimated)", f"{estimate.recall:.2%}")
            found_pairs = round(estimate.recall * estimate.true_pairs)
            st.caption(
                f"95% interval {low:.2%}–{high:.2%} (Wilson): {estimate.true_pairs:,} true duplicate pairs "
                f"touch the {estimate.sampled_images:,} sampled images; {found_pairs:,} of them were found."
            )


def group_browser(workspace, found, result) -> None:
    st.subheader("Groups, largest first")
    if result.n_groups == 0:
        st.info("No duplicate groups at this threshold.")
        return
    ids = workspace.original["id"].to_numpy()
    search = st.text_input("Find the group of an image id", key="d-search", placeholder="e.g. train-0042")
    sizes = result.group_sizes()
    if search.strip():
        matches = np.flatnonzero(ids == search.strip())
        if not len(matches):
            st.warning(f"No image with id {search.strip()!r}.")
            return
        if result.group_id[matches[0]] < 0:
            st.info(f"{search.strip()} is in no duplicate group at this threshold.")
            return
        group = int(result.group_id[matches[0]])
    else:
        group = int(
            st.number_input(f"Group (0 = largest of {result.n_groups:,})", 0, result.n_groups - 1, 0, key="d-group")
        )
    members = np.flatnonzero(result.group_id == group)
    representative = members[result.keep[members]][0]
    vectors = found.take(members)  # only this group's rows are read from disk
    similarity = vectors @ vectors[int(np.flatnonzero(members == representative)[0])]
    similarity_of = dict(zip(members.tolist(), similarity.tolist()))
    order = members[np.argsort(-similarity)]
    reveal = st.toggle(
        "Reveal images removed by the safety filters",
        key="d-reveal",
        help="Images the filters removed are blurred by default.",
    )
    st.caption(f"Group {group}: {sizes[group]} images; kept: {ids[representative]} (closest to the group centre).")
    grid = st.columns(6)
    for position, row in enumerate(order[:MEMBERS_SHOWN]):
        with grid[position % 6]:
            blur = not workspace.kept[row] and not reveal
            image_tile(
                workspace,
                str(workspace.original["image"].iloc[row]) if "image" in workspace.original else "",
                blur=blur,
            )
            label = "KEPT" if row == representative else f"cos {similarity_of[int(row)]:.3f}"
            st.caption(f"{ids[row]} · {label}")
            st.text(str(workspace.original["caption"].iloc[row])[:120])
    if len(order) > MEMBERS_SHOWN:
        st.caption(f"… and {len(order) - MEMBERS_SHOWN:,} more members.")
