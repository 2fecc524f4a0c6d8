"""The cached entry points of dedup: one search per (embeddings, threshold, K, R), stored in the workspace."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import __version__
from analysis.cache import (
    atomic_save_json,
    atomic_save_npy,
    atomic_save_npz,
    atomic_save_parquet,
    fingerprint,
    load_json,
    load_or_compute,
)
from analysis.copies.aligned_similarity import Alignments
from analysis.copies.candidates import (
    CANDIDATE_THRESHOLDS,
    CANDIDATE_TOP_K,
    INLIER_THRESHOLD,
    CandidateCheck,
    cap_per_image,
)
from analysis.copies.feature_store import (
    ensure_features,
    features_directory,
    image_fingerprints,
    verify_pairs,
)
from analysis.copies.tiers import GROUPED_TIERS, agreement_of_pairs, tiers_of
from analysis.copies.verification_options import chosen_tiers, chosen_verification
from analysis.dedup.compute import (
    CURVE_LOW,
    DEFAULT_KEEP_RULE,
    DEFAULT_R,
    DedupResult,
    KeepRule,
    RecallEstimate,
    at_higher_threshold,
    byte_identical_pairs,
    deduplicate,
    default_clusters,
    default_threshold,
    groups_and_keepers,
    pair_similarities,
    removal_curve,
    sampled_recall,
    unique_pairs,
)
from analysis.dedup.params import DedupParams
from analysis.embedders.base import default_for_embedder
from analysis.embedding_store import EmbeddingSet, load_embeddings
from analysis.errors import AuditInputError
from analysis.index import Offload
from analysis.workspace import Workspace


def _directory(workspace: Workspace) -> Path:
    return workspace.config.cache_dir / "dedup"


def _load_result(path: Path, threshold: float, clusters: int, clusterings: int) -> DedupResult:
    arrays = np.load(path, allow_pickle=False)
    meta = load_json(path.with_suffix(".json"))
    return DedupResult(
        meta["n_images"],
        arrays["pairs"],
        arrays["group_id"],
        arrays["keep"],
        threshold,
        clusters,
        clusterings,
        meta["pairs_per_clustering"],
        meta["exact_pairs"],
        meta["recall_by_clusterings"],
        arrays["similarities"] if "similarities" in arrays.files else None,
    )


def _resolution(workspace: Workspace) -> np.ndarray:
    if not {"width", "height"} <= set(workspace.original.columns):
        raise AuditInputError(
            "the 'resolution' keep rule needs width and height columns in the manifest.",
            path=workspace.config.original,
            fix="add them, or use --keep centre or first.",
        )
    return (workspace.original["width"] * workspace.original["height"]).to_numpy(dtype=np.float64)


def dedup_for(
    workspace: Workspace,
    *,
    threshold: float | None = None,
    clusters: int | None = None,
    clusterings: int = DEFAULT_R,
    exact: bool = False,
    keep_rule: KeepRule = DEFAULT_KEEP_RULE,
    use_cache: bool = True,
    progress=None,
    found: EmbeddingSet | None = None,
    offload: Offload | None = None,
) -> DedupResult:
    """Clustered deduplication of the original set's embeddings, cached by its inputs (`offload`, the heavy parts on
    a Dask cluster, gives the same result and is not part of the key).

    Without --exact, a cached result at a lower threshold (same embeddings, clusters and clusterings) answers a
    higher threshold by filtering its pairs: moving the dashboard's slider up costs seconds, not a new search.
    `found`: the original set's embeddings when the caller already loaded them (loading hashes every id).
    """
    found = found or load_embeddings(workspace, "original")
    assert found is not None
    threshold = default_threshold(found.embedder) if threshold is None else threshold
    clusters = clusters or default_clusters(int(found.valid.sum()))
    search = {"embeddings": found.results_key, "clusters": clusters, "clusterings": clusterings}
    key = fingerprint("dedup", __version__, found.results_key, threshold, clusters, clusterings, exact, keep_rule)
    path = _directory(workspace) / f"{key}.npz"

    def compute() -> DedupResult:
        resolution = _resolution(workspace) if keep_rule == "resolution" else None
        base = _lower_threshold_result(_directory(workspace), search, threshold) if use_cache and not exact else None
        if base is not None:
            return at_higher_threshold(
                _load_result(base[0], base[1], clusters, clusterings),
                found.mapped,
                threshold,
                keep_rule=keep_rule,
                resolution=resolution,
                valid=found.valid,
            )
        return deduplicate(
            found.mapped,
            threshold,
            clusters=clusters,
            clusterings=clusterings,
            exact=exact,
            keep_rule=keep_rule,
            resolution=resolution,
            valid=found.valid,
            progress=progress,
            offload=offload,
        )

    def save(result: DedupResult) -> None:
        arrays = {"pairs": result.pairs, "group_id": result.group_id, "keep": result.keep}
        if result.similarities is not None:
            arrays["similarities"] = result.similarities
        atomic_save_npz(path, arrays)
        atomic_save_json(
            path.with_suffix(".json"),
            {
                "n_images": result.n_images,
                "pairs_per_clustering": result.pairs_per_clustering,
                "exact_pairs": result.exact_pairs,
                "recall_by_clusterings": result.recall_by_clusterings,
                "embedder": found.embedder,
                "threshold": threshold,
                "search": search,
                "version": __version__,
            },
        )

    return load_or_compute(
        [path, path.with_suffix(".json")],
        lambda: _load_result(path, threshold, clusters, clusterings),
        compute,
        save,
        use_cache=use_cache,
    )


def _lower_threshold_result(directory: Path, search: dict, threshold: float) -> tuple[Path, float] | None:
    """(path, threshold) of the cached dedup result of the same search at the highest threshold not above
    `threshold` (the fewest pairs to filter)."""
    best = None
    for meta_path in directory.glob("*.json") if directory.exists() else []:
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue  # a foreign or damaged file is not a base; the search runs instead
        if (
            not isinstance(meta, dict)
            or meta.get("search") != search
            or meta.get("version") != __version__
            or not meta_path.with_suffix(".npz").exists()
        ):
            continue
        if meta["threshold"] <= threshold and (best is None or meta["threshold"] > best[1]):
            best = (meta_path.with_suffix(".npz"), meta["threshold"])
    return best


def dedup_recall_for(
    workspace: Workspace, result: DedupResult, found: EmbeddingSet, *, sample: int = 1000, seed: int = 0
) -> RecallEstimate:
    """Recall of a dedup result estimated on `sample` random images (cached: a scan of sample × n similarities)."""
    key = fingerprint(
        "dedup-recall",
        __version__,
        "per-image",
        found.results_key,
        result.threshold,
        result.clusters,
        result.clusterings,
        int(len(result.pairs)),
        sample,
        seed,
    )
    path = _directory(workspace) / f"recall-{key}.json"

    def load() -> RecallEstimate:
        payload = load_json(path)
        return RecallEstimate(
            payload["recall"],
            payload["true_pairs"],
            payload["sampled_images"],
            payload["seed"],
            tuple((int(t), int(f)) for t, f in payload["per_image"]),
        )

    return load_or_compute(
        [path],
        load,
        lambda: sampled_recall(found.mapped, result.pairs, result.threshold, sample, valid=found.valid, seed=seed),
        lambda estimate: atomic_save_json(path, {**estimate.to_json(), "per_image": list(estimate.per_image)}),
    )


def latest_dedup(
    workspace: Workspace, found: EmbeddingSet | None = None, params: DedupParams | None = None
) -> DedupResult | None:
    """The dedup result at these parameters (default: the shipped ones), for regurgitation's group sizes and the
    map's group column; None without embeddings."""
    found = found or load_embeddings(workspace, "original", required=False)
    return None if found is None else default_dedup(workspace, found, params=params)


