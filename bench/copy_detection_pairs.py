"""How bench.copy_detection judges its pairs, the same for every method: what each pair of training images is
(a copy, a judged same-scene pair, a Caltech second shot or a false pair), in which split it lies, and the
settings chosen on the tuning split and measured on the test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.copies.candidates import MIN_COVERAGE
from bench.copy_edits import FAMILIES
from bench.duplicate_tiers import SAME_SCENE_LIST

CALTECH_CROP = "Caltech crop (Faces_easy)"  # the dataset's own second crop of a Faces photograph
EDITS = [*FAMILIES, CALTECH_CROP]


def judged_same_scene() -> dict[frozenset[str], str]:
    """The judged same-scene COCO pairs (bench/data/same_scene_pairs.csv) by the ids `build` gives distractors,
    with the split the list declares."""
    judged = pd.read_csv(SAME_SCENE_LIST)
    chosen = judged[(judged["judgement"] == "same-scene") & (judged["source"] == "COCO")]
    return {frozenset(f"d-{Path(p).stem}" for p in (a, b)): split for a, b, split in chosen[["a", "b", "split"]].values}


PAIR_KINDS = ("copy", "judged same-scene", "Caltech second shot", "false")
CANDIDATE_GRID = (0.50, 0.55, 0.60, 0.65, 0.70)
COVERAGE_GRID = (0.0, 0.025, 0.05, 0.10)
INLIER_GRID = (4, 6, 8, 10, 12, 15, 20, 30)


def pasted_background(identifier: str) -> str:
    """The background photo a 'pasted onto another photo' copy was made on (as `build` chose it), else ""."""
    position = list(FAMILIES).index("pasted onto another photo")
    if not identifier.endswith(f"-c{position:02d}"):
        return ""
    number = int(identifier[1:4])
    return f"background-{(number * 7 + position) % 50}"


class PairJudge:
    """What every pair of training images is, the same for every method: a `copy` (one photograph: an original
    and its copy, two copies of it, or two pasted copies on one background photo), a `judged same-scene` pair
    (bench/data/same_scene_pairs.csv: two shots of one moment, which no method should be blamed or credited for),
    a `Caltech second shot` (two different Caltech face photographs: one person photographed again, as
    bench.duplicate_tiers counts them) or `false`. Each image has a split; a pair belongs to the split of its two
    images, or to neither ("across")."""

    def __init__(self, frame: pd.DataFrame):
        self.ids = frame["id"].to_numpy()
        self.family = frame["family"].to_numpy()
        self.background = np.array([pasted_background(i) for i in self.ids])
        self.split = frame["split"].to_numpy()
        self.caltech = np.char.startswith(self.family.astype(str), "f")
        self.row = {identifier: row for row, identifier in enumerate(self.ids)}
        self.judged = {
            tuple(sorted(self.row[i] for i in pair)) for pair in judged_same_scene() if all(i in self.row for i in pair)
        }

    def kinds(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        family, background = self.family, self.background
        copy = ((family[a] == family[b]) & (family[a] != "")) | (
            (background[a] == background[b]) & (background[a] != "")
        )
        judged = np.array([tuple(sorted(p)) in self.judged for p in zip(a.tolist(), b.tolist())], dtype=bool)
        second_shot = self.caltech[a] & self.caltech[b] & ~copy
        return np.select([copy, judged, second_shot], PAIR_KINDS[:3], "false")

    def splits(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(self.split[a] == self.split[b], self.split[a], "across")

    def images(self, split: str) -> int:
        return int((self.split == split).sum())


def copy_table(judge: PairJudge, frame: pd.DataFrame, check, group_id: np.ndarray) -> pd.DataFrame:
    """Every (original, copy) pair with its split, its candidate cosine and inliers (-1: never a candidate), its
    coverage, and whether dedup put the copy in its original's group."""
    copies = frame[frame["edit"].isin(EDITS)]
    first = copies["family"].map(judge.row).to_numpy()  # an original's id is its family's name
    second = copies["id"].map(judge.row).to_numpy()
    n = len(judge.ids)
    codes = np.minimum(first, second) * n + np.maximum(first, second)
    position = {code: i for i, code in enumerate((check.pairs[:, 0] * n + check.pairs[:, 1]).tolist())}
    found = np.array([position.get(code, -1) for code in codes.tolist()])
    hit = found >= 0
    take = np.where(hit, found, 0)
    return copies.assign(
        cosine=np.where(hit, check.similarities[take], np.nan),
        inliers=np.where(hit, check.inliers[take], -1),
        coverage=np.where(hit, check.coverage[take], 0.0),
        grouped=(group_id[second] >= 0) & (group_id[second] == group_id[first]),
    )


