"""Caption statistics at scale: the term table over N captions vs an nltk-tokenize + Counter loop.

Captions are resampled (with replacement) from the real caption files in ../shared/real (LAION and Conceptual
Captions, messy on purpose); without them, synthetic captions are used and the output says so.
Usage: python bench/captions_speed.py N [--baseline-sample M]
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter

import numpy as np
import pandas as pd

from bench.common import REAL, emit


def real_captions() -> tuple[list[str], str]:
    laion = REAL / "captions" / "laion400m_sample_10000.parquet"
    cc3m = REAL / "captions" / "cc3m_validation.tsv"
    if laion.exists() and cc3m.exists():
        captions = pd.read_parquet(laion)["TEXT"].fillna("").astype(str).tolist()
        captions += [line.split("\t")[0] for line in cc3m.read_text(encoding="utf-8").splitlines()]
        return captions, "LAION-400M sample + CC3M validation (../shared/real)"
    words = ["a", "woman", "man", "dog", "photo", "of", "the", "city", "red", "car", "girl", "boy", "beach"]
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, 10)) for _ in range(20000)], "synthetic (../shared/real absent)"


def baseline_document_frequency(captions: list[str], tokenizer: str = "treebank") -> Counter:
    """The straightforward way: an nltk tokenizer, lower-case, a set per caption, a Counter.

    "treebank" is nltk's standard word tokenizer (what nltk.word_tokenize applies to each sentence; the sentence
    splitter needs downloaded punkt data, unavailable offline); "wordpunct" is nltk's fastest regex tokenizer.
    """
    from nltk.tokenize import TreebankWordTokenizer, wordpunct_tokenize

    tokenize = TreebankWordTokenizer().tokenize if tokenizer == "treebank" else wordpunct_tokenize
    counts: Counter = Counter()
    for caption in captions:
        counts.update({token.lower() for token in tokenize(caption) if re.match(r"\w", token)})
    return counts


def main() -> None:
    from analysis.bias.compute import bias_report
    from analysis.captions import build_index
    from analysis.workspace import DEFAULT_GROUPS

    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument(
        "--baseline-sample",
        type=int,
        default=100_000,
        help="captions the baseline runs on; its time is scaled linearly to N",
    )
    args = parser.parse_args()
    pool, source = real_captions()
    rng = np.random.default_rng(1)
    captions = [pool[i] for i in rng.integers(0, len(pool), args.n)]
    kept = rng.random(args.n) > 0.05
    start = time.perf_counter()
    index = build_index(captions)
    indexed = time.perf_counter() - start
    report = bias_report(index, kept, ["woman", "man", "girl", "boy", "person"], DEFAULT_GROUPS)
    total = time.perf_counter() - start
    sample = captions[: min(args.baseline_sample, args.n)]
    baselines = {}
    for tokenizer in ("treebank", "wordpunct"):
        start = time.perf_counter()
        baseline_document_frequency(sample, tokenizer)
        baselines[tokenizer] = (time.perf_counter() - start) * args.n / len(sample)
    emit(
        {
            "task": "caption term table",
            "n": args.n,
            "source": source,
            "index_s": round(indexed, 2),
            "term_table_s": round(total, 2),
            "baseline_s": round(baselines["treebank"], 2),
            "baseline_wordpunct_s": round(baselines["wordpunct"], 2),
            "baseline_note": f"nltk tokenizer + Counter on {len(sample):,} captions, time scaled linearly to N",
            "speedup": round(baselines["treebank"] / total, 1),
            "speedup_vs_wordpunct": round(baselines["wordpunct"] / total, 1),
            "vocabulary": int(len(index.vocabulary)),
            "woman_change": report.terms[0].relative_change,
        }
    )


if __name__ == "__main__":
    main()