def default_dedup(
    workspace: Workspace,
    found: EmbeddingSet,
    log: Callable[[str], None] | None = None,
    params: DedupParams | None = None,
) -> DedupResult:
    """Dedup as these parameters (default: the shipped ones) run it: verified on pixels where the images are there,
    else by cosine."""
    return dedup_with(workspace, params or DedupParams(), found, log)


def dedup_with(
    workspace: Workspace,
    params: DedupParams,
    found: EmbeddingSet,
    log: Callable[[str], None] | None = None,
    offload: Offload | None = None,
    progress=None,
) -> DedupResult:
    """The one mapping from dedup's parameters to its result (the command, `check`, regurgitation's groups and the
    map all come through here): verified on pixels unless asked off, the images are not there or `exact` asks for
    the exhaustive cosine search whose recall it reports."""
    method, reason = chosen_verification(workspace, found, params.verify)
    if reason and log is not None:
        log(f"verification: none ({reason}); pairs are judged by embedding cosine alone")
    if method == "local-features" and not params.exact:
        return verified_dedup_for(
            workspace,
            candidate_threshold=params.threshold,
            inlier_threshold=params.inliers,
            clusters=params.clusters,
            clusterings=params.clusterings,
            keep_rule=params.keep,
            found=found,
            log=log,
            offload=offload,
            tiers=chosen_tiers(params.tiers),
        )
    return dedup_for(
        workspace,
        threshold=params.threshold,
        clusters=params.clusters,
        clusterings=params.clusterings,
        exact=params.exact,
        keep_rule=params.keep,
        progress=progress,
        found=found,
        offload=offload,
    )


