"""The audit workspace: `audit.toml`, its manifests, and the filtered set they define.

A workspace is a directory. Its config names the original manifest and one of three ways to say
what the filters kept: a second manifest of kept ids, score columns with thresholds, or a boolean
column. Everything derived later (embeddings, clusters, verdicts) lives under the same directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import tomli_w
import tomllib

from analysis.cache import file_fingerprint
from analysis.errors import AuditInputError
from analysis.manifests import ids_in, load_manifest, score_values

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

KNOWN_SECTIONS = {"workspace", "original", "filtered", "generated", "terms", "groups", "embeddings"}
KNOWN_KEYS = {
    "workspace": {"name", "images_root", "synthetic", "description"},
    "original": {"manifest"},
    "filtered": {"manifest", "kept_column", "scores", "hash_matches"},
    "generated": {"manifest"},
    "terms": {"default"},
    "embeddings": {"embedder"},
}

FilterKind = Literal["manifest", "kept_column", "scores"]
HASH_FILTER = "known-bad hash list"


@dataclass(frozen=True)
class ScoreFilter:
    """A classifier filter: a row is removed when `column` >= `threshold`."""

    name: str
    column: str
    threshold: float


@dataclass(frozen=True)
class FilterSpec:
    kind: FilterKind
    manifest: Path | None = None
    kept_column: str | None = None
    scores: tuple[ScoreFilter, ...] = ()
    hash_matches: Path | None = None  # ids matched to a known-bad hash list (`match-hashes`), removed too

    def describe(self) -> list[str]:
        extra = [f"{HASH_FILTER}: removed when in {self.hash_matches}"] if self.hash_matches else []
        if self.kind == "manifest":
            return [f"kept = ids listed in {self.manifest}", *extra]
        if self.kind == "kept_column":
            return [f"kept = rows where column '{self.kept_column}' is true", *extra]
        return [f"{f.name}: removed when '{f.column}' ≥ {f.threshold:g}" for f in self.scores] + extra


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

    @property
    def has_images(self) -> bool:
        return "image" in self.original.columns and bool((self.original["image"] != "").any())


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
    return WorkspaceConfig(
        root=root,
        name=str(ws.get("name") or root.resolve().name),
        images_root=_resolve(root, str(ws.get("images_root", "."))),
        original=_resolve(root, str(original)),
        filtered=_parse_filter(raw.get("filtered", {}), root, config_path),
        generated=_resolve(root, str(generated)) if generated else None,
        synthetic=bool(ws.get("synthetic", False)),
        default_terms=tuple(str(t).casefold() for t in terms),
        groups=groups,
        embedder=str(raw.get("embeddings", {}).get("embedder", "effnet-lite0")),
    )


def _check_known_keys(raw: dict[str, Any], config_path: Path) -> None:
    for section, body in raw.items():
        if section not in KNOWN_SECTIONS:
            raise AuditInputError(
                f"unknown section [{section}].", path=config_path, fix=f"use only {', '.join(sorted(KNOWN_SECTIONS))}."
            )
        if section in KNOWN_KEYS and isinstance(body, dict):
            unknown = set(body) - KNOWN_KEYS[section]
            if unknown:
                raise AuditInputError(
                    f"unknown key(s) {sorted(unknown)} in [{section}].",
                    path=config_path,
                    fix=f"allowed keys there: {', '.join(sorted(KNOWN_KEYS[section]))}.",
                )


def _parse_filter(body: dict[str, Any], root: Path, config_path: Path) -> FilterSpec:
    ways = [key for key in ("manifest", "kept_column", "scores") if body.get(key)]
    if len(ways) != 1:
        raise AuditInputError(
            f"[filtered] must define exactly one of manifest, kept_column, scores (found {ways or 'none'}).",
            path=config_path,
            fix="keep one way of defining the filtered set.",
        )
    hash_matches = _resolve(root, str(body["hash_matches"])) if body.get("hash_matches") else None
    if ways[0] == "manifest":
        return FilterSpec(kind="manifest", manifest=_resolve(root, str(body["manifest"])), hash_matches=hash_matches)
    if ways[0] == "kept_column":
        return FilterSpec(kind="kept_column", kept_column=str(body["kept_column"]), hash_matches=hash_matches)
    filters = []
    for i, entry in enumerate(body["scores"]):
        try:
            name, column, threshold = str(entry["name"]), str(entry["column"]), entry["threshold"]
        except (KeyError, TypeError):
            raise AuditInputError(
                f"[[filtered.scores]] entry {i + 1} needs name, column and threshold.",
                path=config_path,
                fix='write name = "sexual", column = "sexual", threshold = 0.5.',
            ) from None
        filters.append(ScoreFilter(name, column, check_threshold(threshold, f"filter '{name}'", config_path)))
    if len({f.name for f in filters}) != len(filters):
        raise AuditInputError("score filter names must be unique.", path=config_path, fix="rename the duplicates.")
    return FilterSpec(kind="scores", scores=tuple(filters), hash_matches=hash_matches)


def check_threshold(value: Any, what: str, where: Path | str | None = None) -> float:
    """Thresholds apply to classifier probabilities, so they live in [0, 1]."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise AuditInputError(
            f"threshold of {what} is not a number ({value!r}).", path=where, fix="use a number between 0 and 1."
        ) from None
    if not (0.0 <= threshold <= 1.0) or np.isnan(threshold):
        raise AuditInputError(
            f"threshold of {what} is {value!r}, outside [0, 1].",
            path=where,
            fix="scores are probabilities: use a threshold between 0 and 1.",
        )
    return threshold


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
    original = load_manifest(config.original, what="original manifest")
    check_image_paths(original, config.original)
    kept, removed_by = _kept_mask(config, original)
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


