"""Filter builder: write a specification, seed, label rounds of images (blurred until revealed), fit and measure,
preview the filter's effect on the data's balance, apply it. Every step is a function of analysis/filters."""

from __future__ import annotations

import streamlit as st

from analysis.errors import AuditInputError
from analysis.filters import compute
from analysis.filters.definition import FILTER_LABELS, list_filters, new_filter, score_columns
from analysis.filters.figures import preview_chart, roc_chart
from analysis.filters.measure import STABLE_CHANGE, FitReport
from analysis.stats import MIN_JUDGEABLE
from analysis.workspace import Workspace
from dashboard.components import grid_cells, image_tile, require_embeddings, show_figure, verdict_control
from dashboard.review import Reviewer, allowed_reveals, review_store, reviewer_sidebar
from dashboard.state import current_workspace

NEW = "+ New filter…"
SELECT_NEXT = "filter-select-next"
PREVIEW_COLUMNS = {
    "kind": "kind",
    "name": "term or group",
    "captions": "captions",
    "change_now": "frequency change now",
    "change_with_filter": "with the filter",
    "removal_rate_now": "removal rate now",
    "removal_rate_with_filter": "with the filter ",
    "removal_rate_filter_alone": "by the filter alone",
}


def render() -> None:
    workspace = current_workspace()
    st.title("Filter builder")
    st.caption(
        "Build a filter the DALL·E 2 way: a written specification, seed images, rounds of labelling chosen by "
        "active learning, precision and recall measured on a random slice, and a preview of what the filter would "
        "do to the data's balance before you apply it. Images are blurred until you reveal them."
    )
    require_embeddings(workspace)
    reviewer = reviewer_sidebar(workspace, review_store(workspace))
    names = list_filters(workspace)
    if SELECT_NEXT in st.session_state:  # a filter created on the last run: select it (before the widget exists)
        st.session_state["filter-name"] = st.session_state.pop(SELECT_NEXT)
    chosen = st.selectbox("Filter", [*names, NEW], key="filter-name")
    if chosen == NEW:
        _new_filter_form(workspace, reviewer)
        return
    try:
        builder = compute.Builder.open(workspace, chosen)
    except AuditInputError as exc:
        st.error(str(exc))
        return
    with st.expander("Specification", expanded=False):
        st.markdown(builder.definition.spec)
        st.caption(f"Created {builder.definition.created_at} by {builder.definition.created_by or 'unknown'}.")
    _labelling(builder, reviewer)
    report = _model(builder)
    if report is not None:
        _preview_and_apply(builder, report)


def _new_filter_form(workspace: Workspace, reviewer: Reviewer) -> None:
    with st.form("new-filter"):
        name = st.text_input("Filter name", placeholder="e.g. animals", help="lowercase letters, digits, - and _")
        spec = st.text_area(
            "Written specification",
            placeholder="What counts as positive, with examples; what does not (exclusions).",
        )
        recall = st.slider("Target recall", 0.5, 0.99, 0.9, 0.01, help="DALL·E 2's filters favoured recall.")
        extra = st.multiselect(
            "Scores used as features too (optional)",
            score_columns(workspace.original),
            help="e.g. open-nsfw from `pretrain-audit score`, beside the image embeddings",
        )
        if st.form_submit_button("Create filter"):
            try:
                new_filter(
                    workspace,
                    name.strip(),
                    spec,
                    created_by=reviewer.name,
                    extra_scores=tuple(extra),
                    target_recall=recall,
                )
            except AuditInputError as exc:
                st.error(str(exc))
                return
            st.session_state[SELECT_NEXT] = name.strip()
            st.rerun()


