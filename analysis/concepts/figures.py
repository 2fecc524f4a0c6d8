"""Charts of the concept analysis: removal rate per visual cluster (with intervals), and the map of the dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.charts import LINE_COLOURS, PALETTE, style_figure
from analysis.workspace import Workspace

MAP_POINTS = 2_500  # SVG markers a browser draws quickly; more images are drawn as density under them
GENERATED_SHOWN = 300  # generated samples drawn, flagged ones first
DENSITY_BINS = 120
CLUSTER_COLOURS = LINE_COLOURS[:-1] + ["#8c564b", "#bcbd22", "#17becf", "#9467bd", "#e377c2"]


def _density(xy: np.ndarray) -> go.Heatmap:
    finite = xy[np.isfinite(xy).all(axis=1)]
    counts, xedges, yedges = np.histogram2d(finite[:, 0], finite[:, 1], bins=DENSITY_BINS)
    counts = np.where(counts > 0, np.log10(counts + 1), np.nan)
    return go.Heatmap(
        x=(xedges[:-1] + xedges[1:]) / 2,
        y=(yedges[:-1] + yedges[1:]) / 2,
        z=counts.T.round(2),
        colorscale="Greys",
        showscale=False,
        hoverinfo="skip",
        opacity=0.55,
        name="all images (density)",
    )


def _view(xy: np.ndarray, margin: float = 0.08) -> tuple[tuple[list[float], list[float]], int]:
    """The axis ranges that hold 99% of the images: UMAP sets small disconnected groups (a family of
    near-identical images) far away, which would squash everything else into a corner."""
    finite = xy[np.isfinite(xy).all(axis=1)]
    if len(finite) < 50:
        low, high = finite.min(axis=0), finite.max(axis=0)
    else:
        low, high = np.quantile(finite, 0.005, axis=0), np.quantile(finite, 0.995, axis=0)
    pad = (high - low) * margin + 1e-6
    low, high = low - pad, high + pad
    outside = int((~((finite >= low) & (finite <= high)).all(axis=1)).sum())
    return ([float(low[0]), float(high[0])], [float(low[1]), float(high[1])]), outside


def shown_rows(valid_rows: np.ndarray, must_show: np.ndarray | None = None, limit: int = MAP_POINTS) -> np.ndarray:
    """The rows drawn as points: all of them up to `limit`, else a fixed random draw in which `must_show` (removed
    images, flagged samples) fill up to half."""
    if len(valid_rows) <= limit:
        return valid_rows
    rng = np.random.default_rng(0)
    first = np.zeros(0, dtype=np.int64) if must_show is None else np.asarray(must_show, dtype=np.int64)
    if len(first) > limit // 2:
        first = rng.choice(first, limit // 2, replace=False)
    rest = np.setdiff1d(valid_rows, first)
    return np.sort(np.concatenate([first, rng.choice(rest, limit - len(first), replace=False)]))


def map_figure(
    workspace: Workspace,
    xy: np.ndarray,
    rows: np.ndarray,
    colour: pd.Series,
    colour_name: str,
    hover: pd.Series,
    *,
    method: str,
    generated: tuple[np.ndarray, pd.Series, np.ndarray | None] | None = None,
    height: int = 720,
) -> go.Figure:
    """The map: `rows` drawn as points coloured by `colour` (categories or numbers), density of every image
    underneath when not all are drawn, and generated samples (positions, labels, positions of their nearest
    training images) on top. Each point's customdata is its row, so a click or a lasso names images."""
    figure = go.Figure()
    n_valid = int(np.isfinite(xy).all(axis=1).sum())
    sampled = len(rows) < n_valid
    if sampled:
        figure.add_trace(_density(xy))
    for trace in _point_traces(xy, rows, colour, colour_name, hover):
        figure.add_trace(trace)
    if generated is not None:
        for trace in _generated_traces(*generated):
            figure.add_trace(trace)
    (x_range, y_range), outside = _view(xy)
    figure.update_xaxes(title="map x", showticklabels=False, zeroline=False, range=x_range)
    figure.update_yaxes(title="map y", showticklabels=False, zeroline=False, range=y_range)
    drawn = f"a uniform random {len(rows):,} of {n_valid:,} images drawn, density of all underneath" if sampled else ""
    away = f"{outside:,} outlying images outside the view (double-click the map to see all)" if outside else ""
    footer = "<br>".join(p for p in (method, " · ".join(p for p in (drawn, away) if p)) if p)
    figure = style_figure(
        figure, f"Map of the dataset, coloured by {colour_name}", workspace, height=height, footer=footer
    )
    return figure.update_layout(dragmode="lasso", legend=dict(itemsizing="constant"))


def _point_traces(xy: np.ndarray, rows: np.ndarray, colour: pd.Series, colour_name: str, hover: pd.Series) -> list:
    """The drawn images: one trace on a colour scale for numbers, one trace per category otherwise (kept,
    removed and "in no group" in their fixed colours, listed last)."""
    traces: list = []
    numeric = pd.api.types.is_numeric_dtype(colour) and not pd.api.types.is_bool_dtype(colour)
    size, opacity = (5, 0.7) if len(rows) > 800 else (8, 0.8)
    if numeric:
        traces.append(
            go.Scatter(
                x=xy[rows, 0].round(3),
                y=xy[rows, 1].round(3),
                mode="markers",
                name=colour_name,
                marker=dict(
                    size=size,
                    opacity=opacity,
                    color=colour.to_numpy(dtype=np.float64),
                    colorscale="Viridis",
                    showscale=True,
                    colorbar=dict(title=colour_name, thickness=14),
                ),
                customdata=rows,
                text=hover,
                hovertemplate="%{text}<extra></extra>",
            )
        )
    else:
        categories = pd.Series(colour.astype(str).to_numpy())
        named = {"kept": PALETTE["kept"], "removed": PALETTE["removed"], "in no group": "#b0b0b0"}
        for i, category in enumerate(sorted(categories.unique(), key=lambda c: (c in named, c))):
            mask = (categories == category).to_numpy()
            traces.append(
                go.Scatter(
                    x=xy[rows[mask], 0].round(3),
                    y=xy[rows[mask], 1].round(3),
                    mode="markers",
                    name=category,
                    marker=dict(
                        size=size, opacity=opacity, color=named.get(category, CLUSTER_COLOURS[i % len(CLUSTER_COLOURS)])
                    ),
                    customdata=rows[mask],
                    text=hover[mask].to_numpy(),
                    hovertemplate="%{text}<extra></extra>",
                )
            )
    return traces


def _generated_traces(positions: np.ndarray, labels: pd.Series, matches: np.ndarray | None) -> list:
    """Generated samples as crosses, each joined by a line to its nearest training image when known."""
    traces: list = []
    if matches is not None:
        segments = np.full((len(positions) * 3, 2), np.nan)
        segments[0::3], segments[1::3] = positions, matches
        traces.append(
            go.Scatter(
                x=segments[:, 0],
                y=segments[:, 1],
                mode="lines",
                line=dict(color="#222", width=1),
                name="to its nearest training image",
                hoverinfo="skip",
            )
        )
    traces.append(
        go.Scatter(
            x=positions[:, 0],
            y=positions[:, 1],
            mode="markers",
            name="generated sample",
            marker=dict(symbol="x", size=7, color="#222", opacity=0.8),
            text=labels,
            hovertemplate="%{text}<extra></extra>",
        )
    )
    return traces
