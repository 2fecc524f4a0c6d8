"""What a workspace has cached, and removing it (`pretrain-audit cache DIR [--clean NAME]`).

Everything under `.audit-cache/` is derived from the manifests and the images, so any of it can be removed and is
computed again when next needed; what cannot be derived (reviewer verdicts in `reviews.sqlite`, filter labels under
`filters/`, the score files `score` wrote under `scores/`) lives outside it and is never touched here. Each kind of
artifact is one folder (loose files are grouped by their prefix), listed with what it holds, what recomputing it
costs, its size and when it was last written.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from analysis.errors import AuditInputError
from analysis.workspace import Workspace

# name → (what it holds, what recomputing it costs); a folder not named here is still listed and cleanable.
KINDS = {
    "embeddings": ("image embeddings per embedder (`prepare`)", "the slowest step: minutes per 10,000 images"),
    "pdq": ("PDQ perceptual hashes of every image (`prepare`)", "a fast pass over the images"),
    "features": ("SIFT features of images in candidate pairs, in chunks, by file sha256", "hours at a million images"),
    "captions": ("the caption document-term index", "seconds"),
    "dedup": ("duplicate search, verification and tiers (`dedup`, Duplicates page)", "minutes; the features stay"),
    "regurgitation": ("nearest training images of generated samples, verified", "seconds to minutes"),
    "contamination": ("evaluation-set embeddings, verified matches, caption matches", "seconds to minutes"),
    "concepts": ("visual clusters and the 2-D map (`concepts`, Map page)", "a minute (UMAP)"),
    "scores": ("per-image classifier scores computed by `score`, by image fingerprint", "minutes per 10,000 images"),
    "reweighting": ("bias reweighting weights (`bias --reweight`)", "seconds"),
}
LOOSE_PREFIXES = {"weights-": "reweighting"}  # files at the top of the cache, grouped under a kind
NOT_ARTIFACTS = {"prepare.lock"}


@dataclass(frozen=True)
class CachedKind:
    name: str
    what: str
    recompute: str
    files: int
    bytes: int
    modified: datetime | None
    paths: tuple[Path, ...]  # the folder, or the loose files of the kind

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "what": self.what,
            "recompute": self.recompute,
            "files": self.files,
            "bytes": self.bytes,
            "modified": self.modified.isoformat(timespec="seconds") if self.modified else None,
        }


def _files_under(path: Path) -> list[Path]:
    return [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]


def cached_kinds(workspace: Workspace) -> list[CachedKind]:
    """Every kind of cached artifact present, largest first."""
    root = workspace.config.cache_dir
    if not root.is_dir():
        return []
    grouped: dict[str, list[Path]] = {}
    for entry in sorted(root.iterdir()):
        if entry.name in NOT_ARTIFACTS:
            continue
        kind = next((k for prefix, k in LOOSE_PREFIXES.items() if entry.name.startswith(prefix)), entry.name)
        grouped.setdefault(kind, []).append(entry)
    kinds = []
    for name, entries in grouped.items():
        files = [f for entry in entries for f in _files_under(entry)]
        stats = [f.stat() for f in files]
        what, recompute = KINDS.get(name, ("results of this tool (not described)", "unknown"))
        kinds.append(
            CachedKind(
                name,
                what,
                recompute,
                len(files),
                sum(s.st_size for s in stats),
                max((datetime.fromtimestamp(s.st_mtime, tz=timezone.utc) for s in stats), default=None),
                tuple(entries),
            )
        )
    return sorted(kinds, key=lambda kind: kind.bytes, reverse=True)


def clean_cache(workspace: Workspace, names: list[str]) -> list[CachedKind]:
    """Remove the named kinds (`all`: every one); an unknown name stops before anything is removed. `prepare`
    holds a lock while it writes: cleaning then would pull its chunks from under it, so it is refused."""
    from filelock import FileLock, Timeout

    present = {kind.name: kind for kind in cached_kinds(workspace)}
    chosen = list(present) if "all" in names else list(dict.fromkeys(names))
    unknown = [name for name in chosen if name not in present]
    if unknown:
        raise AuditInputError(
            f"nothing cached under {', '.join(map(repr, unknown))}.",
            path=workspace.config.cache_dir,
            fix=f"choose from {', '.join(sorted(present)) or '(the cache is empty)'}, or all; "
            "`pretrain-audit cache DIR` lists them.",
        )
    lock = FileLock(str(workspace.config.cache_dir / "prepare.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise AuditInputError(
            "`prepare` is running on this workspace.", path=workspace.config.root, fix="clean when it has finished."
        ) from None
    try:
        for name in chosen:
            for path in present[name].paths:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    finally:
        lock.release()
    return [present[name] for name in chosen]
