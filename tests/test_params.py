"""Parameters as data (analysis/params.py): one declaration gives the flags, the audit.toml section, validation
and the cache key; these are the rules every analysis's `Params` inherits."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from analysis.errors import AuditInputError
from analysis.params import ParamError, Params, setting


@dataclass(frozen=True)
class Example(Params):
    section = "example"
    threshold: float | None = setting(help="a cosine")
    rounds: int = setting(5, help="how many", minimum=1)
    keep: str = setting("centre", help="which", choices=("centre", "first"))
    exact: bool = setting(False, help="exhaustive")
    probe: tuple[str, ...] | None = setting(help="repeatable", metavar="TEXT")
    listing: Path | None = setting(help="a file", in_toml=False)
    scheduler: str | None = setting(help="where", in_toml=False, affects_result=False)


def parse(*argv: str) -> Example:
    parser = argparse.ArgumentParser()
    Example.add_arguments(parser)
    return Example.from_options(parser.parse_args(list(argv)))


def test_flags_are_generated_from_the_fields_with_their_types():
    params = parse("--threshold", "0.9", "--rounds", "3", "--keep", "first", "--exact", "--probe", "a", "--probe", "b")
    assert params == Example(threshold=0.9, rounds=3, keep="first", exact=True, probe=("a", "b"))


def test_a_flag_not_given_leaves_the_base_value_and_a_given_one_replaces_it():
    parser = argparse.ArgumentParser()
    Example.add_arguments(parser)
    base = Example(rounds=7, keep="first")
    assert Example.from_options(parser.parse_args([]), base) == base
    assert Example.from_options(parser.parse_args(["--rounds", "5"]), base).rounds == 5


def test_a_bad_flag_value_is_named_by_its_flag():
    with pytest.raises(AuditInputError, match=r"^--rounds must be at least 1, not 0\.$"):
        parse("--rounds", "0")


def test_construction_validates_types_choices_and_minimums():
    with pytest.raises(ParamError, match="rounds must be a whole number"):
        Example(rounds=2.5)
    with pytest.raises(ParamError, match="keep is 'last'.*use one of centre, first"):
        Example(keep="last")
    with pytest.raises(ParamError, match="exact must be true or false"):
        Example(exact=1)
    assert Example(threshold=1).threshold == 1.0 and isinstance(Example(threshold=1).threshold, float)


def test_the_toml_section_round_trips_and_leaves_out_what_toml_may_not_set():
    params = Example(threshold=0.8, rounds=2, keep="first", exact=True, probe=("x",), listing=Path("a.csv"))
    body = params.to_toml()
    assert body == {"threshold": 0.8, "rounds": 2, "keep": "first", "exact": True, "probe": ["x"]}
    assert Example.from_toml(body) == replace(params, listing=None)


def test_an_unknown_or_bad_toml_key_is_named_with_its_section_and_file():
    with pytest.raises(AuditInputError, match=r"audit.toml: unknown key\(s\) \['round'\] in \[example\].*rounds"):
        Example.from_toml({"round": 3}, where="audit.toml")
    with pytest.raises(AuditInputError, match=r"^audit.toml: \[example\] rounds must be a whole number, not '3'"):
        Example.from_toml({"rounds": "3"}, where="audit.toml")
    with pytest.raises(AuditInputError, match="unknown key"):
        Example.from_toml({"scheduler": "local"})


def test_the_fingerprint_follows_every_result_field_and_ignores_where_it_runs():
    base = Example()
    changed = [
        replace(base, threshold=0.5),
        replace(base, rounds=6),
        replace(base, keep="first"),
        replace(base, exact=True),
        replace(base, probe=("a",)),
        replace(base, listing=Path("l.csv")),
    ]
    keys = {base.fingerprint()} | {params.fingerprint() for params in changed}
    assert len(keys) == len(changed) + 1
    assert replace(base, scheduler="local:2").fingerprint() == base.fingerprint()
    assert Example(rounds=6).fingerprint() == replace(base, rounds=6).fingerprint()
