"""Time every dashboard page where a reviewer sees it: in Chromium, against `pretrain-audit dashboard`.

A page is *ready* when Streamlit has finished the script, the websocket is connected, no skeleton is left, every
image on the page has loaded and every Plotly chart has drawn. Each visit is a fresh tab (a new Streamlit session);
the browser's cache of Streamlit's own JavaScript is kept within a session, as in a real browser.

Rounds: the server is started fresh, so round 1 is each page's *first visit* (after the CLI computed the analyses,
nothing is in the server's memory yet); later rounds are *repeat visits*. Then `--sessions N` reviewers open every
page at the same moment (each starting on a different page), for `--rounds` rounds. The server's resident memory
is sampled throughout and its peak (VmHWM) read at the end.

Besides the time to ready, each visit records when the script finished (`script_s`: time in Python and on the
wire) and the bytes the websocket carried (`ws_kb`: figures and tables serialised for the browser), which show
where the time goes.

Usage: python -m bench.browser_pages DIR [--sessions 5] [--rounds 3] [--pages overview removals ...]
                                     [--write LABEL] [--screenshots DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from bench.common import REPO, replace_section, run_record

CHROMIUM = "/usr/bin/chromium"
ALL_CORES = sorted(os.sched_getaffinity(0))
# Every page's first view, and the sections reviewers work in (each a link: `?section=NAME`)
PAGES = {
    "overview": "overview",
    "removals": "removals",
    "removals: review": "removals?section=Review+removed+images",
    "bias": "bias",
    "bias: visual concepts": "bias?section=Visual+concepts",
    "map": "map",
    "duplicates": "duplicates",
    "duplicates: what dedup removes": "duplicates?section=What+dedup+removes",
    "duplicates: groups": "duplicates?section=Groups%2C+largest+first",
    "regurgitation": "regurgitation",
    "regurgitation: samples": "regurgitation?section=Samples%2C+most+similar+first",
    "filter builder": "filter_builder",
    "report": "report",
}

# Marks when the websocket to the server opened and when Streamlit's script state last turned to notRunning
# (script done): their difference is the server's share (`server_s`), whatever the browser's speed.
MARK_SCRIPT_DONE = """
window.__scriptDone = null; window.__socketOpen = null;
const NativeSocket = window.WebSocket;
window.WebSocket = function (...args) {
  const socket = new NativeSocket(...args);
  socket.addEventListener('open', () => { if (window.__socketOpen === null) window.__socketOpen = performance.now(); });
  return socket;
};
window.WebSocket.prototype = NativeSocket.prototype;
Object.assign(window.WebSocket, {CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3});
new MutationObserver(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return;
  const state = app.getAttribute('data-test-script-state');
  if (state === 'running') window.__scriptDone = null;
  else if (state === 'notRunning' && window.__scriptDone === null) window.__scriptDone = performance.now();
}).observe(document, {subtree: true, childList: true, attributes: true,
                      attributeFilter: ['data-test-script-state']});
"""

READY = """
() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || main.querySelector('[data-testid="stSkeleton"]')) return false;
  if (main.querySelectorAll('[data-testid="stMainBlockContainer"] *').length < 6) return false;
  if (!Array.from(main.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0)) return false;
  const charts = main.querySelectorAll('[data-testid="stPlotlyChart"]');
  if (!Array.from(charts).every(c => c.querySelector('.main-svg'))) return false;
  return {ready: performance.now(), script: window.__scriptDone, socket: window.__socketOpen};
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def server(command: list[str], port: int) -> Iterator[tuple[subprocess.Popen, Callable[[], str]]]:
    """A Streamlit server, once it answers; yields it and a reader of its output so far."""
    output = tempfile.TemporaryFile()
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=REPO)

    def read() -> str:
        output.seek(0)
        return output.read().decode(errors="replace")

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit(f"the server did not start:\n{read()[-2000:]}") from None
                time.sleep(0.3)
        yield process, read
    finally:
        process.terminate()
        process.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """CPU time the server has used so far (user + system, all its threads): the server's own cost of the views
    served, which no browser on the same machine can inflate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MemorySampler(threading.Thread):
    """The server's resident memory every 0.2 s (VmHWM at the end is the kernel's own peak)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self.stopped = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
            except OSError:
                return
            self.stopped.wait(0.2)


