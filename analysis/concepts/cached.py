"""Cached entry points of the concept analysis: the clustering and the map are computed once per embeddings and
parameters and stored in the workspace's cache; the tables built on them are cheap and computed on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis import __version__
from analysis.cache import atomic_save_json, atomic_save_npz, fingerprint, load_json, load_or_compute
from analysis.captions import DocTermIndex, caption_index
from analysis.concepts.compute import (
    ClusterRates,
    ConceptClusters,
    cluster_concepts,
    default_concept_clusters,
    removal_by_cluster,
)
from analysis.concepts.probes import DEFAULT_PROBES, ProbeResult, probe_shares, unavailable
from analysis.concepts.projection import MapProjection, project
from analysis.contract import Log, quiet
from analysis.embedding_store import EmbeddingSet, load_embeddings
from analysis.index import Offload
from analysis.workspace import Workspace

SEED = 0


def _directory(workspace: Workspace) -> Path:
    return workspace.config.cache_dir / "concepts"


def _original(workspace: Workspace, found: EmbeddingSet | None) -> EmbeddingSet:
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
    found = _original(workspace, found)
    k = clusters or default_concept_clusters(int(found.valid.sum()))
    key = fingerprint("concepts", __version__, found.results_key, k, SEED)
    path = _directory(workspace) / f"clusters-{key}.npz"

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


def map_for(workspace: Workspace, found: EmbeddingSet | None = None, log: Log = quiet) -> MapProjection:
    """The 2-D map of the original set, cached by its embeddings."""
    found = _original(workspace, found)
    key = fingerprint("map", __version__, found.results_key, SEED)
    path = _directory(workspace) / f"map-{key}.npz"

    def load() -> MapProjection:
        with np.load(path) as stored:
            xy, landmarks = stored["xy"], stored["landmarks"]
        return MapProjection(xy, landmarks, load_json(path.with_suffix(".json"))["method"])

    def save(result: MapProjection) -> None:
        atomic_save_npz(path, {"xy": result.xy, "landmarks": result.landmarks})
        atomic_save_json(path.with_suffix(".json"), {"method": result.method, "embedder": found.embedder})

    return load_or_compute(
        [path, path.with_suffix(".json")], load, lambda: project(found.mapped, found.valid, SEED, progress=log), save
    )


def generated_positions(
    workspace: Workspace, projection: MapProjection, found: EmbeddingSet | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Map positions of the generated samples (rows with an embedding) and their rows, or None without them."""
    generated = load_embeddings(workspace, "generated", required=False) if workspace.n_generated else None
    if generated is None or not generated.valid.any():
        return None
    rows = np.flatnonzero(generated.valid)
    return projection.place(generated.mapped[rows], _original(workspace, found).mapped), rows


def probes_for(
    workspace: Workspace, prompts: tuple[str, ...] = DEFAULT_PROBES, found: EmbeddingSet | None = None
) -> ProbeResult:
    """Text probes when the embedder has a text tower (open_clip); otherwise a result that says why not."""
    found = _original(workspace, found)
    if not found.embedder.startswith("open_clip:"):
        return unavailable(found.embedder)
    key = fingerprint("probes", __version__, found.embedder, found.meta.get("embedder_version"), list(prompts))
    path = _directory(workspace) / f"prompts-{key}.npz"

    def compute() -> np.ndarray:
        from analysis.embedders import get_embedder

        embedder = get_embedder(found.embedder)
        return embedder.embed_text(list(prompts))  # type: ignore[attr-defined]

    def load() -> np.ndarray:
        with np.load(path) as stored:
            return stored["vectors"]

    vectors = load_or_compute([path], load, compute, lambda v: atomic_save_npz(path, {"vectors": v}))
    return probe_shares(found.mapped, found.valid, workspace.kept, list(prompts), vectors, found.embedder)
