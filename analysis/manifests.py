"""Reading manifests (Parquet, CSV, JSONL) into one normalised column layout.

Scraped datasets name their columns differently (img2dataset/LAION: key, URL, TEXT, punsafe);
normalising here means every analysis sees `id`, `caption`, `image`, `url` and score columns.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from analysis.errors import AuditInputError

SUPPORTED_SUFFIXES = (".parquet", ".csv", ".tsv", ".txt", ".jsonl", ".json")  # text formats also gzipped: .csv.gz ...


def manifest_format(path: Path) -> tuple[str, bool]:
    """The format suffix of a manifest and whether it is gzipped (`x.csv.gz` → (".csv", True))."""
    suffixes = [s.lower() for s in path.suffixes]
    gzipped = bool(suffixes) and suffixes[-1] == ".gz"
    if gzipped:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), gzipped


# Alternative column names recognised on load, mapped to the canonical name.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "key", "uid", "sample_id"),
    "caption": ("caption", "TEXT", "text", "prompt_text"),
    "image": ("image", "image_path", "path", "filepath", "file_name"),
    "url": ("url", "URL"),
    "prompt": ("prompt",),
    "source_id": ("source_id",),
}


def read_table(path: Path) -> pd.DataFrame:
    """Read a manifest file (or an img2dataset output folder) into a DataFrame, with one clear error for any
    unreadable file."""
    if not path.exists():
        raise AuditInputError(
            "manifest file not found.", path=path, fix="check the path in audit.toml or on the command line."
        )
    if path.is_dir():
        from analysis.shards import read_img2dataset

        return read_img2dataset(path)
    if path.stat().st_size == 0:
        raise AuditInputError(
            "manifest file is empty (0 bytes).",
            path=path,
            fix="point to a manifest with a header and at least one row.",
        )
    suffix, gzipped = manifest_format(path)
    if suffix == ".txt":
        suffix = _text_table_kind(path, gzipped)
    try:
        frame = _read_format(path, suffix, gzipped)
        if frame is not None:
            return frame
    except AuditInputError:
        raise
    except UnicodeDecodeError as exc:
        raise AuditInputError(
            f"not valid UTF-8 text ({exc.reason} at byte {exc.start}).", path=path, fix="re-encode the file as UTF-8."
        ) from None
    except (pa.ArrowInvalid, pa.ArrowException, OSError, ValueError, EOFError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AuditInputError(
            f"cannot be read as {suffix[1:].upper()}{' (gzip)' if gzipped else ''}: {first_line}",
            path=path,
            fix="check that the file is complete and in the format its extension says.",
        ) from None
    raise AuditInputError(
        f"unsupported manifest format '{''.join(path.suffixes) or path.name}'.",
        path=path,
        fix=f"use one of {', '.join(SUPPORTED_SUFFIXES)} (text formats may be gzipped: .csv.gz, .jsonl.gz).",
    )


def _read_format(path: Path, suffix: str, gzipped: bool) -> pd.DataFrame | None:
    """The file read as its format says; None for a format no reader handles (gzipped Parquet, say)."""
    if suffix == ".parquet" and not gzipped:
        return _flatten_nested(pq.read_table(path), path).to_pandas()
    if suffix in (".csv", ".tsv"):
        opts = pacsv.ReadOptions(encoding="utf8")
        parse = pacsv.ParseOptions(newlines_in_values=True, delimiter="\t" if suffix == ".tsv" else ",")
        convert = pacsv.ConvertOptions(strings_can_be_null=False)
        table = pacsv.read_csv(path, read_options=opts, parse_options=parse, convert_options=convert)
        _require_text_columns(table, path)
        return table.to_pandas()
    if suffix in (".jsonl", ".json"):
        return _read_jsonl(path, gzipped)
    return None


def _text_table_kind(path: Path, gzipped: bool) -> str:
    """A `.txt` manifest (caption datasets often ship so) is read as TSV when its header has tabs, as CSV when it
    has commas; anything else is an error that says so."""
    import gzip

    with gzip.open(path, "rt", encoding="utf8", errors="replace") if gzipped else path.open(errors="replace") as f:
        header = f.readline()
    if "\t" in header:
        return ".tsv"
    if "," in header:
        return ".csv"
    raise AuditInputError(
        "a .txt manifest is read as CSV or TSV, but its first line has neither commas nor tabs "
        f"({header.strip()[:60]!r}).",
        path=path,
        fix="give it a header such as id,caption,image (or tab-separated), or save it as .csv, .tsv or .jsonl.",
    )


def _require_text_columns(table: pa.Table, path: Path) -> None:
    """pyarrow reads invalid UTF-8 in a CSV as binary; that is an encoding problem, not data."""
    for field in table.schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise AuditInputError(
                f"column '{field.name}' is not valid UTF-8 text.",
                path=path,
                fix="re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).",
            )


def _read_jsonl(path: Path, gzipped: bool = False) -> pd.DataFrame:
    import gzip

    rows = []
    opener = gzip.open if gzipped else open
    with opener(path, "rt", encoding="utf-8", newline=None) as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AuditInputError(
                    f"line {line_number} is not valid JSON ({exc.msg}).",
                    path=path,
                    fix="write one JSON object per line.",
                ) from None
            if not isinstance(row, dict):
                raise AuditInputError(
                    f"line {line_number} is a JSON {type(row).__name__}, not an object.",
                    path=path,
                    fix="write one JSON object per line.",
                )
            rows.append(row)
    return pd.DataFrame(rows)


def _flatten_nested(table: pa.Table, path: Path) -> pa.Table:
    """Nested columns cannot be ids or captions; reject them there, drop them elsewhere with no fuss."""
    keep = []
    for field in table.schema:
        nested = pa.types.is_nested(field.type)
        if nested and _canonical_name(field.name) in ("id", "caption", "image"):
            raise AuditInputError(
                f"column '{field.name}' is nested ({field.type}); it must hold plain values.",
                path=path,
                fix=f"store '{field.name}' as a string column.",
            )
        if not nested:
            keep.append(field.name)
    return table.select(keep)


def _canonical_name(column: str) -> str | None:
    for canonical, aliases in COLUMN_ALIASES.items():
        if column in aliases:
            return canonical
    return None


def normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename recognised aliases to canonical names (first alias present wins)."""
    renames: dict[str, str] = {}
    for canonical, aliases in COLUMN_ALIASES.items():
        if canonical in frame.columns:
            continue
        for alias in aliases:
            if alias in frame.columns and alias not in renames:
                renames[alias] = canonical
                break
    frame = frame.rename(columns=renames)
    if "punsafe" in frame.columns:
        frame["punsafe"] = pd.to_numeric(frame["punsafe"], errors="coerce")
    return frame


