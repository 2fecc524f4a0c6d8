"""Scaling curve: wall time and peak memory of prepare (precomputed import), bias (with reweighting), dedup and
regurgitation at several workspace sizes, each run as the CLI a user would run. Writes docs/scaling.json and
docs/scaling.png.

The generated set has a fixed size (--generated, 1,000 by default) at every workspace size: regurgitation's work is
generated × training images, and this curve is about the training data growing; how the search scales with the
number of generated samples is bench/regurgitation_bench.py's job.

Usage: python -m bench.scaling [--sizes 10000 100000 1000000] [--generated 1000] [--workdir /tmp/scaling]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STEPS = [
    ("prepare", ["prepare", "--no-progress"]),
    ("bias", ["bias", "--terms", "woman,man", "--reweight"]),
    ("dedup", ["dedup"]),
    ("regurgitation", ["regurgitation"]),
]


def timed_child(command: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS MB) of one child process, measured with wait4."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {process.stderr.read().decode()[-300:]}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--generated", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/scaling"))
    parser.add_argument("--plot-only", action="store_true", help="redraw docs/scaling.png from docs/scaling.json")
    args = parser.parse_args()
    if args.plot_only:
        plot(json.loads((REPO / "docs" / "scaling.json").read_text()), REPO / "docs" / "scaling.png")
        return
    from bench.common import run_record

    record = run_record(
        "python -m bench.scaling --sizes " + " ".join(map(str, args.sizes)) + f" --generated {args.generated}"
    )
    results = []
    for n in args.sizes:
        directory = args.workdir / f"ws{n}-g{args.generated}"
        if not (directory / "audit.toml").exists():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.make_large_workspace",
                    str(n),
                    str(directory),
                    "--generated",
                    str(args.generated),
                    "--with-images",
                    "0",
                ],
                cwd=REPO,
                check=True,
            )
        shutil.rmtree(directory / ".audit-cache", ignore_errors=True)  # every step computes, none reads a cache
        for step, arguments in STEPS:
            seconds, peak = timed_child(
                [sys.executable, "-m", "pretrain_audit.cli", arguments[0], str(directory), *arguments[1:]]
            )
            results.append(
                {
                    "n": n,
                    "generated": args.generated,
                    "step": step,
                    "seconds": round(seconds, 1),
                    "peak_rss_mb": round(peak),
                    **record,
                }
            )
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    (REPO / "docs" / "scaling.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, REPO / "docs" / "scaling.png")


def plot(results: list[dict], out: Path) -> None:
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.subplots import make_subplots

    from analysis.report_layout import chromium_path

    os.environ.setdefault("BROWSER_PATH", chromium_path())
    figure = make_subplots(rows=1, cols=2, subplot_titles=("wall time (s)", "peak memory (MB)"))
    colours = {"prepare": "#7f7f7f", "bias": "#c0392b", "dedup": "#2d5fa8", "regurgitation": "#16a085"}
    for step, colour in colours.items():
        rows = [r for r in results if r["step"] == step]
        for column, key in ((1, "seconds"), (2, "peak_rss_mb")):
            figure.add_trace(
                go.Scatter(
                    x=[r["n"] for r in rows],
                    y=[r[key] for r in rows],
                    name=step,
                    mode="lines+markers",
                    line=dict(color=colour, width=3),
                    showlegend=column == 1,
                ),
                row=1,
                col=column,
            )
    sizes = sorted({r["n"] for r in results})
    anchor = next((r for r in results if r["step"] == "dedup" and r["n"] == sizes[len(sizes) // 2]), None)
    if anchor:  # reference slopes through dedup's middle point, where fixed costs no longer dominate
        for name, grow, dash in (("linear", lambda n: n, "dot"), ("n log n", lambda n: n * math.log(n), "dash")):
            figure.add_trace(
                go.Scatter(
                    x=sizes,
                    y=[anchor["seconds"] * grow(n) / grow(anchor["n"]) for n in sizes],
                    name=f"{name} (through dedup at {anchor['n']:,})",
                    mode="lines",
                    line=dict(color="#888", dash=dash, width=2),
                ),
                row=1,
                col=1,
            )
    figure.update_xaxes(
        type="log",
        title="rows in the workspace",
        tickvals=sizes,
        ticktext=[f"{n // 1000:,}k" if n < 1_000_000 else f"{n / 1e6:g}M" for n in sizes],
    )
    figure.update_yaxes(type="log", tickvals=[0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500], row=1, col=1)
    figure.update_yaxes(type="log", tickvals=[100, 200, 300, 500, 1000, 2000, 3000, 5000, 10000, 20000], row=1, col=2)
    figure.update_layout(
        title="pretrain-audit scaling on 2 CPU cores (bench/scaling.py)",
        height=520,
        width=1200,
        template="plotly_white",
        font=dict(size=15),
    )
    pio.write_image(figure, out, scale=2)


if __name__ == "__main__":
    main()
