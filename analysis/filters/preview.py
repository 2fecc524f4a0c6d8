"""What a filter would do to the data's balance before it is applied: for each audited term and group, the
caption-frequency shift and the removal rate now, and with the filter added (same definitions and intervals as
the Bias and Removals pages), so that a filter that amplifies a bias is caught before it is applied."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.captions import DocTermIndex
from analysis.effects.terms import group_shifts, removal_by_terms, term_shifts
from analysis.workspace import Workspace


def kept_without(workspace: Workspace, filter_name: str) -> np.ndarray:
    """What the other filters keep: the workspace as it would be if this filter were not applied."""
    others = [mask for name, mask in workspace.removed_by.items() if name != filter_name]
    if not others:
        return np.ones(workspace.n_original, dtype=bool)
    return ~np.logical_or.reduce(others)


def preview_table(workspace: Workspace, index: DocTermIndex, filter_name: str, flagged: np.ndarray) -> pd.DataFrame:
    """One row per term and group: captions, change and removal rate now and with the filter, and the share of
    its captions the filter alone would remove."""
    now = kept_without(workspace, filter_name)
    after = now & ~flagged
    terms = list(workspace.config.default_terms)
    groups = workspace.config.groups
    rows = []
    shifts_now = term_shifts(index, now, terms) + group_shifts(index, now, groups)
    shifts_after = term_shifts(index, after, terms) + group_shifts(index, after, groups)
    removal_alone = removal_by_terms(index, ~flagged, terms, groups)
    for before, with_filter, (_, alone) in zip(shifts_now, shifts_after, removal_alone.iterrows()):
        rows.append(
            {
                "kind": before.kind,
                "name": before.name,
                "captions": before.original_count,
                "change_now": before.relative_change,
                "change_now_ci95": before.ci95,
                "change_with_filter": with_filter.relative_change,
                "change_with_filter_ci95": with_filter.ci95,
                "removal_rate_now": before.removal_rate,
                "removal_rate_with_filter": with_filter.removal_rate,
                "removal_rate_filter_alone": alone["removal_rate"],
                "judgeable": before.judgeable,
            }
        )
    overall = removal_alone.iloc[-1]
    rows.append(
        {
            "kind": "all",
            "name": "all captions",
            "captions": workspace.n_original,
            "change_now": None,
            "change_now_ci95": None,
            "change_with_filter": None,
            "change_with_filter_ci95": None,
            "removal_rate_now": float((~now).mean()),
            "removal_rate_with_filter": float((~after).mean()),
            "removal_rate_filter_alone": overall["removal_rate"],
            "judgeable": True,
        }
    )
    return pd.DataFrame(rows)
