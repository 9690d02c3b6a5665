"""``cfrna count``: featureCounts-exact gene counts from a BAM.

Argument parsing only: the stage is :func:`cfrna.count.stage.run_count`.
"""

from __future__ import annotations

import argparse

from cfrna.config import DEDUP_MODES, STRANDEDNESS


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``count`` options (featureCounts' short names where they exist)."""
    parser.add_argument("--bam", required=True, help="input BAM (coordinate- or name-sorted)")
    parser.add_argument("--gtf", required=True, help="annotation GTF (plain or .gz)")
    parser.add_argument("--out", required=True, help="output counts TSV (also writes OUT.summary, OUT.stats.json)")
    strand = parser.add_mutually_exclusive_group(required=True)
    strand.add_argument("--strandedness", "-s", choices=STRANDEDNESS,
                        help="library strandedness (featureCounts -s 0/1/2)")
    strand.add_argument("--strandedness-from", metavar="ALIGN_JSON",
                        help="use the strandedness recorded by `cfrna align` (<sample>.align.json: strandedness.used)")
    parser.add_argument("--paired", "-p", action="store_true", help="count read pairs (-p --countReadPairs)")
    parser.add_argument("--min-mapq", "-Q", type=int, default=0, help="minimum mapping quality (default: 0)")
    parser.add_argument("--primary", dest="primary_only", action="store_true", help="count primary alignments only")
    parser.add_argument("-M", "--multi-mapping", action="store_true", help="count multi-mapping reads (NH > 1)")
    parser.add_argument("--fraction", action="store_true", help="fractional counts with -M (1/NH) and/or -O")
    parser.add_argument("-O", "--allow-multi-overlap", action="store_true",
                        help="count a read for every gene it overlaps")
    parser.add_argument("-t", "--feature-type", default="exon", help="GTF feature type (default: exon)")
    parser.add_argument("-g", "--attribute", default="gene_id", help="GTF grouping attribute (default: gene_id)")
    parser.add_argument("--sample", default=None, help="sample name for the stats JSON (default: BAM name)")
    parser.add_argument("--ignore-dup", action="store_true",
                        help="do not count fragments with a record flagged duplicate (0x400; featureCounts --ignoreDup)")
    parser.add_argument("--dedup-out", default=None, metavar="TSV",
                        help="also write deduplicated counts here (same pass): without flagged duplicates, "
                             "or without the duplicates --dedup marks")
    parser.add_argument("--dedup", choices=DEDUP_MODES, default="none",
                        help="mark duplicates while counting (coordinate-sorted BAM): position = Picard "
                             "MarkDuplicates; directional/unique = umi_tools dedup on UMIs in read names "
                             "(default: none)")
    parser.add_argument("--umi-sep", dest="umi_sep", default="_", metavar="S",
                        help="separator before the UMI at the end of read names (default: _)")
    parser.add_argument("--threads", "-T", type=int, default=1, help="threads (default: 1)")


def run(args: argparse.Namespace) -> int:
    """Run the count stage; prints the summary line."""
    from pathlib import Path

    from cfrna._numba import no_blas_probe
    from cfrna.count.stage import CountSettings, run_count
    from cfrna.io.samplesheet import check_sample_id
    from cfrna.pipeline.stages import settings_from

    if args.sample is not None:
        check_sample_id(args.sample)
    with no_blas_probe():  # the count kernels use no BLAS: skip numba's scipy.linalg import
        res = run_count(bam=args.bam, gtf=args.gtf, sample=args.sample, paired=args.paired,
                        strandedness=args.strandedness, align_json=args.strandedness_from,
                        outdir=Path(args.out).parent, out=args.out, dedup_out=args.dedup_out,
                        settings=settings_from(CountSettings, args))
    s = res.summary["summary"]
    total = sum(s.values())
    print(f"{args.out}: {s['Assigned']} of {total} {'fragments' if args.paired else 'reads'} assigned")
    return 0
