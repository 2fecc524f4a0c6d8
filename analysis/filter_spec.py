"""How a workspace says what its filters kept: a manifest of kept ids, a boolean column, score filters (each
with a direction: LAION removes `punsafe ≥ 0.5` but keeps `similarity ≥ 0.28`), or nothing at all (an audit of
one dataset: duplicates and regurgitation only). Parsed from `[filtered]` of audit.toml or from `init` options.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from analysis.errors import AuditInputError
from analysis.manifests import ids_in, load_manifest, score_values

FilterKind = Literal["manifest", "kept_column", "scores", "none"]
Direction = Literal[">=", "<"]
DIRECTIONS: tuple[Direction, ...] = (">=", "<")
HASH_FILTER = "known-bad hash list"
NO_FILTER_HINT = (
    "define the filtered set in audit.toml ([filtered] manifest, kept_column or [[filtered.scores]]), or rerun "
    "`pretrain-audit init DIR --original M` with --filtered, --kept-column, --score or --laion-filters."
)

# LAION-5B's published filters (Schuhmann et al. 2022, §3): keep CLIP image–text similarity ≥ 0.28 (ViT-B/32);
# LAION-Aesthetics keeps aesthetic score ≥ 5; the unsafe and watermark tags are punsafe ≥ 0.5 and pwatermark ≥ 0.8.
# Each entry: filter name, the column names it is found under, direction, threshold.
LAION_FILTERS: tuple[tuple[str, tuple[str, ...], Direction, float], ...] = (
    ("clip-similarity", ("similarity",), "<", 0.28),
    ("aesthetics", ("aesthetic", "AESTHETIC_SCORE", "aesthetic_score"), "<", 5.0),
    ("unsafe", ("punsafe",), ">=", 0.5),
    ("watermark", ("pwatermark",), ">=", 0.8),
)


@dataclass(frozen=True)
class ScoreFilter:
    """A filter on one score column: a row is removed when `column` ≥ `threshold` (or < it, for a score that
    marks what to keep, such as CLIP similarity or aesthetics)."""

    name: str
    column: str
    threshold: float
    removed_when: Direction = ">="

    def removes(self, values: np.ndarray | float) -> np.ndarray:
        return np.asarray(values >= self.threshold if self.removed_when == ">=" else values < self.threshold)

    @property
    def rule(self) -> str:
        """The removal rule in words, e.g. "removed when 'punsafe' ≥ 0.5"."""
        symbol = "≥" if self.removed_when == ">=" else "<"
        return f"removed when '{self.column}' {symbol} {self.threshold:g}"

    def to_toml(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": self.name, "column": self.column, "threshold": self.threshold}
        if self.removed_when != ">=":
            entry["removed_when"] = self.removed_when
        return entry


@dataclass(frozen=True)
class FilterSpec:
    kind: FilterKind
    manifest: Path | None = None
    kept_column: str | None = None
    scores: tuple[ScoreFilter, ...] = ()
    hash_matches: Path | None = None  # ids matched to a known-bad hash list (`match-hashes`), removed too

    @property
    def defined(self) -> bool:
        """Whether anything says what was removed (a workspace without a filter keeps every row)."""
        return self.kind != "none" or self.hash_matches is not None

    def describe(self) -> list[str]:
        extra = [f"{HASH_FILTER}: removed when in {self.hash_matches}"] if self.hash_matches else []
        if self.kind != "scores":
            extra = [f"{f.name}: {f.rule}" for f in self.scores] + extra
        if self.kind == "manifest":
            return [f"kept = ids listed in {self.manifest}", *extra]
        if self.kind == "kept_column":
            return [f"kept = rows where column '{self.kept_column}' is true", *extra]
        if self.kind == "none":
            return extra or ["no filter defined: every row is kept"]
        return [f"{f.name}: {f.rule}" for f in self.scores] + extra


def parse_filter(body: dict[str, Any], resolve: Any, config_path: Path) -> FilterSpec:
    """`[filtered]` of audit.toml → FilterSpec; `resolve` turns a stored path into a real one."""
    ways = [key for key in ("manifest", "kept_column") if body.get(key)]
    if len(ways) > 1:
        raise AuditInputError(
            f"[filtered] must define at most one of manifest, kept_column (found {ways}).",
            path=config_path,
            fix="keep one way of defining the filtered set (score filters may be added to either).",
        )
    hash_matches = resolve(str(body["hash_matches"])) if body.get("hash_matches") else None
    filters = [_score_entry(i, entry, config_path) for i, entry in enumerate(body.get("scores") or [])]
    if len({f.name for f in filters}) != len(filters):
        raise AuditInputError("score filter names must be unique.", path=config_path, fix="rename the duplicates.")
    scores = tuple(filters)
    if ways == ["manifest"]:
        return FilterSpec("manifest", resolve(str(body["manifest"])), scores=scores, hash_matches=hash_matches)
    if ways == ["kept_column"]:
        return FilterSpec("kept_column", kept_column=str(body["kept_column"]), scores=scores, hash_matches=hash_matches)
    return FilterSpec("scores" if scores else "none", scores=scores, hash_matches=hash_matches)


def _score_entry(i: int, entry: Any, config_path: Path) -> ScoreFilter:
    try:
        name, column, threshold = str(entry["name"]), str(entry["column"]), entry["threshold"]
    except (KeyError, TypeError):
        raise AuditInputError(
            f"[[filtered.scores]] entry {i + 1} needs name, column and threshold.",
            path=config_path,
            fix='write name = "sexual", column = "sexual", threshold = 0.5 (and removed_when = "<" to keep '
            "high scores).",
        ) from None
    direction = entry.get("removed_when", ">=")
    if direction not in DIRECTIONS:
        raise AuditInputError(
            f"removed_when of filter '{name}' is {direction!r}.", path=config_path, fix='use ">=" or "<".'
        )
    return ScoreFilter(name, column, check_threshold(threshold, f"filter '{name}'", config_path), direction)


def with_score_filter(body: dict[str, Any], score_filter: ScoreFilter) -> None:
    """Add a score filter to a parsed audit.toml, replacing one of the same name (`score --score`, `filter apply`)."""
    filtered = body.setdefault("filtered", {})
    kept = [entry for entry in filtered.get("scores", []) if entry.get("name") != score_filter.name]
    filtered["scores"] = [*kept, score_filter.to_toml()]


def without_score_filter(body: dict[str, Any], name: str, column: str) -> None:
    """Remove a score filter and its computed score's `[scores]` entry from a parsed audit.toml (`filter unapply`),
    dropping tables left empty, so the file reads as it did before `with_score_filter`."""
    filtered = body.get("filtered", {})
    filtered["scores"] = [entry for entry in filtered.get("scores", []) if entry.get("name") != name]
    if not filtered["scores"]:
        del filtered["scores"]
    if not filtered:
        body.pop("filtered", None)
    body.get("scores", {}).pop(column, None)
    if "scores" in body and not body["scores"]:
        del body["scores"]


def check_threshold(value: Any, what: str, where: Path | str | None = None) -> float:
    """Any finite number: scores are probabilities, similarities or 0–10 ratings."""
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise AuditInputError(
            f"threshold of {what} is not a number ({value!r}).", path=where, fix="use a finite number, e.g. 0.5."
        ) from None
    if not math.isfinite(threshold):
        raise AuditInputError(f"threshold of {what} is {value!r}.", path=where, fix="use a finite number, e.g. 0.5.")
    return threshold


_SCORE_OPTION = re.compile(r"([^=]+)=(.+):(>=|<)?\s*([^:]+)")


def parse_score_option(option: str) -> ScoreFilter:
    """`NAME=COLUMN:T` or `NAME=COLUMN:>=T` (removed when ≥ T) and `NAME=COLUMN:<T` (removed when < T)."""
    match = _SCORE_OPTION.fullmatch(option.strip())
    if not match:
        raise AuditInputError(
            f"--score {option!r} is not NAME=COLUMN:THRESHOLD.",
            fix="write e.g. --score sexual=nsfw:0.5, --score unsafe=punsafe:>=0.5 or --score clip=similarity:<0.28.",
        )
    name, column, direction, threshold = match.groups()
    return ScoreFilter(
        name.strip(),
        column.strip(),
        check_threshold(threshold, f"--score {name}"),
        direction or ">=",  # type: ignore[arg-type]
    )


def laion_filters(columns: list[str]) -> tuple[list[ScoreFilter], list[str]]:
    """LAION's published filters for the columns this manifest has, and the names of those it lacks."""
    found, missing = [], []
    for name, candidates, direction, threshold in LAION_FILTERS:
        column = next((c for c in candidates if c in columns), None)
        if column is None:
            missing.append(f"{name} (column {' / '.join(candidates)})")
        else:
            found.append(ScoreFilter(name, column, threshold, direction))
    return found, missing


