"""Tokenisation and document frequency follow DESIGN.md §6 exactly."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest

from analysis.captions import build_index, tokenize


def reference_words(caption: str) -> list[str]:
    """An independent tokeniser: runs of characters whose Unicode category is a letter (L*) or number (N*)."""
    words, current = [], ""
    for char in caption:
        if unicodedata.category(char)[0] in "LN":
            current += char
        elif current:
            words.append(current.casefold())
            current = ""
    if current:
        words.append(current.casefold())
    return words


@pytest.mark.parametrize(
    "caption,expected",
    [
        ("Woman's hat", ["woman", "s", "hat"]),
        ("a woman-owned shop", ["a", "woman", "owned", "shop"]),
        ("WOMAN woman Woman", ["woman", "woman", "woman"]),
        ("Straße café naïve", ["strasse", "café", "naïve"]),
        ("snake_case 3D 42nd", ["snake", "case", "3d", "42nd"]),
        ("", []),
        ("  ...!!  ", []),
        ("女性が歩く", ["女性が歩く"]),
        ("ΣΟΦΙΑ σοφια", ["σοφια", "σοφια"]),
    ],
)
def test_words_are_runs_of_letters_or_digits_casefolded(caption: str, expected: list[str]) -> None:
    assert tokenize([caption])[1] == expected
    assert reference_words(caption) == expected


def test_document_frequency_counts_a_caption_once() -> None:
    index = build_index(["woman woman woman", "a man and a woman", "a dog", ""])
    counts = index.doc_counts()
    assert counts[index.term_id("woman")] == 2
    assert counts[index.term_id("a")] == 2
    assert index.n_docs == 4


def test_index_matches_reference_tokeniser_on_messy_captions() -> None:
    captions = [
        "<b>Woman</b> &amp; man",
        "N°5 perfume",
        "İstanbul at night",
        "ﬁne ligature",
        "tab\tsep\nline",
        "emoji 👩‍🔬 scientist",
        "100% cotton T-shirt",
        None,
    ]
    index = build_index(captions)
    for row, caption in enumerate(captions):
        expected = sorted(set(reference_words(caption or "")))
        got = sorted(index.vocabulary[index.terms[index.rows == row]].tolist())
        assert got == expected, caption


def test_doc_counts_on_a_subset_and_with_weights() -> None:
    index = build_index(["woman", "woman", "man", "man woman"])
    kept = np.array([True, False, True, True])
    woman = index.term_id("woman")
    assert index.doc_counts(kept)[woman] == 2
    assert index.doc_counts(kept, np.array([1.0, 0.0, 2.0, 3.0]))[woman] == pytest.approx(4.0)


def test_the_caption_index_is_cached_on_disk_and_follows_the_manifest(sample_copy) -> None:
    import pandas as pd

    from analysis.captions import caption_index
    from analysis.workspace import load_workspace

    workspace = load_workspace(sample_copy)
    built = caption_index(workspace)
    assert list((sample_copy / ".audit-cache" / "captions").glob("*.npz"))
    loaded = caption_index(workspace)
    assert loaded.n_docs == built.n_docs and loaded.vocabulary.tolist() == built.vocabulary.tolist()
    assert np.array_equal(loaded.rows, built.rows) and np.array_equal(loaded.terms, built.terms)
    assert loaded.rows.dtype == np.int64

    manifest = workspace.config.original
    frame = pd.read_parquet(manifest) if manifest.suffix == ".parquet" else pd.read_csv(manifest)
    frame.loc[0, "caption"] = "zebracorn"
    frame.to_parquet(manifest, index=False) if manifest.suffix == ".parquet" else frame.to_csv(manifest, index=False)
    assert caption_index(load_workspace(sample_copy)).term_id("zebracorn") is not None
