"""The `--verify` and `--inliers` options that dedup and regurgitation share, and the automatic choice."""

from __future__ import annotations

import argparse

from analysis.copies.candidates import INLIER_THRESHOLD, VERIFY_CHOICES
from analysis.copies.feature_store import verification_unavailable
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
