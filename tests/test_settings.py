"""An analysis's settings in audit.toml (`[dedup] clusterings = 3`): one section per analysis, read through its
Params, honoured by the command, `check` and the report, overridden by a flag, and refused with one line naming
the section and key when wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.errors import AuditInputError
from analysis.registry import by_name, open_workspace
from analysis.workspace import update_config
from dashboard import components
from tests.helpers import run_cli


def set_section(root: Path, section: str, body: dict) -> None:
    def change(config: dict) -> None:
        config[section] = body

    update_config(root, change)


def dedup_json(root: Path, *flags: str) -> dict:
    result = run_cli("dedup", str(root), "--json", "--verify", "none", *flags)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_setting_in_audit_toml_is_what_the_command_runs_and_a_flag_overrides_it(sample_copy: Path) -> None:
    set_section(sample_copy, "dedup", {"clusterings": 3, "keep": "first"})
    assert dedup_json(sample_copy)["clusterings"] == 3
    assert dedup_json(sample_copy, "--clusterings", "2")["clusterings"] == 2


def test_the_report_check_and_headline_read_the_same_settings(sample_copy: Path) -> None:
    set_section(sample_copy, "dedup", {"clusterings": 2, "verify": "none"})
    workspace = open_workspace(sample_copy)
    dedup = by_name("dedup")
    assert dedup.settings(workspace).clusterings == 2
    assert dedup.run(workspace, dedup.settings(workspace)).result.clusterings == 2
    headline = dedup.headline(workspace)
    assert headline is not None and "not verified on pixels" in (headline.finding or "")


def test_a_misspelt_section_is_one_error_naming_it_and_the_sections_there_are(sample_copy: Path) -> None:
    (sample_copy / "audit.toml").write_text(
        (sample_copy / "audit.toml").read_text() + "\n[dedupe]\nclusterings = 3\n", encoding="utf-8"
    )
    result = run_cli("dedup", str(sample_copy))
    assert result.returncode == 2
    assert "unknown section [dedupe]" in result.stderr and "dedup, regurgitation" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"clusterings": 0}, r"\[dedup\] clusterings must be at least 1, not 0"),
        ({"clusterings": "3"}, r"\[dedup\] clusterings must be a whole number, not '3'"),
        ({"keep": "last"}, r"\[dedup\] keep is 'last'.*centre, first, resolution"),
        ({"cluster": 3}, r"unknown key\(s\) \['cluster'\] in \[dedup\].*clusterings"),
        ({"scheduler": "local"}, r"unknown key\(s\) \['scheduler'\] in \[dedup\]"),
    ],
)
def test_a_bad_setting_is_named_with_its_section_and_the_fix(sample_copy: Path, body: dict, expected: str) -> None:
    config = sample_copy / "audit.toml"
    lines = "\n".join(f"{key} = {json.dumps(value)}" for key, value in body.items())
    config.write_text(config.read_text() + f"\n[dedup]\n{lines}\n", encoding="utf-8")
    with pytest.raises(AuditInputError, match=expected):
        open_workspace(sample_copy)


def test_the_review_queue_samples_what_the_settings_flag(sample_copy: Path) -> None:
    """A setting changes the population reviewers judge exactly as it changes what the command flags."""
    set_section(sample_copy, "regurgitation", {"verify": "none", "threshold": 0.5})
    workspace = open_workspace(sample_copy)
    regurgitation = by_name("regurgitation")
    flagged = regurgitation.run(workspace, regurgitation.settings(workspace)).n_flagged
    _, population = regurgitation.review_population(workspace)
    assert len(population) == flagged
    default_flagged = regurgitation.run(workspace, regurgitation.params()).n_flagged
    assert flagged != default_flagged


def test_the_workspace_docs_list_every_setting_of_every_analysis() -> None:
    """docs/workspace.md's table is the users' reference: a parameter added to a Params must appear there."""
    from analysis.registry import ANALYSES

    docs = (Path(__file__).resolve().parents[1] / "docs" / "workspace.md").read_text(encoding="utf-8")
    for analysis in ANALYSES:
        keys = analysis.Params.toml_keys()
        if keys:
            row = f"| `[{analysis.name}]` | " + ", ".join(f"`{key}`" for key in keys) + " |"
            assert row in docs, row


def test_the_duplicates_page_starts_from_the_workspace_settings_and_shows_the_commands_answer(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page builds the command's parameters: with `[dedup] verify = "none"` it opens on cosine alone at the set
    threshold, and its counts are exactly what `pretrain-audit dedup` prints at those settings."""
    from tests.test_dashboard_pages import open_page

    set_section(sample_copy, "dedup", {"verify": "none", "threshold": 0.93, "clusterings": 3})
    app = open_page("duplicates", sample_copy, monkeypatch)
    assert app.radio(key="d-mode").value == components.COSINE_MODE
    assert app.slider(key="d-threshold").value == pytest.approx(0.93)
    assert any("union over 3 clusterings" in caption.value for caption in app.caption)
    assert any(caption.value.startswith("Set in audit.toml [dedup]: verify = 'none'") for caption in app.caption)
    printed = dedup_json(sample_copy)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Groups"] == f"{printed['n_groups']:,}" and metrics["Duplicate pairs"] == f"{printed['n_pairs']:,}"
    app.slider(key="d-threshold").set_value(0.97).run()  # a control moved: it wins over the section
    moved = dedup_json(sample_copy, "--threshold", "0.97")
    assert moved["n_pairs"] != printed["n_pairs"]
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Duplicate pairs"] == f"{moved['n_pairs']:,}"


