"""Charts of the regurgitation analysis: similarity distribution and copies vs duplicate-group size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.charts import histogram_bars, style_figure
from analysis.workspace import Workspace


def similarity_chart(samples: pd.DataFrame, threshold: float, workspace: Workspace) -> go.Figure:
    figure = go.Figure()
    similarity = samples["similarity"].to_numpy(dtype=np.float64)
    known = similarity[np.isfinite(similarity)]
    edges = np.arange(np.floor(min(known.min(), threshold) * 100) / 100 if len(known) else 0.0, 1.0 + 0.015, 0.01)
    for flagged, colour, name in ((False, "#7f7f7f", "not flagged"), (True, "#c0392b", "flagged")):
        part = samples.loc[samples["flagged"] == flagged, "similarity"].dropna()
        figure.add_trace(histogram_bars(part, edges, name=name, marker_color=colour))
    lowest = samples["similarity"].min() if samples["similarity"].notna().any() else 0.0
    low, high = min(float(lowest), threshold) - 0.02, 1.01  # cosine never exceeds 1
    # The label goes on the side of the line with more room (at the left edge, a label to its left was cut:
    # "shold 0.500"), and the legend to the other side.
    label_right = threshold < (low + high) / 2
    figure.add_vline(
        x=threshold,
        line_dash="dot",
        annotation_text=f"threshold {threshold:.3f}",
        annotation_position="top right" if label_right else "top left",
    )
    figure.update_layout(barmode="stack", bargap=0)
    figure.update_xaxes(title="cosine similarity to the nearest training image", range=[low, high])
    figure.update_yaxes(title="generated samples")
    figure = style_figure(
        figure,
        "Similarity to the nearest training image",
        workspace,
        height=420,
        footer=f"n={len(samples):,} generated samples",
    )
    legend = dict(x=1.0, xanchor="right") if label_right else dict(x=0.0, xanchor="left")
    return figure.update_layout(legend=legend)


MAX_POINTS_SHOWN = 2_000  # more markers than a 400-pixel chart can tell apart; each costs the browser to draw


def copy_group_chart(samples: pd.DataFrame, threshold: float, workspace: Workspace) -> go.Figure:
    """Every flagged sample, and at most MAX_POINTS_SHOWN of the others (a fixed random draw, said in the footer):
    ten thousand SVG markers took the browser seconds to draw and said nothing more."""
    crowded = len(samples) > 500  # thousands of large markers would merge into blobs
    figure = go.Figure()
    footer = ""
    for flagged, colour, name in ((False, "#7f7f7f", "not flagged"), (True, "#c0392b", "flagged")):
        part = samples[samples["flagged"] == flagged]
        if not flagged and len(part) > MAX_POINTS_SHOWN:
            footer = f"a random {MAX_POINTS_SHOWN:,} of {len(part):,} not flagged shown; all flagged"
            part = part.sample(MAX_POINTS_SHOWN, random_state=0)
        figure.add_trace(
            go.Scatter(
                x=part["group_size"].astype(float),
                y=part["similarity"],
                mode="markers",
                name=name,
                marker=dict(color=colour, size=5 if crowded else 10, opacity=0.4 if crowded else 0.75),
                text=part["id"],
                hovertemplate="%{text}: group %{x}, cos %{y:.3f}",
            )
        )
    figure.add_hline(y=threshold, line_dash="dot")
    figure.update_xaxes(
        title="size of the nearest image's duplicate group",
        type="log",
        tickvals=[1, 2, 5, 10, 20, 50, 100, 1000, 10000],
    )
    figure.update_yaxes(title="best cosine similarity")
    return style_figure(figure, "Copies come from heavily duplicated images", workspace, height=420, footer=footer)
