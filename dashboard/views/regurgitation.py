"""Regurgitation: generated samples beside their nearest training images, with copy verdicts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from analysis.copies.candidates import copy_flag_threshold
from analysis.regurgitation.compute import flagged_items
from analysis.regurgitation.figures import copy_group_chart, similarity_chart
from analysis.review.summary import confirmed_copies
from analysis.verdicts.decisions import decide
from analysis.verdicts.store import COPY_VERDICTS, VerdictStore
from dashboard.components import (
    analysis_result,
    copy_search_settings,
    first_copy_search,
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
    verdict_control,
    verification_control,
)
from dashboard.review import BROWSE, QUEUE, allowed_reveals, browse_mode, disputed_items, queue_items, reviewer_sidebar
from dashboard.state import current_workspace

PER_PAGE = 5


SEARCHING = "Searching nearest training images (and verifying candidates on pixels)…"


def _flags(workspace, inliers: int | None, tiers: tuple[str, ...] = (), threshold: float | None = None):
    """The samples as regurgitation flags them with the page's choices (`copy_search_settings`)."""
    params = copy_search_settings("regurgitation", workspace, inliers, tiers, threshold)
    return analysis_result("regurgitation", workspace, params, SEARCHING)


def warm(workspace) -> None:
    """The first view's search, computed before anyone asks."""
    training = loaded_embeddings(workspace, "original")
    if workspace.generated is None or training is None or loaded_embeddings(workspace, "generated") is None:
        return
    params = first_copy_search("regurgitation", workspace, training, copy_flag_threshold(training.embedder))
    analysis_result("regurgitation", workspace, params, SEARCHING)


def render() -> None:
    workspace = current_workspace()
    st.title("Regurgitation")
    st.caption(
        "Each generated sample's nearest training images by embedding similarity. By default a sample is a likely "
        "copy when one of them is verified on pixels (matched local features under one geometric transform); with "
        "cosine only, when its best similarity reaches the threshold. SSIM is a pixel-level second opinion, taken "
        "after aligning the training image onto the sample (mirror, crop, scale and rotation that the matched "
        "keypoints show), or on whole thumbnails where no alignment is found."
    )
    if workspace.generated is None:
        st.info("This workspace has no generated samples: add [generated] manifest = … to audit.toml.")
        return
    training = require_embeddings(workspace, "original")
    require_embeddings(workspace, "generated")  # stops the page with an explanation when missing
    settings_note("regurgitation", workspace)
    configured = settings("regurgitation", workspace)
    inliers = verification_control(
        workspace, training, configured, key="r", judged="How a sample is flagged", noun="Samples are"
    )
    if inliers is not None:
        tiers = tier_control("r", "flag", configured)
        result = _flags(workspace, inliers, tiers)
        st.caption(
            f"A sample is flagged when one of its {configured.k} nearest training images "
            f"(cosine ≥ {result.threshold}) is "
            f"verified on pixels (≥ {inliers} local-feature inliers under one similarity transform) and is "
            f"{' or '.join(t.replace('-', ' ') for t in tiers)}: pixels that agree once the edit is undone, not "
            "another photograph of the same scene."
        )
    else:
        default = configured.threshold or copy_flag_threshold(training.embedder)
        threshold = st.slider(
            "Cosine similarity that flags a likely copy",
            0.80,
            1.0,
            float(default),
            0.005,
            key="r-threshold",
            help=f"default for {training.embedder}: {default}",
        )
        result = _flags(workspace, None, threshold=threshold)
    samples = result.samples
    store = VerdictStore.for_workspace(workspace.config.root)
    decisions = decide(store.history("regurgitation"), workspace.config.review.decision)
    low, high = result.interval()
    unmeasured = result.unmeasured()
    if unmeasured:
        st.warning(
            f"Unmeasured: {unmeasured}. Rates are over the {result.n_measured:,} samples that were read; "
            "`pretrain-audit check` fails a gate on them unless given --allow-unmeasured."
        )
    columns = st.columns(4)
    columns[0].metric(
        f"Measured (of {len(samples):,})",
        f"{result.n_measured:,}",
        help="generated samples that could be read and searched; the rest are not counted as clean",
    )
    columns[1].metric("Flagged as likely copies", f"{result.n_flagged:,}")
    columns[2].metric(
        "Flag rate",
        "—" if result.rate is None else f"{result.rate:.1%}" + ("" if result.judgeable else " (too few to judge)"),
        help=f"of the samples measured; 95% Clopper–Pearson interval {low:.1%} – {high:.1%}",
    )
    copies, judged, (c_low, c_high) = confirmed_copies(decisions)
    if judged:
        columns[3].metric(
            "Confirmed copies (verdicts)",
            f"{copies} of {judged}",
            help=f"share {copies / judged:.0%}, 95% interval {c_low:.0%} – {c_high:.0%}",
        )
    else:
        columns[3].metric("Confirmed copies (verdicts)", "—", help="judge samples below")

    name, section = open_section([SIMILARITY, SAMPLES])
    with section:
        if name == SIMILARITY:
            left, right = st.columns(2)
            with left:
                show_figure(similarity_chart(samples, result.threshold, workspace), "r-hist")
            with right:
                if samples["group_size"].notna().any():
                    show_figure(copy_group_chart(samples, result.threshold, workspace), "r-scatter")
        else:
            viewer(workspace, result, store)


