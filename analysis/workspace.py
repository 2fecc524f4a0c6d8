"""The audit workspace: `audit.toml`, its manifests, and the filtered set they define.

A workspace is a directory. Its config names the original manifest and, optionally, what the filters kept
(`analysis.filter_spec`: a manifest of kept ids, score filters, or a boolean column). Everything derived later
(embeddings, clusters, verdicts) lives under the same directory.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomli_w
import tomllib

from analysis.cache import file_fingerprint
from analysis.distributed import parse_scheduler
from analysis.errors import AuditInputError
from analysis.filter_spec import (
    FilterSpec,
    ScoreFilter,
    kept_mask,
    laion_filters,
    parse_filter,
    parse_score_option,
)
from analysis.manifests import ids_in, load_manifest
from analysis.verdicts.settings import REVIEW_KEYS, ReviewSettings, parse_review

CONFIG_NAME = "audit.toml"
CACHE_DIR = ".audit-cache"

DEFAULT_GROUPS: dict[str, tuple[str, ...]] = {
    "women": (
        "woman",
        "women",
        "girl",
        "girls",
        "lady",
        "ladies",
        "female",
        "females",
        "she",
        "her",
        "hers",
        "mother",
        "daughter",
        "wife",
        "sister",
        "bride",
        "queen",
        "actress",
        "businesswoman",
    ),
    "men": (
        "man",
        "men",
        "boy",
        "boys",
        "gentleman",
        "gentlemen",
        "male",
        "males",
        "he",
        "him",
        "his",
        "father",
        "son",
        "husband",
        "brother",
        "groom",
        "king",
        "actor",
        "businessman",
    ),
}
DEFAULT_TERMS: tuple[str, ...] = ("woman", "man", "women", "men", "girl", "boy")

KNOWN_SECTIONS = {
    "workspace",
    "original",
    "filtered",
    "generated",
    "terms",
    "groups",
    "embeddings",
    "review",
    "scores",
    "compute",
    "gates",  # its keys are the options of `pretrain-audit check`, checked by analysis.gates
    "eval",  # [[eval]] name = ..., manifest = ...: the evaluation sets `contamination` looks for in the training set
}
EVAL_KEYS = {"name", "manifest"}
KNOWN_KEYS = {
    "workspace": {"name", "images_root", "synthetic", "description"},
    "original": {"manifest", "captions"},
    "filtered": {"manifest", "kept_column", "scores", "hash_matches"},
    "generated": {"manifest"},
    "terms": {"default"},
    "embeddings": {"embedder"},
    "review": REVIEW_KEYS,
    "compute": {"scheduler", "task_rows"},
}


@dataclass(frozen=True)
class WorkspaceConfig:
    root: Path
    name: str
    images_root: Path
    original: Path
    filtered: FilterSpec
    generated: Path | None = None
    synthetic: bool = False
    default_terms: tuple[str, ...] = DEFAULT_TERMS
    groups: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_GROUPS))
    embedder: str = "effnet-lite0"
    review: ReviewSettings = field(default_factory=ReviewSettings)
    # scores computed by the tool (`score`, `filter apply`): column name → Parquet file of id, score
    computed_scores: dict[str, Path] = field(default_factory=dict)
    scheduler: str | None = None  # [compute] scheduler: where heavy steps run unless --scheduler says otherwise
    task_rows: int | None = None  # [compute] task_rows: rows per task on the cluster (None: each step's default)
    captions: str | None = None  # [original] captions: several captions per image (analysis.manifests.load_manifest)
    gates: dict[str, Any] = field(default_factory=dict)  # [gates]: the limits `check` and the summary judge by
    evals: tuple[tuple[str, Path], ...] = ()  # [[eval]]: (name, manifest) of each evaluation set
    # The sections named after an analysis (`[dedup] clusterings = 3`), as written: each analysis reads its own
    # through its Params (analysis.contract.Analysis.settings), and analysis.registry refuses a name it does not know.
    analysis_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def cache_dir(self) -> Path:
        return self.root / CACHE_DIR


@dataclass
class Workspace:
    """A loaded, validated workspace. `kept` is aligned with the rows of `original`."""

    config: WorkspaceConfig
    original: pd.DataFrame
    kept: np.ndarray
    removed_by: dict[str, np.ndarray]
    generated: pd.DataFrame | None = None

    @property
    def n_original(self) -> int:
        return len(self.original)

    @property
    def n_kept(self) -> int:
        return int(self.kept.sum())

    @property
    def n_removed(self) -> int:
        return self.n_original - self.n_kept

    @property
    def n_generated(self) -> int:
        return 0 if self.generated is None else len(self.generated)

    @cached_property
    def has_images(self) -> bool:
        return "image" in self.original.columns and bool((self.original["image"] != "").any())

    @cached_property
    def id_index(self) -> pd.Index:
        """The original set's ids as an index, built once per loaded workspace (a page looking up a few ids at a
        million rows must not build it per run)."""
        return pd.Index(self.original["id"].astype(str))

    def positions_of(self, ids) -> np.ndarray:
        """Row positions of these ids, in their order (ids not in the original set are left out)."""
        found = self.id_index.get_indexer(list(ids))
        return found[found >= 0]


def _resolve(root: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (root / path)


def read_config(root: Path) -> WorkspaceConfig:
    """Parse and check `audit.toml`; every problem names the key and the fix."""
    root = Path(root)
    config_path = root / CONFIG_NAME
    if not root.is_dir():
        raise AuditInputError(
            "workspace directory not found.",
            path=root,
            fix="create it with `pretrain-audit init DIR --original M` or `pretrain-audit sample DIR`.",
        )
    if not config_path.exists():
        raise AuditInputError(
            f"no {CONFIG_NAME} in this directory.",
            path=root,
            fix="run `pretrain-audit init DIR --original M ...` first.",
        )
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AuditInputError(f"is not valid TOML ({exc}).", path=config_path, fix="correct the syntax.") from None
    _check_known_keys(raw, config_path)
    ws = raw.get("workspace", {})
    original = raw.get("original", {}).get("manifest")
    if not original:
        raise AuditInputError(
            "[original] manifest is missing.", path=config_path, fix='add `[original]\\nmanifest = "original.parquet"`.'
        )
    generated = raw.get("generated", {}).get("manifest")
    groups = dict(DEFAULT_GROUPS)
    for name, members in raw.get("groups", {}).items():
        if not isinstance(members, list) or not members or not all(isinstance(m, str) and m.strip() for m in members):
            raise AuditInputError(
                f"[groups] {name} must be a non-empty list of words.",
                path=config_path,
                fix=f'write e.g. {name} = ["word1", "word2"].',
            )
        groups[name] = tuple(m.strip().casefold() for m in members)
    terms = raw.get("terms", {}).get("default", list(DEFAULT_TERMS))
    scheduler = raw.get("compute", {}).get("scheduler")
    if scheduler is not None:
        try:
            parse_scheduler(str(scheduler))
        except AuditInputError as exc:
            raise AuditInputError(f"[compute] {exc}", path=config_path) from None
    task_rows = raw.get("compute", {}).get("task_rows")
    if task_rows is not None and (isinstance(task_rows, bool) or not isinstance(task_rows, int) or task_rows < 1):
        raise AuditInputError(
            f"[compute] task_rows must be a positive whole number of rows, not {task_rows!r}.",
            path=config_path,
            fix="write e.g. task_rows = 50000, or remove it to use each step's default.",
        )
    return WorkspaceConfig(
        root=root,
        name=str(ws.get("name") or root.resolve().name),
        images_root=_resolve(root, str(ws.get("images_root", "."))),
        original=_resolve(root, str(original)),
        filtered=parse_filter(raw.get("filtered", {}), lambda value: _resolve(root, value), config_path),
        generated=_resolve(root, str(generated)) if generated else None,
        synthetic=bool(ws.get("synthetic", False)),
        default_terms=tuple(str(t).casefold() for t in terms),
        groups=groups,
        embedder=str(raw.get("embeddings", {}).get("embedder", "effnet-lite0")),
        review=parse_review(raw.get("review", {}), config_path),
        computed_scores={
            str(name): _resolve(root, str(value)) for name, value in _score_files(raw, config_path).items()
        },
        scheduler=None if scheduler is None else str(scheduler),
        task_rows=task_rows,
        captions=raw.get("original", {}).get("captions"),
        gates=dict(raw.get("gates", {})),
        evals=_eval_sets(raw.get("eval", []), root, config_path),
        analysis_settings={name: body for name, body in raw.items() if name not in KNOWN_SECTIONS},
    )


def _eval_sets(body: Any, root: Path, config_path: Path) -> tuple[tuple[str, Path], ...]:
    """The `[[eval]]` tables: each a name (unique; it names the set in `check --max-contamination NAME=N`) and
    a manifest path."""
    example = 'write [[eval]] tables, e.g.\n[[eval]]\nname = "coco"\nmanifest = "coco-val.parquet"'
    if not isinstance(body, list):
        raise AuditInputError("[eval] must be a list of [[eval]] tables.", path=config_path, fix=example)
    sets: dict[str, Path] = {}
    for number, table in enumerate(body, start=1):
        unknown = set(table) - EVAL_KEYS if isinstance(table, dict) else set()
        name, manifest = (table.get("name"), table.get("manifest")) if isinstance(table, dict) else (None, None)
        if unknown or not isinstance(name, str) or not name.strip() or not isinstance(manifest, str) or not manifest:
            problem = f"unknown key(s) {sorted(unknown)}" if unknown else "needs a name and a manifest"
            raise AuditInputError(f"[[eval]] table {number} {problem}.", path=config_path, fix=example)
        if name.strip() in sets:
            raise AuditInputError(
                f"[[eval]] name {name.strip()!r} is used twice.", path=config_path, fix="give each set its own name."
            )
        sets[name.strip()] = _resolve(root, manifest)
    return tuple(sets.items())


def _score_files(raw: dict[str, Any], config_path: Path) -> dict[str, str]:
    body = raw.get("scores", {})
    for name, value in body.items():
        if not isinstance(value, str) or not value.strip():
            raise AuditInputError(
                f"[scores] {name} must be the path of a score file.",
                path=config_path,
                fix=f'write e.g. "{name}" = "scores/{name}.parquet", or rerun `pretrain-audit score`.',
            )
    return dict(body)


def _check_known_keys(raw: dict[str, Any], config_path: Path) -> None:
    for section, body in raw.items():
        if section not in KNOWN_SECTIONS and not isinstance(body, dict):
            raise AuditInputError(
                f"{section} = ... must be a section, [{section}], of an analysis's settings.",
                path=config_path,
                fix=f"use only the sections {', '.join(sorted(KNOWN_SECTIONS))} and those named after an analysis.",
            )
        if section in KNOWN_KEYS and isinstance(body, dict):
            unknown = set(body) - KNOWN_KEYS[section]
            if unknown:
                raise AuditInputError(
                    f"unknown key(s) {sorted(unknown)} in [{section}].",
                    path=config_path,
                    fix=f"allowed keys there: {', '.join(sorted(KNOWN_KEYS[section]))}.",
                )


_ESCAPE = re.compile(r"(?:^|[\\/])\.\.(?:[\\/]|$)")


def check_image_paths(frame: pd.DataFrame, manifest: Path) -> None:
    """Reject image paths that point outside the images root (absolute paths, `..` segments, URLs stay allowed)."""
    if "image" not in frame.columns:
        return
    paths = frame["image"].astype(str)
    absolute = paths.str.startswith(("/", "\\", "~")) | paths.str.match(r"^[A-Za-z]:[\\/]")
    escaping = absolute | paths.str.contains(_ESCAPE)
    if escaping.any():
        row = int(np.flatnonzero(escaping.to_numpy())[0])
        raise AuditInputError(
            f"image path {paths.iloc[row]!r} in row {row + 1} escapes the images root "
            f"({int(escaping.sum())} such rows).",
            path=manifest,
            fix="image paths must be relative to the images root, without '..'; set images_root instead.",
        )


def load_workspace(root: Path | str) -> Workspace:
    """Load and validate everything an analysis needs; raises AuditInputError with a fix on bad input."""
    config = read_config(Path(root))
    original = load_manifest(config.original, what="original manifest", captions=config.captions)
    check_image_paths(original, config.original)
    original = with_computed_scores(original, config)
    kept, removed_by = kept_mask(
        config.filtered, original, config.original, frozenset(config.computed_scores), captions=config.captions
    )
    generated = None
    if config.generated is not None:
        generated = load_manifest(config.generated, required=("id",), what="generated manifest")
        if "prompt" not in generated.columns:
            generated["prompt"] = generated["caption"] if "caption" in generated.columns else ""
        check_image_paths(generated, config.generated)
        if "source_id" in generated.columns:
            sources = generated["source_id"].astype("string").fillna("")
            unknown = (sources != "").to_numpy(dtype=bool) & ~ids_in(sources, original["id"])
            if unknown.any():
                row = int(np.flatnonzero(unknown)[0])
                raise AuditInputError(
                    f"source_id {sources.iloc[row]!r} in row {row + 1} is not an id of the original manifest.",
                    path=config.generated,
                    fix="leave source_id empty or use an original id.",
                )
            generated["source_id"] = sources.astype(object)
    return Workspace(config=config, original=original, kept=kept, removed_by=removed_by, generated=generated)


def with_computed_scores(original: pd.DataFrame, config: WorkspaceConfig) -> pd.DataFrame:
    """The manifest with one column per computed score (NaN where the image could not be scored)."""
    for name, path in config.computed_scores.items():
        if name in original.columns:
            raise AuditInputError(
                f"computed score '{name}' has the name of a column of the original manifest.",
                path=config.config_path,
                fix=f"rename or remove '{name}' in [scores].",
            )
        if not path.exists():
            raise AuditInputError(
                f"the file of computed score '{name}' is missing.",
                path=path,
                fix=f"rerun `pretrain-audit score DIR --model {name}` (or `filter apply`), or remove it from [scores].",
            )
        try:
            scores = pd.read_parquet(path, columns=["id", "score"])
        except Exception as exc:  # noqa: BLE001 — any unreadable file is the same user-fixable problem
            raise AuditInputError(
                f"the file of computed score '{name}' cannot be read ({str(exc).splitlines()[0][:120]}).",
                path=path,
                fix="rerun the command that wrote it.",
            ) from None
        values = pd.Series(scores["score"].to_numpy(dtype=np.float64), index=scores["id"].astype(str).to_numpy())
        original[name] = values.reindex(original["id"].astype(str).to_numpy()).to_numpy()
    return original


def update_config(root: Path, change: Callable[[dict[str, Any]], None]) -> Workspace:
    """Change `audit.toml` (read, `change` the parsed body, write atomically) and validate the result by loading
    the workspace; on an error the previous file is restored, so a bad change never leaves a broken workspace."""
    from analysis.cache import atomic_write_bytes

    config_path = Path(root) / CONFIG_NAME
    previous = config_path.read_bytes()
    body = tomllib.loads(previous.decode("utf-8"))
    change(body)
    write_config(Path(root), body)
    try:
        return load_workspace(root)
    except AuditInputError:
        atomic_write_bytes(config_path, previous)
        raise


def write_config(root: Path, body: dict[str, Any]) -> Path:
    """Write `audit.toml` atomically, then validate it by loading the workspace."""
    from analysis.cache import atomic_write_bytes

    root.mkdir(parents=True, exist_ok=True)
    path = root / CONFIG_NAME
    atomic_write_bytes(path, tomli_w.dumps(body).encode("utf-8"))
    return path


def init_workspace(
    root: Path,
    *,
    original: str | Path,
    filtered: str | Path | None = None,
    kept_column: str | None = None,
    scores: list[str] | None = None,
    laion: bool = False,
    images_root: str | Path | None = None,
    generated: str | Path | None = None,
    name: str | None = None,
    captions: str | None = None,
) -> Workspace:
    """Create `audit.toml` and validate it; nothing is written on error.

    Relative paths are relative to the workspace `root` (the CLI turns the shell's relative paths into absolute
    ones first); a path inside the workspace is stored relative to it, so the workspace can be moved. With no
    filter at all the workspace audits one dataset (duplicates, regurgitation); `laion` adds LAION's published
    filters for the score columns the manifest has."""
    ways = [w for w in (filtered, kept_column, scores or laion) if w]
    if len(ways) > 1:
        raise AuditInputError(
            "give at most one of --filtered, --kept-column, --score/--laion-filters.",
            fix="see `pretrain-audit init --help`.",
        )
    root = Path(root)
    if images_root is None and _resolve(root, str(original)).is_dir():
        images_root = original  # an img2dataset folder: its tar shards hold the images
    body: dict[str, Any] = {
        "workspace": {"name": name or root.resolve().name, "images_root": _stored(root, images_root or ".")},
        "original": {"manifest": _stored(root, original), **({"captions": captions} if captions else {})},
    }
    if filtered:
        body["filtered"] = {"manifest": _stored(root, filtered)}
    elif kept_column:
        body["filtered"] = {"kept_column": kept_column}
    elif scores or laion:
        chosen = [parse_score_option(option) for option in scores or []]
        if laion:
            chosen += _laion_filters_of(_resolve(root, str(original)), captions)
        body["filtered"] = {"scores": [f.to_toml() for f in chosen]}
    if generated:
        body["generated"] = {"manifest": _stored(root, generated)}
    return _write_validated(root, body)


def _laion_filters_of(manifest_path: Path, captions: str | None) -> list[ScoreFilter]:
    """LAION's published filters for the score columns the manifest has; an error when it has none."""
    manifest = load_manifest(manifest_path, what="original manifest", captions=captions)
    found, missing = laion_filters(list(manifest.columns))
    if not found:
        raise AuditInputError(
            f"--laion-filters found none of LAION's score columns; missing: {'; '.join(missing)}.",
            path=manifest_path,
            fix="use a LAION metadata file with similarity/punsafe/pwatermark/aesthetic, or give --score.",
        )
    return found


