"""The parameters of `dedup`, declared once (analysis.params): its CLI flags, audit.toml `[dedup]` and cache key."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.copies.verification_options import VerifiedSearchParams
from analysis.dedup.compute import DEFAULT_KEEP_RULE, DEFAULT_R, KeepRule
from analysis.params import setting


@dataclass(frozen=True)
class DedupParams(VerifiedSearchParams):
    threshold: float | None = setting(help="cosine similarity for a duplicate pair (default per embedder)")
    clusters: int | None = setting(
        help="k-means clusters K (default ≈ n / 1,000: clusters of ~1,000 images)", minimum=1
    )
    clusterings: int = setting(
        DEFAULT_R, help=f"independent clusterings R (default {DEFAULT_R}, as DALL·E 2)", minimum=1
    )
    exact: bool = setting(False, help="also run exact all-pairs search and report recall")
    estimate_recall: int = setting(
        0,
        help="estimate recall from all pairs of S random images (for sets too large for --exact)",
        metavar="S",
        minimum=0,
    )
    keep: KeepRule = setting(
        DEFAULT_KEEP_RULE, help="which image of a group is kept (default: closest to the group centre)"
    )
