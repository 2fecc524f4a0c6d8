"""`pretrain-audit`: the command line. Every number on the dashboard can also be had here.

Contract (docs/cli.md): `--json` prints one JSON object on stdout and nothing else there; progress
goes to stderr; a user error exits 2 with one line on stderr naming what is wrong and how to fix it.
The analysis commands are built from `analysis.registry.ANALYSES`; the workspace commands are in
`pretrain_audit.commands`.
"""

from __future__ import annotations

import argparse
import sys

from analysis import __version__
from analysis.contract import Analysis
from analysis.errors import AuditInputError
from analysis.registry import ANALYSES
from pretrain_audit import commands
from pretrain_audit.output import emit, log
from pretrain_audit.verdicts import with_default_action

EXIT_USER_ERROR = 2


def analysis_command(analysis: Analysis):
    """The handler of an analysis's subcommand: load the workspace, run, write its files, print."""

    def handler(args: argparse.Namespace) -> int:
        from analysis.registry import open_workspace

        workspace = open_workspace(args.dir)
        missing = analysis.missing_input(workspace)
        if missing:
            raise AuditInputError(f"{missing[0]}.", path=args.dir, fix=missing[1])
        result = analysis.run(workspace, analysis.params_from_cli(workspace, args), log)
        for message in analysis.write_outputs(workspace, result, args):
            log(message)
        emit(analysis.to_json(result) if args.json else None, analysis.summary_lines(result))
        return 0

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pretrain-audit", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"pretrain-audit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_workspace_commands(sub)
    for analysis in ANALYSES:
        command = commands.workspace_command(sub, analysis.name, analysis.help, analysis_command(analysis))
        analysis.add_arguments(command)
    commands.add_report_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(with_default_action(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.handler(args) or 0)
    except AuditInputError as exc:
        print(f"pretrain-audit: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # output piped into `head` and the like: not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("pretrain-audit: interrupted; finished artifacts are kept and a rerun resumes.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
