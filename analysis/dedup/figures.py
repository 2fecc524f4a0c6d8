"""Charts of the near-duplicate analysis: group sizes and the removal curve by threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.charts import style_figure
from analysis.workspace import Workspace

SIZE_BIN_EDGES = (2, 3, 4, 6, 11, 21, 51, 101, 201, 501, 1001, 10001)


def group_size_bins(sizes: np.ndarray) -> pd.DataFrame:
    """Groups per size: exact sizes while there are few, else ranges that widen with the size (2, 3, 4–5, 6–10,
    11–20, …), so a long tail of large groups stays readable in one chart."""
    values, counts = np.unique(sizes, return_counts=True) if len(sizes) else (np.array([], int), np.array([], int))
    if len(values) <= 12:
        return pd.DataFrame({"label": [f"{v:,}" for v in values], "groups": counts})
    edges = [e for e in SIZE_BIN_EDGES if e <= values.max()] + [int(values.max()) + 1]
    bins = np.searchsorted(edges, values, side="right") - 1
    totals = np.bincount(bins, weights=counts, minlength=len(edges) - 1)[: len(edges) - 1]
    labels = [f"{low:,}" if high - low == 1 else f"{low:,}–{high - 1:,}" for low, high in zip(edges, edges[1:])]
    return pd.DataFrame({"label": labels, "groups": totals.astype(int)})


def group_size_title(result) -> str:
    if result.verification is not None:
        return (
            f"Duplicate groups by size (verified: ≥ {result.verification.inlier_threshold} inliers, "
            f"candidates cosine ≥ {result.threshold:.2f})"
        )
    return f"Duplicate groups by size (cosine ≥ {result.threshold:.2f})"


def group_size_chart(result, workspace: Workspace) -> go.Figure:
    bins = group_size_bins(result.group_sizes())
    figure = go.Figure(
        go.Bar(
            x=bins["label"],
            y=bins["groups"],
            marker_color="#2d5fa8",
            text=[f"{g:,}" for g in bins["groups"]],
            textposition="outside",
            cliponaxis=False,
        )
    )
    figure.update_xaxes(title="images in the group", type="category")
    figure.update_yaxes(title="groups", range=[0, (bins["groups"].max() if len(bins) else 1) * 1.15])
    return style_figure(figure, group_size_title(result), workspace, height=400)


def dedup_curve_chart(curve: pd.DataFrame, threshold: float, workspace: Workspace) -> go.Figure:
    figure = go.Figure(
        go.Scatter(
            x=curve["threshold"],
            y=curve["fraction_removed"] * 100,
            mode="lines+markers",
            line=dict(color="#c0392b", width=3),
        )
    )
    figure.add_vline(x=threshold, line_dash="dot", annotation_text=f"chosen {threshold:.2f}")
    figure.update_xaxes(title="cosine similarity threshold")
    figure.update_yaxes(title="dataset removed by dedup (%)", ticksuffix="%", rangemode="tozero")
    return style_figure(figure, "Share removed by dedup, by threshold", workspace, height=400)


def effect_figures(effects, workspace: Workspace) -> dict[str, go.Figure]:
    """What dedup removed, drawn like a filter's removals: caption term shifts and the visual clusters it thinned
    most."""
    from analysis.effects.figures import lift_chart, shift_chart

    figures: dict[str, go.Figure] = {}
    if effects.clusters.n_removed == 0:
        return figures  # nothing removed: the summary says so, an empty chart would not
    shifts = [s for s in effects.shifts.terms + effects.shifts.groups if s.relative_change is not None]
    if shifts:
        figures["dedup_term_shifts"] = shift_chart(
            shifts, workspace, "How deduplication shifted caption frequencies", "original → deduplicated"
        )
    figures["dedup_visual_clusters"] = lift_chart(effects.clusters, workspace)
    return figures
