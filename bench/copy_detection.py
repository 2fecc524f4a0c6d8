"""Copy detection on real photos: the two-stage detector (embedding candidates, local-feature verification) as
`dedup` and `regurgitation` run it, against edited copies of real COCO photos among thousands of distinct ones.

    python -m bench.copy_detection [--originals 159] [--distractors 4699] [--out docs/copy_detection.json]

Builds a workspace under --dir: every coco-mini photo (427–640 px) as an original, one copy of it per edit
family (bench/copy_edits.py), and distinct COCO train2014 photos as distractors; generated samples are one more
copy of each original (a random family, other random parameters) and as many held-out distinct photos. Then
`prepare` (effnet-lite0), verified dedup and verified regurgitation with the shipped defaults, and:
- pair recall per family: the (original, copy) pair verified; group recall: the copy in its original's group;
- precision: verified pairs inside one family / all verified pairs, every false pair listed;
- the false-pair rate among the distractors (all their pairs are in the test; the count is reported);
- the precision–recall curve over the inlier threshold, and the cosine-only baseline at its old default (0.90)
  and at the cosine that reaches 95% recall;
- regurgitation flag recall and precision; feature extraction (images/s) and verification (pairs/s).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from analysis.copies.candidates import MIN_COVERAGE, is_verified
from bench.common import REAL, REPO, peak_rss_mb, replace_section, run_record
from bench.copy_edits import FAMILIES


def build(directory: Path, originals: int, distractors: int, seed: int = 0) -> dict:
    coco = sorted((REAL / "coco-mini" / "images").glob("*.jpg"))[:originals]
    distinct = sorted((REAL / "photos-coco2014").glob("*.jpg"))
    background, held_out = distinct[:distractors], distinct[distractors : distractors + len(coco)]
    rng = random.Random(seed)
    (directory / "img").mkdir(parents=True, exist_ok=True)
    rows, generated, family_of = [], [], {}
    for number, path in enumerate(coco):
        image = Image.open(path).convert("RGB")
        original = f"o{number:03d}"
        image.save(directory / "img" / f"{original}.jpg", quality=95)
        rows.append({"id": original, "image": f"img/{original}.jpg", "family": original, "edit": "original"})
        for position, (name, edit) in enumerate(FAMILIES.items()):
            other = Image.open(distinct[-1 - (number * 7 + position) % 50]).convert("RGB")
            copy = f"{original}-c{position:02d}"
            edit(image, rng, other).save(directory / "img" / f"{copy}.jpg", quality=92)
            rows.append({"id": copy, "image": f"img/{copy}.jpg", "family": original, "edit": name})
        name = rng.choice(list(FAMILIES))
        sample = f"g{number:03d}"
        FAMILIES[name](image, random.Random(seed + 1000 + number), Image.open(distinct[-60]).convert("RGB")).save(
            directory / "img" / f"{sample}.jpg", quality=90
        )
        generated.append({"id": sample, "image": f"img/{sample}.jpg", "prompt": name, "source_id": original})
        family_of[sample] = original
    for path in background:
        shutil.copy(path, directory / "img" / f"d-{path.name}")
        rows.append({"id": f"d-{path.stem}", "image": f"img/d-{path.name}", "family": "", "edit": "distinct"})
    for number, path in enumerate(held_out):
        shutil.copy(path, directory / "img" / f"n-{path.name}")
        generated.append(
            {"id": f"n{number:03d}", "image": f"img/n-{path.name}", "prompt": "a distinct photo", "source_id": None}
        )
    frame = pd.DataFrame(rows).assign(caption="a photo", keep=True)
    frame.to_parquet(directory / "original.parquet", index=False)
    pd.DataFrame(generated).to_parquet(directory / "generated.parquet", index=False)
    return {
        "originals": len(coco),
        "copies": len(coco) * len(FAMILIES),
        "distractors": len(background),
        "generated_copies": len(coco),
        "generated_distinct": len(held_out),
        "families": list(FAMILIES),
    }


def pasted_background(identifier: str) -> str:
    """The background photo a 'pasted onto another photo' copy was made on (as `build` chose it), else ""."""
    position = list(FAMILIES).index("pasted onto another photo")
    if not identifier.endswith(f"-c{position:02d}"):
        return ""
    number = int(identifier[1:4])
    return f"background-{(number * 7 + position) % 50}"


def evaluate_dedup(workspace, result, frame: pd.DataFrame) -> dict:
    """A verified pair is true when its two images come from one photo: the same original, or (two pasted
    copies) the same background photo, which 50 backgrounds shared among all pasted copies make happen."""
    check = result.verification
    family = frame["family"].to_numpy()
    background = np.array([pasted_background(i) for i in frame["id"]])
    a, b = check.pairs[:, 0], check.pairs[:, 1]
    same = ((family[a] == family[b]) & (family[a] != "")) | ((background[a] == background[b]) & (background[a] != ""))
    ids = frame["id"].to_numpy()
    index = {identifier: row for row, identifier in enumerate(ids)}
    copies = frame[frame["edit"].isin(list(FAMILIES))]
    original_rows = copies["family"].map(index).to_numpy()
    copy_rows = copies["id"].map(index).to_numpy()
    codes = np.minimum(original_rows, copy_rows) * len(ids) + np.maximum(original_rows, copy_rows)
    candidate_codes = check.pairs[:, 0] * len(ids) + check.pairs[:, 1]
    inliers_of = dict(
        zip(candidate_codes.tolist(), np.where(check.coverage >= MIN_COVERAGE, check.inliers, 0).tolist())
    )
    cosine_of = dict(zip(candidate_codes.tolist(), check.similarities.tolist()))
    copies = copies.assign(
        inliers=[inliers_of.get(c, -1) for c in codes.tolist()],  # -1: not a candidate
        cosine=[cosine_of.get(c, np.nan) for c in codes.tolist()],
        grouped=(result.group_id[copy_rows] >= 0) & (result.group_id[copy_rows] == result.group_id[original_rows]),
    )
    threshold = check.inlier_threshold
    per_family = (
        copies.groupby("edit", sort=False)
        .agg(
            copies=("id", "size"),
            candidate_recall=("inliers", lambda v: float((v >= 0).mean())),
            pair_recall=("inliers", lambda v: float((v >= threshold).mean())),
            group_recall=("grouped", "mean"),
        )
        .reset_index()
    )
    verified = check.verified
    distractor = (family[check.pairs[:, 0]] == "") & (family[check.pairs[:, 1]] == "")
    false_pairs = [
        {"a": str(ids[a]), "b": str(ids[b]), "cosine": round(float(s), 3), "inliers": int(n)}
        for (a, b), s, n in zip(
            check.pairs[verified & ~same], check.similarities[verified & ~same], check.inliers[verified & ~same]
        )
    ]
    curve = []
    for t in (4, 6, 8, 10, 12, 15, 20, 30, 50):
        at = is_verified(check.inliers, check.coverage, t)
        curve.append(
            {
                "inliers": t,
                "pair_recall": float((copies["inliers"] >= t).mean()),
                "precision": float((at & same).sum() / max(1, at.sum())),
                "false_pairs": int((at & ~same).sum()),
            }
        )
    n_distractors = int((frame["edit"] == "distinct").sum())
    return {
        "candidate_threshold": check.candidate_threshold,
        "inlier_threshold": threshold,
        "n_candidates": int(len(check.pairs)),
        "n_verified": int(verified.sum()),
        "pair_recall": float((copies["inliers"] >= threshold).mean()),
        "group_recall": float(copies["grouped"].mean()),
        "precision": float((verified & same).sum() / max(1, verified.sum())),
        "per_family": per_family.to_dict("records"),
        "false_pairs": false_pairs,
        "distractor_pairs_tested": n_distractors * (n_distractors - 1) // 2,
        "distractor_candidates_verified": int((distractor & verified).sum()),
        "distractor_candidates": int(distractor.sum()),
        "curve": curve,
        "cosine_of_copies": copies["cosine"].describe(percentiles=[0.05, 0.5]).round(3).to_dict(),
    }


def cosine_baseline(found, frame: pd.DataFrame) -> dict:
    """Embedding cosine alone (no verification): recall of (original, copy) pairs and false pairs among the
    distractors at the old default (0.90) and at the cosine that reaches 95% recall."""
    ids = frame["id"].to_numpy()
    index = {identifier: row for row, identifier in enumerate(ids)}
    copies = frame[frame["edit"].isin(list(FAMILIES))]
    a = found.take(copies["family"].map(index).to_numpy())
    b = found.take(copies["id"].map(index).to_numpy())
    cosines = (a * b).sum(axis=1)
    distractors = found.take(np.flatnonzero((frame["edit"] == "distinct").to_numpy()))
    background = distractors @ distractors.T
    upper = background[np.triu_indices(len(distractors), 1)]
    out = {}
    for name, threshold in (("old default 0.90", 0.90), ("95% recall", float(np.quantile(cosines, 0.05)))):
        out[name] = {
            "cosine": round(threshold, 3),
            "pair_recall": float((cosines >= threshold).mean()),
            "distractor_pairs": int(len(upper)),
            "false_pairs": int((upper >= threshold).sum()),
        }
    return out


def second_opinion(workspace, result) -> dict:
    """The SSIM second opinion on real photos, aligned by the matched keypoints and on whole thumbnails (as before
    issue 51): for each generated copy against the photo it was edited from (per edit family: a mirror or a crop
    moves every pixel) and against its best match (what the page shows), and for each distinct held-out sample
    against its nearest training image (what it would say of a false flag)."""
    from skimage.metrics import structural_similarity

    from analysis.images import load_image
    from analysis.regurgitation.compute import PIXEL_SIZE, pixel_similarity

    root, samples = workspace.config.images_root, result.samples
    generated = workspace.generated.set_index("id")
    training = workspace.original.set_index("id")["image"]

    def thumbnails(first: str, second: str) -> float:
        a, b = (
            np.asarray(load_image(root, path).image.convert("L").resize((PIXEL_SIZE, PIXEL_SIZE)), np.float64) / 255
            for path in (first, second)
        )
        return float(structural_similarity(a, b, data_range=1.0))

    def opinions(pairs: list[tuple[str, str]]) -> pd.DataFrame:
        rows = []
        for first, second in pairs:
            value, aligned = pixel_similarity(root, first, second)
            rows.append({"aligned_ssim": value, "aligned": aligned, "thumbnail_ssim": thumbnails(first, second)})
        return pd.DataFrame(rows)

    def summary(frame: pd.DataFrame) -> dict:
        return {
            "n": int(len(frame)),
            "aligned_share": float(frame["aligned"].mean()),
            "above_half": float((frame["aligned_ssim"].fillna(frame["thumbnail_ssim"]) > 0.5).mean()),
            "median": float(frame["aligned_ssim"].fillna(frame["thumbnail_ssim"]).median()),
            "thumbnails_above_half": float((frame["thumbnail_ssim"] > 0.5).mean()),
            "thumbnails_median": float(frame["thumbnail_ssim"].median()),
        }

    copies = generated[generated.index.str.startswith("g")]
    source = opinions([(row["image"], training[row["source_id"]]) for _, row in copies.iterrows()])
    per_family = source.assign(edit=copies["prompt"].to_numpy()).groupby("edit")
    flagged = samples[samples["flagged"] & samples["id"].str.startswith("g")]
    best = opinions([(generated.loc[i, "image"], training[m]) for i, m in zip(flagged["id"], flagged["best_match"])])
    nearest = result.neighbours[(result.neighbours["rank"] == 1) & result.neighbours["id"].str.startswith("n")]
    distinct = opinions(
        [(generated.loc[i, "image"], training[m]) for i, m in zip(nearest["id"], nearest["training_id"])]
    )
    return {
        "copies_against_source": summary(source),
        "per_family_median": {
            edit: {
                "aligned": float(g["aligned_ssim"].fillna(g["thumbnail_ssim"]).median()),
                "thumbnails": float(g["thumbnail_ssim"].median()),
            }
            for edit, g in per_family
        },
        "flagged_against_best_match": summary(best),
        "distinct_against_nearest": summary(distinct),
    }


def costs(workspace, sample: int = 120) -> dict:
    """Extraction and verification speed on real photos, timed apart from the pipeline's caching, on one core (one
    BLAS and one OpenCV thread: the per-core rates the 1M projection multiplies)."""
    import cv2
    from threadpoolctl import threadpool_limits

    from analysis.copies.local_features import extract, verify
    from analysis.images import load_image

    # evenly spaced rows: originals, their (often smaller) copies and the distractors in the benchmark's proportions
    rows = np.linspace(0, workspace.n_original - 1, sample).astype(int)
    images = [load_image(workspace.config.images_root, p).image for p in workspace.original["image"].iloc[rows]]
    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    with threadpool_limits(1):
        start = time.perf_counter()
        features = [extract(image) for image in images]
        extraction = time.perf_counter() - start
        start = time.perf_counter()
        pairs = [(i, (i * 7 + 3) % len(features)) for i in range(len(features))] * 3
        for i, j in pairs:
            verify(features[i], features[j])
        verification = time.perf_counter() - start
    cv2.setNumThreads(opencv_threads)
    return {
        "extract_images_per_s_one_core": round(len(images) / extraction, 1),
        "verify_pairs_per_s_one_core": round(len(pairs) / verification, 1),
        "mean_keypoints": round(float(np.mean([len(f.points) for f in features])), 1),
    }


START, END = "<!-- copy-detection:start -->", "<!-- copy-detection:end -->"


def render_markdown(payload: dict) -> str:
    """The section of docs/benchmarks.md for this benchmark (replaced in place on every run)."""
    dedup, setup, reg = payload["dedup"], payload["setup"], payload["regurgitation"]
    ssim = reg["ssim"]
    lines = [
        START,
        "## Copy detection on real photos (`python -m bench.copy_detection`)",
        "",
        f"Run: commit `{payload['commit']}`, {payload['date']}, `{payload['command']}`, this 2-core machine.",
        f"{setup['originals']} COCO photos (coco-mini, 427–640 px) as originals, one copy per edit family "
        f"({setup['copies']:,} copies), {setup['distractors']:,} distinct COCO train2014 photos as distractors; "
        f"generated samples: {setup['generated_copies']} further copies and {setup['generated_distinct']} held-out "
        "distinct photos. Shipped defaults: effnet-lite0 candidates at cosine ≥ "
        f"{dedup['candidate_threshold']} (≤ 20 per image), verified at ≥ {dedup['inlier_threshold']} inliers whose "
        f"convex hull covers ≥ {MIN_COVERAGE:.0%} of both images.",
        "",
        "| measure | two-stage (shipped defaults) | cosine only, old default 0.90 | cosine only, at 95% recall |",
        "| --- | --- | --- | --- |",
    ]
    old, r95 = payload["cosine_only"]["old default 0.90"], payload["cosine_only"]["95% recall"]
    lines += [
        f"| (original, copy) pair recall | {dedup['pair_recall']:.3f} | {old['pair_recall']:.3f} | "
        f"{r95['pair_recall']:.3f} (cosine {r95['cosine']}) |",
        f"| copy in its original's group | {dedup['group_recall']:.3f} | | |",
        f"| pair precision | {dedup['precision']:.3f} "
        f"({len(dedup['false_pairs'])} false of {dedup['n_verified']:,}) | | |",
        f"| false pairs among the {old['distractor_pairs']:,} pairs of distinct photos | "
        f"{dedup['distractor_candidates_verified']} (of {dedup['distractor_candidates']:,} candidates verified) | "
        f"{old['false_pairs']:,} | {r95['false_pairs']:,} |",
        f"| regurgitation: flag recall / precision | {reg['flag_recall']:.3f} / {reg['precision']:.3f} "
        f"({reg['flagged']} flagged of {reg['copies']} copies + {reg['distinct']} distinct) | | |",
        "",
        "Per edit family (pair recall = the (original, copy) pair verified; candidate recall = it was a candidate):",
        "",
        "| family | copies | candidate recall | pair recall | group recall |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {f['edit']} | {f['copies']} | {f['candidate_recall']:.3f} | {f['pair_recall']:.3f} | "
        f"{f['group_recall']:.3f} |"
        for f in dedup["per_family"]
    ]
    source, flagged, distinct = (
        ssim[name] for name in ("copies_against_source", "flagged_against_best_match", "distinct_against_nearest")
    )
    families = ssim["per_family_median"]
    lines += [
        "",
        "Regurgitation's SSIM second opinion (share above 0.5, median), aligned by the matched keypoints where they "
        "give a transform, else on whole 64 px thumbnails, against whole thumbnails as before:",
        "",
        "| pairs | aligned (share aligned) | whole thumbnails |",
        "| --- | --- | --- |",
        f"| {source['n']} generated copies against the photo they were edited from | {source['above_half']:.3f}, "
        f"{source['median']:.2f} ({source['aligned_share']:.0%}) | {source['thumbnails_above_half']:.3f}, "
        f"{source['thumbnails_median']:.2f} |",
        f"| {flagged['n']} flagged copies against their best match (the page) | {flagged['above_half']:.3f}, "
        f"{flagged['median']:.2f} ({flagged['aligned_share']:.0%}) | {flagged['thumbnails_above_half']:.3f}, "
        f"{flagged['thumbnails_median']:.2f} |",
        f"| {distinct['n']} distinct samples against their nearest training image | {distinct['above_half']:.3f}, "
        f"{distinct['median']:.2f} ({distinct['aligned_share']:.0%}) | {distinct['thumbnails_above_half']:.3f}, "
        f"{distinct['thumbnails_median']:.2f} |",
        "",
        "Median against the source photo, aligned / thumbnails: "
        + "; ".join(f"{edit} {v['aligned']:.2f} / {v['thumbnails']:.2f}" for edit, v in sorted(families.items()))
        + ".",
    ]
    lines += [
        "",
        "Precision–recall over the inlier threshold (all verified pairs; a false pair joins two families or "
        "two distinct photos):",
        "",
        "| inliers ≥ | pair recall | precision | false pairs |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {c['inliers']} | {c['pair_recall']:.3f} | {c['precision']:.4f} | {c['false_pairs']} |"
        for c in dedup["curve"]
    ]
    costs, times = payload["costs"], payload["timings_s"]
    n_images = setup["originals"] + setup["copies"] + setup["distractors"]
    lines += [
        "",
        f"Costs: local features {costs['extract_images_per_s_one_core']} images/s and verification "
        f"{costs['verify_pairs_per_s_one_core']} pairs/s on one core ({costs['mean_keypoints']} keypoints per image; "
        "extraction from decoded images and matching of features in memory: the rates with decoding, writing and "
        "reading back are lower, in 'Pixel verification: cost per core'). "
        f"A first verified dedup of these {n_images:,} images on 2 cores therefore costs at most about "
        f"{n_images / (2 * costs['extract_images_per_s_one_core']):.0f} s of features and "
        f"{dedup['n_candidates'] / (2 * costs['verify_pairs_per_s_one_core']):.0f} s of verification "
        f"({dedup['n_candidates']:,} candidates, {dedup['n_candidates'] / n_images:.1f} per image); later runs load "
        f"both from the cache (this run: {times['verified_dedup_s']} s). At 1M images and the same candidates per "
        f"image: about {1e6 / (2 * costs['extract_images_per_s_one_core']) / 3600:.1f} h of features and "
        f"{1e6 * dedup['n_candidates'] / n_images / (2 * costs['verify_pairs_per_s_one_core']) / 3600:.1f} h of "
        "verification on 2 cores (estimate: it scales with cores or machines).",
        "",
        "False pairs (all listed in docs/copy_detection.json): "
        + "; ".join(f"{f['a']} ↔ {f['b']} ({f['inliers']} inliers)" for f in dedup["false_pairs"][:12])
        + " …",
        END,
    ]
    return "\n".join(lines)


def publish(payload: dict) -> None:
    replace_section(
        REPO / "docs" / "benchmarks.md", START, END, render_markdown(payload), before="## How to read these numbers"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="/tmp/copy-detection-bench")
    parser.add_argument("--originals", type=int, default=159)
    parser.add_argument("--distractors", type=int, default=4699)
    parser.add_argument("--out", default=str(REPO / "docs" / "copy_detection.json"))
    args = parser.parse_args()
    if not (REAL / "coco-mini").exists():
        raise SystemExit(f"needs the real photos in {REAL}")
    from analysis.dedup.cached import verified_dedup_for
    from analysis.embedding_store import load_embeddings
    from analysis.embeddings import prepare
    from analysis.regurgitation.cached import regurgitation_for
    from analysis.workspace import init_workspace, load_workspace

    directory = Path(args.dir)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    setup_path = directory / "setup.json"
    wanted = {"originals": args.originals, "distractors": args.distractors}
    if setup_path.exists() and json.loads(setup_path.read_text()).get("asked") == wanted:
        setup = json.loads(setup_path.read_text())["setup"]  # the same photos and edits: reuse (and its cache)
    else:
        shutil.rmtree(directory, ignore_errors=True)
        setup = build(directory, args.originals, args.distractors)
        init_workspace(directory, original="original.parquet", kept_column="keep", generated="generated.parquet")
        setup_path.write_text(json.dumps({"asked": wanted, "setup": setup}))
    workspace = load_workspace(directory)
    timings["build_s"] = time.perf_counter() - start
    start = time.perf_counter()
    prepare(workspace, progress=False, log=lambda m: None)
    timings["prepare_s"] = time.perf_counter() - start
    found = load_embeddings(workspace)
    start = time.perf_counter()
    result = verified_dedup_for(workspace, found=found)
    timings["verified_dedup_s"] = time.perf_counter() - start
    frame = workspace.original
    dedup = evaluate_dedup(workspace, result, frame)
    start = time.perf_counter()
    regurgitation = regurgitation_for(workspace, verify=True)
    timings["verified_regurgitation_s"] = time.perf_counter() - start
    samples = regurgitation.samples
    source = samples["id"].str.replace("g", "o", n=1)  # generated copy g017 is an edit of original o017
    is_copy = samples["id"].str.startswith("g")
    family = frame.set_index("id")["family"]
    right = samples["best_match"].map(family) == source
    flagged = samples["flagged"]
    payload = {
        "setup": setup,
        "dedup": dedup,
        "cosine_only": cosine_baseline(found, frame),
        "regurgitation": {
            "flag_recall": float((flagged & is_copy & right).sum() / is_copy.sum()),
            "precision": float((flagged & is_copy & right).sum() / max(1, flagged.sum())),
            "flagged": int(flagged.sum()),
            "copies": int(is_copy.sum()),
            "distinct": int((~is_copy).sum()),
            **(regurgitation.verification or {}),
            "ssim": second_opinion(workspace, regurgitation),
        },
        "costs": costs(workspace),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "peak_rss_mb": round(peak_rss_mb(), 1),
        **run_record(f"python -m bench.copy_detection --originals {args.originals} --distractors {args.distractors}"),
    }
    Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
    publish(payload)
    print(json.dumps({k: payload[k] for k in ("regurgitation", "costs", "timings_s")}, indent=1))
    print(json.dumps({k: v for k, v in dedup.items() if k not in ("false_pairs", "per_family", "curve")}, indent=1))
    print(pd.DataFrame(dedup["per_family"]).to_string())


if __name__ == "__main__":
    main()
