"""The cached entry point of the regurgitation check: the nearest-neighbour search (and the search after dedup)
are stored in the workspace, so a new threshold only re-flags."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import __version__
from analysis.cache import (
    array_fingerprint,
    atomic_save_json,
    atomic_save_npy,
    atomic_save_parquet,
    fingerprint,
    load_json,
    load_or_compute,
)
from analysis.copies.candidates import CANDIDATE_THRESHOLDS, INLIER_THRESHOLD, copy_flag_threshold, is_verified
from analysis.copies.duplicate_groups import DuplicateGroups
from analysis.copies.feature_store import (
    ensure_features,
    features_directory,
    image_fingerprints,
    stored_features,
    verify_pairs,
)
from analysis.copies.local_features import Features
from analysis.copies.tiers import GROUPED_TIERS, agreement_of_pairs, tiers_of
from analysis.embedders.base import default_for_embedder
from analysis.embedding_store import EmbeddingSet, load_embeddings
from analysis.errors import AuditInputError
from analysis.index import Offload
from analysis.regurgitation.compute import (
    RegurgitationResult,
    best_after_dedup,
    nearest_training,
    source_similarities,
    summarise,
)
from analysis.workspace import Workspace

Neighbours = tuple[pd.DataFrame, str, float | None, pd.Series | None]


def regurgitation_for(
    workspace: Workspace,
    *,
    threshold: float | None = None,
    k: int = 5,
    duplicates: DuplicateGroups | None = None,
    verify: bool = False,
    inlier_threshold: int | None = None,
    workers: int = 2,
    log: Callable[[str], None] | None = None,
    offload: Offload | None = None,
    tiers: tuple[str, ...] = GROUPED_TIERS,
) -> RegurgitationResult:
    """Generated samples against their k nearest training images. Without `verify`, a sample is flagged when its
    nearest image reaches the cosine `threshold`; with it, neighbours at or above the candidate threshold are
    verified on pixels and a sample is flagged when one of them reaches the inlier threshold and is of one of the
    `tiers` (analysis/copies/tiers.py: by default a copy, not a second photo of the same scene)."""
    if workspace.generated is None:
        raise AuditInputError(
            "this workspace has no generated samples.",
            path=workspace.config.config_path,
            fix="add [generated] manifest = ... (or init --generated M), then prepare.",
        )
    generated_frame = workspace.generated
    training = load_embeddings(workspace, "original")
    generated = load_embeddings(workspace, "generated")
    assert training is not None and generated is not None
    if threshold is None:
        threshold = (
            default_for_embedder(CANDIDATE_THRESHOLDS, training.embedder, 0.7)
            if verify
            else copy_flag_threshold(training.embedder)
        )
    directory = workspace.config.cache_dir / "regurgitation"
    key = fingerprint("neighbours-rescored", __version__, training.results_key, generated.results_key, k)

    neighbours, method, recall, sources = _neighbours(workspace, directory, key, training, generated, k, offload)
    sizes = after = None
    if duplicates is not None:
        sizes = duplicates.size_of_each_row()
        after = _best_after_dedup(workspace, directory, key, neighbours, training, generated, duplicates)
    checks = features_of = None
    inlier_threshold = INLIER_THRESHOLD if inlier_threshold is None else inlier_threshold
    if verify:
        checks = _verified_neighbours(workspace, neighbours, threshold, key, training, generated, workers, log, offload)
        checks = _with_tiers(workspace, checks, inlier_threshold, training, generated, workers, log, offload)
        features_of = _checked_features(workspace, checks, training, generated)
    return summarise(
        generated_frame,
        workspace.original,
        neighbours,
        threshold=threshold,
        k=k,
        method=method,
        recall=recall,
        group_sizes=sizes,
        after_dedup=after,
        source_similarity=sources,
        images_root=workspace.config.images_root,
        checks=checks,
        inlier_threshold=inlier_threshold,
        training_unreadable=int((~training.valid).sum()),
        features_of=features_of,
        acted_tiers=tiers,
    )


def _neighbours(
    workspace: Workspace,
    directory: Path,
    key: str,
    training: EmbeddingSet,
    generated: EmbeddingSet,
    k: int,
    offload: Offload | None,
) -> Neighbours:
    """Each sample's k nearest training images (and its source image's similarity), cached under `key`."""
    generated_frame = workspace.generated
    assert generated_frame is not None
    neighbours_path, meta_path = directory / f"{key}.parquet", directory / f"{key}.json"

    def load() -> Neighbours:
        meta = load_json(meta_path)
        sources = pd.Series(meta["source_similarity"], dtype=np.float64) if meta["source_similarity"] else None
        return pd.read_parquet(neighbours_path), meta["method"], meta["recall"], sources

    def compute() -> Neighbours:
        found, method, recall = nearest_training(
            generated_frame["id"].to_numpy(),
            generated.vectors,
            generated.valid,
            workspace.original["id"].to_numpy(),
            training.mapped,
            training.valid,
            k,
            offload,
        )
        return (
            found,
            method,
            recall,
            source_similarities(generated_frame, generated.vectors, workspace.original, training.mapped),
        )

    def save(value: Neighbours) -> None:
        found, method, recall, sources = value
        atomic_save_parquet(neighbours_path, found)
        atomic_save_json(
            meta_path,
            {
                "method": method,
                "recall": recall,
                "source_similarity": None
                if sources is None
                else {str(i): (None if np.isnan(v) else float(v)) for i, v in sources.items()},
            },
        )

    return load_or_compute([neighbours_path, meta_path], load, compute, save)


def _best_after_dedup(
    workspace: Workspace,
    directory: Path,
    key: str,
    neighbours: pd.DataFrame,
    training: EmbeddingSet,
    generated: EmbeddingSet,
    duplicates: DuplicateGroups,
) -> pd.Series:
    """Each sample's best similarity once dedup's removals are gone, cached per dedup result."""
    generated_frame = workspace.generated
    assert generated_frame is not None
    after_path = directory / (
        # Keyed by which rows dedup keeps: a count of them keyed it before, so two keep-lists of one size shared a
        # result. The file keeps the generated ids.
        fingerprint("after-dedup-of-kept-rows", key, array_fingerprint(duplicates.keep)) + ".parquet"
    )
    return load_or_compute(
        [after_path],
        lambda: pd.read_parquet(after_path).set_index("id")["similarity"],
        lambda: best_after_dedup(
            neighbours,
            generated_frame["id"].to_numpy(),
            generated.vectors,
            generated.valid,
            training.mapped,
            training.valid & duplicates.keep,
        ),
        lambda similarity: atomic_save_parquet(
            after_path, similarity.rename("similarity").rename_axis("id").reset_index()
        ),
    )


def _checked_features(
    workspace: Workspace, checks: pd.DataFrame, training: EmbeddingSet, generated: EmbeddingSet
) -> Callable[[str], Features | None]:
    """The cached local features of the images in the verified candidates, for the SSIM second opinion."""
    assert workspace.generated is not None
    query = pd.Index(workspace.generated["id"]).get_indexer(checks["id"])
    match = checks["training_row"].to_numpy().astype(np.int64)
    sides = [
        _images_of(workspace.generated, generated, query[query >= 0]),
        _images_of(workspace.original, training, match[match >= 0]),
    ]
    return stored_features(
        workspace, np.concatenate([side[1] for side in sides]), np.concatenate([side[2] for side in sides])
    )


def _images_of(frame: pd.DataFrame, found: EmbeddingSet, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows among `rows`, their image paths and the sha256 `prepare` recorded for each."""
    involved = np.unique(rows)
    images = frame["image"].astype(str).to_numpy() if "image" in frame else np.full(len(frame), "")
    return involved, images[involved], found.status["sha256"].to_numpy(dtype=object)[involved]


