"""Bias: how caption word frequencies shifted under filtering, and the reweighting that repairs it."""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from analysis.bias.cached import reweighting_with
from analysis.bias.compute import (
    format_groups,
    identity_collocations,
    npmi_table,
    parse_groups,
    parse_terms,
    top_shifted_words,
)
from analysis.bias.figures import top_words_chart, weights_chart
from analysis.bias.reweight import CALIPER_SD, MAX_WITHOUT_KEPT_NEIGHBOUR
from analysis.effects.figures import shift_chart
from analysis.effects.terms import FREQUENCY_DEFINITION, TermShift, bias_report
from analysis.errors import AuditInputError
from dashboard.components import (
    cache_key,
    loaded_embeddings,
    open_section,
    settings,
    settings_note,
    show_figure,
    workspace_index,
)
from dashboard.concepts import concept_section
from dashboard.state import current_workspace

PRESETS = {
    "gender": "woman,man,women,men,girl,boy",
    "family": "mother,father,daughter,son,wife,husband",
    "age": "young,old,elderly,child,baby,teenager",
}


SHIFTS, REWEIGHTING, MOVED, CONTEXTS, CONCEPTS = (
    "Term shifts",
    "Reweighting",
    "Which words moved most",
    "Contexts of an identity term (nPMI)",
    "Visual concepts",
)


def render() -> None:
    workspace = current_workspace()
    index = workspace_index(workspace)
    st.title("Caption bias")
    st.caption(f"Frequency = {FREQUENCY_DEFINITION}. Relative change = filtered / original − 1.")
    settings_note("bias", workspace)

    left, right = st.columns([3, 2])
    preset = right.selectbox("Preset terms", ["workspace default"] + list(PRESETS), key="b-preset")
    default_terms = workspace_terms(workspace) if preset == "workspace default" else PRESETS[preset]
    terms_text = left.text_input("Terms (comma-separated words)", value=default_terms, key=f"b-terms-{preset}")
    groups = edit_groups(workspace.config.groups)
    reweight = st.toggle(
        "Show the reweighting fix (DALL·E 2: weight kept items by 1 / P(kept | x))", value=True, key="b-reweight"
    )
    try:
        terms = parse_terms(terms_text)
    except AuditInputError as exc:
        st.error(str(exc))
        return
    weights = info = None
    if reweight:
        with st.spinner("Fitting the weak kept-classifier (cached after the first run)…"):
            try:
                result = _reweighting(workspace, index)
                weights, info = result.weights, result.summary()
            except AuditInputError as exc:
                st.warning(str(exc))
    name, section = open_section([SHIFTS, REWEIGHTING, MOVED, CONTEXTS, CONCEPTS])
    with section:
        if name == SHIFTS:
            shift_section(workspace, index, terms, groups, weights, info)
        elif name == REWEIGHTING:
            if info:
                weight_section(workspace, weights, info)
            else:
                st.info("Turn on the reweighting fix above to see its weights.")
        elif name == MOVED:
            top = _top_words(cache_key(workspace), workspace, index)
            if top.empty:
                st.info("No word occurs often enough (5+ captions) to rank.")
            else:
                show_figure(top_words_chart(top, workspace), "top-words")
        elif name == CONTEXTS:
            association_section(workspace, index, terms, groups)
        else:
            st.caption(
                "Bias the captions do not name: the original images clustered by their embeddings, and the share of "
                "each cluster that the filters removed."
            )
            concept_section(workspace)


def warm(workspace) -> None:
    """The first view's reweighting and shifts at the page's defaults, computed before anyone asks."""
    index = workspace_index(workspace)
    try:
        result = _reweighting(workspace, index)
    except AuditInputError:
        return  # the page says why when it opens
    terms = parse_terms(workspace_terms(workspace))
    groups = parse_groups(format_groups(workspace.config.groups)) or workspace.config.groups
    info = result.summary()
    _report(cache_key(workspace), tuple(terms), tuple(groups.items()), info, workspace, index, result.weights)


def shift_section(workspace, index, terms: list[str], groups: dict, weights, info: dict | None) -> None:
    report = _report(cache_key(workspace), tuple(terms), tuple(groups.items()), info, workspace, index, weights)
    shifts = [s for s in report.terms + report.groups if s.relative_change is not None]
    missing = [s.name for s in report.terms if s.relative_change is None]
    if missing:
        st.info(f"Not in any caption: {', '.join(missing)}.")
    if info and info.get("warning"):
        st.warning(info["warning"], icon=":material/warning:")
    if shifts:
        show_figure(shift_chart(shifts, workspace), "bias-shift")
        st.dataframe(_shift_table(shifts), hide_index=True, width="stretch")


@st.cache_data(show_spinner=False, max_entries=8)
def _top_words(key: str, _workspace, _index):
    return top_shifted_words(_index, _workspace.kept)


@st.cache_data(show_spinner=False, max_entries=64)
def _npmi(key: str, words: tuple[str, ...], _workspace, _index):
    return npmi_table(_index, _workspace.kept, words)


@st.cache_data(show_spinner=False, max_entries=32)
def _report(key: str, terms: tuple[str, ...], groups: tuple, info: dict | None, _workspace, _index, _weights):
    """The shifts with their bootstrap intervals (half a second at a million captions), once per choice of terms
    and per fitted reweighting (`info` identifies it)."""
    return bias_report(_index, _workspace.kept, list(terms), dict(groups), _weights, info)


