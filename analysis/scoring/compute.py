"""`pretrain-audit score`: run an image scorer over every image of the original set.

Scores are cached by image fingerprint (the sha256 that `prepare` recorded, else path, size and mtime), in parts
written atomically as they finish, so an interrupted run resumes and a second run scores nothing. The workspace
gets `scores/<model>.parquet` (id, score, reason: NaN and a reason where an image could not be scored), its
provenance `scores/<model>.json` (model file sha256 among it), and a `[scores]` entry in audit.toml: from then on
the score is a column that `--score NAME=<model>:T` filters and the filter builder can use.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import __version__
from analysis.cache import atomic_save_json, atomic_save_parquet
from analysis.copies.feature_store import image_fingerprints
from analysis.embedding_store import load_embeddings
from analysis.images import load_image
from analysis.progress import progress_bar
from analysis.scoring.models import ImageScorer
from analysis.workspace import Workspace, update_config

SCORES_DIR = "scores"
PART_ROWS = 1024
BATCH = 32


@dataclass
class ScoreRun:
    model: str
    model_sha256: str
    path: Path
    n_rows: int
    n_scored: int  # images with a score
    n_computed: int  # images run through the model in this call (0 on a rerun)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    changed: bool = True  # whether the workspace's score file was (re)written

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "model_sha256": self.model_sha256,
            "path": str(self.path),
            "n_rows": self.n_rows,
            "n_scored": self.n_scored,
            "n_computed": self.n_computed,
            "n_from_cache": self.n_scored + sum(self.skipped_by_reason.values()) - self.n_computed,
            "skipped_by_reason": self.skipped_by_reason,
            "seconds": round(self.seconds, 3),
            "workspace_changed": self.changed,
        }


def cache_directory(workspace: Workspace, scorer: ImageScorer) -> Path:
    return workspace.config.cache_dir / "scores" / f"{scorer.name}-{scorer.model_sha256[:16]}"


def score_file(workspace: Workspace, name: str) -> Path:
    return workspace.config.root / SCORES_DIR / f"{name}.parquet"


def read_cache(directory: Path) -> pd.DataFrame:
    parts = sorted(directory.glob("part-*.parquet")) if directory.exists() else []
    if not parts:
        return pd.DataFrame({"key": pd.Series(dtype=str), "score": pd.Series(dtype=float), "reason": []})
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True).drop_duplicates("key", keep="last")


def _decode(job: tuple[Path, str]):
    return load_image(job[0], job[1])


def score_workspace(
    workspace: Workspace, scorer: ImageScorer, *, progress: bool = False, log: Callable[[str], None] = print
) -> ScoreRun:
    started = time.perf_counter()
    rows = workspace.original
    images = (rows["image"] if "image" in rows.columns else pd.Series([""] * len(rows))).astype(str).to_numpy()
    embedded = load_embeddings(workspace, "original", required=False)
    recorded = embedded.status["sha256"].fillna("").astype(str).to_numpy() if embedded is not None else [""] * len(rows)
    keys = image_fingerprints(workspace, images, np.asarray(recorded, dtype=object))
    directory = cache_directory(workspace, scorer)
    cached = read_cache(directory)
    known = set(cached["key"])
    todo: dict[str, str] = {}
    for key, image in zip(keys, images):
        if key not in known and key not in todo:
            todo[key] = image
    computed = _score_missing(workspace, scorer, directory, todo, progress, log)
    table = pd.concat([cached, computed], ignore_index=True).drop_duplicates("key", keep="last").set_index("key")
    result = pd.DataFrame(
        {
            "id": rows["id"].astype(str).to_numpy(),
            "score": table["score"].reindex(keys).to_numpy(dtype=np.float64),
            "reason": table["reason"].reindex(keys).fillna("").astype(str).to_numpy(),
        }
    )
    target = score_file(workspace, scorer.name)
    changed = not target.exists() or not pd.read_parquet(target).equals(result)
    skipped = result.loc[result["reason"] != "", "reason"].value_counts().to_dict()
    run = ScoreRun(
        scorer.name,
        scorer.model_sha256,
        target,
        len(result),
        int(np.isfinite(result["score"]).sum()),
        len(computed),
        {str(k): int(v) for k, v in skipped.items()},
        time.perf_counter() - started,
        changed,
    )
    if changed:
        atomic_save_parquet(target, result)
        atomic_save_json(
            target.with_suffix(".json"),
            {
                "model": scorer.name,
                "description": scorer.description,
                "licence": scorer.licence,
                "model_file": scorer.model_path.name,
                "model_sha256": scorer.model_sha256,
                "tool_version": __version__,
                "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "n_rows": run.n_rows,
                "n_scored": run.n_scored,
                "skipped_by_reason": run.skipped_by_reason,
            },
        )
    register_score(workspace, scorer.name, target)
    return run


def register_score(workspace: Workspace, name: str, path: Path) -> None:
    """Name the score file in `[scores]` of audit.toml (once; the file itself may be rewritten)."""
    stored = path.relative_to(workspace.config.root).as_posix()
    if workspace.config.computed_scores.get(name) == path:
        return

    def change(body: dict) -> None:
        body.setdefault("scores", {})[name] = stored

    update_config(workspace.config.root, change)


def _score_missing(
    workspace: Workspace,
    scorer: ImageScorer,
    directory: Path,
    todo: dict[str, str],
    progress: bool,
    log: Callable[[str], None],
) -> pd.DataFrame:
    frames = []
    if todo:
        log(f"scoring {len(todo):,} images with {scorer.name} (cached: {directory})")
    items = list(todo.items())
    bar = progress_bar(len(items), scorer.name, enabled=progress and bool(items))
    root = workspace.config.images_root
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        for start in range(0, len(items), PART_ROWS):
            part = items[start : start + PART_ROWS]
            keys, scores, reasons = [], [], []
            for offset in range(0, len(part), BATCH):
                batch = part[offset : offset + BATCH]
                decoded = list(pool.map(_decode, [(root, image) for _, image in batch]))
                good = [i for i, d in enumerate(decoded) if d.image is not None]
                values = np.full(len(batch), np.nan)
                values[good] = scorer.score([decoded[i].image for i in good])
                keys += [key for key, _ in batch]
                scores += values.tolist()
                reasons += [d.reason or "" for d in decoded]
                bar.update(len(batch))
            frame = pd.DataFrame({"key": keys, "score": scores, "reason": reasons})
            atomic_save_parquet(directory / f"part-{time.time_ns()}-{os.getpid()}.parquet", frame)
            frames.append(frame)
    bar.close()
    if not frames:
        return pd.DataFrame({"key": pd.Series(dtype=str), "score": pd.Series(dtype=float), "reason": []})
    return pd.concat(frames, ignore_index=True)
