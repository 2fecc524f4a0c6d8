"""Bias in image space: removal per visual cluster, text probes and the map, on the sample (against its planted
truth) and in the engine's pure functions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.captions import build_index
from analysis.concepts.projection import project, rows_in_region
from analysis.effects.clusters import (
    ConceptClusters,
    class_tfidf_words,
    default_concept_clusters,
    removal_by_cluster,
)
from analysis.stats import benjamini_hochberg
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def concepts_json(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pd.DataFrame, Path]:
    workspace = tmp_path_factory.mktemp("concepts") / "ws"
    import shutil

    shutil.copytree(sample_dir, workspace, ignore=shutil.ignore_patterns("reviews.sqlite*", "*.lock"))
    out = workspace.parent / "clusters.parquet"
    completed = run_cli("concepts", str(workspace), "--json", "--out", str(out))
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout), pd.read_parquet(out), workspace


def _planted(workspace: Path) -> set[str]:
    truth = json.loads((workspace / "sample_truth.json").read_text())
    return {image for members in truth["visual_concepts"].values() for image in members}


def test_the_clusters_with_the_highest_lift_are_the_planted_visual_concepts(concepts_json) -> None:
    """The sample's filters target images drawn with a visual motif (sample_truth.json `visual_concepts`); the
    top-ranked clusters are made of them, significantly above the overall rate, and nothing else is significant."""
    payload, clusters, workspace = concepts_json
    planted = _planted(workspace)
    members = clusters.groupby("cluster")["id"].apply(set)
    significant = [c for c in payload["clusters"] if c["q_value"] is not None and c["q_value"] < 0.05 and c["lift"] > 1]
    assert significant and [c["rank"] for c in significant] == list(range(1, len(significant) + 1))
    base_share = len(planted) / len(clusters)  # 10% of the sample carries a motif
    top = significant[0]
    assert len(members[top["cluster"]] & planted) / top["size"] >= 0.8
    for cluster in significant:
        assert len(members[cluster["cluster"]] & planted) / cluster["size"] >= 3 * base_share, cluster
        assert cluster["ci95"][0] > payload["overall_rate"]
    covered = set().union(*(members[c["cluster"]] for c in significant)) & planted
    assert len(covered) >= 0.5 * len(planted)  # most planted images sit in the flagged clusters
    assert {"lingerie", "suggestive", "bloody", "knife"} & set(significant[0]["top_words"])


def test_cluster_counts_match_an_independent_count_from_the_out_file(concepts_json) -> None:
    payload, clusters, workspace = concepts_json
    original = pd.read_parquet(workspace / "original.parquet")
    removed = (original["sexual"] >= 0.5) | (original["violence"] >= 0.5)
    merged = clusters.merge(original.assign(removed=removed)[["id", "removed"]], on="id")
    counted = merged.groupby("cluster")["removed"].agg(["size", "sum"])
    assert len(clusters) == len(original) and clusters["cluster"].notna().all()
    for cluster in payload["clusters"]:
        assert (cluster["size"], cluster["removed"]) == tuple(int(v) for v in counted.loc[cluster["cluster"]])
        assert cluster["judgeable"] == (cluster["size"] >= 30)
    assert payload["n_clusters"] == default_concept_clusters(1000) == 20


def test_unjudgeable_clusters_are_listed_after_the_ranked_ones_without_a_rank(concepts_json) -> None:
    payload, _, _ = concepts_json
    ranked = [c for c in payload["clusters"] if c["judgeable"]]
    lifts = [c["lift"] for c in ranked]
    assert lifts == sorted(lifts, reverse=True)
    tail = payload["clusters"][len(ranked) :]
    assert all(not c["judgeable"] and c["rank"] is None and c["q_value"] is None for c in tail)


def test_text_probes_say_plainly_when_the_embedder_has_no_text_tower(concepts_json) -> None:
    payload, _, _ = concepts_json
    assert payload["probes"]["available"] is False
    assert "no text tower" in payload["probes"]["reason"]


def test_default_k_keeps_clusters_big_enough_to_judge() -> None:
    assert default_concept_clusters(159) == 3
    assert default_concept_clusters(79) == 2
    assert default_concept_clusters(1_000_000) == 707
    assert default_concept_clusters(100_000_000) == 1024


def test_benjamini_hochberg_matches_the_textbook_procedure() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.20])
    # sorted: 0.01·4/1, 0.03·4/2, 0.04·4/3, 0.20·4/4 → 0.04, 0.06, 0.0533, 0.20 → monotone from the top
    assert np.allclose(benjamini_hochberg(p), [0.04, 0.05333333, 0.05333333, 0.20])


def test_class_tfidf_names_what_sets_a_cluster_apart() -> None:
    captions = ["a dog in the park", "a dog on grass", "the dog runs", "a red car", "a car on the road", "the car"]
    index = build_index(captions)
    words = class_tfidf_words(index, np.array([0, 0, 0, 1, 1, 1]), 2)
    assert words[0][0] == "dog" and words[1][0] == "car"
    assert not {"a", "the", "on", "in"} & set(words[0] + words[1])  # stop words never characterise


def test_a_cluster_without_removals_has_no_lift_when_nothing_was_removed() -> None:
    clusters = ConceptClusters(np.array([0, 0, 1, 1, -1]), [np.array([0, 1]), np.array([2, 3])], 2, 0)
    table = removal_by_cluster(clusters, np.zeros(5, dtype=bool), None, "filters")
    assert table.n_images == 4 and table.n_without_embedding == 1
    assert all(c.lift is None and c.removed == 0 for c in table.clusters)


def test_a_lasso_or_a_box_chooses_every_image_inside_it() -> None:
    xy = np.array([[0.5, 0.5], [2.0, 2.0], [0.9, 0.1], [np.nan, np.nan], [0.1, 0.9]], dtype=np.float32)
    triangle = rows_in_region(xy, [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])  # x + y < 1
    assert triangle.tolist() == [2, 4]
    assert rows_in_region(xy, [0.0, 1.0], [0.0, 1.0]).tolist() == [0, 2, 4]


def test_landmark_placement_keeps_neighbours_together() -> None:
    """Images not in the UMAP sample land beside the landmarks they resemble: two well-separated groups stay
    apart on the map."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 32))
    vectors = np.concatenate(
        [centres[0] + 0.1 * rng.normal(size=(150, 32)), centres[1] + 0.1 * rng.normal(size=(150, 32))]
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    projection = project(vectors.astype(np.float32), np.ones(300, dtype=bool), landmarks=80)
    assert np.isfinite(projection.xy).all() and len(projection.landmarks) == 80
    first, second = projection.xy[:150].mean(axis=0), projection.xy[150:].mean(axis=0)
    spread = max(projection.xy[:150].std(axis=0).max(), projection.xy[150:].std(axis=0).max())
    assert np.linalg.norm(first - second) > 3 * spread


def test_text_probes_run_through_open_clips_text_tower(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plumbing with a tiny random open_clip model (no claim on quality): every embedded image goes to one prompt,
    kept and removed shares each sum to one with intervals around them, and the prompts' vectors are cached."""
    import open_clip
    import torch

    from analysis.concepts import cached
    from analysis.embeddings import prepare
    from analysis.workspace import load_workspace
    from tests.helpers import scene_workspace, write_manifest

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "head_width": 32, "patch_size": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    (tmp_path / "tiny-probe-clip.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "tiny-probe-clip.json")
    torch.save(open_clip.create_model("tiny-probe-clip", pretrained=None).state_dict(), tmp_path / "tiny.pt")
    root = scene_workspace(tmp_path / "ws", 40, 32)
    rows = pd.read_parquet(root / "o.parquet").assign(keep=[i % 4 != 0 for i in range(40)])
    write_manifest(root / "o.parquet", rows)
    prepare(
        load_workspace(root), f"open_clip:tiny-probe-clip:{tmp_path / 'tiny.pt'}", progress=False, log=lambda m: None
    )
    result = cached.probes_for(load_workspace(root))
    assert result.available and (result.n_kept, result.n_removed) == (30, 10)
    assert sum(s.kept for s in result.shares) == 30 and sum(s.removed for s in result.shares) == 10
    for share in result.shares:
        assert share.removed_ci95[0] <= share.removed_share <= share.removed_ci95[1]
    monkeypatch.setattr("analysis.embedders.get_embedder", lambda *a, **k: pytest.fail("prompts not cached"))
    assert cached.probes_for(load_workspace(root)).to_json() == result.to_json()


def test_dedup_reports_what_its_keep_list_removes_matching_an_independent_count(concepts_json) -> None:
    """Dedup measured as a filter: its term shifts and per-cluster removal agree with counts made here from the
    manifest, the keep-list (`dedup --out`) and the clusters (`concepts --out`)."""
    import re

    payload, clusters, workspace = concepts_json
    keep_file = workspace.parent / "keep.parquet"
    completed = run_cli("dedup", str(workspace), "--json", "--out", str(keep_file))
    assert completed.returncode == 0, completed.stderr
    dedup = json.loads(completed.stdout)
    keep = pd.read_parquet(keep_file).set_index("id")["keep"]
    original = pd.read_parquet(workspace / "original.parquet").set_index("id")
    kept = keep.reindex(original.index).to_numpy()
    words = original["caption"].map(lambda c: set(re.findall(r"[^\W_]+", c.casefold())))
    for term in dedup["term_shifts"]["terms"]:
        contains = words.map(lambda w, t=term["term"]: t in w).to_numpy()
        assert term["original"]["count"] == int(contains.sum())
        assert term["filtered"]["count"] == int((contains & kept).sum())
        assert term["filtered"]["frequency"] == pytest.approx((contains & kept).sum() / kept.sum())
    removed = ~keep.reindex(clusters["id"]).to_numpy()
    counted = clusters.assign(removed=removed).groupby("cluster")["removed"].agg(["size", "sum"])
    table = dedup["visual_clusters"]
    assert table["removal"] == "dedup" and table["n_removed"] == dedup["n_removed"]
    for cluster in table["clusters"]:
        assert (cluster["size"], cluster["removed"]) == tuple(int(v) for v in counted.loc[cluster["cluster"]])
    # the clock and logo families are what dedup thins: the top cluster's words say so
    assert {"clock", "logo", "acme"} & set(table["clusters"][0]["top_words"])


@pytest.mark.parametrize("n_significant", [1, 3, 5])
def test_the_summary_says_how_many_significant_clusters_it_lists(n_significant: int) -> None:
    """Issue 51: "5 clusters lost significantly more" was followed by 3 clusters and no word of the other 2."""
    from analysis.effects.clusters import ClusterRate, ClusterRates
    from analysis.effects.lines import table_lines

    clusters = [
        ClusterRate(i, 100, 40 - i, (40 - i) / 100, (0.3, 0.5), 4.0 - i / 10, 1e-6, 1e-5, ["dog"], [0])
        for i in range(n_significant)
    ]
    lines = table_lines(ClusterRates(clusters, 1000, 100, 10, "filters"), "the filters")
    listed = [line for line in lines if line.startswith("  cluster ")]
    assert len(listed) == min(n_significant, 3)
    header = lines[1]
    assert header.startswith(f"{n_significant} cluster{'s' if n_significant > 1 else ''} lost significantly more")
    assert ("the 3 with the highest lift (all of them: --json)" in header) == (n_significant > 3)
