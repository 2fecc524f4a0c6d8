"""Results that other holders of the dataset can act on without this tool (issue 49).

After LAION-5B's audit, Re-LAION-5B published lists of what to remove (ids, URLs, hashes) so that everyone holding a
copy could clean it. Two exports do that here, each a DataFrame built from the loaded workspace:

- `removal_list`: one row per training item the audited filters removed, with its id, URL (where the manifest has
  one), image path, the sha256 of its file and its PDQ hash (where `prepare` recorded them), and every reason: each
  filter that removed it, with the score and the rule for a score filter. Re-applied to the original manifest by id
  alone, it gives back exactly the audited filtered set.
- `keep_list`: the kept items in img2dataset's columns (`url`, `caption`, and the original id as `key`), so the
  filtered set can be downloaded again; an image without a URL gets its `file://` URI.
- the Croissant 1.0 description of the audited dataset with its RAI fields (`analysis/croissant.py`).

`write_export` writes either as CSV or Parquet, atomically, so a failed export never leaves half a file behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.cache import atomic_path
from analysis.contract import Log, quiet
from analysis.errors import AuditInputError
from analysis.filter_spec import NO_FILTER_HINT
from analysis.workspace import Workspace

EXPORTS = ("removals", "keep", "croissant")
FORMATS = (".csv", ".parquet")  # of the two lists; the Croissant description is JSON-LD (.json)
REASON_SEPARATOR = "; "


def removal_reasons(workspace: Workspace, removed: np.ndarray | None = None) -> pd.DataFrame:
    """One column per filter (True where it removed the row) for the `removed` rows (default: what the filters
    removed), and `reasons`: each filter that removed the row in words, a score filter with the row's score and its
    rule, e.g. "sexual: 0.91 (removed when 'sexual' ≥ 0.5)"."""
    removed = ~workspace.kept if removed is None else removed
    rules = {f.name: f for f in workspace.config.filtered.scores}
    columns: dict[str, np.ndarray] = {}
    texts: list[list[str]] = [[] for _ in range(int(removed.sum()))]
    for name, mask in workspace.removed_by.items():
        hit = np.asarray(mask, dtype=bool)[removed]
        columns[f"filter:{name}"] = hit
        rule = rules.get(name)
        values = workspace.original[rule.column].to_numpy()[removed] if rule is not None else None
        for position in np.flatnonzero(hit):
            if rule is None or values is None:
                texts[position].append(name)
            else:
                texts[position].append(f"{name}: {float(values[position]):.4g} ({rule.rule})")
    frame = pd.DataFrame(columns, index=np.flatnonzero(removed))
    frame.insert(0, "reasons", [REASON_SEPARATOR.join(t) for t in texts])
    return frame


def file_hashes(workspace: Workspace) -> pd.DataFrame | None:
    """id, sha256 and pdq of every original image as `prepare` recorded them, or None before `prepare`."""
    from analysis.copies.pdq import pdq_hashes
    from analysis.embedding_store import load_embeddings

    found = load_embeddings(workspace, required=False)
    if found is None or not workspace.has_images:
        return None
    status = found.status[["id", "sha256"]].astype({"id": str})
    pdq = pdq_hashes(workspace)[["id", "pdq"]].astype({"id": str})  # cached by `prepare`
    return status.merge(pdq, on="id", how="left")


def removal_list(
    workspace: Workspace,
    hashes: pd.DataFrame | None = None,
    duplicates: pd.DataFrame | None = None,
    contamination: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The Re-LAION-style removal list: id, url, image, sha256, pdq, reasons and one `filter:NAME` column per
    filter. `hashes` (from `file_hashes`) fills sha256 and pdq; without it they are empty. `duplicates` (dedup's
    keep-list: id, group_id, keep, as `dedup --out` writes it) adds the images dedup removes, each with its group
    and the copy kept ("duplicate: group 7, kept train-0012"), and the columns `duplicate_group`, `duplicate_kept`.
    `contamination` (per original row, from `ContaminationResult.training_reasons`) adds the training items that
    hold a copy of an evaluation item, with the column `contaminates` naming them."""
    extras = [
        frame
        for frame in (
            None if duplicates is None else _duplicate_columns(workspace, duplicates),
            contamination,
        )
        if frame is not None
    ]
    if not workspace.config.filtered.defined and not extras:
        raise AuditInputError("this workspace defines no filter, so nothing was removed.", fix=NO_FILTER_HINT)
    removed = ~workspace.kept
    for extra in extras:
        removed = removed | extra[[c for c in extra.columns if c.startswith("filter:")][0]].to_numpy(dtype=bool)
    reasons = removal_reasons(workspace, removed)
    rows = workspace.original.iloc[reasons.index]
    frame = pd.DataFrame(
        {
            "id": rows["id"].astype(str).to_numpy(),
            "url": _column(rows, "url"),
            "image": _column(rows, "image"),
        }
    )
    if hashes is not None:
        frame = frame.merge(hashes, on="id", how="left").fillna({"sha256": "", "pdq": ""})
    else:
        frame = frame.assign(sha256="", pdq="")
    frame = pd.concat([frame, reasons.reset_index(drop=True)], axis=1)
    for extra in extras:
        mine = extra.iloc[reasons.index].reset_index(drop=True)
        frame["reasons"] = [
            REASON_SEPARATOR.join(part for part in (before, more) if part)
            for before, more in zip(frame["reasons"], mine.pop("reason"))
        ]
        frame = pd.concat([frame, mine], axis=1)
    return frame


