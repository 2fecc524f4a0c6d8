"""Active learning against random labelling, with a simulated labeller answering from COCO's object annotations.

The pool is every COCO-mini photo that carries object annotations (79 real photos in ../shared/real; no larger
annotated set is available offline), embedded with the workspace's default embedder. The concept is a COCO
supercategory ("animal" by default). Both strategies start from the same seed round (images whose caption names
an animal, half of them, plus random images) and then label rounds of `--round` images: active learning proposes
with the tool's own `analysis.filters.rounds.propose` (random slice, uncertain, missed-positive and positive
neighbours), random labelling draws uniformly. After each round the tool's model is fitted (`analysis.filters.model`)
and measured: cv AUC on the labels, the threshold for 90% recall on the labelled positives
(`analysis.filters.measure`), and, against the full ground truth, the recall and AUC over the whole pool.

    python -m bench.filter_builder [--concept animal] [--round 8] [--budget 56] [--replicates 40] [--write]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from analysis.embedding_store import load_embeddings
from analysis.embeddings import prepare
from analysis.filters import measure, model, rounds
from analysis.workspace import init_workspace, load_workspace
from bench.common import REAL, emit, replace_section, run_record

CONCEPT_WORDS = {
    "animal": "dog,dogs,cat,cats,horse,horses,bird,birds,animal,animals,elephant,elephants,zebra,zebras,giraffe,"
    "giraffes,bear,bears,sheep,cow,cows",
    "vehicle": "car,cars,bus,truck,train,motorcycle,bike,bicycle,airplane,plane,boat,vehicle,traffic",
}


def coco_pool(root: Path, concept: str) -> tuple[Path, np.ndarray, np.ndarray]:
    """A workspace of the annotated COCO-mini photos; truth per row; caption-word hits per row."""
    source = REAL / "coco-mini"
    captions = json.loads((source / "captions_val2017.json").read_text())
    instances = json.loads((source / "instances_val2017.json").read_text())
    supercategory = {c["id"]: c["supercategory"] for c in instances["categories"]}
    objects: dict[int, set[str]] = {}
    for annotation in instances["annotations"]:
        objects.setdefault(annotation["image_id"], set()).add(supercategory[annotation["category_id"]])
    first: dict[int, str] = {}
    for annotation in sorted(captions["annotations"], key=lambda a: a["id"]):
        first.setdefault(annotation["image_id"], annotation["caption"].strip())
    (root / "images").mkdir(parents=True)
    rows = []
    for image_id in sorted(objects):
        name = f"{image_id:012d}.jpg"
        shutil.copy(source / "images" / name, root / "images" / name)
        rows.append(
            {
                "id": str(image_id),
                "image": name,
                "caption": first.get(image_id, ""),
                "concept": concept in objects[image_id],
            }
        )
    frame = pd.DataFrame(rows)
    frame.drop(columns="concept").to_parquet(root / "original.parquet")
    init_workspace(root, original=root / "original.parquet", images_root=root / "images", name="COCO annotated")
    words = set(CONCEPT_WORDS[concept].split(","))
    hits = frame["caption"].str.lower().str.findall(r"[a-z]+").map(lambda ws: bool(words & set(ws))).to_numpy()
    return root, frame["concept"].to_numpy(), hits


def slice_coverage(
    slice_rows: np.ndarray, scores: np.ndarray, truth: np.ndarray, threshold: float, held_out: np.ndarray
) -> dict:
    """Whether the random slice's 95% intervals (what the tool reports) hold the filter's true precision and recall
    over the images it was not trained on (the population the slice is drawn from)."""
    if len(slice_rows) == 0:
        return {}
    _, precision_ci, _, recall_ci = measure.slice_estimates(scores[slice_rows], truth[slice_rows], threshold)
    flagged = (scores >= threshold) & held_out
    positives = truth & held_out
    covered: dict = {"slice": len(slice_rows)}
    if precision_ci is not None and flagged.any():
        precision = (flagged & truth).sum() / flagged.sum()
        covered["precision_covered"] = float(precision_ci[0] <= precision <= precision_ci[1])
    if recall_ci is not None and positives.any():
        recall = (flagged & positives).sum() / positives.sum()
        covered["recall_covered"] = float(recall_ci[0] <= recall <= recall_ci[1])
    return covered


def simulate(
    features: model.Features, truth: np.ndarray, hits: np.ndarray, strategy: str, args, seed: int
) -> list[dict]:
    rng = np.random.default_rng(seed)
    n = features.n_rows
    seed_hits = rng.choice(np.flatnonzero(hits), size=min(args.round // 2, int(hits.sum())), replace=False)
    rest = np.setdiff1d(np.arange(n), seed_hits)
    labelled = np.zeros(n, dtype=bool)
    labelled[seed_hits] = True
    labelled[rng.choice(rest, size=args.round - len(seed_hits), replace=False)] = True
    in_slice = np.zeros(n, dtype=bool)
    curve = []
    number = 0
    while True:
        rows = np.flatnonzero(labelled & ~in_slice)  # the random slice is held out of training, as in the tool
        y = truth[rows]
        record = {
            "strategy": strategy,
            "replicate": seed,
            "round": number,
            "labels": int(labelled.sum()),
            "positives": int(truth[labelled].sum()),
        }
        if model.can_fit(y):
            x = features.rows(rows)
            oof = model.cross_validated(x, y, features, args.c)
            scores = model.score_all(model.fit(x, y, features, args.c), features)
            slice_rows = np.flatnonzero(in_slice)
            slice_positive = scores[slice_rows][truth[slice_rows]]
            use_slice = len(slice_positive) >= measure.MIN_SLICE_POSITIVES
            threshold = measure.threshold_for_recall(slice_positive if use_slice else oof[y], 0.9)
            flagged = scores >= threshold
            record |= {
                "cv_auc": float(roc_auc_score(y, oof)),
                "true_auc": float(roc_auc_score(truth, scores)),
                "true_recall": float((flagged & truth).sum() / truth.sum()),
                "true_precision": float((flagged & truth).sum() / max(int(flagged.sum()), 1)),
                "flagged": int(flagged.sum()),
            }
            record |= slice_coverage(slice_rows, scores, truth, threshold, ~(labelled & ~in_slice))
        else:
            scores = oof = None
        curve.append(record)
        if number * args.round + 2 * args.round > min(args.budget, n):
            return curve
        number += 1
        if strategy == "random":
            chosen = rng.choice(np.flatnonzero(~labelled), size=args.round, replace=False)
        else:
            positives = rows[y]
            missed = rows[y & (oof < 0.5)] if oof is not None else None
            proposal = rounds.propose(
                features,
                labelled,
                in_slice,
                args.round,
                seed=seed * 1000 + number,
                scores=scores,
                positives=positives,
                missed=missed,
            )
            chosen = proposal.positions
            in_slice[[p for p, r in zip(proposal.positions, proposal.reasons) if r == rounds.RANDOM]] = True
        labelled[chosen] = True


def summarise(records: pd.DataFrame) -> pd.DataFrame:
    return (
        records.groupby(["strategy", "round"])
        .agg(
            replicates=("replicate", "count"),
            labels=("labels", "mean"),
            fitted=("cv_auc", "count"),
            positives=("positives", "mean"),
            cv_auc=("cv_auc", "mean"),
            true_auc=("true_auc", "mean"),
            true_recall=("true_recall", "mean"),
            true_precision=("true_precision", "mean"),
            flagged=("flagged", "mean"),
        )
        .reset_index()
    )


GOAL = (0.9, 0.5)  # recall and precision (against the full ground truth) that count as "a usable filter"


def labels_to_goal(records: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: in how many replicates the filter reached the goal within the budget, and the mean labels it took
    (over those replicates)."""
    reached = records[(records["true_recall"] >= GOAL[0]) & (records["true_precision"] >= GOAL[1])]
    first = reached.groupby(["strategy", "replicate"])["labels"].min().reset_index()
    replicates = records.groupby("strategy")["replicate"].nunique()
    summary = first.groupby("strategy")["labels"].agg(["count", "mean", "median"]).reindex(replicates.index)
    return summary.assign(replicates=replicates).reset_index()