def _verified_neighbours(
    workspace: Workspace,
    neighbours: pd.DataFrame,
    candidate_threshold: float,
    neighbours_key: str,
    training: EmbeddingSet,
    generated: EmbeddingSet,
    workers: int,
    log: Callable[[str], None] | None,
    offload: Offload | None = None,
) -> pd.DataFrame:
    """The neighbours at or above the candidate threshold with their inliers and mirror flags (cached)."""
    assert workspace.generated is not None
    candidates = neighbours[neighbours["similarity"] >= candidate_threshold].reset_index(drop=True)
    path = (
        workspace.config.cache_dir
        / "regurgitation"
        / (
            fingerprint(
                "verified-with-coverage", neighbours_key, candidate_threshold, features_directory(workspace).name
            )
            + ".parquet"
        )
    )

    def compute() -> pd.DataFrame:
        _, files, local = _candidate_files(workspace, candidates, training, generated, workers, log, offload)
        inliers, mirrored, coverage, _ = verify_pairs(files, local, workers=workers, log=log, offload=offload)
        return candidates.assign(inliers=inliers, mirrored=mirrored, coverage=coverage)

    return load_or_compute(
        [path], lambda: pd.read_parquet(path), compute, lambda frame: atomic_save_parquet(path, frame)
    )