def _labelling(builder: compute.Builder, reviewer: Reviewer) -> None:
    st.subheader("Label")
    waiting = compute.pending(builder)
    rounds = builder.rounds()
    labels = builder.labels()
    done = int(rounds["round"].max()) if len(rounds) else 0
    st.caption(
        f"{len(labels)} labels so far ({(labels['label'] == 'positive').sum()} positive, "
        f"{(labels['label'] == 'negative').sum()} negative) over {done} round(s)."
    )
    if waiting.empty:
        _seed_controls(builder)
        left, right = st.columns([1, 3])
        n = left.number_input("Images per round", 4, 200, 20, key="round-size")
        if right.button("Propose the next round", type="primary", key="next-round"):
            _act(lambda: compute.next_round(builder, int(n)))
        return
    st.markdown(f"**Round {done}: {len(waiting)} image(s) left to label.** Each says why it was chosen.")
    reveal_all = st.toggle("Reveal this round's images", key=f"reveal-round-{done}")
    wanted = (
        list(waiting["item_id"])
        if reveal_all
        else [i for i in waiting["item_id"] if st.session_state.get(f"fb-reveal-{i}")]
    )
    revealed = allowed_reveals(builder.workspace, review_store(builder.workspace), reviewer, wanted, "filter builder")
    original = builder.workspace.original
    rows = original.iloc[builder.positions(waiting["item_id"])]
    own = builder.store.own_latest(builder.definition.kind, reviewer.name) if reviewer.name else {}
    for cell, row, reason in zip(grid_cells(len(rows), 4), rows.itertuples(), waiting["reason"]):
        item = str(row.id)
        with cell, st.container(border=True):
            image_tile(
                builder.workspace,
                str(getattr(row, "image", "") or ""),
                blur=item not in revealed,
                greyscale=reviewer.greyscale,
            )
            st.text(f"{item} · {reason}\n{str(row.caption)[:120]}")
            st.checkbox("Reveal", key=f"fb-reveal-{item}", disabled=reveal_all)
            verdict_control(
                builder.store,
                builder.definition.kind,
                item,
                own.get(item),
                reviewer.name,
                key=f"fb-label-{item}",
                label=f"label {item}",
                options=FILTER_LABELS,
                show_label=False,
            )


def _seed_controls(builder: compute.Builder) -> None:
    with st.expander("Seed images", expanded=builder.rounds().empty):
        st.caption("Seeds are a round of their own: images found by caption words, likeness or a score band.")
        words = st.text_input("Caption words (comma-separated)", key="seed-words")
        n = st.number_input("How many", 4, 200, 20, key="seed-n")
        if st.button("Seed by caption words", key="seed-words-go") and words.strip():
            _act(lambda: compute.seed(builder, caption_words=words.split(","), n=int(n)))
        like = st.text_input("Images like these ids (comma-separated)", key="seed-like")
        if st.button("Seed by likeness", key="seed-like-go") and like.strip():
            _act(lambda: compute.seed(builder, like=[i.strip() for i in like.split(",") if i.strip()], n=int(n)))
        numeric = score_columns(builder.workspace.original)
        if numeric:
            column = st.selectbox("Score", numeric, key="seed-score")
            low, high = st.slider("Band", 0.0, 1.0, (0.8, 1.0), 0.01, key="seed-band")
            if st.button("Seed by score band", key="seed-band-go"):
                _act(lambda: compute.seed(builder, score_band=(column, low, high), n=int(n)))


def _act(step) -> None:
    try:
        step()
    except AuditInputError as exc:
        st.error(str(exc))
        return
    st.rerun()


def _model(builder: compute.Builder) -> FitReport | None:
    st.subheader("Model")
    report = builder.latest_fit()
    if st.button("Fit and measure", key="fit", help="logistic regression on the image embeddings, cross-validated"):
        try:
            report = compute.fit(builder)
        except AuditInputError as exc:
            st.error(str(exc))
    if report is None:
        st.info("No model yet: label at least 2 positive and 2 negative images, then fit.")
        return None
    _metrics(report)
    _threshold_caption(report)
    _change_since_last_fit(report)
    show_figure(roc_chart(report, builder.workspace, builder.definition.name), "filter-roc")
    _newly_flagged(builder)
    return report


def _metrics(report: FitReport) -> None:
    """Labels, AUC, the slice's precision and recall (a badge where too few to judge), flagged count."""
    columns = st.columns(5)
    columns[0].metric(
        "Training labels",
        f"{report.n_positive + report.n_negative}",
        help=f"{report.n_positive} positive. Random-slice labels are held out of training: they measure the filter.",
    )
    columns[0].caption(f"{report.n_slice} more held out (random slice)")
    columns[1].metric("cv AUC", "—" if report.cv_auc is None else f"{report.cv_auc:.3f}")
    for column, what, value, ci, trials, enough in (
        (columns[2], "Precision", report.precision, report.precision_ci95, "flagged", report.precision_judgeable),
        (columns[3], "Recall", report.recall, report.recall_ci95, "positive", report.recall_judgeable),
    ):
        count = report.n_slice_flagged if trials == "flagged" else report.n_slice_positive
        if value is None or enough:
            badge = None
        elif report.fitted_before_trials_were_counted or count is None:
            badge = "older fit: fit again to judge"
        else:  # a point estimate from a handful of slice images looks as sure as any other: its trials say otherwise
            badge = f"{round(value * count)} of {count}: too few to judge"
        column.metric(
            f"{what} (random slice)",
            "—" if value is None else f"{value:.0%}",
            delta=badge,
            delta_color="off",
            delta_arrow="off",
            help=None
            if ci is None
            else f"95% CI {ci[0]:.0%}–{ci[1]:.0%} from {count} {trials} random-slice images; an estimate on fewer "
            f"than {MIN_JUDGEABLE} is too few to judge",
        )
        if ci is not None:
            column.caption(
                f"95% CI {ci[0]:.0%}–{ci[1]:.0%}, "
                + (f"{count} {trials} in the slice" if count is not None else f"{trials} in the slice not counted")
            )
    columns[4].metric("Flagged", f"{report.n_flagged:,}", help=f"threshold {report.threshold}")


