"""The charts of what a removal does, drawn alike for the filters and for dedup: caption term shifts with their
intervals (`shift_chart`) and the visual clusters a removal thinned most (`lift_chart`)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from analysis.charts import NOTE, PALETTE, style_figure
from analysis.effects.clusters import ClusterRates
from analysis.stats import MIN_JUDGEABLE
from analysis.workspace import Workspace

SHOWN_CLUSTERS = 12  # clusters the lift chart draws


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


def cluster_label(cluster: int, words: list[str]) -> str:
    return f"cluster {cluster}: {', '.join(words[:3])}" if words else f"cluster {cluster}"


def lift_chart(rates: ClusterRates, workspace: Workspace, title: str | None = None) -> go.Figure:
    """The judgeable clusters with the highest lift, each with its removal rate and 95% interval, against the
    overall rate."""
    shown = [c for c in rates.clusters if c.judgeable][:SHOWN_CLUSTERS][::-1]
    figure = go.Figure()
    colour = PALETTE["removed"] if rates.removal == "filters" else "#8e44ad"
    figure.add_trace(
        go.Scatter(
            x=[c.removal_rate for c in shown],
            y=[cluster_label(c.cluster, c.top_words) for c in shown],
            mode="markers",
            marker=dict(
                size=12,
                color=[colour if c.significant and (c.lift or 0) > 1 else "#7f7f7f" for c in shown],
            ),
            error_x=dict(
                type="data",
                symmetric=False,
                array=[c.ci95[1] - c.removal_rate for c in shown],
                arrayminus=[c.removal_rate - c.ci95[0] for c in shown],
                color="#555",
                thickness=1.5,
            ),
            customdata=[
                [c.size, c.removed, c.lift or 0, c.q_value if c.q_value is not None else np.nan] for c in shown
            ],
            hovertemplate="%{y}<br>removed %{customdata[1]:,} of %{customdata[0]:,} (%{x:.1%})<br>"
            "lift %{customdata[2]:.2f} · q = %{customdata[3]:.2g}<extra></extra>",
            showlegend=False,
        )
    )
    figure.add_vline(
        x=rates.overall_rate,
        line_dash="dot",
        annotation_text=f"overall {rates.overall_rate:.1%}",
        annotation_position="top right",
    )
    figure.update_xaxes(title="share of the cluster's images removed (95% Clopper–Pearson interval)", tickformat=".0%")
    figure.update_yaxes(automargin=True)
    what = "filters" if rates.removal == "filters" else "deduplication"
    unranked = sum(1 for c in rates.clusters if not c.judgeable)
    footer = f"{rates.k} clusters (spherical k-means of image embeddings); coloured: q < 0.05 (Benjamini–Hochberg)" + (
        f"; {unranked} with < 30 images not ranked" if unranked else ""
    )
    return style_figure(
        figure,
        title or f"Visual clusters that the {what} removed most (highest lift first)",
        workspace,
        height=160 + 34 * max(len(shown), 3),
        footer=footer,
    )
