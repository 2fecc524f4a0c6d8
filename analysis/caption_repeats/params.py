"""The parameters of `caption-repeats`, declared once (analysis.params): its CLI flags, audit.toml
`[caption-repeats]` and cache key."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.params import Params, setting


@dataclass(frozen=True)
class RepeatsParams(Params):
    min_images: int = setting(
        2, help="images that must carry a caption for it to count as repeated (default 2: shared at all)", minimum=2
    )
    top: int = setting(20, help="most repeated captions listed (default 20)", minimum=1)
