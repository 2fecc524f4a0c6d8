"""Shared fixtures: the sample workspace (built once per run), a dashboard server, the browser; and the hooks that
make CI's log say what ran and what failed (markers, required tests, failure artifacts).
Plain helpers live in tests/helpers.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import CHROMIUM, REPO, require_browser, serve_dashboard

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """The sample workspace with its embeddings prepared and its map drawn, as `make run` leaves it (the dashboard
    warms the map before it prints its address). Tests must not write into it; `sample_copy` is theirs to write.

    Built once per run, and shared by pytest-xdist workers where they run (whichever asks first builds it, the
    others wait on a file lock). The map is drawn here because UMAP compiles its numba kernels in every process
    that draws one (~20 s): copies of this workspace carry the cached map, so a CLI `report` or `concepts` on
    a copy loads it. The map's own computation stays tested here and in tests/test_concepts.py.

    Outside CI, the built, prepared and mapped workspace is kept in .test-cache/ under a hash of everything it
    depends on (tests/sample_cache.py) and copied from there while that is unchanged (the warm-up always runs)."""
    from filelock import FileLock

    from analysis.concepts.cached import map_for
    from analysis.embeddings import prepare
    from analysis.workspace import load_workspace
    from dashboard.warm import warm_caches
    from data_samples.build import build_sample
    from tests import sample_cache

    under_xdist = hasattr(request.config, "workerinput")  # each worker's base temp is a folder of the run's
    root = tmp_path_factory.getbasetemp().parent if under_xdist else tmp_path_factory.getbasetemp()
    directory, done = root / "sample" / "ws", root / "sample" / "prepared"
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / "sample.lock")):
        if not done.exists():
            shutil.rmtree(directory, ignore_errors=True)
            kept = sample_cache.enabled()  # never in CI: the inputs are not even hashed there
            key = sample_cache.inputs_key(sample_cache.SAMPLE_INPUTS) if kept else ""
            restored = kept and sample_cache.restore(key, directory)
            if not restored:
                build_sample(directory)
            # on a restored copy both find their results cached (the engine's own check that they are current)
            prepare(load_workspace(directory), progress=False, log=lambda message: None)
            assert map_for(load_workspace(directory)).xy.shape[0] > 0
            if kept and not restored:
                sample_cache.store(key, directory)
            warmed = warm_caches(directory, log=lambda message: None)
            assert {"Duplicates", "Regurgitation"} <= set(warmed), warmed
            done.touch()
    return directory


@pytest.fixture()
def sample_copy(sample_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the prepared sample (without verdicts) for tests that write into the workspace."""
    target = tmp_path / "ws"
    shutil.copytree(sample_dir, target, ignore=shutil.ignore_patterns("reviews.sqlite*", "*.lock"))
    return target


@pytest.fixture()
def sample_without_results(sample_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the prepared sample without the dedup and regurgitation results that the dashboard's
    warm-up stored, for tests whose answer depends on whether dedup ran before (regurgitation then reports the
    best match left after dedup). Their local features stay: a cache of pixels, which changes no answer."""
    results = {"dedup", "regurgitation"}

    def ignored(folder: str, names: list[str]) -> set[str]:
        inside_cache = Path(folder).name == ".audit-cache"
        return {
            n for n in names if n.startswith("reviews.sqlite") or n.endswith(".lock") or (inside_cache and n in results)
        }

    target = tmp_path / "ws"
    shutil.copytree(sample_dir, target, ignore=ignored)
    return target


@pytest.fixture()
def bare_sample(tmp_path: Path) -> Path:
    """A freshly built sample with nothing prepared."""
    from data_samples.build import build_sample

    return build_sample(tmp_path / "bare")


@pytest.fixture(scope="session")
def browser_workspace(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The copy of the prepared sample that the browser tests' dashboard serves."""
    workspace = tmp_path_factory.mktemp("browser") / "ws"
    shutil.copytree(sample_dir, workspace)
    return workspace


@pytest.fixture(scope="session")
def dashboard_url(browser_workspace: Path):
    """`pretrain-audit dashboard` on a copy of the prepared sample, as a user starts it; yields its URL."""
    require_browser()
    with serve_dashboard(browser_workspace) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield instance
        instance.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    yield page
    context.close()


# Markers that follow from what a test uses, so `make test-fast` (`-m "not browser and not cluster and not
# real_data"`) can never run a browser test that someone forgot to mark.
_BROWSER_FIXTURES = {"browser", "page", "dashboard_url"}
FAILURE_ARTIFACTS = REPO / ".ci" / "artifacts"


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ARG001 — pytest's hook signature
    for item in items:
        if _BROWSER_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.browser)
        if "cluster" in item.fixturenames:
            item.add_marker(pytest.mark.cluster)


def _required(item) -> str | None:
    """Why a skip of this test is a failure here: CI sets these variables (.ci/run), so a browser or real-data test
    that silently skips cannot pass CI."""
    if item.get_closest_marker("browser") and os.environ.get("PRETRAIN_AUDIT_REQUIRE_BROWSER"):
        return "browser tests are required here (PRETRAIN_AUDIT_REQUIRE_BROWSER)"
    if item.get_closest_marker("real_data") and os.environ.get("PRETRAIN_AUDIT_REQUIRE_REAL_DATA"):
        return "real-data tests are required where ../shared/real exists (PRETRAIN_AUDIT_REQUIRE_REAL_DATA)"
    return None


def _save_pages(item) -> list[Path]:
    """A screenshot and the text of every page the failed test still has open, under .ci/artifacts/."""
    funcargs = getattr(item, "funcargs", {})
    browser, page = funcargs.get("browser"), funcargs.get("page")
    pages = [page] if page is not None else []
    if browser is not None:
        pages += [p for context in browser.contexts for p in context.pages if p is not page]
    saved: list[Path] = []
    FAILURE_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = item.nodeid.split("::")[-1].replace("/", "_").replace("[", "_").replace("]", "")[:120]
    for number, open_page in enumerate(pages):
        target = FAILURE_ARTIFACTS / f"{stem}-{number}"
        try:
            open_page.screenshot(path=str(target.with_suffix(".png")), full_page=True, timeout=15000)
            saved.append(target.with_suffix(".png"))
            text = f"URL: {open_page.url}\n\n{open_page.inner_text('body', timeout=5000)}"
            target.with_suffix(".txt").write_text(text)
            saved.append(target.with_suffix(".txt"))
        except Exception as exc:  # a closed or hung page must not hide the test's own failure
            target.with_suffix(".txt").write_text(f"could not capture {open_page.url}: {exc}")
            saved.append(target.with_suffix(".txt"))
    return saved


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and report.when in ("setup", "call") and not hasattr(report, "wasxfail"):
        reason = _required(item)
        if reason:
            report.outcome = "failed"
            report.longrepr = f"{reason}, but this test was skipped: {report.longrepr}"
    if report.failed and report.when == "call" and item.get_closest_marker("browser"):
        saved = _save_pages(item)
        if saved:
            report.sections.append(("failure artifacts", "\n".join(str(path) for path in saved)))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001 — pytest's hook signature
    """How many browser and real-data tests ran, passed and were skipped: CI's log shows that they ran."""
    for marker, label in (("real_data", "real-data"), ("browser", "browser")):
        counts = {"passed": 0, "failed": 0, "skipped": 0}
        for outcome in counts:
            for report in terminalreporter.stats.get(outcome, []):
                if marker in getattr(report, "keywords", {}) and report.when in ("call", "setup"):
                    counts[outcome] += 1
        terminalreporter.write_line(
            f"{label} tests: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        )
