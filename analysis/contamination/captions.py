"""Caption contamination: the evaluation captions that are in the training set, exactly once normalised (case,
punctuation, spacing, HTML entities) or nearly: the same words in the same order with a few added or dropped (a
site's boilerplate before or after, a word lost, a caption cut short) or misspelt. Two captions filled into one
template with different content ("general view of the meeting room" / "... of the players") and paraphrases (COCO's
five captions of one image) are not copies and must not match.

Near-exact is `near_similarity`: the share of the longer caption's words that the other keeps in the same order
(difflib's alignment of the two word lists), a misspelt word counting as kept; any word replaced by a different
word makes it 0. Candidates come from MinHash locality-sensitive hashing on the captions' word sets (datasketch,
`num_perm` permutations, at a Jaccard floor below what a near copy can have), so a million training captions are
not aligned with every evaluation caption; each candidate is then aligned, so LSH can only miss a match, never
invent one. Its recall against every pair is measured in bench/caption_contamination.py, where the defaults come
from.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from analysis.captions import normalise_caption

NEAR_THRESHOLD = 0.9  # chosen on Conceptual Captions (tuning), reported on LAION (test): docs/benchmarks.md
CANDIDATE_JACCARD = 0.3  # word-set Jaccard floor of the LSH candidates (a near copy at the threshold is above it)
NUM_PERM = 128
CHUNK_CAPTIONS = 50_000  # training captions hashed at a time
TYPO_LETTERS = 2  # two words of 4+ letters and one length that differ in at most this many places: a misspelling


def is_typo(a: str, b: str) -> bool:
    """A letter swapped for its neighbour or mistyped; an inflection ("actor"/"actors") changes the length and is
    another word."""
    return len(a) == len(b) >= 4 and sum(x != y for x, y in zip(a, b)) <= TYPO_LETTERS


def near_similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """The share of the longer word list that the other keeps in order (insertions and deletions allowed, a
    misspelt word kept); 0.0 when a word is replaced by another word: a template filled with other content."""
    if not a or not b:
        return 0.0
    kept = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            kept += i2 - i1
        elif tag == "replace":
            if i2 - i1 != j2 - j1 or not all(is_typo(x, y) for x, y in zip(a[i1:i2], b[j1:j2])):
                return 0.0
            kept += i2 - i1
    return kept / max(len(a), len(b))


def match_captions(
    evaluation: Sequence[str],
    training: Sequence[str],
    *,
    threshold: float = NEAR_THRESHOLD,
    num_perm: int = NUM_PERM,
    seed: int = 1,
    chunk: int = CHUNK_CAPTIONS,
    workers: int = 1,
    run_chunks: Callable[[Callable, list], Iterable] | None = None,
) -> pd.DataFrame:
    """Every (evaluation row, training row) whose captions are the same once normalised (`kind` "exact",
    similarity 1.0) or near copies (`near_similarity` ≥ `threshold`, "near"), sorted by evaluation row, then
    similarity (highest first). An empty caption matches nothing.

    The evaluation set (thousands) is indexed, and the training captions (up to millions) stream past it in chunks
    of `chunk`, over `workers` processes (or `run_chunks`, e.g. a Dask cluster's map): memory stays that of the
    evaluation set and one chunk per worker (indexing a million training captions took ~1 GB per 100,000;
    bench/caption_contamination_scale.py). LSH's band collisions are symmetric, so the candidates are those of
    indexing the training side."""
    from analysis.parallel import parallel_map

    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    frozen = tuple(evaluation)
    jobs = [
        (frozen, list(training[start : start + chunk]), start, threshold, num_perm, seed)
        for start in range(0, len(training), chunk)
    ]
    found = run_chunks(match_chunk, jobs) if run_chunks else parallel_map(match_chunk, jobs, workers, serial_below=2)
    rows = [row for part in found for row in part]
    frame = pd.DataFrame(rows, columns=["eval_row", "train_row", "kind", "similarity"])
    return frame.sort_values(["eval_row", "similarity", "train_row"], ascending=[True, False, True]).reset_index(
        drop=True
    )


@lru_cache(maxsize=1)
def _evaluation_index(evaluation: tuple[str, ...], num_perm: int, seed: int):
    """The evaluation captions' words, their exact-text lookup and their MinHash LSH: built once per process (a
    worker matching many chunks of one evaluation set builds it once)."""
    from datasketch import MinHash, MinHashLSH

    eval_words = [normalise_caption(c).split() for c in evaluation]
    by_text: dict[tuple[str, ...], list[int]] = {}
    for row, words in enumerate(eval_words):
        if words:
            by_text.setdefault(tuple(words), []).append(row)
    lsh = MinHashLSH(threshold=CANDIDATE_JACCARD, num_perm=num_perm)
    digests = MinHash.bulk([[w.encode() for w in set(words)] for words in eval_words], num_perm=num_perm, seed=seed)
    with lsh.insertion_session() as session:
        for row, (digest, words) in enumerate(zip(digests, eval_words)):
            if words:
                session.insert(row, digest, check_duplication=False)
    return eval_words, by_text, lsh


def match_chunk(
    job: tuple[tuple[str, ...], list[str], int, float, int, int],
) -> list[tuple[int, int, str, float]]:
    """Worker: the matches of one chunk of training captions (rows numbered from `start`)."""
    from datasketch import MinHash

    evaluation, training, start, threshold, num_perm, seed = job
    eval_words, by_text, lsh = _evaluation_index(evaluation, num_perm, seed)
    train_words = [normalise_caption(c).split() for c in training]
    queries = MinHash.bulk([[w.encode() for w in set(words)] for words in train_words], num_perm=num_perm, seed=seed)
    rows: list[tuple[int, int, str, float]] = []
    for offset, (digest, words) in enumerate(zip(queries, train_words)):
        if not words:
            continue
        row = start + offset
        exact = by_text.get(tuple(words), [])
        rows += [(match, row, "exact", 1.0) for match in exact]
        for match in lsh.query(digest):
            if match in exact:
                continue
            similarity = near_similarity(eval_words[match], words)
            if similarity >= threshold:
                rows.append((int(match), row, "near", similarity))
    return rows


def all_pair_similarities(
    evaluation: Sequence[str], training: Sequence[str], floor: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`near_similarity` of every (evaluation, training) pair that shares a word and whose word sets' Jaccard is at
    least `floor`, found by a sparse product (no LSH): the reference LSH's recall is measured against, and how a
    benchmark counts every pair compared. Returns (eval rows, train rows, similarities); exact pairs are 1.0."""
    from scipy import sparse

    eval_words = [normalise_caption(c).split() for c in evaluation]
    train_words = [normalise_caption(c).split() for c in training]
    vocabulary: dict[str, int] = {}

    def matrix(lists: list[list[str]]) -> sparse.csr_matrix:
        indptr, indices = [0], []
        for words in lists:
            indices += sorted({vocabulary.setdefault(w, len(vocabulary)) for w in words})
            indptr.append(len(indices))
        return sparse.csr_matrix((np.ones(len(indices), dtype=np.float32), indices, indptr))

    a, b = matrix(eval_words), matrix(train_words)
    width = len(vocabulary)
    a.resize((a.shape[0], width))
    b.resize((b.shape[0], width))
    shared = (a @ b.T).tocoo()
    sizes_a, sizes_b = np.diff(a.indptr)[shared.row], np.diff(b.indptr)[shared.col]
    keep = shared.data / (sizes_a + sizes_b - shared.data) >= floor
    rows, cols = shared.row[keep], shared.col[keep]
    similarity = np.array([near_similarity(eval_words[i], train_words[j]) for i, j in zip(rows, cols)])
    return rows, cols, similarity
