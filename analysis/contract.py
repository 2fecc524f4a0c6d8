"""The analysis contract: what every analysis provides, so that the CLI, the report, the gates and the
dashboard's navigation are built by iterating over `analysis.registry.ANALYSES` instead of naming each one.

An analysis lives in one folder, `analysis/<name>/`:
- `compute.py`  pure functions and result dataclasses (no I/O beyond what is passed in);
- `cached.py`   its cached entry points (load the artifact when its fingerprint is present, else compute and
                save it atomically, through `analysis.cache.load_or_compute`), when it has artifacts;
- `figures.py`  its Plotly charts, in the house style of `analysis.charts`;
- `contract.py` one `Analysis` subclass: its `Params` (a frozen dataclass of `analysis.params.setting`s: the CLI
                flags, validation and the cache key come from it), `run` (from parameters to a result), `to_json`,
                `summary_lines` (the one source of its CLI text and its report text), report sections, gates.
Its page is `dashboard/views/<page>.py`, found by name. docs/ARCHITECTURE.md walks through adding one.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal

import pandas as pd

from analysis.captions import DocTermIndex, caption_index
from analysis.errors import AuditInputError
from analysis.filter_spec import NO_FILTER_HINT
from analysis.params import NoParams, ParamError
from analysis.params import Params as ParamsBase
from analysis.workspace import Workspace

Log = Callable[[str], None]


def quiet(message: str) -> None:
    """A log that drops progress messages (reports, tests)."""


@dataclass
class ReportSection:
    title: str
    summary: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # name → plotly Figure
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    images: list[tuple[str, list[tuple[str, bytes]]]] = field(default_factory=list)  # (row title, [(label, png)])
    evidence: list[tuple[str, bytes]] = field(default_factory=list)  # (caption, wide PNG of a matched pair)
    note: str | None = None


@dataclass
class ReportContext:
    """What the sections of one report share: the workspace, the terms asked for, the caption index (built
    once), and the parameters each section used (printed in the provenance table)."""

    workspace: Workspace
    terms: list[str]
    parameters: dict[str, str] = field(default_factory=dict)

    @cached_property
    def index(self) -> DocTermIndex:
        return caption_index(self.workspace)


@dataclass(frozen=True)
class Headline:
    """One audit's finding in one sentence, for the executive summary that heads the report and the Overview page;
    `finding` is None when the audit could not be measured, and `not_measured` then says why and how to measure
    it (an auditor must see what was left out as plainly as what was found)."""

    audit: str
    finding: str | None
    not_measured: str = ""


GateStatus = Literal["pass", "fail", "unmeasured", "insufficient data"]


@dataclass(frozen=True)
class Gate:
    """One check of `pretrain-audit check`: passes when the measured value is at most the limit, and only then.

    A gate never passes on what it did not see: `measured` is None when nothing could be measured; `unmeasured`
    says what part of its input could not be read (the gate fails unless the user allows judging on the rest);
    `judgeable` is False when the value rests on too few observations to judge (`analysis.stats.judgeable`)."""

    name: str
    limit: float
    measured: float | None
    detail: str = ""
    unmeasured: str = ""
    judgeable: bool = True

    def status(self, allow_unmeasured: bool = False) -> GateStatus:
        if self.unmeasured and not allow_unmeasured:
            return "unmeasured"
        if not self.judgeable:
            return "insufficient data"
        if self.measured is None:
            return "unmeasured"
        return "pass" if self.measured <= self.limit else "fail"

    @property
    def passed(self) -> bool:
        return self.status() == "pass"

    def to_json(self, allow_unmeasured: bool = False) -> dict:
        status = self.status(allow_unmeasured)
        return {
            "gate": self.name,
            "limit": self.limit,
            "measured": self.measured,
            "status": status,
            "passed": status == "pass",
            "unmeasured": self.unmeasured or None,
            "judgeable": self.judgeable,
            "detail": self.detail,
        }


class Analysis(ABC):
    """One audit analysis. A subclass names itself in its class line, e.g.
    `class Duplicates(Analysis, name="dedup", title="Duplicates", help="...", page="duplicates")`, and implements
    `run`, `to_json` and `summary_lines`; the rest is optional."""

    name: ClassVar[str]  # the CLI command
    title: ClassVar[str]  # the page's title in the navigation
    help: ClassVar[str]  # one line for `pretrain-audit --help`
    page: ClassVar[str | None] = None  # module of dashboard/views (and URL path) of its page, if it has one
    icon: ClassVar[str] = ":material/analytics:"
    needs_filter: ClassVar[bool] = False  # compares the original with what the filters kept
    # The verdict kind its items are judged under (analysis.verdicts.store), where people review what it flags:
    # the review queue samples `review_population` (analysis/registry.py hands it the analyses it reviews).
    review_kind: ClassVar[str | None] = None
    # Its parameters, declared once: every caller (CLI, report, `check`, headline, pages) builds one and calls `run`.
    Params: ClassVar[type[ParamsBase]] = NoParams

    def __init_subclass__(
        cls,
        *,
        name: str,
        title: str,
        help: str,
        page: str | None = None,
        icon: str = ":material/analytics:",
        needs_filter: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.name, cls.title, cls.help, cls.page, cls.icon = name, title, help, page, icon
        cls.needs_filter = needs_filter
        if cls.Params is not NoParams:
            cls.Params.section = name

    def missing_input(self, workspace: Workspace) -> tuple[str, str] | None:
        """(what is missing, how to add it) when this analysis cannot run on this workspace, else None: the CLI's
        error, the page's notice and the report section's note."""
        if self.needs_filter and not workspace.config.filtered.defined:
            return ("no filter is defined in this workspace, so nothing was removed to audit", NO_FILTER_HINT)
        return None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Its CLI options (the command, DIR and --json are added by the CLI): a flag per parameter, generated from
        `Params`, and the files it can write."""
        self.Params.add_arguments(parser)
        self.add_output_arguments(parser)

    def add_output_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Flags naming files to write (`--out`): not parameters, since they change no result."""

    def params(self, **overrides: Any) -> Any:
        """Its parameters at their defaults, with `overrides` (validated: a bad value raises AuditInputError)."""
        return self.Params(**overrides)

    def settings(self, workspace: Workspace, **overrides: Any) -> Any:
        """Its parameters as this workspace sets them: its audit.toml section (`[dedup] clusterings = 3`) over the
        defaults, with `overrides`. What the report, `check`, the headline, the review queue and the pages use."""
        body = workspace.config.analysis_settings.get(self.name, {})
        where = workspace.config.config_path
        written = self.Params.from_toml(body, where=where)
        try:
            return self.params(**{**{key: getattr(written, key) for key in body}, **overrides})
        except ParamError as exc:
            raise AuditInputError(f"[{self.name}] {exc.name} {exc.problem}.", path=where, fix=exc.hint) from None

    def params_from_cli(self, workspace: Workspace, options: argparse.Namespace) -> Any:
        """The parameters of a command line: the flags given over the workspace's settings."""
        return self.Params.from_options(options, self.settings(workspace))

    @abstractmethod
    def run(self, workspace: Workspace, params: Any, log: Log = quiet) -> Any:
        """The result for these parameters (an instance of its `Params`), from the workspace's cache where it is
        there: the one entry point of the CLI, the report, `check` and the headline."""

    @abstractmethod
    def to_json(self, result: Any) -> dict:
        """The `--json` payload (documented in docs/cli.md)."""

    @abstractmethod
    def summary_lines(self, result: Any) -> list[str]:
        """The key numbers as sentences: the CLI's text output and the report section's summary."""

    def write_outputs(self, workspace: Workspace, result: Any, options: argparse.Namespace) -> list[str]:
        """Write the files its options ask for (`--out` ...); returns one message per file written."""
        return []

    def report_sections(self, context: ReportContext) -> list[ReportSection]:
        return []

    def review_population(self, workspace: Workspace, subset: str | None = None) -> tuple[str, pd.DataFrame]:
        """(what it is, and its items' `id` and `score`) of what a review of this analysis samples: exactly what its
        command, page and `check` flag at their defaults; `subset` names a part (one filter's removals)."""
        raise NotImplementedError(f"`{self.name}` has no items for people to review")

    def headline(self, workspace: Workspace) -> Headline | None:
        """Its finding in one sentence with its interval, from its cached result at the default options; None for
        a tool that measures nothing (review queues, the filter builder)."""
        return None

    @property
    def audit_title(self) -> str:
        """Its name in the summary (a page title such as "Map" may not say what was audited)."""
        return self.title

    def unmeasured_headline(self, workspace: Workspace) -> Headline | None:
        """The headline of an audit whose input is missing, saying what is missing and how to add it; None when
        it can run."""
        missing = self.missing_input(workspace)
        return None if missing is None else Headline(self.audit_title, None, f"{missing[0]}. {missing[1]}")

    def add_gate_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Options of `pretrain-audit check` that this analysis measures."""

    def gates(self, workspace: Workspace, options: argparse.Namespace) -> list[Gate]:
        """The gates asked for in `options` (none when its gate options are unset)."""
        return []
