"""Matching a dataset against a list of PDQ hashes of known-bad images, the way trust-and-safety teams find
known abusive content (and how the LAION-5B audit found it, with PhotoDNA). Matches become a filter of the
workspace (`[filtered] hash_matches`): Removals shows them, blurred like every removal, and `check` counts them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.cache import atomic_save_parquet, atomic_write_bytes
from analysis.copies.pdq import MATCH_DISTANCE, QUALITY_FLOOR, as_bits, pdq_hashes, within
from analysis.errors import AuditInputError
from analysis.workspace import CONFIG_NAME, Workspace

MATCHES_FILE = "hash-matches.parquet"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def read_hash_list(path: Path) -> pd.DataFrame:
    """pdq (64 hex digits, lower case) and label of every row of a hash list: a CSV with a `pdq` (or `hash`)
    column and an optional `label`, or a text file with one hash per line."""
    if not path.is_file():
        raise AuditInputError("hash list not found.", path=path, fix="give the path of a CSV with a pdq column.")
    if path.suffix.lower() in (".txt", ".pdq"):
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
        frame = pd.DataFrame({"pdq": [line for line in lines if line and not line.startswith("#")]})
    else:
        try:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise AuditInputError(
                f"cannot be read as CSV ({str(exc).splitlines()[0]}).",
                path=path,
                fix="write a CSV with a header row and a pdq column.",
            ) from None
        column = next((c for c in frame.columns if c.strip().lower() in ("pdq", "hash")), None)
        if column is None:
            raise AuditInputError(
                f"no pdq column (columns: {', '.join(map(str, frame.columns)) or 'none'}).",
                path=path,
                fix="name the column of 64-hex-digit PDQ hashes 'pdq'.",
            )
        frame = frame.rename(columns={column: "pdq"})
    if frame.empty:
        raise AuditInputError("the hash list is empty.", path=path, fix="add at least one PDQ hash.")
    frame["pdq"] = frame["pdq"].astype(str).str.strip()
    bad = ~frame["pdq"].str.match(_HEX64)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise AuditInputError(
            f"row {row + 1}: {frame['pdq'].iloc[row][:80]!r} is not a PDQ hash (64 hex digits).",
            path=path,
            fix=f"fix or remove the {int(bad.sum())} malformed row(s).",
        )
    frame["pdq"] = frame["pdq"].str.lower()
    if "label" not in frame.columns:
        frame["label"] = ""
    return frame[["pdq", "label"]].reset_index(drop=True)


def match_hash_list(
    workspace: Workspace, hash_list: pd.DataFrame, *, max_distance: int = MATCH_DISTANCE, workers: int = 2, log=None
) -> pd.DataFrame:
    """id, distance, pdq, label of every original image within `max_distance` of a listed hash (the closest
    listed hash per image). Images whose PDQ quality is below the floor (flat, featureless) are not matched."""
    hashes = pdq_hashes(workspace, "original", workers=workers, log=log)
    usable = (hashes["pdq"] != "") & (hashes["quality"] >= QUALITY_FLOOR)
    rows = np.flatnonzero(usable.to_numpy())
    query, listed, distance = within(as_bits(hashes["pdq"].iloc[rows]), as_bits(hash_list["pdq"]), max_distance)
    found = pd.DataFrame({"row": rows[query], "listed": listed, "distance": distance})
    found = found.sort_values(["row", "distance"]).drop_duplicates("row")
    return pd.DataFrame(
        {
            "id": workspace.original["id"].to_numpy()[found["row"]],
            "distance": found["distance"].to_numpy(),
            "pdq": hashes["pdq"].to_numpy()[found["row"]],
            "label": hash_list["label"].to_numpy()[found["listed"]],
        }
    ).reset_index(drop=True)


def register_matches(workspace: Workspace, matches: pd.DataFrame) -> Path:
    """Write the matches into the workspace and name them in audit.toml as a filter (`[filtered] hash_matches`)."""
    import tomli_w
    import tomllib

    path = workspace.config.root / MATCHES_FILE
    atomic_save_parquet(path, matches)
    config_path = workspace.config.root / CONFIG_NAME
    body = tomllib.loads(config_path.read_text())
    body.setdefault("filtered", {})["hash_matches"] = MATCHES_FILE
    atomic_write_bytes(config_path, tomli_w.dumps(body).encode("utf-8"))
    return path
