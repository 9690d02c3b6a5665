"""``cfrna trim``: adapter/quality trimming of one sample (cutadapt in-process)."""

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


def run(args: argparse.Namespace) -> int:
    from cfrna.io.samplesheet import check_sample_id
    from cfrna.trim import run_trim

    check_sample_id(args.sample, args.outdir)
    res = run_trim(args.sample, args.fastq_1, args.fastq_2, args.outdir, args.threads, adapter=args.adapter,
                   adapter_2=args.adapter_2, quality=args.quality, min_length=args.min_length)
    print(json.dumps(res, sort_keys=True))
    return 0
