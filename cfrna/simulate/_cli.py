"""``cfrna simulate``: write a synthetic cfRNA trial cohort with its truth."""

from __future__ import annotations

import argparse
import logging

from cfrna.config import STRANDEDNESS

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` options to ``parser``."""
    parser.add_argument("--outdir", required=True, help="output folder (created)")
    parser.add_argument("--samples", type=int, default=None,
                        help="number of samples of the cross-sectional design (default: 12; at least 2)")
    parser.add_argument("--reads-per-sample", type=int, default=20000,
                        help="reads (read pairs with --paired) per sample; with --counts-only the mean counted "
                             "fragments per sample (default: 20000)")
    parser.add_argument("--paired", action="store_true", help="paired-end reads (_R1/_R2 files)")
    parser.add_argument("--seed", type=int, default=1, help="random seed; same seed, same bytes (default: 1)")
    parser.add_argument("--read-length", type=int, default=75, help="read length (default: 75)")
    parser.add_argument("--strandedness", choices=STRANDEDNESS, default="reverse",
                        help="library strandedness (default: reverse, dUTP)")
    parser.add_argument("--genes", type=int, default=600,
                        help="genes in the annotation incl. signature, rRNA and chrM genes (default: 600)")
    long = parser.add_argument_group("longitudinal cohort (instead of --samples)")
    long.add_argument("--patients", type=int, default=None,
                      help="longitudinal design: this many patients, each sampled at every --visits month, with "
                           "flares, a patient random intercept and the trial contrasts (replaces --samples)")
    long.add_argument("--visits", default="0,3,6,12,18",
                      help="visit months of the longitudinal design (default: 0,3,6,12,18)")
    long.add_argument("--icc", type=float, default=0.5,
                      help="intra-class correlation of a patient's samples (log expression; default: 0.5)")
    long.add_argument("--flare-fraction", type=float, default=0.4,
                      help="fraction of patients who flare once (default: 0.4)")
    dup = parser.add_argument_group("PCR duplicates and UMIs (low-input libraries; off by default)")
    dup.add_argument("--molecules", type=int, default=None,
                     help="distinct molecules per library (median; each sample varies log-normally around it); "
                          "reads are drawn with replacement, so the duplicate fraction rises with depth")
    dup.add_argument("--pcr-duplicates", type=float, default=None,
                     help="instead of --molecules: the expected duplicate fraction at --reads-per-sample, e.g. 0.3")
    dup.add_argument("--amplification-cv", type=float, default=0.5,
                     help="coefficient of variation of the PCR amplification of molecules (default: 0.5)")
    dup.add_argument("--umi-length", type=int, default=0,
                     help="UMI length (0 = no UMI; kits use 6-12, e.g. 8); needs --molecules or --pcr-duplicates")
    dup.add_argument("--umi-error-rate", type=float, default=0.002,
                     help="substitutions per UMI base (PCR + sequencing errors; default: 0.002)")
    dup.add_argument("--umi-location", choices=("auto", "read1", "read2", "name"), default="auto",
                     help="where the UMI is: first bases of read 2 (auto for --paired, SMARTer Pico v3 style), of "
                          "read 1 (auto for single-end), or the read name (<name>_<UMI>)")
    parser.add_argument("--counts-only", action="store_true",
                        help="write a counts matrix + metadata-only samplesheet + contrasts + truth, no FASTQ or "
                             "genome (fast input for `cfrna de`)")
    parser.add_argument("--threads", type=int, default=1, help="accepted for uniformity; simulation is single-threaded")


def run(args: argparse.Namespace) -> int:
    """Simulate the cohort and print where its files are."""
    from cfrna.errors import ConfigError
    from cfrna.simulate.cohort import simulate_cohort
    from cfrna.simulate.duplicates import DuplicateSpec
    from cfrna.simulate.longitudinal import DEFAULT_VISITS, parse_visits

    long_opts = [o for o, v, d in (("--visits", args.visits, ",".join(map(str, DEFAULT_VISITS))),
                                   ("--icc", args.icc, 0.5), ("--flare-fraction", args.flare_fraction, 0.4))
                 if v != d]
    if args.patients is not None and args.samples is not None:
        raise ConfigError("--samples and --patients both given", where="simulate",
                          hint="a longitudinal cohort has --patients x (number of --visits) samples; drop --samples")
    if args.patients is None and long_opts:
        raise ConfigError(f"{', '.join(long_opts)} need(s) --patients (the longitudinal design)", where="simulate",
                          hint="add --patients N, e.g. --patients 30")
    paths = simulate_cohort(args.outdir, n_samples=12 if args.samples is None else args.samples,
                            reads_per_sample=args.reads_per_sample, paired=args.paired, seed=args.seed,
                            read_length=args.read_length, strandedness=args.strandedness, n_genes=args.genes,
                            n_patients=args.patients, visits=parse_visits(args.visits), icc=args.icc,
                            flare_fraction=args.flare_fraction, counts_only=args.counts_only,
                            duplicates=DuplicateSpec(molecules=args.molecules, pcr_duplicates=args.pcr_duplicates,
                                                     amplification_cv=args.amplification_cv,
                                                     umi_length=args.umi_length, umi_error_rate=args.umi_error_rate,
                                                     umi_location=args.umi_location))
    print(f"samplesheet: {paths['samplesheet']}")
    print(f"contrasts:   {paths['contrasts'] or 'none (too few samples for a contrast)'}")
    if args.counts_only:
        print(f"counts:      {paths['counts']}")
        print(f"annotation:  {paths['annotation']}")
    else:
        print(f"genome:      {paths['genome']}")
        print(f"annotation:  {paths['gtf']}")
    if (paths["truth"] / "duplicates.tsv").exists():
        print(f"duplicates:  {paths['truth'] / 'duplicates.tsv'}")
    print(f"truth:       {paths['truth']}")
    return 0
