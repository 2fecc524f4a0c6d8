"""The verification parameters that dedup, regurgitation and contamination share (`--verify`, `--inliers`,
`--tiers`), and the automatic choice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analysis.copies.candidates import INLIER_THRESHOLD, VERIFY_CHOICES
from analysis.copies.feature_store import verification_unavailable
from analysis.copies.tiers import GROUPED_TIERS, TIERS
from analysis.distributed import scheduler_setting
from analysis.embedding_store import EmbeddingSet
from analysis.errors import AuditInputError
from analysis.params import ParamError, Params, setting
from analysis.workspace import Workspace


def verify_setting() -> Any:
    return setting(
        help="second stage on pixels (default: local-features when the images are there, else none); with it, "
        "--threshold is the cosine of a candidate",
        choices=tuple(VERIFY_CHOICES),
    )


def inliers_setting() -> Any:
    return setting(
        help=f"local-feature inliers that verify a candidate (default {INLIER_THRESHOLD}, docs/analyses.md)",
        minimum=1,
    )


def tiers_setting() -> Any:
    return setting(
        help=f"kinds of verified pair acted on, comma-separated from {', '.join(TIERS)} (default "
        f"{','.join(GROUPED_TIERS)}: a second photo of the same scene is shown, not grouped or flagged)",
    )


@dataclass(frozen=True)
class VerifiedSearchParams(Params):
    """The parameters every search verified on pixels shares (dedup, regurgitation, contamination), and where it
    runs; each analysis adds its own below them."""

    verify: str | None = verify_setting()
    inliers: int | None = inliers_setting()
    tiers: str | None = tiers_setting()
    scheduler: str | None = scheduler_setting()

    def check(self) -> None:
        check_tiers(self.tiers)


def check_tiers(asked: str | None) -> None:
    """A `tiers` parameter that names no known tier is refused when the parameters are built."""
    if asked is None:
        return
    names = _tier_names(asked)
    unknown = [name for name in names if name not in TIERS]
    if unknown or not names:
        raise ParamError(
            "tiers",
            f"{asked!r} names an unknown tier {', '.join(map(repr, unknown))}" if unknown else "names no tier",
            fix=f"use a comma-separated list of {', '.join(TIERS)}, e.g. copy,same-scene.",
        )


def _tier_names(asked: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name.strip() for name in asked.split(",") if name.strip()))


def chosen_tiers(asked: str | None) -> tuple[str, ...]:
    """The tiers of `--tiers` (byte-identical files are always acted on: nothing is left to verify in them)."""
    if asked is None:
        return GROUPED_TIERS
    check_tiers(asked)
    names = _tier_names(asked)
    return tuple(tier for tier in TIERS if tier in names or tier == "byte-identical")


def chosen_verification(workspace: Workspace, found: EmbeddingSet, asked: str | None) -> tuple[str, str | None]:
    """(method, why verification is off when it was not asked off), for `--verify` as given."""
    reason = verification_unavailable(workspace, found)
    if asked == "local-features" and reason:
        raise AuditInputError(
            f"--verify local-features needs the images: {reason}.",
            path=workspace.config.root,
            fix="point [original] images_root at the image files, or use --verify none.",
        )
    if asked == "none":
        return "none", None
    return ("none", reason) if reason else ("local-features", None)
