"""``cfrna index``: build (or reuse) the aligner index of a FASTA + GTF, cached by content hash."""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from cfrna.align.index import ALIGNERS

    parser.add_argument("--fasta", required=True, help="genome FASTA (plain or gzip)")
    parser.add_argument("--gtf", default=None, help="annotation GTF (annotated junctions)")
    parser.add_argument("--aligner", choices=ALIGNERS, default="mappy", help="aligner (default: %(default)s)")
    parser.add_argument("--outdir", required=True, help="cache folder; the index goes to OUTDIR/<aligner>-<hash>/")
    parser.add_argument("--sjdb-overhang", type=int, default=100,
                        help="STAR --sjdbOverhang = read length - 1 (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="threads (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from cfrna.align.index import build_index

    path = build_index(args.fasta, args.gtf, args.outdir, aligner=args.aligner, threads=args.threads,
                       sjdb_overhang=args.sjdb_overhang)
    print(path)
    return 0
