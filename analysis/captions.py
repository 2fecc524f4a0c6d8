"""Caption tokenisation and the document–term index every caption statistic is computed from.

Definitions (DESIGN.md §6): a word is a maximal run of Unicode letters or digits, case-folded
("Woman's" → woman, s). Tokenising is vectorised with Arrow (RE2 split, dictionary encoding), and
case-folding runs once per distinct spelling rather than once per caption, so a million captions take seconds.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analysis import __version__
from analysis.cache import atomic_save_npz, atomic_save_parquet, file_fingerprint, fingerprint, load_or_compute
from analysis.workspace import Workspace

WORD_SEPARATOR = r"[^\p{L}\p{N}]+"
_NOT_A_WORD = re.compile(r"[\W_]+")


def normalise_caption(caption: str) -> str:
    """The caption as words only, for comparing whole captions (contamination, repeated captions): HTML entities
    decoded, Unicode folded (NFKC), case folded, every run of punctuation and spaces one space."""
    text = unicodedata.normalize("NFKC", html.unescape(caption or "")).casefold()
    return " ".join(word for word in _NOT_A_WORD.split(text) if word)


@dataclass(frozen=True)
class DocTermIndex:
    """The distinct (caption, word) pairs of a caption set, sorted by caption.

    `rows[i]` is a caption index and `terms[i]` a vocabulary index; each pair appears once, so
    counting pairs per word gives document frequency directly.
    """

    n_docs: int
    vocabulary: np.ndarray  # object array of str, sorted
    rows: np.ndarray  # int64, caption index per pair
    terms: np.ndarray  # int64, vocabulary index per pair
    _lookup: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def term_id(self, word: str) -> int | None:
        if not self._lookup:
            self._lookup.update({w: i for i, w in enumerate(self.vocabulary.tolist())})
        return self._lookup.get(normalise_term(word))

    def doc_counts(self, doc_mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
        """Per-word count of captions containing it (weighted sum when `weights` per caption is given)."""
        pair_weights = None
        selected = self.terms
        if doc_mask is not None:
            keep = doc_mask[self.rows]
            selected = self.terms[keep]
            if weights is not None:
                pair_weights = weights[self.rows[keep]]
        elif weights is not None:
            pair_weights = weights[self.rows]
        return np.bincount(selected, weights=pair_weights, minlength=len(self.vocabulary))

    def docs_containing(self, words: Iterable[str]) -> np.ndarray:
        """Boolean mask over captions: contains at least one of `words`."""
        ids = [i for i in (self.term_id(w) for w in words) if i is not None]
        mask = np.zeros(self.n_docs, dtype=bool)
        if ids:
            mask[self.rows[np.isin(self.terms, ids)]] = True
        return mask


def unique_int64(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values. A stable (timsort/radix) sort exploits the near-sorted keys that come in caption
    order, and is much faster than np.unique here (bench/captions_speed.py)."""
    if len(keys) == 0:
        return keys
    ordered = np.sort(keys, kind="stable")
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def normalise_term(word: str) -> str:
    return word.strip().casefold()


