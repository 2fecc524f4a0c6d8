"""Filter builder on real photos at realistic sizes: active learning against random labelling, and whether the random
slice's intervals hold the truth, with a simulated labeller answering from Caltech-101's concept groups.

Caltech-101's 6,890 labelled photos (`../shared/real/caltech101`), embedded once by `prepare` (the workspace and its
cache are reused from bench.concepts_real's work folder), are split in two halves, stratified by category, with the
same photograph in `Faces` and `Faces_easy` kept on one side: C is chosen on the **tuning** half, then frozen and
every figure reported on the **test** half. Each half is split again: the labeller draws from one part, the filter is
judged on the other (never labelled: the rest of a large dataset). The concepts are the groups of `labels.csv`: food
(1.3%), building (2.6%), person (4.6%), vehicle (12.5%) and animal (36%).

One replicate is one labeller building one filter with the tool's own code: a seed round of the 20 images nearest
two positives they know of (`seeds.like`), then rounds of 20. Active learning proposes with
`analysis.filters.rounds.propose` (a quarter random slice held out of training, uncertain images, neighbours of
missed and of known positives); random labelling draws the same random slice and 15 more images at random. After
every round the filter is fitted and measured as `filter fit` does (`compute.train_and_measure`: threshold for 90%
recall of the training positives out of fold, precision and recall with Clopper–Pearson intervals on the slice),
the slice's intervals compared with the truth over the labeller's images it was not trained on, the filter judged on
the evaluation part. Records are appended to
WORKDIR/filter-builder-runs.jsonl, so a killed run resumes where it stopped.

    python -m bench.filter_builder [--replicates 200] [--random-replicates 60] [--tuning-replicates 20] [--budget 240]
        [--workers 2] [--write | --render]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.filters import compute, model, rounds, seeds
from bench.common import REPO, record_footer, run_record, write_record

GROUPS = ("food", "building", "person", "vehicle", "animal")
C_CANDIDATES = (0.01, 0.05, 0.2, 1.0)
ROUND = 20
TARGET_RECALL = 0.9
GOAL = (0.9, 0.5)  # recall and precision on the evaluation half that count as "a usable filter"
MIN_SLICE = 30  # slices this large are judged (the product's MIN_JUDGEABLE)
WORKDIR = Path("/tmp/caltech-concepts")

_POOLS: dict[str, tuple[model.Features, dict[str, np.ndarray]]] = {}  # filled before the workers fork


def split_rows(labels: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """True for the tuning half: half of each category's photographs at random, `Faces_easy` following `Faces`
    (the same photograph cropped twice must not sit on both sides)."""
    category = labels["category"].str.replace("Faces_easy", "Faces", regex=False)
    number = labels["file"].str.extract(r"(\d+)\.jpg$")[0].astype(int)
    key = category + "/" + number.astype(str)
    rng = np.random.default_rng(seed)
    tuning: set[str] = set()
    for _, keys in key.groupby(category, sort=True):
        unique = np.array(sorted(set(keys)))
        tuning |= set(rng.permutation(unique)[: len(unique) // 2])
    return key.isin(tuning).to_numpy()


def load_pools(workdir: Path) -> dict[str, tuple[model.Features, dict[str, np.ndarray]]]:
    """The tuning and test pools: features (standardised over the pool, as the tool standardises over its dataset;
    in memory; `valid` marks the half the labeller may draw from) and the truth of each concept group."""
    from analysis.embedding_store import load_embeddings
    from analysis.workspace import load_workspace
    from bench.concepts_real import caltech_workspace

    workspace = load_workspace(caltech_workspace(workdir))
    embedded = load_embeddings(workspace, "original")
    assert embedded is not None and embedded.valid.all()
    vectors = np.asarray(embedded.mapped, dtype=np.float32)
    groups = workspace.original["groups"].astype(str).str.split(";")
    files = workspace.original["image"].astype(str)
    labels = pd.DataFrame({"file": files, "category": files.str.replace(r"_image_\d+\.jpg$", "", regex=True)})
    tuning = split_rows(labels)
    pools = {}
    for name, rows in (("tuning", np.flatnonzero(tuning)), ("test", np.flatnonzero(~tuning))):
        # Half of the pool is the labeller's to draw from; the other half stands for the rest of a large dataset,
        # never labelled, on which the filter is judged (on 3,400 photos a labeller would otherwise use up the
        # positives of a rare group, and what remained unlabelled would be only the hardest).
        labelling = split_rows(labels.iloc[rows].reset_index(drop=True), seed=1)
        pool = vectors[rows]
        mean, scale = pool.mean(axis=0), pool.std(axis=0)
        scale[scale < 1e-6] = 1.0
        features = model.Features(
            pool,
            np.zeros((len(rows), 0)),
            labelling,
            mean,
            scale,
            tuple(f"embedding[{i}]" for i in range(pool.shape[1])),
        )
        truth = {g: groups.iloc[rows].apply(lambda names, g=g: g in names).to_numpy(dtype=bool) for g in GROUPS}
        pools[name] = (features, truth)
    return pools


def simulate(pool: str, group: str, strategy: str, c: float, replicate: int, budget: int) -> list[dict]:
    """One labeller building one filter; a record after every round."""
    features, truths = _POOLS[pool]
    truth = truths[group]
    n = features.n_rows
    rng = np.random.default_rng(replicate)
    anchors = rng.choice(np.flatnonzero(truth & features.valid), size=2, replace=False)
    labelled = np.zeros(n, dtype=bool)
    labelled[seeds.like(features, anchors, ROUND)] = True
    in_slice = np.zeros(n, dtype=bool)
    records = []
    for number in range(1, budget // ROUND + 1):
        train = labelled & ~in_slice
        rows, y = np.flatnonzero(train), truth[train]
        record = {
            "pool": pool,
            "group": group,
            "strategy": strategy,
            "c": c,
            "replicate": replicate,
            "round": number,
            "labels": int(labelled.sum()),
            "positives_labelled": int(truth[labelled].sum()),
            "slice": int(in_slice.sum()),
        }
        trained = None
        if model.can_fit(y):
            slice_rows = np.flatnonzero(in_slice)
            trained = compute.train_and_measure(features, rows, y, slice_rows, truth[slice_rows], TARGET_RECALL, c)
            record |= measured(trained, features, truth, features.valid & ~train)
        records.append(record)
        if number * ROUND >= budget:
            return records
        draw = replicate * 1000 + number
        if strategy == "active" and trained is not None:
            positives, missed = rows[y], rows[y & (trained.out_of_fold < 0.5)]
            proposal = rounds.propose(
                features, labelled, in_slice, ROUND, draw, trained.scores, positives=positives, missed=missed
            )
        elif strategy == "active":
            proposal = rounds.propose(features, labelled, in_slice, ROUND, draw, positives=rows[y])
        else:
            proposal = rounds.propose(features, labelled, in_slice, ROUND, draw)
        chosen = proposal.positions
        labelled[chosen] = True
        in_slice[[p for p, r in zip(chosen, proposal.reasons) if r == rounds.RANDOM]] = True
    return records


def measured(trained: compute.Trained, features: model.Features, truth: np.ndarray, held_out: np.ndarray) -> dict:
    """The tool's slice estimates beside their truth, the filter's precision and recall over the labeller's images it
    was not trained on (the population its random slice samples; None where that population has no positive or
    nothing flagged), and the filter's quality over the images nobody could label (the evaluation half)."""
    from sklearn.metrics import roc_auc_score

    flagged = np.nan_to_num(trained.scores, nan=-1.0) >= trained.threshold

    def share(hits: np.ndarray, within: np.ndarray) -> float | None:
        return float((hits & within).sum() / within.sum()) if within.any() else None

    held_precision, held_recall = share(truth, flagged & held_out), share(flagged, truth & held_out)
    evaluation = np.flatnonzero(~features.valid)
    scores = trained.model.probabilities(features.rows(evaluation))
    unseen, hit = truth[evaluation], scores >= trained.threshold
    record = {
        "eval_precision": share(unseen, hit),
        "eval_recall": share(hit, unseen),
        "eval_auc": float(roc_auc_score(unseen, scores)),
        "true_precision": held_precision,
        "true_recall": held_recall,
        "slice_flagged": trained.estimate.flagged,
        "slice_positives": trained.estimate.positives,
    }
    for what, truth_value, interval in (
        ("precision", held_precision, trained.estimate.precision_ci95),
        ("recall", held_recall, trained.estimate.recall_ci95),
    ):
        if interval is not None and truth_value is not None:
            record[f"{what}_covered"] = bool(interval[0] <= truth_value <= interval[1])
            record[f"{what}_width"] = float(interval[1] - interval[0])
    return record