def dedup_curve_for(workspace: Workspace, low: float | None = None, found: EmbeddingSet | None = None) -> pd.DataFrame:
    """Fraction removed by dedup at thresholds from `low` (default 0.80) to 0.99, from the pairs found at `low`
    (cached). Computing it leaves the result at `low` in the cache, from which any higher threshold is derived."""
    low = CURVE_LOW if low is None else low
    found = found or load_embeddings(workspace, "original")
    assert found is not None
    base = dedup_for(workspace, threshold=low, found=found)
    key = fingerprint(
        "dedup-curve", __version__, found.results_key, low, base.clusters, base.clusterings, int(len(base.pairs))
    )
    path = _directory(workspace) / f"curve-{key}.parquet"
    thresholds = np.round(np.arange(low, 0.995, 0.01), 2)
    return load_or_compute(
        [path],
        lambda: pd.read_parquet(path),
        lambda: removal_curve(found.mapped, base.pairs, thresholds, base.similarities),
        lambda curve: atomic_save_parquet(path, curve),
    )


def verified_dedup_for(
    workspace: Workspace,
    *,
    candidate_threshold: float | None = None,
    inlier_threshold: int | None = None,
    top_k: int = CANDIDATE_TOP_K,
    clusters: int | None = None,
    clusterings: int = DEFAULT_R,
    keep_rule: KeepRule = DEFAULT_KEEP_RULE,
    found: EmbeddingSet | None = None,
    workers: int = 2,
    log: Callable[[str], None] | None = None,
    offload: Offload | None = None,
    tiers: tuple[str, ...] = GROUPED_TIERS,
) -> DedupResult:
    """Two-stage dedup: candidates from the clustered search at a recall-oriented cosine (at most `top_k` per
    image), verified on pixels by local features; groups are formed from verified pairs of the `tiers` asked for
    (byte-identical files always: analysis/copies/tiers.py). The stage-one
    search and the inliers of every candidate are cached, so another inlier threshold costs nothing."""
    found = found or load_embeddings(workspace, "original")
    assert found is not None
    candidate_threshold = candidate_threshold or default_for_embedder(CANDIDATE_THRESHOLDS, found.embedder, 0.7)
    inlier_threshold = INLIER_THRESHOLD if inlier_threshold is None else inlier_threshold
    base = dedup_for(
        workspace,
        threshold=candidate_threshold,
        clusters=clusters,
        clusterings=clusterings,
        found=found,
        offload=offload,
    )
    key = fingerprint(
        "verified-candidates-capped-per-image-with-coverage",
        __version__,
        found.results_key,
        candidate_threshold,
        base.clusters,
        clusterings,
        top_k,
        int(len(base.pairs)),
        features_directory(workspace).name,
    )
    path = _directory(workspace) / f"verified-{key}.npz"

    def compute() -> CandidateCheck:
        return _check_candidates(
            workspace, found, base, top_k, candidate_threshold, inlier_threshold, workers, log, offload
        )

    check = load_or_compute(
        [path],
        lambda: _load_check(path, candidate_threshold, inlier_threshold),
        compute,
        lambda check: _save_check(path, check),
    ).at_inliers(inlier_threshold)
    check = _tiered(workspace, found, check, f"{key}-{inlier_threshold}", tiers, workers, log, offload)
    return _grouped(workspace, found, base, check, keep_rule)


def _grouped(
    workspace: Workspace, found: EmbeddingSet, base: DedupResult, check: CandidateCheck, keep_rule: KeepRule
) -> DedupResult:
    """Groups from the verified pairs of the tiers acted on, byte-identical files always among them."""
    acted = check.acted
    pairs, pair_similarity = with_byte_identical(
        check.pairs[acted], check.similarities[acted], found.status["sha256"], base.n_images
    )
    resolution = _resolution(workspace) if keep_rule == "resolution" else None
    group_id, keep = groups_and_keepers(found.mapped, pairs, keep_rule, resolution, found.valid)
    return DedupResult(
        base.n_images,
        pairs,
        group_id,
        keep,
        check.candidate_threshold,
        base.clusters,
        base.clusterings,
        base.pairs_per_clustering,
        None,
        None,
        pair_similarity,
        check,
    )


def _check_candidates(
    workspace: Workspace,
    found: EmbeddingSet,
    base: DedupResult,
    top_k: int,
    candidate_threshold: float,
    inlier_threshold: int,
    workers: int,
    log: Callable[[str], None] | None,
    offload: Offload | None,
) -> CandidateCheck:
    """Stage two: each image's `top_k` most similar candidates verified on pixels. The cap ranks every candidate
    (20 s at 15M pairs), so it is done here, where a cached check skips it."""
    similarities = base.similarities
    if similarities is None:
        similarities = pair_similarities(found.mapped, base.pairs)
    capped = cap_per_image(base.pairs, similarities, top_k)
    candidates, candidate_similarities = base.pairs[capped], similarities[capped]
    involved, files = _feature_files(workspace, found, candidates, workers, log, offload)
    local = np.searchsorted(involved, candidates)
    checked = verify_pairs(files, local, workers=workers, log=log, offload=offload, align_from=inlier_threshold)
    return CandidateCheck(
        candidates,
        candidate_similarities,
        checked.inliers,
        checked.mirrored,
        checked.coverage,
        candidate_threshold,
        inlier_threshold,
        aligned=checked.aligned,
    )


