"""bench/mutation_check.py stays runnable: each mutation's line is still in its file and each test it names still
exists (two rows had gone stale unnoticed until a full run stopped on them)."""

from __future__ import annotations

import pytest

from bench.mutation_check import MUTATIONS
from tests.helpers import REPO


@pytest.mark.parametrize(
    ("name", "path", "old"), [(m[0], m[1], m[2]) for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_the_line_a_mutation_replaces_is_still_there(name: str, path: str, old: str) -> None:
    assert old in (REPO / path).read_text(), f"{name}: update bench/mutation_check.py"


def test_every_test_a_mutation_names_exists() -> None:
    missing = []
    for name, _, _, _, tests in MUTATIONS:
        for test in tests:
            file, _, function = test.partition("::")
            if f"def {function.split('[')[0]}(" not in (REPO / file).read_text():
                missing.append(f"{name}: {test}")
    assert not missing
