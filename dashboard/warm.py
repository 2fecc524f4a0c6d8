"""Fill what every session shares as soon as the server starts: the workspace, its caption index, its embeddings and
each page's first view (a view module's `warm(workspace)`, calling the same cached functions as its page with the
page's defaults). The first reviewer to open a page then waits for nothing a cache could hold.

It runs in a thread beside the server (`pretrain-audit dashboard`); a page opened meanwhile waits on the same cache
entry, since Streamlit computes each entry once. Nothing here is shown: a page that cannot be warmed says why
when it opens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from analysis.errors import AuditInputError
from dashboard.components import loaded_embeddings, workspace_index
from dashboard.navigation import analysis_views
from dashboard.state import shared_workspace
from dashboard.summary import audit_summary


def warm_caches(directory: Path, log: Callable[[str], None]) -> list[str]:
    """Warm the shared caches; returns the pages whose first view is ready (logged with the time it took)."""
    started = time.perf_counter()
    try:
        workspace = shared_workspace(directory)
        workspace_index(workspace)
        loaded_embeddings(workspace, "original")
        if workspace.generated is not None:
            loaded_embeddings(workspace, "generated")
    except AuditInputError as exc:
        log(f"  caches not warmed: {exc}")
        return []
    warmed = []
    for analysis, view in analysis_views():
        warm = getattr(view, "warm", None)
        if warm is None or analysis.missing_input(workspace) is not None:
            continue
        try:
            warm(workspace)
        except AuditInputError as exc:  # the page shows it, with its fix, when opened
            log(f"  {analysis.title}: not warmed ({exc})")
            continue
        warmed.append(analysis.title)
    try:  # the Overview's summary reads the results just warmed
        audit_summary(workspace)
        warmed.append("Overview")
    except AuditInputError as exc:
        log(f"  Overview summary: not warmed ({exc})")
    log(f"  caches warm in {time.perf_counter() - started:.1f} s (workspace; first views of {', '.join(warmed)})")
    return warmed


def warm_when_serving(directory: Path, log: Callable[[str], None], ready: Callable[[], None] = lambda: None) -> None:
    """Thread body: wait for Streamlit's runtime (its caches live there), warm them, then call `ready` (which
    prints the address), also when the warm-up failed: a failed warm-up costs speed only."""
    from streamlit.runtime import Runtime

    while not Runtime.exists():
        time.sleep(0.1)
    try:
        warm_caches(directory, log)
    except Exception as exc:  # noqa: BLE001 — the page shows the error when opened
        log(f"  caches not warmed: {type(exc).__name__}: {exc}")
    finally:
        ready()
