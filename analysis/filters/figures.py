"""Charts of the filter builder: the cross-validated ROC curve with the chosen operating point, and the preview of
removal rates per term now and with the filter."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.charts import PALETTE, style_figure
from analysis.effects.terms import term_label
from analysis.filters.measure import FitReport
from analysis.workspace import Workspace


def roc_chart(report: FitReport, workspace: Workspace, name: str) -> go.Figure:
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#bbbbbb", dash="dot"), name="chance")
    )
    if report.roc:
        figure.add_trace(
            go.Scatter(
                x=report.roc["fpr"],
                y=report.roc["tpr"],
                mode="lines+markers",
                line=dict(color=PALETTE["reweighted"], shape="hv"),
                name=f"cross-validated (AUC {report.cv_auc:.3f})",
                customdata=report.roc["threshold"],
                hovertemplate="false-positive rate %{x:.2f}<br>recall %{y:.2f}<br>threshold %{customdata:.3f}",
            )
        )
    figure.update_xaxes(title="false-positive rate (labelled negatives)", range=[-0.02, 1.02])
    figure.update_yaxes(title="recall (labelled positives)", range=[-0.02, 1.02])
    return style_figure(
        figure,
        f"Filter '{name}': cross-validated ROC on {report.n_positive + report.n_negative} labels",
        workspace,
        height=380,
        footer="Out-of-fold scores of every labelled image (actively chosen, so not a random sample).",
    )


def preview_chart(table: pd.DataFrame, workspace: Workspace, name: str, threshold: float) -> go.Figure:
    shown = table[(table["captions"] > 0)]
    labels = [
        term_label(n, k == "group") if k != "all" else "all captions" for n, k in zip(shown["name"], shown["kind"])
    ]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            x=shown["removal_rate_now"] * 100, y=labels, orientation="h", name="now", marker_color=PALETTE["original"]
        )
    )
    figure.add_trace(
        go.Bar(
            x=shown["removal_rate_with_filter"] * 100,
            y=labels,
            orientation="h",
            name=f"with '{name}' at {threshold:.3f}",
            marker_color=PALETTE["filtered"],
        )
    )
    figure.update_layout(barmode="group")
    figure.update_xaxes(title="share of captions removed (%)")
    return style_figure(figure, f"Removal rate per term: now and with filter '{name}'", workspace, height=360)
