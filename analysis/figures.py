"""Plotly figures of the analyses, shared by the dashboard and the HTML report (no Streamlit here).

Every figure has a self-explaining title, labelled axes with units, large fonts and a provenance footer, so a
screenshot or an exported PNG stands alone in an audit report.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis import __version__
from analysis.bias import term_label
from analysis.workspace import Workspace

BOTTOM_MARGIN = 115  # room for the x-axis title and the provenance footer under it
FONT = dict(family="Source Sans Pro, Arial, sans-serif", size=15, color="#222")
PALETTE = {"original": "#7f7f7f", "filtered": "#c0392b", "reweighted": "#2d5fa8", "kept": "#2d5fa8",
           "removed": "#c0392b"}
# Okabe–Ito colours (told apart with colour-blindness too), with dashes for the second half of the terms
LINE_COLOURS = ["#D55E00", "#0072B2", "#CC79A7", "#009E73", "#E69F00", "#56B4E9", "#7f7f7f"]
LINE_DASHES = ["solid", "solid", "dash", "dash", "dot", "dot", "dashdot"]
NOTE = "<br><span style='font-size:12px;color:#555'>{}</span>"  # a second, smaller line in a tick label


def provenance_line(workspace: Workspace, extra: str = "") -> str:
    label = "SYNTHETIC · " if workspace.config.synthetic else ""
    first = f"{label}'{workspace.config.name}' · {workspace.n_original:,} original → {workspace.n_kept:,} filtered"
    second = " · ".join(p for p in (extra, f"pretrain-audit {__version__}", date.today().isoformat()) if p)
    return f"{first}<br>{second}"


def style_figure(figure: go.Figure, title: str, workspace: Workspace, *, height: int = 420,
                 footer: str = "", legend_right: bool = False) -> go.Figure:
    """`legend_right`: a vertical legend beside the plot, for legends too long for the strip above it (where
    they would run into the title)."""
    legend = (dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.02) if legend_right else
              dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0))
    figure.update_layout(
        title=dict(text=title, font=dict(size=19), x=0.01, xanchor="left"),
        font=FONT, height=height, template="plotly_white", margin=dict(l=20, r=30, t=80, b=BOTTOM_MARGIN),
        legend=legend,
    )
    plot_height = max(height - 80 - BOTTOM_MARGIN, 1)
    figure.add_annotation(text=provenance_line(workspace, footer), xref="paper", yref="paper", x=0,
                          y=-(BOTTOM_MARGIN - 8) / plot_height, xanchor="left", yanchor="bottom", showarrow=False,
                          align="left", font=dict(size=12, color="#666"))
    return figure


def removal_rate_chart(by_term: pd.DataFrame, workspace: Workspace) -> go.Figure:
    shown = by_term[(by_term["captions"] > 0) & (by_term["kind"] != "all")].copy()
    # The numbers go in the tick labels: inside a short bar they would overflow into its interval
    shown["label"] = [term_label(name, kind == "group") + NOTE.format(f"{r:.1%} of {c:,}")
                      for name, kind, r, c in zip(shown["name"], shown["kind"], shown["removal_rate"],
                                                  shown["captions"])]
    overall = by_term[by_term["kind"] == "all"].iloc[0]
    figure = go.Figure(go.Bar(
        x=shown["removal_rate"] * 100, y=shown["label"], orientation="h", marker_color=PALETTE["removed"],
        error_x=dict(type="data", symmetric=False, array=(shown["ci_high"] - shown["removal_rate"]) * 100,
                     arrayminus=(shown["removal_rate"] - shown["ci_low"]) * 100, color="#444")))
    figure.add_vline(x=overall["removal_rate"] * 100, line_dash="dash", line_color="#555",
                     annotation_text=f"all captions {overall['removal_rate']:.1%}", annotation_position="top")
    figure.update_xaxes(title="captions removed by the filters (%), 95% Wilson interval", ticksuffix="%")
    figure.update_yaxes(autorange="reversed")
    return style_figure(figure, "Share of captions removed, by term", workspace, height=140 + 55 * max(len(shown), 2))


def score_chart(workspace: Workspace) -> go.Figure:
    from plotly.subplots import make_subplots

    from analysis.removals import score_histogram

    filters = workspace.config.filtered.scores
    figure = make_subplots(rows=1, cols=len(filters), shared_yaxes=True, horizontal_spacing=0.04,
                           subplot_titles=[f"{f.name}: removed when ≥ {f.threshold:g}" for f in filters])
    for position, score_filter in enumerate(filters, start=1):
        scores = workspace.original[score_filter.column].to_numpy(dtype=float)
        hist = score_histogram(scores, workspace.kept)
        centre = (hist["bin_start"] + hist["bin_end"]) / 2
        for label in ("kept", "removed"):
            figure.add_trace(go.Bar(x=centre, y=hist[label], name=label, marker_color=PALETTE[label],
                                    opacity=0.8, showlegend=position == 1, legendgroup=label), row=1, col=position)
        figure.add_vline(x=score_filter.threshold, line_dash="dot", line_color="#222", row=1, col=position)
        figure.update_xaxes(title="classifier score", range=[0, 1], row=1, col=position)
    figure.update_layout(barmode="overlay")
    figure.update_yaxes(type="log", dtick=1, title="rows (log scale)", row=1, col=1)
    return style_figure(figure, "Classifier scores of kept and removed rows", workspace, height=440,
                        legend_right=True)


def what_if_chart(sweep: pd.DataFrame, filter_name: str, current: float, workspace: Workspace) -> go.Figure:
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=sweep["threshold"], y=sweep["fraction_removed"] * 100, name="dataset removed",
                                line=dict(color="#222", width=3)))
    columns = [c for c in sweep.columns if c.startswith("change_")]
    for colour, dash, column in zip(LINE_COLOURS, LINE_DASHES, columns):
        if sweep[column].notna().any():
            figure.add_trace(go.Scatter(x=sweep["threshold"], y=sweep[column] * 100,
                                        line=dict(color=colour, width=2.5, dash=dash),
                                        name=f"“{column.removeprefix('change_')}” frequency change"))
    figure.add_vline(x=current, line_dash="dot", annotation_text=f"current {current:g}")
    figure.update_xaxes(title=f"threshold of '{filter_name}' (removed when score ≥ threshold)")
    figure.update_yaxes(title="%", ticksuffix="%")
    return style_figure(figure, f"What if the '{filter_name}' threshold were different?", workspace, height=460,
                        legend_right=True)


def shift_chart(shifts: list, workspace: Workspace) -> go.Figure:
    names = [s.label for s in shifts]
    change = np.array([s.relative_change for s in shifts]) * 100
    low = np.array([s.ci95[0] if s.ci95 else np.nan for s in shifts]) * 100
    high = np.array([s.ci95[1] if s.ci95 else np.nan for s in shifts]) * 100
    reweighted = None
    if any(s.reweighted_change is not None for s in shifts):
        reweighted = np.array([s.reweighted_change if s.reweighted_change is not None else np.nan
                               for s in shifts]) * 100
    # The numbers go in the tick labels: on a short bar they would overflow into its interval
    labels = [name + NOTE.format(f"{c:+.1f}%" + ("" if reweighted is None or np.isnan(reweighted[i])
                                                  else f" · reweighted {reweighted[i]:+.1f}%"))
              for i, (name, c) in enumerate(zip(names, change))]
    figure = go.Figure(go.Bar(
        y=labels, x=change, orientation="h", name="original → filtered", marker_color=PALETTE["filtered"],
        error_x=dict(type="data", symmetric=False, array=high - change, arrayminus=change - low, color="#444")))
    if reweighted is not None:
        figure.add_trace(go.Bar(y=labels, x=reweighted, orientation="h", name="original → reweighted filtered",
                                marker_color=PALETTE["reweighted"]))
    figure.add_vline(x=0, line_color="#222")
    figure.update_layout(barmode="group")
    figure.update_xaxes(title="relative change in caption frequency (%), bars: 95% bootstrap interval",
                        ticksuffix="%", zeroline=True)
    figure.update_yaxes(autorange="reversed")
    return style_figure(figure, "How filtering shifted caption frequencies", workspace,
                        height=160 + 60 * len(shifts), footer="frequency = share of captions containing the term")


def weights_chart(kept_weights: np.ndarray, info: dict, workspace: Workspace) -> go.Figure:
    figure = go.Figure(go.Histogram(x=kept_weights, nbinsx=60, marker_color=PALETTE["reweighted"]))
    figure.update_xaxes(title="weight of a kept item (mean 1)")
    figure.update_yaxes(type="log", dtick=1, title="kept items (log scale)")
    return style_figure(figure, "Reweighting: distribution of weights", workspace, height=360,
                        footer=f"features: {info['features']}, C={info['C']}")


def top_words_chart(top: pd.DataFrame, workspace: Workspace) -> go.Figure:
    ordered = top.assign(removed_z=-top["log_odds_z"]).sort_values("removed_z", ascending=False)
    colours = [PALETTE["filtered"] if z > 0 else PALETTE["reweighted"] for z in ordered["removed_z"]]
    labels = [f"{w}" + NOTE.format(f"{n:,} captions, {c:+.0%}")
              for w, n, c in zip(ordered["word"], ordered["original_count"], ordered["relative_change"])]
    figure = go.Figure(go.Bar(x=ordered["removed_z"], y=labels, orientation="h", marker_color=colours,
                              hovertemplate="z=%{x:.2f}<extra></extra>"))
    figure.update_xaxes(title="over-representation among removed captions (z-scored log-odds; negative: kept more)")
    figure.update_yaxes(autorange="reversed")
    return style_figure(figure, "Words most over-represented among removed captions", workspace,
                        height=140 + 40 * len(ordered),
                        footer="Monroe et al. 2008, informative Dirichlet prior; words in 5+ captions; "
                               "under each word: captions with it, change in its frequency")


SIZE_BIN_EDGES = (2, 3, 4, 6, 11, 21, 51, 101, 201, 501, 1001, 10001)


def group_size_bins(sizes: np.ndarray) -> pd.DataFrame:
    """Groups per size: exact sizes while there are few, else ranges that widen with the size (2, 3, 4–5, 6–10,
    11–20, …), so a long tail of large groups stays readable in one chart."""
    values, counts = np.unique(sizes, return_counts=True) if len(sizes) else (np.array([], int), np.array([], int))
    if len(values) <= 12:
        return pd.DataFrame({"label": [f"{v:,}" for v in values], "groups": counts})
    edges = [e for e in SIZE_BIN_EDGES if e <= values.max()] + [int(values.max()) + 1]
    bins = np.searchsorted(edges, values, side="right") - 1
    totals = np.bincount(bins, weights=counts, minlength=len(edges) - 1)[:len(edges) - 1]
    labels = [f"{low:,}" if high - low == 1 else f"{low:,}–{high - 1:,}" for low, high in zip(edges, edges[1:])]
    return pd.DataFrame({"label": labels, "groups": totals.astype(int)})


def group_size_chart(result, workspace: Workspace) -> go.Figure:
    bins = group_size_bins(result.group_sizes())
    figure = go.Figure(go.Bar(x=bins["label"], y=bins["groups"], marker_color="#2d5fa8",
                              text=[f"{g:,}" for g in bins["groups"]], textposition="outside", cliponaxis=False))
    figure.update_xaxes(title="images in the group", type="category")
    figure.update_yaxes(title="groups", range=[0, (bins["groups"].max() if len(bins) else 1) * 1.15])
    return style_figure(figure, f"Duplicate groups by size (cosine ≥ {result.threshold:.2f})", workspace, height=400)


def dedup_curve_chart(curve: pd.DataFrame, threshold: float, workspace: Workspace) -> go.Figure:
    figure = go.Figure(go.Scatter(x=curve["threshold"], y=curve["fraction_removed"] * 100, mode="lines+markers",
                                  line=dict(color="#c0392b", width=3)))
    figure.add_vline(x=threshold, line_dash="dot", annotation_text=f"chosen {threshold:.2f}")
    figure.update_xaxes(title="cosine similarity threshold")
    figure.update_yaxes(title="dataset removed by dedup (%)", ticksuffix="%", rangemode="tozero")
    return style_figure(figure, "Share removed by dedup, by threshold", workspace, height=400)


def similarity_chart(samples: pd.DataFrame, threshold: float, workspace: Workspace) -> go.Figure:
    figure = go.Figure()
    for flagged, colour, name in ((False, "#7f7f7f", "not flagged"), (True, "#c0392b", "flagged")):
        part = samples[samples["flagged"] == flagged]
        figure.add_trace(go.Histogram(x=part["similarity"], name=name, marker_color=colour, xbins=dict(size=0.01)))
    figure.add_vline(x=threshold, line_dash="dot", annotation_text=f"threshold {threshold:.3f}",
                     annotation_position="top left")  # the line sits near the right edge
    figure.update_layout(barmode="stack")
    lowest = samples["similarity"].min() if samples["similarity"].notna().any() else 0.0
    figure.update_xaxes(title="cosine similarity to the nearest training image",
                        range=[min(float(lowest), threshold) - 0.02, 1.01])  # cosine never exceeds 1
    figure.update_yaxes(title="generated samples")
    figure = style_figure(figure, "Similarity to the nearest training image", workspace, height=420,
                          footer=f"n={len(samples):,} generated samples")
    return figure.update_layout(legend=dict(x=0.0, xanchor="left"))  # the threshold's label is on the right


def copy_group_chart(samples: pd.DataFrame, threshold: float, workspace: Workspace) -> go.Figure:
    crowded = len(samples) > 500  # thousands of large markers would merge into blobs
    figure = go.Figure()
    for flagged, colour, name in ((False, "#7f7f7f", "not flagged"), (True, "#c0392b", "flagged")):
        part = samples[samples["flagged"] == flagged]
        figure.add_trace(go.Scatter(x=part["group_size"].astype(float), y=part["similarity"], mode="markers",
                                    name=name, marker=dict(color=colour, size=5 if crowded else 10, opacity=0.4 if crowded else 0.75),
                                    text=part["id"], hovertemplate="%{text}: group %{x}, cos %{y:.3f}"))
    figure.add_hline(y=threshold, line_dash="dot")
    figure.update_xaxes(title="size of the nearest image's duplicate group", type="log",
                        tickvals=[1, 2, 5, 10, 20, 50, 100, 1000, 10000])
    figure.update_yaxes(title="best cosine similarity")
    return style_figure(figure, "Copies come from heavily duplicated images", workspace, height=420)
