"""The cached entry point of the contamination check. Stored in the workspace, keyed by what they were computed
from: each evaluation set's embeddings (by the training set's embedder, chunk by chunk, so an interrupted run
resumes), its candidates' verification (the local features themselves are shared with dedup and regurgitation,
keyed by each file's sha256) and its caption matches (MinHash over a million training captions is the slow part)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import __version__
from analysis.cache import atomic_save_npy, atomic_save_parquet, fingerprint, load_or_compute
from analysis.contamination.captions import CHUNK_CAPTIONS, NEAR_THRESHOLD, match_captions
from analysis.contamination.compute import (
    ContaminationResult,
    ImageSearch,
    SetContamination,
    candidates_from_neighbours,
    caption_matches_of,
    judge_candidates,
    no_candidates,
)
from analysis.contamination.eval_sets import EvalSet, absolute_image
from analysis.copies.candidates import is_verified
from analysis.copies.feature_store import ensure_features, features_directory, image_fingerprints, verify_pairs
from analysis.copies.tiers import agreement_of_pairs, tiers_of
from analysis.embedding_store import EmbeddingSet, load_embeddings
from analysis.index import Offload, knn
from analysis.progress import progress_bar
from analysis.workspace import Workspace

Log = Callable[[str], None]
CHUNK_ROWS = 256  # evaluation images embedded per chunk file (the unit an interrupted run resumes from)
EMBED_BATCH = 4  # analysis/embeddings.py DEFAULT_BATCH_SIZE: the batch size measured fastest on CPU


def _text_digest(*columns: pd.Series) -> str:
    digest = hashlib.sha256()
    for column in columns:
        digest.update("\x1f".join(map(str, column.tolist())).encode("utf-8"))
    return digest.hexdigest()


def _file_stamps(images: pd.Series) -> list[tuple[int, int] | None]:
    """Size and modification time of each local image: a changed evaluation image is embedded again."""
    stamps: list[tuple[int, int] | None] = []
    for image in images:
        try:
            stat = os.stat(image)
            stamps.append((stat.st_size, stat.st_mtime_ns))
        except (OSError, ValueError):
            stamps.append(None)
    return stamps


def eval_embeddings(
    workspace: Workspace, eval_set: EvalSet, training: EmbeddingSet, log: Log | None
) -> tuple[np.ndarray, pd.DataFrame, str]:
    """The evaluation images embedded by the training set's embedder: (vectors aligned with the set's rows with
    an image, their status: id, reason, sha256; the cache key)."""
    from analysis.embeddings import embed_chunk

    rows = eval_set.frame[eval_set.frame["image"] != ""]
    folder = eval_set.manifest.parent.resolve()
    # keyed by the images as the manifest names them (relative to its folder) and their sizes and times, so a copied
    # or moved workspace keeps its cache and a changed image is embedded again
    named = rows["image"].map(lambda path: os.path.relpath(path, folder) if path.startswith(str(folder)) else path)
    key = fingerprint(
        "eval-embeddings",
        __version__,
        training.embedder,
        training.meta.get("embedder_version"),
        training.meta.get("preprocessing"),
        _text_digest(rows["id"], named),
        _file_stamps(rows["image"]),
    )
    directory = workspace.config.cache_dir / "contamination"
    vectors_path, status_path = directory / f"eval-{key}.npy", directory / f"eval-{key}.status.parquet"

    def compute() -> tuple[np.ndarray, pd.DataFrame]:
        chunks = directory / f"eval-{key}.chunks"
        chunks.mkdir(parents=True, exist_ok=True)
        n_chunks = -(-len(rows) // CHUNK_ROWS)
        todo = [c for c in range(n_chunks) if not (chunks / f"{c:06d}.parquet").exists()]
        bar = progress_bar(
            len(rows),
            f"embedding evaluation set {eval_set.name}",
            enabled=log is not None,
            initial=(n_chunks - len(todo)) * CHUNK_ROWS,
        )
        for chunk in todo:
            part = rows.iloc[chunk * CHUNK_ROWS : (chunk + 1) * CHUNK_ROWS]
            embed_chunk(
                training.embedder,
                "/",
                part["image"].tolist(),
                part["id"].to_numpy(),
                str(chunks),
                chunk,
                EMBED_BATCH,
            )
            bar.update(len(part))
        bar.close()
        vectors = np.concatenate([np.load(chunks / f"{c:06d}.npy") for c in range(n_chunks)]).astype(np.float32)
        status = pd.concat([pd.read_parquet(chunks / f"{c:06d}.parquet") for c in range(n_chunks)], ignore_index=True)
        return vectors, status

    def save(value: tuple[np.ndarray, pd.DataFrame]) -> None:
        atomic_save_npy(vectors_path, value[0])
        atomic_save_parquet(status_path, value[1])
        shutil.rmtree(directory / f"eval-{key}.chunks", ignore_errors=True)

    vectors, status = load_or_compute(
        [vectors_path, status_path],
        lambda: (np.load(vectors_path).astype(np.float32), pd.read_parquet(status_path)),
        compute,
        save,
    )
    return vectors, status, key


def images_unmeasurable(workspace: Workspace, eval_set: EvalSet, training: EmbeddingSet | None) -> str:
    """Why this set's images cannot be searched ("" when they can)."""
    if not eval_set.has_images:
        return "the evaluation set has no image paths"
    if training is None:
        return "the training images are not embedded: run `pretrain-audit prepare DIR`"
    if training.embedder.startswith("precomputed"):
        return (
            "the training embeddings were imported (precomputed), so the evaluation images cannot be embedded by the "
            "same model: prepare the workspace with a built-in embedder"
        )
    return ""


