"""Visual concepts on the analysis contract: CLI `concepts`, its report section (table, chart, map, central
images) and its page, the Map (the table itself is also a section of the Bias page)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.captions import caption_index
from analysis.concepts.cached import map_for, probes_for
from analysis.concepts.params import ConceptsParams
from analysis.concepts.probes import DEFAULT_PROBES, ProbeResult
from analysis.concepts.projection import MapProjection
from analysis.contract import Analysis, Headline, Log, ReportContext, ReportSection, quiet
from analysis.distributed import offloaded
from analysis.effects.cached import concept_clusters_for
from analysis.effects.clusters import ClusterRates, ConceptClusters, default_concept_clusters, removal_by_cluster
from analysis.effects.lines import cluster_line, table_lines
from analysis.embedding_store import load_embeddings
from analysis.images import tile_png
from analysis.workspace import Workspace

NOT_PREPARED = "Not computed: run `pretrain-audit prepare DIR` first."


@dataclass(frozen=True)
class ConceptsResult:
    table: ClusterRates
    clusters: ConceptClusters
    probes: ProbeResult
    projection: MapProjection | None


def probe_lines(probes: ProbeResult) -> list[str]:
    if not probes.available:
        return [f"text probes: not run. {probes.reason}"]
    return [
        f"text probe “{s.prompt}”: closest for {s.removed_share:.1%} of removed images (95% CI "
        f"{s.removed_ci95[0]:.1%}–{s.removed_ci95[1]:.1%}) vs {s.kept_share:.1%} of kept ({s.kept_ci95[0]:.1%}–"
        f"{s.kept_ci95[1]:.1%})"
        for s in probes.shares
    ]


class Concepts(
    Analysis,
    name="concepts",
    title="Map",
    page="map",
    icon=":material/scatter_plot:",
    help="removal rate per visual cluster (image-space bias), text probes, and the map of the dataset",
    needs_filter=True,
):
    Params = ConceptsParams

    def add_output_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", help="write id, cluster (and map x, y) of every image to this Parquet file")

    def run(self, workspace: Workspace, params: ConceptsParams, log: Log = quiet) -> ConceptsResult:
        found = load_embeddings(workspace, "original")
        assert found is not None
        with offloaded(
            params.scheduler, workspace.config.scheduler, log, found.path, workspace.config.task_rows
        ) as offload:
            clusters = concept_clusters_for(workspace, params.clusters, found, log, offload)
        table = removal_by_cluster(
            clusters, ~workspace.kept, caption_index(workspace), "filters", workspace.original["id"].to_numpy()
        )  # the clustering loaded once, not again through concept_table_for
        probes = probes_for(workspace, tuple(params.probe or DEFAULT_PROBES), found)
        projection = None
        if not params.no_map:
            log("computing the map (UMAP; cached after the first run)…")
            projection = map_for(workspace, found, log)
        return ConceptsResult(table, clusters, probes, projection)

    def to_json(self, result: ConceptsResult) -> dict:
        payload = result.table.to_json()
        payload["default_clusters"] = default_concept_clusters(result.table.n_images)
        payload["probes"] = result.probes.to_json()
        payload["map"] = None if result.projection is None else {"method": result.projection.method}
        return payload

    def summary_lines(self, result: ConceptsResult) -> list[str]:
        return table_lines(result.table, "the filters") + probe_lines(result.probes)

    @property
    def audit_title(self) -> str:
        return "Visual concepts"

    def headline(self, workspace: Workspace) -> Headline:
        missing = self.unmeasured_headline(workspace)
        if missing is not None:
            return missing
        table = self.run(workspace, self.settings(workspace)).table
        raised = table.significant
        finding = (
            f"{len(raised)} of {table.k} image clusters lost significantly more than the {table.overall_rate:.1%} "
            "removed overall (Benjamini–Hochberg q < 0.05)"
        )
        if raised:
            finding += f"; the most: {cluster_line(raised[0])}"
        return Headline(self.audit_title, finding)

    def write_outputs(self, workspace: Workspace, result: ConceptsResult, options: argparse.Namespace) -> list[str]:
        if not options.out:
            return []
        labels = result.clusters.labels
        frame = pd.DataFrame(
            {"id": workspace.original["id"].astype(str), "cluster": pd.array(np.where(labels >= 0, labels, 0), "Int64")}
        )
        frame.loc[labels < 0, "cluster"] = pd.NA
        if result.projection is not None:
            frame["x"], frame["y"] = result.projection.xy[:, 0], result.projection.xy[:, 1]
        frame.to_parquet(options.out, index=False)
        return [f"clusters of {len(frame):,} images written to {options.out}"]

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        from analysis.concepts.figures import map_figure, shown_rows
        from analysis.effects.figures import lift_chart

        workspace = context.workspace
        if load_embeddings(workspace, "original", required=False) is None:
            return [ReportSection("Visual concepts", note=NOT_PREPARED)]
        result = self.run(workspace, self.settings(workspace))
        context.parameters["concepts"] = f"K={result.table.k} (spherical k-means), seed 0"
        section = ReportSection("Visual concepts (removal per image cluster)", summary=self.summary_lines(result))
        section.figures["concept_lift"] = lift_chart(result.table, workspace)
        if result.projection is not None:
            xy = result.projection.xy
            rows = shown_rows(np.flatnonzero(np.isfinite(xy).all(axis=1)))
            status = pd.Series(np.where(workspace.kept[rows], "kept", "removed"))
            hover = pd.Series(workspace.original["id"].astype(str).to_numpy()[rows])
            section.figures["dataset_map"] = map_figure(
                workspace, xy, rows, status, "kept / removed", hover, method=result.projection.method, height=620
            )
        section.tables.append(("Clusters by lift", cluster_frame(result.table)))
        ids = workspace.original["id"].astype(str).to_numpy()
        images = workspace.original["image"].astype(str).to_numpy() if "image" in workspace.original else None
        if images is not None:
            for rate in result.table.significant[:3]:
                section.images.append(
                    (
                        f"Most central images of cluster {rate.cluster} ({', '.join(rate.top_words[:3])}); "
                        "removed images blurred",
                        [
                            (
                                f"{ids[row]}{'' if workspace.kept[row] else ' (removed)'}",
                                tile_png(
                                    workspace.config.images_root, images[row], blur=not workspace.kept[row], size=160
                                ),
                            )
                            for row in rate.central_rows
                        ],
                    )
                )
        return [section]


def cluster_frame(table: ClusterRates, limit: int = 15) -> pd.DataFrame:
    """The table a page and the report show: ranked clusters first, then up to `limit` in all."""
    return pd.DataFrame(
        [
            {
                "rank": str(rate.rank) if rate.rank is not None else "not ranked (< 30 images)",
                "cluster": rate.cluster,
                "images": rate.size,
                "removed": rate.removed,
                "removal rate": f"{rate.removal_rate:.1%}",
                "95% CI": f"{rate.ci95[0]:.1%} – {rate.ci95[1]:.1%}",
                "lift": "—" if rate.lift is None else f"{rate.lift:.2f}",
                "q-value": "—" if rate.q_value is None else f"{rate.q_value:.2g}",
                "characteristic words": ", ".join(rate.top_words),
            }
            for rate in table.clusters[:limit]
        ]
    )
