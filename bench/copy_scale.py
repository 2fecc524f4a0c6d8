"""Verified dedup of ~70,000 real photos, step by step, resumable: what the candidate cap, the feature store and the
memory do at a scale where they matter.

    python -m bench.copy_scale [--dir /tmp/copy-scale] [--images 70000] [--write]

The workspace: the 4,999 COCO photos of `../shared/real/photos-coco2014`, each with edited copies made by
bench/copy_edits.py (the edit families in turn, as many copies per photo as the size asks), plus the 6,890
Caltech-101 photos and the 159 COCO-mini photos. Steps, each through the CLI as a user runs it and each recorded in
DIR/steps.json as soon as it ends (a killed run resumes at the first step not recorded; `build` and `prepare`
themselves resume where they stopped): `build` (write the photos and copies), `prepare`, `dedup` (first run: local
features and verification from cold), `dedup cached` (the same command again), `dedup local:2` (the dedup results
dropped, the features kept: the candidate search, verification and tiers as Dask tasks; its groups compared with the
first run's). Per step: wall time, peak RSS of the command and of its worker processes, cache size; for dedup:
candidates per image (mean and largest), pairs verified, planted copies grouped with their original.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import REAL, REPO, run_record, write_record
from bench.verification_cluster import timed_run

COCO = REAL / "photos-coco2014"
CALTECH = REAL / "caltech101" / "images"
MINI = REAL / "coco-mini" / "images"
START, END = "<!-- copy-scale:start -->", "<!-- copy-scale:end -->"


def plan(images: int) -> pd.DataFrame:
    """Every image of the workspace: id, file, its family (a COCO photo and its copies share one), the edit."""
    from bench.copy_edits import FAMILIES

    coco = sorted(COCO.glob("*.jpg"))
    others = sorted(CALTECH.glob("*.jpg")) + sorted(MINI.glob("*.jpg"))
    copies_per_photo = max(1, math.ceil((images - len(coco) - len(others)) / len(coco)))
    if images < 2 * len(coco) + len(others):  # a small run (a trial of the benchmark): a share of each source
        share = images / (2 * len(coco) + len(others))
        coco = coco[: max(1, round(share * len(coco)))]
        others = others[:: max(1, round(1 / share))]
    families = list(FAMILIES)
    rows = []
    for number, path in enumerate(coco):
        family = f"p{number:04d}"
        rows.append(
            {"id": family, "image": f"img/{family}.jpg", "family": family, "edit": "original", "source": str(path)}
        )
        for copy in range(copies_per_photo):
            edit = families[(number + copy) % len(families)]
            identifier = f"{family}-c{copy:02d}"
            rows.append(
                {
                    "id": identifier,
                    "image": f"img/{identifier}.jpg",
                    "family": family,
                    "edit": edit,
                    "source": str(path),
                }
            )
    for number, path in enumerate(others):
        identifier = f"r{number:05d}"
        rows.append(
            {"id": identifier, "image": f"img/{identifier}.jpg", "family": "", "edit": "distinct", "source": str(path)}
        )
    return pd.DataFrame(rows)


def _write_images(job: tuple[str, list[dict]]) -> int:
    """Worker: write one batch of the plan's images (an existing file is kept: a killed build resumes)."""
    from PIL import Image

    from bench.copy_edits import FAMILIES

    directory, rows = Path(job[0]), job[1]
    coco = sorted(COCO.glob("*.jpg"))
    for row in rows:
        target = directory / row["image"]
        if target.exists():
            continue
        partial = target.with_suffix(".part.jpg")
        if row["edit"] in ("original", "distinct"):
            shutil.copy(row["source"], partial)
        else:
            rng = random.Random(row["id"])
            image = Image.open(row["source"]).convert("RGB")
            other = Image.open(coco[rng.randrange(len(coco))]).convert("RGB")
            FAMILIES[row["edit"]](image, rng, other).convert("RGB").save(partial, "JPEG", quality=92)
        os.replace(partial, target)
    return len(rows)


