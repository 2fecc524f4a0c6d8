"""The visual clusters of the original set, computed once per embeddings and K and kept in the workspace's cache
(under `concepts/`, where the map lives too), and the removal table of any removed set over them: the filters'
(`concept_table_for`) or dedup's (`dedup_cluster_table`). The tables are cheap and computed on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis import __version__
from analysis.cache import atomic_save_npz, fingerprint, load_or_compute
from analysis.captions import DocTermIndex, caption_index
from analysis.contract import Log, quiet
from analysis.effects.clusters import (
    ClusterRates,
    ConceptClusters,
    cluster_concepts,
    default_concept_clusters,
    removal_by_cluster,
)
from analysis.embedding_store import EmbeddingSet, load_embeddings
from analysis.index import Offload
from analysis.workspace import Workspace

SEED = 0


def concepts_directory(workspace: Workspace) -> Path:
    return workspace.config.cache_dir / "concepts"


def original_embeddings(workspace: Workspace, found: EmbeddingSet | None) -> EmbeddingSet:
    found = found or load_embeddings(workspace, "original")
    assert found is not None
    return found


def concept_clusters_for(
    workspace: Workspace,
    clusters: int | None = None,
    found: EmbeddingSet | None = None,
    log: Log = quiet,
    offload: Offload | None = None,
) -> ConceptClusters:
    """The visual clusters of the original set (K from the data size unless given), cached by embeddings and K
    (`offload`: the assignment on a Dask cluster, the same clusters)."""
    found = original_embeddings(workspace, found)
    k = clusters or default_concept_clusters(int(found.valid.sum()))
    key = fingerprint("concepts", __version__, found.results_key, k, SEED)
    path = concepts_directory(workspace) / f"clusters-{key}.npz"

    def load() -> ConceptClusters:
        with np.load(path) as stored:
            labels, order, bounds = stored["labels"], stored["order"], stored["bounds"]
        return ConceptClusters(labels, np.split(order, bounds) if len(order) else [], k, SEED)

    def save(result: ConceptClusters) -> None:
        order = np.concatenate(result.central) if result.central else np.zeros(0, dtype=np.int64)
        bounds = np.cumsum([len(c) for c in result.central])[:-1] if result.central else np.zeros(0, dtype=np.int64)
        atomic_save_npz(path, {"labels": result.labels, "order": order, "bounds": bounds})

    return load_or_compute(
        [path], load, lambda: cluster_concepts(found.mapped, found.valid, k, SEED, progress=log, offload=offload), save
    )


def concept_table_for(
    workspace: Workspace,
    clusters: int | None = None,
    found: EmbeddingSet | None = None,
    index: DocTermIndex | None = None,
    log: Log = quiet,
) -> ClusterRates:
    """Removal by the workspace's filters, per visual cluster."""
    grouping = concept_clusters_for(workspace, clusters, found, log)
    index = index if index is not None else caption_index(workspace)
    return removal_by_cluster(grouping, ~workspace.kept, index, "filters", workspace.original["id"].to_numpy())


def dedup_cluster_table(
    workspace: Workspace,
    keep: np.ndarray,
    found: EmbeddingSet | None = None,
    index: DocTermIndex | None = None,
    offload: Offload | None = None,
) -> ClusterRates:
    """Removal by deduplication's keep-list, per visual cluster (the same clusters and definitions)."""
    grouping = concept_clusters_for(workspace, found=found, offload=offload)
    index = index if index is not None else caption_index(workspace)
    return removal_by_cluster(grouping, ~keep, index, "dedup", workspace.original["id"].to_numpy())
