"""The parameters of `regurgitation`, declared once (analysis.params): its CLI flags, audit.toml `[regurgitation]`
and cache key."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.copies.verification_options import VerifiedSearchParams
from analysis.params import setting


@dataclass(frozen=True)
class RegurgitationParams(VerifiedSearchParams):
    threshold: float | None = setting(help="cosine similarity that flags a likely copy (default per embedder)")
    k: int = setting(5, help="nearest training images kept per sample (default 5)", minimum=1)