def _run(task: tuple) -> list[dict]:
    return simulate(*task)


def run_tasks(tasks: list[tuple], log: Path, workers: int) -> pd.DataFrame:
    """Every task's records, from the log where a killed run left them, the rest computed now (appended as done)."""
    done: list[dict] = []
    if log.exists():
        done = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    finished = {(r["pool"], r["group"], r["strategy"], r["c"], r["replicate"]) for r in done}
    todo = [t for t in tasks if t[:5] not in finished]
    started = time.perf_counter()
    with log.open("a") as out, multiprocessing.get_context("fork").Pool(workers) as workers_pool:
        for count, records in enumerate(workers_pool.imap_unordered(_run, todo, chunksize=4), start=1):
            out.write("".join(json.dumps(r) + "\n" for r in records))
            out.flush()
            done += records
            if count % 50 == 0 or count == len(todo):
                print(f"{count}/{len(todo)} replicates, {time.perf_counter() - started:.0f} s", flush=True)
    wanted = {t[:5] for t in tasks}
    return pd.DataFrame([r for r in done if (r["pool"], r["group"], r["strategy"], r["c"], r["replicate"]) in wanted])


def reached_by(records: pd.DataFrame) -> pd.DataFrame:
    """Per (group, strategy, labels budget): the share of replicates whose filter had reached the goal by then."""
    met = (records["eval_recall"] >= GOAL[0]) & (records["eval_precision"] >= GOAL[1])
    first = records.assign(met=met).sort_values("round")
    first["reached"] = first.groupby(["group", "strategy", "c", "replicate"])["met"].cummax()
    return first.groupby(["group", "strategy", "round"])["reached"].mean().reset_index()


