"""Charts of the Bias analysis: term shifts with intervals, reweighting weights, most shifted words."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.charts import NOTE, PALETTE, histogram_bars, style_figure
from analysis.stats import MIN_JUDGEABLE
from analysis.workspace import Workspace


def shift_chart(
    shifts: list,
    workspace: Workspace,
    title: str = "How filtering shifted caption frequencies",
    change_name: str = "original → filtered",
) -> go.Figure:
    """Judgeable shifts first, in the order given; those resting on too few captions after them, grey, labelled
    as such and never ranked among the others. `title` and `change_name` name the removal (filters, dedup)."""
    shifts = [s for s in shifts if s.judgeable] + [s for s in shifts if not s.judgeable]
    names = [s.label for s in shifts]
    change = np.array([s.relative_change for s in shifts]) * 100
    low = np.array([s.ci95[0] if s.ci95 else np.nan for s in shifts]) * 100
    high = np.array([s.ci95[1] if s.ci95 else np.nan for s in shifts]) * 100
    reweighted = None
    if any(s.reweighted_change is not None for s in shifts):
        reweighted = (
            np.array([s.reweighted_change if s.reweighted_change is not None else np.nan for s in shifts]) * 100
        )
    # The numbers go in the tick labels: on a short bar they would overflow into its interval
    labels = [
        name
        + NOTE.format(
            (
                f"{c:+.1f}%"
                + ("" if reweighted is None or np.isnan(reweighted[i]) else f" · reweighted {reweighted[i]:+.1f}%")
            )
            if shift.judgeable
            else f"too few captions to judge ({shift.original_count:,})"
        )
        for i, (name, c, shift) in enumerate(zip(names, change, shifts))
    ]
    figure = go.Figure(
        go.Bar(
            y=labels,
            x=change,
            orientation="h",
            name=change_name,
            marker_color=[PALETTE["filtered"] if s.judgeable else PALETTE["too few"] for s in shifts],
            error_x=dict(type="data", symmetric=False, array=high - change, arrayminus=change - low, color="#444"),
        )
    )
    if reweighted is not None:
        figure.add_trace(
            go.Bar(
                y=labels,
                x=reweighted,
                orientation="h",
                name="original → reweighted filtered",
                marker_color=PALETTE["reweighted"],
                error_x=dict(
                    type="data",
                    symmetric=False,
                    array=[
                        (s.reweighted_ci95[1] * 100 - r) if s.reweighted_ci95 else 0 for s, r in zip(shifts, reweighted)
                    ],
                    arrayminus=[
                        (r - s.reweighted_ci95[0] * 100) if s.reweighted_ci95 else 0 for s, r in zip(shifts, reweighted)
                    ],
                    color="#7a8fb5",
                ),
            )
        )
    figure.add_vline(x=0, line_color="#222")
    figure.update_layout(barmode="group")
    figure.update_xaxes(
        title="relative change in caption frequency (%), bars: 95% interval", ticksuffix="%", zeroline=True
    )
    figure.update_yaxes(autorange="reversed")
    return style_figure(
        figure,
        title,
        workspace,
        height=160 + 60 * len(shifts),
        footer=f"frequency = share of captions containing the term; grey: fewer than {MIN_JUDGEABLE} captions",
    )


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
