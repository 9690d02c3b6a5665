"""``cfrna validate``: check the samplesheet (and contrasts, GTF, FASTA) before anything runs."""

from __future__ import annotations

import argparse
import csv
import logging

from cfrna.errors import ConfigError
from cfrna.io.atomic import atomic_open
from cfrna.io.samplesheet import REQUIRED_COLUMNS, SampleSheet, read_samplesheet

log = logging.getLogger(__name__)


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


def check_reference(gtf: str, fasta: str | None):
    """Parse the GTF; with a FASTA, check the GTF chromosomes against its sequence names."""
    from cfrna.align.index import check_gtf_chromosomes, read_fasta_lengths
    from cfrna.reference import read_gtf

    ann = read_gtf(gtf)
    if fasta:
        contigs = [name for name, _ in read_fasta_lengths(fasta)]
        check_gtf_chromosomes(ann.chromosomes, contigs, gtf=gtf, fasta=fasta)
    return ann


def contrast_counts(sheet: SampleSheet, contrasts_path: str) -> list[tuple[str, dict[str, int]]]:
    """Validate every contrast against the sheet; return (id, {level: n}) per contrast."""
    from cfrna.de.contrasts import check_contrast, read_contrasts

    samples = sheet.to_frame()
    out = []
    for c in read_contrasts(contrasts_path, samples):
        summary = check_contrast(c, samples)
        out.append((c.id, dict(summary.groups)))
    return out


def write_normalized(sheet: SampleSheet, path: str) -> None:
    extra_cols: list[str] = []
    for s in sheet.samples:
        for k in s.extra:
            if k not in extra_cols:
                extra_cols.append(k)
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([*REQUIRED_COLUMNS, "single_end", *extra_cols])
        for s in sheet.samples:
            vm = int(s.visit_month) if float(s.visit_month).is_integer() else s.visit_month
            w.writerow([s.sample, s.patient_id, vm, s.arm, s.flare, s.fastq_1, s.fastq_2 or "",
                        s.strandedness, str(not s.paired).lower(), *[s.extra.get(k, "") for k in extra_cols]])


def run(args: argparse.Namespace) -> int:
    sheet = read_samplesheet(args.samplesheet, check_files=not args.metadata_only)
    n_pe = sum(s.paired for s in sheet.samples)
    n_patients = len({s.patient_id for s in sheet.samples})
    if args.metadata_only:
        print(f"samplesheet OK: {len(sheet.samples)} samples (metadata only), {n_patients} patients")
    else:
        print(f"samplesheet OK: {len(sheet.samples)} samples ({n_pe} paired-end, "
              f"{len(sheet.samples) - n_pe} single-end), {n_patients} patients")
    for w in sheet.warnings:
        print(f"warning: {w}")
    if args.fasta and not args.gtf:
        raise ConfigError("--fasta is checked against a GTF: give --gtf too")
    if args.gtf:
        ann = check_reference(args.gtf, args.fasta)
        print(f"GTF OK: {len(ann.genes)} genes on {len(ann.chromosomes)} sequences")
    if args.contrasts:
        for cid, sizes in contrast_counts(sheet, args.contrasts):
            groups = ", ".join(f"{k}={v}" for k, v in sizes.items())
            print(f"contrast {cid}: {groups}")
    if args.normalized:
        write_normalized(sheet, args.normalized)
    return 0
