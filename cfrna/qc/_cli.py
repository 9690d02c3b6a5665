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
    from cfrna.qc.run import run_qc

    summary = run_qc(args.samplesheet, args.gtf, args.counts_dir, args.align_dir, args.trim_dir, args.outdir,
                     thresholds=args.thresholds, keep_failed=args.keep_failed, mad_k=args.mad_k,
                     multiqc_report=not args.no_multiqc, threads=args.threads)
    counts = summary["status"].value_counts()
    print(f"{args.outdir}/qc_summary.tsv: {len(summary)} samples, {counts.get('pass', 0)} pass, "
          f"{counts.get('warn', 0)} warn, {counts.get('fail', 0)} fail, {int(summary['excluded'].sum())} excluded")
    return 0
