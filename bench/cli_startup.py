"""Wall time of the light CLI commands a script calls in a loop (issue 51: "every call takes 7-11 s to start").

Each command runs as a user runs it (a new `pretrain-audit` process), `--runs` times, on a fresh copy of the sample
workspace (no embeddings needed: these commands read the manifests, audit.toml and the verdict store). Prints the
minimum and the median per command and the commit, as a Markdown table for docs/benchmarks.md.
Usage: python -m bench.cli_startup [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "pretrain_audit.cli"]


def _commands(workspace: Path) -> dict[str, list[str]]:
    from analysis.workspace import load_workspace

    loaded = load_workspace(workspace)
    removed, kept = loaded.original["id"][~loaded.kept].iloc[0], loaded.original["id"][loaded.kept].iloc[0]
    ws = str(workspace)
    return {
        "pretrain-audit --help": ["--help"],
        "verdicts add (one verdict)": [
            "verdicts",
            "add",
            ws,
            "--kind",
            "removal",
            "--reviewer",
            "bench",
            f"{removed}=correct removal",
        ],
        "filter label (one label)": ["filter", ws, "label", "clocks", "--labeller", "bench", f"{kept}=positive"],
        "check --max-removed-fraction": ["check", ws, "--max-removed-fraction", "0.5"],
    }


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run([*CLI, *command], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({completed.returncode}): {completed.stderr.strip()[-400:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from data_samples.build import build_sample

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as scratch:
        workspace = build_sample(Path(scratch) / "ws")
        created = subprocess.run(
            [*CLI, "filter", str(workspace), "new", "clocks", "--spec", "wall clocks"], capture_output=True, text=True
        )
        if created.returncode:
            raise SystemExit(f"filter new failed: {created.stderr}")
        print(f"CLI start-up, commit {commit}, {args.runs} runs each (`python -m bench.cli_startup`)\n")
        print("| command | min s | median s |\n| --- | ---: | ---: |")
        for name, command in _commands(workspace).items():
            _time(command)  # one warm-up run: the page cache holds the interpreter and the packages
            times = [_time(command) for _ in range(args.runs)]
            print(f"| {name} | {min(times):.2f} | {statistics.median(times):.2f} |", flush=True)
        shutil.rmtree(workspace, ignore_errors=True)


if __name__ == "__main__":
    main()
