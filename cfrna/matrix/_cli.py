"""``cfrna matrix``: merge per-sample counts into the cohort tables."""

from __future__ import annotations

import argparse

from cfrna.matrix.merge import run_matrix


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samplesheet", required=True, help="samplesheet CSV")
    p.add_argument("--gtf", required=True, help="the GTF the samples were counted with")
    p.add_argument("--counts-dir", required=True, help="folder with <sample>.counts.tsv files")
    p.add_argument("--qc-summary", help="qc_summary.tsv from `cfrna qc` (adds QC columns and exclusions)")
    p.add_argument("--outdir", required=True, help="output folder (O/matrix)")
    p.add_argument("--threads", type=int, default=1, help="unused; accepted for uniformity")


def run(args: argparse.Namespace) -> int:
    res = run_matrix(args.samplesheet, args.gtf, args.counts_dir, args.outdir, qc_summary=args.qc_summary)
    print(f"{res['n_genes']} genes x {res['n_samples']} samples ({res['n_excluded']} excluded from DE)")
    return 0
