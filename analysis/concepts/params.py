"""The parameters of `concepts`, declared once (analysis.params): its CLI flags, audit.toml `[concepts]` and
cache key."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.concepts.probes import DEFAULT_PROBES
from analysis.distributed import scheduler_setting
from analysis.params import Params, setting


@dataclass(frozen=True)
class ConceptsParams(Params):
    clusters: int | None = setting(
        help="k-means clusters K (default √(n/2), at most n/50: clusters big enough to judge)", minimum=2
    )
    probe: tuple[str, ...] | None = setting(
        help=f"a text probe (repeatable; default: {' / '.join(DEFAULT_PROBES)}); needs an open_clip embedder",
        metavar="TEXT",
    )
    no_map: bool = setting(False, help="skip computing the 2-D map (UMAP)")
    scheduler: str | None = scheduler_setting()
