"""Contamination: each evaluation set's images and captions found in the training set, with their evidence."""

from __future__ import annotations

import streamlit as st

from analysis.contamination.compute import ContaminationResult, SetContamination
from analysis.contamination.contract import NO_EVAL_SET
from analysis.contamination.figures import caption_pairs, image_pairs
from analysis.verdicts.store import VerdictStore
from dashboard.components import (
    analysis_result,
    id_caption,
    initial_tiers,
    open_section,
    pair_evidence_png,
    settings,
    settings_note,
    tier_badge,
    tier_control,
    tile_png,
)
from dashboard.review import allowed_reveals, reviewer_sidebar
from dashboard.state import current_workspace

PER_PAGE = 6
IMAGES, CAPTIONS = "Image matches", "Caption matches"


SEARCHING = "Searching the training set for the evaluation images (verified on pixels) and captions…"


def _result(workspace, tiers: tuple[str, ...]) -> ContaminationResult:
    """Contamination at the workspace's settings, counting the kinds of verified pair the page's toggle chose."""
    params = settings("contamination", workspace, tiers=",".join(tiers))
    return analysis_result("contamination", workspace, params, SEARCHING)


def warm(workspace) -> None:
    """The page's first view, computed before anyone asks (when the workspace declares a set)."""
    if workspace.config.evals:
        _result(workspace, initial_tiers(settings("contamination", workspace)))


def render() -> None:
    workspace = current_workspace()
    st.title("Evaluation-set contamination")
    st.caption(
        "A model evaluated on images or captions it was trained on scores better than it is. Each evaluation image "
        "is searched among its nearest training images by embedding, and a candidate counts when it is verified on "
        "pixels as a copy (a crop, a re-encoding or a banner still matches; another photograph of the same scene "
        "is shown in the counts, not counted). Captions match when equal after case, punctuation and spacing are "
        "folded, or nearly (the same words in order, a few added, dropped or misspelt)."
    )
    if not workspace.config.evals:
        st.info(f"{NO_EVAL_SET[0][0].upper()}{NO_EVAL_SET[0][1:]}: {NO_EVAL_SET[1]}.")
        return
    settings_note("contamination", workspace)
    tiers = tier_control("c", "count", settings("contamination", workspace))
    result = _result(workspace, tiers)
    names = [one.name for one in result.sets]
    chosen = st.radio("Evaluation set", names, horizontal=True, key="c-set") if len(names) > 1 else names[0]
    one = result.by_name(chosen)
    assert one is not None
    _metrics(one)
    store = VerdictStore.for_workspace(workspace.config.root)
    name, section = open_section([IMAGES, CAPTIONS])
    with section:
        if name == IMAGES:
            _image_matches(workspace, one, store)
        else:
            _caption_matches(workspace, one)


def _metrics(one: SetContamination) -> None:
    payload = one.to_json()
    images, captions = payload["images"], payload["captions"]
    if one.unmeasured():
        st.warning(
            f"Unmeasured: {one.unmeasured()}. `pretrain-audit check` fails a gate on this set unless "
            "given --allow-unmeasured."
        )
    columns = st.columns(4)
    columns[0].metric(
        "Items in the training set",
        f"{one.n_contaminated:,} of {one.n:,}",
        help="evaluation items whose image or caption has a copy in the original training set",
    )
    columns[1].metric(
        "Still in the filtered set",
        f"{payload['n_contaminated_kept']:,}",
        help="of those, the items whose copy the filters kept: what a model trained on the filtered set saw "
        "(what `check --max-contamination` judges)",
    )
    low, high = images["ci95"]
    columns[2].metric(
        "Images with a copy",
        "—" if images["rate"] is None else f"{images['n_matched']:,} ({images['rate']:.1%})",
        help=f"of {images['n_measured']:,} evaluation images read; 95% Clopper–Pearson interval {low:.1%} – {high:.1%}",
    )
    columns[3].metric(
        "Captions found",
        f"{captions['n_matched']:,} of {captions['n_with_caption']:,}",
        help=f"{captions['n_exact']:,} exact and {captions['n_near']:,} near pairs",
    )
    if one.search is not None:
        tiers = images["tiers"] or {}
        st.caption(
            f"An image counts when it has {one.search.rule()}. {images['n_candidates']:,} candidates searched"
            + ("; verified: " + ", ".join(f"{count:,} {tier}" for tier, count in tiers.items()) if tiers else "")
            + f". Search: {one.search.method}."
        )


def _image_matches(workspace, one: SetContamination, store: VerdictStore) -> None:
    pairs = image_pairs(workspace, one, dict(zip(one.items["id"], one.items["image"])))
    if pairs.empty:
        st.success("No evaluation image has a verified copy in the training set.")
        return
    reviewer = reviewer_sidebar(workspace, store)
    pages = max(1, -(-len(pairs) // PER_PAGE))
    page = int(st.number_input(f"Page (of {pages})", 1, pages, 1, key="c-page")) - 1
    reveal = st.toggle("Reveal training images removed by the filters", key="c-reveal")
    shown = pairs.iloc[page * PER_PAGE : (page + 1) * PER_PAGE]
    removed = [str(t) for t, gone in zip(shown["train_id"], shown["train_removed"]) if gone]
    revealed = allowed_reveals(workspace, store, reviewer, removed if reveal else [], "contamination")
    level = workspace.config.review.blur
    for pair in shown.itertuples():
        blur = bool(pair.train_removed) and str(pair.train_id) not in revealed
        with st.container(border=True):
            left, right, evidence_column = st.columns([1, 1, 2])
            with left:
                st.markdown("**Evaluation image**")
                st.image(tile_png("/", pair.eval_image, False, 256, level), width="stretch")
                id_caption(pair.eval_id)
                if pair.other_copies:
                    st.caption(
                        f"Also copied in {len(pair.other_copies)} more training image(s): "
                        + ", ".join(pair.other_copies[:8])
                        + (" …" if len(pair.other_copies) > 8 else "")
                    )
            with right:
                st.markdown("**Training image**" + (" (removed by a filter)" if pair.train_removed else ""))
                st.image(tile_png("/", pair.train_image, blur, 256, level), width="stretch")
                id_caption(pair.train_id, f"cos {pair.cosine:.3f}")
            with evidence_column:
                if pair.inliers is not None and str(pair.inliers) != "<NA>":
                    evidence = pair_evidence_png("/", pair.eval_image, pair.train_image, False, blur)
                    st.image(
                        evidence.png,
                        caption=f"Evidence: {evidence.inliers} matched keypoints under one similarity transform"
                        + (" (mirrored)" if evidence.mirrored else ""),
                    )
                    tier_badge(pair.tier, True)
                else:
                    st.caption("Matched by embedding cosine alone (verification was off).")


def _caption_matches(workspace, one: SetContamination) -> None:
    pairs = caption_pairs(workspace, one, dict(zip(one.items["id"], one.items["caption"])))
    if pairs.empty:
        st.success(
            "No evaluation caption is in the training set."
            if one.n_captions
            else "This evaluation set has no captions."
        )
        return
    st.dataframe(pairs, hide_index=True, width="stretch")
