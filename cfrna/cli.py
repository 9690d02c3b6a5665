"""Command-line interface: ``main(argv) -> int`` is testable in-process; ``main_cli`` is the entry point.

Each subcommand lives in the package that does the work, in a module exposing
``configure(parser)`` (adds arguments) and ``run(args) -> int``. This file only dispatches and
maps errors to exit codes (0 ok, 1 bad data, 2 usage/config, 130 interrupted).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from cfrna import __version__
from cfrna.errors import CfrnaError

log = logging.getLogger("cfrna")

#: subcommand -> (module with configure/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("cfrna.simulate._cli", "write a synthetic cfRNA trial cohort with its truth"),
    "validate": ("cfrna.pipeline._validate_cli", "check samplesheet, contrasts and GTF; print samples per contrast"),
    "index": ("cfrna.align._index_cli", "build (or reuse) the aligner index for a FASTA + GTF"),
    "trim": ("cfrna.trim._cli", "trim adapters and low-quality ends (cutadapt), read-level QC"),
    "align": ("cfrna.align._cli", "spliced alignment to a sorted, indexed BAM (mappy or STAR)"),
    "count": ("cfrna.count._cli", "featureCounts-exact gene counts from a BAM (numba)"),
    "qc": ("cfrna.qc._cli", "cfRNA QC metrics, pass/warn/fail gates and MultiQC files"),
    "matrix": ("cfrna.matrix._cli", "merge per-sample counts into the gene matrix and sample table"),
    "de": ("cfrna.de._cli", "differential expression per contrast (pydeseq2)"),
    "pathways": ("cfrna.pathways._cli", "GSEA prerank per contrast and per-sample signature scores"),
    "report": ("cfrna.report._cli", "the self-contained HTML report and the final AnnData"),
    "provenance": ("cfrna.pipeline._provenance_cli", "pipeline_info: params, software versions, input checksums"),
    "run": ("cfrna.pipeline._cli", "run the whole workflow in-process"),
    "demo": ("cfrna.pipeline._demo_cli", "simulate a tiny cohort and run the workflow on it"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cfrna",
        description="Plasma cell-free RNA sequencing: reads to QC-gated gene counts, differential expression "
                    "and pathway signatures. `cfrna demo` runs the whole workflow on a tiny simulated cohort.",
        epilog="Exit codes: 0 success, 1 bad input data, 2 usage or configuration error, 130 interrupted.")
    parser.add_argument("--version", action="version", version=f"cfrna {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if only is None or only == name:
            importlib.import_module(module).configure(p)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record is emitted, not as it was at set-up.

    ``main()`` may run many times in one process (tests, notebooks, ``cfrna run`` calling stages);
    a handler holding an old ``sys.stderr`` would write to a stream that may be closed by then.
    """

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # StreamHandler.__init__ assigns it; the property decides
        pass


def _setup_logging(*, debug: bool, quiet: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s" if debug else "%(message)s"))
    root = logging.getLogger("cfrna")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; return the exit code instead of exiting."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=command if command in COMMANDS else "")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage error (2) or --help/--version (0)
        return int(exc.code or 0)
    _setup_logging(debug=args.debug, quiet=args.quiet)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except CfrnaError as exc:
        if args.debug:
            log.exception("error")
        print(f"cfrna {args.command}: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"cfrna {args.command}: interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        if args.debug:
            log.exception("error")
        msg = f"{exc.filename}: {exc.strerror} (check the path)" if exc.filename else str(exc)
        print(f"cfrna {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except OSError as exc:
        if args.debug:
            log.exception("error")
        msg = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        print(f"cfrna {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except EOFError as exc:
        print(f"cfrna {args.command}: error: unexpected end of file ({exc}); the input is truncated", file=sys.stderr)
        return 1


def main_cli() -> None:
    """Console-script entry point."""
    sys.exit(main())
