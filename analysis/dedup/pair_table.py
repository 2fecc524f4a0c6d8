"""`dedup --pairs-out`: every candidate pair with its evidence and tier (shared/DESIGN.md §5), so that a user can
audit the verification or act on another tier without running it again."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.dedup.compute import DedupResult

COLUMNS = ["id_a", "id_b", "cosine", "inliers", "coverage", "mirrored", "verified", "tier"]


def pair_table(result: DedupResult, ids: np.ndarray, digests: np.ndarray) -> pd.DataFrame:
    """One row per candidate pair, most similar first. With verification: every candidate, its inliers, coverage
    and mirror flag, whether it verified and its tier (null when unverified), plus byte-identical files the
    embedding search did not offer. Byte-identical files (same sha256 in `digests`) are `verified` by their bytes
    whatever their inliers: a flat image has few keypoints, and dedup groups them. Without verification: the pairs
    found by cosine alone, with null evidence and no tier."""
    check = result.verification
    if check is None:
        pairs = result.pairs.reshape(-1, 2)
        similarities = result.similarities if result.similarities is not None else np.full(len(pairs), np.nan)
        frame = pd.DataFrame(
            {
                "a": pairs[:, 0],
                "b": pairs[:, 1],
                "cosine": similarities.astype(np.float32),
                "inliers": pd.array([None] * len(pairs), dtype="Int32"),
                "coverage": np.full(len(pairs), np.nan, dtype=np.float32),
                "mirrored": pd.array([None] * len(pairs), dtype="boolean"),
                "verified": np.zeros(len(pairs), dtype=bool),
                "tier": pd.array([None] * len(pairs), dtype="string"),
            }
        )
    else:
        tiers = check.tiers.copy() if check.tiers is not None else np.full(len(check.pairs), None, dtype=object)
        first, second = digests[check.pairs[:, 0]], digests[check.pairs[:, 1]]
        identical = (first == second) & (first != "")
        tiers[identical] = "byte-identical"
        frame = pd.DataFrame(
            {
                "a": check.pairs[:, 0],
                "b": check.pairs[:, 1],
                "cosine": check.similarities.astype(np.float32),
                "inliers": pd.array(check.inliers, dtype="Int32"),
                "coverage": check.coverage.astype(np.float32),
                "mirrored": pd.array(check.mirrored, dtype="boolean"),
                "verified": check.verified | identical,
                "tier": pd.array(tiers, dtype="string"),
            }
        )
        # dedup's pairs are the verified candidates it acts on plus byte-identical files: those not offered are the
        # latter
        offered = set(zip(frame["a"].tolist(), frame["b"].tolist()))
        identical = [(a, b, 1.0) for a, b in result.pairs.tolist() if (a, b) not in offered]
        if identical:
            extra = pd.DataFrame(identical, columns=["a", "b", "cosine"]).assign(
                inliers=pd.array([None] * len(identical), dtype="Int32"),
                coverage=np.float32(np.nan),
                mirrored=pd.array([None] * len(identical), dtype="boolean"),
                verified=True,
                tier=pd.array(["byte-identical"] * len(identical), dtype="string"),
            )
            frame = pd.concat([frame, extra.astype({"cosine": np.float32})], ignore_index=True)
    frame = frame.sort_values(["cosine", "a", "b"], ascending=[False, True, True], kind="stable")
    frame.insert(0, "id_a", ids[frame["a"].to_numpy()].astype(str))
    frame.insert(1, "id_b", ids[frame["b"].to_numpy()].astype(str))
    return frame[COLUMNS].reset_index(drop=True)
