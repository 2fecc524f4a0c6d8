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
    """The counted image matches with both images' paths and whether the training image was removed, strongest
    first."""
    counted = one.images[one.images["counted"]].sort_values(["inliers", "cosine"], ascending=False)
    rows = counted["train_row"].to_numpy(dtype=int)
    return counted.assign(
        eval_image=counted["eval_id"].map(eval_images),
        train_image=[training_image(workspace, row) for row in rows],
        train_removed=~workspace.kept[rows],
    )


def caption_pairs(workspace: Workspace, one: SetContamination, eval_captions: dict[str, str]) -> pd.DataFrame:
    """Each caption match with both captions, for a reader to judge."""
    captions = one.captions
    training = workspace.original["caption"].to_numpy() if "caption" in workspace.original else None
    return pd.DataFrame(
        {
            "evaluation id": captions["eval_id"].astype(str),
            "evaluation caption": captions["eval_id"].map(eval_captions),
            "training id": captions["train_id"].astype(str),
            "training caption": [
                "" if training is None else str(training[row]) for row in captions["train_row"].astype(int)
            ],
            "kind": captions["kind"],
            "similarity": captions["similarity"].round(3),
            "in filtered set": workspace.kept[captions["train_row"].to_numpy(dtype=int)],
        }
    )


def match_tables(workspace: Workspace, result: ContaminationResult) -> list[tuple[str, pd.DataFrame]]:
    tables = []
    for one in result.sets:
        frame = one.items
        images = one.images[one.images["counted"]]
        if len(images):
            tables.append(
                (
                    f"{one.name}: image matches (first {min(ROWS_PER_TABLE, len(images))} of {len(images):,})",
                    images.head(ROWS_PER_TABLE)
                    .assign(in_filtered_set=workspace.kept[images.head(ROWS_PER_TABLE)["train_row"].to_numpy(int)])
                    .drop(columns=["train_row", "counted", "coverage"]),
                )
            )
        if len(one.captions):
            pairs = caption_pairs(workspace, one, dict(zip(frame["id"], frame["caption"])))
            tables.append(
                (
                    f"{one.name}: caption matches (first {min(ROWS_PER_TABLE, len(pairs))} of {len(pairs):,})",
                    pairs.head(ROWS_PER_TABLE),
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