async def visit(
    context, url: str, page_name: str, timeout_s: float, screenshots: Path | None, path: str | None = None
) -> dict:
    """One page (`PAGES[page_name]`, or `path`) in a fresh tab: seconds to ready, to script done, and websocket
    kilobytes received."""
    tab = await context.new_page()
    received = [0]

    def on_websocket(websocket) -> None:
        websocket.on("framereceived", lambda payload: received.__setitem__(0, received[0] + len(payload)))

    tab.on("websocket", on_websocket)
    await tab.add_init_script(MARK_SCRIPT_DONE)
    try:
        await tab.goto(f"{url}/{PAGES[page_name] if path is None else path}".rstrip("/"), wait_until="commit")
        marks = await (await tab.wait_for_function(READY, polling=50, timeout=timeout_s * 1000)).json_value()
        if screenshots is not None:
            screenshots.mkdir(parents=True, exist_ok=True)
            await tab.set_viewport_size({"width": 1400, "height": 3600})  # Streamlit scrolls inside its container
            await tab.screenshot(path=str(screenshots / f"{page_name.replace(': ', '-')}.png"))
        return {
            "page": page_name,
            "ready_s": round(marks["ready"] / 1000, 3),
            "script_s": round((marks["script"] or marks["ready"]) / 1000, 3),
            "server_s": round(((marks["script"] or marks["ready"]) - (marks["socket"] or 0)) / 1000, 3),
            "ws_kb": round(received[0] / 1024, 1),
        }
    finally:
        await tab.close()


@asynccontextmanager
async def reviewer_browser(playwright, url: str) -> AsyncIterator:
    """One reviewer's Chromium with its own profile on disk, as a real browser has: Streamlit's JavaScript is
    fetched and compiled once (a warm-up load whose websocket never reaches the server, so no session and no page
    script runs) and later tabs reuse the cached, compiled code."""
    with tempfile.TemporaryDirectory(prefix="pa-browser-") as profile:
        context = await playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=["--no-sandbox"], viewport={"width": 1400, "height": 1000}
        )
        try:
            tab = await context.new_page()
            await tab.route_web_socket("**/_stcore/stream", lambda socket: socket.close())
            await tab.goto(f"{url}/warm-up", wait_until="load")
            await tab.close()
            yield context
        finally:
            await context.close()


async def session(playwright, url: str, pages: list[str], offset: int, timeout_s: float) -> list[dict]:
    async with reviewer_browser(playwright, url) as context:
        order = pages[offset % len(pages) :] + pages[: offset % len(pages)]
        return [await visit(context, url, name, timeout_s, None) for name in order]


async def measure(
    url: str,
    pages: list[str],
    sessions: int,
    rounds: int,
    timeout_s: float,
    shots: Path | None,
    pin: Callable,
    server_cpu: Callable[[], float],
):
    """One reviewer (first visits, then repeats), then `sessions` reviewers at once. `pin` is called between the
    two: a single reviewer's browser and the server take turns, but five browsers at once would take the server's
    cores, which on a real team are other machines."""
    from playwright.async_api import async_playwright

    results: dict[str, list[dict]] = {"first": [], "repeat": [], "concurrent": []}
    cpu: dict[str, float] = {}
    async with async_playwright() as playwright:
        async with reviewer_browser(playwright, url) as context:
            for name in pages:  # first visits, one reviewer, on a server that has shown nothing yet
                results["first"].append(await visit(context, url, name, timeout_s, None))
                log(f"first   {results['first'][-1]}")
            before = server_cpu()
            for round_number in range(rounds):
                for name in pages:
                    shot = shots if round_number == 0 else None
                    results["repeat"].append(await visit(context, url, name, timeout_s, shot))
                    log(f"repeat  {results['repeat'][-1]}")
            cpu["repeat"] = (server_cpu() - before) / len(results["repeat"])
    if sessions < 2:
        return results, cpu
    pin()
    async with async_playwright() as playwright:  # a new driver: its browsers start on the cores left to them
        before = server_cpu()
        for _ in range(rounds):
            batches = await asyncio.gather(*(session(playwright, url, pages, i, timeout_s) for i in range(sessions)))
            for visits in batches:
                results["concurrent"].extend(visits)
            log(f"{sessions} sessions: worst {max(v['ready_s'] for b in batches for v in b)} s")
        cpu["concurrent"] = (server_cpu() - before) / len(results["concurrent"])
    return results, cpu


