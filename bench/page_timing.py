"""Time the script of every dashboard page on a workspace (Streamlit AppTest, in one process like a server), cold
and cached, the gallery's page turn, and the process's peak memory. This is the script alone: what a reviewer
waits for in the browser is measured by bench/browser_pages.py.

Usage: python -m bench.page_timing DIR [--cold]
  --cold: clear the workspace's derived analyses first (the embeddings stay), so that *first open* includes
          computing them in the dashboard process (dedup and its curve, reweighting, regurgitation search)
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from bench.common import emit

# page label → (view module, section opened by a link, or None for the first view)
PAGES = {
    "overview": ("overview", None),
    "removals": ("removals", None),
    "removals: review": ("removals", "Review removed images"),
    "bias": ("bias", None),
    "duplicates": ("duplicates", None),
    "duplicates: groups": ("duplicates", "Groups, largest first"),
    "regurgitation": ("regurgitation", None),
    "regurgitation: samples": ("regurgitation", "Samples, most similar first"),
}


def run_page(module: str, section: str | None = None, timeout: float = 1800):
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_string(f"from dashboard.views import {module}\n{module}.render()\n", default_timeout=timeout)
    if section:
        app.query_params["section"] = section
    start = time.perf_counter()
    app.run()
    elapsed = time.perf_counter() - start
    if app.exception:
        raise RuntimeError(f"{module}: {app.exception[0].message}")
    return app, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=Path)
    parser.add_argument("--cold", action="store_true", help="clear the derived analyses (not the embeddings) first")
    args = parser.parse_args()
    if args.cold:
        cache = args.dir / ".audit-cache"
        for entry in cache.iterdir() if cache.exists() else []:
            if entry.name != "embeddings":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    os.environ["PRETRAIN_AUDIT_WORKSPACE"] = str(args.dir.resolve())
    timings = {}
    for page, (module, section) in PAGES.items():
        _, cold = run_page(module, section)
        app, warm = run_page(module, section)
        timings[page] = {"first_s": round(cold, 2), "cached_s": round(warm, 2)}
        if page == "removals: review":
            start = time.perf_counter()
            app.number_input(key="g-page-browse").set_value(2).run()
            timings[page]["page_turn_s"] = round(time.perf_counter() - start, 2)
    emit(
        {
            "task": "dashboard pages",
            "workspace": str(args.dir),
            "pages": timings,
            "state": "empty analysis cache" if args.cold else "analyses cached on disk",
        }
    )


if __name__ == "__main__":
    main()