def _kept_mask(config: WorkspaceConfig, original: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    kept, removed_by = _kept_by_definition(config, original)
    path = config.filtered.hash_matches
    if path is None:
        return kept, removed_by
    if not path.exists():
        raise AuditInputError(
            "the hash-list matches named in [filtered] hash_matches are missing.",
            path=path,
            fix="rerun `pretrain-audit match-hashes DIR --list F`, or remove hash_matches.",
        )
    matched = ids_in(original["id"], pd.read_parquet(path, columns=["id"])["id"].astype(str))
    return kept & ~matched, {**removed_by, HASH_FILTER: matched}


def _kept_by_definition(config: WorkspaceConfig, original: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    spec = config.filtered
    if spec.kind == "manifest":
        assert spec.manifest is not None
        filtered = load_manifest(spec.manifest, required=("id",), what="filtered manifest")
        known = ids_in(filtered["id"], original["id"])
        if not known.all():
            row = int(np.flatnonzero(~known)[0])
            raise AuditInputError(
                f"id {filtered['id'].iloc[row]!r} in row {row + 1} is not in the original manifest "
                f"({int((~known).sum())} unknown ids).",
                path=spec.manifest,
                fix="the filtered manifest must be a subset of the original.",
            )
        kept = ids_in(original["id"], filtered["id"])
        return kept, {"filtered manifest": ~kept}
    if spec.kind == "kept_column":
        column = spec.kept_column
        assert column is not None
        if column not in original.columns:
            raise AuditInputError(
                f"kept column '{column}' not found.", path=config.original, fix="name an existing boolean column."
            )
        kept = _as_bool(original[column], column, config.original)
        return kept, {f"kept column '{column}'": ~kept}
    removed_by = {}
    for score_filter in spec.scores:
        values = score_values(original, score_filter.column, config.original)
        if values.min() < 0 or values.max() > 1:
            raise AuditInputError(
                f"score column '{score_filter.column}' has values outside [0, 1] "
                f"(min {values.min():g}, max {values.max():g}).",
                path=config.original,
                fix="store classifier probabilities (e.g. apply a sigmoid to logits).",
            )
        removed_by[score_filter.name] = values >= score_filter.threshold
    removed = np.logical_or.reduce(list(removed_by.values())) if removed_by else np.zeros(len(original), bool)
    return ~removed, removed_by


def _as_bool(series: pd.Series, column: str, path: Path) -> np.ndarray:
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    mapping = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
    lowered = series.astype("string").str.strip().str.lower()
    mapped = lowered.map(mapping)
    if mapped.isna().any():
        row = int(np.flatnonzero(mapped.isna().to_numpy())[0])
        raise AuditInputError(
            f"kept column '{column}' has a non-boolean value {series.iloc[row]!r} in row {row + 1}.",
            path=path,
            fix="use true/false (or 1/0).",
        )
    return mapped.to_numpy(dtype=bool)


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
    original: str,
    filtered: str | None = None,
    kept_column: str | None = None,
    scores: list[str] | None = None,
    images_root: str | None = None,
    generated: str | None = None,
    name: str | None = None,
) -> Workspace:
    """Create `audit.toml` from command-line style arguments and validate it; nothing is written on error."""
    ways = [w for w in (filtered, kept_column, scores) if w]
    if len(ways) != 1:
        raise AuditInputError(
            "give exactly one of --filtered, --kept-column, --score.", fix="see `pretrain-audit init --help`."
        )
    body: dict[str, Any] = {
        "workspace": {"name": name or root.resolve().name, "images_root": images_root or "."},
        "original": {"manifest": original},
    }
    if filtered:
        body["filtered"] = {"manifest": filtered}
    elif kept_column:
        body["filtered"] = {"kept_column": kept_column}
    else:
        body["filtered"] = {"scores": [parse_score_option(option) for option in scores or []]}
    if generated:
        body["generated"] = {"manifest": generated}
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


def parse_score_option(option: str) -> dict[str, Any]:
    """`NAME=COLUMN:THRESHOLD` → a filter entry."""
    match = re.fullmatch(r"([^=]+)=([^:]+):(.+)", option.strip())
    if not match:
        raise AuditInputError(
            f"--score {option!r} is not NAME=COLUMN:THRESHOLD.", fix="write e.g. --score sexual=nsfw:0.5."
        )
    name, column, threshold = match.groups()
    return {"name": name, "column": column, "threshold": check_threshold(threshold, f"--score {name}")}


def manifest_fingerprints(workspace: Workspace) -> dict[str, str]:
    """Content hashes of the workspace's inputs: what cached artifacts and report provenance are keyed by."""
    config = workspace.config
    paths = {
        "original": config.original,
        "filtered": config.filtered.manifest,
        "generated": config.generated,
        "config": config.config_path,
    }
    return {name: file_fingerprint(path) for name, path in paths.items() if path is not None and Path(path).exists()}
