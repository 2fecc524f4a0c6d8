"""Duplicates: near-duplicate groups found by clustered search, browsable largest first."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from analysis.concepts.contract import cluster_frame
from analysis.copies.candidates import CANDIDATE_TOP_K
from analysis.copies.pdq import pair_pdq_distances, pdq_hashes
from analysis.dedup.cached import dedup_curve_for, dedup_recall_for
from analysis.dedup.compute import CURVE_LOW, KEEP_RULE_WORDS, default_threshold
from analysis.dedup.figures import dedup_curve_chart, effect_figures, group_size_chart
from analysis.stats import TOO_FEW
from dashboard.components import (
    analysis_result,
    cache_key,
    copy_search_settings,
    first_copy_search,
    grid_cells,
    id_caption,
    image_tile,
    loaded_embeddings,
    open_section,
    pair_evidence_png,
    require_embeddings,
    settings,
    settings_note,
    show_figure,
    tier_badge,
    tier_control,
    verification_control,
)
from dashboard.review import Reviewer, allowed_reveals, review_store, reviewer_sidebar
from dashboard.state import current_workspace

MEMBERS_SHOWN = 24
TABLE_ROW_PX = 35  # the height of one row of st.dataframe


@st.cache_data(
    show_spinner=f"Clustering the embeddings and searching for duplicate pairs at cosine ≥ {CURVE_LOW} "
    "(once per workspace, cached on disk; every threshold on the slider is derived from it)…",
    max_entries=8,
)
def _curve(key: str, _workspace, _found):
    return dedup_curve_for(_workspace, found=_found)


SEARCHING = "Finding duplicate pairs (verified on pixels where chosen; once per setting, cached on disk)…"


def _outcome(workspace, inliers: int | None, tiers: tuple[str, ...] = (), threshold: float | None = None):
    """Dedup as the command runs it with the page's choices (`copy_search_settings`)."""
    return analysis_result(
        "dedup", workspace, copy_search_settings("dedup", workspace, inliers, tiers, threshold), SEARCHING
    )


@st.cache_data(show_spinner=False, max_entries=4)
def _pdq(key: str, _workspace):
    return pdq_hashes(_workspace, "original")


def pair_inspector(workspace, result, reviewer: Reviewer) -> None:
    """Every candidate pair with its cosine, inliers and PDQ distance; the matched keypoints of the chosen one."""
    check = result.verification
    tiers = check.tiers if check.tiers is not None else np.full(len(check.pairs), None, dtype=object)
    status = st.segmented_control("Show", [VERIFIED, *TIER_VIEWS, UNVERIFIED], default=VERIFIED, key="d-pair-status")
    if status == UNVERIFIED:
        chosen = ~check.verified
    elif status in TIER_VIEWS:
        chosen = check.verified & (tiers == TIER_VIEWS[status])
    else:
        chosen = check.verified
    rows = np.flatnonzero(chosen)
    rows = rows[np.argsort(-check.inliers[rows], kind="stable")]
    if not len(rows):
        st.info("No pairs in this view.")
        return
    ids = workspace.original["id"].to_numpy()
    images = workspace.original["image"].astype(str).to_numpy() if "image" in workspace.original else None
    distances = pair_pdq_distances(_pdq(cache_key(workspace), workspace), check.pairs[rows])
    table = pd.DataFrame(
        {
            "image a": ids[check.pairs[rows, 0]],
            "image b": ids[check.pairs[rows, 1]],
            "cosine": check.similarities[rows].round(3),
            "inliers": check.inliers[rows],
            "kind": [t or "—" for t in tiers[rows]],
            "grouped": check.acted[rows],
            "mirrored": check.mirrored[rows],
            "PDQ distance": np.where(distances < 256, distances, -1),
        }
    )
    shown = table.head(200)
    # Tall enough for ~15 rows (a reviewer compares neighbouring pairs), shorter when there are fewer.
    st.dataframe(shown, hide_index=True, width="stretch", height=min(TABLE_ROW_PX * (len(shown) + 1) + 3, 560))
    st.caption(f"{len(rows):,} pairs, most inliers first (first 200 shown). PDQ distance −1: no hash.")
    position = (
        int(st.number_input("Show the evidence of pair number (1 = first row)", 1, len(rows), 1, key="d-pair")) - 1
    )
    a, b = check.pairs[rows[position]]
    reveal = st.toggle("Reveal images removed by the safety filters", key="d-pair-reveal")
    removed = [str(ids[i]) for i in (a, b) if not workspace.kept[i]]
    revealed = allowed_reveals(workspace, review_store(workspace), reviewer, removed if reveal else [], "duplicates")
    tier_badge(tiers[rows[position]], bool(check.acted[rows[position]]))
    if images is not None:
        evidence = pair_evidence_png(
            str(workspace.config.images_root),
            images[a],
            images[b],
            not workspace.kept[a] and str(ids[a]) not in revealed,
            not workspace.kept[b] and str(ids[b]) not in revealed,
        )
        st.image(
            evidence.png,
            caption=f"{ids[a]} ↔ {ids[b]}: {evidence.inliers} inliers"
            + (" (mirrored)" if evidence.mirrored else "")
            + "; lines join matched keypoints",
        )


def warm(workspace) -> None:
    """The first view's dedup, computed before anyone asks."""
    found = loaded_embeddings(workspace)
    if found is None:
        return
    params = first_copy_search("dedup", workspace, found, float(default_threshold(found.embedder)))
    if params.verify == "none":
        _curve(cache_key(workspace), workspace, found)  # the search every threshold of the slider reuses
    analysis_result("dedup", workspace, params, SEARCHING)


