"""The CLI contract: user errors exit 2 with one line on stderr and no traceback."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import run_cli, write_manifest


def _assert_one_line_error(result, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    "rows,options,needle",
    [
        ([{"id": "a"}], ["--kept-column", "k"], "no 'caption' column"),
        ([{"id": "a", "caption": "x"}, {"id": "a", "caption": "y"}], ["--kept-column", "k"], "duplicate id 'a'"),
        ([{"id": "a", "caption": "x", "s": "bad"}], ["--score", "s=s:0.5"], "score column 's'"),
        ([{"id": "a", "caption": "x", "s": 0.1}], ["--score", "s=s:<inf"], "threshold of --score s is 'inf'"),
        (
            [{"id": "a", "caption": "x", "image": "../up.png", "k": True}],
            ["--kept-column", "k"],
            "escapes the images root",
        ),
        ([{"id": "a", "caption": "x", "k": "maybe"}], ["--kept-column", "k"], "non-boolean value"),
    ],
)
def test_init_rejects_bad_input_in_one_line(tmp_path: Path, rows, options, needle) -> None:
    write_manifest(tmp_path / "o.csv", rows)
    where = "--score s" if "threshold" in needle else "o.csv"  # a bad option is named by the option
    _assert_one_line_error(run_cli("init", str(tmp_path), "--original", "o.csv", *options, cwd=tmp_path), where, needle)


def test_init_missing_manifest(tmp_path: Path) -> None:
    _assert_one_line_error(
        run_cli("init", str(tmp_path), "--original", "nope.parquet", "--kept-column", "k", cwd=tmp_path),
        "nope.parquet",
        "not found",
    )


def test_init_reports_counts_on_success(tmp_path: Path) -> None:
    write_manifest(
        tmp_path / "o.csv", [{"id": "a", "caption": "x", "k": True}, {"id": "b", "caption": "y", "k": False}]
    )
    result = run_cli("init", str(tmp_path), "--original", "o.csv", "--kept-column", "k", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 original rows, 1 kept, 1 removed" in result.stderr
    assert (tmp_path / "audit.toml").exists()


def test_dashboard_on_missing_workspace_exits_2(tmp_path: Path) -> None:
    _assert_one_line_error(run_cli("dashboard", str(tmp_path / "nowhere")), "workspace directory not found")


def test_sample_refuses_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    _assert_one_line_error(run_cli("sample", str(tmp_path)), "not empty")
    assert (tmp_path / "x").read_text() == "keep me"


def test_every_command_has_help() -> None:
    for command in ("sample", "init", "dashboard"):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and "usage: pretrain-audit" in result.stdout


def test_removals_json_has_the_contract_fields(sample_dir: Path) -> None:
    import json

    result = run_cli("removals", str(sample_dir), "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {k: payload[k] for k in ("n_original", "n_kept", "n_removed")} == {
        "n_original": 1000,
        "n_kept": 950,
        "n_removed": 50,
    }
    assert payload["fraction_removed"] == 0.05
    assert {f["name"]: f["n_removed"] for f in payload["filters"]} == {"sexual": 30, "violence": 25}


def test_bias_json_with_reweighting(sample_copy: Path) -> None:
    import json

    result = run_cli(
        "bias",
        str(sample_copy),
        "--terms",
        "woman,man",
        "--reweight",
        "--json",
        "--weights-out",
        str(sample_copy / "w.parquet"),
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    terms = {t["term"]: t for t in payload["terms"]}
    assert terms["woman"]["original"] == {"count": 120, "frequency": 0.12}
    assert terms["woman"]["filtered"]["count"] == 98
    assert terms["woman"]["ci95"][0] < terms["woman"]["relative_change"] < terms["woman"]["ci95"][1]
    assert abs(terms["woman"]["reweighted"]["relative_change"]) <= 0.02
    assert {g["group"] for g in payload["groups"]} == {"women", "men"}
    assert payload["groups"][0]["members"][0] == "woman"
    import pandas as pd

    weights = pd.read_parquet(sample_copy / "w.parquet")
    assert len(weights) == 950 and abs(weights["weight"].mean() - 1) < 1e-9


def test_bias_unknown_phrase_term_exits_2(sample_dir: Path) -> None:
    _assert_one_line_error(run_cli("bias", str(sample_dir), "--terms", "young woman", "--json"), "not a single word")


def test_dedup_json_and_keep_list(sample_copy: Path) -> None:
    import json

    import pandas as pd

    result = run_cli(
        "dedup",
        str(sample_copy),
        "--json",
        "--exact",
        "--estimate-recall",
        "300",
        "--clusters",
        "8",  # K > 1: the default K for 1,000 images is 1, where clustered search is exact search
        "--out",
        str(sample_copy / "keep.parquet"),
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    for field in (
        "n_images",
        "n_pairs",
        "n_groups",
        "n_in_groups",
        "n_removed",
        "fraction_removed",
        "threshold",
        "clusters",
        "clusterings",
        "recall_vs_exact",
        "recall_estimate",
    ):
        assert field in payload
    assert payload["n_images"] == 1000 and payload["clusters"] == 8 and payload["clusterings"] == 5
    assert len(payload["recall_by_clusterings"]) == 5 and payload["recall_vs_exact"] >= 0.95
    estimate = payload["recall_estimate"]
    assert estimate["sampled_images"] == 300 and estimate["true_pairs"] > 0
    assert estimate["ci95"][0] <= payload["recall_vs_exact"] <= estimate["ci95"][1]
    assert estimate["ci95"][0] < 1.0, "an interval, not a point, even when every sampled pair was found"
    assert payload["n_removed"] == payload["n_in_groups"] - payload["n_groups"]
    keep = pd.read_parquet(sample_copy / "keep.parquet")
    assert list(keep.columns) == ["id", "group_id", "keep"]
    assert (~keep["keep"]).sum() == payload["n_removed"]
    assert keep["group_id"].isna().sum() == 1000 - payload["n_in_groups"]


def test_regurgitation_json(sample_copy: Path) -> None:
    import json

    result = run_cli("regurgitation", str(sample_copy), "--json", "--out", str(sample_copy / "m.parquet"))
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    # 14 of the 15 planted copies are verified on pixels (the 15th is a flat drawing: docs/analyses.md)
    assert (payload["n_generated"], payload["n_flagged"]) == (100, 14)
    assert payload["rate"] == 0.14 and len(payload["ci95"]) == 2
    assert payload["verification"]["method"] == "local-features"
    sample = payload["samples"][0]
    assert {"id", "best_match", "similarity", "flagged", "group_size"} <= set(sample)


def test_dedup_without_embeddings_says_to_prepare(bare_sample: Path) -> None:
    _assert_one_line_error(run_cli("dedup", str(bare_sample), "--json"), "pretrain-audit prepare")


def _rows() -> list[dict]:
    return [
        {"id": "a", "caption": "a woman", "similarity": 0.35, "punsafe": 0.1},
        {"id": "b", "caption": "a man", "similarity": 0.20, "punsafe": 0.1},
        {"id": "c", "caption": "a dog", "similarity": 0.31, "punsafe": 0.9},
    ]


def test_init_reads_paths_relative_to_the_current_directory(tmp_path: Path) -> None:
    """`init ws --original data/o.csv` from the folder that holds data/, not from inside ws/."""
    write_manifest(tmp_path / "data" / "o.csv", _rows())
    result = run_cli("init", "ws", "--original", "data/o.csv", "--score", "u=punsafe:0.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 original rows, 2 kept, 1 removed" in result.stderr
    stored = (tmp_path / "ws" / "audit.toml").read_text()
    assert f'manifest = "{tmp_path / "data" / "o.csv"}"' in stored, stored
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert run_cli("removals", str(tmp_path / "ws"), cwd=other).returncode == 0


def test_init_with_a_below_threshold_score(tmp_path: Path) -> None:
    write_manifest(tmp_path / "o.parquet", _rows())
    result = run_cli("init", "ws", "--original", "o.parquet", "--score", "clip=similarity:<0.28", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "1 removed" in result.stderr and "clip: removed when 'similarity' < 0.28" in result.stderr


def test_init_with_the_laion_preset_names_what_it_could_not_apply(tmp_path: Path) -> None:
    write_manifest(tmp_path / "o.parquet", _rows())
    result = run_cli("init", "ws", "--original", "o.parquet", "--laion-filters", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 original rows, 1 kept, 2 removed" in result.stderr
    assert "not applied (no such column): LAION filter watermark" in result.stderr


def test_init_with_no_filter_audits_one_dataset(tmp_path: Path) -> None:
    write_manifest(tmp_path / "o.csv", _rows())
    result = run_cli("init", "ws", "--original", "o.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 kept, 0 removed" in result.stderr and "No filter defined" in result.stderr
    removals = run_cli("removals", "ws", cwd=tmp_path)
    _assert_one_line_error(removals, "no filter is defined in this workspace", "--laion-filters")


@pytest.mark.parametrize("name", ["o.csv.gz", "o.jsonl.gz", "o.tsv", "o.tsv.gz"])
def test_init_reads_compressed_and_tab_separated_manifests(tmp_path: Path, name: str) -> None:
    frame = pd.DataFrame(_rows())
    path = tmp_path / name
    if ".jsonl" in name:
        frame.to_json(path, orient="records", lines=True, compression="gzip")
    else:
        frame.to_csv(path, index=False, sep="\t" if ".tsv" in name else ",")
    result = run_cli("init", "ws", "--original", name, "--score", "u=punsafe:0.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 original rows, 2 kept, 1 removed" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("removals", "{ws}", "--json"),
        ("bias", "{ws}", "--terms", "young woman", "--json"),
        ("dedup", "{nowhere}"),
        ("init", "--help"),
        ("--version",),
    ],
)
def test_the_cli_run_inside_the_tests_prints_and_exits_as_the_real_command(
    args: tuple[str, ...], sample_dir: Path, tmp_path: Path
) -> None:
    """Most tests run the CLI's `main` in their own process (tests/helpers.py `run_cli`); it must answer as the
    installed `pretrain-audit` does."""
    argv = [part.format(ws=sample_dir, nowhere=tmp_path / "nowhere") for part in args]
    inside, real = run_cli(*argv), run_cli(*argv, subprocess_only=True)
    assert (inside.returncode, inside.stdout, inside.stderr) == (real.returncode, real.stdout, real.stderr)
