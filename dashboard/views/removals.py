"""Removals: what the filters took out, by term and score; the threshold what-if; the review gallery."""

from __future__ import annotations

import streamlit as st

from analysis.effects.removed import removed_by_filter
from analysis.registry import by_name
from analysis.removals.compute import page_rows, removed_positions, threshold_sweep
from analysis.removals.contract import chosen_terms
from analysis.removals.figures import removal_rate_chart, score_chart, what_if_chart
from analysis.review.summary import ALL_VERDICTS_CAVEAT, all_verdicts_precision
from analysis.scoring.ordinary_rates import ordinary_rate
from analysis.verdicts.decisions import decide
from analysis.verdicts.store import REMOVAL_VERDICTS, VerdictStore
from dashboard.components import (
    analysis_result,
    cache_key,
    grid_cells,
    id_caption,
    image_tile,
    open_section,
    settings,
    settings_note,
    show_figure,
    verdict_control,
    workspace_index,
)
from dashboard.review import (
    BROWSE,
    QUEUE,
    Reviewer,
    allowed_reveals,
    browse_mode,
    disputed_items,
    queue_items,
    reviewer_sidebar,
)
from dashboard.state import current_workspace

PAGE_SIZE = 12
WHO, WHAT_IF, REVIEW = "Who it affects", "Scores and the threshold what-if", "Review removed images"
VERDICT_LABELS = {"correct removal": "correct", "false positive": "false pos.", "unsure": "unsure"}


def render() -> None:
    workspace = current_workspace()
    index = workspace_index(workspace)
    result = _removals(workspace)
    summary = result.summary
    st.title("Removals")
    st.caption("What the filters removed from the original dataset, who it affects, and how good the filters are.")
    settings_note("removals", workspace)
    columns = st.columns(2 + len(summary.filters))
    columns[0].metric("Removed", f"{summary.n_removed:,}")
    columns[1].metric("Share of original", f"{summary.fraction_removed:.2%}")
    for column, item in zip(columns[2:], summary.filters):
        column.metric(f"Filter: {item.name}", f"{item.n_removed:,}", help=f"{item.n_only_this:,} removed by it alone")

    scored = bool(workspace.config.filtered.scores)  # score filters, alone or beside a kept column or manifest
    name, section = open_section([WHO, *([WHAT_IF] if scored else []), REVIEW])
    with section:
        if name == WHO:
            who_it_affects(workspace, result)
        elif name == WHAT_IF:
            what_if(workspace, index, _terms(workspace))
        else:
            store = VerdictStore.for_workspace(workspace.config.root)
            precision_section(workspace, store)
            gallery(workspace, index, store)


def warm(workspace) -> None:
    """What the first view needs, computed before anyone asks (dashboard/warm.py)."""
    _removals(workspace)


def _removals(workspace):
    """`pretrain-audit removals` at the workspace's settings: totals, removal by term, the filters' overlap."""
    return analysis_result("removals", workspace, settings("removals", workspace), "Counting what the filters removed…")


def _terms(workspace) -> list[str]:
    """The terms `pretrain-audit removals` measures: `[removals] terms` when the workspace sets them, else its
    default terms."""
    return chosen_terms(workspace, settings("removals", workspace).terms)


def who_it_affects(workspace, result) -> None:
    show_figure(removal_rate_chart(result.by_term, workspace), "removal-rate")
    if len(workspace.removed_by) > 1:
        st.markdown("**Filter overlap** (rows removed by both filters; the diagonal is each filter's total)")
        st.dataframe(result.overlap, width="content")


@st.cache_resource(show_spinner=False, max_entries=8)
def _score_chart(key: str, _workspace):
    return score_chart(_workspace)


@st.cache_data(show_spinner=False, max_entries=32)
def _sweep(key: str, filter_name: str, terms: tuple[str, ...], _workspace, _index):
    return threshold_sweep(_workspace, _index, filter_name, list(terms))


def what_if(workspace, index, terms: list[str]) -> None:
    show_figure(_score_chart(cache_key(workspace), workspace), "score-hist")
    for score_filter in workspace.config.filtered.scores:
        rate = ordinary_rate(score_filter.column, score_filter.threshold, score_filter.removed_when)
        if rate is not None:
            st.caption(f"Filter **{score_filter.name}**: {rate.sentence()}")
    st.subheader("Threshold what-if")
    names = [f.name for f in workspace.config.filtered.scores]
    chosen = st.selectbox("Filter to vary (the others stay at their thresholds)", names, key="whatif-filter")
    sweep = _sweep(cache_key(workspace), chosen, tuple(terms), workspace, index)
    varied = next(f for f in workspace.config.filtered.scores if f.name == chosen)
    show_figure(what_if_chart(sweep, varied, workspace), "what-if")


