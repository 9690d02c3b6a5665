"""Checks of a run's inputs before anything runs: samplesheet, contrasts, GTF against FASTA.

Used by ``cfrna validate`` (:func:`cfrna.pipeline.stage.run_validate`), by ``cfrna run``'s preflight
and by the Nextflow pipeline's first process. The checks themselves live with the data they check
(:mod:`cfrna.io.samplesheet`, :mod:`cfrna.de.contrasts`, :mod:`cfrna.align.index`); this module, in the
orchestration layer, puts them together.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass, field

from cfrna.errors import ConfigError
from cfrna.io.atomic import atomic_open
from cfrna.io.samplesheet import REQUIRED_COLUMNS, SampleSheet, read_samplesheet

__all__ = ["Validation", "check_reference", "contrast_counts", "validate_inputs", "write_normalized"]

log = logging.getLogger(__name__)


@dataclass
class Validation:
    """What :func:`validate_inputs` found (everything it checked passed)."""

    sheet: SampleSheet
    metadata_only: bool = False
    genes: int | None = None
    sequences: int | None = None
    contrasts: list[tuple[str, dict[str, int]]] = field(default_factory=list)

    def summary(self) -> dict:
        samples = self.sheet.samples
        return {"samples": len(samples), "paired_end": sum(s.paired for s in samples),
                "patients": len({s.patient_id for s in samples}), "metadata_only": self.metadata_only,
                "genes": self.genes, "sequences": self.sequences,
                "contrasts": dict(self.contrasts)}

    def lines(self) -> list[str]:
        """The lines ``cfrna validate`` prints."""
        samples = self.sheet.samples
        n_pe = sum(s.paired for s in samples)
        n_patients = len({s.patient_id for s in samples})
        if self.metadata_only:
            out = [f"samplesheet OK: {len(samples)} samples (metadata only), {n_patients} patients"]
        else:
            out = [f"samplesheet OK: {len(samples)} samples ({n_pe} paired-end, "
                   f"{len(samples) - n_pe} single-end), {n_patients} patients"]
        out += [f"warning: {w}" for w in self.sheet.warnings]
        if self.genes is not None:
            out.append(f"GTF OK: {self.genes} genes on {self.sequences} sequences")
        for cid, sizes in self.contrasts:
            out.append(f"contrast {cid}: " + ", ".join(f"{k}={v}" for k, v in sizes.items()))
        return out


def check_reference(gtf: str | os.PathLike, fasta: str | os.PathLike | None):
    """Parse the GTF; with a FASTA, check the GTF chromosomes against its sequence names."""
    from cfrna.align.index import check_gtf_chromosomes, read_fasta_lengths
    from cfrna.reference import read_gtf

    ann = read_gtf(gtf)
    if fasta:
        contigs = [name for name, _ in read_fasta_lengths(fasta)]
        check_gtf_chromosomes(ann.chromosomes, contigs, gtf=str(gtf), fasta=str(fasta))
    return ann


def contrast_counts(sheet: SampleSheet, contrasts_path: str | os.PathLike) -> list[tuple[str, dict[str, int]]]:
    """Validate every contrast against the sheet; return (id, {level: n}) per contrast."""
    from cfrna.de.contrasts import check_contrast, read_contrasts

    samples = sheet.to_frame()
    out = []
    for c in read_contrasts(contrasts_path, samples):
        summary = check_contrast(c, samples)
        out.append((c.id, dict(summary.groups)))
    return out


def write_normalized(sheet: SampleSheet, path: str | os.PathLike) -> None:
    """The sheet with absolute FASTQ paths and a ``single_end`` column (the Nextflow pipeline reads it)."""
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


def validate_inputs(samplesheet: str | os.PathLike, *, contrasts: str | os.PathLike | None = None,
                    gtf: str | os.PathLike | None = None, fasta: str | os.PathLike | None = None,
                    metadata_only: bool = False) -> Validation:
    """Check the samplesheet, the GTF (against the FASTA) and every contrast (against the sheet).

    Raises the first problem as a one-line :class:`~cfrna.errors.CfrnaError` (``ConfigError`` for the
    sheet, contrasts and options, ``InputFormatError`` for unreadable files).
    """
    sheet = read_samplesheet(samplesheet, check_files=not metadata_only)
    if fasta and not gtf:
        raise ConfigError("--fasta is checked against a GTF: give --gtf too")
    res = Validation(sheet=sheet, metadata_only=metadata_only)
    if gtf:
        ann = check_reference(gtf, fasta)
        res.genes, res.sequences = len(ann.genes), len(ann.chromosomes)
    if contrasts:
        res.contrasts = contrast_counts(sheet, contrasts)
    return res
