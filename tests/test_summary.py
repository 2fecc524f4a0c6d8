"""The executive summary (page 1 of the report, top of the Overview) and the `[gates]` it judges by: its figures are
those of the `--json` outputs, its gates those of `check`, and what it could not measure is named with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.summary import executive_summary
from analysis.workspace import load_workspace, update_config
from tests.helpers import run_cli


def findings(workspace: Path) -> dict[str, str]:
    return {h.audit: h.finding for h in executive_summary(load_workspace(workspace)).measured}


def json_of(*args: str) -> dict:
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_each_headline_carries_the_figures_of_its_json_output(sample_dir: Path) -> None:
    found = findings(sample_dir)
    removals = json_of("removals", str(sample_dir))
    assert f"({removals['fraction_removed']:.2%})" in found["Removals"]
    regurgitation = json_of("regurgitation", str(sample_dir))
    low, high = regurgitation["ci95"]
    assert f"({regurgitation['rate']:.1%}, 95% CI {low:.1%}–{high:.1%})" in found["Regurgitation"]
    dedup = json_of("dedup", str(sample_dir))
    assert (
        f"dedup removes {dedup['n_removed']:,} of 1,000 images ({dedup['fraction_removed']:.1%})" in found["Duplicates"]
    )


def test_the_bias_headline_names_the_two_terms_that_moved_most_with_their_intervals(sample_dir: Path) -> None:
    """DALL·E 2's own headline: “woman” fell 14%, “man” 6% (the sample plants exactly that)."""
    terms = {t["term"]: t for t in json_of("bias", str(sample_dir), "--reweight")["terms"]}
    moved = sorted(
        (t for t in terms.values() if t["relative_change"] is not None), key=lambda t: -abs(t["relative_change"])
    )
    bias = findings(sample_dir)["Bias"]
    first, second = moved[0], moved[1]
    assert bias.startswith(f"“{first['term']}” fell {abs(first['relative_change']):.1%}")
    assert f"“{second['term']}” fell {abs(second['relative_change']):.1%}" in bias
    assert f"95% CI {first['ci95'][0]:+.1%} to {first['ci95'][1]:+.1%}" in bias
    assert f"{first['reweighted']['relative_change']:+.1%} after reweighting" in bias


def test_the_sample_is_judged_by_its_gates_in_audit_toml(sample_dir: Path) -> None:
    summary = executive_summary(load_workspace(sample_dir))
    statuses = {judged.gate.name: judged.status for judged in summary.gates}
    assert statuses == {
        "removed fraction": "pass",
        "|shift of 'woman'|": "fail",
        "|shift of 'man'|": "pass",
        "near-duplicate fraction removed": "pass",
        "regurgitation rate": "fail",
    }
    assert summary.gates_verdict == "2 of 5 gates failed or could not be measured"


def test_check_without_flags_judges_by_the_gates_in_audit_toml(sample_copy: Path) -> None:
    result = run_cli("check", str(sample_copy), "--json")
    assert result.returncode == 1, result.stderr
    payload = json.loads(result.stdout)
    assert {g["gate"]: g["status"] for g in payload["gates"]}["regurgitation rate"] == "fail"
    flags = run_cli("check", str(sample_copy), "--max-regurgitation-rate", "0.5", "--json")
    assert flags.returncode == 0, "flags given on the command line replace [gates]"


def test_an_unknown_gate_in_audit_toml_is_named_and_the_summary_still_opens(sample_copy: Path) -> None:
    update_config(sample_copy, lambda body: body["gates"].update({"max-woman-shift": 0.1}))
    result = run_cli("check", str(sample_copy))
    assert result.returncode == 2
    assert "audit.toml" in result.stderr and "unknown key 'max-woman-shift' in [gates]" in result.stderr
    summary = executive_summary(load_workspace(sample_copy))
    assert summary.gates == [] and "max-woman-shift" in summary.gates_verdict
    assert summary.measured, "the findings do not depend on the gates"


def test_a_gate_value_that_is_not_a_number_is_named(sample_copy: Path) -> None:
    update_config(sample_copy, lambda body: body["gates"].update({"max-removed-fraction": "ten percent"}))
    result = run_cli("check", str(sample_copy))
    assert result.returncode == 2 and "[gates]" in result.stderr and "ten percent" in result.stderr


def test_what_was_not_measured_is_listed_with_why(sample_copy: Path) -> None:
    update_config(sample_copy, lambda body: body.pop("generated"))
    summary = executive_summary(load_workspace(sample_copy))
    missing = {h.audit: h.not_measured for h in summary.not_measured}
    assert "no generated samples" in missing["Regurgitation"]
    assert "match-hashes" in missing["Known-bad hashes"]
    assert "Regurgitation" not in {h.audit for h in summary.measured}


def test_without_a_filter_the_removal_audits_say_so(sample_copy: Path) -> None:
    update_config(sample_copy, lambda body: body.pop("filtered"))
    missing = {h.audit: h.not_measured for h in executive_summary(load_workspace(sample_copy)).not_measured}
    assert missing["Removals"].startswith("no filter is defined") and "Visual concepts" in missing
    assert "Bias" in missing


def test_a_caption_only_audit_measures_the_captions_and_says_why_not_the_pixels(tmp_path: Path) -> None:
    from analysis.summary import CAPTIONS_ONLY
    from analysis.workspace import init_workspace
    from tests.helpers import write_manifest

    rows = [
        {"id": str(i), "caption": "a woman walking" if i % 4 else "a red car", "kept": i % 3 != 0} for i in range(300)
    ]
    write_manifest(tmp_path / "original.parquet", rows)
    init_workspace(tmp_path, original=tmp_path / "original.parquet", kept_column="kept", name="captions only")
    summary = executive_summary(load_workspace(tmp_path))
    measured = {h.audit for h in summary.measured}
    assert {"Removals", "Bias"} <= measured and not measured & {"Visual concepts", "Duplicates", "Regurgitation"}
    missing = {h.audit: h.not_measured for h in summary.not_measured}
    assert missing["Visual concepts"] == missing["Duplicates"] == CAPTIONS_ONLY


@pytest.mark.parametrize("name", ['a"b', "x</style><script>alert(1)</script>", "back\\slash"])
def test_a_workspace_name_cannot_break_out_of_the_page_footer(name: str) -> None:
    from analysis.report_layout import print_style

    footer = print_style(name, "a4").split("@bottom-left{content:")[1].split(";font")[0]
    assert footer.startswith('"') and footer.endswith('"')
    assert not {'"', "<", ">", ";"} & set(footer[1:-1].replace("\\", "")[: len(footer)])