def precision_section(workspace, store: VerdictStore) -> None:
    st.subheader("Filter precision from all verdicts")
    decisions = decide(store.history("removal"), workspace.config.review.decision)
    if decisions.empty:
        st.info("No verdicts yet. Judge removed images below; for an unbiased estimate, use a random review queue.")
        return
    table = all_verdicts_precision(decisions, removed_by_filter(workspace))
    if table.empty:
        st.info("No decided verdict yet: the items judged so far are disputed or unsure.")
        verdict_downloads(store)
        return
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={c: st.column_config.NumberColumn(format="%.2f") for c in ("precision", "ci_low", "ci_high")},
    )
    st.caption(
        f"{len(decisions):,} items judged. Precision = correct / (correct + false positive), Clopper–Pearson 95% "
        f"interval, {ALL_VERDICTS_CAVEAT}."
    )
    verdict_downloads(store)


def verdict_downloads(store: VerdictStore) -> None:
    """The full, append-only verdict history and the reveal log, as CSV (formula-safe) or Parquet."""
    import io
    import tempfile
    from pathlib import Path

    from analysis.verdicts.store import export_verdicts

    columns = st.columns(4)
    with tempfile.TemporaryDirectory() as tmp:
        for position, (suffix, mime) in enumerate(((".csv", "text/csv"), (".parquet", "application/octet-stream"))):
            for offset, path in enumerate(export_verdicts(store, Path(tmp) / f"verdicts{suffix}")):
                columns[2 * position + offset].download_button(
                    f"Download {'reveal log' if offset else 'verdict history'} ({suffix[1:]})",
                    io.BytesIO(path.read_bytes()),
                    file_name=path.name,
                    mime=mime,
                    key=f"dl-{path.name}",
                )


@st.fragment
def gallery(workspace, index, store: VerdictStore) -> None:
    """A fragment: turning a page or judging an item reruns the gallery only, not the charts above."""
    st.subheader("Removed images")
    reviewer = reviewer_sidebar(workspace, store)
    mode = browse_mode("g")
    votes: dict[str, str] = {}
    score_columns = [f.column for f in workspace.config.filtered.scores]
    if mode == BROWSE:
        controls = st.columns([2, 3, 2])
        filter_name = controls[0].selectbox("Filter", ["all filters"] + list(workspace.removed_by), key="g-filter")
        words = controls[1].text_input("Caption contains (words)", key="g-words", placeholder="e.g. woman")
        sort_by = controls[2].selectbox("Sort by", score_columns + ["id"], key="g-sort") if score_columns else None
        positions = removed_positions(
            workspace,
            index=index,
            words=words.split(),
            sort_by=sort_by,
            filter_name=None if filter_name == "all filters" else filter_name,
        )
    elif mode == QUEUE:
        ids = queue_items(
            workspace,
            store,
            "removal",
            lambda chosen: by_name("removals").review_population(workspace, chosen),
            ["all filters"] + list(workspace.removed_by),
            "g",
        )
        if ids is None:
            return
        positions = workspace.positions_of(ids)
    else:
        queue = disputed_items(workspace, store, "removal")
        votes = dict(zip(queue["item_id"], queue["votes"]))
        positions = workspace.positions_of(queue["item_id"])
    total = len(positions)
    pages = max(1, -(-total // PAGE_SIZE))
    controls = st.columns([3, 1])
    page_number = (
        controls[0].number_input(
            f"Page (of {pages:,}; {total:,} images)", min_value=1, max_value=pages, value=1, key=f"g-page-{mode}"
        )
        - 1
    )
    reveal_page = controls[1].toggle("Reveal this page", key="g-reveal", help="Removed images are blurred by default.")
    frame = page_rows(workspace, positions, int(page_number), PAGE_SIZE)
    ids_shown = [str(i) for i in frame["id"]]
    wanted = [i for i in ids_shown if reveal_page or st.session_state.get(f"reveal-{i}", False)]
    revealed = allowed_reveals(workspace, store, reviewer, wanted, "removals")
    own = store.own_latest("removal", reviewer.name) if reviewer.name else {}
    for cell, (_, row) in zip(grid_cells(len(frame), 4), frame.iterrows()):
        with cell:
            with st.container(border=True):
                item_tile(workspace, row, revealed, reveal_page, own.get(str(row["id"])), votes, reviewer, store)


def item_tile(
    workspace,
    row,
    revealed: set[str],
    reveal_page: bool,
    verdict: str | None,
    votes: dict[str, str],
    reviewer: Reviewer,
    store: VerdictStore,
) -> None:
    item = str(row["id"])
    image_tile(
        workspace,
        str(row.get("image", "") or ""),
        blur=item not in revealed,
        greyscale=reviewer.greyscale,
    )
    st.checkbox("Reveal", key=f"reveal-{item}", disabled=reveal_page)
    st.text(row["caption"][:300])  # st.text: captions are shown as text, never rendered as Markdown/HTML
    scores = " · ".join(f"{c} {row[c]:.2f}" for c in (f.column for f in workspace.config.filtered.scores))
    id_caption(item, f"removed by {row['removed_by']}" + (f" · {scores}" if scores else ""))
    if item in votes:
        st.caption(f"Votes: {votes[item]}")
    st.caption(f"Your verdict: **{verdict}**" if verdict else "Not judged by you yet")
    verdict_control(
        store,
        "removal",
        item,
        verdict,
        reviewer.name,
        key=f"v-{item}",
        label="Verdict",
        options=REMOVAL_VERDICTS,
        labels=VERDICT_LABELS,
        show_label=False,
        role=reviewer.role,
    )