def _chosen(workspace, found, configured):
    """The page's controls and the dedup they ask for: (outcome, threshold, the cosine curve or None)."""
    inliers = verification_control(
        workspace, found, configured, key="d", judged="How a pair is judged a duplicate", noun="Pairs are"
    )
    if inliers is not None:
        tiers = tier_control("d", "group", configured)
        outcome = _outcome(workspace, inliers, tiers)
        check = outcome.result.verification
        counts = check.tier_counts()
        st.caption(
            f"Candidates: cosine ≥ {check.candidate_threshold} (at most {CANDIDATE_TOP_K} per image); "
            f"{int(check.verified.sum()):,} of {len(check.pairs):,} verified on pixels: "
            + ", ".join(f"{counts[t]:,} {t.replace('-', ' ')}" for t in counts)
            + f". Groups join {' and '.join(t.replace('-', ' ') for t in tiers)} pairs; the others are shown "
            "below, never counted."
        )
        return outcome, outcome.result.threshold, None
    default = configured.threshold or default_threshold(found.embedder)
    threshold = st.slider(
        "Cosine similarity threshold for a duplicate pair",
        CURVE_LOW,
        0.99,
        float(default),
        0.01,
        key="d-threshold",
        help=f"default for {found.embedder}: {default_threshold(found.embedder)}",
    )
    curve = _curve(cache_key(workspace), workspace, found)  # first: the search every threshold reuses
    return _outcome(workspace, None, threshold=threshold), threshold, curve


def render() -> None:
    workspace = current_workspace()
    configured = settings("dedup", workspace)
    st.title("Near-duplicates")
    st.caption(
        "DALL·E 2's method: spherical k-means on image embeddings, candidate pairs (cosine ≥ threshold) searched "
        f"within clusters, union over {configured.clusterings} clusterings; by default each candidate is then "
        "verified on pixels (local features under one geometric transform). A group is a connected component of "
        "duplicate pairs."
    )
    settings_note("dedup", workspace)
    found = require_embeddings(workspace)
    outcome, threshold, curve = _chosen(workspace, found, configured)
    result = outcome.result
    byte_groups = outcome.byte_groups
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

    name, section = open_section([SIZES, GROUPS, *([PAIRS] if result.verification is not None else []), EFFECTS])
    with section:
        if name == SIZES:
            if curve is not None:
                recall_check(workspace, found, result)
                left, right = st.columns(2)
                with left:
                    show_figure(group_size_chart(result, workspace), "group-sizes")
                with right:
                    show_figure(dedup_curve_chart(curve, threshold, workspace), "dedup-curve")
            else:
                show_figure(group_size_chart(result, workspace), "group-sizes")
        elif name == EFFECTS:
            effects_section(workspace, outcome)
        else:
            reviewer = reviewer_sidebar(workspace, review_store(workspace))
            if name == GROUPS:
                group_browser(workspace, found, result, reviewer)
            else:
                pair_inspector(workspace, result, reviewer)


VERIFIED, UNVERIFIED = "all verified", "unverified candidates"
TIER_VIEWS = {"copies": "copy", "same scene": "same-scene", "byte-identical": "byte-identical"}
SIZES, GROUPS, PAIRS, EFFECTS = (
    "Group sizes",
    "Groups, largest first",
    "Candidate pairs and their evidence",
    "What dedup removes",
)


def effects_section(workspace, outcome) -> None:
    """Dedup as a filter: the caption term shifts and the per-cluster removal its keep-list causes."""
    st.caption(
        "Deduplication removes images too, and DALL·E 2's authors warn that it can remove valuable examples. Here it "
        "is measured like the safety filters: caption term shifts (original → deduplicated, the workspace's terms "
        "and groups) and the share of each visual cluster it removes."
    )
    if outcome.result.n_removed == 0 or outcome.effects is None:
        st.info("Deduplication removes no image at this setting, so it shifts nothing: there is nothing to measure.")
        return
    effects = outcome.effects
    for name, figure in effect_figures(effects, workspace).items():
        show_figure(figure, name)
    st.dataframe(cluster_frame(effects.clusters), hide_index=True, width="stretch")


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
                f"95% interval {low:.2%}–{high:.2%} (bootstrap over the sampled images, whose pairs are found or "
                f"missed together): {estimate.true_pairs:,} true duplicate pairs touch {estimate.images_with_pairs:,} "
                f"of the {estimate.sampled_images:,} sampled images; {found_pairs:,} of them were found."
                + ("" if estimate.judgeable else f" Too few images with pairs to judge ({TOO_FEW}).")
            )


def group_browser(workspace, found, result, reviewer: Reviewer) -> None:
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
    rule = KEEP_RULE_WORDS[settings("dedup", workspace).keep]
    st.caption(f"Group {group}: {sizes[group]} images; kept: {ids[representative]} ({rule}).")
    shown = order[:MEMBERS_SHOWN]
    removed = [str(ids[row]) for row in shown if not workspace.kept[row]]
    revealed = allowed_reveals(workspace, review_store(workspace), reviewer, removed if reveal else [], "duplicates")
    for cell, row in zip(grid_cells(len(shown), 6), shown):
        with cell:
            sensitive = not workspace.kept[row]
            image_tile(
                workspace,
                str(workspace.original["image"].iloc[row]) if "image" in workspace.original else "",
                blur=sensitive and str(ids[row]) not in revealed,
                greyscale=sensitive and reviewer.greyscale,
            )
            label = "KEPT" if row == representative else f"cos {similarity_of[int(row)]:.3f}"
            id_caption(ids[row], label)
            st.text(str(workspace.original["caption"].iloc[row])[:120])
    if len(order) > MEMBERS_SHOWN:
        st.caption(f"… and {len(order) - MEMBERS_SHOWN:,} more members.")
