"""Nearest-neighbour search and all-pairs-above-threshold against brute force."""

from __future__ import annotations

import numpy as np

from analysis.index import exact_is_cheaper, exact_knn, exact_pairs_above, knn, pairs_above, recall_at_k


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_knn_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    base, queries = _unit(rng, 500, 32), _unit(rng, 40, 32)
    result = knn(queries, base, k=5)
    brute = np.argsort(-(queries @ base.T), axis=1)[:, :5]
    assert result.recall_at_k is None and "exact" in result.method
    assert recall_at_k(result.indices, brute) == 1.0
    assert np.allclose(result.similarities[:, 0], (queries @ base.T).max(1), atol=1e-5)


def test_ivf_knn_reaches_the_recall_target_and_reports_it() -> None:
    rng = np.random.default_rng(1)
    centres = _unit(rng, 50, 32)
    base = centres[rng.integers(0, 50, 20000)] + 0.3 * rng.normal(size=(20000, 32)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = base[:600] + 0.05 * rng.normal(size=(600, 32)).astype(np.float32)
    result = knn(queries, base, k=10, exact_limit=1000, tuning_queries=200)
    assert result.method.startswith("IVF") and result.recall_at_k >= 0.99
    brute = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    assert recall_at_k(result.indices, brute) >= 0.98


def test_exact_scan_in_chunks_over_a_float16_subset_returns_base_rows() -> None:
    rng = np.random.default_rng(3)
    base, queries = _unit(rng, 1000, 16).astype(np.float16), _unit(rng, 30, 16)
    rows = np.flatnonzero(rng.random(1000) < 0.6)
    similarities, indices = exact_knn(queries, base, 4, rows=rows, chunk=97)
    scores = queries @ base[rows].astype(np.float32).T
    assert np.array_equal(indices, rows[np.argsort(-scores, axis=1, kind="stable")[:, :4]])
    assert np.allclose(similarities, -np.sort(-scores, axis=1)[:, :4], atol=1e-5)


def test_few_queries_are_searched_exactly_even_against_a_large_base() -> None:
    # IVF needs an exact search of its tuning sample plus n·nlist to build: never cheaper for a few queries.
    assert exact_is_cheaper(1000, 10_000_000)
    assert not exact_is_cheaper(50_000, 1_000_000)
    assert exact_is_cheaper(50_000, 150_000)


def test_pairs_above_matches_brute_force_and_faiss_range_search() -> None:
    rng = np.random.default_rng(2)
    x = _unit(rng, 300, 8)
    x[50] = x[10]
    x[51] = x[10] + 0.01
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    similarities = x @ x.T
    i, j = np.nonzero(np.triu(similarities >= 0.8, k=1))
    expected = {(int(a), int(b)) for a, b in zip(i, j)}
    assert {tuple(p) for p in pairs_above(x, 0.8, block=64).tolist()} == expected
    assert {tuple(p) for p in exact_pairs_above(x, 0.8, block=100).tolist()} == expected


def test_pairs_above_within_a_subset_only() -> None:
    x = np.eye(4, dtype=np.float32)
    x[1] = x[0]
    x[3] = x[2]
    assert pairs_above(x, 0.99, subset=np.array([0, 1, 2])).tolist() == [[0, 1]]


def test_a_pair_at_the_threshold_is_decided_by_its_float64_similarity() -> None:
    """One process and a cluster's workers (other BLAS threads) must find the same pairs: a pair within float32
    rounding of the threshold is decided by its exact similarity, on both sides of it."""
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((300, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    upper = np.triu_indices(len(vectors), 1)
    chosen = float(np.sort(exact[upper])[-50])  # the 50th most similar pair's exact similarity
    for threshold in (chosen + 1e-9, chosen - 1e-9):  # far inside float32 rounding (1e-7), far outside float64's
        expected = {(i, j) for i, j in zip(*upper) if exact[i, j] >= threshold}
        pairs, similarities = pairs_above(vectors, threshold, block=64, with_similarities=True)
        assert {tuple(p) for p in pairs.tolist()} == expected
        assert (similarities >= np.float32(threshold) - 1e-6).all()


def test_an_exact_scan_gives_the_same_neighbours_and_values_however_the_base_is_cut() -> None:
    """One process scans the base in chunks, a cluster in partitions of any size (`[compute] task_rows`): the
    k nearest and their similarities must not depend on the cut, to the last bit."""
    # 1280-d as effnet-lite0's embeddings: at 64-d the BLAS products happened to agree for every cut
    base = _unit(np.random.default_rng(3), 1000, 1280).astype(np.float16)  # stored as prepare stores it
    queries = _unit(np.random.default_rng(4), 100, 1280)
    whole = exact_knn(queries, base, 5)
    for chunk in (300, 7):
        similarities, rows = exact_knn(queries, base, 5, chunk=chunk)
        assert np.array_equal(rows, whole[1]) and np.array_equal(similarities, whole[0]), chunk


def test_identical_training_images_tie_and_the_lower_row_comes_first() -> None:
    base = _unit(np.random.default_rng(5), 50, 32)
    base[40] = base[7]  # a byte-identical copy later in the manifest
    for chunk in (50, 20, 1):
        _, rows = exact_knn(base[[7]], base, 2, chunk=chunk)
        assert rows[0].tolist() == [7, 40], chunk