def choose_c(tuning: pd.DataFrame) -> tuple[float, list[dict]]:
    """The C whose active-learning filters reached the goal most often by the budget (mean over groups), ties to the
    higher whole-pool AUC."""
    last = tuning[tuning["round"] == tuning["round"].max()]
    met = ((last["eval_recall"] >= GOAL[0]) & (last["eval_precision"] >= GOAL[1])).astype(float)
    table = (
        last.assign(met=met)
        .groupby(["c", "group"])
        .agg(reached=("met", "mean"), auc=("eval_auc", "mean"))
        .groupby("c")
        .mean()
        .reset_index()
    )
    best = table.sort_values(["reached", "auc"], ascending=False).iloc[0]
    return float(best["c"]), table.round(3).to_dict("records")


def coverage(records: pd.DataFrame) -> list[dict]:
    """Per group, active learning: how often the slice's intervals held the truth, at the last round (one case per
    replicate) and over every round whose slice is judgeable (≥ MIN_SLICE images)."""
    rows = []
    for group, frame in records[records["strategy"] == "active"].groupby("group", sort=False):
        judged = frame[frame["slice"] >= MIN_SLICE]
        last = frame[frame["round"] == frame["round"].max()]
        row: dict = {"group": group, "replicates": int(frame["replicate"].nunique()), "slice": int(last["slice"].min())}
        for what in ("precision", "recall"):
            for label, part in (("last", last), ("judged", judged)):
                cases = part[f"{what}_covered"].dropna()
                row[f"{what}_{label}_cases"] = len(cases)
                row[f"{what}_{label}_coverage"] = float(cases.mean()) if len(cases) else None
            row[f"{what}_median_width"] = float(last[f"{what}_width"].median())
        rows.append(row)
    return rows


