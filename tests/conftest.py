"""Shared fixtures: the sample workspace (built once per run), a dashboard server, the browser.
Plain helpers live in tests/helpers.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.helpers import CHROMIUM, require_browser, serve_dashboard

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample workspace with its embeddings prepared, as `make run` leaves it. Tests must not write into it."""
    from analysis.embeddings import prepare
    from analysis.workspace import load_workspace
    from data_samples.build import build_sample

    directory = build_sample(tmp_path_factory.mktemp("sample") / "ws")
    prepare(load_workspace(directory), progress=False, log=lambda message: None)
    return directory


@pytest.fixture()
def sample_copy(sample_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the prepared sample (without verdicts) for tests that write into the workspace."""
    target = tmp_path / "ws"
    shutil.copytree(sample_dir, target, ignore=shutil.ignore_patterns("reviews.sqlite*", "*.lock"))
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
