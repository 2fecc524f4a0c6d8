"""What to label next. A round mixes four kinds of image (DALL·E 2's active learning, plus what keeps it
measurable): a simple random slice of the images no one has labelled yet, held out of training (the model's test
set) and the only basis of the precision and recall estimates; the images the model is least sure of; neighbours of
positives that cross-validation keeps missing; and neighbours of known positives. Rounds are stored as queues in
the label store, so every labeller sees the same round and a round never changes."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.filters.model import Features, similar_to
from analysis.verdicts.store import VerdictStore

RANDOM, UNCERTAIN, MISSED, NEIGHBOUR = "random", "uncertain", "missed-positive neighbour", "positive neighbour"
EXPLORE = "explore"  # random images the model learns from (before there is a model, and to fill a short round)
SHARES = {RANDOM: 0.25, UNCERTAIN: 0.35, MISSED: 0.15, NEIGHBOUR: 0.25}


@dataclass
class Proposal:
    positions: np.ndarray
    reasons: list[str]


def round_items(store: VerdictStore, kind: str) -> pd.DataFrame:
    """Every proposed item of every round: round, item_id, reason, inclusion_probability (random slice only)."""
    queues = store.queues(kind)
    frames = []
    for number, name in enumerate(queues["name"], start=1):
        items = store.queue_items(name)
        frames.append(items.assign(round=number, queue=name).rename(columns={"stratum": "reason"}))
    if not frames:
        return pd.DataFrame(columns=["round", "queue", "item_id", "reason", "inclusion_probability", "position"])
    return pd.concat(frames, ignore_index=True)


def save_round(store: VerdictStore, kind: str, ids: list[str], reasons: list[str], seed: int, population: int) -> str:
    rounds = store.queues(kind)
    name = f"{kind} round {len(rounds) + 1:03d}"
    drawn = {reason: reasons.count(reason) for reason in set(reasons)}
    items = pd.DataFrame(
        {
            "position": np.arange(len(ids)),
            "item_id": ids,
            "stratum": reasons,
            "stratum_size": [population] * len(ids),
            "stratum_sampled": [drawn[r] for r in reasons],
            "inclusion_probability": [1.0] * len(ids),
        }
    )
    store.save_queue(
        {
            "name": name,
            "kind": kind,
            "population": f"{population} images with an embedding",
            "strata": "reason",
            "seed": seed,
            "n_requested": len(ids),
            "created_at": time.time(),
        },
        items,
    )
    return name


def propose(
    features: Features,
    labelled: np.ndarray,
    in_slice: np.ndarray,
    n: int,
    seed: int,
    scores: np.ndarray | None = None,
    positives: np.ndarray | None = None,
    missed: np.ndarray | None = None,
) -> Proposal:
    """`n` images to label. `labelled`/`in_slice` are masks over rows; `scores` the current model's probabilities
    (None before there is a model); `positives` and `missed` the rows of known positives and of those the
    cross-validated model scored below 0.5."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    reasons: list[str] = []
    taken = np.zeros(features.n_rows, dtype=bool)

    def take(rows: np.ndarray, reason: str) -> None:
        for row in rows:
            if not taken[row]:
                taken[row] = True
                chosen.append(int(row))
                reasons.append(reason)

    def random_draw(count: int, reason: str) -> None:  # uniform over the images no one has labelled
        pool = np.flatnonzero(features.valid & ~labelled & ~in_slice & ~taken)
        take(rng.choice(pool, size=min(max(count, 0), len(pool)), replace=False), reason)

    random_draw(max(2, round(SHARES[RANDOM] * n)), RANDOM)  # the random slice: held out, the model's test set
    exclude = labelled | taken
    if scores is not None:
        pool = np.flatnonzero(features.valid & ~exclude)
        order = pool[np.argsort(np.abs(scores[pool] - 0.5), kind="stable")]
        take(order[: round(SHARES[UNCERTAIN] * n)], UNCERTAIN)
    if missed is not None and len(missed):
        take(similar_to(features, missed, labelled | taken, round(SHARES[MISSED] * n)), MISSED)
    if positives is not None and len(positives):
        # Before there is a model, half of the rest: the other half explores, so that negatives are learned too.
        share = n - len(chosen) if scores is not None else (n - len(chosen)) // 2
        take(similar_to(features, positives, labelled | taken, share), NEIGHBOUR)
    random_draw(n - len(chosen), EXPLORE)
    order = rng.permutation(len(chosen))  # no reason or score can be read from the order shown
    return Proposal(np.array(chosen, dtype=np.int64)[order], [reasons[i] for i in order])