def test_the_regurgitation_page_verifies_at_the_workspaces_inlier_setting(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_dashboard_pages import open_page

    set_section(sample_copy, "regurgitation", {"inliers": 20, "tiers": "copy,same-scene"})
    app = open_page("regurgitation", sample_copy, monkeypatch)
    assert app.slider(key="r-inliers").value == 20
    assert app.toggle(key="r-same-scene").value is True
    printed = json.loads(run_cli("regurgitation", str(sample_copy), "--json").stdout)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Flagged as likely copies"] == f"{printed['n_flagged']:,}"


def test_bias_settings_reach_the_command_the_reweighted_gate_and_the_page(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`[bias] clip` fits the reweighting the command prints and the gate judges by; `[bias] terms` is where the
    Bias page's term box starts."""
    from tests.test_dashboard_pages import open_page

    set_section(sample_copy, "bias", {"terms": "dog,cat", "clip": 5.0, "reweight_features": "captions"})
    printed = json.loads(run_cli("bias", str(sample_copy), "--reweight", "--json").stdout)
    assert printed["reweighting"]["clip"] == 5.0 and [t["term"] for t in printed["terms"]] == ["dog", "cat"]
    gate = json.loads(
        run_cli("check", str(sample_copy), "--max-term-shift", "dog=0.9", "--reweighted", "--json").stdout
    )["gates"][0]
    dog = next(t for t in printed["terms"] if t["term"] == "dog")
    assert gate["measured"] == pytest.approx(abs(dog["reweighted"]["relative_change"]))
    app = open_page("bias", sample_copy, monkeypatch)
    assert app.text_input(key="b-terms-workspace default").value == "dog,cat"


def test_the_removals_page_measures_the_terms_the_command_measures(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_dashboard_pages import open_page

    set_section(sample_copy, "removals", {"terms": "dog,cat"})
    printed = json.loads(run_cli("removals", str(sample_copy), "--json").stdout)
    assert {row["name"] for row in printed["by_term"]} >= {"dog", "cat"}
    app = open_page("removals", sample_copy, monkeypatch)
    chart = app.get("plotly_chart")[0].proto.spec
    assert "\\u201cdog\\u201d" in chart and "\\u201cwoman\\u201d" not in chart  # “dog”, quoted as a term


def test_the_duplicate_gate_judges_what_the_command_prints_at_the_workspaces_settings(sample_copy: Path) -> None:
    set_section(sample_copy, "dedup", {"verify": "none", "threshold": 0.93})
    printed = dedup_json(sample_copy)
    result = run_cli("check", str(sample_copy), "--max-duplicate-fraction", "1", "--json")
    gate = next(g for g in json.loads(result.stdout)["gates"] if g["gate"] == "near-duplicate fraction removed")
    measured = printed["n_images"] - printed["n_without_embedding"]
    assert gate["measured"] == pytest.approx(printed["n_removed"] / measured)
    assert "cosine ≥ 0.93" in gate["detail"]
