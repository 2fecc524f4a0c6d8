"""Every analysis of the tool, in the order a reviewer works through an audit. The CLI, the report, `check` and
the dashboard's navigation iterate over this list: adding an analysis is one line here (see
docs/ARCHITECTURE.md, "How to add an analysis")."""

from __future__ import annotations

from analysis.bias.contract import Bias
from analysis.concepts.contract import Concepts
from analysis.contamination.contract import Contamination
from analysis.contract import Analysis
from analysis.dedup.contract import Duplicates
from analysis.filters.contract import FilterBuilder
from analysis.hashes.contract import HashListMatches
from analysis.regurgitation.contract import Regurgitation
from analysis.removals.contract import Removals
from analysis.review.contract import ReviewQueue

ANALYSES: tuple[Analysis, ...] = (
    Removals(),
    Bias(),
    Concepts(),
    Duplicates(),
    Regurgitation(),
    Contamination(),
    HashListMatches(),
    ReviewQueue(),
    FilterBuilder(),
)


def by_name(name: str) -> Analysis:
    return next(analysis for analysis in ANALYSES if analysis.name == name)
