"""``cfrna matrix``: merge per-sample counts into the cohort tables and ``cfrna.h5ad``."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samplesheet", required=True, help="samplesheet CSV")
    p.add_argument("--gtf", required=True, help="the GTF the samples were counted with")
    p.add_argument("--counts-dir", required=True, help="folder with <sample>.counts.tsv files")
    p.add_argument("--qc-summary", help="qc_summary.tsv from `cfrna qc` (adds QC columns and exclusions)")
    p.add_argument("--outdir", required=True, help="output folder (O/matrix)")
    p.add_argument("--no-h5ad", dest="h5ad", action="store_false", help="do not create cfrna.h5ad")
    p.add_argument("--threads", type=int, default=1, help="unused; accepted for uniformity")


def run(args: argparse.Namespace) -> int:
    from cfrna.matrix.stage import MatrixSettings, run_matrix
    from cfrna.pipeline.stages import settings_from

    res = run_matrix(samplesheet=args.samplesheet, gtf=args.gtf, counts_dir=args.counts_dir,
                     qc_summary=args.qc_summary, outdir=args.outdir, settings=settings_from(MatrixSettings, args))
    s = res.summary
    print(f"{s['n_genes']} genes x {s['n_samples']} samples ({s['n_excluded']} excluded from DE)")
    return 0