def _threshold_caption(report: FitReport) -> None:
    st.caption(
        f"Threshold {report.threshold:.3f}: the score that keeps {report.target_recall:.0%} of "
        f"{report.threshold_basis} flagged, scored out of fold (never the slice's). Precision and recall come from "
        f"the {report.n_slice} labelled images of the random slice ({report.n_slice_positive} positive, "
        + (
            "flagged: not counted by this older fit"
            if report.n_slice_flagged is None
            else f"{report.n_slice_flagged} flagged"
        )
        + ")"
        + (
            ""
            if report.n_slice_positive
            else ": with no positive there yet, recall cannot be estimated; label more rounds"
        )
        + "."
        if report.threshold is not None
        else "No threshold yet."
    )


def _change_since_last_fit(report: FitReport) -> None:
    if report.change is None:
        st.caption("First fit: nothing to compare the flagged set with yet.")
    elif report.stable:
        st.success(
            f"The flagged set changed by {report.change:.1%} since the last fit (under {STABLE_CHANGE:.0%}): more "
            "rounds are unlikely to change it. Check the intervals, then preview and apply.",
            icon=":material/flag:",
        )
    else:
        st.caption(
            f"Since the last fit: {report.newly_flagged:,} newly flagged, {report.no_longer_flagged:,} no longer "
            f"flagged ({report.change:.1%} of the union)."
        )


def _newly_flagged(builder: compute.Builder) -> None:
    newly = compute.newly_flagged(builder)
    if len(newly):
        with st.expander(f"What this fit flags that the last did not ({len(newly):,}; first 8, blurred)"):
            shown = builder.workspace.original.iloc[newly[:8]]
            for cell, row in zip(grid_cells(len(shown), 4), shown.itertuples()):
                with cell:
                    image_tile(
                        builder.workspace,
                        str(getattr(row, "image", "") or ""),
                        blur=True,
                        caption=f"{row.id}: {row.caption}",
                    )


def _preview_and_apply(builder: compute.Builder, report: FitReport) -> None:
    st.subheader("Preview before applying")
    applied = builder.applied()
    default = float(applied["threshold"] if applied else report.threshold if report.threshold is not None else 0.5)
    threshold = st.slider("Threshold", 0.0, 1.0, round(default, 3), 0.001, key="filter-threshold", format="%.3f")
    _, table = compute.preview(builder, threshold)
    flagged = int(compute.flagged_at(builder, threshold).sum())
    st.caption(f"At {threshold:.3f} the filter flags {flagged:,} of {builder.workspace.n_original:,} images.")
    show_figure(preview_chart(table, builder.workspace, builder.definition.name, threshold), "filter-preview")
    shown = table[table["captions"] > 0].copy()
    for column in ("change_now", "change_with_filter"):
        shown[column] = [("—" if v is None or v != v else f"{v:+.1%}") for v in shown[column]]
    for column in ("removal_rate_now", "removal_rate_with_filter", "removal_rate_filter_alone"):
        shown[column] = [f"{v:.1%}" if v == v else "—" for v in shown[column]]
    st.dataframe(
        shown[
            [
                "kind",
                "name",
                "captions",
                "change_now",
                "change_with_filter",
                "removal_rate_now",
                "removal_rate_with_filter",
                "removal_rate_filter_alone",
            ]
        ],
        hide_index=True,
        width="stretch",
    )
    status = f"applied at {applied['threshold']:.3f} ({applied['applied_at']})" if applied else "not applied"
    if st.button(f"Apply at {threshold:.3f}", type="primary", key="apply", help=f"Now {status}."):
        try:
            changed, _ = compute.apply(builder, threshold)
        except AuditInputError as exc:
            st.error(str(exc))
            return
        st.success(
            f"Filter '{builder.definition.name}' applied: {changed.n_removed:,} of {changed.n_original:,} rows are "
            "removed in all. Removals, Bias and the report now include it."
        )
    else:
        st.caption(f"This filter is {status}.")
    if applied and st.button(
        "Unapply", key="unapply", help="Undo apply: the workspace filters as before; score, labels and model stay."
    ):
        try:
            changed, _ = compute.unapply(builder)
        except AuditInputError as exc:
            st.error(str(exc))
            return
        st.success(
            f"Filter '{builder.definition.name}' is no longer applied: {changed.n_removed:,} of "
            f"{changed.n_original:,} rows are removed in all. Apply it again at any time."
        )