def _write_validated(root: Path, body: dict[str, Any]) -> Workspace:
    """Write audit.toml and load it; a body that does not load leaves the earlier file (or none) in place."""
    root.mkdir(parents=True, exist_ok=True)
    config_path = root / CONFIG_NAME
    previous = config_path.read_bytes() if config_path.exists() else None
    write_config(root, body)
    try:
        return load_workspace(root)
    except AuditInputError:
        if previous is None:
            config_path.unlink(missing_ok=True)
        else:
            config_path.write_bytes(previous)
        raise


def _stored(root: Path, value: str | Path) -> str:
    """How a path is written into audit.toml: relative to the workspace when it lies inside it."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        return path.as_posix()
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return str(path)


def manifest_fingerprints(workspace: Workspace) -> dict[str, str]:
    """Content hashes of the workspace's inputs: what cached artifacts and report provenance are keyed by."""
    config = workspace.config
    paths = {
        "original": config.original,
        "filtered": config.filtered.manifest,
        "generated": config.generated,
        "config": config.config_path,
    }
    paths.update({f"score:{name}": path for name, path in config.computed_scores.items()})
    paths.update({f"eval:{name}": path for name, path in config.evals})  # what contamination was measured against
    return {name: file_fingerprint(path) for name, path in paths.items() if path is not None and Path(path).exists()}