CAPTION_CHOICES = ("first", "join", "rows")
JOINED_CAPTIONS_SEPARATOR = "\n"  # words never span it: a joined caption contains a word when one of its captions does


def load_manifest(
    path: Path,
    *,
    required: tuple[str, ...] = ("id", "caption"),
    what: str = "manifest",
    captions: str | None = None,
) -> pd.DataFrame:
    """Read and validate a manifest: required columns present, ids non-null and unique, text as text.

    Without an `id` column the image path is the id. `captions` says what to do with several rows per image (COCO
    and Flickr ship five captions per image as `image,caption` rows): `first` keeps each image's first caption,
    `join` joins its captions into one (a word's frequency is then the share of images with it in any caption),
    `rows` keeps one row per caption with ids `IMAGE#1`, `IMAGE#2`, ... (a caption-level audit: the same image is
    in several rows)."""
    frame = normalise_columns(read_table(path))
    if frame.empty:
        raise AuditInputError(f"{what} has no rows.", path=path, fix="an audit needs at least one row.")
    frame = one_row_per_image(frame, captions, path, what)
    for column in required:
        if column not in frame.columns:
            aliases = ", ".join(COLUMN_ALIASES.get(column, (column,)))
            raise AuditInputError(
                f"{what} has no '{column}' column (looked for: {aliases}); columns are: "
                f"{', '.join(map(str, frame.columns[:12]))}.",
                path=path,
                fix=f"add or rename a column to '{column}'.",
            )
    frame["id"] = _clean_ids(frame["id"], path)
    for text_column in ("caption", "prompt"):
        if text_column in frame.columns:
            frame[text_column] = _clean_text(frame[text_column])
    if "image" in frame.columns:
        frame["image"] = frame["image"].astype("string").fillna("").astype(object)
    return frame.reset_index(drop=True)


