"""Derived artifacts of a workspace, computed once and cached by fingerprint under `.audit-cache/`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis import __version__
from analysis.cache import atomic_save_json, atomic_save_npy, atomic_save_parquet, file_fingerprint, fingerprint
from analysis.captions import DocTermIndex, build_index
from analysis.reweight import FeatureKind, Reweighting, fit_weights
from analysis.workspace import Workspace


def caption_index(workspace: Workspace) -> DocTermIndex:
    """The document-term index of the original captions, cached on disk by the manifest's content:
    building it tokenises every caption (about 3 s at a million), loading it takes a fraction of that."""
    import io

    import pandas as pd

    from analysis.cache import atomic_write_bytes

    config = workspace.config
    key = fingerprint("caption-index", __version__, file_fingerprint(config.original))
    path = config.cache_dir / "captions" / f"{key}.npz"
    vocabulary_path = path.with_suffix(".vocabulary.parquet")
    if path.exists() and vocabulary_path.exists():
        arrays = np.load(path, allow_pickle=False)
        vocabulary = pd.read_parquet(vocabulary_path)["word"].to_numpy(dtype=object)
        return DocTermIndex(int(arrays["n_docs"]), vocabulary, arrays["rows"].astype(np.int64),
                            arrays["terms"].astype(np.int64))
    index = build_index(workspace.original["caption"])
    compact = np.int32 if max(index.n_docs, len(index.vocabulary)) < np.iinfo(np.int32).max else np.int64
    atomic_save_parquet(vocabulary_path, pd.DataFrame({"word": index.vocabulary.astype(str)}))
    buffer = io.BytesIO()
    np.savez(buffer, n_docs=np.int64(index.n_docs), rows=index.rows.astype(compact), terms=index.terms.astype(compact))
    atomic_write_bytes(path, buffer.getvalue())  # written last: its presence means both files are complete
    return index


def manifest_fingerprints(workspace: Workspace) -> dict[str, str]:
    config = workspace.config
    paths = {"original": config.original, "filtered": config.filtered.manifest, "generated": config.generated,
             "config": config.config_path}
    return {name: file_fingerprint(path) for name, path in paths.items() if path is not None and Path(path).exists()}


def reweighting(workspace: Workspace, index: DocTermIndex, *, features: FeatureKind | None = None,
                regularisation: float = 1.0, clip: float | None = 20.0, found=None) -> Reweighting:
    """Fit (or load from the cache) the reweighting classifier's weights.

    Features default to captions and image embeddings when the original set's embeddings are cached, else
    captions alone: one rule for the CLI, the dashboard, the report and the gates, so they show the same numbers.
    `found`: the original set's embeddings when the caller already loaded them.
    """
    import json

    from analysis.embeddings import load_embeddings

    if features == "captions":
        found = None
    elif found is None:
        found = load_embeddings(workspace, "original", required=features in ("embeddings", "both"))
    features = features or ("both" if found is not None else "captions")
    key = fingerprint("weights", __version__, manifest_fingerprints(workspace), features,
                      None if found is None else found.meta.get("key"), regularisation, clip)
    cache = workspace.config.cache_dir / f"weights-{key}.npy"
    meta = cache.with_suffix(".json")
    if cache.exists() and meta.exists():
        info = json.loads(meta.read_text())
        return Reweighting(np.load(cache, allow_pickle=False), info["features"], regularisation, clip, info["auc"],
                           info["effective_sample_size"], info["n_kept"])
    result = fit_weights(workspace.kept, index=index, embeddings=None if found is None else found.mapped,
                         features=features, regularisation=regularisation, clip=clip)
    atomic_save_npy(cache, result.weights)
    atomic_save_json(meta, {"features": result.features, "auc": result.auc,
                            "effective_sample_size": result.effective_sample_size, "n_kept": result.n_kept})
    return result


def dedup_for(workspace: Workspace, *, threshold: float | None = None, clusters: int | None = None,
              clusterings: int = 5, exact: bool = False, keep_rule: str = "centre", use_cache: bool = True,
              progress=None, found=None):
    """Clustered deduplication of the original set's embeddings, cached by its inputs.

    Without --exact, a cached result at a lower threshold (same embeddings, clusters and clusterings) answers a
    higher threshold by filtering its pairs: moving the dashboard's slider up costs seconds, not a new search.
    `found`: the original set's embeddings when the caller already loaded them (loading hashes every id).
    """
    import json

    from analysis.dedup import DedupResult, at_higher_threshold, deduplicate, default_clusters, default_threshold
    from analysis.embeddings import load_embeddings

    found = found or load_embeddings(workspace, "original")
    threshold = default_threshold(found.embedder) if threshold is None else threshold
    clusters = clusters or default_clusters(int(found.valid.sum()))
    search = {"embeddings": found.meta.get("key"), "clusters": clusters, "clusterings": clusterings}
    key = fingerprint("dedup", __version__, found.meta.get("key"), threshold, clusters, clusterings, exact, keep_rule)
    directory = workspace.config.cache_dir / "dedup"
    path = directory / f"{key}.npz"

    def cached(at: Path, at_threshold: float) -> DedupResult:
        arrays = np.load(at, allow_pickle=False)
        meta = json.loads(at.with_suffix(".json").read_text())
        return DedupResult(meta["n_images"], arrays["pairs"], arrays["group_id"], arrays["keep"], at_threshold,
                           clusters, clusterings, meta["pairs_per_clustering"], meta["exact_pairs"],
                           meta["recall_by_clusterings"],
                           arrays["similarities"] if "similarities" in arrays.files else None)

    if use_cache and path.exists() and path.with_suffix(".json").exists():
        return cached(path, threshold)
    resolution = None
    if keep_rule == "resolution":
        if not {"width", "height"} <= set(workspace.original.columns):
            from analysis.errors import AuditInputError

            raise AuditInputError("the 'resolution' keep rule needs width and height columns in the manifest.",
                                  path=workspace.config.original, fix="add them, or use --keep centre or first.")
        resolution = (workspace.original["width"] * workspace.original["height"]).to_numpy(dtype=np.float64)
    base = _lower_threshold_result(directory, search, threshold) if use_cache and not exact else None
    if base is not None:
        result = at_higher_threshold(cached(*base), found.mapped, threshold, keep_rule=keep_rule,
                                     resolution=resolution, valid=found.valid)
    else:
        result = deduplicate(found.mapped, threshold, clusters=clusters, clusterings=clusterings, exact=exact,
                             keep_rule=keep_rule, resolution=resolution, valid=found.valid, progress=progress)
    directory.mkdir(parents=True, exist_ok=True)
    import io

    from analysis.cache import atomic_write_bytes

    buffer = io.BytesIO()
    arrays = {"pairs": result.pairs, "group_id": result.group_id, "keep": result.keep}
    if result.similarities is not None:
        arrays["similarities"] = result.similarities
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    atomic_save_json(path.with_suffix(".json"), {
        "n_images": result.n_images, "pairs_per_clustering": result.pairs_per_clustering,
        "exact_pairs": result.exact_pairs, "recall_by_clusterings": result.recall_by_clusterings,
        "embedder": found.embedder, "threshold": threshold, "search": search, "version": __version__})
    return result


def _lower_threshold_result(directory: Path, search: dict, threshold: float) -> tuple[Path, float] | None:
    """(path, threshold) of the cached dedup result of the same search at the highest threshold not above
    `threshold` (the fewest pairs to filter)."""
    import json

    best = None
    for meta_path in directory.glob("*.json") if directory.exists() else []:
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue  # a foreign or damaged file is not a base; the search runs instead
        if meta.get("search") != search or meta.get("version") != __version__ or not meta_path.with_suffix(".npz").exists():
            continue
        if meta["threshold"] <= threshold and (best is None or meta["threshold"] > best[1]):
            best = (meta_path.with_suffix(".npz"), meta["threshold"])
    return best


def dedup_recall_for(workspace: Workspace, result, found, *, sample: int = 1000, seed: int = 0):
    """Recall of a dedup result estimated on `sample` random images (cached: a scan of sample × n similarities)."""
    import json

    from analysis.dedup import RecallEstimate, sampled_recall

    key = fingerprint("dedup-recall", __version__, found.meta.get("key"), result.threshold, result.clusters,
                      result.clusterings, int(len(result.pairs)), sample, seed)
    path = workspace.config.cache_dir / "dedup" / f"recall-{key}.json"
    if path.exists():
        payload = json.loads(path.read_text())
        return RecallEstimate(payload["recall"], payload["true_pairs"], payload["sampled_images"], payload["seed"])
    estimate = sampled_recall(found.mapped, result.pairs, result.threshold, sample, valid=found.valid, seed=seed)
    atomic_save_json(path, estimate.to_json())
    return estimate


def latest_dedup(workspace: Workspace, found=None):
    """The dedup result at default parameters (for regurgitation's group sizes); None without embeddings."""
    from analysis.embeddings import load_embeddings

    found = found or load_embeddings(workspace, "original", required=False)
    return None if found is None else dedup_for(workspace, found=found)


def regurgitation_for(workspace: Workspace, *, threshold: float | None = None, k: int = 5, with_dedup: bool = True):
    """Regurgitation check; the nearest-neighbour search (and the after-dedup search) are cached on disk, so
    changing the threshold only re-flags."""
    import pandas as pd

    from analysis.embeddings import load_embeddings
    from analysis.errors import AuditInputError
    from analysis.regurgitation import (best_after_dedup, dedup_group_sizes, default_threshold, nearest_training,
                                        source_similarities, summarise)

    if workspace.generated is None:
        raise AuditInputError("this workspace has no generated samples.", path=workspace.config.config_path,
                              fix="add [generated] manifest = ... (or init --generated M), then prepare.")
    training = load_embeddings(workspace, "original")
    generated = load_embeddings(workspace, "generated")
    threshold = default_threshold(training.embedder) if threshold is None else threshold
    directory = workspace.config.cache_dir / "regurgitation"
    key = fingerprint("neighbours", __version__, training.meta.get("key"), generated.meta.get("key"), k)
    neighbours_path, meta_path = directory / f"{key}.parquet", directory / f"{key}.json"
    if neighbours_path.exists() and meta_path.exists():
        import json

        neighbours = pd.read_parquet(neighbours_path)
        meta = json.loads(meta_path.read_text())
        method, recall = meta["method"], meta["recall"]
        sources = pd.Series(meta["source_similarity"], dtype=np.float64) if meta["source_similarity"] else None
    else:
        training_ids = workspace.original["id"].to_numpy()
        neighbours, method, recall = nearest_training(workspace.generated["id"].to_numpy(), generated.vectors,
                                                      generated.valid, training_ids, training.mapped, training.valid, k)
        sources = source_similarities(workspace.generated, generated.vectors, workspace.original, training.mapped)
        atomic_save_parquet(neighbours_path, neighbours)
        atomic_save_json(meta_path, {"method": method, "recall": recall,
                                     "source_similarity": None if sources is None else
                                     {str(i): (None if np.isnan(v) else float(v)) for i, v in sources.items()}})
    sizes = after = None
    dedup = latest_dedup(workspace, training) if with_dedup else None
    if dedup is not None:
        sizes = dedup_group_sizes(dedup)
        after_key = fingerprint("after-dedup", key, dedup.threshold, dedup.clusters, dedup.clusterings,
                                int(dedup.keep.sum()))
        after_path = directory / f"{after_key}.parquet"
        if after_path.exists():
            after = pd.read_parquet(after_path)["similarity"]
        else:
            after = best_after_dedup(neighbours, workspace.generated["id"].to_numpy(), generated.vectors,
                                     generated.valid, training.mapped, training.valid & dedup.keep)
            atomic_save_parquet(after_path, after.rename("similarity").to_frame())
    return summarise(workspace.generated, workspace.original, neighbours, threshold=threshold, k=k, method=method,
                     recall=recall, group_sizes=sizes, after_dedup=after, source_similarity=sources,
                     images_root=workspace.config.images_root)


def dedup_curve_for(workspace: Workspace, low: float | None = None, found=None):
    """Fraction removed by dedup at thresholds from `low` (default 0.80) to 0.99, from the pairs found at `low`
    (cached). Computing it leaves the result at `low` in the cache, from which any higher threshold is derived."""
    import pandas as pd

    from analysis.dedup import CURVE_LOW, removal_curve
    from analysis.embeddings import load_embeddings

    low = CURVE_LOW if low is None else low
    found = found or load_embeddings(workspace, "original")
    base = dedup_for(workspace, threshold=low, found=found)
    key = fingerprint("dedup-curve", __version__, found.meta.get("key"), low, base.clusters, base.clusterings,
                      int(len(base.pairs)))
    path = workspace.config.cache_dir / "dedup" / f"curve-{key}.parquet"
    if path.exists():
        return pd.read_parquet(path)
    curve = removal_curve(found.mapped, base.pairs, np.round(np.arange(low, 0.995, 0.01), 2), base.similarities)
    atomic_save_parquet(path, curve)
    return curve
