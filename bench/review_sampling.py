"""Why review queues are random: the stratified queue estimate against the score-sorted gallery, by simulation,
and the coverage of the agreement intervals.

    python -m bench.review_sampling [--replicates 2000]

Precision: a filter removed N = 2,000 items with scores uniform on [0.5, 1]; whether a removal is correct is drawn
with a probability that depends on the score (scenarios below), once per replicate, so the truth is that
replicate's share of correct removals. A queue of n items is drawn (`analysis.review.queues.draw_queue`, 4 score
bands, proportional allocation) and estimated (`queue_estimate`); the gallery reviewer judges the n highest-scored
items, as a page sorted by score shows them, and reports their share. Coverage = share of replicates whose 95%
interval holds the truth; bias = mean (estimate − truth).

Agreement: two reviewers judge n items whose true verdicts are 60% / 30% / 10% (correct removal / false positive /
unsure); each reports the true verdict with probability a, else a uniformly random one. The population κ is
computed on 10⁶ simulated items; coverage is the share of replicates whose bootstrap interval holds it.
Writes the table between the `review-sampling` markers of docs/analyses.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import pandas as pd

from analysis.review.agreement import agreement
from analysis.review.queues import draw_queue, queue_estimate
from bench.common import REPO, emit, replace_section, run_record

POPULATION = 2000
QUEUE_SIZES = (5, 12, 30, 100, 300)
KAPPA_SIZES = (10, 30, 100, 300)
SCENARIOS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "precision rises with score (0.15 → 0.95)": lambda s: 0.15 + 0.8 * (s - 0.5) / 0.5,
    "high precision (0.85 → 0.99)": lambda s: 0.85 + 0.14 * (s - 0.5) / 0.5,
    "low precision (0.02 → 0.22)": lambda s: 0.02 + 0.2 * (s - 0.5) / 0.5,
}
TRUE_SHARES, ACCURACIES = np.array([0.6, 0.3, 0.1]), (0.6, 0.85)
START, END = "<!-- review-sampling:start -->", "<!-- review-sampling:end -->"


def precision_replicates(scenario: str, n: int, replicates: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.5, 1.0, POPULATION)
    ids = np.array([f"i{i}" for i in range(POPULATION)])
    population = pd.DataFrame({"id": ids, "score": scores})
    top = np.argsort(-scores)[:n]
    covered, queue_errors, gallery_errors = 0, [], []
    for replicate in range(replicates):
        correct = rng.random(POPULATION) < SCENARIOS[scenario](scores)
        truth = correct.mean()
        items = draw_queue(population, n, "score-band", 4, seed=replicate)
        chosen = pd.Index(ids).get_indexer(items["item_id"])
        decisions = pd.DataFrame(
            {
                "kind": "removal",
                "item_id": items["item_id"],
                "verdict": np.where(correct[chosen], "correct removal", "false positive"),
                "status": "single",
            }
        )
        estimate = queue_estimate("simulated", "removal", items, decisions)
        covered += estimate.ci95[0] <= truth <= estimate.ci95[1]
        queue_errors.append(estimate.estimate - truth)
        gallery_errors.append(correct[top].mean() - truth)
    return {
        "scenario": scenario,
        "n": n,
        "coverage": covered / replicates,
        "queue_bias": float(np.mean(queue_errors)),
        "gallery_bias": float(np.mean(gallery_errors)),
    }


def _ratings(rng: np.random.Generator, n: int, accuracy: float) -> tuple[np.ndarray, np.ndarray]:
    truth = rng.choice(3, size=n, p=TRUE_SHARES)

    def rate() -> np.ndarray:
        return np.where(rng.random(n) < accuracy, truth, rng.integers(0, 3, n))

    return rate(), rate()


def population_kappa(accuracy: float) -> float:
    from analysis.review.agreement import cohen_kappa

    first, second = _ratings(np.random.default_rng(99), 1_000_000, accuracy)
    value = cohen_kappa(first, second)
    assert value is not None
    return value


def kappa_replicates(accuracy: float, n: int, replicates: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    target = population_kappa(accuracy)
    covered = 0
    for _ in range(replicates):
        first, second = _ratings(rng, n, accuracy)
        items = [f"i{i}" for i in range(n)]
        votes = pd.DataFrame(
            {"item_id": items * 2, "reviewer": ["a"] * n + ["b"] * n, "verdict": np.concatenate([first, second])}
        )
        found = agreement(votes.assign(verdict=votes["verdict"].astype(str)), "simulated")
        low, high = found.kappa_ci95 or (np.nan, np.nan)
        covered += bool(low <= target <= high)
    return {"accuracy": accuracy, "kappa": target, "n": n, "coverage": covered / replicates}


def markdown(precision: list[dict], kappa: list[dict], record: dict) -> str:
    lines = [
        START,
        f"Run: commit `{record['commit']}`, {record['date']}, `{record['command']}`. Population of {POPULATION:,} "
        "removed items, 4 score bands.",
        "",
        "| scenario | queue size n | stratified queue: coverage of its 95% interval | queue: mean error | "
        "score-sorted gallery: mean error |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['scenario']} | {r['n']} | {r['coverage']:.1%} | {r['queue_bias']:+.3f} | {r['gallery_bias']:+.3f} |"
        for r in precision
    ]
    lines += [
        "",
        "| reviewers' accuracy | population κ | items n | coverage of κ's bootstrap 95% interval |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {r['accuracy']:.2f} | {r['kappa']:.3f} | {r['n']} | {r['coverage']:.1%} |" for r in kappa]
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=2000)
    args = parser.parse_args()
    record = run_record(f"python -m bench.review_sampling --replicates {args.replicates}")
    precision = [precision_replicates(s, n, args.replicates) for s in SCENARIOS for n in QUEUE_SIZES]
    kappa = [kappa_replicates(a, n, args.replicates) for a in ACCURACIES for n in KAPPA_SIZES]
    replace_section(REPO / "docs" / "analyses.md", START, END, markdown(precision, kappa, record))
    emit({"record": record, "precision": precision, "kappa": kappa})


if __name__ == "__main__":
    main()
