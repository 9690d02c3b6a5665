"""``cfrna demo``: simulate a tiny cohort and run the whole workflow on it."""

from __future__ import annotations

import argparse
from pathlib import Path

from cfrna.pipeline._cli import add_run_arguments, options_from_args
from cfrna.pipeline.local import run_pipeline


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outdir", default="cfrna_demo", help="folder for the cohort and results (default: cfrna_demo)")
    p.add_argument("--samples", type=int, default=12, help="samples to simulate (default: 12)")
    p.add_argument("--reads-per-sample", type=int, default=20000, help="reads per sample (default: 20000)")
    p.add_argument("--paired", action="store_true", help="simulate paired-end reads")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    add_run_arguments(p, inputs_required=False)


def run(args: argparse.Namespace) -> int:
    from cfrna.simulate import simulate_cohort

    root = Path(args.outdir)
    cohort = root / "input"
    simulate_cohort(cohort, n_samples=args.samples, reads_per_sample=args.reads_per_sample,
                    paired=args.paired, seed=args.seed)
    opts = options_from_args(
        args, samplesheet=str(cohort / "samplesheet.csv"), fasta=str(cohort / "genome.fa"),
        gtf=str(cohort / "genes.gtf"), outdir=str(root / "results"), contrasts=str(cohort / "contrasts.csv"),
        gene_sets=[], index_dir=args.index_dir or str(root / "index"))
    res = run_pipeline(opts)
    if res["failed"]:
        print(f"warning: {len(res['failed'])} sample(s) failed: {', '.join(res['failed'])}")
    print(f"report: {Path(res['report']).resolve()}")
    return 0