def sweep(judge: PairJudge, check, kinds: np.ndarray, copies: pd.DataFrame, split: str) -> pd.DataFrame:
    """Pair recall, false pairs (per 1,000 images too) and candidates per image at every setting of the grid,
    on one split: what the defaults are chosen from (tuning) and then judged by (test). `kinds`: each candidate's
    kind (`PairJudge.kinds`), judged once for every split and setting."""
    inside = judge.splits(check.pairs[:, 0], check.pairs[:, 1]) == split
    mine = copies[copies["split"] == split]
    n_images = judge.images(split)
    rows = []
    for cosine in CANDIDATE_GRID:
        candidate = inside & (check.similarities >= cosine)
        copy_candidate = mine["cosine"].to_numpy() >= cosine
        for coverage in COVERAGE_GRID:
            for inliers in INLIER_GRID:
                verified = candidate & (check.inliers >= inliers) & (check.coverage >= coverage)
                found = copy_candidate & (mine["inliers"].to_numpy() >= inliers)
                found &= mine["coverage"].to_numpy() >= coverage
                false = int((verified & (kinds == "false")).sum())
                true = int((verified & (kinds == "copy")).sum())
                rows.append(
                    {
                        "cosine": cosine,
                        "coverage": coverage,
                        "inliers": inliers,
                        "pair_recall": float(found.mean()),
                        "false_pairs": false,
                        "false_per_1000_images": 1000 * false / n_images,
                        "precision": true / max(1, true + false),
                        "candidates_per_image": float(candidate.sum() / n_images),
                    }
                )
    return pd.DataFrame(rows)


def choose(tuning: pd.DataFrame) -> dict:
    """The rule, declared before the test split is read: no false pair on the tuning split; among those settings
    the highest pair recall; a tie goes to the cheaper and stricter setting (higher cosine: fewer candidates to
    verify, then more inliers, then more coverage)."""
    clean = tuning[tuning["false_pairs"] == 0]
    best = clean.sort_values(
        ["pair_recall", "cosine", "inliers", "coverage"], ascending=[False, False, False, False]
    ).iloc[0]
    return {"cosine": float(best["cosine"]), "coverage": float(best["coverage"]), "inliers": int(best["inliers"])}


def split_measures(judge: PairJudge, check, kinds: np.ndarray, copies: pd.DataFrame, split: str) -> dict:
    """The shipped two-stage detector on one split: recall per family, every verified pair by kind, the false
    pairs listed."""
    inside = judge.splits(check.pairs[:, 0], check.pairs[:, 1]) == split
    verified = check.verified & inside
    threshold = check.inlier_threshold
    mine = copies[copies["split"] == split].assign(
        verified=lambda c: (c["inliers"] >= threshold) & (c["coverage"] >= MIN_COVERAGE)
    )
    per_family = (
        mine.groupby("edit", sort=False)
        .agg(
            copies=("id", "size"),
            candidate_recall=("inliers", lambda v: float((v >= 0).mean())),
            pair_recall=("verified", "mean"),
            group_recall=("grouped", "mean"),
        )
        .reset_index()
    )
    counts = {kind: int((verified & (kinds == kind)).sum()) for kind in PAIR_KINDS}
    false = verified & (kinds == "false")
    return {
        "images": judge.images(split),
        "copies": int(len(mine)),
        "pair_recall": float(mine["verified"].mean()),
        "group_recall": float(mine["grouped"].mean()),
        "verified_by_kind": counts,
        "precision": counts["copy"] / max(1, counts["copy"] + counts["false"]),
        "false_per_1000_images": 1000 * counts["false"] / judge.images(split),
        "candidates": int(inside.sum()),
        "per_family": per_family.to_dict("records"),
        "false_pairs": [
            {"a": str(judge.ids[a]), "b": str(judge.ids[b]), "cosine": round(float(s), 3), "inliers": int(n)}
            for (a, b), s, n in zip(check.pairs[false], check.similarities[false], check.inliers[false])
        ],
    }


def cosine_baseline(found, judge: PairJudge, copies: pd.DataFrame) -> dict:
    """Embedding cosine alone (no verification), judged exactly as the two-stage detector: every pair of images
    inside a split at or above the threshold, the same kinds excused. Thresholds: the old default 0.90, and the
    cosine that reaches 95% pair recall on the tuning split's copies, applied frozen to the test split."""
    originals = copies["family"].map(judge.row).to_numpy()  # an original's id is its family's name
    cosines = (found.take(originals) * found.take(copies["id"].map(judge.row).to_numpy())).sum(axis=1)
    copies = copies.assign(pair_cosine=cosines)
    at_95 = float(np.quantile(copies.loc[copies["split"] == "tuning", "pair_cosine"], 0.05))
    out: dict[str, dict] = {}
    for split in ("tuning", "test"):
        rows = np.flatnonzero(judge.split == split)
        vectors = found.take(rows)
        mine = copies[copies["split"] == split]
        for name, threshold in (("old default 0.90", 0.90), ("95% recall on tuning", at_95)):
            a, b = [], []
            for start in range(0, len(rows), 1024):
                block = vectors[start : start + 1024] @ vectors.T
                i, j = np.nonzero(block >= threshold)
                keep = j > i + start
                a.append(rows[i[keep] + start])
                b.append(rows[j[keep]])
            a, b = np.concatenate(a), np.concatenate(b)
            kinds = judge.kinds(a, b)
            counts = {kind: int((kinds == kind).sum()) for kind in PAIR_KINDS}
            out.setdefault(name, {"cosine": round(threshold, 3)})[split] = {
                "pair_recall": float((mine["pair_cosine"] >= threshold).mean()),
                "pairs_by_kind": counts,
                "precision": counts["copy"] / max(1, counts["copy"] + counts["false"]),
                "false_per_1000_images": 1000 * counts["false"] / len(rows),
            }
    return out
