"""What the report and the page show of each match: the pair side by side with its matched keypoints (the training
image blurred when the filters removed it), and tables that put the two captions of a caption match together."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.contamination.compute import ContaminationResult, SetContamination
from analysis.contamination.eval_sets import absolute_image
from analysis.workspace import Workspace

EVIDENCE_PER_SET = 4
ROWS_PER_TABLE = 20


def training_image(workspace: Workspace, row: int) -> str:
    """The absolute path of a training image (the evaluation side is absolute already)."""
    image = str(workspace.original["image"].iloc[row]) if "image" in workspace.original else ""
    return absolute_image(workspace.config.images_root, image)


def image_pairs(workspace: Workspace, one: SetContamination, eval_images: dict[str, str]) -> pd.DataFrame:
    """One row per contaminated evaluation image: its strongest training copy with both images' paths, whether that
    copy was removed by the filters, and the ids of its other copies (`other_copies`); strongest first. A reviewer
    judges an evaluation item once, not once per copy of a duplicated training image."""
    counted = one.images[one.images["counted"]].sort_values(["inliers", "cosine"], ascending=False)
    others = counted.groupby("eval_id", sort=False)["train_id"].agg(lambda ids: [str(i) for i in ids][1:])
    strongest = counted.drop_duplicates("eval_id")
    rows = strongest["train_row"].to_numpy(dtype=int)
    return strongest.assign(
        eval_image=strongest["eval_id"].map(eval_images),
        train_image=[training_image(workspace, row) for row in rows],
        train_removed=~workspace.kept[rows],
        other_copies=strongest["eval_id"].map(others),
    )


def caption_pairs(workspace: Workspace, one: SetContamination, eval_captions: dict[str, str]) -> pd.DataFrame:
    """One row per evaluation caption found: its closest training copy beside it, the kind of match, and how many
    training items carry a copy (a templated caption can be in hundreds), of them how many the filters kept."""
    captions = one.captions.sort_values(["eval_id", "similarity"], ascending=[True, False])
    training = workspace.original["caption"].to_numpy() if "caption" in workspace.original else None
    kept = workspace.kept[captions["train_row"].to_numpy(dtype=int)]
    counts = (
        captions.assign(kept=kept).groupby("eval_id", sort=False).agg(copies=("train_id", "size"), kept=("kept", "sum"))
    )
    closest = captions.drop_duplicates("eval_id")
    return pd.DataFrame(
        {
            "evaluation id": closest["eval_id"].astype(str).to_numpy(),
            "evaluation caption": closest["eval_id"].map(eval_captions).to_numpy(),
            "closest training caption": [
                "" if training is None else str(training[row]) for row in closest["train_row"].astype(int)
            ],
            "training id": closest["train_id"].astype(str).to_numpy(),
            "kind": closest["kind"].to_numpy(),
            "similarity": closest["similarity"].round(3).to_numpy(),
            "training copies": closest["eval_id"].map(counts["copies"]).astype(int).to_numpy(),
            "in filtered set": closest["eval_id"].map(counts["kept"]).astype(int).to_numpy(),
        }
    )


def match_tables(workspace: Workspace, result: ContaminationResult) -> list[tuple[str, pd.DataFrame]]:
    tables = []
    for one in result.sets:
        frame = one.items
        pairs = image_pairs(workspace, one, dict(zip(frame["id"], frame["image"])))
        if len(pairs):
            kept = one.images[one.images["counted"]].assign(
                kept=lambda f: workspace.kept[f["train_row"].to_numpy(dtype=int)]
            )
            kept_copies = kept.groupby("eval_id")["kept"].sum()
            table = pd.DataFrame(
                {
                    "evaluation id": pairs["eval_id"].astype(str).to_numpy(),
                    "closest training copy": pairs["train_id"].astype(str).to_numpy(),
                    "cosine": pairs["cosine"].round(3).to_numpy(),
                    "inliers": pairs["inliers"].to_numpy(),
                    "tier": pairs["tier"].to_numpy(),
                    "training copies": (pairs["other_copies"].map(len) + 1).to_numpy(),
                    "in filtered set": pairs["eval_id"].map(kept_copies).astype(int).to_numpy(),
                }
            )
            tables.append(
                (
                    f"{one.name}: evaluation images with a training copy (first {min(ROWS_PER_TABLE, len(table))} of "
                    f"{len(table):,})",
                    table.head(ROWS_PER_TABLE),
                )
            )
        if len(one.captions):
            captions = caption_pairs(workspace, one, dict(zip(frame["id"], frame["caption"])))
            tables.append(
                (
                    f"{one.name}: evaluation captions in the training set (first {min(ROWS_PER_TABLE, len(captions))} "
                    f"of {len(captions):,})",
                    captions.head(ROWS_PER_TABLE),
                )
            )
    return tables


def match_evidence(workspace: Workspace, result: ContaminationResult) -> list[tuple[str, bytes]]:
    """The strongest image matches of each set, drawn with their matched keypoints."""
    from analysis.copies.evidence import pair_evidence

    shown = []
    for one in result.sets:
        frame = one.items
        pairs = image_pairs(workspace, one, dict(zip(frame["id"], frame["image"]))).head(EVIDENCE_PER_SET)
        for pair in pairs.itertuples():
            evidence = pair_evidence(Path("/"), pair.eval_image, pair.train_image, blur_b=bool(pair.train_removed))
            shown.append(
                (
                    f"{one.name}: {pair.eval_id} ↔ {pair.train_id}: {evidence.inliers} matched keypoints"
                    + (" (mirrored)" if evidence.mirrored else "")
                    + (" · training image blurred: removed by a filter" if pair.train_removed else ""),
                    evidence.png,
                )
            )
    return shown
