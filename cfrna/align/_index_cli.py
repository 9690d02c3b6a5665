"""``cfrna index``: build (or reuse) the aligner index of a FASTA + GTF, cached by content hash.

Argument parsing only: the stage is :func:`cfrna.align.stage.run_index`.
"""

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
    from cfrna.align.stage import IndexSettings, run_index
    from cfrna.pipeline.stages import settings_from

    res = run_index(fasta=args.fasta, gtf=args.gtf, outdir=args.outdir, settings=settings_from(IndexSettings, args))
    print(res.outputs["index"])
    return 0
