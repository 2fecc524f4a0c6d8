"""The executive summary that heads the report and the Overview page: what was audited and from what (two lines),
each audit's finding in one sentence with its interval, the gates' status, and what was not measured and why.

An auditor signs the first page; everything on it comes from the same cached results as the `--json` outputs, so a
figure on page 1 is the figure of `pretrain-audit <analysis> --json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis import __version__
from analysis.contract import Gate, GateStatus, Headline
from analysis.errors import AuditInputError
from analysis.workspace import Workspace, manifest_fingerprints

CAPTIONS_ONLY = "a caption-only audit: the manifest has no images, and no embeddings were imported"


@dataclass(frozen=True)
class JudgedGate:
    gate: Gate
    status: GateStatus


@dataclass(frozen=True)
class ExecutiveSummary:
    scope: str
    provenance: str
    headlines: list[Headline]
    fingerprints: dict[str, str]  # sha256 of the manifests and config (the provenance line and table)
    gates: list[JudgedGate] = field(default_factory=list)
    gates_note: str = ""  # why no gate is shown (none set, or [gates] unreadable)

    @property
    def measured(self) -> list[Headline]:
        return [h for h in self.headlines if h.finding is not None]

    @property
    def not_measured(self) -> list[Headline]:
        return [h for h in self.headlines if h.finding is None]

    @property
    def gates_verdict(self) -> str:
        if not self.gates:
            return self.gates_note
        from analysis.gates import overall_status

        overall, count = overall_status([g.status for g in self.gates])
        if overall == "fail":
            return f"{count} of {len(self.gates)} gates failed or could not be measured"
        if overall == "insufficient data":
            return f"{count} of {len(self.gates)} gates had too few observations to judge; none failed"
        return f"all {len(self.gates)} gates passed"


def scope_line(workspace: Workspace) -> str:
    kind = " (SYNTHETIC: not real training data)" if workspace.config.synthetic else ""
    filters = "; ".join(workspace.config.filtered.describe()) if workspace.config.filtered.defined else "no filter"
    return (
        f"Workspace '{workspace.config.name}'{kind}: {workspace.n_original:,} images, "
        f"{workspace.n_kept:,} kept by the filters "
        f"({filters}), {workspace.n_generated:,} generated samples."
    )


def provenance_line(workspace: Workspace, fingerprints: dict[str, str]) -> str:
    digests = ", ".join(f"{name} sha256 {digest[:12]}…" for name, digest in fingerprints.items())
    return f"pretrain-audit {__version__}, embedder {workspace.config.embedder}; {digests}."


def headlines(workspace: Workspace) -> list[Headline]:
    """Every measuring analysis's headline in the registry's order; one that cannot run says why instead."""
    from analysis.registry import ANALYSES

    found = []
    for analysis in ANALYSES:
        try:
            headline = analysis.headline(workspace)
        except AuditInputError as exc:
            why = str(exc) if workspace.has_images else CAPTIONS_ONLY
            headline = Headline(analysis.audit_title, None, why)
        if headline is not None:
            found.append(headline)
    return found


def executive_summary(workspace: Workspace) -> ExecutiveSummary:
    from analysis.gates import configured_gate_options, gates_of

    judged, note = [], ""
    try:
        options = configured_gate_options(workspace)
        judged = [JudgedGate(gate, gate.status()) for gate in gates_of(workspace, options)]
        if not judged:
            note = "no gate is set: add limits to [gates] in audit.toml (docs/cli.md, `check`)"
    except AuditInputError as exc:
        note = f"the gates could not be read: {exc}"
    fingerprints = manifest_fingerprints(workspace)
    return ExecutiveSummary(
        scope_line(workspace),
        provenance_line(workspace, fingerprints),
        headlines(workspace),
        fingerprints,
        judged,
        note,
    )
