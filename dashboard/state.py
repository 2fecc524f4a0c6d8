"""Which workspace the dashboard is showing, loaded once per change of its files."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import streamlit as st

from analysis.errors import AuditInputError
from analysis.registry import open_workspace
from analysis.workspace import CONFIG_NAME, Workspace, read_config

WORKSPACE_ENV = "PRETRAIN_AUDIT_WORKSPACE"


def workspace_dir() -> Path | None:
    argv = sys.argv[1:]
    if "--workspace" in argv and argv.index("--workspace") + 1 < len(argv):
        return Path(argv[argv.index("--workspace") + 1])
    value = os.environ.get(WORKSPACE_ENV)
    return Path(value) if value else None


def workspace_stamp(directory: Path) -> tuple:
    """Modification times of the config, manifests and computed scores: a changed file reloads the workspace."""
    paths: list[Path | None] = [directory / CONFIG_NAME]
    try:
        config = read_config(directory)
        paths += [config.original, config.generated, config.filtered.manifest, *config.computed_scores.values()]
    except AuditInputError:
        pass
    return tuple((str(p), p.stat().st_mtime_ns) for p in paths if p is not None and p.exists())


@st.cache_resource(show_spinner="Loading workspace…", max_entries=4)
def _load(directory: str, stamp: tuple) -> Workspace:
    return open_workspace(Path(directory))


def shared_workspace(directory: Path) -> Workspace:
    """The workspace as every session shares it (loaded once per change of its files)."""
    return _load(str(directory.resolve()), workspace_stamp(directory))


def current_workspace() -> Workspace:
    """The loaded workspace, or an error box and a stop (never a traceback)."""
    directory = workspace_dir()
    if directory is None:
        st.error(f"No workspace given. Start with `pretrain-audit dashboard DIR` (or set {WORKSPACE_ENV}).")
        st.stop()
    try:
        return shared_workspace(directory)
    except AuditInputError as exc:
        st.error(str(exc))
        st.stop()
    raise AssertionError("unreachable")


class _BareModeNotice(logging.Filter):
    """Streamlit warns when a cached function runs outside a page's script (no script context, no runtime yet):
    exactly what warming does, so those two notices are dropped; every other message passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "missing ScriptRunContext" not in message and "No runtime found" not in message


def silence_bare_mode_notices() -> None:
    for name in ("streamlit.runtime.scriptrunner_utils.script_run_context", "streamlit.runtime.caching.cache_data_api"):
        logging.getLogger(name).addFilter(_BareModeNotice())