def one_row_per_image(frame: pd.DataFrame, captions: str | None, path: Path, what: str) -> pd.DataFrame:
    """The `id` column from the image path when there is none, and several captions per id resolved by `captions`
    (see `load_manifest`); several rows per image and no choice made is an error that names the choice."""
    if captions is not None and captions not in CAPTION_CHOICES:
        raise AuditInputError(
            f"captions = {captions!r} is not one of {', '.join(CAPTION_CHOICES)}.",
            path=path,
            fix='write captions = "first", "join" or "rows" (pretrain-audit init --captions).',
        )
    derived = "id" not in frame.columns and "image" in frame.columns
    if derived:
        frame = frame.assign(id=frame["image"].astype("string"))
    if "id" not in frame.columns or (captions is None and not derived):  # a repeated given id: `_clean_ids` says so
        return frame
    key = frame["id"].astype("string")
    repeated = key.duplicated(keep=False) & key.notna()
    if not repeated.any():
        return frame
    if captions is None:
        first = key[repeated].iloc[0]
        rows = (np.flatnonzero((key == first).to_numpy(dtype=bool)) + 1).tolist()[:3]
        raise AuditInputError(
            f"{what} has several rows for the same image ('{first}' in rows {rows}; "
            f"{int(key[repeated].nunique())} images with several rows).",
            path=path,
            fix="say what to do with several captions per image: pretrain-audit init ... --captions first "
            "(each image's first caption), join (all its captions as one) or rows (one row per caption); "
            "or give every row a unique id.",
        )
    if captions == "first":
        return frame[~key.duplicated(keep="first").to_numpy(dtype=bool)].reset_index(drop=True)
    if captions == "rows":
        number = frame.groupby(key, sort=False).cumcount() + 1
        ids = key.where(~repeated, key + "#" + number.astype("string"))
        return frame.assign(id=ids.astype(object))
    joined = frame.assign(id=key).groupby("id", sort=False, dropna=False)
    result = joined.first()
    if "caption" in frame.columns:
        result["caption"] = joined["caption"].agg(
            lambda texts: JOINED_CAPTIONS_SEPARATOR.join(str(t) for t in texts if pd.notna(t))
        )
    return result.reset_index()[list(frame.columns)]


def _clean_ids(ids: pd.Series, path: Path) -> pd.Series:
    nulls = ids.isna() | (ids.astype("string").str.strip() == "")
    if nulls.any():
        row = int(np.flatnonzero(nulls.to_numpy())[0])
        raise AuditInputError(
            f"'id' is empty in row {row + 1} ({int(nulls.sum())} empty ids in all).",
            path=path,
            fix="give every row a unique, non-empty id.",
        )
    if pd.api.types.is_float_dtype(ids):  # integer ids read as floats (a CSV with gaps) are shown as "7", not "7.0"
        as_text = ids.map(lambda v: str(int(v)) if v.is_integer() else str(v))
    else:
        as_text = ids.astype("string").astype(object)
    duplicated = as_text.duplicated(keep=False)
    if duplicated.any():
        first = as_text[duplicated].iloc[0]
        rows = (np.flatnonzero((as_text == first).to_numpy()) + 1).tolist()[:3]
        raise AuditInputError(
            f"duplicate id '{first}' in rows {rows} ({int(as_text.duplicated().sum())} duplicates in all).",
            path=path,
            fix="make ids unique, e.g. by prefixing the shard name; or, for several captions per image, "
            "pretrain-audit init ... --captions first|join|rows.",
        )
    return as_text


def _clean_text(text: pd.Series) -> pd.Series:
    """Captions are text: nulls become empty, NUL bytes are dropped, numbers become strings."""
    cleaned = text.astype("string").fillna("")
    return cleaned.str.replace("\x00", "", regex=False).astype(object)


def score_values(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """A classifier score column as float64 in [0, 1]; non-numeric or NaN values are an error naming the row."""
    if column not in frame.columns:
        raise AuditInputError(
            f"score column '{column}' not found; columns are: {', '.join(map(str, frame.columns))}.",
            path=path,
            fix="name an existing numeric column in the filter definition.",
        )
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise AuditInputError(
            f"score column '{column}' has a non-numeric, NaN or infinite value "
            f"({frame[column].iloc[row]!r}) in row {row + 1} ({int(bad.sum())} such rows).",
            path=path,
            fix="scores must be finite numbers; fill or drop those rows.",
        )
    return values


def ids_in(values: pd.Series, reference: pd.Series) -> np.ndarray:
    """`values.isin(reference)` through Arrow's hash set: pandas' isin on Arrow strings first turns the reference
    into a Python list, on every load of a workspace."""
    import pyarrow.compute as pc

    def strings(series: pd.Series) -> pa.Array:
        return pa.array(series.astype("string"), type=pa.string(), from_pandas=True)

    found = pc.is_in(strings(values), value_set=strings(reference))
    return found.to_numpy(zero_copy_only=False).astype(bool)
