"""The cached entry point of the reweighting fix: the weak classifier is fitted once per inputs and parameters."""

from __future__ import annotations

from typing import cast

import numpy as np

from analysis import __version__
from analysis.bias.params import BiasParams
from analysis.bias.reweight import FeatureKind, Reweighting, fit_weights
from analysis.cache import atomic_save_json, atomic_save_npy, fingerprint, load_json, load_or_compute
from analysis.captions import DocTermIndex
from analysis.embedding_store import EmbeddingSet, load_embeddings
from analysis.workspace import Workspace, manifest_fingerprints


def audited_words(workspace: Workspace) -> tuple[str, ...]:
    """The words the workspace audits (its default terms and every group member): left out of the reweighting
    classifier's caption features, so that their repair is measured on words the classifier never saw."""
    words = set(workspace.config.default_terms)
    for members in workspace.config.groups.values():
        words.update(members)
    return tuple(sorted(words))


def reweighting(
    workspace: Workspace,
    index: DocTermIndex,
    *,
    features: FeatureKind | None = None,
    regularisation: float = 1.0,
    clip: float | None = 20.0,
    found: EmbeddingSet | None = None,
) -> Reweighting:
    """Fit (or load from the cache) the reweighting classifier's weights.

    Features default to captions and image embeddings when the original set's embeddings are cached, else
    captions alone: one rule for the CLI, the dashboard, the report and the gates, so they show the same numbers.
    `found`: the original set's embeddings when the caller already loaded them.
    """
    if features == "captions":
        found = None
    elif found is None:
        found = load_embeddings(workspace, "original", required=features in ("embeddings", "both"))
    chosen = cast(FeatureKind, features or ("both" if found is not None else "captions"))
    held_out = audited_words(workspace)
    key = fingerprint(
        "weights",
        __version__,
        "with-overlap",  # caches written before the overlap diagnostic lack it
        manifest_fingerprints(workspace),
        chosen,
        None if found is None else found.results_key,
        regularisation,
        clip,
        held_out,
    )
    path = workspace.config.cache_dir / f"weights-{key}.npy"
    meta = path.with_suffix(".json")

    def load() -> Reweighting:
        info = load_json(meta)
        return Reweighting(
            np.load(path, allow_pickle=False),
            info["features"],
            regularisation,
            clip,
            info["auc"],
            info["effective_sample_size"],
            info["n_kept"],
            tuple(info.get("held_out_words", ())),
            info["removed_without_kept_neighbour"],
        )

    def save(result: Reweighting) -> None:
        atomic_save_npy(path, result.weights)
        atomic_save_json(
            meta,
            {
                "features": result.features,
                "auc": result.auc,
                "effective_sample_size": result.effective_sample_size,
                "n_kept": result.n_kept,
                "held_out_words": list(result.held_out_words),
                "removed_without_kept_neighbour": result.removed_without_kept_neighbour,
            },
        )

    return load_or_compute(
        [path, meta],
        load,
        lambda: fit_weights(
            workspace.kept,
            index=index,
            embeddings=None if found is None else found.mapped,
            features=chosen,
            regularisation=regularisation,
            clip=clip,
            held_out_words=held_out,
        ),
        save,
    )


def reweighting_with(
    workspace: Workspace, index: DocTermIndex, params: BiasParams, found: EmbeddingSet | None = None
) -> Reweighting:
    """The reweighting these parameters ask for (features, C, clip): the one mapping the command, the term-shift
    gates and the Bias page share, so a workspace's `[bias]` settings reach all three."""
    return reweighting(
        workspace, index, features=params.reweight_features, regularisation=params.C, clip=params.clip, found=found
    )
