"""The review process on the pages that judge items (Removals, Regurgitation): who is reviewing and in which
role, the exposure counter and reveal cap, the choice between browsing, a random review queue and the
disagreement queue, the queue's stratified estimate, and agreement between reviewers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from analysis.review.agreement import agreement_by_group, agreement_table
from analysis.review.queues import DEFAULT_BANDS, STRATA, QueueRequest, open_queue, queue_estimate
from analysis.review.summary import agreement_groups
from analysis.stats import TOO_FEW
from analysis.verdicts.decisions import decide, disagreements
from analysis.verdicts.exposure import Exposure, exposure
from analysis.verdicts.store import VerdictStore
from analysis.workspace import Workspace
from dashboard.components import reviewer_box

BROWSE, QUEUE, DISPUTED = "browse", "random review queue", "disagreements"
LOGGED = "logged-reveals"  # session state: (reviewer, item) pairs whose reveal is already in the log


@dataclass(frozen=True)
class Reviewer:
    name: str
    role: str  # "reviewer" or "adjudicator"
    greyscale: bool  # revealed images in greyscale
    counter: Any = None  # the sidebar slot of the exposure counter, refreshed after each reveal


def reviewer_exposure(workspace: Workspace, store: VerdictStore, name: str) -> Exposure:
    return exposure(store.reveals(name), name, workspace.config.review.max_reveals_per_hour)


def show_exposure(reviewer: Reviewer, seen: Exposure) -> None:
    if reviewer.counter is not None:
        cap = f" of {seen.cap}" if seen.cap is not None else " (no cap set)"
        reviewer.counter.caption(
            f"Images you revealed: **{seen.last_hour}**{cap} in the last hour · {seen.today} today"
        )


def review_store(workspace: Workspace) -> VerdictStore:
    return VerdictStore.for_workspace(workspace.config.root)


def reviewer_sidebar(workspace: Workspace, store: VerdictStore) -> Reviewer:
    """Name (from login or typed), role, reveal options and this reviewer's exposure, in the sidebar."""
    name = reviewer_box()
    settings = workspace.config.review
    adjudicating = st.sidebar.toggle(
        "Adjudicator", key="adjudicator", help="Your verdicts on disputed items are final (recorded with this role)."
    )
    greyscale = st.sidebar.toggle("Reveal in greyscale", value=settings.reveal_greyscale, key="greyscale")
    reviewer = Reviewer(name, "adjudicator" if adjudicating else "reviewer", greyscale, st.sidebar.empty())
    if name:
        show_exposure(reviewer, reviewer_exposure(workspace, store, name))
    return reviewer


def allowed_reveals(
    workspace: Workspace, store: VerdictStore, reviewer: Reviewer, wanted: list[str], page: str
) -> set[str]:
    """Which of the images a reviewer asked to reveal may be shown unblurred. Every reveal is logged once per
    session (who, which image, when, which page); past the hourly cap the rest stay blurred, with a break notice."""
    if not wanted:
        return set()
    if not reviewer.name:
        st.warning("Enter your reviewer name in the sidebar to reveal images: every reveal is logged.")
        return set()
    logged: set = st.session_state.setdefault(LOGGED, set())
    fresh = [item for item in dict.fromkeys(wanted) if (reviewer.name, item) not in logged]
    if fresh:
        seen = reviewer_exposure(workspace, store, reviewer.name)
        granted = fresh if seen.remaining is None else fresh[: seen.remaining]
        if len(granted) < len(fresh):
            resume = f" Reveals resume at {seen.resume_at:%H:%M} UTC." if seen.resume_at else ""
            st.warning(
                f"Time for a break: you have revealed {seen.last_hour} images in the last hour, the cap set for this "
                f"workspace ({seen.cap}). {len(fresh) - len(granted)} image(s) stay blurred.{resume}",
                icon=":material/self_improvement:",
            )
        if granted:
            store.record_reveals(reviewer.name, granted, page)
            logged |= {(reviewer.name, item) for item in granted}
            show_exposure(reviewer, reviewer_exposure(workspace, store, reviewer.name))
    return {item for item in wanted if (reviewer.name, item) in logged}


