"""Pass/fail gates for a training pipeline: `pretrain-audit check DIR --max-... ` exits 1 when one fails."""

from __future__ import annotations

from dataclasses import dataclass

from analysis.errors import AuditInputError
from analysis.workspace import Workspace


@dataclass(frozen=True)
class Gate:
    name: str
    limit: float
    measured: float | None
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.measured is not None and self.measured <= self.limit

    def to_json(self) -> dict:
        return {"gate": self.name, "limit": self.limit, "measured": self.measured, "passed": self.passed,
                "detail": self.detail}


def parse_term_limits(options: list[str]) -> dict[str, float]:
    limits = {}
    for option in options:
        term, sep, value = option.partition("=")
        try:
            limits[term.strip().casefold()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not term.strip():
            raise AuditInputError(f"--max-term-shift {option!r} is not TERM=X.", fix="write e.g. --max-term-shift woman=0.05.")
    return limits


def evaluate_gates(workspace: Workspace, *, max_removed_fraction: float | None = None,
                   max_term_shift: dict[str, float] | None = None, max_regurgitation_rate: float | None = None,
                   max_duplicate_fraction: float | None = None, reweighted: bool = False) -> list[Gate]:
    """Measure each requested quantity and compare it with its limit (shifts compare |relative change|)."""
    from analysis.pipeline import caption_index

    gates: list[Gate] = []
    if max_removed_fraction is not None:
        gates.append(Gate("removed fraction", max_removed_fraction, workspace.n_removed / workspace.n_original,
                          f"{workspace.n_removed:,} of {workspace.n_original:,} removed"))
    if max_term_shift:
        from analysis.bias import check_single_word, term_shifts

        for term in max_term_shift:
            check_single_word(term)
        index = caption_index(workspace)
        weights = None
        if reweighted:
            from analysis.pipeline import reweighting

            weights = reweighting(workspace, index).weights
        for shift in term_shifts(index, workspace.kept, list(max_term_shift), weights):
            change = shift.reweighted_change if reweighted else shift.relative_change
            label = f"|shift of '{shift.name}'|" + (" after reweighting" if reweighted else "")
            gates.append(Gate(label, max_term_shift[shift.name], None if change is None else abs(change),
                              "term in no caption" if change is None else f"relative change {change:+.2%}"))
    if max_duplicate_fraction is not None:
        from analysis.pipeline import dedup_for

        dedup = dedup_for(workspace)
        gates.append(Gate("near-duplicate fraction removed", max_duplicate_fraction, dedup.n_removed / dedup.n_images,
                          f"{dedup.n_removed:,} images at cosine ≥ {dedup.threshold}"))
    if max_regurgitation_rate is not None:
        from analysis.pipeline import regurgitation_for

        result = regurgitation_for(workspace)
        gates.append(Gate("regurgitation rate", max_regurgitation_rate, result.rate,
                          f"{result.n_flagged:,} of {len(result.samples):,} samples at cosine ≥ {result.threshold}"))
    if not gates:
        raise AuditInputError("no gate given.", fix="add e.g. --max-regurgitation-rate 0.01 or --max-term-shift woman=0.05.")
    return gates
