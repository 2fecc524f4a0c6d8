"""The parameters of `review-queue`, declared once (analysis.params): its CLI flags and audit.toml
`[review-queue]` (the review process's own settings stay in `[review]`)."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.params import Params, setting
from analysis.review.queues import DEFAULT_BANDS, Strata


@dataclass(frozen=True)
class QueueParams(Params):
    # The kinds are the reviewed analyses the registry wires, so the review queue gives them as the flag's choices.
    kind: str | None = setting(help="what is reviewed (default: the first kind)")
    filter: str | None = setting(help="the filter whose removals to sample (default: all removals)")
    n: int | None = setting(help="items in the queue (without it: list the queues and estimates)", minimum=1)
    strata: Strata = setting("score-band", help="default: score-band")
    bands: int = setting(DEFAULT_BANDS, help=f"score bands (default {DEFAULT_BANDS})", minimum=1)
    seed: int = setting(0, help="random seed (default 0); a new seed, a new sample")