def compare(records: pd.DataFrame) -> list[dict]:
    """Active against random at the same labels, per group and round: means over replicates."""
    table = (
        records.groupby(["group", "strategy", "round"])
        .agg(
            labels=("labels", "mean"),
            positives=("positives_labelled", "mean"),
            eval_auc=("eval_auc", "mean"),
            eval_recall=("eval_recall", "mean"),
            eval_precision=("eval_precision", "mean"),
        )
        .reset_index()
        .merge(reached_by(records), on=["group", "strategy", "round"])
    )
    return table.round(3).to_dict("records")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200, help="test replicates per group, active learning")
    parser.add_argument("--random-replicates", type=int, default=60, help="test replicates per group, random labels")
    parser.add_argument("--tuning-replicates", type=int, default=20, help="per group and C, active learning")
    parser.add_argument("--budget", type=int, default=240, help="labels per replicate (rounds of 20)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    parser.add_argument("--write", action="store_true", help="record docs/filter_builder.json and docs/benchmarks.md")
    parser.add_argument("--render", action="store_true", help="rewrite the docs section from docs/filter_builder.json")
    args = parser.parse_args()
    if args.render:
        payload = json.loads((REPO / "docs" / "filter_builder.json").read_text())
        write_record("filter_builder", payload, "benchmarks.md", START, END, render_markdown(payload))
        return
    from bench.concepts_real import CALTECH

    if not (CALTECH / "labels.csv").exists():
        raise SystemExit(f"needs the Caltech-101 photos in {CALTECH}")
    started = time.perf_counter()
    _POOLS.update(load_pools(args.workdir))
    log = args.workdir / "filter-builder-runs.jsonl"
    tuning_tasks = [
        ("tuning", g, "active", c, r, args.budget)
        for c in C_CANDIDATES
        for g in GROUPS
        for r in range(args.tuning_replicates)
    ]
    tuning = run_tasks(tuning_tasks, log, args.workers)
    chosen, c_table = choose_c(tuning)
    print(f"C chosen on the tuning half: {chosen}", flush=True)
    test_tasks = [
        ("test", g, s, chosen, 1000 + r, args.budget)
        for g in GROUPS
        for s, replicates in (("active", args.replicates), ("random", args.random_replicates))
        for r in range(replicates)
    ]
    test = run_tasks(test_tasks, log, args.workers)
    payload = {
        **run_record(
            f"python -m bench.filter_builder --replicates {args.replicates} --random-replicates "
            f"{args.random_replicates} --tuning-replicates {args.tuning_replicates} --budget {args.budget} --write"
        ),
        "pools": {name: int(features.n_rows) for name, (features, _) in _POOLS.items()},
        "prevalence": {
            name: {g: round(float(t.mean()), 4) for g, t in truths.items()} for name, (_, truths) in _POOLS.items()
        },
        "c_candidates": list(C_CANDIDATES),
        "c_tuning": c_table,
        "c_chosen": chosen,
        "tuning_coverage": coverage(tuning[tuning["c"] == chosen]),
        "coverage": coverage(test),
        "curves": compare(test),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps({k: payload[k] for k in ("c_chosen", "c_tuning", "coverage")}, indent=1))
    if args.write:
        write_record("filter_builder", payload, "benchmarks.md", START, END, render_markdown(payload))


START, END = "<!-- filter-builder:start -->", "<!-- filter-builder:end -->"


def _share(value: float | None, cases: int) -> str:
    return "—" if value is None or cases == 0 else f"{value:.1%} ({cases})"


def _pair(active: float | None, random: float | None, digits: str) -> str:
    return "/".join("—" if v is None or v != v else format(v, digits) for v in (active, random))


def render_markdown(payload: dict) -> str:
    test_prevalence = payload["prevalence"]["test"]
    tuning_replicates = payload["command"].split("--tuning-replicates ")[1].split()[0]
    lines = [
        START,
        "## Filter builder on real photos (`python -m bench.filter_builder`)",
        "",
        f"A simulated labeller answers from Caltech-101's concept groups ({sum(payload['pools'].values()):,} labelled "
        f"photos, embedded by `prepare`), split into a tuning half ({payload['pools']['tuning']:,}) and a test half "
        f"({payload['pools']['test']:,}), stratified by category, a photograph in `Faces` and `Faces_easy` on one "
        "side. Each half is split again the same way: the labeller draws from one part; the other, never labelled, "
        "stands for the rest of a large dataset, and the filter is judged there (*evaluation*: precision, recall "
        "and AUC). Each replicate builds one filter with the tool's own code: a seed round of the 20 images nearest "
        "two known positives, then rounds of 20 proposed by `filter next` (active) or drawn at random with the same "
        "random slice (random); after every round the filter is fitted and measured as `filter fit` does "
        "(`compute.train_and_measure`: threshold for 90% recall of the training positives out of fold; precision "
        "and recall on the random slice with Clopper–Pearson 95% intervals). The *truth* an interval must hold is "
        "the filter's precision or recall over the labeller's images it was not trained on: the population the "
        "slice samples.",
        "",
        f"**C, chosen on the tuning half** (active learning, {tuning_replicates} "
        "replicates per group and C; a usable filter: evaluation recall ≥ 90% with precision ≥ 50% at the last round; "
        "means over the five groups):",
        "",
        "| C | usable filters at the last round | evaluation AUC |",
        "| --- | --- | --- |",
    ]
    for row in payload["c_tuning"]:
        chosen = " **(chosen)**" if row["c"] == payload["c_chosen"] else ""
        lines.append(f"| {row['c']:g}{chosen} | {row['reached']:.1%} | {row['auc']:.3f} |")
    lines += [
        "",
        f"**The random slice's intervals on the test half** (C = {payload['c_chosen']:g} frozen; active learning). "
        "*Last round*: one case per replicate, the slice at its largest; *slice ≥ 30*: every round whose slice held "
        "30 images or more (cases of one replicate are not independent). A case exists where the slice has a trial "
        "(a flagged image for precision, a positive for recall) and the truth is defined.",
        "",
        "| group (test prevalence) | replicates | slice at the last round | precision: last round "
        "| precision: slice ≥ 30 | median width | recall: last round | recall: slice ≥ 30 | median width |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in payload["coverage"]:
        cells = [f"{row['group']} ({test_prevalence[row['group']]:.1%})", str(row["replicates"]), str(row["slice"])]
        for what in ("precision", "recall"):
            cells += [
                _share(row[f"{what}_last_coverage"], row[f"{what}_last_cases"]),
                _share(row[f"{what}_judged_coverage"], row[f"{what}_judged_cases"]),
                "—"
                if row[f"{what}_median_width"] != row[f"{what}_median_width"]
                else f"{row[f'{what}_median_width']:.2f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    pooled = {
        what: (
            sum((r[f"{what}_last_coverage"] or 0) * r[f"{what}_last_cases"] for r in payload["coverage"]),
            sum(r[f"{what}_last_cases"] for r in payload["coverage"]),
        )
        for what in ("precision", "recall")
    }
    lines += [
        "",
        "Over the five groups at the last round: precision held in "
        f"{pooled['precision'][0] / max(pooled['precision'][1], 1):.1%} of {pooled['precision'][1]} replicates, "
        f"recall in {pooled['recall'][0] / max(pooled['recall'][1], 1):.1%} of {pooled['recall'][1]}.",
        "",
        "**Active learning against random labelling on the test half** (means over replicates, active/random; "
        "*usable*: the share of replicates whose filter had reached evaluation recall ≥ 90% with precision ≥ 50% by "
        "then):",
        "",
        "| group | labels | positives labelled | evaluation AUC | evaluation recall | evaluation precision | usable |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    curves = pd.DataFrame(payload["curves"])
    last = int(curves["round"].max())
    for group in GROUPS:
        for number in sorted({3, 6, 9, last}):
            part = curves[(curves["group"] == group) & (curves["round"] == number)].set_index("strategy")
            if part.empty:
                continue

            def cell(column: str, digits: str, part: pd.DataFrame = part) -> str:
                values = [part[column].get(s) if s in part.index else None for s in ("active", "random")]
                return _pair(values[0], values[1], digits)

            lines.append(
                f"| {group} | {part['labels'].max():.0f} | {cell('positives', '.1f')} | {cell('eval_auc', '.3f')} "
                f"| {cell('eval_recall', '.3f')} | {cell('eval_precision', '.3f')} | {cell('reached', '.0%')} |"
            )
    lines += ["", record_footer(payload) + f" ({payload['seconds'] / 60:.0f} min on 2 workers).", END]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