def browse_mode(key: str) -> str:
    return str(st.radio("Show", [BROWSE, QUEUE, DISPUTED], horizontal=True, key=f"{key}-show"))


def queue_items(
    workspace: Workspace,
    store: VerdictStore,
    kind: str,
    population: Callable[[str | None], tuple[str, pd.DataFrame]],
    filters: list[str],
    key: str,
) -> list[str] | None:
    """Draw or choose a review queue and show its estimate; returns the queue's item ids in queue order (None when
    no queue exists yet)."""
    with st.expander("Draw a new random review queue", expanded=store.queues(kind).empty):
        columns = st.columns(5)
        chosen = columns[0].selectbox("Population", filters, key=f"{key}-qpop") if filters else None
        n = int(columns[1].number_input("Items", 1, 5000, 100, key=f"{key}-qn"))
        strata = columns[2].selectbox("Strata", STRATA, key=f"{key}-qstrata")
        bands = int(columns[3].number_input("Score bands", 1, 20, DEFAULT_BANDS, key=f"{key}-qbands"))
        seed = int(columns[4].number_input("Seed", 0, 10**9, 0, key=f"{key}-qseed"))
        if st.button("Draw queue", key=f"{key}-qdraw"):
            described, members = population(None if chosen in (None, "all filters") else chosen)
            request = QueueRequest(kind, described, n, strata, bands, seed)
            open_queue(store, request, members)
            st.session_state[f"{key}-queue"] = request.name
    queues = store.queues(kind)
    if queues.empty:
        st.info(
            "No review queue yet: draw one above. Its items are a stratified random sample, so the precision it "
            "estimates is not biased by what reviewers chose to open."
        )
        return None
    names = list(queues["name"][::-1])
    if st.session_state.get(f"{key}-queue") not in names:
        st.session_state[f"{key}-queue"] = names[0]
    name = str(st.selectbox("Queue", names, key=f"{key}-queue"))
    items = store.queue_items(name)
    estimate = queue_estimate(name, kind, items, decide(store.history(kind), workspace.config.review.decision))
    columns = st.columns(4)
    noun = "Precision (queue)" if kind == "removal" else "Real copies (queue)"
    if estimate.estimate is None:
        columns[0].metric(noun, "—", help="no decided verdict in this queue yet")
    else:
        low, high = estimate.ci95
        columns[0].metric(noun, f"{estimate.estimate:.1%}", help=estimate.method)
        columns[0].caption(f"95% CI {low:.1%} – {high:.1%}" + ("" if estimate.judgeable else f" · {TOO_FEW}"))
    columns[1].metric("Decided", f"{estimate.decided} of {estimate.size}")
    columns[2].metric("Pending", f"{estimate.pending}")
    columns[3].metric("Disputed", f"{estimate.disputed}", help="reviewers disagree; an adjudicator decides")
    st.dataframe(estimate.strata, hide_index=True, width="stretch")
    if estimate.strata_unjudged:
        st.caption(
            f"Strata without a decided verdict yet: {estimate.strata_unjudged}; the estimate weights the others."
        )
    return list(items["item_id"])


def disputed_items(workspace: Workspace, store: VerdictStore, kind: str) -> pd.DataFrame:
    """The disagreement queue (item_id, votes), with agreement between reviewers above it."""
    history = store.history(kind)
    found = agreement_by_group(history, agreement_groups(workspace, kind)) if len(history) else []
    if found:
        st.dataframe(agreement_table(found), hide_index=True, width="stretch")
        st.caption("Agreement among reviewers on items judged by two or more; κ with a bootstrap 95% interval.")
    queue = disagreements(decide(history, workspace.config.review.decision))
    if queue.empty:
        st.info("No disagreements waiting: every item judged by several reviewers has a decision.")
    else:
        st.caption(f"{len(queue)} item(s) where reviewers disagree. Turn on **Adjudicator** in the sidebar to decide.")
    return queue
