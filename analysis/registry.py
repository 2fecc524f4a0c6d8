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

# The analyses one of them relies on are handed to it here, so that no analysis imports another.
_REMOVALS, _DUPLICATES = Removals(), Duplicates()
_REGURGITATION = Regurgitation(duplicate_groups=_DUPLICATES.duplicate_groups)
ANALYSES: tuple[Analysis, ...] = (
    _REMOVALS,
    Bias(),
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
