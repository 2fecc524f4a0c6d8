"""The parameters of `removals`, declared once (analysis.params): its CLI flags and audit.toml `[removals]`."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.params import Params, setting


@dataclass(frozen=True)
class RemovalsParams(Params):
    terms: str | None = setting(help="comma-separated words (default: the workspace's default terms)")
