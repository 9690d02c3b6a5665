"""Stage functions of the run's bookends: ``validate`` (before anything) and ``provenance`` (``pipeline_info/``).

Same contract as every stage (:mod:`cfrna.pipeline.stages`): keyword-only inputs, ``outdir``, a frozen
settings dataclass, a :class:`~cfrna.pipeline.stages.StageResult`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cfrna.pipeline.layout import OutputLayout
from cfrna.pipeline.stages import StageResult

__all__ = ["ProvenanceSettings", "ValidateSettings", "run_provenance", "run_validate"]


@dataclass(frozen=True)
class ValidateSettings:
    """Options of ``validate``.

    Attributes
    ----------
    metadata_only
        The sheet describes samples only (no FASTQ columns), as ``cfrna de`` on a counts table made
        elsewhere takes it (default: False).
    """

    metadata_only: bool = False


def run_validate(*, samplesheet: str | os.PathLike, contrasts: str | os.PathLike | None = None,
                 gtf: str | os.PathLike | None = None, fasta: str | os.PathLike | None = None,
                 outdir: str | os.PathLike | None = None, settings: ValidateSettings = ValidateSettings(),
                 normalized: str | os.PathLike | None = None) -> StageResult:
    """Check the samplesheet, contrasts and GTF (against the FASTA) before anything runs.

    Parameters
    ----------
    samplesheet, contrasts, gtf, fasta
        The run's inputs (contrasts, GTF and FASTA optional; a FASTA needs a GTF).
    outdir
        When given, the sheet with absolute FASTQ paths is written there as
        ``samplesheet.valid.csv`` (:attr:`OutputLayout.validated_samplesheet`; the Nextflow pipeline
        reads it). None: nothing is written.
    settings
        :class:`ValidateSettings` (default: its defaults).
    normalized
        Write the validated sheet to this path instead (``cfrna validate --normalized``).

    Returns
    -------
    StageResult
        ``summary``: samples, paired_end, patients, genes, sequences and ``contrasts`` ({id: {level:
        n}}); ``warnings``: the sheet's warnings; ``outputs["samplesheet"]`` when written; and
        ``validation`` (the :class:`~cfrna.pipeline.validate.Validation`, with the parsed sheet).
    """
    from cfrna.pipeline.validate import validate_inputs, write_normalized

    v = validate_inputs(samplesheet, contrasts=contrasts, gtf=gtf, fasta=fasta,
                        metadata_only=settings.metadata_only)
    outputs: dict[str, Path] = {}
    target = normalized or (OutputLayout.in_stage_folder("pipeline_info", outdir).validated_samplesheet
                            if outdir is not None else None)
    if target is not None:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        write_normalized(v.sheet, target)
        outputs["samplesheet"] = Path(target)
    return StageResult(stage="validate", outputs=outputs, summary=v.summary(), warnings=list(v.sheet.warnings),
                       data=v)


@dataclass(frozen=True)
class ProvenanceSettings:
    """Options of ``provenance``.

    Attributes
    ----------
    aligner
        The run's aligner: its version is recorded for STAR (default: mappy).
    """

    aligner: str = "mappy"


def run_provenance(*, samplesheet: str | os.PathLike, fasta: str | os.PathLike, gtf: str | os.PathLike,
                   contrasts: str | os.PathLike | None = None, gene_sets: list | tuple = (),
                   params: dict | None = None, outdir: str | os.PathLike,
                   settings: ProvenanceSettings = ProvenanceSettings()) -> StageResult:
    """Write ``params.json``, ``software_versions.yml`` and ``input_checksums.tsv`` into ``outdir``.

    Parameters
    ----------
    samplesheet, fasta, gtf, contrasts, gene_sets
        The run's input files (checksummed by file name; the sheet's FASTQs too).
    params
        The run's parameters as recorded in ``params.json`` (default: the input file names and
        the aligner).
    outdir
        The ``pipeline_info`` folder.
    settings
        :class:`ProvenanceSettings` (default: its defaults).
    """
    from cfrna.io.samplesheet import read_samplesheet
    from cfrna.pipeline import provenance

    lay = OutputLayout.in_stage_folder("pipeline_info", outdir)
    if params is None:
        params = {"samplesheet": Path(samplesheet).name, "fasta": Path(fasta).name, "gtf": Path(gtf).name,
                  "contrasts": Path(contrasts).name if contrasts else None,
                  "gene_sets": [Path(g).name for g in gene_sets], "aligner": settings.aligner}
    sheet = read_samplesheet(Path(samplesheet).resolve())
    lay.info_dir.mkdir(parents=True, exist_ok=True)
    provenance.write_params(lay.params_json, params)
    n_files = provenance.write_checksums(lay.input_checksums, sheet, samplesheet=samplesheet, fasta=fasta,
                                         gtf=gtf, contrasts=contrasts, gene_sets=list(gene_sets))
    provenance.write_versions(lay.software_versions, aligner=settings.aligner)
    return StageResult(stage="provenance",
                       outputs={"params": lay.params_json, "software_versions": lay.software_versions,
                                "input_checksums": lay.input_checksums},
                       summary={"input_files": n_files, "aligner": settings.aligner})
