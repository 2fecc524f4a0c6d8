"""How local features are extracted: what each way of decoding and each keypoint count costs, and what it keeps.

    python -m bench.feature_extraction [--originals 159] [--write]

Each variant decodes an image file and extracts SIFT as `analysis/copies/local_features.py` does, with one of its
knobs changed: the colour picture converted to grey (before issue 42's decoding step), a JPEG's luma alone (what
`extract_file` ships), or a JPEG decoded at the smallest DCT scale whose long side stays ≥ 320 px (Pillow's draft),
and fewer keypoints. For every variant: each coco-mini original (427–640 px) against its copy in each edit family
(bench/copy_edits.py), and non-copy pairs (each original against 10 distinct COCO photos and 5 other originals),
judged at the shipped rule (inliers ≥ INLIER_THRESHOLD over ≥ MIN_COVERAGE of both images); and the extraction
cost on one core (decode included, best of two rounds over the same 150 photos).

Splits (declared here): tuning = originals 0–79 with even-numbered distinct photos, test = originals 80–158 with
odd-numbered ones. This is a quick screen: a variant is shipped only if it also holds the recall of the full
copy-detection benchmark (bench/copy_detection.py, its own tuning split; docs/analyses.md says which were run).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from threadpoolctl import threadpool_limits

from analysis.copies.candidates import INLIER_THRESHOLD, is_verified
from analysis.copies.local_features import MAX_SIDE, Features, verify
from bench.common import REAL, run_record, write_record


@dataclass(frozen=True)
class Variant:
    decode: str  # "colour" (then converted to grey), "luma" (a JPEG's grey alone) or "draft" (luma at a DCT scale)
    keypoints: int


VARIANTS = {
    "colour decode, 300 keypoints (before)": Variant("colour", 300),
    "luma decode, 300 keypoints (shipped)": Variant("luma", 300),
    "draft decode, 300 keypoints": Variant("draft", 300),
    "draft decode, 250 keypoints": Variant("draft", 250),
    "draft decode, 200 keypoints": Variant("draft", 200),
}
SHIPPED = "luma decode, 300 keypoints (shipped)"
TUNING_ORIGINALS = 80


def features(data: bytes, variant: Variant) -> Features:
    import cv2

    image = Image.open(io.BytesIO(data))
    width, height = image.size
    scale = min(1.0, MAX_SIDE / max(width, height))
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    if variant.decode != "colour":
        image.draft("L", target if variant.decode == "draft" else image.size)
    grey = ImageOps.exif_transpose(image).convert("RGB" if variant.decode == "colour" else "L").convert("L")
    if grey.size != target:
        grey = grey.resize(target, Image.Resampling.BILINEAR)
    sift = cv2.SIFT_create(nfeatures=variant.keypoints)  # type: ignore[attr-defined]
    keypoints, descriptors = sift.detectAndCompute(np.asarray(grey), None)
    if descriptors is None:
        return Features(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8), *target, scale)
    points = np.array([k.pt for k in keypoints], dtype=np.float32)
    return Features(points, np.clip(descriptors, 0, 255).astype(np.uint8), *target, scale)


def check_against_product(data: bytes, directory: Path) -> None:
    """The shipped variant must be what the product extracts (else this benchmark measures something else)."""
    from analysis.copies import local_features

    (directory / "probe.jpg").write_bytes(data)
    ours, product = features(data, VARIANTS[SHIPPED]), local_features.extract_file(directory, "probe.jpg")
    if product is None or not np.array_equal(ours.descriptors, product.descriptors):
        raise SystemExit("the shipped variant no longer matches local_features.extract_file: update VARIANTS")


def encoded(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def build_split(originals: list[Path], distinct: list[Path], seed: int) -> dict:
    from bench.copy_edits import FAMILIES

    rng = random.Random(seed)
    other = Image.open(distinct[-1]).convert("RGB")
    split: dict = {"originals": [], "copies": [], "distinct": [p.read_bytes() for p in distinct]}
    for number, path in enumerate(originals):
        photo = Image.open(path).convert("RGB")
        split["originals"].append(encoded(photo, 95))
        for family, edit in FAMILIES.items():
            split["copies"].append((number, family, encoded(edit(photo, rng, other), 92)))
    pick = random.Random(seed + 1)
    split["others"] = [
        (number, kind, other_number)
        for number in range(len(originals))
        for kind, other_number in [("distinct", j) for j in pick.sample(range(len(distinct)), 10)]
        + [("original", j) for j in pick.sample(range(len(originals)), 6) if j != number][:5]
    ]
    return split


def judge(split: dict, variant: Variant) -> dict:
    def verified(a: Features, b: Features) -> bool:
        result = verify(a, b)
        return bool(is_verified(np.array([result.inliers]), np.array([result.coverage]), INLIER_THRESHOLD)[0])

    originals = [features(d, variant) for d in split["originals"]]
    distinct = [features(d, variant) for d in split["distinct"]]
    copies = [(number, family, features(d, variant)) for number, family, d in split["copies"]]
    found = [verified(originals[number], copy) for number, _, copy in copies]
    start = time.perf_counter()
    false = [
        f"{number}-{kind}{j}"
        for number, kind, j in split["others"]
        if verified(originals[number], (distinct if kind == "distinct" else originals)[j])
    ]
    per_pair = (time.perf_counter() - start) / max(1, len(split["others"]))
    return {
        "copies": len(copies),
        "copies_verified": int(sum(found)),
        "recall": round(float(np.mean(found)), 4),
        "missed": [f"o{number}: {family}" for (number, family, _), ok in zip(copies, found) if not ok],
        "non_copy_pairs": len(split["others"]),
        "false_pairs": false,
        "keypoints_per_image": round(float(np.mean([len(f.points) for f in originals + distinct])), 1),
        "verification_ms_per_pair": round(per_pair * 1000, 3),
    }


def extraction_cost(files: list[bytes], variant: Variant, rounds: int = 2) -> float:
    """Milliseconds per image on one core, decode included: the best of `rounds` passes."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for data in files:
            features(data, variant)
        best = min(best, (time.perf_counter() - start) / len(files) * 1000)
    return round(best, 2)


