"""``cfrna report --results O [--title T]``: write O/report/index.html (and O/matrix/cfrna.h5ad)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", required=True, type=Path, metavar="O", help="the run's output folder (--outdir of cfrna run)")
    parser.add_argument("--title", default=None, help="title shown in the report (default: the run's title, else the trial/study column of the samples, "
                        "else the samplesheet name)")
    parser.add_argument("--no-anndata", action="store_true", help="do not write matrix/cfrna.h5ad")
    parser.add_argument("--threads", type=int, default=1, help="accepted for uniformity; the report is single-threaded")


def run(args: argparse.Namespace) -> int:
    from cfrna.report import run_report

    out = run_report(args.results, title=args.title, anndata=not args.no_anndata)
    print(out)
    return 0
