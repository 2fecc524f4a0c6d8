"""`pretrain-audit`: the command line. Every number on the dashboard can also be had here.

Contract (docs/cli.md): `--json` prints one JSON object on stdout and nothing else there; progress
goes to stderr; a user error exits 2 with one line on stderr naming what is wrong and how to fix it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from analysis import __version__
from analysis.errors import AuditInputError

EXIT_USER_ERROR = 2


def _print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, allow_nan=False) + "\n")


def cmd_sample(args: argparse.Namespace) -> int:
    from data_samples.build import build_sample

    build_sample(Path(args.dir), progress=True)
    print(f"Synthetic sample workspace written to {args.dir}. Next: pretrain-audit dashboard {args.dir}", file=sys.stderr)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from analysis.workspace import init_workspace

    workspace = init_workspace(Path(args.dir), original=args.original, filtered=args.filtered,
                               kept_column=args.kept_column, scores=args.score, images_root=args.images_root,
                               generated=args.generated, name=args.name)
    print(f"Workspace '{workspace.config.name}' written to {workspace.config.config_path}: "
          f"{workspace.n_original} original rows, {workspace.n_kept} kept, {workspace.n_removed} removed"
          + (f", {workspace.n_generated} generated" if workspace.generated is not None else "") + ".", file=sys.stderr)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from analysis.workspace import load_workspace

    directory = Path(args.dir).resolve()
    load_workspace(directory)  # fail here, with one line, rather than inside the browser
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    url = f"http://localhost:{args.port}"
    print(f"pretrain-audit dashboard on {directory}\n  open {url}  (Ctrl+C to stop)", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "streamlit", "run", str(app),
               f"--server.port={args.port}", f"--server.address={args.address}", "--server.headless=true",
               "--browser.gatherUsageStats=false", "--theme.base=light", "--server.fileWatcherType=none",
               "--client.toolbarMode=minimal", "--", "--workspace", str(directory)]
    environment = dict(os.environ, PRETRAIN_AUDIT_WORKSPACE=str(directory))
    sys.stderr.flush()
    # Replace this process with Streamlit, so that a signal to it (Ctrl+C, a supervisor's SIGTERM) stops the server.
    os.execve(sys.executable, command, environment)
    return 0  # pragma: no cover


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pretrain-audit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pretrain-audit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("sample", help="write the synthetic sample workspace")
    p.add_argument("dir", help="directory to create (must be new or empty)")
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("init", help="create audit.toml for your own data and validate it")
    p.add_argument("dir", help="workspace directory (created if missing)")
    p.add_argument("--original", required=True, help="original manifest (Parquet, CSV or JSONL), relative to DIR or absolute")
    p.add_argument("--filtered", help="manifest of the ids the filters kept")
    p.add_argument("--kept-column", help="boolean column of the original manifest: true = kept")
    p.add_argument("--score", action="append", metavar="NAME=COLUMN:THRESHOLD",
                   help="score filter: a row is removed when COLUMN >= THRESHOLD (repeatable)")
    p.add_argument("--images-root", help="directory that image paths are relative to (default: DIR)")
    p.add_argument("--generated", help="manifest of generated samples (id, image, prompt, optional source_id)")
    p.add_argument("--name", help="workspace name shown in the dashboard and reports")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("dashboard", help="start the dashboard on a workspace (localhost)")
    p.add_argument("dir")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="localhost", help="bind address (default localhost; see docs/serving.md)")
    p.set_defaults(handler=cmd_dashboard)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands() -> list[Callable[[Any], None]]:
    """Subcommands contributed by analysis modules (each module owns its CLI wiring)."""
    from analysis import cli_commands

    return cli_commands.REGISTRY


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except AuditInputError as exc:
        print(f"pretrain-audit: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("pretrain-audit: interrupted; finished artifacts are kept and a rerun resumes.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