def _candidate_files(
    workspace: Workspace,
    candidates: pd.DataFrame,
    training: EmbeddingSet,
    generated: EmbeddingSet,
    workers: int,
    log: Callable[[str], None] | None,
    offload: Offload | None = None,
) -> tuple[list[str], list, np.ndarray]:
    """The images of the candidates (generated ones first), the local-feature file of each (extracted where not
    cached yet) and each candidate as positions into them."""
    assert workspace.generated is not None
    generated_rows = pd.Series(np.arange(len(workspace.generated)), index=workspace.generated["id"].to_numpy())
    query = generated_rows.loc[candidates["id"].to_numpy()].to_numpy()
    match = candidates["training_row"].to_numpy().astype(np.int64)
    sides = []
    for frame, found, rows in ((workspace.generated, generated, query), (workspace.original, training, match)):
        involved, paths, recorded = _images_of(frame, found, rows)
        sides.append((involved, list(paths), list(image_fingerprints(workspace, paths, recorded))))
    images: list[str] = sides[0][1] + sides[1][1]
    files = ensure_features(
        workspace.config.images_root,
        features_directory(workspace),
        images,
        sides[0][2] + sides[1][2],
        workers=workers,
        log=log,
        offload=offload,
    )
    local = np.stack(
        [np.searchsorted(sides[0][0], query), len(sides[0][0]) + np.searchsorted(sides[1][0], match)], axis=1
    )
    return images, files, local.reshape(-1, 2)


def _with_tiers(
    workspace: Workspace,
    checks: pd.DataFrame,
    inlier_threshold: int,
    training: EmbeddingSet,
    generated: EmbeddingSet,
    workers: int,
    log: Callable[[str], None] | None,
    offload: Offload | None = None,
) -> pd.DataFrame:
    """The checks with the tier of each verified candidate (analysis/copies/tiers.py); the pixel agreement of the
    verified ones is cached, keyed by what they are."""
    assert workspace.generated is not None
    verified = checks[is_verified(checks["inliers"], checks["coverage"], inlier_threshold)]
    key = fingerprint(
        "pixel-agreement",
        __version__,
        features_directory(workspace).name,
        verified["id"].astype(str).tolist(),
        verified["training_row"].astype(int).tolist(),
    )
    path = workspace.config.cache_dir / "regurgitation" / f"agreement-{key}.npy"

    def compute() -> np.ndarray:
        images, files, local = _candidate_files(workspace, verified, training, generated, workers, log, offload)
        return agreement_of_pairs(
            str(workspace.config.images_root),
            images,
            files,
            local,
            workers=workers,
            log=log,
            offload=offload,
        )

    agreement = load_or_compute([path], lambda: np.load(path), compute, lambda value: atomic_save_npy(path, value))
    generated_digest = dict(
        zip(workspace.generated["id"].astype(str), generated.status["sha256"].to_numpy(dtype=object))
    )
    training_digest = training.status["sha256"].to_numpy(dtype=object)
    first = verified["id"].astype(str).map(generated_digest).to_numpy(dtype=object)
    second = training_digest[verified["training_row"].to_numpy().astype(np.int64)]
    identical = (first == second) & (first != "")
    tiers = pd.Series(None, index=checks.index, dtype=object)
    tiers.loc[verified.index] = tiers_of(agreement, identical)
    return checks.assign(tier=tiers)
