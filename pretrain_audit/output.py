"""How commands print: one JSON object on stdout with --json, else text lines; progress on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(payload: Any | None, lines: list[str]) -> None:
    """The JSON payload when given (the --json contract: one object on stdout, nothing else), else the lines."""
    if payload is not None:
        sys.stdout.write(json.dumps(payload, indent=2, allow_nan=False) + "\n")
    else:
        print("\n".join(lines))
