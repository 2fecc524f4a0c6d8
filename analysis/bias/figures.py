"""Charts of the Bias analysis: term shifts with intervals, reweighting weights, most shifted words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.charts import NOTE, PALETTE, histogram_bars, style_figure
from analysis.stats import MIN_JUDGEABLE
from analysis.workspace import Workspace


def weights_chart(kept_weights: np.ndarray, info: dict, workspace: Workspace) -> go.Figure:
    finite = kept_weights[np.isfinite(kept_weights)]
    edges = np.linspace(finite.min(), finite.max(), 61) if len(finite) and finite.max() > finite.min() else 60
    figure = go.Figure(histogram_bars(finite, edges, marker_color=PALETTE["reweighted"]))
    figure.update_layout(bargap=0)
    figure.update_xaxes(title="weight of a kept item (mean 1)")
    figure.update_yaxes(type="log", dtick=1, title="kept items (log scale)")
    return style_figure(
        figure,
        "Reweighting: distribution of weights",
        workspace,
        height=360,
        footer=f"features: {info['features']}, C={info['C']}",
    )


def top_words_chart(top: pd.DataFrame, workspace: Workspace) -> go.Figure:
    ordered = top.assign(removed_z=-top["log_odds_z"]).sort_values("removed_z", ascending=False)
    colours = [PALETTE["filtered"] if z > 0 else PALETTE["reweighted"] for z in ordered["removed_z"]]
    labels = [
        f"{w}" + NOTE.format(f"{n:,} captions, {c:+.0%}" if n >= MIN_JUDGEABLE else f"{n:,} captions")
        for w, n, c in zip(ordered["word"], ordered["original_count"], ordered["relative_change"])
    ]
    figure = go.Figure(
        go.Bar(
            x=ordered["removed_z"],
            y=labels,
            orientation="h",
            marker_color=colours,
            hovertemplate="z=%{x:.2f}<extra></extra>",
        )
    )
    figure.update_xaxes(title="over-representation among removed captions (z-scored log-odds; negative: kept more)")
    figure.update_yaxes(autorange="reversed")
    return style_figure(
        figure,
        "Words most over-represented among removed captions",
        workspace,
        height=140 + 40 * len(ordered),
        footer="Monroe et al. 2008, informative Dirichlet prior; words in 5+ captions; "
        f"under each word: captions with it, and the change in its frequency from {MIN_JUDGEABLE} captions on",
    )
