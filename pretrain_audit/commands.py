"""The workspace commands: sample, init, prepare, dashboard, verdicts, report and check."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.distributed import add_scheduler_argument
from analysis.embeddings import DEFAULT_BATCH_SIZE, default_workers
from pretrain_audit.output import emit, log

Handler = Callable[[argparse.Namespace], int]


def workspace_command(
    sub: Any, name: str, help: str, handler: Handler, *, json: bool = True
) -> argparse.ArgumentParser:
    """A subcommand on a workspace DIR, with `--json` unless it prints no report; `help` is its line in the
    command list and the first line of its own --help."""
    parser = sub.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")
    parser.add_argument("dir", type=Path)
    if json:
        parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=handler)
    return parser


def cmd_sample(args: argparse.Namespace) -> int:
    from data_samples.build import build_sample

    build_sample(args.dir, progress=True)
    log(f"Synthetic sample workspace written to {args.dir}. Next: pretrain-audit dashboard {args.dir}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from analysis.workspace import init_workspace

    def from_shell(value: str) -> Path:
        """Paths on the command line mean what the shell means: relative to the current directory."""
        return Path(value).expanduser().absolute()

    workspace = init_workspace(
        args.dir,
        original=from_shell(args.original),
        filtered=args.filtered and from_shell(args.filtered),
        kept_column=args.kept_column,
        scores=args.score,
        laion=args.laion_filters,
        images_root=args.images_root and from_shell(args.images_root),
        generated=args.generated and from_shell(args.generated),
        name=args.name,
        captions=args.captions,
    )
    log(
        f"Workspace '{workspace.config.name}' written to {workspace.config.config_path}: "
        f"{workspace.n_original} original rows, {workspace.n_kept} kept, {workspace.n_removed} removed"
        + (f", {workspace.n_generated} generated" if workspace.generated is not None else "")
        + "."
        + ("" if workspace.config.filtered.defined else " No filter defined: duplicates and regurgitation only.")
    )
    for line in workspace.config.filtered.describe():
        log(f"  {line}")
    if args.laion_filters:
        from analysis.filter_spec import laion_filters

        for missing in laion_filters(list(workspace.original.columns))[1]:
            log(f"  not applied (no such column): LAION filter {missing}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    import dashboard

    directory = args.dir.resolve()
    os.environ["PRETRAIN_AUDIT_WORKSPACE"] = str(directory)
    shared = None
    if not args.no_warm:
        from dashboard.state import shared_workspace, silence_bare_mode_notices

        silence_bare_mode_notices()
        # Fails here, with one line, rather than in the browser; loaded into the cache the sessions share
        shared = shared_workspace(directory)
    else:
        from analysis.registry import open_workspace

        open_workspace(directory)  # fail here, with one line, rather than in the browser
    app = Path(dashboard.__file__).resolve().parent / "app.py"
    address = f"  open http://localhost:{args.port}  (Ctrl+C to stop)"
    if shared is None:
        log(f"pretrain-audit dashboard on {directory}\n{address}")
    else:
        import threading

        from dashboard.warm import warm_when_serving

        # The address comes once every page's first view is computed, so the first look at any page waits for
        # nothing (a verified dedup takes a while the first time; later starts load it from the cache).
        log(f"pretrain-audit dashboard on {directory}\n  computing each page's first view; the address follows…")
        threading.Thread(
            target=warm_when_serving, args=(directory, log, lambda: log(address)), daemon=True, name="warm"
        ).start()
    # Streamlit's own CLI, in this process: the warm-up fills the caches its sessions share, and a signal to this
    # process (Ctrl+C, a supervisor's SIGTERM) stops the server.
    from streamlit.web import cli as streamlit_cli

    sys.argv = [
        "streamlit",
        "run",
        str(app),
        f"--server.port={args.port}",
        f"--server.address={args.address}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
        "--theme.base=light",
        "--server.fileWatcherType=none",
        "--client.toolbarMode=minimal",
        # The address is printed by us, once the first views are computed: not Streamlit's, nor its server log.
        "--logger.hideWelcomeMessage=true",
        "--logger.level=warning",
        "--",
        "--workspace",
        str(directory),
    ]
    try:
        streamlit_cli.main()
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from analysis.distributed import offloaded
    from analysis.embedding_store import load_embeddings
    from analysis.embeddings import prepare
    from analysis.registry import open_workspace

    workspace = open_workspace(args.dir)
    with offloaded(args.scheduler, workspace.config.scheduler, log, None, workspace.config.task_rows) as offload:
        outputs = prepare(
            workspace,
            args.embedder,
            workers=args.workers,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            chunk_rows=args.chunk_rows,
            offload=offload,
        )
    summary = {}
    for which in outputs:
        found = load_embeddings(workspace, which, args.embedder)
        assert found is not None
        summary[which] = {
            "n_rows": int(len(found.valid)),
            "n_embedded": int(found.valid.sum()),
            "n_skipped": found.n_missing,
            "skipped_by_reason": found.meta.get("skipped_by_reason", {}),
            "embedder": found.meta["embedder"],
            "dim": found.meta["dim"],
        }
    if args.json:
        emit(summary, [])
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from analysis.filter_spec import parse_score_option, with_score_filter
    from analysis.registry import open_workspace
    from analysis.scoring.compute import score_workspace
    from analysis.scoring.models import get_scorer
    from analysis.scoring.ordinary_rates import rates_to_expect
    from analysis.workspace import update_config

    workspace = open_workspace(args.dir)
    run = score_workspace(workspace, get_scorer(args.model, args.threads), progress=not args.no_progress, log=log)
    lines = [
        f"{args.model}: {run.n_scored:,} of {run.n_rows:,} images scored ({run.n_computed:,} computed now, the rest "
        f"from the cache) in {run.seconds:.1f} s; written to {run.path}",
        *[f"  not scored: {reason}: {count:,}" for reason, count in run.skipped_by_reason.items()],
    ]
    if args.score:
        added = parse_score_option(args.score)
        workspace = update_config(workspace.config.root, lambda body: with_score_filter(body, added))
        lines.append(f"filter {added.name} ({added.rule}) added: {workspace.n_removed:,} rows removed in all")
    expected = rates_to_expect(args.model, workspace.config.filtered.scores)
    lines += [rate.sentence() for rate in expected]
    emit({**run.to_json(), "on_ordinary_photos": [rate.to_json() for rate in expected]} if args.json else None, lines)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from analysis.registry import open_workspace
    from analysis.report import write_report

    workspace = open_workspace(args.dir)
    out = write_report(
        workspace,
        Path(args.out),
        terms=args.terms.split(",") if args.terms else None,
        figures_dir=Path(args.figures) if args.figures else None,
        paper=args.paper,
    )
    log(f"report written to {out}" + (f"; figures in {args.figures}" if args.figures else ""))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from analysis.exports import contamination_reasons, dedup_keep_list, export_frame, write_croissant, write_export
    from analysis.registry import open_workspace

    workspace = open_workspace(args.dir)
    if args.what == "croissant":
        out = write_croissant(workspace, Path(args.out))
        lines = [f"Croissant 1.0 description with the audit's RAI fields written to {out}"]
        emit({"export": args.what, "out": str(out)} if args.json else None, lines)
        return 0
    duplicates = dedup_keep_list(workspace, log) if args.with_duplicates and args.what == "removals" else None
    contamination = (
        contamination_reasons(workspace, log) if args.with_contamination and args.what == "removals" else None
    )
    frame = export_frame(workspace, args.what, duplicates, contamination)
    out = write_export(frame, Path(args.out))
    if args.what == "removals":
        hashed = int((frame["sha256"] != "").sum())
        by_extra = ", ".join(
            f"{int(frame[column].sum()):,} {what}"
            for column, what in (("filter:duplicates", "by dedup"), ("filter:contamination", "holding evaluation data"))
            if column in frame
        )
        lines = [
            f"removal list: {len(frame):,} removed items of {workspace.n_original:,}"
            + (f" ({by_extra})" if by_extra else "")
            + ", each with its "
            f"reasons, written to {out}",
            f"sha256 and PDQ hash for {hashed:,} of them"
            + ("" if hashed == len(frame) else " (the rest: no image, or run `pretrain-audit prepare DIR` first)"),
        ]
    else:
        lines = [f"keep-list for img2dataset: {len(frame):,} kept items (url, caption, key) written to {out}"]
    emit({"export": args.what, "out": str(out), "rows": len(frame)} if args.json else None, lines)
    return 0


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def cmd_cache(args: argparse.Namespace) -> int:
    """List the workspace's cached results, or remove the kinds named by --clean (never verdicts or labels)."""
    from analysis.cache_inventory import cached_kinds, clean_cache
    from analysis.registry import open_workspace

    workspace = open_workspace(args.dir)
    if args.clean:
        removed = clean_cache(workspace, args.clean)
        lines = [f"removed {kind.name}: {kind.files:,} files, {_size(kind.bytes)}" for kind in removed]
        lines.append("computed again when next needed; verdicts, labels and score files were not touched")
        emit({"removed": [kind.to_json() for kind in removed]} if args.json else None, lines)
        return 0
    kinds = cached_kinds(workspace)
    lines = [
        f"{kind.name:<14} {_size(kind.bytes):>10}  {kind.files:>7,} files  "
        f"{kind.modified:%Y-%m-%d %H:%M} UTC  {kind.what}; to recompute: {kind.recompute}"
        for kind in kinds
        if kind.modified is not None
    ] or [f"nothing cached in {workspace.config.cache_dir}"]
    if kinds:
        lines.append(f"total {_size(sum(kind.bytes for kind in kinds))}; remove with --clean NAME (or --clean all)")
    emit(
        {"cache": str(workspace.config.cache_dir), "kinds": [kind.to_json() for kind in kinds]} if args.json else None,
        lines,
    )
    return 0


