"""The one exception type for problems the user can fix.

The CLI prints its message as one line and exits 2; the dashboard shows it in an error box.
Every message names the file, column or row at fault and says how to fix it.
"""

from __future__ import annotations

from pathlib import Path


class AuditInputError(Exception):
    """Bad input from the user: a manifest, a config value, a path, an embeddings file."""

    def __init__(self, message: str, *, path: Path | str | None = None, fix: str | None = None) -> None:
        parts = [f"{path}: {message}" if path is not None else message]
        if fix:
            parts.append(f"Fix: {fix}")
        super().__init__(" ".join(parts))
