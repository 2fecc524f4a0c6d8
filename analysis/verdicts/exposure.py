"""Exposure limits: how many disturbing images a reviewer has seen unblurred in the last hour, and whether the
next reveals may go ahead. Counted from the reveal log in the store, so the cap holds across browser tabs,
sessions and restarts; `[review] max_reveals_per_hour` in audit.toml sets it (no cap when unset).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd

WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Exposure:
    reviewer: str
    last_hour: int
    today: int
    total: int
    cap: int | None
    resume_at: datetime | None  # when the oldest reveal of a full window leaves it

    @property
    def remaining(self) -> int | None:
        return None if self.cap is None else max(0, self.cap - self.last_hour)

    def allows(self, more: int) -> bool:
        return self.remaining is None or more <= self.remaining


def exposure(reveals: pd.DataFrame, reviewer: str, cap: int | None, now: datetime | None = None) -> Exposure:
    """`reveals` is the store's reveal log (any reviewers); counts are this reviewer's."""
    now = now or datetime.now(timezone.utc)
    times = reveals.loc[reveals["reviewer"] == reviewer, "created_at"] if len(reveals) else pd.Series([], dtype=object)
    recent = times[times > now - WINDOW].sort_values()
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    resume_at = None
    if cap is not None and len(recent) >= cap:
        # the reveal whose departure brings the window back below the cap
        resume_at = (recent.iloc[len(recent) - cap] + WINDOW).to_pydatetime()
    return Exposure(
        reviewer=reviewer,
        last_hour=int(len(recent)),
        today=int((times >= start_of_day).sum()),
        total=int(len(times)),
        cap=cap,
        resume_at=resume_at,
    )
