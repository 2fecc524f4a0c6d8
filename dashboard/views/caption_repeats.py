"""Repeated captions: the captions several images carry, before and after filtering."""

from __future__ import annotations

import streamlit as st

from analysis.caption_repeats.figures import top_captions_chart
from dashboard.components import analysis_result, settings, settings_note, show_figure
from dashboard.state import current_workspace


def render() -> None:
    workspace = current_workspace()
    st.title("Repeated captions")
    st.caption(
        "A caption that many images carry is, with duplicated images, what text-to-image models memorise. "
        "Captions are compared after HTML entities, Unicode, case, punctuation and spacing are folded; repetition "
        "after filtering is counted within the filtered set, which is what a model would be trained on."
    )
    settings_note("caption-repeats", workspace)
    configured = settings("caption-repeats", workspace)
    min_images = int(
        st.number_input(
            "Images that must carry a caption for it to count as repeated",
            2,
            1000,
            configured.min_images,
            key="cr-min",
        )
    )
    result = analysis_result(
        "caption-repeats",
        workspace,
        settings("caption-repeats", workspace, min_images=min_images),
        "Comparing captions…",
    )
    columns = st.columns(3)
    for column, name, share in (
        (columns[0], "Original", result.original),
        (columns[1], "After filtering", result.filtered),
    ):
        interval = share.to_json()["ci95"]
        column.metric(
            f"{name}: images sharing their caption",
            "—" if share.share is None else f"{share.share:.1%}",
            help=f"{share.n_repeated:,} of {share.n_with_caption:,} images with a caption"
            + ("" if interval is None else f"; 95% CI {interval[0]:.1%}–{interval[1]:.1%} (Clopper–Pearson)"),
        )
    columns[2].metric("Distinct repeated captions listed", f"{len(result.top):,}")
    if result.top.empty:
        st.info("No caption is carried by that many images.")
        return
    show_figure(top_captions_chart(result, workspace), "caption-repeats")
    st.dataframe(result.top, hide_index=True, width="stretch")
