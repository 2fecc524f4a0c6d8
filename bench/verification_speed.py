"""Pixel verification's cost per core, before and after, in one run on the same real photos.

    python -m bench.verification_speed [--baseline COMMIT] [--photos 159] [--rounds 2] [--write]

Each tree (this one, and --baseline checked out in a throwaway git worktree) runs its own feature-store task
functions in a child process with one BLAS/OpenCV thread: local features of real photos from their files (decode,
extract, write to that tree's cache format: one file per image before issue 43, one chunk after), then verification
of a fixed list of pairs read back from the cache: every (coco-mini photo, edited copy) pair plus non-copy pairs
(each photo against three distinct COCO photos and three other photos), the mix a dedup's candidate list has.
Reported per tree: images/s and pairs/s on one core, keypoints per image, the copy pairs verified, and every pair
whose verdict (verified or not, at the shipped inlier and coverage thresholds) differs between the trees, with its
inliers in each; each tree's profile of one verification pass says where a pair's time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import REAL, REPO, baseline_worktree, replace_section, run_record, write_record

BASELINE = "f3ec034"  # the last commit with OpenCV's brute-force matcher (knnMatch, twice per pair)

CHILD = r"""
import cProfile, io, json, pstats, sys, time
from pathlib import Path
import cv2
import numpy as np
cv2.setNumThreads(1)  # one core: OpenCV's own thread pool off too (the baseline never set it)
root, cache, pairs_file = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
names = json.loads(Path(pairs_file).read_text())
images, pairs = names["images"], np.array(names["pairs"])
from analysis.copies import feature_store as store
cache.mkdir(parents=True, exist_ok=True)
start = time.perf_counter()
if hasattr(store, "_extract_chunk"):  # features in chunk files (issue 43), one chunk of all images as one task
    keys = [f"{i:05d}" for i in range(len(images))]
    written = store._extract_chunk((str(root), str(cache), list(zip(images, keys))))
    files = [written[key] for key in keys]
    keypoints = [where.length for where in files]
else:  # one .npz per image (before issue 43)
    files = [str(cache / f"{i:05d}.npz") for i in range(len(images))]
    for image, path in zip(images, files):
        store._extract_to((str(root), image, path))
    keypoints = None
extraction = time.perf_counter() - start
def verify_all():
    return store._verify_chunk((files, pairs))
if keypoints is None:
    keypoints = [len(store.load_features(Path(f)).points) for f in files]
