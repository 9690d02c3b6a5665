"""``cfrna align``: spliced alignment of one sample to a sorted, indexed BAM (mappy or STAR).

Argument parsing only: the stage is :func:`cfrna.align.stage.run_align`.
"""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    from cfrna.align import STRANDEDNESS
    from cfrna.align.index import ALIGNERS

    parser.add_argument("--fasta", required=True, help="genome FASTA (plain or gzip)")
    parser.add_argument("--gtf", default=None,
                        help="annotation GTF (junctions, strandedness inference); strongly recommended")
    parser.add_argument("--fastq-1", required=True, help="read 1 FASTQ")
    parser.add_argument("--fastq-2", default=None, help="read 2 FASTQ for paired-end")
    parser.add_argument("--sample", required=True, help="sample id (output prefix)")
    parser.add_argument("--aligner", choices=ALIGNERS, default="mappy", help="aligner (default: %(default)s)")
    parser.add_argument("--index", default=None,
                        help="index folder from 'cfrna index', or a cache folder to build/reuse it in "
                             "(default: $CFRNA_INDEX_CACHE or ~/.cache/cfrna/index)")
    parser.add_argument("--strandedness", choices=STRANDEDNESS, default="auto",
                        help="declared library strandedness (default: %(default)s = inferred)")
    parser.add_argument("--star-two-pass", dest="two_pass", action="store_true", help="STAR --twopassMode Basic")
    parser.add_argument("--no-junctions", dest="junctions", action="store_false",
                        help="mappy: do not use the GTF's annotated junctions")
    parser.add_argument("--junction-scoring", action="store_true",
                        help="mappy: also score annotated splice sites (minimap2 --junc-bed; ~1.5x the mapping "
                             "CPU, a few alignments in 10,000 change)")
    parser.add_argument("--threads", type=int, default=1, help="threads (default: %(default)s)")
    parser.add_argument("--outdir", required=True, help="output folder, e.g. O/alignment")


def run(args: argparse.Namespace) -> int:
    from cfrna.align.stage import AlignSettings, run_align
    from cfrna.io.samplesheet import check_sample_id
    from cfrna.pipeline.stages import settings_from

    check_sample_id(args.sample, args.outdir)
    res = run_align(sample=args.sample, fastq_1=args.fastq_1, fastq_2=args.fastq_2, fasta=args.fasta, gtf=args.gtf,
                    index=args.index, strandedness=args.strandedness, outdir=args.outdir,
                    settings=settings_from(AlignSettings, args))
    print(json.dumps(res.summary, sort_keys=True))
    return 0
