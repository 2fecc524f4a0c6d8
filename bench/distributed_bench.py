"""The distributed engine measured: (1) on a --check-n workspace of precomputed embeddings, every distributed step
run through a real `tcp://` cluster (a `dask scheduler` and two `dask worker` processes, as a user starts them)
gives the single-process result (dedup keep-list, regurgitation flags, bias counts, concept clusters); (2) on an
--n workspace, each step's wall time and peak memory in one process and on a LocalCluster of 1 and 2 workers
(`--scheduler local:N`), with the peak RSS of the client and of each worker process. Every step starts from an
empty cache. Writes docs/distributed.json and prints a Markdown table for docs/benchmarks.md.

Usage: python -m bench.distributed_bench [--n 1000000] [--check-n 100000] [--workers 1 2] [--workdir /tmp/distbench]
This machine has 2 cores: with 2 workers the client and the workers share them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "pretrain_audit.cli"]
# step, arguments, the cache folders it writes (removed before each run), what its output is compared on
STEPS = [
    ("dedup", ["dedup", "--verify", "none", "--json"], ["dedup", "concepts", "captions"]),
    ("regurgitation", ["regurgitation", "--verify", "none", "--json"], ["regurgitation"]),
    ("bias", ["bias", "--terms", "woman,man,women,men,girl,boy", "--json"], ["captions"]),
    ("concepts", ["concepts", "--no-map", "--json"], ["concepts", "captions"]),
]


def workspace(n: int, workdir: Path) -> Path:
    directory = workdir / f"ws{n}"
    if not (directory / "audit.toml").exists():
        subprocess.run(
            [sys.executable, "-m", "bench.make_large_workspace", str(n), str(directory), "--generated", "1000"]
            + ["--with-images", "0"],
            cwd=REPO,
            check=True,
        )
        subprocess.run([*CLI, "prepare", str(directory), "--no-progress"], cwd=REPO, check=True)
    return directory


def run_step(directory: Path, arguments: list[str], caches: list[str], extra: list[str], out: Path | None) -> dict:
    """One CLI run from an empty cache for its step: wall time, peak RSS of the client and of each child process
    (LocalCluster workers are children of the command), and its JSON output."""
    for name in caches:
        shutil.rmtree(directory / ".audit-cache" / name, ignore_errors=True)
    command = [*CLI, arguments[0], str(directory), *arguments[1:], *extra] + (["--out", str(out)] if out else [])
    started = time.perf_counter()
    process = psutil.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peaks: dict[int, float] = {}
    names: dict[int, str] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                for member in [process, *process.children(recursive=True)]:
                    try:
                        rss = member.memory_info().rss / 2**20
                        peaks[member.pid] = max(peaks.get(member.pid, 0.0), rss)
                        names.setdefault(member.pid, " ".join(member.cmdline())[:200])
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {stderr.decode()[-500:]}")
    workers = [peak for pid, peak in peaks.items() if pid != process.pid and "resource_tracker" not in names[pid]]
    return {
        "seconds": round(seconds, 1),
        "client_peak_rss_mb": round(peaks.get(process.pid, 0.0)),
        "worker_peak_rss_mb": sorted(round(w) for w in workers if w > 50),
        "output": json.loads(stdout),
    }


def comparable(step: str, payload: dict) -> object:
    """What must be identical with and without the cluster."""
    if step == "regurgitation":
        return [(s["id"], s["flagged"], s["best_match"]) for s in payload["samples"]]
    return payload


def start_cluster(workdir: Path) -> tuple[str, list[subprocess.Popen]]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dask = str(Path(sys.executable).parent / "dask")
    address = f"tcp://127.0.0.1:{port}"
    logs = workdir / "dask-logs"
    logs.mkdir(parents=True, exist_ok=True)
    processes = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
            stdout=subprocess.DEVNULL,
            stderr=(logs / "scheduler.log").open("w"),
        )
    ]
    _wait_for_port(port, processes[0], logs / "scheduler.log")
    for number in range(2):
        processes.append(
            subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--no-dashboard"],
                stdout=subprocess.DEVNULL,
                stderr=(logs / f"worker{number}.log").open("w"),
            )
        )
    from distributed import Client

    started = time.monotonic()
    try:
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
    except (TimeoutError, OSError) as exc:
        for process in processes:
            process.kill()
        tails = {name: _tail(logs / name) for name in ("worker0.log", "worker1.log")}
        raise RuntimeError(
            f"waited {time.monotonic() - started:.0f} s (limit 60 s) for 2 Dask workers at {address}: {exc}; "
            f"worker logs: {tails}"
        ) from None
    return address, processes


def _tail(path: Path, lines: int = 5) -> str:
    return " | ".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, limit: float = 60) -> None:
    """Until the scheduler accepts connections; a scheduler that dies or never listens is named with its log."""
    import socket

    started = time.monotonic()
    while time.monotonic() - started < limit:
        if process.poll() is not None:
            raise RuntimeError(f"the Dask scheduler exited ({process.returncode}) before listening: {_tail(log)}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"waited {limit:.0f} s for the Dask scheduler to listen on 127.0.0.1:{port}: {_tail(log)}")


def equality(n: int, workdir: Path) -> list[dict]:
    directory = workspace(n, workdir)
    address, processes = start_cluster(workdir)
    rows = []
    try:
        for step, arguments, caches in STEPS:
            out_single = workdir / f"{step}-single.parquet" if step in ("dedup", "concepts") else None
            out_dask = workdir / f"{step}-dask.parquet" if out_single else None
            single = run_step(directory, arguments, caches, [], out_single)
            distributed = run_step(directory, arguments, caches, ["--scheduler", address], out_dask)
            same = comparable(step, single["output"]) == comparable(step, distributed["output"])
            if out_single and out_dask:
                same = same and pd.read_parquet(out_single).equals(pd.read_parquet(out_dask))
            rows.append({"n": n, "step": step, "identical": same, "single_s": single["seconds"]})
            rows[-1]["tcp_2_workers_s"] = distributed["seconds"]
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        for process in processes[::-1]:
            process.terminate()
            process.wait(timeout=30)
    return rows


def timings(n: int, workdir: Path, worker_counts: list[int], steps: list[str]) -> list[dict]:
    directory = workspace(n, workdir)
    rows = []
    for step, arguments, caches in [s for s in STEPS if s[0] in steps]:
        for workers in [0, *worker_counts]:
            extra = ["--scheduler", f"local:{workers}"] if workers else ["--scheduler", "none"]
            measured = run_step(directory, arguments, caches, extra, None)
            measured.pop("output")
            rows.append({"n": n, "step": step, "workers": workers, **measured})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def prepare_timings(images: int, workdir: Path, worker_counts: list[int]) -> list[dict]:
    """`prepare` of real COCO photos (effnet-lite0) from an empty cache, in one process (its decoding pool) and on
    LocalCluster workers (each decodes and embeds its chunks)."""
    from bench.embedding_throughput import make_workspace

    directory = workdir / f"photos{images}"
    if not (directory / "audit.toml").exists():
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        make_workspace(directory, images)
    rows = []
    for workers in [0, *worker_counts]:
        extra = ["--scheduler", f"local:{workers}"] if workers else ["--scheduler", "none"]
        measured = run_step(directory, ["prepare", "--no-progress", "--json"], ["embeddings", "pdq"], extra, None)
        measured.pop("output")
        rows.append({"n": images, "step": "prepare (COCO photos)", "workers": workers, **measured})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def table(equal: list[dict], timed: list[dict]) -> str:
    lines = [
        "| step | n | engine | wall time | client peak RSS | peak RSS of each worker (one process: its pools) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in timed:
        engine = "one process" if not row["workers"] else f"LocalCluster, {row['workers']} worker(s)"
        per_worker = ", ".join(f"{w:,} MB" for w in row["worker_peak_rss_mb"]) or "—"
        lines.append(
            f"| {row['step']} | {row['n']:,} | {engine} | {row['seconds']} s | {row['client_peak_rss_mb']:,} MB "
            f"| {per_worker} |"
        )
    lines += [
        "",
        "| step | n | identical with a 2-worker tcp:// cluster | one process | tcp:// cluster |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in equal:
        verdict = "yes" if r["identical"] else "**no**"
        lines.append(f"| {r['step']} | {r['n']:,} | {verdict} | {r['single_s']} s | {r['tcp_2_workers_s']} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--check-n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/distbench"))
    parser.add_argument("--prepare-images", type=int, default=1024, help="real photos embedded by the prepare part")
    parser.add_argument("--parts", nargs="+", default=["identical", "scale", "prepare"])
    parser.add_argument("--steps", nargs="+", default=[s[0] for s in STEPS], help="steps the scale part times")
    args = parser.parse_args()
    from bench.common import run_record

    record = run_record(
        f"python -m bench.distributed_bench --n {args.n} --check-n {args.check_n} "
        f"--workers {' '.join(map(str, args.workers))} --prepare-images {args.prepare_images} "
        f"--parts {' '.join(args.parts)} --steps {' '.join(args.steps)}"
    )
    results = REPO / "docs" / "distributed.json"
    stored = json.loads(results.read_text()) if results.exists() else {}
    if "identical" in args.parts:
        stored["identical"] = {"record": record, "rows": equality(args.check_n, args.workdir)}
    timed: list[dict] = []
    if "scale" in args.parts:
        timed += timings(args.n, args.workdir, args.workers, args.steps)
    if "prepare" in args.parts:
        timed += prepare_timings(args.prepare_images, args.workdir, args.workers)
    for row in timed:  # each part keeps the record of the run that measured it
        row.update(record)
    kept = [row for row in stored.get("timings", []) if row["step"] not in {r["step"] for r in timed}]
    stored["timings"] = kept + timed
    results.write_text(json.dumps(stored, indent=2) + "\n")
    equal, timed = stored.get("identical", {}).get("rows", []), stored["timings"]
    print(table(equal, timed))
    sources = [stored.get("identical", {}).get("record", {})] + timed
    for commit, date, command in sorted({(r["commit"], r["date"], r["command"]) for r in sources if r}):
        print(f"\n{commit}, {date}: `{command}`")


if __name__ == "__main__":
    main()
