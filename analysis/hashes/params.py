"""The parameters of `match-hashes`, declared once (analysis.params): its CLI flags and audit.toml
`[match-hashes]`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analysis.copies.pdq import MATCH_DISTANCE
from analysis.params import Params, setting


@dataclass(frozen=True)
class HashParams(Params):
    list: Path | None = setting(
        help="CSV with a pdq column (64 hex digits) and optional label",
        in_toml=False,  # matching a list registers its matches as a filter: an action, not a setting
    )
    max_distance: int = setting(
        MATCH_DISTANCE,
        help=f"largest Hamming distance of a match (default {MATCH_DISTANCE}, PDQ's threshold)",
        minimum=0,
    )
