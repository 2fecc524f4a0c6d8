"""Caption statistics at scale: the term table over N captions against the baselines a reviewer would try first.

Baselines, strongest first (each computes the same thing: in how many captions each word occurs):
- plain Python: `re.findall` with the product's word definition (runs of letters and digits), a set per caption,
  a `Counter` — the strongest simple baseline, run on all N captions;
- scikit-learn's `CountVectorizer(binary=True)` with the same token pattern, summed per column — a real pipeline
  from a widely used tool, run on all N captions;
- nltk's Treebank tokenizer and nltk's `wordpunct_tokenize`, each with a set per caption and a `Counter`: run on
  `--baseline-sample` captions and scaled linearly to N, so their times are estimates (marked "est.").

Captions are resampled (with replacement) from the real caption files in ../shared/real (LAION and Conceptual
Captions, messy on purpose); without them, synthetic captions are used and the output says so. Resampling repeats
25,531 distinct captions, so the vocabulary stops growing; `--distinct` makes every caption distinct by adding
one token of its own (as file names, product codes and user names are in LAION), so the vocabulary grows with N.
Usage: python -m bench.captions_speed N [--distinct] [--baseline-sample M]
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter

import numpy as np
import pandas as pd

from bench.common import REAL, emit

# The product's word definition (analysis.captions.WORD_SEPARATOR splits on [^\p{L}\p{N}]+) in Python's `re`:
# a word is a run of characters that are alphanumeric, i.e. \w without the underscore.
WORD = re.compile(r"[^\W_]+")


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


def make_captions(n: int, distinct: bool) -> tuple[list[str], str, int]:
    """N captions resampled from the real pool; with `distinct`, each gets a token no other caption has."""
    pool, source = real_captions()
    rng = np.random.default_rng(1)
    captions = [pool[i] for i in rng.integers(0, len(pool), n)]
    if distinct:
        captions = [f"{caption} img{np.base_repr(i, 36).lower()}" for i, caption in enumerate(captions)]
        source += ", each caption made distinct by a token of its own"
    return captions, source, len(set(captions))


def plain_python_document_frequency(captions: list[str]) -> Counter:
    """The strongest simple baseline: same word definition, a set per caption, one Counter."""
    counts: Counter = Counter()
    findall = WORD.findall
    for caption in captions:
        counts.update({word.casefold() for word in findall(caption)})
    return counts


def sklearn_document_frequency(captions: list[str]) -> dict[str, int]:
    """A real pipeline: scikit-learn's CountVectorizer with binary counts (one per caption), summed per word."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(binary=True, lowercase=True, token_pattern=WORD.pattern, dtype=np.int32)
    matrix = vectorizer.fit_transform(captions)
    counts = np.asarray(matrix.sum(axis=0)).ravel()
    return dict(zip(vectorizer.get_feature_names_out(), counts.tolist()))


def nltk_document_frequency(captions: list[str], tokenizer: str = "treebank") -> Counter:
    """nltk's tokenizers, lower-case, a set per caption, a Counter.

    "treebank" is nltk's standard word tokenizer (what nltk.word_tokenize applies to each sentence; the sentence
    splitter needs downloaded punkt data, unavailable offline); "wordpunct" is nltk's fastest regex tokenizer.
    """
    from nltk.tokenize import TreebankWordTokenizer, wordpunct_tokenize

    tokenize = TreebankWordTokenizer().tokenize if tokenizer == "treebank" else wordpunct_tokenize
    counts: Counter = Counter()
    for caption in captions:
        counts.update({token.lower() for token in tokenize(caption) if re.match(r"\w", token)})
    return counts


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def main() -> None:
    from analysis.captions import build_index
    from analysis.effects.terms import bias_report
    from analysis.workspace import DEFAULT_GROUPS

    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("--distinct", action="store_true", help="every caption distinct; the vocabulary grows")
    parser.add_argument(
        "--baseline-sample",
        type=int,
        default=100_000,
        help="captions the nltk baselines run on; their times are scaled linearly to N (estimates)",
    )
    args = parser.parse_args()
    captions, source, distinct = make_captions(args.n, args.distinct)
    kept = np.random.default_rng(2).random(args.n) > 0.05
    start = time.perf_counter()
    index = build_index(captions)
    indexed = time.perf_counter() - start
    report = bias_report(index, kept, ["woman", "man", "girl", "boy", "person"], DEFAULT_GROUPS)
    total = time.perf_counter() - start
    plain_s, plain = timed(plain_python_document_frequency, captions)
    # The baseline computes what the index does: same words, same document frequencies.
    frequencies = np.bincount(index.terms, minlength=len(index.vocabulary))
    woman = int(np.searchsorted(index.vocabulary, "woman"))
    assert plain["woman"] == frequencies[woman], "baseline and term table disagree"  # type: ignore[index]
    assert len(plain) == len(index.vocabulary), (len(plain), len(index.vocabulary))  # type: ignore[arg-type]
    del plain
    sklearn_s, _ = timed(sklearn_document_frequency, captions)
    sample = captions[: min(args.baseline_sample, args.n)]
    nltk = {
        name: timed(nltk_document_frequency, sample, name)[0] * args.n / len(sample)
        for name in ("treebank", "wordpunct")
    }
    emit(
        {
            "task": "caption term table",
            "n": args.n,
            "distinct_captions": distinct,
            "source": source,
            "index_s": round(indexed, 2),
            "term_table_s": round(total, 2),
            "plain_python_s": round(plain_s, 2),
            "speedup_vs_plain_python": round(plain_s / total, 1),
            "sklearn_s": round(sklearn_s, 2),
            "speedup_vs_sklearn": round(sklearn_s / total, 1),
            "nltk_treebank_s_est": round(nltk["treebank"], 2),
            "nltk_wordpunct_s_est": round(nltk["wordpunct"], 2),
            "nltk_sample": len(sample),
            "estimated": len(sample) < args.n,
            "vocabulary": int(len(index.vocabulary)),
            "woman_change": report.terms[0].relative_change,
        }
    )


if __name__ == "__main__":
    main()