FLOOR_APP = """
import plotly.graph_objects as go
import streamlit as st

st.title("Floor")
if st.query_params.get("chart"):
    st.plotly_chart(go.Figure(go.Bar(x=[1, 2, 3], y=[1, 3, 2])))
"""


def pin_server(pid: int) -> None:
    """The server on the first core, the browsers (this process's children, started later) on the others:
    reviewers' browsers run on their own machines, so here too they must not take the server's CPU. A machine
    with one core shares it."""
    cores = ALL_CORES
    if len(cores) < 2:
        return
    for thread in Path(f"/proc/{pid}/task").iterdir():  # threads started later inherit their creator's cores
        os.sched_setaffinity(int(thread.name), {cores[0]})
    os.sched_setaffinity(0, set(cores[1:]))


async def framework_floor(visits: int = 5) -> dict[str, float]:
    """What Streamlit and Plotly cost on this machine before the tool does anything: a page with a title, and one
    with a three-bar Plotly chart, served by a bare Streamlit server (median time to ready of repeat visits)."""
    from playwright.async_api import async_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        app = Path(folder) / "floor.py"
        app.write_text(FLOOR_APP)
        command = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(app),
            f"--server.port={port}",
            "--server.headless=true",
        ]
        with server(command, port):
            url = f"http://localhost:{port}"
            paths = {"floor: empty page": "", "floor: one chart": "?chart=1"}
            times: dict[str, list[float]] = {name: [] for name in paths}
            async with async_playwright() as playwright:
                async with reviewer_browser(playwright, url) as context:
                    for _ in range(visits):
                        for name, values in times.items():
                            values.append((await visit(context, url, name, 60, None, paths[name]))["ready_s"])
    return {name: round(statistics.median(values[1:]), 2) for name, values in times.items()}


def summarise(results: dict[str, list[dict]], pages: list[str]) -> dict[str, dict]:
    table = {}
    for name in pages:
        row = {}
        for kind, visits in results.items():
            times = [v["ready_s"] for v in visits if v["page"] == name]
            if times:
                row[f"{kind}_median_s"] = round(statistics.median(times), 2)
                row[f"{kind}_max_s"] = round(max(times), 2)
        repeat = [v for v in results["repeat"] if v["page"] == name]
        concurrent = [v for v in results["concurrent"] if v["page"] == name]
        if concurrent:
            row["concurrent_server_max_s"] = round(max(v["server_s"] for v in concurrent), 2)
        if repeat:
            row["repeat_script_s"] = round(statistics.median(v["script_s"] for v in repeat), 2)
            row["repeat_server_s"] = round(statistics.median(v["server_s"] for v in repeat), 2)
            row["ws_kb"] = round(statistics.median(v["ws_kb"] for v in repeat), 1)
        table[name] = row
    return table


DOC = REPO / "docs" / "benchmarks.md"
INTRO = (
    "Time to ready in headless Chromium (Streamlit idle, every image loaded, every chart drawn), each visit a fresh "
    "tab of `pretrain-audit dashboard` started fresh, after the CLI computed the analyses. *First visit*: the first "
    "time the server shows the page; *repeat*: later visits; *sessions at once*: that many reviewers, each in their "
    "own browser, opening every page at the same moment. *Script on the server*: from the websocket opening to the "
    "script's end (the server's share, whatever the browser). A single reviewer's browser and the server share the "
    "2 cores, taking turns; for the sessions at once the server runs alone on one core and the five browsers on "
    "the other (reviewers' browsers are on their own machines), so five Chromiums share one core and the browser "
    "column there shows this machine's rendering more than the server; the script column there is observed by "
    "those starved browsers too, so the server's own cost is its CPU time per page view (from /proc). *Floor*: a "
    "bare Streamlit page with a title, and one with a three-bar Plotly chart, served and rendered the same way."
)
START, END = "<!-- browser-pages:start -->", "<!-- browser-pages:end -->"


