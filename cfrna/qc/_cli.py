"""``cfrna qc``: QC passports, qc_summary.tsv and MultiQC files for a cohort."""

from __future__ import annotations

import argparse

from cfrna.qc.filters import DEFAULTS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samplesheet", required=True, help="samplesheet CSV (optional 'sex' column is checked)")
    parser.add_argument("--gtf", required=True, help="the GTF used for counting")
    parser.add_argument("--counts-dir", required=True, help="folder with <ID>.counts.tsv(.summary/.stats.json)")
    parser.add_argument("--align-dir", default=None, help="folder with <ID>.align.json and <ID>.bam")
    parser.add_argument("--trim-dir", default=None, help="folder with <ID>.trim.json")
    parser.add_argument("--outdir", required=True, help="output folder, e.g. O/qc")
    parser.add_argument("--thresholds", default=None, metavar="YAML/JSON",
                        help="override QC thresholds (structure in docs/qc.md)")
    parser.add_argument("--keep-failed", action="store_true", help="do not exclude failed samples from DE")
    parser.add_argument("--mad-k", type=float, default=None,
                        help=f"robust z cut-off for cohort outliers (default: {DEFAULTS['mad_k']})")
    parser.add_argument("--no-multiqc", action="store_true", help="write the *_mqc files but skip the MultiQC report")
    parser.add_argument("--threads", type=int, default=1, help="threads (default: 1)")


def run(args: argparse.Namespace) -> int:
    from cfrna.pipeline.stages import settings_from
    from cfrna.qc.stage import QcSettings, run_qc

    res = run_qc(samplesheet=args.samplesheet, gtf=args.gtf, counts_dir=args.counts_dir, align_dir=args.align_dir,
                 trim_dir=args.trim_dir, outdir=args.outdir,
                 settings=settings_from(QcSettings, args, multiqc_report=not args.no_multiqc))
    s = res.summary
    print(f"{args.outdir}/qc_summary.tsv: {s['n_samples']} samples, {s['pass']} pass, "
          f"{s['warn']} warn, {s['fail']} fail, {len(s['excluded'])} excluded")
    return 0
