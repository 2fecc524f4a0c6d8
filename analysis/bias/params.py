"""The parameters of `bias`, declared once (analysis.params): its CLI flags, audit.toml `[bias]` and cache key."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.bias.reweight import FeatureKind
from analysis.distributed import scheduler_setting
from analysis.params import ParamError, Params, setting


@dataclass(frozen=True)
class BiasParams(Params):
    terms: str | None = setting(help="comma-separated words, e.g. woman,man (default: the workspace's terms)")
    groups: str | None = setting(help="comma-separated group names from audit.toml (default: all)")
    reweight: bool = setting(False, help="fit the DALL·E 2 reweighting and report reweighted shifts")
    reweight_features: FeatureKind | None = setting(
        help="classifier features (default: both when embeddings are cached, else captions)"
    )
    C: float = setting(1.0, help="inverse L2 strength of the weak classifier (default 1.0)")
    clip: float = setting(20.0, help="largest weight, relative to the mean (default 20)", minimum=1)
    scheduler: str | None = scheduler_setting()

    def check(self) -> None:
        if self.C <= 0:
            raise ParamError("C", f"must be above 0 (an inverse regularisation strength), not {self.C!r}")
