"""A filter's definition (name, specification, features) in `filters/NAME/filter.json`, and its labels."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from analysis.cache import atomic_save_json, load_json
from analysis.errors import AuditInputError
from analysis.verdicts.store import FILTER_KIND_PREFIX, FILTER_LABELS, VerdictRow, VerdictStore
from analysis.workspace import Workspace

FILTERS_DIR = "filters"
LABELS_DATABASE = "labels.sqlite"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
DEFAULT_TARGET_RECALL = 0.9  # the recall a new filter's threshold aims for, until its author sets another
POSITIVE, NEGATIVE, SKIP = FILTER_LABELS


@dataclass(frozen=True)
class FilterDefinition:
    """What a filter is for. `spec` is the written specification (what counts as positive, with examples and
    exclusions), kept with the filter and printed in the report; `extra_scores` are score columns used as features
    beside the image embeddings."""

    name: str
    spec: str
    created_at: str
    created_by: str = ""
    extra_scores: tuple[str, ...] = ()
    target_recall: float = DEFAULT_TARGET_RECALL
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return f"{FILTER_KIND_PREFIX}{self.name}"

    @property
    def score_column(self) -> str:
        return f"filter-{self.name}"

    def to_json(self) -> dict:
        return {**asdict(self), "extra_scores": list(self.extra_scores)}


def filters_root(workspace: Workspace) -> Path:
    return workspace.config.root / FILTERS_DIR


def filter_folder(workspace: Workspace, name: str) -> Path:
    return filters_root(workspace) / name


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise AuditInputError(
            f"filter name {name!r} is not a short lowercase name.",
            fix="use 1–40 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit.",
        )
    return name


def score_columns(frame: pd.DataFrame) -> list[str]:
    """The columns a filter can use as a score (a feature of its classifier, a seed's band): decimal numbers, as a
    classifier's scores, `pretrain-audit score`'s columns and a manifest's own scores are; never the id. The one rule
    of the command and the page."""
    return [column for column in frame.columns if column != "id" and pd.api.types.is_float_dtype(frame[column])]


def check_score_columns(workspace: Workspace, columns: Iterable[str]) -> None:
    usable = score_columns(workspace.original)
    wrong = [column for column in columns if column not in usable]
    if wrong:
        raise AuditInputError(
            f"{', '.join(map(repr, wrong))} {'is not a score column' if len(wrong) == 1 else 'are not score columns'}"
            " of this workspace.",
            path=workspace.config.original,
            fix=f"use one of {', '.join(usable)}." if usable else "add scores first (`pretrain-audit score`).",
        )


def new_filter(
    workspace: Workspace,
    name: str,
    spec: str,
    *,
    created_by: str = "",
    extra_scores: tuple[str, ...] = (),
    target_recall: float = DEFAULT_TARGET_RECALL,
) -> FilterDefinition:
    check_name(name)
    if not spec.strip():
        raise AuditInputError(
            "a filter needs a written specification.",
            fix='say what counts as positive, with examples and exclusions: --spec "photos of ...; not ...".',
        )
    check_score_columns(workspace, extra_scores)
    if not 0 < target_recall < 1:
        raise AuditInputError(f"target recall {target_recall} is not in (0, 1).", fix="use e.g. 0.9.")
    path = filter_folder(workspace, name) / "filter.json"
    if path.exists():
        raise AuditInputError(f"a filter named '{name}' already exists.", path=path, fix="choose another name.")
    definition = FilterDefinition(
        name, spec.strip(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), created_by, extra_scores, target_recall
    )
    atomic_save_json(path, definition.to_json())
    return definition


def load_definition(workspace: Workspace, name: str) -> FilterDefinition:
    path = filter_folder(workspace, check_name(name)) / "filter.json"
    if not path.exists():
        known = ", ".join(list_filters(workspace)) or "none yet"
        raise AuditInputError(
            f"no filter named '{name}' (filters: {known}).",
            path=filters_root(workspace),
            fix=f"create it with `pretrain-audit filter {workspace.config.root} new {name} --spec TEXT`.",
        )
    body = load_json(path)
    return FilterDefinition(**{**body, "extra_scores": tuple(body.get("extra_scores", ()))})


def list_filters(workspace: Workspace) -> list[str]:
    root = filters_root(workspace)
    return sorted(p.parent.name for p in root.glob("*/filter.json")) if root.exists() else []


def label_store(workspace: Workspace) -> VerdictStore:
    store = VerdictStore(workspace.config.root / LABELS_DATABASE)
    store.initialise()
    return store


def labels(store: VerdictStore, definition: FilterDefinition) -> pd.DataFrame:
    """The current label of every labelled item (the latest one given, by whoever labelled it): item_id, label,
    labeller, created_at."""
    history = store.history(definition.kind)
    if history.empty:
        return pd.DataFrame(columns=["item_id", "label", "labeller", "created_at"])
    latest = history.sort_values("seq").drop_duplicates("item_id", keep="last")
    return latest.rename(columns={"verdict": "label", "reviewer": "labeller"})[
        ["item_id", "label", "labeller", "created_at"]
    ].reset_index(drop=True)


def parse_labels(assignments: list[str], known: set[str]) -> list[tuple[str, str]]:
    """`ID=positive|negative|skip` arguments, all validated before any is stored."""
    parsed, problems = [], []
    for text in assignments:
        item, sep, label = text.partition("=")
        if not sep or not item:
            problems.append(f"{text!r} is not ID=LABEL")
        elif label not in FILTER_LABELS:
            problems.append(f"{text!r}: label must be one of {', '.join(FILTER_LABELS)}")
        elif item not in known:
            problems.append(f"{text!r}: no row with id {item!r}")
        else:
            parsed.append((item, label))
    if problems:
        raise AuditInputError(
            f"{len(problems)} bad label(s): " + "; ".join(problems[:5]) + (" …" if len(problems) > 5 else "") + ".",
            fix="write ID=positive, ID=negative or ID=skip with ids of the original manifest; nothing was stored.",
        )
    return parsed


def record_labels(
    store: VerdictStore, definition: FilterDefinition, assignments: list[tuple[str, str]], labeller: str
) -> list[int]:
    return store.record_many([VerdictRow(definition.kind, item, label, labeller) for item, label in assignments])