SIMILARITY, SAMPLES = "How similar the samples are", "Samples, most similar first"


def flagged_population(result):
    """What the page's review queue draws from: the samples this page flags, at its own settings."""
    return lambda _: ("flagged samples", flagged_items(result.samples))


def viewer(workspace, result, store: VerdictStore) -> None:
    reviewer = reviewer_sidebar(workspace, store)
    mode = browse_mode("r")
    chosen = _samples_to_show(workspace, result, store, mode)
    if chosen is None:
        return
    ordered, votes = chosen
    pages = max(1, -(-len(ordered) // PER_PAGE))
    page_number = int(st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"r-page-{mode}")) - 1
    reveal = st.toggle("Reveal training images removed by the filters", key="r-reveal")
    shown = ordered.iloc[page_number * PER_PAGE : (page_number + 1) * PER_PAGE]
    page = _ShownPage.of(workspace, store, reviewer, result, shown, reveal)
    verdict_of = store.own_latest("regurgitation", reviewer.name) if reviewer.name else {}
    for _, sample in shown.iterrows():
        with st.container(border=True):
            columns = st.columns(1 + 4)
            with columns[0]:
                _generated_tile(workspace, sample, page)
            neighbours = result.neighbours[result.neighbours["id"] == sample["id"]].head(4)
            for column, (_, neighbour) in zip(columns[1:], neighbours.iterrows()):
                with column:
                    _training_tile(workspace, neighbour, page, reviewer.greyscale)
            _tier_and_evidence(workspace, sample, page)
            item = str(sample["id"])
            if item in votes:
                st.caption(f"Votes: {votes[item]}")
            verdict_control(
                store,
                "regurgitation",
                item,
                verdict_of.get(item),
                reviewer.name,
                key=f"rv-{item}",
                label="Is this a copy?",
                options=COPY_VERDICTS,
                role=reviewer.role,
            )


def _samples_to_show(workspace, result, store: VerdictStore, mode: str) -> tuple[pd.DataFrame, dict] | None:
    """The samples in the order the mode shows them (most similar first, a review queue, or the disputed ones)
    and the votes on each disputed one; None while a queue is not drawn yet."""
    if mode == BROWSE:
        ordered = result.samples.sort_values("similarity", ascending=False)
        if st.toggle("Only flagged samples", value=True, key="r-only"):
            ordered = ordered[ordered["flagged"]]
        return ordered, {}
    votes: dict[str, str] = {}
    if mode == QUEUE:
        ids = queue_items(workspace, store, "regurgitation", flagged_population(result), [], "r")
    else:
        queue = disputed_items(workspace, store, "regurgitation")
        ids, votes = list(queue["item_id"]), dict(zip(queue["item_id"], queue["votes"]))
    if ids is None:
        return None
    return result.samples.set_index(result.samples["id"].astype(str)).reindex(ids).dropna(subset=["id"]), votes


@dataclass
class _ShownPage:
    """What the cards of one page need about their training images. Only the rows on this page are looked up: a
    dict or index of a million training rows per run costs a second."""

    training: pd.DataFrame
    kept: dict[str, bool]
    revealed: set[str]
    generated: pd.DataFrame

    @classmethod
    def of(cls, workspace, store: VerdictStore, reviewer, result, shown: pd.DataFrame, reveal: bool) -> _ShownPage:
        ids_shown = result.neighbours.loc[result.neighbours["id"].isin(shown["id"]), "training_id"].astype(str).unique()
        positions = workspace.positions_of(ids_shown)
        training = workspace.original.iloc[positions].set_index("id")
        training.index = training.index.astype(str)
        kept = dict(zip(training.index, workspace.kept[positions]))
        removed = [t for t in ids_shown if not kept[t]]
        revealed = allowed_reveals(workspace, store, reviewer, removed if reveal else [], "regurgitation")
        return cls(training, kept, revealed, workspace.generated.set_index("id"))

    def blurred(self, training_id: str) -> bool:
        """A training image the filters removed stays blurred until this reviewer may and asks to see it."""
        return not self.kept[training_id] and training_id not in self.revealed


def _generated_tile(workspace, sample: pd.Series, page: _ShownPage) -> None:
    st.markdown("**Generated**")
    image_tile(
        workspace,
        str(page.generated.loc[sample["id"], "image"]),
        blur=False,
        caption=str(page.generated.loc[sample["id"], "prompt"]),
    )
    ssim = sample.get("ssim")
    st.caption(
        f"{sample['id']} · best cos {sample['similarity']:.3f}"
        + (f" · {int(sample['inliers'])} inliers" if "inliers" in sample and sample["flagged"] else "")
        + (
            f" · SSIM {ssim:.2f}" + (" (aligned)" if sample.get("ssim_aligned") else " (thumbnails)")
            if ssim is not None and not np.isnan(ssim)
            else ""
        )
        + (f" · group {int(sample['group_size'])}" if sample.get("group_size") else "")
    )


def _training_tile(workspace, neighbour: pd.Series, page: _ShownPage, greyscale: bool) -> None:
    training_id = str(neighbour["training_id"])
    st.markdown(f"**Training #{neighbour['rank']}**")
    row = page.training.loc[training_id]
    image_tile(
        workspace,
        str(row.get("image", "")),
        blur=page.blurred(training_id),
        caption=str(row["caption"]),
        greyscale=greyscale and not page.kept[training_id],
    )
    id_caption(neighbour["training_id"], f"cos {neighbour['similarity']:.3f}")


def _tier_and_evidence(workspace, sample: pd.Series, page: _ShownPage) -> None:
    """The pair's tier, and for a flagged sample the matched keypoints that verified it."""
    if sample.get("tier"):
        tier_badge(sample["tier"], bool(sample["flagged"]))
        if not sample["flagged"]:
            st.caption(
                f"Verified on pixels against {sample['tier_match']}, but as another photograph of the same "
                "scene, not a copy: not flagged (“Also flag second shots of the same scene” counts it)."
            )
    if sample["flagged"] and "inliers" in sample:
        match = str(sample["best_match"])
        evidence = pair_evidence_png(
            str(workspace.config.images_root),
            str(page.generated.loc[sample["id"], "image"]),
            str(page.training.loc[match].get("image", "")),
            False,
            page.blurred(match),
        )
        st.image(
            evidence.png,
            caption=f"Evidence: {sample['id']} ↔ {match}, {evidence.inliers} matched keypoints under one "
            "similarity transform" + (" (mirrored)" if evidence.mirrored else ""),
        )
