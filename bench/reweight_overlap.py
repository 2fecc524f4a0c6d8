"""When can reweighting repair a filter? The overlap diagnostic against what the weights restore, on real captions.

    python -m bench.reweight_overlap [--seeds 3] [--write]

Filters are built on real captions: the twelve words that go most with "woman" are removed, some of them *always*
("hard": the filtered set keeps no caption with them) and the others half the time ("soft"), plus 3% of all captions
at random; a last filter removes 10% at random. From none to all twelve words hard, each filter is fitted as
`bias --reweight` fits it (caption features, the audit's gendered words held out) and reports the share of removed
captions with no kept neighbour (`analysis.bias.reweight.removed_without_kept_neighbour`) and the share of the lost
frequency of the filter's words that the weights give back (*restored*: 1 is all of it, above 1 more than was lost,
0 nothing). A hard word cannot be given back: no kept caption has it.

The warning threshold (`MAX_WITHOUT_KEPT_NEIGHBOUR`) is chosen on Conceptual Captions (tuning): the largest whole
percent below the smallest share at which a tuning filter restored less than half; it is reported frozen on LAION
captions (test).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from bench.common import REAL, record_footer, run_record, write_record

MEASURED = ("woman", "women", "man", "men", "girl", "girls", "boy", "boys", "lady", "person", "people")
ANCHORS = ("woman", "women", "girl", "lady")
CONTEXT_WORDS = 12
HARD_COUNTS = (0, 1, 2, 3, 4, 6, 8, 12)
MIN_RESTORED = 0.5


def captions_of(source: str) -> list[str]:
    if source == "cc3m":
        lines = (REAL / "captions" / "cc3m_validation.tsv").read_text(encoding="utf-8").splitlines()
        return [line.split("\t")[0] for line in lines]
    return pd.read_parquet(REAL / "captions" / "laion400m_sample_10000.parquet")["TEXT"].fillna("").astype(str).tolist()


def context_words(index) -> list[str]:
    """The words most over-represented in captions with the anchor words (at least 15 such captions each)."""
    with_anchor = index.docs_containing(ANCHORS)
    everywhere = index.doc_counts()
    near = index.doc_counts(with_anchor)
    lift = (near / max(1, with_anchor.sum())) / np.maximum(everywhere / index.n_docs, 1e-12)
    vocabulary = index.vocabulary.tolist()
    eligible = [
        i
        for i in np.argsort(-lift)
        if near[i] >= 15 and vocabulary[i] not in MEASURED and vocabulary[i].isalpha() and len(vocabulary[i]) > 2
    ]
    return [vocabulary[i] for i in eligible[:CONTEXT_WORDS]]


def restored(index, kept: np.ndarray, weights: np.ndarray, words: list[str]) -> float | None:
    """The share of the lost frequency of captions with any of the filter's words that the weights give back
    (1: all of it; above 1: more than was lost; 0: nothing). None where the filter lost less than 5% of it."""
    contains = index.docs_containing(words)
    original, filtered = contains.mean(), contains[kept].mean()
    reweighted = (weights[kept] * contains[kept]).sum() / weights[kept].sum()
    return None if filtered > 0.95 * original else float((reweighted - filtered) / (original - filtered))


def run_source(source: str, seeds: int) -> list[dict]:
    from analysis.bias.reweight import fit_weights
    from analysis.captions import build_index

    index = build_index(captions_of(source))
    words = context_words(index)
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        chance = rng.random(index.n_docs)
        plans = [(f"{k} of {len(words)} words hard", words[:k], words[k:]) for k in HARD_COUNTS if k <= len(words)]
        for name, hard, soft in [*plans, ("10% at random", [], [])]:
            has_hard, has_soft = index.docs_containing(hard), index.docs_containing(soft)
            if name == "10% at random":
                removed = chance < 0.10
            else:
                removed = has_hard | (has_soft & (chance < 0.5)) | (chance > 0.97)
            kept = ~removed
            fitted = fit_weights(kept, index=index, features="captions", held_out_words=MEASURED, seed=seed)
            rows.append(
                {
                    "source": source,
                    "seed": seed,
                    "filter": name,
                    "removed": int(removed.sum()),
                    "auc": fitted.auc,
                    "ess_share": fitted.effective_sample_size / fitted.n_kept,
                    "without_kept_neighbour": fitted.removed_without_kept_neighbour,
                    "restored": restored(index, kept, fitted.weights, words),
                    "hard_words": hard,
                }
            )
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "hard_words"}), flush=True)
    return rows


def choose_threshold(rows: list[dict]) -> float:
    """The largest whole percent below the smallest share without a kept neighbour at which a tuning filter restored
    less than MIN_RESTORED of what it removed."""
    failing = [r["without_kept_neighbour"] for r in rows if r["restored"] is not None and r["restored"] < MIN_RESTORED]
    return float(np.floor(min(failing) * 100 - 1e-9) / 100) if failing else 1.0


START, END = "<!-- reweight-overlap:start -->", "<!-- reweight-overlap:end -->"


def render_markdown(payload: dict) -> str:
    lines = [
        START,
        "### When reweighting cannot work: the overlap diagnostic on real captions",
        "",
        "Filters on real captions that remove the twelve words that go most with “woman” (some always, *hard*; the "
        "others half the time) plus 3% at random, fitted as `bias --reweight` fits them (caption features, the "
        "audit's gendered words held out). *Without kept neighbour*: the share of removed captions with no kept "
        f"caption within {payload['caliper_sd']} SD of their classifier logit. *Restored*: the share of the lost "
        "frequency of the filter's words that the weights give back (above 100%: more than was lost, the "
        f"classifier's overshoot). Means over {payload['seeds']} seeds.",
        "",
        "| captions | filter | removed | classifier AUC | ESS / kept | without kept neighbour | restored |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    frame = pd.DataFrame(payload["rows"])
    for (source, name), group in frame.groupby(["source", "filter"], sort=False):
        restored_text = "—" if group["restored"].isna().all() else f"{group['restored'].mean():.0%}"
        lines.append(
            f"| {payload['names'][source]} | {name} | {group['removed'].mean():,.0f} | {group['auc'].mean():.3f} | "
            f"{group['ess_share'].mean():.2f} | {group['without_kept_neighbour'].mean():.1%} | {restored_text} |"
        )
    test = payload["test"]
    lines += [
        "",
        f"Chosen on Conceptual Captions (tuning): warn above **{payload['chosen']:.0%}** of removed items without a "
        f"kept neighbour (below the smallest share at which a tuning filter restored less than {MIN_RESTORED:.0%} of "
        f"what it removed; shipped: {payload['shipped']:.0%}). Frozen on LAION (test), {test['filters']} filters "
        f"(seeds × filters): {test['warned']} warned, of which {test['warned_and_failed']} restored less than "
        f"{MIN_RESTORED:.0%}; {test['silent_and_failed']} of the {test['filters'] - test['warned']} unwarned did.",
        "",
        record_footer(payload),
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    from analysis.bias.reweight import CALIPER_SD, MAX_WITHOUT_KEPT_NEIGHBOUR

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="record in docs/analyses.md")
    args = parser.parse_args()
    if not (REAL / "captions").exists():
        raise SystemExit(f"needs the real captions in {REAL / 'captions'}")
    tuning, testing = run_source("cc3m", args.seeds), run_source("laion", args.seeds)
    chosen = choose_threshold(tuning)
    judged = [r for r in testing if r["restored"] is not None]
    warned = [r for r in judged if r["without_kept_neighbour"] > MAX_WITHOUT_KEPT_NEIGHBOUR]
    silent = [r for r in judged if r["without_kept_neighbour"] <= MAX_WITHOUT_KEPT_NEIGHBOUR]
    payload = {
        "caliper_sd": CALIPER_SD,
        "seeds": args.seeds,
        "names": {"cc3m": "Conceptual Captions (tuning)", "laion": "LAION (test)"},
        "rows": tuning + testing,
        "chosen": chosen,
        "shipped": MAX_WITHOUT_KEPT_NEIGHBOUR,
        "test": {
            "filters": len(judged),
            "warned": len(warned),
            "warned_and_failed": sum(r["restored"] < MIN_RESTORED for r in warned),
            "silent_and_failed": sum(r["restored"] < MIN_RESTORED for r in silent),
        },
        **run_record(f"python -m bench.reweight_overlap --seeds {args.seeds}"),
    }
    print(json.dumps({k: v for k, v in payload.items() if k != "rows"}, indent=1))
    if args.write:
        write_record("reweight_overlap", payload, "analyses.md", START, END, render_markdown(payload))


if __name__ == "__main__":
    main()
