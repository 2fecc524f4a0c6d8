"""The most repeated captions, original against filtered, in the house style."""

from __future__ import annotations

import plotly.graph_objects as go

from analysis.caption_repeats.compute import RepeatedCaptions
from analysis.charts import style_figure
from analysis.workspace import Workspace

LABEL_CHARACTERS = 60


def top_captions_chart(result: RepeatedCaptions, workspace: Workspace) -> go.Figure:
    shown = result.top.iloc[::-1]  # most repeated at the top
    labels = [
        text if len(text) <= LABEL_CHARACTERS else text[: LABEL_CHARACTERS - 1] + "…" for text in shown["caption"]
    ]
    figure = go.Figure(
        [
            go.Bar(y=labels, x=shown["images"], orientation="h", name="original", marker_color="#7f8c8d"),
            go.Bar(y=labels, x=shown["kept"], orientation="h", name="after filtering", marker_color="#2d5fa8"),
        ]
    )
    figure.update_layout(barmode="group")
    figure.update_xaxes(title="images carrying the caption")
    return style_figure(figure, "Most repeated captions", workspace, height=max(320, 60 + 36 * len(shown)))
