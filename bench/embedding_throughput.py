"""Embedding throughput: images/s of `prepare` end to end vs the model's own forward pass at the same batch size.

Runs on real COCO photos from ../shared/real when present (427–640 px JPEGs, decoded and resized in the
pipeline), else on the synthetic sample. Target: the pipeline keeps the model ≥ 90% busy.
Usage: python bench/embedding_throughput.py [--images N] [--workers W] [--batch-size B]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import REAL, emit


def make_workspace(directory: Path, n: int) -> tuple[Path, str]:
    from analysis.workspace import init_workspace

    photos = sorted((REAL / "coco-mini" / "images").glob("*.jpg"))
    source = "COCO val2017 photos (../shared/real)"
    if not photos:
        from data_samples.build import build_sample

        sample = build_sample(directory / "sample")
        photos = sorted((sample / "images" / "train").glob("*.png"))
        source = "synthetic sample (../shared/real absent)"
    (directory / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        target = directory / "images" / f"{i}{photos[i % len(photos)].suffix}"
        shutil.copy(photos[i % len(photos)], target)
        rows.append({"id": str(i), "caption": "x", "image": target.name, "kept": True})
    pd.DataFrame(rows).to_parquet(directory / "o.parquet")
    init_workspace(directory, original="o.parquet", kept_column="kept", images_root="images")
    return directory, source


def main() -> None:
    from analysis.embedders import get_embedder
    from analysis.embeddings import prepare
    from analysis.workspace import load_workspace

    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=640)
    from analysis.embeddings import default_workers

    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    embedder = get_embedder("effnet-lite0")
    batch = np.random.default_rng(0).standard_normal((args.batch_size, 3, 224, 224)).astype(np.float32)
    embedder.embed(batch)
    start = time.perf_counter()
    rounds = max(1, args.images // args.batch_size)
    for _ in range(rounds):
        embedder.embed(batch)
    model_rate = rounds * args.batch_size / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        directory, source = make_workspace(Path(tmp), args.images)
        workspace = load_workspace(directory)
        start = time.perf_counter()
        prepare(workspace, workers=args.workers, batch_size=args.batch_size, progress=False, log=lambda m: None)
        pipeline_rate = args.images / (time.perf_counter() - start)
    emit(
        {
            "task": "embedding throughput (effnet-lite0, CPU)",
            "images": args.images,
            "source": source,
            "workers": args.workers,
            "batch_size": args.batch_size,
            "model_only_img_s": round(model_rate, 1),
            "end_to_end_img_s": round(pipeline_rate, 1),
            "model_busy": round(pipeline_rate / model_rate, 3),
        }
    )


if __name__ == "__main__":
    main()
