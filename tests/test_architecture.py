"""The shape of the code that docs/ARCHITECTURE.md promises: packages layered without cycles, modules without
import cycles (lazy imports inside functions included), and every registered analysis wired everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGES = ("analysis", "pretrain_audit", "dashboard", "data_samples")
# Which first-party packages each package may import: the engine imports none of the others.
ALLOWED = {
    "analysis": {"analysis"},
    "dashboard": {"analysis", "dashboard"},
    "data_samples": {"analysis", "data_samples"},
    "pretrain_audit": {"analysis", "dashboard", "data_samples", "pretrain_audit"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def first_party_imports(path: Path) -> set[str]:
    """Every first-party module the file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(path): path for package in PACKAGES for path in (REPO / package).rglob("*.py")}
    return {
        name: {target for target in first_party_imports(path) if target in files and target != name}
        for name, path in files.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (networkx, installed with torch)."""
    import networkx

    directed = networkx.DiGraph([(source, target) for source, targets in graph.items() for target in targets])
    directed.add_nodes_from(graph)
    return sorted(
        sorted(component) for component in networkx.strongly_connected_components(directed) if len(component) > 1
    )


def test_no_module_imports_a_module_that_imports_it_back() -> None:
    assert cycles(import_graph()) == []


def test_packages_import_only_the_layers_below_them() -> None:
    wrong = [
        (source, target)
        for source, targets in import_graph().items()
        for target in targets
        if target.split(".")[0] not in ALLOWED[source.split(".")[0]]
    ]
    assert wrong == []


def analysis_packages() -> set[str]:
    """The folders of the registered analyses (analysis/NAME/); every other module under analysis/ is the core."""
    from analysis.registry import ANALYSES

    return {type(analysis).__module__.split(".")[1] for analysis in ANALYSES}


def crossings(graph: dict[str, set[str]], packages: set[str]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """Imports from one analysis's modules into another's, and from the core into any analysis (the registry,
    which lists them all, excepted)."""

    def owner(module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if parts[0] == "analysis" and len(parts) > 2 and parts[1] in packages else None

    sibling, core = set(), set()
    for source, targets in graph.items():
        if not source.startswith("analysis") or source == "analysis.registry":
            continue
        for target in (t for t in targets if owner(t) is not None):
            if owner(source) is None:
                core.add((source, target))
            elif owner(source) != owner(target):
                sibling.add((source, target))
    return sibling, core


def test_no_analysis_imports_another_and_the_core_imports_none(capsys: pytest.CaptureFixture[str]) -> None:
    """An analysis's folder, its view and the registry line are all that adding one touches (docs/ARCHITECTURE.md):
    what two analyses both need lives in the core, and what one takes from another the registry hands it."""
    sibling, core = crossings(import_graph(), analysis_packages())
    with capsys.disabled():
        print(f"\nsibling-analysis imports: {len(sibling)}; core→analysis imports: {len(core)}")
    assert sorted(core) == [], "the core imports an analysis: move what both need into the core"
    assert sorted(sibling) == [], "an analysis imports another: move what both need into the core"


def test_the_crossing_finder_finds_both_kinds() -> None:
    graph = {
        "analysis.a.compute": {"analysis.b.compute", "analysis.a.figures", "analysis.stats"},
        "analysis.stats": {"analysis.a.compute"},
        "analysis.registry": {"analysis.a.contract"},
    }
    sibling, core = crossings(graph, {"a", "b"})
    assert sibling == {("analysis.a.compute", "analysis.b.compute")}
    assert core == {("analysis.stats", "analysis.a.compute")}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_registered_analysis_has_a_command_a_page_and_a_report_section_builder() -> None:
    from analysis.registry import ANALYSES
    from pretrain_audit.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for analysis in ANALYSES:
        assert analysis.name in commands
        assert analysis.page is None or (REPO / "dashboard" / "views" / f"{analysis.page}.py").exists()
        assert type(analysis).report_sections is not type(analysis).__mro__[1].report_sections


# Imported where they are used, never when the CLI starts: each costs 0.1-2 s on every call of a light command
# (`verdicts add`, `filter label`, `check`), which scripts make in loops (bench/cli_startup.py, issue 51).
HEAVY_AT_START = ("torch", "sklearn", "scipy.stats", "scipy.sparse", "streamlit", "plotly", "cv2", "timm", "umap")


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    import subprocess
    import sys

    probe = (
        "import sys; from pretrain_audit.cli import build_parser; build_parser(); "
        f"print(','.join(m for m in {HEAVY_AT_START!r} if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "", f"imported when the CLI starts: {completed.stdout.strip()}"
