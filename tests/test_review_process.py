"""The review process a trust-and-safety team runs: random queues, double review with adjudication, agreement,
and the exposure log with its cap."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from analysis.errors import AuditInputError
from analysis.review.agreement import agreement, cohen_kappa, fleiss_kappa
from analysis.review.queues import allocate, draw_queue, queue_estimate
from analysis.verdicts.decisions import decide, disagreements
from analysis.verdicts.exposure import exposure
from analysis.verdicts.store import VerdictStore
from bench.review_sampling import SCENARIOS, precision_replicates
from tests.helpers import REPO, run_cli


def test_stratified_queue_interval_covers_the_truth_where_a_sorted_gallery_is_biased() -> None:
    rising = next(iter(SCENARIOS))  # precision 0.15 at the lowest score, 0.95 at the highest
    for n in (12, 30):
        result = precision_replicates(rising, n, replicates=200)
        assert result["coverage"] >= 0.94, result
        assert abs(result["queue_bias"]) < 0.02, result
        assert result["gallery_bias"] > 0.3, result  # the top of a score-sorted gallery overstates precision


def test_allocation_is_proportional_with_at_least_two_per_stratum() -> None:
    assert allocate(np.array([100, 100, 100, 100]), 20).tolist() == [5, 5, 5, 5]
    assert allocate(np.array([970, 10, 10, 10]), 20).tolist() == [14, 2, 2, 2]
    assert allocate(np.array([1, 50]), 10).tolist() == [1, 9]  # a stratum is never asked for more than it holds


def test_a_queue_records_inclusion_probabilities_and_the_same_seed_draws_the_same_queue() -> None:
    population = pd.DataFrame({"id": [f"i{i}" for i in range(400)], "score": np.linspace(0.5, 1, 400)})
    queue = draw_queue(population, 40, "score-band", 4, seed=7)
    assert len(queue) == 40 and queue["item_id"].is_unique
    per_stratum = queue.groupby("stratum").agg(n=("item_id", "size"), size=("stratum_size", "first"))
    assert (per_stratum["n"] == 10).all() and (per_stratum["size"] == 100).all()
    assert np.allclose(queue["inclusion_probability"], 0.1)
    assert draw_queue(population, 40, "score-band", 4, seed=7)["item_id"].tolist() == queue["item_id"].tolist()
    assert not queue["stratum"].is_monotonic_increasing  # shuffled: the order reveals no score


def test_verdicts_outside_the_queue_do_not_enter_its_estimate(tmp_path: Path) -> None:
    items = pd.DataFrame(
        {
            "item_id": ["a", "b"],
            "stratum": "all",
            "stratum_size": 10,
            "stratum_sampled": 2,
            "inclusion_probability": 0.2,
        }
    )
    store = VerdictStore.for_workspace(tmp_path)
    store.record("removal", "a", "correct removal", "ana")
    store.record("removal", "b", "false positive", "ana")
    for outsider in ("x", "y", "z"):
        store.record("removal", outsider, "correct removal", "ana")
    estimate = queue_estimate("q", "removal", items, decide(store.history()))
    assert (estimate.decided, estimate.estimate) == (2, 0.5)


def test_two_reviewers_who_disagree_keep_both_votes_until_an_adjudicator_decides(tmp_path: Path) -> None:
    store = VerdictStore.for_workspace(tmp_path)
    store.record("removal", "a", "correct removal", "ana")
    store.record("removal", "a", "false positive", "ben")
    store.record("removal", "b", "unsure", "ana")
    store.record("removal", "b", "unsure", "ben")
    decisions = decide(store.history())
    queue = disagreements(decisions)
    assert queue["item_id"].tolist() == ["a"]
    assert queue.loc[0, "votes"] == "ana: correct removal; ben: false positive"
    assert decisions.set_index("item_id").loc["b", "status"] == "agreed"
    store.record("removal", "a", "false positive", "cleo", role="adjudicator")
    resolved = decide(store.history()).set_index("item_id").loc["a"]
    assert (resolved["verdict"], resolved["status"]) == ("false positive", "adjudicated")
    assert len(store.history()) == 5  # nothing was overwritten


def test_majority_rule_decides_where_unanimity_does_not() -> None:
    history = pd.DataFrame(
        {
            "kind": "removal",
            "item_id": "a",
            "verdict": ["copy", "copy", "not a copy"],
            "reviewer": ["ana", "ben", "cleo"],
            "role": "reviewer",
        }
    )
    assert decide(history, "unanimous").loc[0, "status"] == "disagreement"
    assert tuple(decide(history, "majority").loc[0, ["verdict", "status"]]) == ("copy", "majority")


def test_cohen_kappa_equals_scikit_learn_and_percent_agreement_is_counted() -> None:
    first = np.array(["c", "c", "f", "f", "u", "c", "c", "f", "c", "u", "c", "f"])
    second = np.array(["c", "f", "f", "f", "u", "c", "c", "c", "c", "f", "c", "f"])
    assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second), abs=1e-12)
    votes = pd.DataFrame(
        {
            "item_id": [f"i{i}" for i in range(12)] * 2,
            "reviewer": ["a"] * 12 + ["b"] * 12,
            "verdict": np.concatenate([first, second]),
        }
    )
    found = agreement(votes, "all")
    assert found.statistic == "Cohen's kappa" and found.n_items == 12
    assert found.percent_agreement == pytest.approx(9 / 12)
    assert found.kappa == pytest.approx(cohen_kappa_score(first, second))
    low, high = found.kappa_ci95
    assert low < found.kappa < high and not found.judgeable  # 12 items: shown, too few to judge


def test_fleiss_kappa_reproduces_the_published_worked_example() -> None:
    # Fleiss (1971) as worked on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters, 5 categories, κ = 0.210.
    counts = np.array(
        [
            [0, 0, 0, 0, 14],
            [0, 2, 6, 4, 2],
            [0, 0, 3, 5, 6],
            [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0],
            [3, 2, 6, 3, 0],
            [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0],
            [0, 2, 2, 3, 7],
        ],
        dtype=float,
    )
    assert fleiss_kappa(counts) == pytest.approx(0.2099, abs=1e-4)


def test_exposure_counts_the_last_hour_and_says_when_reveals_resume() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    times = [now - timedelta(minutes=m) for m in (70, 50, 20, 5)]
    reveals = pd.DataFrame(
        {"reviewer": ["ana", "ana", "ana", "ben"], "created_at": pd.to_datetime(times[:3] + [times[3]])}
    )
    seen = exposure(reveals, "ana", cap=2, now=now)
    assert (seen.last_hour, seen.remaining, seen.allows(1)) == (2, 0, False)
    assert seen.resume_at == now - timedelta(minutes=50) + timedelta(hours=1)
    assert exposure(reveals, "ana", cap=None, now=now).allows(10_000)


REVEALER = (
    "import sys; from pathlib import Path; from analysis.verdicts.store import VerdictStore\n"
    "store = VerdictStore(Path(sys.argv[1])); who = sys.argv[2]\n"
    "for i in range(30):\n"
    "    store.record_reveals(who, [f'{who}-{i}-a', f'{who}-{i}-b'], 'removals')\n"
)


def test_reveals_from_concurrent_reviewers_are_all_logged(tmp_path: Path) -> None:
    store = VerdictStore.for_workspace(tmp_path)
    processes = [
        subprocess.Popen([sys.executable, "-c", REVEALER, str(store.path), f"r{w}"], cwd=REPO) for w in range(5)
    ]
    assert [p.wait(timeout=120) for p in processes] == [0] * 5
    log = store.reveals()
    assert len(log) == 5 * 30 * 2 and log["item_id"].is_unique
    assert log.groupby("reviewer").size().tolist() == [60] * 5


def test_a_store_from_before_roles_is_migrated_without_losing_a_verdict(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "reviews.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE verdicts (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, item_id TEXT NOT NULL,"
            " verdict TEXT NOT NULL, reviewer TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL)"
        )
        connection.execute(
            "INSERT INTO verdicts (kind, item_id, verdict, reviewer, created_at) VALUES"
            " ('removal', 'a', 'unsure', 'ana', 1.0)"
        )
    history = VerdictStore.for_workspace(tmp_path).history()
    assert history[["item_id", "verdict", "role"]].values.tolist() == [["a", "unsure", "reviewer"]]


# The command line, on the sample.


def removed_ids(workspace: Path, count: int) -> list[str]:
    result = run_cli("review-queue", str(workspace), "--n", str(count), "--seed", "3", "--json")
    assert result.returncode == 0, result.stderr
    return [item["item_id"] for item in json.loads(result.stdout)["items"]]


def test_cli_double_review_disagreement_and_adjudication(sample_copy: Path) -> None:
    item = removed_ids(sample_copy, 4)[0]
    ws = str(sample_copy)
    assert (
        run_cli("verdicts", "add", ws, "--kind", "removal", f"{item}=correct removal", "--reviewer", "ana").returncode
        == 0
    )
    assert (
        run_cli("verdicts", "add", ws, "--kind", "removal", f"{item}=false positive", "--reviewer", "ben").returncode
        == 0
    )
    summary = json.loads(run_cli("verdicts", ws, "--json").stdout)
    assert [d["item_id"] for d in summary["disagreements"]] == [item]
    assert summary["n_verdicts"] == 2
    resolved = run_cli(
        "verdicts", "add", ws, "--kind", "removal", f"{item}=false positive", "--reviewer", "cleo", "--adjudicate"
    )
    assert resolved.returncode == 0, resolved.stderr
    summary = json.loads(run_cli("verdicts", ws, "--json").stdout)
    assert summary["disagreements"] == [] and summary["by_status"] == {"adjudicated": 1}
    agreement_json = json.loads(run_cli("verdicts", "agreement", ws, "--json").stdout)
    overall = next(a for a in agreement_json["agreement"] if a["group"] == "all filters")
    assert overall["n_items"] == 1 and overall["percent_agreement"] == 0.0


def test_cli_queue_estimate_counts_queue_verdicts(sample_copy: Path) -> None:
    ids = removed_ids(sample_copy, 6)
    ws = str(sample_copy)
    verdicts = [f"{ids[0]}=correct removal", f"{ids[1]}=correct removal", f"{ids[2]}=false positive"]
    assert run_cli("verdicts", "add", ws, "--kind", "removal", *verdicts, "--reviewer", "ana").returncode == 0
    again = json.loads(run_cli("review-queue", ws, "--n", "6", "--seed", "3", "--json").stdout)
    assert [item["item_id"] for item in again["items"]] == ids  # reopened, not redrawn
    estimate = again["estimate"]
    assert (estimate["decided"], estimate["pending"]) == (3, 3)
    assert 0 < estimate["estimate"] < 1 and estimate["ci95"][0] < estimate["estimate"] < estimate["ci95"][1]


def test_cli_add_rejects_unknown_ids_and_verdicts_and_records_nothing(sample_copy: Path) -> None:
    ws = str(sample_copy)
    item = removed_ids(sample_copy, 1)[0]
    result = run_cli(
        "verdicts",
        "add",
        ws,
        "--kind",
        "removal",
        f"{item}=correct removal",
        "nope=unsure",
        f"{item}=maybe",
        "--reviewer",
        "ana",
    )
    assert result.returncode == 2
    assert "unknown id 'nope'" in result.stderr and "'maybe' is not a removal verdict" in result.stderr
    assert json.loads(run_cli("verdicts", ws, "--json").stdout)["n_verdicts"] == 0


def test_import_validates_every_line_and_imports_once(sample_copy: Path, tmp_path: Path) -> None:
    ws = str(sample_copy)
    ids = removed_ids(sample_copy, 3)
    bad = tmp_path / "labels.csv"
    bad.write_text(
        "id,verdict,reviewer,time\n"
        f"{ids[0]},correct removal,ana,2026-11-26T09:00:00Z\n"
        f"{ids[1]},maybe,ana,2026-11-26T09:01:00Z\n"
        f"missing-id,unsure,ana,2026-11-26T09:02:00Z\n"
        f"{ids[2]},unsure,,2026-11-26\n"
        f"{ids[2]},unsure,ana,yesterday\n"
    )
    result = run_cli("verdicts", "import", ws, str(bad), "--kind", "removal")
    assert result.returncode == 2
    message = result.stderr
    assert str(bad) in message and "line 3: 'maybe'" in message and "line 4: unknown id" in message
    assert "line 5: a verdict needs a reviewer name" in message and "line 6: time 'yesterday' is not a date" in message
    assert json.loads(run_cli("verdicts", ws, "--json").stdout)["n_verdicts"] == 0  # nothing half-imported
    good = tmp_path / "good.csv"
    good.write_text(
        "id,verdict,reviewer,time,kind\n"
        f"{ids[0]},correct removal,ana,2026-11-26T09:00:00Z,removal\n"
        f"{ids[1]},false positive,ben,1795000000.5,removal\n"
    )
    first = json.loads(run_cli("verdicts", "import", ws, str(good), "--json").stdout)
    second = json.loads(run_cli("verdicts", "import", ws, str(good), "--json").stdout)
    assert (first["imported"], second["imported"], second["already_present"]) == (2, 0, 2)
    history = VerdictStore.for_workspace(sample_copy).history()
    assert history["created_at"].iloc[0] == pd.Timestamp("2026-11-26T09:00:00Z")


def test_export_writes_the_reveal_log_beside_the_verdicts(sample_copy: Path, tmp_path: Path) -> None:
    store = VerdictStore.for_workspace(sample_copy)
    store.record_reveals("ana", ["x1", "x2"], "removals")
    out = tmp_path / "verdicts.csv"
    assert run_cli("verdicts", str(sample_copy), "--out", str(out)).returncode == 0
    reveals = pd.read_csv(tmp_path / "verdicts-reveals.csv")
    assert reveals["item_id"].tolist() == ["x1", "x2"] and set(reveals["page"]) == {"removals"}


def test_review_settings_are_validated(sample_copy: Path) -> None:
    from analysis.workspace import read_config

    config = sample_copy / "audit.toml"
    config.write_text(config.read_text() + "\n[review]\nmax_reveals_per_hour = 0\n")
    with pytest.raises(AuditInputError, match=r"max_reveals_per_hour = 0 must be a whole number"):
        read_config(sample_copy)


def test_the_report_states_the_review_and_escapes_what_reviewers_typed(sample_copy: Path, tmp_path: Path) -> None:
    from analysis.report import write_report
    from analysis.workspace import load_workspace

    ids = removed_ids(sample_copy, 4)
    store = VerdictStore.for_workspace(sample_copy)
    store.record("removal", ids[0], "correct removal", "<b>ana</b>")
    store.record("removal", ids[0], "false positive", "ben")
    store.record_reveals("ben", ids[:3], "removals")
    html = write_report(load_workspace(sample_copy), tmp_path / "report.html").read_text()
    review = html[html.index("<h2>Review</h2>") : html.index("<h2>Provenance</h2>")]
    assert "The review needed 3 reveals of blurred images by 1 reviewer(s)." in review
    assert "Agreement between reviewers" in review and "Queue estimates" in review
    assert "<b>ana</b>" not in review and "&lt;b&gt;ana&lt;/b&gt;: correct removal; ben: false positive" in review


def test_kappas_interval_holds_the_truth_at_ten_items() -> None:
    """The percentile bootstrap alone held the population κ 89.5% of the time at 10 items; widened by t(n − 1) / z
    it holds it 94.5% (200 replicates of two reviewers who each judge right half the time, seed 0)."""
    from bench.review_sampling import kappa_replicates

    assert kappa_replicates(0.5, 10, replicates=200)["coverage"] >= 0.93


def test_a_queue_samples_exactly_the_population_it_names(sample_dir: Path) -> None:
    """Issue 47: no test guarded what a review queue draws from. A filter's queue holds that filter's removals, the
    all-filters queue every removed item once."""
    from analysis.registry import by_name
    from analysis.workspace import load_workspace

    population = by_name("review-queue").population  # type: ignore[attr-defined]
    workspace = load_workspace(sample_dir)
    ids = workspace.original["id"].astype(str)
    for name, removed in workspace.removed_by.items():
        assert set(population(workspace, "removal", name)[1]["id"]) == set(ids[removed]), name
    everything = population(workspace, "removal", None)[1]["id"]
    assert len(everything) == workspace.n_removed and set(everything) == set(ids[~workspace.kept])


def test_the_regurgitation_queue_draws_the_samples_that_regurgitation_and_check_flag(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 45: the queue drew the cosine-only flags while the command, its page and `check` flag copies verified on
    pixels, so reviewers judged a population the product does not show. On the sample both flag the same 14; with an
    inlier threshold no pair reaches, verification flags none and cosine still flags them."""
    from analysis.registry import by_name
    from analysis.regurgitation import cached
    from analysis.workspace import load_workspace

    population = by_name("review-queue").population  # type: ignore[attr-defined]
    monkeypatch.setattr(cached, "INLIER_THRESHOLD", 10_000)
    workspace = load_workspace(sample_copy)
    regurgitation = by_name("regurgitation")
    samples = regurgitation.run(workspace, regurgitation.params()).samples
    flagged = set(population(workspace, "regurgitation", None)[1]["id"])
    assert flagged == set(samples.loc[samples["flagged"], "id"].astype(str)) == set()
    assert cached.regurgitation_for(workspace).samples["flagged"].sum() >= 14  # what the queue used to draw
