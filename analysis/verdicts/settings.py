"""`[review]` in audit.toml: how decisions are made and how reviewers are protected.

```toml
[review]
decision = "unanimous"        # or "majority"; an adjudicator's verdict is always final
max_reveals_per_hour = 60     # per reviewer, over the last hour; unset: no cap
reveal_greyscale = true       # revealed images shown in greyscale
blur = "strong"               # or "maximum"
```
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.errors import AuditInputError
from analysis.images import BLUR_LEVELS
from analysis.verdicts.decisions import DECISION_RULES, DecisionRule

REVIEW_KEYS = {"decision", "max_reveals_per_hour", "reveal_greyscale", "blur"}


@dataclass(frozen=True)
class ReviewSettings:
    decision: DecisionRule = "unanimous"
    max_reveals_per_hour: int | None = None
    reveal_greyscale: bool = False
    blur: str = "strong"


def parse_review(raw: dict[str, Any], config_path: Path) -> ReviewSettings:
    decision = raw.get("decision", "unanimous")
    if decision not in DECISION_RULES:
        raise AuditInputError(
            f"[review] decision = {decision!r} is not a decision rule.",
            path=config_path,
            fix=f"use one of {list(DECISION_RULES)}.",
        )
    cap = raw.get("max_reveals_per_hour")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise AuditInputError(
            f"[review] max_reveals_per_hour = {cap!r} must be a whole number of at least 1.",
            path=config_path,
            fix="write e.g. max_reveals_per_hour = 60, or remove the key for no cap.",
        )
    greyscale = raw.get("reveal_greyscale", False)
    if not isinstance(greyscale, bool):
        raise AuditInputError(
            f"[review] reveal_greyscale = {greyscale!r} must be true or false.", path=config_path, fix="write true."
        )
    blur = raw.get("blur", "strong")
    if blur not in BLUR_LEVELS:
        raise AuditInputError(
            f"[review] blur = {blur!r} is not a blur level.", path=config_path, fix=f"use one of {list(BLUR_LEVELS)}."
        )
    return ReviewSettings(decision, cap, greyscale, blur)