def run_concept(concept: str, args) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        root, truth, hits = coco_pool(Path(folder) / "ws", concept)
        workspace = load_workspace(root)
        prepare(workspace, progress=False, log=lambda m: None)
        embedded = load_embeddings(workspace, "original")
        assert embedded is not None
        features = model.build_features(embedded, {})
        records = pd.DataFrame(
            [
                r
                for s in ("active", "random")
                for i in range(args.replicates)
                for r in simulate(features, truth, hits, s, args, i)
            ]
        )
    active = records[records["strategy"] == "active"]
    coverage = {
        what: {
            "cases": int(active[f"{what}_covered"].notna().sum()),
            "coverage": round(float(active[f"{what}_covered"].mean()), 3),
        }
        for what in ("precision", "recall")
        if f"{what}_covered" in active
    }
    return {
        "concept": concept,
        "slice_coverage": coverage | {"slice_sizes": [int(active["slice"].min()), int(active["slice"].max())]},
        "pool": int(len(truth)),
        "positives": int(truth.sum()),
        "table": summarise(records).round(3).to_dict("records"),
        "to_goal": labels_to_goal(records).round(1).to_dict("records"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", default="animal,vehicle", help=f"comma-separated, of {sorted(CONCEPT_WORDS)}")
    parser.add_argument("--round", type=int, default=8)
    parser.add_argument("--budget", type=int, default=56)
    parser.add_argument("--replicates", type=int, default=40)
    parser.add_argument("--c", type=float, default=model.DEFAULT_C, help="inverse regularisation of the classifier")
    parser.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = parser.parse_args()
    concepts = [c.strip() for c in args.concepts.split(",")]
    unknown = set(concepts) - set(CONCEPT_WORDS)
    if unknown:
        parser.error(f"unknown concept(s) {sorted(unknown)}")
    payload = {
        **run_record(
            f"python -m bench.filter_builder --concepts {args.concepts} --round {args.round} --budget {args.budget} "
            f"--replicates {args.replicates} --c {args.c:g}"
        ),
        "results": [run_concept(concept, args) for concept in concepts],
    }
    emit(payload)
    if args.write:
        write_docs(payload, args)


def write_docs(payload: dict, args) -> None:
    values = ["labels", "positives", "true_auc", "true_recall", "true_precision", "cv_auc"]
    lines = [
        f"A simulated labeller answers from COCO's object annotations (commit {payload['commit']}, {payload['date']}, "
        f"`{payload['command']}`). The pool is every annotated COCO-mini photo (79 real photos: the only annotated "
        "set in `../shared/real`), so rounds are of "
        f"{args.round} labels, not 20. Both strategies start from the same seed round (half caption-word hits, half "
        f"random) and use the tool's own model and threshold rule; {args.replicates} replicates each. Recall and "
        "precision are measured against every photo's annotation at the threshold the tool chooses (90% recall on "
        "the labelled positives, out of fold); AUC is over the whole pool; cv AUC is on the labels only.",
        "",
        "Each cell is active / random (means over replicates). Active rounds can add fewer new labels than their "
        "size: the random slice may draw an image already labelled (it stays a uniform sample).",
    ]
    for result in payload["results"]:
        wide = pd.DataFrame(result["table"]).pivot(index="round", columns="strategy", values=values)
        lines += [
            "",
            f"**“{result['concept']}”** ({result['positives']} of {result['pool']} photos)",
            "",
            "| round | labels | positives labelled | AUC (whole pool) | recall | precision | cv AUC |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for number, row in wide.iterrows():
            cells = []
            for value in values:
                a, r = row[(value, "active")], row[(value, "random")]
                digits = ".1f" if value in ("labels", "positives") else ".3f"
                cells.append("/".join("—" if v != v else format(v, digits) for v in (a, r)))
            lines.append(f"| {number} | " + " | ".join(cells) + " |")
        goal = {row["strategy"]: row for row in result["to_goal"]}
        lines += [
            "",
            f"Labels until the filter first reaches recall ≥ {GOAL[0]:.0%} with precision ≥ {GOAL[1]:.0%}: "
            + "; ".join(
                f"{strategy} {goal[strategy]['mean']:.1f} on average (median {goal[strategy]['median']:.0f}; "
                f"reached in {goal[strategy]['count']:.0f} of {goal[strategy]['replicates']} replicates within "
                f"{args.budget})"
                if goal[strategy]["count"] == goal[strategy]["count"] and goal[strategy]["count"] > 0
                else f"{strategy}: not reached within {args.budget} labels"
                for strategy in ("active", "random")
            )
            + ".",
        ]
        coverage = result["slice_coverage"]
        lines += [
            "",
            "The random slice's 95% intervals (what `filter fit` reports) held the filter's true precision in "
            f"{coverage['precision']['coverage']:.1%} of {coverage['precision']['cases']} (replicate, round) cases "
            f"and its true recall in {coverage['recall']['coverage']:.1%} of {coverage['recall']['cases']}, with "
            f"slices of {coverage['slice_sizes'][0]}–{coverage['slice_sizes'][1]} labelled images.",
        ]
    start, end = "<!-- filter-builder:start -->", "<!-- filter-builder:end -->"
    heading = "## Filter builder: active learning against random labelling (`python -m bench.filter_builder`)"
    replace_section(
        Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md",
        start,
        end,
        "\n".join([start, heading, "", *lines, end]),
        before="## How to read these numbers",
    )


if __name__ == "__main__":
    main()