EXIT_GATE_FAILED = 1
EXIT_INSUFFICIENT_DATA = 3


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when every gate passed; 1 when one failed or could not be measured; 3 when none failed but one
    rests on too few observations to judge (documented in docs/cli.md)."""
    from analysis.errors import AuditInputError
    from analysis.gates import configured_gate_options, gates_of, overall_status
    from analysis.registry import open_workspace

    workspace = open_workspace(args.dir)
    gates = gates_of(workspace, args) or gates_of(workspace, configured_gate_options(workspace))
    if not gates:
        raise AuditInputError(
            "no gate given.",
            fix="add e.g. --max-regurgitation-rate 0.01 or --max-term-shift woman=0.05, or set them in [gates] of "
            "audit.toml.",
        )
    statuses = [g.status(args.allow_unmeasured) for g in gates]
    lines = []
    for gate, status in zip(gates, statuses):
        measured = "n/a" if gate.measured is None else f"{gate.measured:.4f}"
        line = f"{status.upper()} {gate.name}: measured {measured} (limit {gate.limit:g}) — {gate.detail}"
        if gate.unmeasured:
            line += f" — unmeasured: {gate.unmeasured}" + (
                " (judged on the rest: --allow-unmeasured)"
                if args.allow_unmeasured and gate.measured is not None
                else "; rerun with --allow-unmeasured to judge on what was read"
            )
        if status == "insufficient data":
            line += " — too few observations to judge; never counted as a pass"
        lines.append(line)
    overall, count = overall_status(statuses)
    if overall == "fail":
        code, verdict = EXIT_GATE_FAILED, f"{count} gate(s) failed or could not be measured"
    elif overall == "insufficient data":
        code, verdict = EXIT_INSUFFICIENT_DATA, f"{count} gate(s) had insufficient data; none failed"
    else:
        code, verdict = 0, "all gates passed"
    lines.append(verdict)
    payload = {
        "passed": code == 0,
        "status": {0: "pass", EXIT_GATE_FAILED: "fail", EXIT_INSUFFICIENT_DATA: "insufficient data"}[code],
        "exit_code": code,
        "gates": [g.to_json(args.allow_unmeasured) for g in gates],
    }
    emit(payload if args.json else None, lines)
    return code


def add_workspace_commands(sub: Any) -> None:
    workspace_command(sub, "sample", "write the synthetic sample workspace", cmd_sample, json=False)

    p = workspace_command(sub, "init", "create audit.toml for your own data and validate it", cmd_init, json=False)
    p.add_argument(
        "--original",
        required=True,
        help="original manifest (Parquet, CSV, TSV or JSONL, optionally .gz); paths are relative to the current "
        "directory",
    )
    p.add_argument(
        "--filtered",
        help="manifest of the ids the filters kept (omit every filter option to audit "
        "one dataset: duplicates and regurgitation)",
    )
    p.add_argument("--kept-column", help="boolean column of the original manifest: true = kept")
    p.add_argument(
        "--score",
        action="append",
        metavar="NAME=COLUMN:[>=|<]T",
        help="score filter: a row is removed when COLUMN >= T (COLUMN:T or COLUMN:>=T) or when COLUMN < T "
        "(COLUMN:<T, for scores that mark what to keep); repeatable",
    )
    p.add_argument(
        "--laion-filters",
        action="store_true",
        help="LAION's published filters for the columns present: similarity < 0.28, aesthetic < 5, punsafe >= 0.5, "
        "pwatermark >= 0.8 are removed",
    )
    p.add_argument("--images-root", help="directory that image paths are relative to (default: DIR)")
    p.add_argument("--generated", help="manifest of generated samples (id, image, prompt, optional source_id)")
    p.add_argument("--name", help="workspace name shown in the dashboard and reports")
    p.add_argument(
        "--captions",
        choices=("first", "join", "rows"),  # analysis.manifests.CAPTION_CHOICES (not imported: --help stays light)
        help="several rows (captions) per image, as COCO and Flickr ship them: keep each image's first caption, "
        "join its captions into one, or keep one row per caption (ids IMAGE#1, IMAGE#2, ...). Without an id "
        "column the image path is the id",
    )

    p = workspace_command(sub, "prepare", "compute and cache image embeddings (resumable, with progress)", cmd_prepare)
    p.add_argument("--embedder", help="effnet-lite0 (default) | open_clip:MODEL:PRETRAINED | precomputed:PATH")
    p.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="image decoding processes (default: cores − 1, at least 1; bench/embedding_throughput.py)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"images per model pass (default {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument("--chunk-rows", type=int, default=512, help="rows per resumable chunk (default 512)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_scheduler_argument(p)

    p = workspace_command(
        sub, "score", "run an image scorer (open-nsfw) over every image; cached, resumable; adds a score", cmd_score
    )
    p.add_argument("--model", default="open-nsfw", help="the scorer (default open-nsfw: Yahoo open_nsfw, offline)")
    p.add_argument(
        "--score",
        metavar="NAME=COLUMN:[>=|<]T",
        help="also add a filter on the new score to audit.toml, e.g. --score nsfw=open-nsfw:0.8",
    )
    p.add_argument("--threads", type=int, help="onnxruntime threads (default: all cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = workspace_command(sub, "dashboard", "start the dashboard on a workspace (localhost)", cmd_dashboard, json=False)
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="localhost", help="bind address (default localhost; see docs/serving.md)")
    p.add_argument(
        "--no-warm",
        action="store_true",
        help="do not load the workspace and each page's first view before the first visit (saves memory at start)",
    )


def add_report_commands(sub: Any) -> None:
    """verdicts, report and check: they come after the analyses, whose results they gather."""
    from analysis.registry import ANALYSES
    from pretrain_audit.verdicts import add_verdict_commands

    add_verdict_commands(sub, workspace_command)

    p = workspace_command(
        sub, "report", "self-contained HTML (or PDF) audit report with provenance", cmd_report, json=False
    )
    p.add_argument("--out", required=True, help="report.html or report.pdf")
    p.add_argument("--figures", help="also write every chart as PNG and SVG into this directory")
    p.add_argument("--terms", help="comma-separated words for the bias sections (default: the workspace's terms)")
    p.add_argument("--paper", choices=("a4", "letter"), default="a4", help="paper size of a PDF (default a4)")

    p = workspace_command(
        sub,
        "export",
        "what others can act on: the removal list (Re-LAION style), an img2dataset keep-list, a Croissant description",
        cmd_export,
    )
    p.add_argument(
        "--what",
        choices=("removals", "keep", "croissant"),
        required=True,
        help="the removal list, the keep-list, or the dataset's Croissant description with the audit's RAI fields",
    )
    p.add_argument("--out", required=True, help="a .csv or .parquet file (croissant: a .json file)")
    p.add_argument(
        "--with-duplicates",
        action="store_true",
        help="removals: also list the images dedup removes (its default, verified on pixels), with group and kept copy",
    )
    p.add_argument(
        "--with-contamination",
        action="store_true",
        help="removals: also list the training items that hold a copy of an [[eval]] set's image or caption",
    )

    p = workspace_command(
        sub,
        "cache",
        "list the workspace's cached results (what, size, when) and remove them with --clean NAME",
        cmd_cache,
    )
    p.add_argument(
        "--clean",
        action="append",
        metavar="NAME",
        help="remove this kind of cached result (repeatable; `all` for every kind); it is computed again when "
        "needed. Verdicts, labels and score files are never touched",
    )

    p = workspace_command(
        sub,
        "check",
        "pass/fail gates for a training pipeline (exit 1: a gate failed or was unmeasured; 3: insufficient data)",
        cmd_check,
    )
    p.add_argument(
        "--allow-unmeasured",
        action="store_true",
        help="judge a gate whose input was partly unreadable on the part that was read (default: such a gate fails)",
    )
    for analysis in ANALYSES:
        analysis.add_gate_arguments(p)