def _load_check(path: Path, candidate_threshold: float, inlier_threshold: int) -> CandidateCheck:
    with np.load(path, allow_pickle=False) as arrays:
        return CandidateCheck(
            arrays["pairs"],
            arrays["similarities"],
            arrays["inliers"],
            arrays["mirrored"],
            arrays["coverage"],
            candidate_threshold,
            inlier_threshold,
            # a check cached before the transforms were kept has none: its tiers verify the pairs again
            aligned=Alignments(arrays["aligned_rows"], arrays["aligned_models"], arrays["aligned_mirrored"])
            if "aligned_rows" in arrays
            else None,
        )


def _save_check(path: Path, check: CandidateCheck) -> None:
    atomic_save_npz(
        path,
        {
            "pairs": check.pairs,
            "similarities": check.similarities,
            "inliers": check.inliers,
            "mirrored": check.mirrored,
            "coverage": check.coverage,
            **(_aligned_arrays(check.aligned) if check.aligned is not None else {}),
        },
    )


def _aligned_arrays(aligned: Alignments) -> dict[str, np.ndarray]:
    return {"aligned_rows": aligned.rows, "aligned_models": aligned.models, "aligned_mirrored": aligned.mirrored}


def _feature_files(
    workspace: Workspace,
    found: EmbeddingSet,
    pairs: np.ndarray,
    workers: int,
    log: Callable[[str], None] | None,
    offload: Offload | None = None,
) -> tuple[np.ndarray, list]:
    """The rows the pairs involve and the local-feature file of each (extracted where not cached yet)."""
    images = _image_paths(workspace)
    involved = np.unique(pairs)
    keys = image_fingerprints(workspace, images[involved], found.status["sha256"].to_numpy(dtype=object)[involved])
    files = ensure_features(
        workspace.config.images_root,
        features_directory(workspace),
        list(images[involved]),
        list(keys),
        workers=workers,
        log=log,
        offload=offload,
    )
    return involved, files


def _image_paths(workspace: Workspace) -> np.ndarray:
    if "image" in workspace.original:
        return workspace.original["image"].astype(str).to_numpy()
    return np.full(workspace.n_original, "")


def _tiered(
    workspace: Workspace,
    found: EmbeddingSet,
    check: CandidateCheck,
    key: str,
    acted_tiers: tuple[str, ...],
    workers: int,
    log: Callable[[str], None] | None,
    offload: Offload | None = None,
) -> CandidateCheck:
    """The check with the tier of every verified candidate; their pixel agreement is cached beside the check."""
    verified = np.flatnonzero(check.verified)
    path = _directory(workspace) / f"agreement-{fingerprint('pixel-agreement', __version__, key)}.npy"

    def compute() -> np.ndarray:
        pairs = check.pairs[verified]
        involved, files = _feature_files(workspace, found, pairs, workers, log, offload)
        return agreement_of_pairs(
            str(workspace.config.images_root),
            list(_image_paths(workspace)[involved]),
            files,
            np.searchsorted(involved, pairs),
            workers=workers,
            log=log,
            offload=offload,
            aligned=None if check.aligned is None else check.aligned.at(verified),
        )

    agreement = load_or_compute([path], lambda: np.load(path), compute, lambda value: atomic_save_npy(path, value))
    digests = found.status["sha256"].to_numpy(dtype=object)
    a, b = check.pairs[verified, 0], check.pairs[verified, 1]
    identical = (digests[a] == digests[b]) & (digests[a] != "")
    tiers = np.full(len(check.pairs), None, dtype=object)
    tiers[verified] = tiers_of(agreement, identical)
    return check.with_tiers(tiers, acted_tiers)


def with_byte_identical(
    pairs: np.ndarray, similarities: np.ndarray, digests: pd.Series, n_images: int
) -> tuple[np.ndarray, np.ndarray]:
    """Verified pairs plus the pairs of byte-identical files (cosine 1), each pair once."""
    identical = byte_identical_pairs(digests)
    if not len(identical):
        return pairs, similarities
    cosine = np.concatenate([similarities, np.ones(len(identical), dtype=np.float32)]).astype(np.float32)
    return unique_pairs(np.concatenate([pairs.reshape(-1, 2), identical]), n_images, cosine)
