"""The house style of every chart: titles, fonts, colours and the provenance footer (no Streamlit here).
Each analysis draws its own figures in its folder (`analysis/<analysis>/figures.py`) with these helpers.

Every figure has a self-explaining title, labelled axes with units, large fonts and a provenance footer, so a
screenshot or an exported PNG stands alone in an audit report.
"""

from __future__ import annotations

from datetime import date

import plotly.graph_objects as go

from analysis import __version__
from analysis.workspace import Workspace

BOTTOM_MARGIN = 115  # room for the x-axis title and the provenance footer under it
FONT = dict(family="Source Sans Pro, Arial, sans-serif", size=15, color="#222")
PALETTE = {
    "original": "#7f7f7f",
    "filtered": "#c0392b",
    "reweighted": "#2d5fa8",
    "kept": "#2d5fa8",
    "removed": "#c0392b",
    "too few": "#bdbdbd",  # estimates resting on too few observations to judge (analysis.stats.judgeable)
}
# Okabe–Ito colours (told apart with colour-blindness too), with dashes for the second half of the terms
LINE_COLOURS = ["#D55E00", "#0072B2", "#CC79A7", "#009E73", "#E69F00", "#56B4E9", "#7f7f7f"]
LINE_DASHES = ["solid", "solid", "dash", "dash", "dot", "dot", "dashdot"]
NOTE = "<br><span style='font-size:12px;color:#555'>{}</span>"  # a second, smaller line in a tick label


def provenance_line(workspace: Workspace, extra: str = "") -> str:
    label = "SYNTHETIC · " if workspace.config.synthetic else ""
    first = f"{label}'{workspace.config.name}' · {workspace.n_original:,} original → {workspace.n_kept:,} filtered"
    second = " · ".join(p for p in (extra, f"pretrain-audit {__version__}", date.today().isoformat()) if p)
    return f"{first}<br>{second}"


def style_figure(
    figure: go.Figure,
    title: str,
    workspace: Workspace,
    *,
    height: int = 420,
    footer: str = "",
    legend_right: bool = False,
) -> go.Figure:
    """`legend_right`: a vertical legend beside the plot, for legends too long for the strip above it (where
    they would run into the title)."""
    legend = (
        dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.02)
        if legend_right
        else dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0)
    )
    figure.update_layout(
        title=dict(text=title, font=dict(size=19), x=0.01, xanchor="left"),
        font=FONT,
        height=height,
        template="plotly_white",
        margin=dict(l=20, r=30, t=80, b=BOTTOM_MARGIN),
        legend=legend,
    )
    plot_height = max(height - 80 - BOTTOM_MARGIN, 1)
    figure.add_annotation(
        text=provenance_line(workspace, footer),
        xref="paper",
        yref="paper",
        x=0,
        y=-(BOTTOM_MARGIN - 8) / plot_height,
        xanchor="left",
        yanchor="bottom",
        showarrow=False,
        align="left",
        font=dict(size=12, color="#666"),
    )
    return figure


def histogram_bars(values, edges, **bar: object) -> go.Bar:
    """A histogram binned here, not in the browser: the figure carries one bar per bin, whatever the number of
    values (a go.Histogram of a million weights sent 13 MB to every page view)."""
    import numpy as np

    counts, edges = np.histogram(np.asarray(values, dtype=np.float64), bins=edges)
    centres = (edges[:-1] + edges[1:]) / 2
    return go.Bar(
        x=centres,
        y=counts,
        width=np.diff(edges),
        customdata=np.stack([edges[:-1], edges[1:]], axis=1),
        hovertemplate="%{customdata[0]:.3g}–%{customdata[1]:.3g}: %{y:,}<extra></extra>",
        **bar,
    )