def kept_mask(
    spec: FilterSpec,
    original: pd.DataFrame,
    original_path: Path,
    computed: frozenset[str] = frozenset(),
    captions: str | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which rows the filters kept, and which rows each filter removed (a row can be removed by several).

    `computed` names score columns the tool computed (`pretrain-audit score`, `filter apply`): a row whose image
    could not be scored has NaN there, and no filter on that column removes it. `captions`: the original's rule
    for several captions per image, applied to a filtered manifest too, so that its ids are the original's."""
    kept, removed_by = _kept_by_definition(spec, original, original_path, captions)
    if spec.scores:
        by_score = {f.name: _removed_by_score(f, original, original_path, computed) for f in spec.scores}
        removed_by = {**removed_by, **by_score}
        kept = kept & ~np.logical_or.reduce(list(by_score.values()))
    path = spec.hash_matches
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


def _kept_by_definition(
    spec: FilterSpec, original: pd.DataFrame, original_path: Path, captions: str | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if spec.kind == "manifest":
        assert spec.manifest is not None
        filtered = load_manifest(spec.manifest, required=("id",), what="filtered manifest", captions=captions)
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
                f"kept column '{column}' not found.", path=original_path, fix="name an existing boolean column."
            )
        kept = _as_bool(original[column], column, original_path)
        return kept, {f"kept column '{column}'": ~kept}
    return np.ones(len(original), dtype=bool), {}


def _removed_by_score(
    score_filter: ScoreFilter, original: pd.DataFrame, path: Path, computed: frozenset[str]
) -> np.ndarray:
    if score_filter.column not in computed:
        return score_filter.removes(score_values(original, score_filter.column, path))
    values = original[score_filter.column].to_numpy(dtype=np.float64)
    scored = np.isfinite(values)
    return score_filter.removes(np.where(scored, values, 0.0)) & scored


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
