"""``cfrna simulate``: write a synthetic cfRNA trial cohort with its truth."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` options to ``parser``."""
    parser.add_argument("--outdir", required=True, help="output folder (created)")
    parser.add_argument("--samples", type=int, default=12, help="number of samples (default: 12; at least 2)")
    parser.add_argument("--reads-per-sample", type=int, default=20000,
                        help="reads (read pairs with --paired) per sample (default: 20000)")
    parser.add_argument("--paired", action="store_true", help="paired-end reads (_R1/_R2 files)")
    parser.add_argument("--seed", type=int, default=1, help="random seed; same seed, same bytes (default: 1)")
    parser.add_argument("--read-length", type=int, default=75, help="read length (default: 75)")
    parser.add_argument("--strandedness", choices=("reverse", "forward", "unstranded"), default="reverse",
                        help="library strandedness (default: reverse, dUTP)")
    parser.add_argument("--genes", type=int, default=600,
                        help="genes in the annotation incl. signature, rRNA and chrM genes (default: 600)")
    parser.add_argument("--threads", type=int, default=1, help="accepted for uniformity; simulation is single-threaded")


def run(args: argparse.Namespace) -> int:
    """Simulate the cohort and print where its files are."""
    from cfrna.simulate.cohort import simulate_cohort

    paths = simulate_cohort(args.outdir, n_samples=args.samples, reads_per_sample=args.reads_per_sample,
                            paired=args.paired, seed=args.seed, read_length=args.read_length,
                            strandedness=args.strandedness, n_genes=args.genes)
    print(f"samplesheet: {paths['samplesheet']}")
    print(f"contrasts:   {paths['contrasts'] or 'none (too few samples for a contrast)'}")
    print(f"genome:      {paths['genome']}")
    print(f"annotation:  {paths['gtf']}")
    print(f"truth:       {paths['truth']}")
    return 0