@st.cache_resource(show_spinner=False, max_entries=4)
def _cached_reweighting(key: str, _workspace, _index, _found):
    """The reweighting at the workspace's `[bias]` settings, as the command and the gates fit it."""
    configured = settings("bias", _workspace)
    if _found is None and configured.reweight_features is None:  # no embeddings: say so rather than look again
        configured = dataclasses.replace(configured, reweight_features="captions")
    return reweighting_with(_workspace, _index, configured, found=_found)


def _reweighting(workspace, index):
    return _cached_reweighting(cache_key(workspace), workspace, index, loaded_embeddings(workspace))


def workspace_terms(workspace) -> str:
    """The terms the page starts from: `[bias] terms` when the workspace sets them, else its default terms."""
    return settings("bias", workspace).terms or ",".join(workspace.config.default_terms)


@st.cache_data(show_spinner="Finding phrases…", max_entries=16)
def _collocations(key: str, words: tuple[str, ...], _workspace, _index):
    return identity_collocations(_workspace.original["caption"], _index, _workspace.kept, words)


def edit_groups(groups: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """Groups are editable for this session; audit.toml's [groups] keeps them for good."""
    with st.expander("Term groups (a caption counts once if it contains any member)"):
        edited = st.text_area(
            "One group per line: name: word, word, …", value=format_groups(groups), height=140, key="b-groups"
        )
        st.caption("Changes here last for this session; add a [groups] table to audit.toml to keep them.")
    return parse_groups(edited) or groups


def _shift_table(shifts: list[TermShift]):
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "term / group": s.label,
                "original": f"{s.original_count:,} ({s.original_frequency:.2%})",
                "filtered": f"{s.filtered_count:,} ({s.filtered_frequency:.2%})",
                "change": f"{s.relative_change:+.1%}" + ("" if s.judgeable else " — too few captions to judge"),
                "95% CI": f"{s.ci95[0]:+.1%} … {s.ci95[1]:+.1%}" if s.ci95 else "—",
                "removed": f"{s.removal_rate:.1%}" if s.removal_rate is not None else "—",
                "reweighted change": _reweighted_cell(s),
            }
            for s in [s for s in shifts if s.judgeable] + [s for s in shifts if not s.judgeable]
        ]
    )


def _reweighted_cell(shift: TermShift) -> str:
    if shift.reweighted_change is None:
        return "—"
    text = f"{shift.reweighted_change:+.1%}"
    if shift.reweighted_ci95:
        text += f" ({shift.reweighted_ci95[0]:+.1%} … {shift.reweighted_ci95[1]:+.1%})"
    return text + (" · held out" if shift.held_out else " · a classifier feature")


def weight_section(workspace, weights: np.ndarray, info: dict) -> None:
    kept_weights = weights[workspace.kept]
    if info.get("warning"):
        st.warning(info["warning"], icon=":material/warning:")
    columns = st.columns(4)
    columns[0].metric(
        "Effective sample size",
        f"{info['effective_sample_size']:,.0f}",
        help=f"of {info['n_kept']:,} kept items (Kish)",
    )
    columns[1].metric(
        "Classifier AUC (out of fold)",
        f"{info['classifier_auc']:.3f}",
        help="How well the weak classifier tells kept from removed items",
    )
    columns[2].metric("Largest weight", f"{kept_weights.max():.2f}", help=f"weights clipped at {info['clip']}")
    columns[3].metric(
        "Removed with no kept neighbour",
        f"{info['removed_without_kept_neighbour']:.1%}",
        help=f"Removed items with no kept item within {CALIPER_SD} SD of their classifier score: weights cannot stand "
        f"in for them. Above {MAX_WITHOUT_KEPT_NEIGHBOUR:.0%} the fix is reported as not identifiable "
        "(bench/reweight_overlap.py).",
    )
    show_figure(weights_chart(kept_weights, info, workspace), "weights")


def association_section(workspace, index, terms: list[str], groups: dict) -> None:
    options = [f"group: {g}" for g in groups] + terms
    chosen = st.selectbox("Identity term or group", options, key="b-npmi")
    words = groups[chosen.removeprefix("group: ")] if chosen.startswith("group: ") else (chosen,)
    table = _npmi(cache_key(workspace), tuple(words), workspace, index)
    if table.empty:
        st.info("Too few co-occurrences to measure (each word needs 3+ captions with the identity term).")
        return
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.NumberColumn(format="%.3f") for c in ("npmi_original", "npmi_filtered", "change")
        },
    )
    st.caption(
        "Sorted by the drop in nPMI from original to filtered: the contexts of the identity term that the "
        "filter removed most. A word with no co-occurrence left after filtering shows no filtered value."
    )
    phrases = _collocations(cache_key(workspace), tuple(words), workspace, index)
    if not phrases.empty:
        st.markdown("**Phrases around it** (bigrams ranked by nltk's likelihood ratio; counts of captions)")
        st.dataframe(
            phrases,
            hide_index=True,
            width="stretch",
            column_config={
                "relative_change": st.column_config.NumberColumn(format="percent"),
                "likelihood_ratio": st.column_config.NumberColumn(format="%.1f"),
            },
        )
