"""Test helpers shared by test modules (fixtures live in conftest.py): paths, manifests, the CLI, the browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO.parent / "shared" / "real"
ARTIFACTS = REPO / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CLI = [sys.executable, "-m", "pretrain_audit.cli"]


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
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd or REPO, timeout=600)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def require_browser() -> None:
    if not Path(CHROMIUM).exists():
        message = "Debian chromium is not installed (apt-get install chromium)"
        if os.environ.get("PRETRAIN_AUDIT_REQUIRE_BROWSER"):
            pytest.fail(f"{message}; browser tests are required in CI")
        pytest.skip(message)


def wait_for_app(page, timeout_ms: int = 30000) -> None:
    """Wait until Streamlit has finished running the script (no 'running' status widget)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')"
        " && Array.from(document.images).every(i => i.complete)"
        " && document.querySelectorAll('[data-testid=\"stMainBlockContainer\"] *').length > 5",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(800)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sharpness(image) -> float:
    """High-frequency energy (mean squared Laplacian of the greyscale at 128×128): how a test tells a blurred
    image from a sharp one by its pixels, whatever size it was served at."""
    import numpy as np

    grey = np.asarray(image.convert("L").resize((128, 128)), dtype=np.float32)
    laplacian = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float((laplacian**2).mean())


def is_blurred(shown, original, ratio: float = 0.1) -> bool:
    """`shown` keeps less than `ratio` of the original's fine detail (our blur keeps under 2% on the sample)."""
    return sharpness(shown) < ratio * sharpness(original)


@contextmanager
def serve_dashboard(workspace: Path) -> Iterator[str]:
    """`pretrain-audit dashboard` on a workspace, as a user starts it; yields its URL once it answers."""
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "dashboard", str(workspace), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    url = f"http://localhost:{port}"
    deadline = time.monotonic() + 60
    try:
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
    finally:
        process.terminate()
        process.wait(timeout=20)
