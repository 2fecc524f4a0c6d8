"""A verified dedup of real photos in one process and on a local Dask cluster: wall time, peak memory of the client
and of the workers, and whether the two give the same groups and the same verdict for every candidate.

    python -m bench.verification_cluster [--workspace /tmp/copy-detection-bench] [--workers 2] [--write]

Needs the workspace `python -m bench.copy_detection` builds and prepares (7,404 real photos: COCO photos with
edited copies, Caltech faces, COCO distractors). Its embeddings are reused; before each run its local features and
dedup results are dropped, so both runs extract every candidate's features and verify every candidate from cold.
Memory is sampled every 0.2 s over the command's process tree: the client is the `pretrain-audit` process, the
workers its descendants (the local engine's worker processes, or the LocalCluster's Dask workers).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil

from bench.common import REPO, replace_section, run_record, write_record

START, END = "<!-- verification-cluster:start -->", "<!-- verification-cluster:end -->"


def timed_run(command: list[str], scratch: Path) -> dict:
    """Run `command`, sampling the RSS of it and of its descendants; its stdout, wall time and peak memory. Its
    output goes to files, not pipes: a progress bar fills a pipe nobody reads until the command ends, and the
    command then blocks on it."""
    out, err = scratch / "stdout.txt", scratch / "stderr.txt"
    started = time.perf_counter()
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True, cwd=REPO)
        root = psutil.Process(process.pid)
        peak_client = peak_workers = 0.0
        while process.poll() is None:
            try:
                peak_client = max(peak_client, root.memory_info().rss / 2**20)
                children = root.children(recursive=True)
                peak_workers = max(peak_workers, sum(_rss_mb(child) for child in children))
            except psutil.NoSuchProcess:
                break
            time.sleep(0.2)
        process.wait()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err.read_text()[-3000:]}")
    return {
        "wall_s": round(time.perf_counter() - started, 1),
        "peak_client_mb": round(peak_client),
        "peak_workers_mb": round(peak_workers),
        "stdout": out.read_text(),
        "stderr_tail": err.read_text()[-2000:],
        "phases": progress_phases(err.read_text()),
    }


def progress_phases(stderr: str) -> dict[str, float]:
    """Each progress bar's label and elapsed seconds when it closed (analysis/progress.py's format), in order:
    where a command's time went, from what it printed anyway. A bar prints its finished state more than once (at
    its last step and again when it closes), so the last one counts; a bar of the same label that starts again
    afterwards is a second phase, added."""
    import re

    bars: dict[str, list[int | None]] = {}  # label -> elapsed seconds of each of its bars (None: still running)
    for line in re.split(r"[\r\n]", stderr):
        found = re.match(r"\s*(.+?):\s+(\d+)%\|.*\| [^ ]+ \[[^,]*, ([\d:]+) elapsed", line)
        if not found:
            continue
        label, percent = found.group(1), int(found.group(2))
        seconds = 0
        for part in found.group(3).split(":"):
            seconds = 60 * seconds + int(part)
        runs = bars.setdefault(label, [])
        if percent < 100:
            if not runs or runs[-1] is not None:
                runs.append(None)  # a bar under way: a new one when the last of this label had finished
        elif runs:
            runs[-1] = seconds  # finished, or the same finished state drawn again
        else:
            runs.append(seconds)
    return {label: float(sum(run for run in runs if run is not None)) for label, runs in bars.items()}


def _rss_mb(process: psutil.Process) -> float:
    try:
        return process.memory_info().rss / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def cold(workspace: Path) -> None:
    for cached in ("features", "dedup"):
        shutil.rmtree(workspace / ".audit-cache" / cached, ignore_errors=True)


def render_markdown(payload: dict) -> str:
    one, cluster = payload["runs"]["one process"], payload["runs"][payload["cluster"]]
    lines = [
        START,
        "## Verified dedup on a local cluster (`python -m bench.verification_cluster`)",
        "",
        f"Run: commit `{payload['commit']}`, {payload['date']}, `{payload['command']}`, this 2-core machine. The "
        f"copy-detection benchmark's workspace ({payload['images']:,} real photos), its embeddings cached; local "
        "features and dedup results dropped before each run, so each extracts the features of every image a "
        f"candidate names and verifies all {payload['candidates']:,} candidates. `--scheduler {payload['cluster']}` "
        "runs the extraction, the verification and the tiers as Dask tasks (docs/scaling.md).",
        "",
        "| run | wall time | peak RSS, client | peak RSS, workers (sum) |",
        "| --- | ---: | ---: | ---: |",
        f"| one process (`dedup`, {payload['workers']} worker processes) | {one['wall_s']} s "
        f"| {one['peak_client_mb']:,} MB | {one['peak_workers_mb']:,} MB |",
        f"| `dedup --scheduler {payload['cluster']}` | {cluster['wall_s']} s | {cluster['peak_client_mb']:,} MB "
        f"| {cluster['peak_workers_mb']:,} MB |",
        "",
        f"Identical: the `--json` output {'equal' if payload['same_json'] else 'DIFFERENT'}, the groups "
        f"({payload['groups']:,}) and every candidate's inliers, coverage, mirror flag and tier in `--pairs-out` "
        f"{'equal' if payload['same_pairs'] else 'DIFFERENT'}. Local features: {payload['feature_kb_per_image']} KB "
        f"per image in the cache ({payload['feature_images']:,} images in {payload['feature_files']:,} files).",
        "",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", default="/tmp/copy-detection-bench")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="record in docs/benchmarks.md")
    args = parser.parse_args()
    workspace = Path(args.workspace)
    if not (workspace / ".audit-cache" / "embeddings").exists():
        raise SystemExit(f"{workspace} is not prepared: run `python -m bench.copy_detection` first")
    cli = [str(Path(sys.executable).parent / "pretrain-audit"), "dedup", str(workspace), "--json"]
    cluster = f"local:{args.workers}"
    runs, outputs, pairs = {}, {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, extra in (("one process", []), (cluster, ["--scheduler", cluster])):
            cold(workspace)
            pairs_file = Path(scratch) / f"{len(runs)}.parquet"
            runs[name] = timed_run(cli + ["--pairs-out", str(pairs_file)] + extra, Path(scratch))
            outputs[name], pairs[name] = json.loads(runs[name].pop("stdout")), pd.read_parquet(pairs_file)
            print(name, {k: v for k, v in runs[name].items() if k != "stderr_tail"}, flush=True)
    from analysis.copies.feature_chunks import read_store

    store = workspace / ".audit-cache" / "features"
    features = [f for f in store.rglob("*") if f.is_file()]
    stored_images = sum(len(read_store(directory)) for directory in store.iterdir() if directory.is_dir())
    payload = {
        "workers": args.workers,
        "cluster": cluster,
        "images": int(outputs["one process"].get("n_images", 0)),
        "candidates": len(pairs["one process"]),
        "groups": int(outputs["one process"].get("n_groups", 0)),
        "runs": runs,
        "same_json": outputs["one process"] == outputs[cluster],
        "same_pairs": pairs["one process"].equals(pairs[cluster]),
        "feature_files": len(features),
        "feature_images": stored_images,
        "feature_kb_per_image": round(sum(f.stat().st_size for f in features) / max(1, stored_images) / 1024, 1),
        **run_record(f"python -m bench.verification_cluster --workspace {args.workspace} --workers {args.workers}"),
    }
    print(json.dumps({k: v for k, v in payload.items() if k != "runs"}, indent=1))
    if args.write:
        write_record(
            "verification_cluster",
            payload,
            "benchmarks.md",
            START,
            END,
            render_markdown(payload),
            before="<!-- copy-detection:start -->",
        )


def rerender() -> None:
    """Write the section again from docs/verification_cluster.json (after a change to its wording only)."""
    payload = json.loads((REPO / "docs" / "verification_cluster.json").read_text())
    replace_section(REPO / "docs" / "benchmarks.md", START, END, render_markdown(payload))


if __name__ == "__main__":
    main()
