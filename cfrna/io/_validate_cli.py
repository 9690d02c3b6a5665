"""``cfrna validate``: check the samplesheet (and contrasts, GTF, FASTA) before anything runs."""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path

from cfrna.errors import ConfigError, InputFormatError
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
    p.add_argument("--threads", type=int, default=1, help="unused; accepted for uniformity")


def fasta_names(path: str | Path) -> list[str]:
    """Sequence names of a FASTA (from its .fai when present); error if the file is not FASTA."""
    path = Path(path)
    fai = Path(str(path) + ".fai")
    if fai.exists() and fai.stat().st_mtime >= path.stat().st_mtime:
        return [line.split("\t", 1)[0] for line in fai.read_text().splitlines() if line]
    import gzip

    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    names = []
    try:
        with opener(path, "rt", errors="replace") as fh:
            for i, line in enumerate(fh, 1):
                if i == 1 and not line.startswith(">"):
                    raise InputFormatError("not a FASTA file (first line does not start with '>')",
                                           where=f"{path}:1", hint="check the --fasta path")
                if line.startswith(">"):
                    name = line[1:].split(None, 1)[0] if line[1:].strip() else ""
                    if not name:
                        raise InputFormatError("FASTA header without a name", where=f"{path}:{i}")
                    names.append(name)
    except (OSError, EOFError) as exc:
        raise InputFormatError(f"FASTA is unreadable or truncated ({exc})", where=str(path)) from exc
    if not names:
        raise InputFormatError("FASTA has no sequences", where=str(path))
    return names


def check_reference(gtf: str, fasta: str | None):
    """Parse the GTF; with a FASTA, check the GTF chromosomes against its sequence names."""
    from cfrna.reference import read_gtf

    ann = read_gtf(gtf)
    if fasta:
        names = set(fasta_names(fasta))
        missing = [c for c in ann.chromosomes if c not in names]
        if len(missing) == len(ann.chromosomes):
            raise InputFormatError(
                f"no GTF chromosome matches a FASTA sequence (GTF: {', '.join(ann.chromosomes[:3])}; "
                f"FASTA: {', '.join(sorted(names)[:3])})", where=gtf,
                hint="use a GTF and FASTA of the same assembly and naming (chr1 vs 1)")
        if missing:
            log.warning("%s: %d GTF chromosome(s) absent from the FASTA, their genes get no reads: %s",
                        gtf, len(missing), ", ".join(missing[:10]))
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
    sheet = read_samplesheet(args.samplesheet)
    n_pe = sum(s.paired for s in sheet.samples)
    print(f"samplesheet OK: {len(sheet.samples)} samples ({n_pe} paired-end, "
          f"{len(sheet.samples) - n_pe} single-end), {len({s.patient_id for s in sheet.samples})} patients")
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