def contamination_for(
    workspace: Workspace,
    sets: list[EvalSet],
    *,
    threshold: float,
    k: int = 5,
    verify: bool = True,
    inlier_threshold: int = 10,
    tiers: tuple[str, ...] = ("byte-identical", "copy"),
    workers: int = 2,
    log: Log | None = None,
    offload: Offload | None = None,
) -> ContaminationResult:
    """Each evaluation set's images and captions found in the training set. `threshold` is the candidate cosine
    when `verify` (pixels decide), else the cosine that decides. `offload`: the nearest-neighbour search run on a
    Dask cluster (`analysis.distributed`), as regurgitation's."""
    training = load_embeddings(workspace, "original", required=False)
    results = []
    for eval_set in sets:
        frame = eval_set.frame
        captions = _caption_matches(workspace, eval_set, log, workers, offload)
        unmeasured = images_unmeasurable(workspace, eval_set, training)
        images = no_candidates()
        search: ImageSearch | None = None
        tier_counts: dict[str, int] = {}
        measured = 0
        if not unmeasured:
            assert training is not None
            search = ImageSearch(threshold, k, verify, inlier_threshold if verify else None, tiers, "")
            images, tier_counts, measured, method = _image_matches(
                workspace, eval_set, training, search, workers, log, offload
            )
            search = ImageSearch(threshold, k, verify, search.inlier_threshold, tiers, method)
        results.append(
            SetContamination(
                name=eval_set.name,
                n=len(frame),
                items=frame,
                images=images,
                captions=captions,
                kept=workspace.kept,
                n_images=int((frame["image"] != "").sum()),
                n_images_measured=measured,
                n_captions=int((frame["caption"].str.strip() != "").sum()),
                search=search,
                images_unmeasured=unmeasured,
                tier_counts=tier_counts,
            )
        )
    return ContaminationResult(results)


def _caption_matches(
    workspace: Workspace, eval_set: EvalSet, log: Log | None, workers: int = 2, offload: Offload | None = None
) -> pd.DataFrame:
    frame = eval_set.frame
    has_caption = np.flatnonzero((frame["caption"].str.strip() != "").to_numpy())
    training = workspace.original
    if not len(has_caption) or "caption" not in training.columns:
        return caption_matches_of(
            pd.DataFrame({"eval_row": [], "train_row": [], "kind": [], "similarity": []}),
            frame["id"].to_numpy(),
            has_caption,
            training["id"].to_numpy(),
        )
    key = fingerprint(
        "caption-contamination",
        __version__,
        NEAR_THRESHOLD,
        _text_digest(frame["id"], frame["caption"]),
        _text_digest(training["id"], training["caption"]),
    )
    path = workspace.config.cache_dir / "contamination" / f"captions-{key}.parquet"

    def compute() -> pd.DataFrame:
        if log:
            log(
                f"captions of {eval_set.name}: {len(has_caption):,} matched against {len(training):,} training "
                "captions (exact, then MinHash LSH candidates aligned word by word)"
            )
        found = match_captions(
            frame["caption"].iloc[has_caption].tolist(),
            training["caption"].tolist(),
            workers=workers,
            chunk=getattr(offload, "task_rows", None) or CHUNK_CAPTIONS,  # [compute] task_rows on the cluster
            run_chunks=None
            if offload is None
            else lambda chunk, jobs: offload.map(chunk, [(job,) for job in jobs], "caption chunks"),
        )
        return caption_matches_of(found, frame["id"].to_numpy(), has_caption, training["id"].to_numpy())

    return load_or_compute([path], lambda: pd.read_parquet(path), compute, lambda v: atomic_save_parquet(path, v))


