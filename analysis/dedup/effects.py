"""What deduplication takes out, measured like a filter: the caption term shifts its keep-list causes and the
removal rate per visual cluster (DALL·E 2's authors warn that dedup can remove valuable examples). Same
definitions and intervals as for the safety filters (`analysis.bias.compute`, `analysis.effects.clusters`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.captions import DocTermIndex, caption_index
from analysis.effects.cached import dedup_cluster_table
from analysis.effects.clusters import ClusterRates
from analysis.effects.terms import BiasReport, bias_report
from analysis.embedding_store import EmbeddingSet
from analysis.index import Offload
from analysis.workspace import Workspace


@dataclass(frozen=True)
class DedupEffects:
    shifts: BiasReport  # "filtered" here means: kept by dedup
    clusters: ClusterRates

    def to_json(self) -> dict:
        return {
            "term_shifts": self.shifts.to_json(),
            "visual_clusters": self.clusters.to_json(),
        }


def dedup_effects(
    workspace: Workspace,
    keep: np.ndarray,
    found: EmbeddingSet | None = None,
    index: DocTermIndex | None = None,
    offload: Offload | None = None,
) -> DedupEffects:
    """Term shifts and per-cluster removal of dedup's keep-list, for the workspace's audited terms and groups."""
    index = index if index is not None else caption_index(workspace)
    shifts = bias_report(index, keep, workspace.config.default_terms, workspace.config.groups)
    return DedupEffects(shifts, dedup_cluster_table(workspace, keep, found=found, index=index, offload=offload))


def effect_lines(effects: DedupEffects) -> list[str]:
    """The summary of what dedup removed from captions and from visual clusters."""
    from analysis.effects.lines import table_lines

    if effects.clusters.n_removed == 0:
        return ["dedup removes no image at this setting: it shifts no caption frequency and thins no visual cluster"]
    judged = [s for s in effects.shifts.terms + effects.shifts.groups if s.relative_change is not None and s.judgeable]
    lines = []
    if judged:
        lines.append(
            "caption shifts caused by dedup: "
            + "; ".join(
                f"{s.label} {s.relative_change:+.1%} (95% CI {s.ci95[0]:+.1%}…{s.ci95[1]:+.1%})"
                for s in judged[:6]
                if s.ci95 is not None and s.relative_change is not None
            )
        )
    return lines + table_lines(effects.clusters, "dedup")
