"""The `--verify` and `--inliers` options that dedup and regurgitation share, and the automatic choice."""

from __future__ import annotations

import argparse

from analysis.copies.candidates import INLIER_THRESHOLD, VERIFY_CHOICES
from analysis.copies.feature_store import verification_unavailable
from analysis.copies.tiers import GROUPED_TIERS, TIERS
from analysis.embedding_store import EmbeddingSet
from analysis.errors import AuditInputError
from analysis.workspace import Workspace


def add_verification_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--verify",
        choices=VERIFY_CHOICES,
        help="second stage on pixels (default: local-features when the images are there, else none); with it, "
        "--threshold is the cosine of a candidate",
    )
    parser.add_argument(
        "--inliers",
        type=int,
        help=f"local-feature inliers that verify a candidate (default {INLIER_THRESHOLD}, docs/analyses.md)",
    )
    parser.add_argument(
        "--tiers",
        help=f"kinds of verified pair acted on, comma-separated from {', '.join(TIERS)} (default "
        f"{','.join(GROUPED_TIERS)}: a second photo of the same scene is shown, not grouped or flagged)",
    )


def chosen_tiers(asked: str | None) -> tuple[str, ...]:
    """The tiers of `--tiers` (byte-identical files are always acted on: nothing is left to verify in them)."""
    if asked is None:
        return GROUPED_TIERS
    names = tuple(dict.fromkeys(name.strip() for name in asked.split(",") if name.strip()))
    unknown = [name for name in names if name not in TIERS]
    if unknown or not names:
        raise AuditInputError(
            f"--tiers {asked!r}: unknown tier {', '.join(map(repr, unknown)) or '(none given)'}.",
            fix=f"use a comma-separated list of {', '.join(TIERS)}, e.g. --tiers copy,same-scene.",
        )
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
