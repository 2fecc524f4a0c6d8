"""Analysis subcommands of the CLI (removals, bias, ...), kept apart from the workspace commands."""

from __future__ import annotations

import argparse
from typing import Any, Callable

REGISTRY: list[Callable[[Any], None]] = []
