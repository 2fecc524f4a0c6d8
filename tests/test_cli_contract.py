"""The CLI's JSON on the sample is a contract: scripts and CI gates parse it. These snapshots were taken before
the analyses moved onto the registry (issue 15), when the refactored CLI matched them key for key, and rewritten
once when the sample's novel scenes became pixel-distinct and dedup and regurgitation became verified on pixels
(issue 14). A field that
disappears or changes its value fails here until the change is meant and the snapshot is rewritten with
PRETRAIN_AUDIT_UPDATE_GOLDEN=1; new fields are allowed (DESIGN.md §5: "more are welcome")."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from tests.helpers import run_cli

GOLDEN = Path(__file__).parent / "golden"
COMMANDS = {
    "prepare": ["prepare", "{ws}", "--json", "--no-progress"],
    "removals": ["removals", "{ws}", "--json"],
    "bias": ["bias", "{ws}", "--json"],
    "bias-reweight": ["bias", "{ws}", "--json", "--reweight", "--terms", "woman,man,dog"],
    "dedup": ["dedup", "{ws}", "--json"],
    "dedup-exact": ["dedup", "{ws}", "--json", "--exact", "--clusters", "4", "--threshold", "0.92"],
    "regurgitation": ["regurgitation", "{ws}", "--json"],
    "verdicts": ["verdicts", "{ws}", "--json"],
    "check": [
        "check",
        "{ws}",
        "--json",
        "--max-removed-fraction",
        "0.5",
        "--max-term-shift",
        "woman=0.05",
        "--max-regurgitation-rate",
        "0.2",
        "--max-duplicate-fraction",
        "0.5",
    ],
}


def assert_same(actual, expected, where: str = "$") -> None:
    """Equal structure and values; floats to 1e-6 (summation order may differ between numpy builds)."""
    if isinstance(expected, float) or isinstance(actual, float):
        assert isinstance(actual, (int, float)) and math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-9), (
            f"{where}: {actual!r} != {expected!r}"
        )
    elif isinstance(expected, dict):
        missing = sorted(set(expected) - set(actual)) if isinstance(actual, dict) else actual
        assert isinstance(actual, dict) and not missing, f"{where}: missing keys {missing!r}"
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: length differs"
        for position, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{where}[{position}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.slow
@pytest.mark.parametrize("name", list(COMMANDS))
def test_cli_json_matches_the_recorded_contract(name: str, sample_without_results: Path) -> None:
    args = [part.format(ws=sample_without_results) for part in COMMANDS[name]]
    completed = run_cli(*args)
    assert completed.returncode in (0, 1), completed.stderr
    payload = json.loads(completed.stdout)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("PRETRAIN_AUDIT_UPDATE_GOLDEN"):
        path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
    assert_same(payload, json.loads(path.read_text()))
