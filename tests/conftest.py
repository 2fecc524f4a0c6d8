"""Shared fixtures: the sample workspace (built once per run), small hand-made manifests, the browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO.parent / "shared" / "real"
ARTIFACTS = REPO / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

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


def write_manifest(path: Path, rows: list[dict] | pd.DataFrame) -> Path:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def scene_workspace(root: Path, n: int, size: int) -> Path:
    """A small workspace of `n` drawn scene images (`size` px), all kept, with nothing prepared."""
    import numpy as np

    from analysis.workspace import init_workspace
    from data_samples import drawing

    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    rows = []
    for i in range(n):
        drawing.scene(rng, size).save(root / "img" / f"{i}.png")
        rows.append({"id": f"r{i}", "caption": "x", "image": f"img/{i}.png", "keep": True})
    write_manifest(root / "o.parquet", rows)
    init_workspace(root, original="o.parquet", kept_column="keep")
    return root


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=600)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_browser() -> None:
    if not Path(CHROMIUM).exists():
        message = "Debian chromium is not installed (apt-get install chromium)"
        if os.environ.get("PRETRAIN_AUDIT_REQUIRE_BROWSER"):
            pytest.fail(f"{message}; browser tests are required in CI")
        pytest.skip(message)


@pytest.fixture(scope="session")
def dashboard_url(sample_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """`pretrain-audit dashboard` on a copy of the prepared sample, as a user starts it; yields its URL."""
    require_browser()
    workspace = tmp_path_factory.mktemp("browser") / "ws"
    shutil.copytree(sample_dir, workspace)
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "analysis.cli", "dashboard", str(workspace), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO)
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail(f"dashboard did not start: {process.stdout.read().decode() if process.stdout else ''}")
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="session")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        yield instance
        instance.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    yield page
    context.close()


def wait_for_app(page, timeout_ms: int = 30000) -> None:
    """Wait until Streamlit has finished running the script (no 'running' status widget)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')"
        " && Array.from(document.images).every(i => i.complete)"
        " && document.querySelectorAll('[data-testid=\"stMainBlockContainer\"] *').length > 5",
        timeout=timeout_ms)
    page.wait_for_timeout(800)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