start = time.perf_counter()
checked = verify_all()
inliers, coverage = checked[0], checked[2]
verification = time.perf_counter() - start
profile = cProfile.Profile()
profile.enable()
verify_all()
profile.disable()
text = io.StringIO()
pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(5)
print(json.dumps({
    "features_images_per_s": round(len(images) / extraction, 1),
    "verify_pairs_per_s": round(len(pairs) / verification, 1),
    "keypoints_per_image": round(float(np.mean(keypoints)), 1),
    "inliers": inliers.tolist(),
    "coverage": coverage.tolist(),
    "profile": text.getvalue(),
}))
"""


def build_inputs(directory: Path, photos: int, seed: int = 0) -> dict:
    """Photos, one edited copy each (edit families in turn), distinct photos, and the pair list."""
    from PIL import Image

    from bench.copy_edits import FAMILIES

    coco = sorted((REAL / "coco-mini" / "images").glob("*.jpg"))[:photos]
    distinct = sorted((REAL / "photos-coco2014").glob("*.jpg"))[: 2 * photos]
    other = Image.open(distinct[-1]).convert("RGB")
    rng = random.Random(seed)
    images, families = [], list(FAMILIES)
    (directory / "img").mkdir(parents=True, exist_ok=True)
    for number, path in enumerate(coco):
        photo = Image.open(path).convert("RGB")
        photo.save(directory / "img" / f"o{number}.jpg", quality=95)
        FAMILIES[families[number % len(families)]](photo, rng, other).save(
            directory / "img" / f"c{number}.jpg", quality=92
        )
        images += [f"img/o{number}.jpg", f"img/c{number}.jpg"]
    for path in distinct:
        Image.open(path).convert("RGB").save(directory / "img" / f"d-{path.name}", quality=95)
        images.append(f"img/d-{path.name}")
    n_coco = 2 * len(coco)
    copy_pairs = [(2 * i, 2 * i + 1) for i in range(len(coco))]
    other_pairs = [(i, n_coco + rng.randrange(len(distinct))) for i in range(n_coco) for _ in range(3)]
    other_pairs += [(i, j) for i in range(n_coco) for j in rng.sample(range(n_coco), 4) if j // 2 != i // 2][
        : 3 * n_coco
    ]
    return {"images": images, "pairs": copy_pairs + other_pairs, "copy_pairs": len(copy_pairs)}


def measure(tree: Path, root: Path, pairs_file: Path, child: str = CHILD) -> dict:
    """`child` run on `tree`'s code, one thread, on the photos under `root` and the pairs of `pairs_file`."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env["PYTHONPATH"] = str(tree)
    with tempfile.TemporaryDirectory() as cache:
        done = subprocess.run(
            [sys.executable, "-c", child, str(root), cache, str(pairs_file)],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def alternating_rounds(baseline: str, photos: int, rounds: int, child: str) -> tuple[dict, list[tuple[dict, dict]]]:
    """The photo set and its pairs, then `child` on the baseline's tree and on this one in turn, `rounds` times:
    (inputs, [(before, after), ...])."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "photos"
        inputs = build_inputs(root, photos)
        pairs_file = Path(scratch) / "pairs.json"
        pairs_file.write_text(json.dumps(inputs))
        with baseline_worktree(baseline, Path(scratch)) as worktree:
            return inputs, [
                (measure(worktree, root, pairs_file, child), measure(REPO, root, pairs_file, child))
                for _ in range(rounds)
            ]


START, END = "<!-- verification-speed:start -->", "<!-- verification-speed:end -->"


def render_markdown(payload: dict) -> str:
    before, after = payload["before"], payload["after"]
    changed = payload["changed_verdicts"]
    lines = [
        START,
        "## Pixel verification: cost per core, before and after (`python -m bench.verification_speed`)",
        "",
        f"Run: commit `{payload['commit']}`, {payload['date']}, `{payload['command']}`; baseline commit "
        f"`{payload['baseline']}` measured in the same run on the same files, in {payload['rounds']} alternating "
        "rounds (the best rate of each tree kept), one core (one BLAS and OpenCV "
        f"thread), each tree's own feature-store workers (decode + extract + write; read back + verify). "
        f"{payload['photos']} coco-mini photos (427–640 px) with one edited copy each, "
        f"{payload['distinct']} distinct COCO photos; {payload['n_pairs']:,} pairs of which "
        f"{payload['copy_pairs']} are (photo, copy).",
        "",
        "| measure | before | after | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| local features, images/s per core | {before['features_images_per_s']} | "
        f"{after['features_images_per_s']} | "
        f"{after['features_images_per_s'] / before['features_images_per_s']:.1f}× |",
        f"| verification, pairs/s per core | {before['verify_pairs_per_s']} | {after['verify_pairs_per_s']} | "
        f"{after['verify_pairs_per_s'] / before['verify_pairs_per_s']:.1f}× |",
        f"| keypoints per image | {before['keypoints_per_image']} | {after['keypoints_per_image']} | |",
        f"| copy pairs verified | {before['copies_verified']} of {payload['copy_pairs']} | "
        f"{after['copies_verified']} of {payload['copy_pairs']} | |",
        f"| other pairs verified (false) | {before['others_verified']} | {after['others_verified']} | |",
        "",
        f"Verdicts: {payload['same_inliers']:,} of {payload['n_pairs']:,} pairs have the same inlier count before "
        f"and after; {len(changed)} changed verdict"
        + (": " + "; ".join(f"{c['pair']} ({c['kind']}) {c['before']} → {c['after']} inliers" for c in changed))
        + ".",
        "",
        projection(before, after),
        "",
        "Where a verification pass spends its time (`cProfile`, heaviest own time first):",
        "",
        "| tree | function | share of the pass |",
        "| --- | --- | ---: |",
    ]
    for tree in ("before", "after"):
        lines += [f"| {tree} | `{name}` | {share:.0%} |" for name, share in payload[f"{tree}_profile"]]
    lines.append(END)
    return "\n".join(lines)


# Candidates per image of a verified dedup of real photos: 84,563 for 7,084 images (bench/copy_detection.py,
# docs/copy_detection.json). What the projection to a million images multiplies.
CANDIDATES_PER_IMAGE = 84_563 / 7_084


def projection(before: dict, after: dict, images: int = 1_000_000, cores: int = 2) -> str:
    """A first verified dedup of a million images on this machine's two cores, from the per-core rates."""

    def hours(rates: dict) -> tuple[float, float]:
        features = images / (cores * rates["features_images_per_s"]) / 3600
        verification = images * CANDIDATES_PER_IMAGE / (cores * rates["verify_pairs_per_s"]) / 3600
        return features, verification

    (f0, v0), (f1, v1) = hours(before), hours(after)
    return (
        f"Projected first verified dedup of {images:,} images on {cores} cores ({CANDIDATES_PER_IMAGE:.1f} "
        f"candidates per image, as on the copy-detection benchmark's real photos; rates scale with cores): before "
        f"{f0:.1f} h of features + {v0:.1f} h of verification = **{f0 + v0:.1f} h**; after {f1:.1f} h + {v1:.1f} h "
        f"= **{f1 + v1:.1f} h**."
    )


def top_lines(profile: str, count: int = 3) -> list[tuple[str, float]]:
    """The heaviest functions of a pstats listing (own time), with their share of the total."""
    listing = profile.splitlines()
    header = next(i for i, line in enumerate(listing) if line.strip().startswith("ncalls"))
    total = float(profile.split(" in ")[1].split(" seconds")[0])
    rows = [line.split(maxsplit=5) for line in listing[header + 1 :] if line.strip()][:count]
    return [(re.sub(r"^.*?/(analysis|bench)/", r"\1/", row[-1]), float(row[1]) / total) for row in rows]


def best_of(runs: list[dict]) -> dict:
    """One tree's runs: the fastest rate of each kind (this shared machine slows whole runs by up to ~25%, so the
    best of alternating rounds compares the trees on their undisturbed speed); answers are checked identical."""
    for run in runs[1:]:
        if run["inliers"] != runs[0]["inliers"]:
            raise SystemExit("the same tree gave different inliers in two rounds: verification is not deterministic")
    best = dict(runs[0])
    for rate in ("features_images_per_s", "verify_pairs_per_s"):
        best[rate] = max(run[rate] for run in runs)
    best["profile"] = max(runs, key=lambda run: run["verify_pairs_per_s"])["profile"]
    return best


def main() -> None:
    from analysis.copies.candidates import INLIER_THRESHOLD, is_verified

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE)
    parser.add_argument("--photos", type=int, default=159)
    parser.add_argument(
        "--rounds", type=int, default=2, help="before and after in turn, this many times; the best rate of each kept"
    )
    parser.add_argument("--write", action="store_true", help="record in docs/benchmarks.md")
    args = parser.parse_args()
    if not (REAL / "coco-mini").exists():
        raise SystemExit(f"needs the real photos in {REAL}")
    inputs, rounds = alternating_rounds(args.baseline, args.photos, args.rounds, CHILD)
    before, after = (best_of([pair[tree] for pair in rounds]) for tree in (0, 1))
    n_copies = inputs["copy_pairs"]
    verified_before, verified_after = (
        is_verified(np.array(result["inliers"]), np.array(result["coverage"]), INLIER_THRESHOLD)
        for result in (before, after)
    )
    for result, verified in ((before, verified_before), (after, verified_after)):
        result["copies_verified"] = int(verified[:n_copies].sum())
        result["others_verified"] = int(verified[n_copies:].sum())
    changed = [
        {
            "pair": " ↔ ".join(Path(inputs["images"][i]).stem for i in inputs["pairs"][row]),
            "kind": "photo and its copy" if row < n_copies else "not a copy",
            "before": before["inliers"][row],
            "after": after["inliers"][row],
        }
        for row in np.flatnonzero(verified_before != verified_after)
    ]
    payload = {
        "baseline": args.baseline,
        "photos": args.photos,
        "rounds": args.rounds,
        "distinct": len(inputs["images"]) - 2 * args.photos,
        "n_pairs": len(inputs["pairs"]),
        "copy_pairs": n_copies,
        "before": {k: v for k, v in before.items() if k not in ("inliers", "coverage", "profile")},
        "after": {k: v for k, v in after.items() if k not in ("inliers", "coverage", "profile")},
        "same_inliers": int(sum(x == y for x, y in zip(before["inliers"], after["inliers"]))),
        "changed_verdicts": changed,
        "before_profile": top_lines(before["profile"]),
        "after_profile": top_lines(after["profile"]),
        **run_record(
            f"python -m bench.verification_speed --baseline {args.baseline} --photos {args.photos} "
            f"--rounds {args.rounds}"
        ),
    }
    print(json.dumps(payload, indent=1))
    print(before["profile"])
    print(after["profile"])
    if args.write:
        write_record(
            "verification_speed",
            payload,
            "benchmarks.md",
            START,
            END,
            render_markdown(payload),
            before="<!-- copy-detection:start -->",
        )


if __name__ == "__main__":
    main()


def rerender() -> None:
    """Write the section again from docs/verification_speed.json (after a change to its wording only)."""
    payload = json.loads((REPO / "docs" / "verification_speed.json").read_text())
    replace_section(REPO / "docs" / "benchmarks.md", START, END, render_markdown(payload))