def build(directory: Path, images: int) -> dict:
    from analysis.workspace import init_workspace

    frame = plan(images)
    (directory / "img").mkdir(parents=True, exist_ok=True)
    records = frame.to_dict("records")
    jobs = [(str(directory), records[start : start + 500]) for start in range(0, len(records), 500)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        for done, _ in enumerate(pool.map(_write_images, jobs), 1):
            if done % 20 == 0:
                print(f"build: {done * 500:,} of {len(records):,} images", flush=True)
    frame.drop(columns="source").assign(caption="a photo", keep=True).to_parquet(
        directory / "original.parquet", index=False
    )
    if not (directory / "audit.toml").exists():
        init_workspace(directory, original="original.parquet", kept_column="keep")
    return {
        "images": len(frame),
        "coco_photos": int((frame["edit"] == "original").sum()),
        "copies": int(frame["family"].ne("").sum() - (frame["edit"] == "original").sum()),
        "distinct_others": int((frame["edit"] == "distinct").sum()),
    }


def cache_mb(directory: Path, kind: str | None = None) -> float:
    root = directory / ".audit-cache" / (kind or "")
    return round(sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20, 1) if root.exists() else 0.0


def dedup_figures(directory: Path, outputs: Path) -> dict:
    """Candidates per image, pairs verified, planted copies grouped with their original, from --out/--pairs-out."""
    frame = pd.read_parquet(directory / "original.parquet")
    pairs = pd.read_parquet(outputs / "pairs.parquet")
    groups = pd.read_parquet(outputs / "groups.parquet").set_index("id")["group_id"]
    per_image = pd.concat([pairs["id_a"], pairs["id_b"]]).value_counts().reindex(frame["id"], fill_value=0)
    copies = frame[frame["family"].ne("") & frame["edit"].ne("original")]
    group_of_copy = groups.reindex(copies["id"]).to_numpy()
    group_of_original = groups.reindex(copies["family"]).to_numpy()
    grouped = (group_of_copy >= 0) & (group_of_copy == group_of_original)
    return {
        "images": len(frame),
        "candidates": len(pairs),
        "candidates_per_image_mean": round(float(per_image.mean()), 2),
        "candidates_per_image_max": int(per_image.max()),
        "pairs_verified": int(pairs["verified"].sum()),
        "planted_copies": len(copies),
        "planted_copies_grouped": int(grouped.sum()),
        "planted_grouped_by_edit": copies.assign(grouped=grouped).groupby("edit")["grouped"].mean().round(3).to_dict(),
    }


def candidates_by_size(directory: Path, sizes: list[int]) -> dict:
    """Stage one as `dedup` runs it (the clustered search at the candidate cosine, then the cap of `top_k` per image)
    on nested subsets of the prepared workspace: whole families (a photo with its copies, or one other photo) in a
    fixed random order, so every subset has the same mix. The engine's functions on the cached embeddings: no image
    is read, so the sizes cost a minute, not a `prepare` each."""
    from analysis.copies.candidates import CANDIDATE_THRESHOLDS, CANDIDATE_TOP_K
    from analysis.embedders.base import default_for_embedder
    from analysis.embedding_store import load_embeddings
    from analysis.workspace import load_workspace

    found = load_embeddings(load_workspace(directory), "original")
    assert found is not None, "prepare first"
    frame = pd.read_parquet(directory / "original.parquet")
    family = frame["family"].where(frame["family"].ne(""), frame["id"]).to_numpy()
    order = pd.Series(family).drop_duplicates().sample(frac=1.0, random_state=0).to_numpy()
    rank = pd.Series(np.arange(len(order)), index=order)[family].to_numpy()  # each image's family's place
    threshold = default_for_embedder(CANDIDATE_THRESHOLDS, found.embedder, 0.7)
    table = {}
    for size in sorted(set(sizes + [len(frame)])):
        families_needed = np.searchsorted(np.cumsum(np.bincount(rank, minlength=len(order))), min(size, len(frame)))
        rows = np.flatnonzero((rank <= families_needed) & found.valid)
        table[str(len(rows))] = stage_one(found.take(rows), threshold)
        print(f"candidates at {len(rows):,} images: {json.dumps(table[str(len(rows))])}", flush=True)
    return {"threshold": threshold, "top_k": CANDIDATE_TOP_K, "sizes": table}


def stage_one(vectors: np.ndarray, threshold: float) -> dict:
    """Candidates as `dedup` finds them (clustered search at the candidate cosine, then the per-image cap) and
    how many each image gets."""
    from analysis.copies.candidates import CANDIDATE_TOP_K, cap_per_image
    from analysis.dedup.compute import deduplicate, pair_similarities

    started = time.perf_counter()
    result = deduplicate(vectors, threshold, clusterings=5)
    similarities = pair_similarities(vectors, result.pairs)
    capped = result.pairs[cap_per_image(result.pairs, similarities, CANDIDATE_TOP_K)]
    per_image = np.bincount(capped.ravel(), minlength=len(vectors))
    return {
        "images": int(len(vectors)),
        "pairs_above_cosine": int(len(result.pairs)),
        "candidates": int(len(capped)),
        "candidates_per_image_mean": round(float(per_image.mean()), 2),
        "candidates_per_image_p99": int(np.percentile(per_image, 99)),
        "candidates_per_image_max": int(per_image.max()),
        "seconds": round(time.perf_counter() - started, 1),
    }


SYNTHETIC_IMAGES = 1_000_000


def synthetic_candidates(images: int) -> dict:
    """Stage one on the synthetic million-image workspace's embeddings (bench/make_large_workspace.py: 512-d
    vectors around 2,000 topics, 10% in planted duplicate families of 2 to 500 members), at the cosine `dedup`
    uses for precomputed embeddings: the cap's test where families far larger than the cap exist. No pixels, so no
    verification: candidate counts only."""
    from analysis.copies.candidates import CANDIDATE_THRESHOLDS, CANDIDATE_TOP_K
    from analysis.embedders.base import default_for_embedder
    from bench.common import planted_embeddings

    vectors, family = planted_embeddings(images)
    threshold = default_for_embedder(CANDIDATE_THRESHOLDS, "precomputed:embeddings", 0.7)
    row = stage_one(vectors, threshold)
    sizes = np.bincount(family[family >= 0])
    row["largest_family"] = int(sizes.max())
    print(f"candidates at {images:,} synthetic images: {json.dumps(row)}", flush=True)
    return {"threshold": threshold, "top_k": CANDIDATE_TOP_K, "sizes": {str(images): row}}


def run_step(name: str, directory: Path, steps: dict, state: Path) -> None:
    if name in steps:
        print(f"{name}: recorded, skipped", flush=True)
        return
    cli = str(Path(sys.executable).parent / "pretrain-audit")
    with tempfile.TemporaryDirectory() as scratch:
        outputs = Path(scratch)
        outs = ["--json", "--out", str(outputs / "groups.parquet"), "--pairs-out", str(outputs / "pairs.parquet")]
        if name == "build":
            started = time.perf_counter()
            record: dict = {
                **build(directory, steps["asked"]["images"]),
                "wall_s": round(time.perf_counter() - started),
            }
        elif name == "candidates by size":
            started = time.perf_counter()
            record = {**candidates_by_size(directory, [10_000, 35_000]), "wall_s": round(time.perf_counter() - started)}
        elif name == "prepare":
            record = timed_run([cli, "prepare", str(directory)], outputs)
        elif name == "dedup":  # the first run: local features, verification and tiers from cold
            for cached in ("features", "dedup"):
                shutil.rmtree(directory / ".audit-cache" / cached, ignore_errors=True)
            record = timed_run([cli, "dedup", str(directory), *outs], outputs)
        elif name == "candidates 1M synthetic":
            started = time.perf_counter()
            record = {**synthetic_candidates(SYNTHETIC_IMAGES), "wall_s": round(time.perf_counter() - started)}
        elif name == "dedup local:2":
            shutil.rmtree(directory / ".audit-cache" / "dedup", ignore_errors=True)
            record = timed_run([cli, "dedup", str(directory), *outs, "--scheduler", "local:2"], outputs)
        else:
            record = timed_run([cli, "dedup", str(directory), *outs], outputs)
        if name.startswith("dedup"):
            record.update(dedup_figures(directory, outputs))
            groups = pd.read_parquet(outputs / "groups.parquet")
            shutil.copy(outputs / "groups.parquet", directory / f"groups-{name.replace(' ', '-')}.parquet")
            record["groups"] = int(groups["group_id"].max() + 1) if len(groups) else 0
            # What dedup removes per visual cluster and caption term is not this benchmark's subject (70 KB a step)
            output = json.loads(record.pop("stdout"))
            record["json"] = {k: v for k, v in output.items() if k not in ("visual_clusters", "term_shifts")}
        record.pop("stdout", None)
        record.pop("stderr_tail", None)
    record.update({"cache_mb": cache_mb(directory), "features_mb": cache_mb(directory, "features")})
    record["commit"] = run_record("")["commit"]  # a resumed run's steps may come from different sessions
    steps[name] = record
    state.write_text(json.dumps(steps, indent=1))
    print(f"{name}: {json.dumps({k: v for k, v in record.items() if k != 'json'})}", flush=True)


def render_markdown(payload: dict) -> str:
    steps = payload["steps"]
    built = steps["build"]
    lines = [
        START,
        "## Verified dedup at 70,000 real photos (`python -m bench.copy_scale`)",
        "",
        f"Run: {payload['date']}, `{payload['command']}` (each step's commit in the table), this 2-core machine, "
        f"nothing else running. {built['images']:,} images: {built['coco_photos']:,} COCO photos with "
        f"{built['copies']:,} edited copies (bench/copy_edits.py's families in turn) and "
        f"{built['distinct_others']:,} Caltech-101 and COCO-mini photos. Each step through the CLI; peak RSS sampled "
        "every 0.2 s over the command and its workers.",
        "",
        "| step | commit | wall time | peak RSS, command | peak RSS, workers | cache after "
        "| candidates per image (mean, max) | pairs verified | planted copies grouped |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    for name, step in sorted(steps.items(), key=lambda item: STEPS.index(item[0]) if item[0] in STEPS else -1):
        if name in ("asked", "candidates by size", "candidates 1M synthetic"):
            continue
        dedup = "candidates" in step
        per_image = f"{step['candidates_per_image_mean']}, {step['candidates_per_image_max']}" if dedup else "–"
        verified = f"{step['pairs_verified']:,} of {step['candidates']:,}" if dedup else "–"
        grouped = f"{step['planted_copies_grouped']:,} of {step['planted_copies']:,}" if dedup else "–"
        client, workers = step.get("peak_client_mb", "–"), step.get("peak_workers_mb", "–")
        lines.append(
            f"| {name} | {step.get('commit', '–')} | {step['wall_s']:,} s | {client} MB | {workers} MB "
            f"| {step['cache_mb']:,} MB (features {step['features_mb']:,}) | {per_image} | {verified} | {grouped} |"
        )
    if "dedup local:2" in steps and "dedup" in steps:
        lines += ["", f"`dedup --scheduler local:2` groups equal to one process's: **{payload['same_groups']}**."]
    if "candidates by size" in steps:
        by_size = steps["candidates by size"]
        lines += [
            "",
            f"**Candidates per image as the set grows** (step `candidates by size`, commit "
            f"{by_size.get('commit', '–')}): stage one as `dedup` runs it (clustered search at cosine "
            f"≥ {by_size['threshold']}, then at most the {by_size['top_k']} most similar per image, a pair kept when "
            "it is among the top of either of its images) on nested subsets of whole families, from the cached "
            "embeddings.",
            "",
            "| images | pairs above the cosine | candidates after the cap | per image: mean | 99th pct. | largest "
            "| time |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        rows = [(f"{row['images']:,}", row) for row in by_size["sizes"].values()]
        synthetic = steps.get("candidates 1M synthetic")
        if synthetic:
            rows += [(f"{row['images']:,} synthetic", row) for row in synthetic["sizes"].values()]
        for label, row in rows:
            lines.append(
                f"| {label} | {row['pairs_above_cosine']:,} | {row['candidates']:,} "
                f"| {row['candidates_per_image_mean']} | {row['candidates_per_image_p99']} "
                f"| {row['candidates_per_image_max']} | {row['seconds']} s |"
            )
        if synthetic:
            row = next(iter(synthetic["sizes"].values()))
            lines += [
                "",
                f"The synthetic row (step `candidates 1M synthetic`, commit {synthetic.get('commit', '–')}): the "
                "million-image workspace's 512-d embeddings (bench/make_large_workspace.py: images around 2,000 "
                f"topics, 10% in planted duplicate families of up to {row['largest_family']} members) at the cosine "
                f"`dedup` uses for precomputed embeddings (≥ {synthetic['threshold']}); candidate counts only (no "
                "pixels). A pair is kept when it is among the top of either image, so the mean is at most twice "
                f"the cap ({2 * synthetic['top_k']}) however large the families; the largest count is a hub, an image "
                f"among the top {synthetic['top_k']} of many others (in a family of {row['largest_family']} every "
                "member may list the same close one). Verification's cost follows the mean: each pair is verified "
                "once.",
            ]
    if "dedup" in steps and steps["dedup"].get("phases"):
        lines += ["", *projection(steps["dedup"])]
    lines += ["", END]
    return "\n".join(lines)


def projection(dedup: dict) -> list[str]:
    """Where the first verified dedup's time went (its progress bars) and what that projects to at 1M and 100M
    images on 2, 32 and 512 cores: the per-image and per-pair phases from their measured rates on this machine's 2
    cores, scaled with cores; the rest of the run (embeddings loaded, the candidate search, grouping) scaled by
    n log n and not by cores (one process here; on a cluster the search is split too, so this part is an upper
    bound)."""
    phases, images = dedup["phases"], dedup["images"]
    per_unit = {  # seconds on one core per image or pair, and how many per image
        "local features": (phases.get("local features", 0) * 2 / images, 1.0),
        "verification": (
            phases.get("verifying pairs", 0) * 2 / dedup["candidates"],
            dedup["candidates"] / images,
        ),
        "tiers (pixel agreement)": (
            phases.get("pixel agreement of verified pairs", 0) * 2 / dedup["pairs_verified"],
            dedup["pairs_verified"] / images,
        ),
    }
    rest = dedup["wall_s"] - sum(
        phases.get(name, 0) for name in ("local features", "verifying pairs", "pixel agreement of verified pairs")
    )
    lines = [
        f"Where the first `dedup` of {images:,} images spent its {dedup['wall_s']:,.0f} s (its progress bars, commit "
        f"{dedup.get('commit', '–')}): "
        + "; ".join(f"{name} {seconds:,.0f} s" for name, seconds in phases.items())
        + f"; the rest (embeddings loaded, candidate search, grouping, writing) {rest:,.0f} s.",
        "",
        "Projected first verified dedup, embedding excluded, from these rates (per-image and per-pair steps scale "
        "with cores; the rest by n log n on one process, an upper bound where a cluster splits the search too; "
        f"candidate and verified pairs per image as measured here: {dedup['candidates'] / images:.1f} and "
        f"{dedup['pairs_verified'] / images:.1f}, a set where 83% of the images are planted copies):",
        "",
        "| images | 2 cores | 32 cores | 512 cores | of which the one-process rest |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for target in (1_000_000, 100_000_000):
        rest_at = rest * target * math.log(target) / (images * math.log(images))
        cells = []
        for cores in (2, 32, 512):
            seconds = sum(cost * share * target / cores for cost, share in per_unit.values()) + rest_at
            cells.append(f"{seconds / 3600:,.1f} h")
        lines.append(f"| {target:,} | " + " | ".join(cells) + f" | {rest_at / 3600:,.1f} h |")
    million = {name: cost * share * 1_000_000 / 2 / 3600 for name, (cost, share) in per_unit.items()}
    total = sum(million.values()) + rest * 1_000_000 * math.log(1_000_000) / (images * math.log(images)) / 3600
    lines += [
        "",
        "The goal of a first verified dedup of 1M images in ≤ 5 h on 2 cores is "
        f"**{'met' if total <= 5 else 'not met'} on this set: {total:.1f} h** ("
        + ", ".join(f"{name} {hours:.1f} h" for name, hours in million.items())
        + ").",
    ]
    return lines


STEPS = ("build", "prepare", "dedup", "dedup cached", "candidates by size", "dedup local:2", "candidates 1M synthetic")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/copy-scale")
    parser.add_argument("--images", type=int, default=70_000)
    parser.add_argument("--steps", default=",".join(STEPS), help="the steps to run, in order (default: all)")
    parser.add_argument("--redo", default="", help="recorded steps to measure again (comma-separated)")
    parser.add_argument("--write", action="store_true", help="record in docs/benchmarks.md and docs/copy_scale.json")
    args = parser.parse_args()
    if not (COCO.exists() and CALTECH.exists() and MINI.exists()):
        raise SystemExit(f"needs the real photos (photos-coco2014, caltech101, coco-mini) in {REAL}")
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    state = directory / "steps.json"
    steps = json.loads(state.read_text()) if state.exists() else {}
    if steps.get("asked", {}).get("images") != args.images:
        steps = {"asked": {"images": args.images}}  # another size: start over (the images are kept where they fit)
    for name in args.redo.split(",") if args.redo else []:
        steps.pop(name, None)  # measured again (after a change to what it measures), the others kept
    for name in args.steps.split(","):
        run_step(name, directory, steps, state)
    payload = {
        "steps": steps,
        **run_record(f"python -m bench.copy_scale --images {args.images}"),
    }
    if "dedup local:2" in steps and "dedup" in steps:
        one = pd.read_parquet(directory / "groups-dedup.parquet")
        cluster = pd.read_parquet(directory / "groups-dedup-local:2.parquet")
        payload["same_groups"] = bool(one.equals(cluster))
    print(render_markdown(payload))
    if args.write:
        write_record("copy_scale", payload, "benchmarks.md", START, END, render_markdown(payload))


def rerender() -> None:
    """Write the section again from docs/copy_scale.json (after a change to its wording only)."""
    from bench.common import replace_section

    payload = json.loads((REPO / "docs" / "copy_scale.json").read_text())
    replace_section(REPO / "docs" / "benchmarks.md", START, END, render_markdown(payload))


if __name__ == "__main__":
    main()