def _image_matches(
    workspace: Workspace,
    eval_set: EvalSet,
    training: EmbeddingSet,
    search: ImageSearch,
    workers: int,
    log: Log | None,
    offload: Offload | None = None,
) -> tuple[pd.DataFrame, dict[str, int], int, str]:
    """(every candidate with its verdict, tier counts, evaluation images measured, the search method)."""
    vectors, status, key = eval_embeddings(workspace, eval_set, training, log)
    valid = (status["reason"] == "").to_numpy()
    query_rows = np.flatnonzero(valid)
    eval_ids = status["id"].to_numpy()
    if not len(query_rows):
        return no_candidates(), {}, 0, "none (no evaluation image could be read)"
    if offload is not None:
        found = offload.nearest_rows(vectors[query_rows], np.flatnonzero(training.valid), search.k)
    else:
        found = knn(
            vectors[query_rows],
            training.mapped,
            search.k,
            rows=None if training.valid.all() else np.flatnonzero(training.valid),
        )
    training_ids = workspace.original["id"].to_numpy()
    candidates = candidates_from_neighbours(
        eval_ids, query_rows, found.indices, found.similarities, training_ids, search.threshold
    )
    if not search.verified or candidates.empty:
        images, counts = judge_candidates(candidates, None, search)
        if search.verified:  # no candidate: nothing to verify, but the rule is still the verified one
            images = images.assign(counted=False)
        return images, counts, len(query_rows), found.method
    checks = _verified(workspace, eval_set, training, candidates, status, key, search, workers, log, offload)
    images, counts = judge_candidates(candidates, checks, search)
    return images, counts, len(query_rows), found.method


def _verified(
    workspace: Workspace,
    eval_set: EvalSet,
    training: EmbeddingSet,
    candidates: pd.DataFrame,
    status: pd.DataFrame,
    eval_key: str,
    search: ImageSearch,
    workers: int,
    log: Log | None,
    offload: Offload | None = None,
) -> pd.DataFrame:
    """Inliers, mirror flag and coverage of each candidate, and the tier of each verified one (cached)."""
    inlier_threshold = search.inlier_threshold
    assert inlier_threshold is not None
    path = (
        workspace.config.cache_dir
        / "contamination"
        / (
            fingerprint(
                "eval-verified",
                eval_key,
                training.results_key,
                search.k,
                search.threshold,
                search.inlier_threshold,
                features_directory(workspace).name,
            )
            + ".parquet"
        )
    )

    def compute() -> pd.DataFrame:
        eval_rows = pd.Series(np.arange(len(status)), index=status["id"].to_numpy())
        eval_positions = eval_rows.loc[candidates["eval_id"].to_numpy()].to_numpy()
        train_positions = candidates["train_row"].to_numpy(dtype=np.int64)
        eval_involved, train_involved = np.unique(eval_positions), np.unique(train_positions)
        image_of = dict(zip(eval_set.frame["id"], eval_set.frame["image"]))
        eval_images = [image_of[i] for i in status["id"].to_numpy()[eval_involved]]
        relative = workspace.original["image"].astype(str).to_numpy()[train_involved]
        recorded_train = training.status["sha256"].to_numpy(dtype=object)[train_involved]
        recorded_eval = status["sha256"].to_numpy(dtype=object)[eval_involved]
        root = workspace.config.images_root
        images = eval_images + [absolute_image(root, path) for path in relative]
        keys = list(image_fingerprints(workspace, np.array(eval_images, dtype=object), recorded_eval)) + list(
            image_fingerprints(workspace, relative, recorded_train)
        )
        files = ensure_features(
            Path("/"), features_directory(workspace), images, keys, workers=workers, log=log, offload=offload
        )
        local = np.stack(
            [
                np.searchsorted(eval_involved, eval_positions),
                len(eval_involved) + np.searchsorted(train_involved, train_positions),
            ],
            axis=1,
        ).reshape(-1, 2)
        inliers, mirrored, coverage, _ = verify_pairs(files, local, workers=workers, log=log, offload=offload)
        verified = is_verified(inliers, coverage, inlier_threshold)
        tiers = np.full(len(candidates), None, dtype=object)
        if verified.any():
            agreement = agreement_of_pairs(
                "/",
                images,
                files,
                local[verified],
                workers=workers,
                log=log,
                offload=offload,
            )
            digests = np.concatenate([recorded_eval, recorded_train]).astype(object)
            first, second = digests[local[verified, 0]], digests[local[verified, 1]]
            tiers[verified] = tiers_of(agreement, (first == second) & (first != ""))
        return pd.DataFrame({"inliers": inliers, "mirrored": mirrored, "coverage": coverage, "tier": tiers})

    return load_or_compute([path], lambda: pd.read_parquet(path), compute, lambda v: atomic_save_parquet(path, v))
