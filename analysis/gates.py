"""The gates a workspace is judged by: `pretrain-audit check`'s options, given on its command line or kept in the
`[gates]` section of audit.toml so that the report's summary, the Overview page and a bare `check` all judge by the
same limits. A key of `[gates]` is a `check` option without its dashes (`max-removed-fraction = 0.1`), a list
repeats the option (`max-term-shift = ["woman=0.05", "man=0.05"]`), and `true` sets a switch (`reweighted = true`).
"""

from __future__ import annotations

import argparse
from typing import Any

from analysis.contract import Gate, GateStatus
from analysis.errors import AuditInputError
from analysis.workspace import Workspace


def gate_parser() -> argparse.ArgumentParser:
    """Every registered analysis's gate options, as `check` parses them."""
    from analysis.registry import ANALYSES

    parser = argparse.ArgumentParser(prog="[gates]", add_help=False, exit_on_error=False)
    for analysis in ANALYSES:
        analysis.add_gate_arguments(parser)
    return parser


def _as_arguments(name: str, value: Any) -> list[str]:
    option = f"--{name.replace('_', '-')}"
    if isinstance(value, bool):
        return [option] if value else []
    if isinstance(value, dict):
        return [part for key, limit in value.items() for part in (option, f"{key}={limit}")]
    if isinstance(value, list):
        return [part for item in value for part in (option, str(item))]
    return [option, str(value)]


def configured_gate_options(workspace: Workspace) -> argparse.Namespace:
    """The `[gates]` of audit.toml as `check` options; an unknown key or a wrong value names itself and the file."""
    parser = gate_parser()
    known = {action.dest.replace("_", "-") for action in parser._actions}
    arguments = []
    for name, value in workspace.config.gates.items():
        if name.replace("_", "-") not in known:
            raise AuditInputError(
                f"unknown key '{name}' in [gates].",
                path=workspace.config.config_path,
                fix=f"use one of {', '.join(sorted(known))} (the options of `pretrain-audit check`).",
            )
        arguments += _as_arguments(name, value)
    try:
        options, extra = parser.parse_known_args(arguments)
    except argparse.ArgumentError as exc:
        raise AuditInputError(
            f"[gates] {exc}.", path=workspace.config.config_path, fix="write e.g. max-removed-fraction = 0.1."
        ) from None
    if extra:
        raise AuditInputError(
            f"[gates] could not read {' '.join(extra)}.", path=workspace.config.config_path, fix="one value per key."
        )
    return options


def overall_status(statuses: list[GateStatus]) -> tuple[str, int]:
    """The verdict over several gates, as `check` exits on it, and how many gates decided it: "fail" when any
    failed or could not be measured, else "insufficient data" when any rests on too few observations, else "pass"."""
    failed = sum(status in ("fail", "unmeasured") for status in statuses)
    if failed:
        return "fail", failed
    insufficient = sum(status == "insufficient data" for status in statuses)
    if insufficient:
        return "insufficient data", insufficient
    return "pass", len(statuses)


def gates_of(workspace: Workspace, options: argparse.Namespace) -> list[Gate]:
    """The gates these options ask for, measured on this workspace, in the registry's order."""
    from analysis.registry import ANALYSES

    return [gate for analysis in ANALYSES for gate in analysis.gates(workspace, options)]
