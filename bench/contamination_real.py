"""Evaluation-set contamination on real photos and captions at the size of a small audit, through the CLI at the
shipped defaults: what it finds, what it misses, what it costs.

    python -m bench.contamination_real [--training 4999] [--planted 40] [--dir /tmp/contamination-bench] [--write]

The evaluation set: COCO-mini's photos of copy detection's *test* split (o080 on: the defaults were chosen on the
others), each with its first COCO caption where COCO-mini has one. The training set: distinct COCO train2014 photos
with LAION captions, holding `--planted` of the evaluation photos edited by copy detection's families (one family
each, in turn) and 10 of the evaluation captions (5 with case and punctuation changed, 5 with a word misspelt).
Measured: images and captions found against what was planted, matches among the rest (false), and the wall time of
a cold `prepare` and of a cold and a warm `contamination`, each with nothing else running.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from PIL import Image

from bench.common import REAL, REPO, replace_section, run_record
from bench.copy_edits import FAMILIES
from bench.duplicate_tiers import TUNING_ORIGINALS

MARK = ("<!-- contamination-real:start -->", "<!-- contamination-real:end -->")
CLI = [sys.executable, "-m", "pretrain_audit.cli"]


def coco_first_captions() -> dict[str, str]:
    annotations = json.loads((REAL / "coco-mini" / "captions_val2017.json").read_text())
    files = {image["id"]: image["file_name"] for image in annotations["images"]}
    first: dict[str, str] = {}
    for caption in sorted(annotations["annotations"], key=lambda a: a["id"]):
        first.setdefault(files[caption["image_id"]], caption["caption"].strip())
    return first


def misspelt(text: str) -> str:
    words = text.split()
    candidates = [i for i, w in enumerate(words) if len(w) > 3 and w[1] != w[2]]
    position = max(candidates, key=lambda i: len(words[i]))
    word = words[position]
    words[position] = word[0] + word[2] + word[1] + word[3:]
    return " ".join(words)


def build(directory: Path, n_training: int, n_planted: int) -> dict:
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "img").mkdir(parents=True)
    (directory / "eval" / "images").mkdir(parents=True)
    captions_of = coco_first_captions()
    test_split = sorted((REAL / "coco-mini" / "images").glob("*.jpg"))[TUNING_ORIGINALS:]
    laion = pd.read_parquet(REAL / "captions" / "laion400m_sample_10000.parquet")["TEXT"].dropna().astype(str)
    laion = [t for t in laion if t.strip()]
    distinct = sorted((REAL / "photos-coco2014").glob("*.jpg"))[:n_training]
    families = list(FAMILIES)
    rng = random.Random(0)
    evaluation, training = [], []
    planted_images: dict[str, str] = {}
    planted_captions: dict[str, str] = {}
    for number, path in enumerate(test_split):
        eval_id = f"e{number:03d}"
        shutil.copy(path, directory / "eval" / "images" / f"{eval_id}.jpg")
        evaluation.append({"id": eval_id, "image": f"images/{eval_id}.jpg", "caption": captions_of.get(path.name, "")})
        if number < n_planted:
            family = families[number % len(families)]
            image = Image.open(path).convert("RGB")
            other = Image.open(distinct[-1 - number]).convert("RGB")  # the photo a "pasted onto" copy lands on
            FAMILIES[family](image, rng, other).convert("RGB").save(directory / "img" / f"copy-{eval_id}.jpg")
            training.append({"id": f"copy-{eval_id}", "image": f"img/copy-{eval_id}.jpg", "family": family})
            planted_images[eval_id] = f"copy-{eval_id}"
    for number, path in enumerate(distinct):
        shutil.copy(path, directory / "img" / f"d{number:04d}.jpg")
        training.append({"id": f"d{number:04d}", "image": f"img/d{number:04d}.jpg", "family": ""})
    for row, caption in zip(training, laion):
        row["caption"] = caption
    captioned = [row for row in evaluation[n_planted:] if row["caption"]][:10]  # photos without a planted copy
    for number, row in enumerate(captioned):
        holder = training[len(planted_images) + 37 * (number + 1)]
        holder["caption"] = row["caption"].upper() + " !" if number < len(captioned) // 2 else misspelt(row["caption"])
        planted_captions[row["id"]] = holder["id"]
    pd.DataFrame(evaluation).to_parquet(directory / "eval" / "eval.parquet", index=False)
    pd.DataFrame(training).assign(keep=True).to_parquet(directory / "train.parquet", index=False)
    subprocess.run(
        [*CLI, "init", str(directory), "--original", "train.parquet", "--kept-column", "keep"],
        check=True,
        cwd=directory,
        capture_output=True,
    )
    config = directory / "audit.toml"
    config.write_text(config.read_text() + '\n[[eval]]\nname = "coco"\nmanifest = "eval/eval.parquet"\n')
    return {
        "n_eval": len(evaluation),
        "n_eval_captions": sum(1 for row in evaluation if row["caption"]),
        "n_training": len(training),
        "planted_images": planted_images,
        "planted_captions": planted_captions,
        "families": {row["id"]: row["family"] for row in training if row["family"]},
    }


def timed(*args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise SystemExit(done.stderr)
    return time.perf_counter() - started, done.stdout


def measure(directory: Path, built: dict) -> dict:
    prepare_s, _ = timed("prepare", str(directory), "--no-progress")
    cold_s, out = timed("contamination", str(directory), "--json")
    warm_s, _ = timed("contamination", str(directory), "--json")
    found = json.loads(out)["sets"][0]
    image_pairs = {(m["eval_id"], m["train_id"]) for m in found["images"]["matches"]}
    planted = set(built["planted_images"].items())
    missed = sorted(planted - image_pairs)
    caption_pairs = {(m["eval_id"], m["train_id"]) for m in found["captions"]["matches"]}
    return {
        **{k: v for k, v in built.items() if k not in ("families",)},
        "prepare_s": round(prepare_s, 1),
        "contamination_cold_s": round(cold_s, 1),
        "contamination_warm_s": round(warm_s, 1),
        "images_found": len(planted & image_pairs),
        "images_missed": [(e, built["families"][t]) for e, t in missed],
        "images_false": sorted(p for p in image_pairs - planted),
        "n_candidates": found["images"]["n_candidates"],
        "tiers": found["images"]["tiers"],
        "captions_found": len(set(built["planted_captions"].items()) & caption_pairs),
        "captions_false": sorted(p for p in caption_pairs - set(built["planted_captions"].items())),
        "caption_pairs_compared": built["n_eval_captions"] * built["n_training"],
    }


def render(payload: dict) -> str:
    missed = ", ".join(f"{e} ({family})" for e, family in payload["images_missed"]) or "none"
    planted, captions = len(payload["planted_images"]), len(payload["planted_captions"])
    rows = [
        ("planted image copies found (verified on pixels)", f"{payload['images_found']} of {planted}"),
        ("image matches that are not planted copies", f"{len(payload['images_false'])}"),
        ("candidates verified", f"{payload['n_candidates']:,} (tiers {payload['tiers']})"),
        ("planted caption copies found", f"{payload['captions_found']} of {captions}"),
        (
            "caption matches that are not planted",
            f"{len(payload['captions_false'])} among {payload['caption_pairs_compared']:,} pairs",
        ),
        ("cold `prepare` of the training set", f"{payload['prepare_s']} s"),
        (
            "cold `contamination` (embed the evaluation set, search, verify, captions)",
            f"{payload['contamination_cold_s']} s",
        ),
        ("warm `contamination` (cached)", f"{payload['contamination_warm_s']} s"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return "\n".join(
        [
            MARK[0],
            "## Evaluation-set contamination on real photos (`python -m bench.contamination_real`)",
            "",
            f"Run: commit `{payload['commit']}`, {payload['date']}, `{payload['command']}`, this 2-core machine, "
            "nothing else running.",
            f"Evaluation set: {payload['n_eval']} COCO val2017 photos of copy detection's test split, "
            f"{payload['n_eval_captions']} with a COCO caption. Training set: {payload['n_training']:,} images: "
            f"distinct COCO train2014 photos with LAION captions, holding {planted} of the evaluation photos, each "
            f"edited by one of copy detection's families in turn, and {captions} of the evaluation captions (of photos "
            "without a planted copy; half with case and punctuation changed, half misspelt). Shipped defaults, "
            "through the CLI.",
            "",
            "| measure | value |",
            "| --- | --- |",
            table,
            "",
            f"Missed image copies (family): {missed}. The families are those copy detection measures per family "
            '(docs/benchmarks.md "Copy detection on real photos"): what it misses there, it misses here.',
            MARK[1],
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--training", type=int, default=4999)
    parser.add_argument("--planted", type=int, default=40)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/contamination-bench"))
    parser.add_argument("--write", action="store_true", help="record the result in docs/benchmarks.md")
    args = parser.parse_args()
    if not (REAL / "coco-mini").exists():
        raise SystemExit(f"{REAL} (COCO-mini, COCO train2014 photos, LAION captions) is needed for this benchmark")
    built = build(args.dir, args.training, args.planted)
    payload = measure(args.dir, built) | run_record(
        "python -m bench.contamination_real"
        + "".join(f" --{k} {v}" for k, v in (("training", args.training), ("planted", args.planted)))
    )
    print(json.dumps({k: v for k, v in payload.items() if k not in ("planted_images", "planted_captions")}, indent=1))
    if args.write:
        replace_section(REPO / "docs" / "benchmarks.md", MARK[0], MARK[1], render(payload))


if __name__ == "__main__":
    main()
