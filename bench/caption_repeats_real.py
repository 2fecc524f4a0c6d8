"""Repeated captions on real caption sets: how many images share their caption in LAION and Conceptual Captions.

    python -m bench.caption_repeats_real [--write]

No default is tuned here (a caption counts as repeated when two images carry it: shared at all, by definition);
the run shows what the analysis reports on real web captions, and which captions repeat, so a reader can judge the
folding rule (case, punctuation, spacing and HTML entities folded) on captions nobody wrote for it.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from analysis.caption_repeats.compute import repeated_captions
from bench.common import REAL, record_footer, run_record, write_record

START, END = "## Repeated captions on real caption sets", "<!-- end caption repeats -->"


def sources() -> dict[str, pd.Series]:
    laion = pd.read_parquet(REAL / "captions" / "laion400m_sample_10000.parquet", columns=["TEXT"])["TEXT"]
    cc3m = pd.read_csv(
        REAL / "captions" / "cc3m_validation.tsv", sep="\t", header=None, usecols=[0], quoting=3, dtype=str
    )[0]
    return {"LAION-400M sample": laion.fillna("").astype(str), "Conceptual Captions (validation)": cc3m.fillna("")}


def measure(captions: pd.Series) -> dict:
    started = time.perf_counter()
    result = repeated_captions(captions, np.ones(len(captions), dtype=bool), min_images=2, top=5)
    seconds = time.perf_counter() - started
    return {**result.original.to_json(), "seconds": round(seconds, 3), "top": result.top.to_dict("records")}


def render(payload: dict) -> str:
    lines = [
        START,
        "",
        "`caption-repeats` at its defaults (a caption counts when two images carry it, compared folded) on real "
        "caption sets, every row an image (no filter applied). Source: `bench/caption_repeats_real.py`.",
        "",
        "| source | captioned images | sharing their caption | 95% CI | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in payload["sources"].items():
        low, high = row["ci95"]
        lines.append(
            f"| {name} | {row['n_with_caption']:,} | {row['n_repeated']:,} ({row['share']:.2%}) | "
            f"{low:.2%}–{high:.2%} | {row['seconds']} |"
        )
    lines += ["", "Most repeated captions:", ""]
    for name, row in payload["sources"].items():
        shown = "; ".join(f"“{t['caption'][:60]}” ×{t['images']}" for t in row["top"][:3])
        lines.append(f"- {name}: {shown}")
    lines += ["", record_footer(payload), END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record docs/caption_repeats.json and its section")
    args = parser.parse_args()
    if not (REAL / "captions").exists():
        raise SystemExit(f"needs the real captions in {REAL / 'captions'}")
    payload = {
        "sources": {name: measure(captions) for name, captions in sources().items()},
        **run_record("python -m bench.caption_repeats_real --write"),
    }
    print(json.dumps(payload, indent=1, ensure_ascii=False))
    if args.write:
        write_record(
            "caption_repeats",
            payload,
            "benchmarks.md",
            START,
            END,
            render(payload),
            before="## How to read these numbers",
        )


if __name__ == "__main__":
    main()
