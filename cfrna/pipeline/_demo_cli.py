"""``cfrna demo``: simulate a tiny longitudinal trial cohort and run the whole workflow on it.

The default cohort is 8 patients x 3 visits (months 0, 3, 6; half of the patients flare once) at
10,000 reads per sample, so that every trial contrast of ``contrasts.csv`` is estimable, the
headline within-patient contrast ``flare_vs_no_flare`` (``~ patient_id + flare``: 21 samples after
the three QC-failed ones are excluded, 9 + 3 coefficients once the three blood-cell scores are
added) keeps residual degrees of freedom for its sensitivity table, and the demo reads no more
than the former 12 x 20,000-read cohort. ``--samples N`` runs that cross-sectional cohort of N
samples instead (20,000 reads per sample by default).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cfrna.pipeline._cli import add_run_arguments, options_from_args
from cfrna.pipeline.local import run_pipeline

log = logging.getLogger(__name__)

DEMO_PATIENTS = 8
DEMO_VISITS = "0,3,6"
DEMO_FLARE_FRACTION = 0.5
DEMO_READS = 10000
CROSS_SECTIONAL_READS = 20000


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--outdir", default="cfrna_demo", help="folder for the cohort and results (default: cfrna_demo)")
    p.add_argument("--patients", type=int, default=None,
                   help=f"patients of the longitudinal demo cohort (default: {DEMO_PATIENTS})")
    p.add_argument("--visits", default=None, help=f"visit months of the demo cohort (default: {DEMO_VISITS})")
    p.add_argument("--samples", type=int, default=None,
                   help="run the cross-sectional cohort of this many samples instead of the longitudinal one")
    p.add_argument("--reads-per-sample", type=int, default=None,
                   help=f"reads per sample (default: {DEMO_READS}; {CROSS_SECTIONAL_READS} with --samples)")
    p.add_argument("--paired", action="store_true", help="simulate paired-end reads")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    add_run_arguments(p, inputs_required=False)


def run(args: argparse.Namespace) -> int:
    from cfrna.errors import ConfigError
    from cfrna.simulate import simulate_cohort
    from cfrna.simulate.longitudinal import parse_visits

    if args.samples is not None and (args.patients is not None or args.visits is not None):
        raise ConfigError("--samples (cross-sectional cohort) and --patients/--visits (longitudinal cohort) "
                          "both given", where="demo", hint="give one of them")
    root = Path(args.outdir)
    cohort = root / "input"
    common = {"paired": args.paired, "seed": args.seed}
    reads = args.reads_per_sample
    if args.samples is not None:
        paths = simulate_cohort(cohort, n_samples=args.samples,
                                reads_per_sample=CROSS_SECTIONAL_READS if reads is None else reads, **common)
    else:
        n_patients = DEMO_PATIENTS if args.patients is None else args.patients
        visits = parse_visits(args.visits or DEMO_VISITS)
        log.info("demo: longitudinal cohort of %d patients x %d visits (months %s)", n_patients, len(visits),
                 ", ".join(map(str, visits)))
        paths = simulate_cohort(cohort, n_patients=n_patients, visits=visits, flare_fraction=DEMO_FLARE_FRACTION,
                                reads_per_sample=DEMO_READS if reads is None else reads, **common)
    contrasts = paths["contrasts"]
    opts = options_from_args(
        args, samplesheet=str(cohort / "samplesheet.csv"), fasta=str(cohort / "genome.fa"),
        gtf=str(cohort / "genes.gtf"), outdir=str(root / "results"),
        contrasts=str(contrasts) if contrasts is not None else None,
        gene_sets=[], index_dir=args.index_dir or str(root / "index"))
    res = run_pipeline(opts)
    if res["failed"]:
        print(f"warning: {len(res['failed'])} sample(s) failed: {', '.join(res['failed'])}")
    print(f"report: {Path(res['report']).resolve()}")
    return 0
