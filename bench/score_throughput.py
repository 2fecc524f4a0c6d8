"""`pretrain-audit score --model open-nsfw` on real photos: throughput, a second run that does nothing, scores
identical when computed again from an empty cache, and how many ordinary COCO photos (no explicit content is
expected among them) reach the usual thresholds — the false-positive floor a filter at that threshold starts from.

    python -m bench.score_throughput [--photos 4999] [--write]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.scoring.compute import cache_directory, score_workspace
from analysis.scoring.models import get_scorer
from analysis.workspace import init_workspace, load_workspace
from bench.common import REAL, emit, replace_section, run_record


def photo_workspace(root: Path, photos: int) -> Path:
    source = REAL / "photos-coco2014"
    files = sorted(source.glob("*.jpg"))[:photos]
    (root / "images").mkdir(parents=True)
    for path in files:
        shutil.copy(path, root / "images" / path.name)
    pd.DataFrame({"id": [p.stem for p in files], "image": [p.name for p in files], "caption": ""}).to_parquet(
        root / "original.parquet"
    )
    init_workspace(root, original=root / "original.parquet", images_root=root / "images", name="COCO photos")
    return root


def write_reference(scores: np.ndarray, payload: dict) -> None:
    """Every photo's score, beside analysis/scoring/ordinary_rates.py: the reference `score` and the Removals page
    quote at the workspace's own threshold."""
    from analysis.scoring.ordinary_rates import reference_path

    path = reference_path("open-nsfw")
    path.parent.mkdir(parents=True, exist_ok=True)
    reference = {
        "model": "open-nsfw",
        "photos_source": "distinct COCO train2014 photos",
        "measured": f"commit {payload['commit']}, {payload['date']}, {payload['command']}",
        "scores": [round(float(value), 6) for value in np.sort(scores)[::-1]],
    }
    path.write_text(json.dumps(reference) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=4999)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    scorer = get_scorer("open-nsfw")
    with tempfile.TemporaryDirectory() as folder:
        workspace = load_workspace(photo_workspace(Path(folder) / "ws", args.photos))
        first = score_workspace(workspace, scorer, log=lambda m: None)
        workspace = load_workspace(workspace.config.root)
        started = time.perf_counter()
        second = score_workspace(workspace, scorer, log=lambda m: None)
        rerun_seconds = time.perf_counter() - started
        scores = pd.read_parquet(first.path)["score"].to_numpy()
        shutil.rmtree(cache_directory(workspace, scorer))
        sample = np.arange(min(200, len(scores)))
        again = load_workspace(workspace.config.root)
        again.original = again.original.iloc[sample].reset_index(drop=True)
        recomputed = score_workspace(again, scorer, log=lambda m: None)
        identical = bool(np.array_equal(pd.read_parquet(recomputed.path)["score"].to_numpy(), scores[sample]))
    payload = {
        **run_record(f"python -m bench.score_throughput --photos {args.photos}"),
        "photos": first.n_rows,
        "scored": first.n_scored,
        "seconds": round(first.seconds, 1),
        "images_per_second": round(first.n_computed / first.seconds, 1),
        "rerun_seconds": round(rerun_seconds, 2),
        "rerun_computed": second.n_computed,
        "identical_from_empty_cache": identical,
        "share_at_least": {str(t): round(float((scores >= t).mean()), 4) for t in (0.2, 0.5, 0.8)},
        "counts_at_least": {str(t): int((scores >= t).sum()) for t in (0.2, 0.5, 0.8)},
        "median": round(float(np.median(scores)), 4),
    }
    emit(payload)
    if args.write:
        write_reference(scores, payload)
        start, end = "<!-- score-throughput:start -->", "<!-- score-throughput:end -->"
        lines = [
            start,
            "## Image scorer: open_nsfw on real photos (`python -m bench.score_throughput`)",
            "",
            f"{payload['photos']:,} distinct COCO train2014 photos (`../shared/real/photos-coco2014`, 256×256), "
            f"2-core CPU, onnxruntime (commit {payload['commit']}, {payload['date']}, `{payload['command']}`).",
            "",
            "| figure | value |",
            "| --- | --- |",
            f"| first run | {payload['seconds']} s, {payload['images_per_second']} images/s |",
            f"| second run (everything cached) | {payload['rerun_seconds']} s, "
            f"{payload['rerun_computed']} images computed |",
            f"| same scores recomputed from an empty cache (200 photos) | {payload['identical_from_empty_cache']} |",
            f"| median score | {payload['median']} |",
            *[
                f"| photos with score ≥ {t} | {payload['counts_at_least'][t]:,} ({payload['share_at_least'][t]:.2%}) |"
                for t in ("0.2", "0.5", "0.8")
            ],
            "",
            "COCO is a curated everyday-photo set, so the photos at or above a threshold are that threshold's "
            "false-positive floor on ordinary photos.",
            end,
        ]
        replace_section(
            Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md",
            start,
            end,
            "\n".join(lines),
            before="## How to read these numbers",
        )


if __name__ == "__main__":
    main()
