"""Charts of the Removals analysis: removal rate by term, score distributions, the threshold what-if."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.charts import LINE_COLOURS, LINE_DASHES, NOTE, PALETTE, style_figure
from analysis.effects.terms import term_label
from analysis.filter_spec import ScoreFilter
from analysis.workspace import Workspace


def removal_rate_chart(by_term: pd.DataFrame, workspace: Workspace) -> go.Figure:
    shown = by_term[(by_term["captions"] > 0) & (by_term["kind"] != "all")]
    shown = pd.concat([shown[shown["judgeable"]], shown[~shown["judgeable"]]])  # too few: after, never ranked
    # The numbers go in the tick labels: inside a short bar they would overflow into its interval
    shown["label"] = [
        term_label(name, kind == "group")
        + NOTE.format(f"{r:.1%} of {c:,}" if judged else f"{r:.1%} of {c:,}: too few captions to judge")
        for name, kind, r, c, judged in zip(
            shown["name"], shown["kind"], shown["removal_rate"], shown["captions"], shown["judgeable"]
        )
    ]
    overall = by_term[by_term["kind"] == "all"].iloc[0]
    figure = go.Figure(
        go.Bar(
            x=shown["removal_rate"] * 100,
            y=shown["label"],
            orientation="h",
            marker_color=[PALETTE["removed"] if judged else PALETTE["too few"] for judged in shown["judgeable"]],
            error_x=dict(
                type="data",
                symmetric=False,
                array=(shown["ci_high"] - shown["removal_rate"]) * 100,
                arrayminus=(shown["removal_rate"] - shown["ci_low"]) * 100,
                color="#444",
            ),
        )
    )
    figure.add_vline(
        x=overall["removal_rate"] * 100,
        line_dash="dash",
        line_color="#555",
        annotation_text=f"all captions {overall['removal_rate']:.1%}",
        annotation_position="top",
    )
    figure.update_xaxes(title="captions removed by the filters (%), 95% Clopper–Pearson interval", ticksuffix="%")
    figure.update_yaxes(autorange="reversed")
    return style_figure(figure, "Share of captions removed, by term", workspace, height=140 + 55 * max(len(shown), 2))


def score_chart(workspace: Workspace) -> go.Figure:
    from plotly.subplots import make_subplots

    from analysis.removals.compute import score_histogram, score_range

    filters = workspace.config.filtered.scores
    figure = make_subplots(
        rows=1,
        cols=len(filters),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=[f"{f.name}: {f.rule.removeprefix('removed when ')}".replace("'", "") for f in filters],
    )
    for position, score_filter in enumerate(filters, start=1):
        scores = workspace.original[score_filter.column].to_numpy(dtype=float)
        hist = score_histogram(scores, workspace.kept)
        centre = (hist["bin_start"] + hist["bin_end"]) / 2
        for label in ("kept", "removed"):
            figure.add_trace(
                go.Bar(
                    x=centre,
                    y=hist[label],
                    name=label,
                    marker_color=PALETTE[label],
                    opacity=0.8,
                    showlegend=position == 1,
                    legendgroup=label,
                ),
                row=1,
                col=position,
            )
        figure.add_vline(x=score_filter.threshold, line_dash="dot", line_color="#222", row=1, col=position)
        figure.update_xaxes(title="score", range=list(score_range(scores)), row=1, col=position)
    figure.update_layout(barmode="overlay")
    figure.update_yaxes(type="log", dtick=1, title="rows (log scale)", row=1, col=1)
    return style_figure(figure, "Classifier scores of kept and removed rows", workspace, height=440, legend_right=True)


def what_if_chart(sweep: pd.DataFrame, varied: ScoreFilter, workspace: Workspace) -> go.Figure:
    filter_name, current = varied.name, varied.threshold
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=sweep["threshold"],
            y=sweep["fraction_removed"] * 100,
            name="dataset removed",
            line=dict(color="#222", width=3),
        )
    )
    columns = [c for c in sweep.columns if c.startswith("change_")]
    for colour, dash, column in zip(LINE_COLOURS, LINE_DASHES, columns):
        if sweep[column].notna().any():
            figure.add_trace(
                go.Scatter(
                    x=sweep["threshold"],
                    y=sweep[column] * 100,
                    line=dict(color=colour, width=2.5, dash=dash),
                    name=f"“{column.removeprefix('change_')}” frequency change",
                )
            )
    figure.add_vline(x=current, line_dash="dot", annotation_text=f"current {current:g}")
    symbol = "≥" if varied.removed_when == ">=" else "<"
    figure.update_xaxes(title=f"threshold of '{filter_name}' (removed when {varied.column} {symbol} threshold)")
    figure.update_yaxes(title="%", ticksuffix="%")
    return style_figure(
        figure, f"What if the '{filter_name}' threshold were different?", workspace, height=460, legend_right=True
    )
