"""Benchmarks read where a command's time went from its progress bars: each bar counted once, at its close."""

from __future__ import annotations

import contextlib
import io
import time

from analysis.progress import progress_bar
from bench.verification_cluster import progress_phases


def _bars(*labels: str) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed):
        for label in labels:
            bar = progress_bar(3, label)
            for _ in range(3):
                bar.update(1)
            time.sleep(1.05)  # finished, then drawn again when it closes: one second later
            bar.close()
    return printed.getvalue()


def test_a_finished_bar_drawn_again_at_its_close_counts_once() -> None:
    assert progress_phases(_bars("local features")) == {"local features": 1.0}


def test_two_bars_of_one_label_add_up_and_other_labels_stay_apart() -> None:
    phases = progress_phases(_bars("local features", "verifying pairs", "local features"))
    assert phases == {"local features": 2.0, "verifying pairs": 1.0}
