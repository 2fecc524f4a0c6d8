"""One suite of checks every registered analysis must pass, as scikit-learn checks every estimator with
`parametrize_with_checks`: on the sample at its default options, and on a bare workspace (one manifest, no filter,
nothing prepared), each analysis keeps the contract that the CLI, the report, `check`, the summary and the
dashboard rely on (docs/ARCHITECTURE.md, "The analysis contract"). Adding an analysis to the registry makes this
suite check it, with no edit here."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from analysis.contract import Analysis, Headline, ReportContext, ReportSection
from analysis.errors import AuditInputError
from analysis.registry import ANALYSES
from analysis.workspace import load_workspace
from tests.helpers import run_cli

BY_NAME = pytest.mark.parametrize("analysis", ANALYSES, ids=[analysis.name for analysis in ANALYSES])


@pytest.fixture(scope="module")
def warmed(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the prepared, warmed sample (every analysis's default result is cached there) for this module."""
    target = tmp_path_factory.mktemp("conformance") / "ws"
    shutil.copytree(sample_dir, target, ignore=shutil.ignore_patterns("reviews.sqlite*", "*.lock"))
    return target


@pytest.fixture(scope="module")
def bare(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's original manifest and images alone: no filter, no generated samples, no evaluation set,
    nothing prepared."""
    root = tmp_path_factory.mktemp("conformance-bare")
    shutil.copy(sample_dir / "original.parquet", root / "original.parquet")
    shutil.copytree(sample_dir / "images" / "train", root / "images" / "train")
    created = run_cli("init", str(root), "--original", "original.parquet", "--images-root", "images", cwd=root)
    assert created.returncode == 0, created.stderr
    return root


@BY_NAME
def test_its_json_is_plain_json_and_is_what_the_cli_prints(analysis: Analysis, warmed: Path) -> None:
    payload = analysis.to_json(analysis.run(load_workspace(warmed), analysis.params()))
    assert isinstance(payload, dict) and payload
    text = json.dumps(payload, allow_nan=False)  # NaN or an object that is not JSON would fail here
    printed = run_cli(analysis.name, str(warmed), "--json")
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == json.loads(text)


@BY_NAME
def test_its_text_is_lines_of_words(analysis: Analysis, warmed: Path) -> None:
    lines = analysis.summary_lines(analysis.run(load_workspace(warmed), analysis.params()))
    assert lines and all(isinstance(line, str) and line.strip() for line in lines)
    printed = run_cli(analysis.name, str(warmed))
    assert printed.returncode == 0 and lines[0] in printed.stdout


@BY_NAME
def test_its_report_sections_and_headline_render(analysis: Analysis, warmed: Path) -> None:
    workspace = load_workspace(warmed)
    sections = analysis.report_sections(ReportContext(workspace, list(workspace.config.default_terms)))
    for section in sections:
        assert isinstance(section, ReportSection) and section.title
        assert section.summary or section.note or section.tables or section.figures
        for figure in section.figures.values():
            figure.to_json()
    headline = analysis.headline(workspace)
    assert headline is None or (isinstance(headline, Headline) and (headline.finding or headline.not_measured))


@BY_NAME
def test_on_a_bare_workspace_it_says_what_is_missing_instead_of_failing(analysis: Analysis, bare: Path) -> None:
    """`missing_input` answers; the headline and the report say why nothing was measured (a user-input error,
    which the summary turns into "not measured", is the only exception allowed)."""
    workspace = load_workspace(bare)
    missing = analysis.missing_input(workspace)
    assert missing is None or (len(missing) == 2 and all(part.strip() for part in missing))
    try:
        headline = analysis.headline(workspace)
    except AuditInputError as error:
        assert "prepare" in str(error)
    else:
        assert headline is None or headline.finding or headline.not_measured
    for section in analysis.report_sections(ReportContext(workspace, ["woman"])):
        assert section.title


@BY_NAME
def test_its_gates_run_only_when_asked(analysis: Analysis, warmed: Path) -> None:
    parser = argparse.ArgumentParser(add_help=False)
    analysis.add_gate_arguments(parser)
    assert analysis.gates(load_workspace(warmed), parser.parse_args([])) == []


@BY_NAME
def test_its_command_documents_itself(analysis: Analysis) -> None:
    """`pretrain-audit NAME --help` says what the command does (its line in the command list), not only its flags."""
    result = run_cli(analysis.name, "--help")
    assert result.returncode == 0 and f"usage: pretrain-audit {analysis.name}" in result.stdout
    assert " ".join(analysis.help[1:].split()) in " ".join(result.stdout.split())


@pytest.mark.parametrize("analysis", [a for a in ANALYSES if a.page], ids=[a.name for a in ANALYSES if a.page])
def test_its_page_opens_on_the_warmed_sample(analysis: Analysis, warmed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_dashboard_pages import open_page

    app = open_page(str(analysis.page), warmed, monkeypatch)  # asserts that the page raised nothing
    assert app.title and app.title[0].value


REVIEWED = [analysis for analysis in ANALYSES if analysis.review_kind]


@pytest.mark.parametrize("analysis", REVIEWED, ids=[analysis.name for analysis in REVIEWED])
def test_what_people_review_of_it_is_a_population_the_review_queue_is_given(analysis: Analysis, warmed: Path) -> None:
    """An analysis that declares a review kind gives the items of its review (ids and scores, each once), under a
    kind the verdict store knows, and the registry hands it to the review queue: one declared without the other
    would leave its flags unreviewable."""
    from analysis.registry import by_name
    from analysis.verdicts.store import VERDICTS_BY_KIND

    assert analysis.review_kind in VERDICTS_BY_KIND
    described, members = analysis.review_population(load_workspace(warmed))
    assert described and list(members.columns) == ["id", "score"] and members["id"].is_unique
    assert len(members) > 0, "the sample has items of every reviewed kind"
    assert by_name("review-queue").reviewed[analysis.review_kind] is analysis  # type: ignore[attr-defined]


def test_an_analysis_without_a_review_kind_has_no_population() -> None:
    for analysis in (a for a in ANALYSES if not a.review_kind):
        with pytest.raises(NotImplementedError):
            analysis.review_population(None)  # type: ignore[arg-type]


def _another_value(analysis: Analysis, name: str, current: object) -> object:
    """A valid value of this field other than the current one (a repeated field gets a one-item tuple); the
    choices are the flag's, which an analysis may narrow (the review kinds it is wired to)."""
    params_type = analysis.Params
    kind = params_type.kinds()[name]
    spec = next(spec for spec in dataclasses.fields(params_type) if spec.name == name)
    parser = argparse.ArgumentParser()
    analysis.add_arguments(parser)
    flag_choices = [action.choices for action in parser._actions if action.dest == name and action.choices]
    choices = flag_choices[0] if flag_choices else spec.metadata.get("choices")
    if choices:
        candidates: list[object] = [choice for choice in choices if choice != current]
    elif kind.base is bool:
        candidates = [not current]
    elif kind.base is int:
        candidates = [max(int(spec.metadata.get("minimum") or 0), int(current or 0)) + 3]
    elif kind.base is float:
        candidates = [float(current or 0.5) * 1.5 + 0.25]
    elif kind.base is Path:
        candidates = [Path("some/file.csv")]
    else:  # free text: the first that the field's own rules accept
        candidates = ["copy,same-scene", "woman,man", "text"]
    for candidate in candidates:
        value = (candidate,) if kind.repeated else candidate
        try:
            analysis.params(**{name: value})
        except AuditInputError:
            continue
        return value
    raise AssertionError(f"no other valid value found for {analysis.name}'s {name}")


def _argv(params_type: type, params: object) -> list[str]:
    """The command line that asks for `params` (every CLI field not at its default)."""
    argv: list[str] = []
    default = params_type()
    for spec in dataclasses.fields(params_type):
        value = getattr(params, spec.name)
        if not spec.metadata.get("in_cli", True) or value == getattr(default, spec.name):
            continue
        flag = params_type.flag(spec.name)
        if value is True:
            argv.append(flag)
        else:
            for item in value if isinstance(value, tuple) else (value,):
                argv += [flag, str(item)]
    return argv


@BY_NAME
def test_each_of_its_parameters_round_trips_through_the_cli_and_audit_toml(analysis: Analysis) -> None:
    """Every parameter, changed one at a time: the flags that ask for it parse back to the same parameters, its
    audit.toml section reads back to them, and its cache key changes exactly when the result can."""
    params_type = analysis.Params
    for spec in dataclasses.fields(params_type):
        base = analysis.params()
        changed = analysis.params(**{spec.name: _another_value(analysis, spec.name, getattr(base, spec.name))})
        if spec.metadata.get("in_cli", True):
            parser = argparse.ArgumentParser()
            analysis.add_arguments(parser)
            parsed = params_type.from_options(parser.parse_args(_argv(params_type, changed)), base)
            assert parsed == changed, spec.name
        if spec.metadata.get("in_toml", True):
            assert params_type.from_toml(changed.to_toml()) == changed, spec.name
        moves_key = changed.fingerprint() != base.fingerprint()
        assert moves_key == spec.metadata.get("affects_result", True), spec.name


@BY_NAME
def test_its_parameters_are_its_own_and_named_after_it(analysis: Analysis) -> None:
    """Two analyses sharing one Params class would share one audit.toml section and cache keys."""
    others = [other for other in ANALYSES if other is not analysis]
    assert all(other.Params is not analysis.Params for other in others)
    assert analysis.Params.section == analysis.name


@BY_NAME
def test_where_it_runs_never_moves_its_cache_key(analysis: Analysis) -> None:
    """The answers are the same on a cluster, so a result computed in this process serves `--scheduler local:2`."""
    params = analysis.params()
    if not hasattr(params, "scheduler"):
        pytest.skip(f"{analysis.name} runs in this process only")
    elsewhere = dataclasses.replace(params, scheduler="local:2")
    assert elsewhere.fingerprint() == params.fingerprint()
