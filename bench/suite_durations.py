"""The test suite's time, read from a CI log: the closing line (tests, wall time) and the slowest tests, as the
markdown docs/benchmarks.md ("Test suite") records. The log comes from `make ci` (.ci/local prints its path) or
`bash .ci/run > LOG 2>&1`; .ci/run asks pytest for the 25 slowest durations.

    python -m bench.suite_durations /tmp/pretrain-audit-ci-COMMIT.log [--top 20]
    python -m bench.suite_durations BEFORE.log AFTER.log        # both, and the tests whose time changed most
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

CLOSING = re.compile(r"^=*\s*(?P<counts>(?:\d+ \w+,? ?)+) in (?P<seconds>[\d.]+)s")
DURATION = re.compile(r"^(?P<seconds>[\d.]+)s (?P<phase>call|setup|teardown)\s+(?P<test>\S+)")


@dataclass
class SuiteRun:
    counts: str
    seconds: float
    slowest: list[tuple[float, str, str]]  # seconds, phase, test id


def read_log(path: Path) -> SuiteRun:
    """The last pytest closing line of the log and its durations table; a log without them is named."""
    counts, seconds, slowest = "", 0.0, []
    for line in path.read_text(errors="replace").splitlines():
        found = DURATION.match(line)
        if found:
            slowest.append((float(found["seconds"]), found["phase"], found["test"]))
        closing = CLOSING.match(line.strip())
        if closing and ("passed" in line or "failed" in line):
            counts, seconds = closing["counts"].strip(" ,"), float(closing["seconds"])
    if not counts:
        raise SystemExit(f"{path}: no pytest closing line ('N passed ... in S s'): did the run finish?")
    return SuiteRun(counts, seconds, sorted(slowest, reverse=True))


def table(run: SuiteRun, top: int) -> str:
    lines = [
        f"{run.counts} in {run.seconds:.0f} s ({run.seconds / 60:.1f} min) of pytest",
        "",
        "| s | phase | test |",
        "| ---: | --- | --- |",
    ]
    lines += [f"| {seconds:.1f} | {phase} | `{test}` |" for seconds, phase, test in run.slowest[:top]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path, help="one log, or BEFORE AFTER")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    runs = [read_log(path) for path in args.logs]
    for path, run in zip(args.logs, runs):
        print(f"### {path.name}\n\n{table(run, args.top)}\n")
    if len(runs) == 2:
        before = {(test, phase): seconds for seconds, phase, test in runs[0].slowest}
        after = {(test, phase): seconds for seconds, phase, test in runs[1].slowest}
        print(f"pytest time: {runs[0].seconds:.0f} s → {runs[1].seconds:.0f} s\n")
        print("| before s | after s | test (phase) |\n| ---: | ---: | --- |")
        keys = sorted(before, key=lambda key: before[key], reverse=True)[: args.top]
        for key in keys:
            shown = f"{after[key]:.1f}" if key in after else "below the table"
            print(f"| {before[key]:.1f} | {shown} | `{key[0]}` ({key[1]}) |")


if __name__ == "__main__":
    main()
