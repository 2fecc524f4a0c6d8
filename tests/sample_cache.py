"""A developer's copy of the prepared sample kept between test runs, so that `make test-fast` does not build,
embed and map the same 1,100 images again when nothing they depend on changed (~45 s of its ~5 min).

What the prepared sample depends on is known from the code: every module reachable by an import statement
(top-level or inside a function) from the sample's builder, `prepare` and the map, every file of `data_samples/`,
the installed distributions and the Python version. The key is a hash of all of them, so an edit to any of those
files, or a package upgrade, builds the sample again; an edit elsewhere (a page, dedup, a test) reuses it. Only
what those modules compute is kept (the workspace, its embeddings, PDQ hashes and map), never the results of the
analyses the warm-up computes after it.

Never used in CI (`CI` set) or with PRETRAIN_AUDIT_TEST_CACHE=0: CI builds everything from nothing.
"""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import sys
import uuid
from importlib import metadata
from pathlib import Path

from tests.helpers import REPO

CACHE_ROOT = REPO / ".test-cache"
SAMPLE_INPUTS = ["data_samples.build", "analysis.embeddings", "analysis.concepts.cached"]  # build, prepare, map
KEPT = 2  # keys kept: switching between two branches does not rebuild every time


def enabled() -> bool:
    return not os.environ.get("CI") and os.environ.get("PRETRAIN_AUDIT_TEST_CACHE", "1") != "0"


def _module_file(name: str) -> Path | None:
    base = REPO / Path(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def source_closure(modules: list[str]) -> list[Path]:
    """The repository's modules reachable from `modules` through any import statement, lazy ones included."""
    seen: set[Path] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        found = _module_file(name)
        if found is None or found in seen:
            continue
        seen.add(found)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # importing a module runs its packages
        for node in ast.walk(ast.parse(found.read_text())):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = parts if found.name == "__init__.py" else parts[:-1]
                    package = package[: len(package) - node.level + 1]
                    base = ".".join([*package, base] if base else package)
                todo += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return sorted(seen)


def inputs_key(modules: list[str]) -> str:
    digest = hashlib.sha256(sys.version.encode())
    files = set(source_closure(modules)) | {p for p in (REPO / "data_samples").rglob("*") if p.is_file()}
    for path in sorted(files):
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    installed = sorted(f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions())
    digest.update("\n".join(installed).encode())
    return digest.hexdigest()[:16]


def restore(key: str, directory: Path) -> bool:
    """The kept workspace copied to `directory`; False when none is kept under this key."""
    kept = CACHE_ROOT / key
    if not (kept / "complete").is_file():
        return False
    shutil.copytree(kept / "ws", directory)
    os.utime(kept)  # most recently used: pruned last
    return True


def store(key: str, directory: Path) -> None:
    """Keep a copy of `directory` under `key` (written aside, then renamed: a killed run leaves no half copy)."""
    CACHE_ROOT.mkdir(exist_ok=True)
    (CACHE_ROOT / ".gitignore").write_text("*\n")
    staging = CACHE_ROOT / f".staging-{uuid.uuid4().hex}"
    shutil.copytree(directory, staging / "ws", ignore=shutil.ignore_patterns("*.lock"))
    (staging / "complete").touch()
    try:
        staging.rename(CACHE_ROOT / key)
    except OSError:  # another run stored the same key first
        shutil.rmtree(staging, ignore_errors=True)
    kept = sorted(
        (p for p in CACHE_ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in kept[KEPT:]:
        shutil.rmtree(old, ignore_errors=True)