def write_table(label: str, payload: dict) -> None:
    """Keep one table per workspace label (sample, 1M, ...) in the doc's browser section, replacing its old run."""
    text = DOC.read_text()
    tables = {}
    if START in text:
        body = text[text.index(START) : text.index(END)]
        for block in body.split("\n#### ")[1:]:
            tables[block.split("\n", 1)[0]] = "#### " + block.rstrip("\n")
    sessions, floor, cpu = payload["sessions"], payload["framework_floor_s"], payload["server_cpu_s_per_view"]
    team = sessions > 1
    lines = [
        f"#### {label}",
        "",
        f"`{payload['workspace']}` · rounds: {payload['rounds']} · "
        f"server peak RSS **{payload['server_peak_rss_mb']:,} MB** · caches warm {payload['warm_up_s']} s after "
        f"start · floor: empty page {floor['floor: empty page']} s, one chart {floor['floor: one chart']} s · "
        f"server CPU per page view: {cpu['repeat']} s alone"
        + (f", {cpu['concurrent']} s with {sessions} at once" if team else "")
        + f" · commit `{payload['commit']}` · {payload['date']} · `{payload['command']}`",
        "",
        "| page | first visit | repeat, median (max) | "
        + (f"{sessions} sessions at once, median (max) | " if team else "")
        + "script on the server: repeat"
        + (f" · {sessions} at once (max)" if team else "")
        + " | websocket KB |",
        "| --- | --- | --- | " + ("--- | " if team else "") + "--- | --- |",
    ]
    for page, row in payload["pages"].items():
        cells = [page, f"{row['first_max_s']:.2f} s", f"{row['repeat_median_s']:.2f} s ({row['repeat_max_s']:.2f})"]
        if team:
            cells.append(f"{row['concurrent_median_s']:.2f} s ({row['concurrent_max_s']:.2f})")
            cells.append(f"{row['repeat_server_s']:.2f} s · {row['concurrent_server_max_s']} s")
        else:
            cells.append(f"{row['repeat_server_s']:.2f} s")
        cells.append(f"{row['ws_kb']:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    tables[label] = "\n".join(lines)
    section = "\n\n".join(
        [
            START,
            "## Dashboard pages in the browser (`python -m bench.browser_pages`)",
            INTRO,
            *tables.values(),
            END,
        ]
    )
    replace_section(DOC, START, END, section, before="## How to read these numbers")


def log(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--sessions", type=int, default=5, help="concurrent reviewers (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="repeat rounds, alone and concurrent (default 3)")
    parser.add_argument("--pages", nargs="+", default=list(PAGES), choices=list(PAGES), metavar="PAGE")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a page may take before it counts failed")
    parser.add_argument("--screenshots", type=Path, help="save each page (first repeat round) as a PNG here")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="let five browsers at once share every core with the server (default: the server alone on the first)",
    )
    parser.add_argument("--write", metavar="LABEL", help="record the table in docs/benchmarks.md under this label")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} not found: apt-get install chromium")
    port = free_port()
    floor = asyncio.run(framework_floor())
    log(f"framework floor on this machine: {floor}")
    # `pretrain-audit dashboard DIR` exactly as a user starts it (Streamlit runs in the CLI's process)
    command = [sys.executable, "-m", "pretrain_audit.cli", "dashboard", str(args.dir.resolve()), "--port", str(port)]
    with server(command, port) as (process, output):
        sampler = MemorySampler(process.pid)
        sampler.start()
        started = time.perf_counter()
        results, cpu = asyncio.run(
            measure(
                f"http://localhost:{port}",
                args.pages,
                args.sessions,
                args.rounds,
                args.timeout,
                args.screenshots,
                lambda: pin_server(process.pid) if args.pin else None,
                lambda: cpu_seconds(process.pid),
            )
        )
        elapsed = time.perf_counter() - started
        sampler.stopped.set()
        peak = max(sampler.peak_mb, rss_mb(process.pid, "VmHWM"))
        warmed = re.search(r"caches warm in ([0-9.]+) s", output())
    payload = {
        "task": "dashboard pages in the browser",
        "workspace": str(args.dir),
        "sessions": args.sessions,
        "rounds": args.rounds,
        "pages": summarise(results, args.pages),
        "server_peak_rss_mb": round(peak),
        "warm_up_s": float(warmed.group(1)) if warmed else None,
        "server_cpu_s_per_view": {phase: round(seconds, 3) for phase, seconds in cpu.items()},
        "framework_floor_s": floor,
        "wall_s": round(elapsed, 1),
        "cpus": os.cpu_count(),
        "pinned": bool(args.pin and len(ALL_CORES) >= 2),
    }
    sys.stdout.write(json.dumps(payload) + "\n")
    if args.write:
        command = "python -m bench.browser_pages " + " ".join(sys.argv[1:])
        write_table(args.write, {**payload, **run_record(command)})


if __name__ == "__main__":
    main()
