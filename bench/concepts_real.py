"""Visual concepts on real photos: a filter that removes one concept shows in that concept's clusters, a random filter
shows nowhere.

    python -m bench.concepts_real [--seeds 20] [--null-draws 200] [--workdir /tmp/caltech-concepts] [--write]

Caltech-101's 6,890 labelled photos (`../shared/real/caltech101`), embedded once by `prepare` (effnet-lite0) in a
workspace under --workdir (kept: a rerun reuses the embeddings), clustered as `concepts` clusters them (flat
spherical k-means, the default K for the set's size, seed 0). For each concept group, a filter removes 80% of the
group's photos and 3% of the others (no real filter is exact); the clusters are tested as `concepts` tests them
(exact binomial test against the overall removal rate, Benjamini–Hochberg q < 0.05, clusters of ≥ 30 photos).
Reported per group, means over --seeds draws of the filter: the significant clusters with lift > 1, the share of the
filter's removals of the group that fall in them (how much of the concentration is found), and the share of their
photos that belong to the group (whether what is flagged is the concept). The null: a filter that removes 10% at
random, over --null-draws draws: the share with any significant cluster (the family-wise error that the correction
holds at 5% under a global null) and its 95% interval.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import REAL, record_footer, run_record, write_record

CALTECH = REAL / "caltech101"
GROUPS = ("food", "building", "person", "vehicle", "animal")
REMOVED_OF_GROUP, REMOVED_OF_OTHERS, RANDOM_SHARE = 0.8, 0.03, 0.10


def caltech_workspace(directory: Path, limit: int | None = None, whole_group: str | None = None) -> Path:
    """A workspace of the Caltech-101 photos in file order (with `limit`, the first `limit` of each category except
    those of `whole_group`, all kept), their concept groups as a column; prepared once, reused after."""
    from analysis.embeddings import prepare
    from analysis.workspace import init_workspace, load_workspace

    if not (directory / "audit.toml").exists():
        labels = pd.read_csv(CALTECH / "labels.csv", keep_default_na=False)
        if limit is not None:
            whole = labels["groups"].str.split(";").apply(lambda names: whole_group in names)
            labels = labels[whole | (labels.groupby("category", sort=False).cumcount() < limit)]
        directory.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {
                "id": labels["file"].str.removesuffix(".jpg"),
                "caption": labels["category"].str.replace("_", " "),
                "image": labels["file"],
                "groups": labels["groups"],
            }
        ).to_parquet(directory / "original.parquet")
        init_workspace(directory, original="original.parquet", images_root=str(CALTECH / "images"))
    prepare(load_workspace(directory), progress=False, log=lambda m: None)
    return directory


def clustered(directory: Path):
    """The workspace, its group memberships and the clustering `concepts` uses (default K, seed 0, cached)."""
    from analysis.effects.cached import concept_clusters_for
    from analysis.workspace import load_workspace

    workspace = load_workspace(directory)
    groups = workspace.original["groups"].astype(str).str.split(";")
    return workspace, concept_clusters_for(workspace), groups


def draw_filter(in_group: np.ndarray, seed: int) -> np.ndarray:
    chance = np.random.default_rng(seed).random(len(in_group))
    return np.where(in_group, chance < REMOVED_OF_GROUP, chance < REMOVED_OF_OTHERS)


def flagged(clusters, removed: np.ndarray) -> list:
    from analysis.effects.clusters import removal_by_cluster

    return removal_by_cluster(clusters, removed, None, "filters").significant


def measure_group(clusters, in_group: np.ndarray, seed: int) -> dict:
    removed = draw_filter(in_group, seed)
    significant = flagged(clusters, removed)
    rows = np.isin(clusters.labels, [c.cluster for c in significant])
    return {
        "significant": len(significant),
        "found": float((rows & removed & in_group).sum() / max(1, (removed & in_group).sum())),
        "purity": float((rows & in_group).sum() / rows.sum()) if rows.any() else None,
    }


def run(directory: Path, seeds: int, null_draws: int) -> dict:
    from analysis.stats import proportion_interval

    workspace, clusters, groups = clustered(directory)
    per_group = {}
    for group in GROUPS:
        in_group = groups.apply(lambda names, g=group: g in names).to_numpy(dtype=bool)
        draws = [measure_group(clusters, in_group, seed) for seed in range(seeds)]
        purities = [d["purity"] for d in draws if d["purity"] is not None]
        per_group[group] = {
            "photos": int(in_group.sum()),
            "prevalence": float(in_group.mean()),
            "detected": float(np.mean([d["significant"] > 0 for d in draws])),
            "significant": float(np.mean([d["significant"] for d in draws])),
            "found": float(np.mean([d["found"] for d in draws])),
            "purity": float(np.mean(purities)) if purities else None,
        }
        print(group, json.dumps(per_group[group]), flush=True)
    null = [
        len(flagged(clusters, np.random.default_rng(10_000 + seed).random(workspace.n_original) < RANDOM_SHARE))
        for seed in range(null_draws)
    ]
    sizes = np.bincount(clusters.labels[clusters.labels >= 0])
    return {
        "photos": workspace.n_original,
        "clusters": int(clusters.n_clusters),
        "median_cluster": float(np.median(sizes)),
        "groups": per_group,
        "null_draws": null_draws,
        "null_any": int(sum(n > 0 for n in null)),
        "null_any_ci95": list(proportion_interval(int(sum(n > 0 for n in null)), null_draws)),
        "null_mean": float(np.mean(null)),
    }


START, END = "<!-- concepts-real:start -->", "<!-- concepts-real:end -->"


def render_markdown(payload: dict) -> str:
    lines = [
        START,
        "### Visual concepts on real photos (Caltech-101)",
        "",
        f"{payload['photos']:,} labelled Caltech-101 photos, embedded by `prepare` and clustered as `concepts` does "
        f"(K = {payload['clusters']} for this size, median cluster {payload['median_cluster']:.0f} photos). Each "
        f"filter removes {REMOVED_OF_GROUP:.0%} of one concept group's photos and {REMOVED_OF_OTHERS:.0%} of the "
        f"others; {payload['seeds']} draws of each. *Detected*: draws with a cluster of lift > 1 at q < 0.05. "
        "*Found*: the share of the filter's removals of the group that lie in those clusters. *Purity*: the share of "
        "their photos that belong to the group.",
        "",
        "| concept | photos | prevalence | detected | significant clusters | found | purity |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for group, row in payload["groups"].items():
        purity = "—" if row["purity"] is None else f"{row['purity']:.0%}"
        lines.append(
            f"| {group} | {row['photos']:,} | {row['prevalence']:.1%} | {row['detected']:.0%} | "
            f"{row['significant']:.1f} | {row['found']:.0%} | {purity} |"
        )
    lines += [
        "",
        f"The null, a filter removing {RANDOM_SHARE:.0%} at random: a significant cluster in {payload['null_any']} "
        f"of {payload['null_draws']} draws ({payload['null_any'] / payload['null_draws']:.1%}, 95% CI "
        f"{payload['null_any_ci95'][0]:.1%}–{payload['null_any_ci95'][1]:.1%}; {payload['null_mean']:.3f} clusters "
        "per draw); Benjamini–Hochberg holds the family-wise error of a global null at 5%.",
        "",
        record_footer(payload),
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="draws of each concept filter")
    parser.add_argument("--null-draws", type=int, default=200, help="draws of the random filter")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/caltech-concepts"))
    parser.add_argument("--write", action="store_true", help="record in docs/analyses.md")
    args = parser.parse_args()
    if not (CALTECH / "labels.csv").exists():
        raise SystemExit(f"needs the Caltech-101 photos in {CALTECH}")
    payload = {
        **run(caltech_workspace(args.workdir), args.seeds, args.null_draws),
        "seeds": args.seeds,
        **run_record(f"python -m bench.concepts_real --seeds {args.seeds} --null-draws {args.null_draws}"),
    }
    print(json.dumps(payload, indent=1))
    if args.write:
        write_record("concepts_real", payload, "analyses.md", START, END, render_markdown(payload))


if __name__ == "__main__":
    main()
