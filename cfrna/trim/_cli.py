"""``cfrna trim``: adapter/quality trimming of one sample (cutadapt in-process).

Argument parsing only: the stage is :func:`cfrna.trim.stage.run_trim`.
"""

from __future__ import annotations

import argparse
import json


def configure(parser: argparse.ArgumentParser) -> None:
    from cfrna.trim import TRUSEQ_ADAPTER

    parser.add_argument("--sample", required=True, help="sample id (output file prefix)")
    parser.add_argument("--fastq-1", required=True, help="read 1 FASTQ (gzip or plain)")
    parser.add_argument("--fastq-2", default=None, help="read 2 FASTQ for paired-end")
    parser.add_argument("--outdir", required=True, help="output folder, e.g. O/trimmed")
    parser.add_argument("--adapter", default=TRUSEQ_ADAPTER, help="3' adapter of read 1 (default: %(default)s)")
    parser.add_argument("--adapter-2", default=None, help="3' adapter of read 2 (default: same as --adapter)")
    parser.add_argument("--quality", type=int, default=20, help="3' quality cutoff (default: %(default)s)")
    parser.add_argument("--min-length", type=int, default=18, help="minimum length after trimming (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="cores (default: %(default)s)")
    umi = parser.add_argument_group("UMIs (docs/usage.md, 'UMIs and low-input kits')")
    umi.add_argument("--umi-pattern", default=None,
                     help="UMI at the 5' end of --umi-read, umi_tools string pattern (N: UMI base, X: kept base, "
                          "e.g. NNNNNNNN) or a kit preset (takara-pico-v3); moved into the read names before "
                          "adapter trimming")
    umi.add_argument("--umi-read", type=int, choices=(1, 2), default=None,
                     help="read holding the UMI (default: 1, or the kit preset's)")
    umi.add_argument("--umi-in-name", action="store_true",
                     help="the UMIs are already at the end of the read names (bcl-convert, fastp, umi_tools): check")
    umi.add_argument("--umi-separator", default="_",
                     help="separator between read id and UMI in the names (default: %(default)s; bcl-convert: ':')")


def run(args: argparse.Namespace) -> int:
    from cfrna.io.samplesheet import check_sample_id
    from cfrna.pipeline.stages import settings_from
    from cfrna.trim.stage import TrimSettings, run_trim

    check_sample_id(args.sample, args.outdir)
    res = run_trim(sample=args.sample, fastq_1=args.fastq_1, fastq_2=args.fastq_2, outdir=args.outdir,
                   settings=settings_from(TrimSettings, args))
    print(json.dumps(res.summary, sort_keys=True))
    return 0
