"""Cached entry points of the concept analysis: the clustering and the map are computed once per embeddings and
parameters and stored in the workspace's cache; the tables built on them are cheap and computed on demand."""

from __future__ import annotations

import numpy as np

from analysis import __version__
from analysis.cache import atomic_save_json, atomic_save_npz, fingerprint, load_json, load_or_compute
from analysis.concepts.probes import DEFAULT_PROBES, ProbeResult, probe_shares, unavailable
from analysis.concepts.projection import MapProjection, project
from analysis.contract import Log, quiet
from analysis.effects.cached import (
    SEED,
    concepts_directory,
    original_embeddings,
)
from analysis.embedding_store import EmbeddingSet, load_embeddings
from analysis.workspace import Workspace


def map_for(workspace: Workspace, found: EmbeddingSet | None = None, log: Log = quiet) -> MapProjection:
    """The 2-D map of the original set, cached by its embeddings."""
    found = original_embeddings(workspace, found)
    key = fingerprint("map", __version__, found.results_key, SEED)
    path = concepts_directory(workspace) / f"map-{key}.npz"

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
    return projection.place(generated.mapped[rows], original_embeddings(workspace, found).mapped), rows


def probes_for(
    workspace: Workspace, prompts: tuple[str, ...] = DEFAULT_PROBES, found: EmbeddingSet | None = None
) -> ProbeResult:
    """Text probes when the embedder has a text tower (open_clip); otherwise a result that says why not."""
    found = original_embeddings(workspace, found)
    if not found.embedder.startswith("open_clip:"):
        return unavailable(found.embedder)
    key = fingerprint("probes", __version__, found.embedder, found.meta.get("embedder_version"), list(prompts))
    path = concepts_directory(workspace) / f"prompts-{key}.npz"

    def compute() -> np.ndarray:
        from analysis.embedders import get_embedder

        embedder = get_embedder(found.embedder)
        return embedder.embed_text(list(prompts))  # type: ignore[attr-defined]

    def load() -> np.ndarray:
        with np.load(path) as stored:
            return stored["vectors"]

    vectors = load_or_compute([path], load, compute, lambda v: atomic_save_npz(path, {"vectors": v}))
    return probe_shares(found.mapped, found.valid, workspace.kept, list(prompts), vectors, found.embedder)