def _duplicate_columns(workspace: Workspace, duplicates: pd.DataFrame) -> pd.DataFrame:
    """Per original row: `filter:duplicates` (dedup removes it), `duplicate_group` (NA outside groups),
    `duplicate_kept` (the id kept in its group) and the `reason` in words for a removed one."""
    table = (
        duplicates.assign(id=duplicates["id"].astype(str))
        .set_index("id")
        .reindex(workspace.original["id"].astype(str))
        .reset_index()
    )
    keep = table["keep"].fillna(True).to_numpy(dtype=bool)
    group = table["group_id"].astype("Int64")
    keepers = table[keep & group.notna().to_numpy()].set_index("group_id")["id"]
    kept_copy = group.map(keepers).fillna("").astype(str)
    reason = [f"duplicate: group {g}, kept {k}" if not kept else "" for g, k, kept in zip(group, kept_copy, keep)]
    return pd.DataFrame(
        {"filter:duplicates": ~keep, "duplicate_group": group, "duplicate_kept": kept_copy, "reason": reason}
    )


def keep_list(workspace: Workspace) -> pd.DataFrame:
    """The kept items as img2dataset reads them: `url`, `caption` and the original id as `key` (pass
    `--save_additional_columns '["key"]'`). An item without a URL gets its image file's `file://` URI."""
    rows = workspace.original[workspace.kept]
    urls = _column(rows, "url")
    images = _column(rows, "image")
    root = workspace.config.images_root.resolve()
    missing = (urls == "") & (images != "")
    urls[missing] = [(root / image).as_uri() for image in images[missing]]
    return pd.DataFrame({"url": urls, "caption": _column(rows, "caption"), "key": rows["id"].astype(str).to_numpy()})


def write_croissant(workspace: Workspace, out: Path) -> Path:
    from analysis.cache import atomic_save_json
    from analysis.croissant import croissant

    if out.suffix.lower() != ".json":
        raise AuditInputError(
            f"cannot write a Croissant description as {out.suffix or 'a file without a suffix'}.",
            path=out,
            fix="name the file .json (Croissant is JSON-LD).",
        )
    atomic_save_json(out, croissant(workspace, written_in=out.parent))
    return out


def dedup_keep_list(workspace: Workspace, log: Log = quiet) -> pd.DataFrame:
    """dedup at its default options (verified on pixels; cached like the page's and the report's), as `dedup --out`
    writes its keep-list: id, group_id, keep."""
    from analysis.registry import ANALYSES

    dedup = next(analysis for analysis in ANALYSES if analysis.name == "dedup")
    outcome = dedup.run(workspace, dedup.settings(workspace), log)
    return outcome.keep_list(workspace.original["id"].to_numpy())


def contamination_reasons(workspace: Workspace, log: Log = quiet) -> pd.DataFrame:
    """The contamination check at its default options over the `[[eval]]` sets, as reasons per training row."""
    from analysis.registry import by_name

    contamination = by_name("contamination")
    result = contamination.run(workspace, contamination.settings(workspace), log)
    return result.training_reasons(workspace.n_original)


def export_frame(
    workspace: Workspace,
    what: str,
    duplicates: pd.DataFrame | None = None,
    contamination: pd.DataFrame | None = None,
) -> pd.DataFrame:
    if what == "removals":
        return removal_list(workspace, file_hashes(workspace), duplicates, contamination)
    if what == "keep":
        return keep_list(workspace)
    raise AuditInputError(f"unknown export {what!r}.", fix=f"choose one of: {', '.join(EXPORTS)}.")


def export_bytes(workspace: Workspace, what: str) -> bytes:
    """The export as the Report page downloads it: the lists as CSV, the Croissant description as JSON-LD (its
    manifest path relative to the workspace folder)."""
    if what == "croissant":
        import json

        from analysis.croissant import croissant

        return json.dumps(croissant(workspace), indent=1, ensure_ascii=False).encode("utf-8")
    return export_frame(workspace, what).to_csv(index=False).encode("utf-8")


def write_export(frame: pd.DataFrame, out: Path) -> Path:
    """CSV or Parquet by the file's suffix; atomic (written beside, then renamed)."""
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise AuditInputError(
            f"cannot write an export as {suffix or 'a file without a suffix'}.",
            path=out,
            fix="name the file .csv or .parquet.",
        )
    with atomic_path(out) as temporary:
        if suffix == ".csv":
            frame.to_csv(temporary, index=False)
        else:
            frame.to_parquet(temporary, index=False)
    return out


def _column(rows: pd.DataFrame, name: str) -> np.ndarray:
    if name not in rows.columns:
        return np.full(len(rows), "", dtype=object)
    return rows[name].fillna("").astype(str).to_numpy(dtype=object)
