"""The parameters of `filter`: one request to the filter builder (an action on a named filter and that action's
values). Its flags are the actions' own subcommands (analysis/filters/contract.py), so none is generated here, and
a request changes the workspace rather than configuring it, so audit.toml sets none of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.params import Params, setting

ACTIONS = ("new", "seed", "next", "label", "fit", "preview", "apply", "unapply", "export")


def _value(default: Any = None, *, help: str, choices: tuple[Any, ...] | None = None) -> Any:
    return setting(default, help=help, choices=choices, in_cli=False, in_toml=False)


@dataclass(frozen=True)
class FilterRequest(Params):
    filter_action: str | None = _value(help="the action (none: list the filters)", choices=ACTIONS)
    name: str | None = _value(help="the filter's name")
    spec: str | None = _value(help="what counts as positive (new)")
    extra_score: tuple[str, ...] = _value((), help="score columns used as features too (new)")
    by: str = _value("", help="who wrote the specification (new)")
    target_recall: float | None = _value(help="recall the threshold aims for (new, fit, apply)")
    caption_words: str | None = _value(help="seed: images whose caption contains any of these words")
    like: str | None = _value(help="seed: images nearest to these ids")
    score_band: str | None = _value(help="seed: COLUMN:LOW:HIGH")
    text: str | None = _value(help="seed: a prompt")
    n: int = _value(20, help="images in a round (seed, next)")
    assignments: tuple[str, ...] = _value((), help="ID=LABEL (label)")
    labeller: str | None = _value(help="who labels (label)")
    threshold: float | None = _value(help="the score threshold (preview, apply)")
    out: Path | None = _value(help="the file to export to (export)")
