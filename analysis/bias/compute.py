"""The bias analysis's own measures of captions beyond term shifts (which live in the core,
`analysis.effects.terms`, since every removal is measured by them): the most shifted words (log-odds with an
informative prior), NPMI and identity collocations, and parsing the terms and groups a user gives."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from analysis.captions import DocTermIndex, normalise_term
from analysis.effects.terms import check_single_word


def parse_terms(text: str) -> list[str]:
    terms = [normalise_term(t) for t in text.split(",") if t.strip()]
    for term in terms:
        check_single_word(term)
    return terms


def parse_groups(text: str) -> dict[str, tuple[str, ...]]:
    """Groups written one per line as `name: word, word, …` (lines without a name or words are ignored)."""
    parsed: dict[str, tuple[str, ...]] = {}
    for line in text.splitlines():
        if ":" in line:
            name, members = line.split(":", 1)
            words = tuple(w.strip().casefold() for w in members.split(",") if w.strip())
            if name.strip() and words:
                parsed[name.strip()] = words
    return parsed


def format_groups(groups: Mapping[str, Iterable[str]]) -> str:
    return "\n".join(f"{name}: {', '.join(members)}" for name, members in groups.items())


def top_shifted_words(
    index: DocTermIndex, kept: np.ndarray, *, min_count: int = 5, prior: float = 10.0, limit: int = 25
) -> pd.DataFrame:
    """Words over-represented among removed vs kept captions: log-odds ratio with an informative Dirichlet prior.

    Monroe, Colaresi & Quinn (2008), "Fightin' Words": the prior adds on average `prior` pseudo-counts per
    word, in proportion to the pooled counts, which shrinks rare words; the z-score divides by the estimate's
    standard deviation, so a word seen twice does not top the list. Negative z = removed more often. The ranking is
    by that uncertainty-aware z, so words from 5 captions may rank; their relative change is a point estimate
    that the charts only print from `MIN_JUDGEABLE` captions on.
    """
    total = index.doc_counts().astype(np.float64)
    kept_counts = index.doc_counts(kept).astype(np.float64)
    removed_counts = total - kept_counts
    eligible = total >= min_count
    if not eligible.any():
        return pd.DataFrame(columns=["word", "original_count", "filtered_count", "relative_change", "log_odds_z"])
    alpha = prior * len(total) * total / total.sum()  # informative prior: proportional to the pooled counts
    alpha0 = alpha.sum()
    n_kept, n_removed = kept_counts.sum(), removed_counts.sum()
    delta = np.log((kept_counts + alpha) / (n_kept + alpha0 - kept_counts - alpha)) - np.log(
        (removed_counts + alpha) / (n_removed + alpha0 - removed_counts - alpha)
    )
    z = delta / np.sqrt(1 / (kept_counts + alpha) + 1 / (removed_counts + alpha))
    n, n_kept_docs = index.n_docs, int(kept.sum())
    frame = pd.DataFrame(
        {
            "word": index.vocabulary,
            "original_count": total.astype(np.int64),
            "filtered_count": kept_counts.astype(np.int64),
            "relative_change": (kept_counts / max(n_kept_docs, 1)) / (total / max(n, 1)) - 1,
            "log_odds_z": z,
        }
    )[eligible]
    order = np.argsort(-np.abs(frame["log_odds_z"].to_numpy()), kind="stable")
    return frame.iloc[order[:limit]].reset_index(drop=True)


def npmi_table(
    index: DocTermIndex, kept: np.ndarray, identity_words: Iterable[str], *, min_count: int = 3, limit: int = 20
) -> pd.DataFrame:
    """nPMI of each word with an identity term (or group), in the original and the filtered captions.

    nPMI(t, w) = log(p(t,w) / (p(t) p(w))) / −log p(t,w), probabilities over captions, as in Hugging Face's
    Data Measurements Tool. Sorted by the drop from original to filtered: the contexts the filter removed.
    """
    identity = tuple(normalise_term(w) for w in identity_words)
    with_identity = index.docs_containing(identity)
    identity_ids = {index.term_id(w) for w in identity} - {None}

    def npmi(doc_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = max(int(doc_mask.sum()), 1)
        word_docs = index.doc_counts(doc_mask).astype(np.float64)
        joint = index.doc_counts(doc_mask & with_identity).astype(np.float64)
        p_identity = (doc_mask & with_identity).sum() / n
        with np.errstate(divide="ignore", invalid="ignore"):
            p_joint, p_word = joint / n, word_docs / n
            value = np.log(p_joint / (p_identity * p_word)) / -np.log(p_joint)
        value[joint == 0] = np.nan
        return value, joint

    everything = np.ones(index.n_docs, dtype=bool)
    original, joint_original = npmi(everything)
    filtered, joint_filtered = npmi(kept)
    frame = pd.DataFrame(
        {
            "word": index.vocabulary,
            "cooccurrences_original": joint_original.astype(np.int64),
            "cooccurrences_filtered": joint_filtered.astype(np.int64),
            "npmi_original": original,
            "npmi_filtered": filtered,
        }
    )
    frame["change"] = frame["npmi_filtered"].fillna(-1.0) - frame["npmi_original"]
    eligible = (frame["cooccurrences_original"] >= min_count) & ~frame.index.isin(list(identity_ids))
    frame = frame[eligible].sort_values(["change", "word"], ascending=[True, True])
    return frame.head(limit).reset_index(drop=True)


def identity_collocations(
    captions: pd.Series,
    index: DocTermIndex,
    kept: np.ndarray,
    identity_words: Iterable[str],
    *,
    min_count: int = 3,
    limit: int = 15,
) -> pd.DataFrame:
    """Bigrams around an identity term ("young woman", "woman holding"), ranked with nltk's likelihood ratio,
    with their counts in the original and the filtered captions. Runs on the captions that contain the term only."""
    from nltk.collocations import BigramAssocMeasures, BigramCollocationFinder

    from analysis.captions import tokenize

    identity = {normalise_term(w) for w in identity_words}
    rows = np.flatnonzero(index.docs_containing(identity))
    columns = ["bigram", "original_count", "filtered_count", "relative_change", "likelihood_ratio"]
    if len(rows) == 0:
        return pd.DataFrame(columns=columns)
    parents, words = tokenize(captions.iloc[rows].tolist())
    documents: list[list[str]] = [[] for _ in rows]
    for parent, word in zip(parents.tolist(), words):
        documents[parent].append(word)
    finder = BigramCollocationFinder.from_documents(documents)
    finder.apply_freq_filter(min_count)
    finder.apply_ngram_filter(lambda first, second: first not in identity and second not in identity)
    scored = finder.score_ngrams(BigramAssocMeasures().likelihood_ratio)[:limit]
    kept_rows = kept[rows]
    n, n_kept = len(kept), max(int(kept.sum()), 1)
    wanted = {pair for pair, _ in scored}
    counts = {pair: [0, 0] for pair in wanted}
    for document, is_kept in zip(documents, kept_rows):
        for pair in wanted.intersection(zip(document, document[1:])):
            counts[pair][0] += 1
            counts[pair][1] += int(is_kept)
    records = []
    for (first, second), score in scored:
        original, filtered = counts[(first, second)]
        records.append(
            {
                "bigram": f"{first} {second}",
                "original_count": original,
                "filtered_count": filtered,
                "relative_change": (filtered / n_kept) / (original / n) - 1 if original else np.nan,
                "likelihood_ratio": score,
            }
        )
    return pd.DataFrame(records, columns=columns)


__all__ = ["top_shifted_words", "npmi_table", "identity_collocations", "parse_terms", "parse_groups"]
