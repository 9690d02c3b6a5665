"""``cfrna validate``: check the samplesheet (and contrasts, GTF, FASTA) before anything runs.

Argument parsing only: the stage is :func:`cfrna.pipeline.stage.run_validate`.
"""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samplesheet", required=True, help="samplesheet CSV (see assets/schema_input.json)")
    p.add_argument("--contrasts", help="contrasts CSV: id,variable,reference,target,blocking,formula")
    p.add_argument("--gtf", help="gene annotation (GTF, optionally gzipped)")
    p.add_argument("--fasta", help="genome FASTA: checks that GTF chromosomes are present")
    p.add_argument("--normalized", metavar="CSV",
                   help="write the validated sheet with absolute FASTQ paths (used by the Nextflow pipeline)")
    p.add_argument("--metadata-only", action="store_true",
                   help="the sheet describes samples only (no fastq_1/fastq_2/strandedness), as `cfrna de` on a "
                        "counts table made elsewhere takes it")
    p.add_argument("--threads", type=int, default=1, help="unused; accepted for uniformity")


def run(args: argparse.Namespace) -> int:
    from cfrna.pipeline.stage import ValidateSettings, run_validate
    from cfrna.pipeline.stages import settings_from

    res = run_validate(samplesheet=args.samplesheet, contrasts=args.contrasts, gtf=args.gtf, fasta=args.fasta,
                       normalized=args.normalized, settings=settings_from(ValidateSettings, args))
    for line in res.data.lines():
        print(line)
    return 0