def tokenize(captions: Sequence[str] | pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """(caption index per token, token) for every token, in order. Mostly for tests and n-grams."""
    array = _as_arrow(captions)
    words, parents = _split_words(array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array)
    return parents, [w.casefold() for w in words.to_pylist()]


def _as_arrow(captions: Sequence[str] | pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    if isinstance(captions, (pa.Array, pa.ChunkedArray)):
        array = captions
    else:
        array = pa.array(captions, type=pa.large_string(), from_pandas=True)
    return pc.fill_null(array.cast(pa.large_string()), "")


def _split_words(chunk: pa.Array) -> tuple[pa.Array, np.ndarray]:
    split = pc.split_pattern_regex(chunk, WORD_SEPARATOR)
    flat, parents = pc.list_flatten(split), pc.list_parent_indices(split)
    nonempty = pc.not_equal(pc.utf8_length(flat), 0)
    return flat.filter(nonempty), parents.filter(nonempty).to_numpy().astype(np.int64)


def build_index(captions: Sequence[str] | pa.Array | pa.ChunkedArray) -> DocTermIndex:
    """Vectorised, and the word regex runs once per distinct whitespace token rather than over all the text.

    Whitespace never sits inside a word, so captions are first split on whitespace (no regex) and the tokens
    dictionary-encoded; only the distinct tokens ("dog," "dog." "Dog") are split into words with RE2 and
    case-folded, and each token occurrence is expanded to its words. Split first, fold after (the definition's
    order; Arrow's utf8_lower is not full case-folding, e.g. ß, İ, final sigma): each distinct spelling is folded
    once, in Python, then merged.
    """
    array = _as_arrow(captions)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    n_docs = len(array)
    split = pc.utf8_split_whitespace(array)
    occurrences = pc.dictionary_encode(pc.list_flatten(split))
    parents = pc.list_parent_indices(split).to_numpy().astype(np.int64)
    token_of_occurrence = occurrences.indices.to_numpy().astype(np.int64)
    words, token_of_word = _split_words(occurrences.dictionary)  # words of each distinct token, in token order
    if len(words) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return DocTermIndex(n_docs, np.array([], dtype=object), empty, empty)
    spelled = pc.dictionary_encode(words)
    vocabulary, remap = _folded_vocabulary(spelled.dictionary)
    word_codes = remap[spelled.indices.to_numpy().astype(np.int64)]
    rows, codes = _expand_to_words(parents, token_of_occurrence, token_of_word, word_codes, len(occurrences.dictionary))
    width = np.int64(len(vocabulary))
    pairs = unique_int64(rows * width + codes)
    return DocTermIndex(n_docs, vocabulary, pairs // width, pairs % width)


def _folded_vocabulary(spellings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct case-folded words, position of each spelling's fold in it). Only spellings that folding
    could change (not ASCII lower-case) go through Python's str.casefold; merging and sorting stay in Arrow, whose
    byte order on UTF-8 is code-point order, as Python's."""
    changed = pc.invert(pc.and_(pc.string_is_ascii(spellings), pc.equal(spellings, pc.ascii_lower(spellings))))
    folded = spellings
    if pc.any(changed).as_py():
        replacements = pa.array([w.casefold() for w in spellings.filter(changed).to_pylist()], spellings.type)
        folded = pc.replace_with_mask(spellings, changed, replacements)
    merged = pc.dictionary_encode(folded)
    order = pc.array_sort_indices(merged.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    vocabulary = merged.dictionary.take(pa.array(order)).to_numpy(zero_copy_only=False)
    return vocabulary.astype(object), rank[merged.indices.to_numpy().astype(np.int64)]


def _expand_to_words(
    parents: np.ndarray,
    token_of_occurrence: np.ndarray,
    token_of_word: np.ndarray,
    word_codes: np.ndarray,
    n_tokens: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(caption, word code) for every word of every token occurrence. Token t owns word_codes[first[t]:first[t] +
    count[t]]; most tokens are one word, so those are looked up directly and only the rest are expanded."""
    count = np.bincount(token_of_word, minlength=n_tokens)
    first = np.concatenate([[0], np.cumsum(count)[:-1]])
    single_code = np.full(n_tokens, -1, dtype=np.int64)
    single_code[count == 1] = word_codes[first[count == 1]]
    direct = single_code[token_of_occurrence]
    is_single = direct >= 0
    several = np.flatnonzero(count[token_of_occurrence] > 1)
    per_occurrence = count[token_of_occurrence[several]]
    expanded_rows = np.repeat(parents[several], per_occurrence)
    offsets = np.repeat(
        first[token_of_occurrence[several]] - (np.cumsum(per_occurrence) - per_occurrence), per_occurrence
    )
    expanded_codes = word_codes[offsets + np.arange(len(expanded_rows))]
    return (
        np.concatenate([parents[is_single], expanded_rows]),
        np.concatenate([direct[is_single], expanded_codes]),
    )


def caption_index(workspace: Workspace) -> DocTermIndex:
    """The document-term index of the original captions, cached on disk by the manifest's content: every
    command and dashboard process that counts words loads it instead of tokenising again."""
    key = fingerprint("caption-index", __version__, file_fingerprint(workspace.config.original))
    path = workspace.config.cache_dir / "captions" / f"{key}.npz"
    vocabulary_path = path.with_suffix(".vocabulary.parquet")

    def load() -> DocTermIndex:
        arrays = np.load(path, allow_pickle=False)
        vocabulary = pd.read_parquet(vocabulary_path)["word"].to_numpy(dtype=object)
        return DocTermIndex(
            int(arrays["n_docs"]), vocabulary, arrays["rows"].astype(np.int64), arrays["terms"].astype(np.int64)
        )

    def save(index: DocTermIndex) -> None:
        compact = np.int32 if max(index.n_docs, len(index.vocabulary)) < np.iinfo(np.int32).max else np.int64
        atomic_save_parquet(vocabulary_path, pd.DataFrame({"word": index.vocabulary.astype(str)}))
        atomic_save_npz(
            path,
            {
                "n_docs": np.int64(index.n_docs),
                "rows": index.rows.astype(compact),
                "terms": index.terms.astype(compact),
            },
        )

    return load_or_compute([vocabulary_path, path], load, lambda: build_index(workspace.original["caption"]), save)