START, END = "<!-- feature-extraction:start -->", "<!-- feature-extraction:end -->"


def render_markdown(payload: dict) -> str:
    lines = [
        START,
        "## Local-feature extraction: decoding and keypoints (`python -m bench.feature_extraction`)",
        "",
        f"Run: commit `{payload['commit']}`, {payload['date']}, `{payload['command']}`, one core (one OpenCV and "
        f"BLAS thread). Tuning: coco-mini originals 0–{TUNING_ORIGINALS - 1}; test: the other "
        f"{payload['test_originals']}; each original with one copy per edit family (bench/copy_edits.py), against "
        "10 distinct COCO photos and 5 other originals (non-copy pairs); judged at the shipped rule. A quick "
        "screen: what ships must also hold the full copy-detection benchmark's recall (docs/analyses.md, "
        '"Verified copies": the draft decode passed this screen and lost recall there). Costs are one run\'s: '
        "differences under about 10% are within this machine's run-to-run variation.",
        "",
        "| variant | extraction, ms per image (decode included) | keypoints per image | verification, ms per pair "
        "| tuning: copies verified, false pairs | test: copies verified, false pairs |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for name in payload["variants"]:
        tuning, test = payload["tuning"][name], payload["test"][name]
        mark = "**" if name == SHIPPED else ""
        lines.append(
            f"| {mark}{name}{mark} | {payload['costs'][name]} | {test['keypoints_per_image']} "
            f"| {test['verification_ms_per_pair']} "
            f"| {tuning['copies_verified']} of {tuning['copies']} ({tuning['recall']:.4f}), "
            f"{len(tuning['false_pairs'])} of {tuning['non_copy_pairs']} "
            f"| {test['copies_verified']} of {test['copies']} ({test['recall']:.4f}), "
            f"{len(test['false_pairs'])} of {test['non_copy_pairs']} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def main() -> None:
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--originals", type=int, default=159)
    parser.add_argument("--write", action="store_true", help="record in docs/benchmarks.md")
    args = parser.parse_args()
    if not (REAL / "coco-mini").exists():
        raise SystemExit(f"needs the real photos (coco-mini, photos-coco2014) in {REAL}")
    cv2.setNumThreads(1)

    coco = sorted((REAL / "coco-mini" / "images").glob("*.jpg"))[: args.originals]
    distinct = sorted((REAL / "photos-coco2014").glob("*.jpg"))[:800]
    with tempfile.TemporaryDirectory() as scratch:
        check_against_product(coco[0].read_bytes(), Path(scratch))
    splits = {
        "tuning": build_split(coco[:TUNING_ORIGINALS], distinct[0::2], seed=0),
        "test": build_split(coco[TUNING_ORIGINALS:], distinct[1::2], seed=1),
    }
    cost_files = [path.read_bytes() for path in coco[:150]]
    results: dict[str, dict[str, dict]] = {"tuning": {}, "test": {}}
    costs = {}
    with threadpool_limits(limits=1):
        for name, variant in VARIANTS.items():
            costs[name] = extraction_cost(cost_files, variant)
            for split in results:
                results[split][name] = judge(splits[split], variant)
            print(name, costs[name], {s: results[s][name]["copies_verified"] for s in results}, flush=True)
    payload = {
        "variants": {name: asdict(v) for name, v in VARIANTS.items()},
        "test_originals": len(coco) - TUNING_ORIGINALS,
        "costs": costs,
        **results,
        **run_record(f"python -m bench.feature_extraction --originals {args.originals}"),
    }
    print(json.dumps(payload["costs"], indent=1))
    if args.write:
        write_record(
            "feature_extraction",
            payload,
            "benchmarks.md",
            START,
            END,
            render_markdown(payload),
            before="<!-- verification-speed:start -->",
        )


if __name__ == "__main__":
    main()
