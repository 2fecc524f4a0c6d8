"""Build an N-row benchmark workspace: real captions (resampled, messy), simulated classifier scores and a
filter, precomputed 512-d embeddings with planted duplicate families, a generated set, and image files for a
small subset only (the rest are missing, as dead links are in scraped data).

Usage: python -m bench.make_large_workspace N DIR [--generated G] [--with-images M]
Deterministic (fixed seeds). 1,000,000 rows take about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.captions_speed import real_captions
from bench.common import planted_embeddings

RISKY = {
    "sexual": ("bikini", "lingerie", "sexy", "nude", "swimsuit", "bed", "model"),
    "violence": ("blood", "gun", "fight", "war", "knife", "attack", "fire"),
}


def simulated_scores(captions: pd.Series, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Classifier-like scores: high for captions with risky words, higher still when a woman is mentioned."""
    lowered = captions.str.lower()
    woman = lowered.str.contains(r"\b(?:woman|women|girl|lady)\b", regex=True).to_numpy()
    scores = {}
    for name, words in RISKY.items():
        risky = lowered.str.contains(r"\b(?:" + "|".join(words) + r")\b", regex=True).to_numpy()
        base = rng.beta(1.2, 14, len(captions))
        bump = np.where(risky, rng.uniform(0.25, 0.8, len(captions)), 0.0)
        if name == "sexual":
            bump += np.where(woman, rng.uniform(0.0, 0.12, len(captions)), 0.0)
        scores[name] = np.clip(base + bump, 0, 1).round(4)
    return scores


def build(n: int, directory: Path, generated: int, with_images: int, seed: int = 0) -> Path:
    from analysis.workspace import write_config
    from data_samples import drawing

    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pool, source = real_captions()
    captions = pd.Series(pool, dtype=object).iloc[rng.integers(0, len(pool), n)].reset_index(drop=True)
    ids = np.char.add("row-", np.arange(n).astype(str))
    scores = simulated_scores(captions, rng)
    images = np.where(
        np.arange(n) < with_images,
        np.char.add(np.char.add("img/", ids), ".png"),
        np.char.add(np.char.add("img/", ids), ".jpg"),
    )  # the .jpg ones do not exist: dead links
    pd.DataFrame(
        {"id": ids, "caption": captions, "image": images, **scores, "url": np.char.add("https://example.invalid/", ids)}
    ).to_parquet(directory / "original.parquet", index=False)
    (directory / "img").mkdir(exist_ok=True)
    for i in range(with_images):
        drawing.scene(rng, 96).save(directory / "img" / f"{ids[i]}.png")
    vectors, _ = planted_embeddings(n + generated, seed=seed)
    training, queries = vectors[:n], vectors[n:]
    # A few generated samples are near-copies of training images, as memorised ones would be.
    copies = rng.choice(n, max(1, generated // 100), replace=False)
    queries[: len(copies)] = training[copies] + rng.normal(0, 0.05 / np.sqrt(512), (len(copies), 512))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    generated_ids = np.char.add("gen-", np.arange(generated).astype(str))
    (directory / "embeddings").mkdir(exist_ok=True)
    np.save(directory / "embeddings" / "embeddings.npy", np.concatenate([training, queries]).astype(np.float16))
    (directory / "embeddings" / "ids.txt").write_text("\n".join(np.concatenate([ids, generated_ids])) + "\n")
    source_rows = rng.integers(0, n, generated)
    source_rows[: len(copies)] = copies
    pd.DataFrame(
        {
            "id": generated_ids,
            "image": np.char.add(np.char.add("gen/", generated_ids), ".png"),
            "prompt": captions.iloc[source_rows].to_numpy(),
            "source_id": ids[source_rows],
        }
    ).to_parquet(directory / "generated.parquet", index=False)
    write_config(
        directory,
        {
            "workspace": {
                "name": f"benchmark {n:,} rows",
                "images_root": ".",
                "description": f"bench/make_large_workspace.py: captions from {source}; synthetic scores, "
                "embeddings and images",
            },
            "original": {"manifest": "original.parquet"},
            "filtered": {"scores": [{"name": name, "column": name, "threshold": 0.5} for name in RISKY]},
            "generated": {"manifest": "generated.parquet"},
            "embeddings": {"embedder": "precomputed:embeddings"},
        },
    )
    print(
        f"wrote {directory} ({n:,} rows, {generated:,} generated) in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )
    return directory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--generated", type=int, default=10_000)
    parser.add_argument("--with-images", type=int, default=2_000)
    args = parser.parse_args()
    build(args.n, args.dir, args.generated, args.with_images)


if __name__ == "__main__":
    main()
