"""The parameters of `contamination`, declared once (analysis.params): its CLI flags, audit.toml
`[contamination]` and cache key."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.copies.verification_options import VerifiedSearchParams
from analysis.params import setting


@dataclass(frozen=True)
class ContaminationParams(VerifiedSearchParams):
    eval: tuple[str, ...] | None = setting(
        help="an evaluation set (id, image relative to the manifest's folder, caption); repeat for several. "
        "Default: the [[eval]] tables of audit.toml",
        metavar="NAME=MANIFEST",
        in_toml=False,  # audit.toml declares the sets as [[eval]] tables
    )
    threshold: float | None = setting(
        help="cosine of a candidate (verified on pixels), or of a match without verification (default per "
        "embedder, as for regurgitation)"
    )
    k: int = setting(5, help="nearest training images searched per image (default 5)", minimum=1)
