"""How long work reports its progress: the time left in words, on the terminal and in a cluster's log."""

from __future__ import annotations

import pytest

from analysis.progress import progress_bar, tasks_line


def test_the_progress_bar_says_how_long_is_left(capsys: pytest.CaptureFixture[str]) -> None:
    bar = progress_bar(100, "embedding original")
    bar.update(25)
    bar.close()
    shown = capsys.readouterr().err.split("\r")[-1]
    assert "embedding original" in shown and "25/100" in shown
    assert "elapsed" in shown and "left]" in shown, shown


def test_a_cluster_log_line_projects_the_time_left_from_the_rate_so_far() -> None:
    line = tasks_line("embedding original (16 chunks of 512)", 4, 16, started=0.0, now=80.0)
    assert line == "embedding original (16 chunks of 512): 4/16 tasks done, 1 min 20 s elapsed, about 4 min 00 s left"


def test_a_finished_task_list_gives_no_estimate() -> None:
    assert tasks_line("pair search", 3, 3, started=0.0, now=3725.0) == "pair search: 3/3 tasks done, 1 h 02 min elapsed"
