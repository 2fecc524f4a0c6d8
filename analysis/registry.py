"""Every analysis of the tool, in the order a reviewer works through an audit. The CLI, the report, `check` and
the dashboard's navigation iterate over this list: adding an analysis is one line here (see
docs/ARCHITECTURE.md, "How to add an analysis")."""

from __future__ import annotations

from pathlib import Path

from analysis.bias.contract import Bias
from analysis.caption_repeats.contract import CaptionRepeats
from analysis.concepts.contract import Concepts
from analysis.contamination.contract import Contamination
from analysis.contract import Analysis
from analysis.dedup.contract import Duplicates
from analysis.errors import AuditInputError
from analysis.filters.contract import FilterBuilder
from analysis.hashes.contract import HashListMatches
from analysis.regurgitation.contract import Regurgitation
from analysis.removals.contract import Removals
from analysis.review.contract import ReviewQueue
from analysis.workspace import KNOWN_SECTIONS, Workspace, load_workspace

# The analyses one of them relies on are handed to it here, so that no analysis imports another.
_REMOVALS, _DUPLICATES = Removals(), Duplicates()
_REGURGITATION = Regurgitation(duplicate_groups=_DUPLICATES.duplicate_groups)
ANALYSES: tuple[Analysis, ...] = (
    _REMOVALS,
    Bias(),
    CaptionRepeats(),
    Concepts(),
    _DUPLICATES,
    _REGURGITATION,
    Contamination(),
    HashListMatches(),
    ReviewQueue(reviewed=(_REMOVALS, _REGURGITATION)),
    FilterBuilder(),
)


def by_name(name: str) -> Analysis:
    return next(analysis for analysis in ANALYSES if analysis.name == name)


def check_settings(workspace: Workspace) -> None:
    """Every analysis section of audit.toml names a registered analysis and reads as its parameters; otherwise one
    error naming the section (a misspelt `[dedupe]` would otherwise be silently ignored)."""
    names = [analysis.name for analysis in ANALYSES if analysis.Params.toml_keys()]
    for section in workspace.config.analysis_settings:
        if section not in names:
            raise AuditInputError(
                f"unknown section [{section}].",
                path=workspace.config.config_path,
                fix=f"use only {', '.join(sorted(KNOWN_SECTIONS))}, or an analysis's settings: {', '.join(names)}.",
            )
    for analysis in ANALYSES:
        analysis.settings(workspace)


def open_workspace(root: Path | str) -> Workspace:
    """The workspace with its analysis settings checked: what the CLI and the dashboard open."""
    workspace = load_workspace(root)
    check_settings(workspace)
    return workspace
