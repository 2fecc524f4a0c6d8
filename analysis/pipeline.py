"""Derived artifacts of a workspace, computed once and cached by fingerprint under `.audit-cache/`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis import __version__
from analysis.cache import atomic_save_json, atomic_save_npy, file_fingerprint, fingerprint
from analysis.captions import DocTermIndex, build_index
from analysis.reweight import FeatureKind, Reweighting, fit_weights
from analysis.workspace import Workspace


def caption_index(workspace: Workspace) -> DocTermIndex:
    return build_index(workspace.original["caption"])


def manifest_fingerprints(workspace: Workspace) -> dict[str, str]:
    config = workspace.config
    paths = {"original": config.original, "filtered": config.filtered.manifest, "generated": config.generated,
             "config": config.config_path}
    return {name: file_fingerprint(path) for name, path in paths.items() if path is not None and Path(path).exists()}


def reweighting(workspace: Workspace, index: DocTermIndex, *, embeddings: np.ndarray | None = None,
                features: FeatureKind | None = None, regularisation: float = 1.0,
                clip: float | None = 20.0) -> Reweighting:
    """Fit (or load from the cache) the reweighting classifier's weights."""
    key = fingerprint("weights", __version__, manifest_fingerprints(workspace), features,
                      None if embeddings is None else embeddings.shape, regularisation, clip)
    cache = workspace.config.cache_dir / f"weights-{key}.npy"
    meta = cache.with_suffix(".json")
    if cache.exists() and meta.exists():
        import json

        info = json.loads(meta.read_text())
        return Reweighting(np.load(cache, allow_pickle=False), info["features"], regularisation, clip, info["auc"],
                           info["effective_sample_size"], info["n_kept"])
    result = fit_weights(workspace.kept, index=index, embeddings=embeddings, features=features,
                         regularisation=regularisation, clip=clip)
    atomic_save_npy(cache, result.weights)
    atomic_save_json(meta, {"features": result.features, "auc": result.auc,
                            "effective_sample_size": result.effective_sample_size, "n_kept": result.n_kept})
    return result
