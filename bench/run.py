"""Run every benchmark at a chosen scale and write docs/benchmarks.md.

Usage: python bench/run.py [--scale small|full] [--only NAME ...]
  small (default, ~10 minutes): embedding, captions 1M (resampled and distinct), dedup 100k against exact search
         and the approximate all-kNN baseline, regurgitation 10k × 100k
  full (~45 minutes): adds captions 10M (resampled and distinct), index 1M, dedup 1M, regurgitation 50k × 1M
  pages: dashboard pages on /tmp/ws1m (build it with bench/make_large_workspace.py, prepare, then dedup, bias and
         regurgitation): the script alone (AppTest) here, and in the browser (bench/browser_pages.py, its own section)
Each benchmark runs in its own process so that its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # so that `python bench/run.py` works as well as `python -m bench.run`
OUTPUT = REPO / "docs" / "benchmarks.md"
RESULTS = REPO / "docs" / "benchmarks.json"

PLANS = {
    "small": [
        ("embedding", ["bench/embedding_throughput.py", "--images", "640"]),
        ("captions", ["bench/captions_speed.py", "1000000"]),
        ("captions", ["bench/captions_speed.py", "1000000", "--distinct"]),
        ("dedup", ["bench/dedup_bench.py", "100000", "--exact", "--baseline", "--sampled-recall", "2000"]),
        ("regurgitation", ["bench/regurgitation_bench.py", "100000", "10000"]),
    ],
    "full": [
        ("embedding", ["bench/embedding_throughput.py", "--images", "640"]),
        ("captions", ["bench/captions_speed.py", "1000000"]),
        ("captions", ["bench/captions_speed.py", "1000000", "--distinct"]),
        ("captions", ["bench/captions_speed.py", "10000000"]),
        ("captions", ["bench/captions_speed.py", "10000000", "--distinct"]),
        ("index", ["bench/index_bench.py", "1000000"]),
        ("dedup", ["bench/dedup_bench.py", "100000", "--exact", "--baseline", "--sampled-recall", "2000"]),
        ("dedup", ["bench/dedup_bench.py", "1000000", "--sampled-recall", "2000"]),
        ("regurgitation", ["bench/regurgitation_bench.py", "1000000", "50000"]),
    ],
    # Needs a workspace built by bench/make_large_workspace.py and prepared; see docs/benchmarks.md.
    "pages": [
        ("pages", ["bench/page_timing.py", "/tmp/ws1m"]),
        ("browser-pages", ["bench/browser_pages.py", "/tmp/ws1m", "--write", "1,000,000 rows"]),
    ],
}


def machine() -> str:
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    memory = ""
    if Path("/proc/meminfo").exists():
        total_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {total_kb / 1024 / 1024:.0f} GiB RAM"
    return f"{os.cpu_count()} CPU cores ({cpu}){memory}, Python {platform.python_version()}, no GPU"


def run(command: list[str]) -> dict:
    print("running", " ".join(command), file=sys.stderr, flush=True)
    completed = subprocess.run(
        [sys.executable, "-m", command[0].removesuffix(".py").replace("/", "."), *command[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        # Streamlit's bare-mode warning is noise; the error is the last other line.
        lines = [line for line in completed.stderr.splitlines() if line.strip() and "ScriptRunContext" not in line]
        return {"error": lines[-1] if lines else "failed", "command": " ".join(command)}
    from bench.common import run_record

    result = json.loads(completed.stdout.strip().splitlines()[-1])
    module = command[0].removesuffix(".py").replace("/", ".")
    return {**result, **run_record(f"python -m {module} " + " ".join(command[1:]))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", choices=list(PLANS), default="small")
    parser.add_argument(
        "--only", nargs="*", help="benchmark names to run (embedding, captions, index, dedup, regurgitation)"
    )
    parser.add_argument("--render-only", action="store_true", help="rewrite docs/benchmarks.md from the recorded JSON")
    args = parser.parse_args()
    if args.render_only:
        write_markdown(json.loads(RESULTS.read_text()))
        return
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    # Rows from earlier runs stay, each with its own commit and date; a row without them predates that rule.
    results = {key: value for key, value in previous.get("results", {}).items() if "commit" in value}
    for name, command in PLANS[args.scale]:
        if args.only and name not in args.only:
            continue
        result = run(command)
        results[result.get("command", " ".join(command))] = {"name": name, **result}
    payload = {"machine": machine(), "results": results}
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    write_markdown(payload)
    print(f"wrote {OUTPUT}", file=sys.stderr)


def write_markdown(payload: dict) -> None:
    """docs/benchmarks.md from the results, keeping the sections other benchmarks write between
    <!-- NAME:start --> and <!-- NAME:end --> (copy detection), before the notes."""
    import re

    from bench.report import render_markdown

    text = render_markdown(payload)
    old = OUTPUT.read_text() if OUTPUT.exists() else ""
    for block in re.finditer(r"<!-- ([\w-]+):start -->.*?<!-- \1:end -->", old, flags=re.S):
        text = text.replace("## How to read these numbers", block.group(0) + "\n\n## How to read these numbers", 1)
    OUTPUT.write_text(text)


if __name__ == "__main__":
    main()
