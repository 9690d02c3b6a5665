"""The matrix stage: per-sample counts -> cohort tables and the run's AnnData (``cfrna.h5ad``)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cfrna.io.atomic import write_table
from cfrna.io.samplesheet import SampleSheet
from cfrna.io.tables import as_samplesheet, read_qc_summary
from cfrna.matrix.anndata_io import new_carrier, write_carrier
from cfrna.matrix.merge import merge_counts, merge_dedup_counts
from cfrna.pipeline.layout import OutputLayout
from cfrna.pipeline.stages import StageResult
from cfrna.reference.gtf import Annotation, read_gtf

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MatrixSettings:
    """Settings of the matrix stage.

    Attributes
    ----------
    h5ad
        Create ``cfrna.h5ad`` beside the tables (default: True).
    threads
        Accepted for uniformity (the merge is single-threaded).
    """

    h5ad: bool = True
    threads: int = 1


def run_matrix(*, samplesheet: str | os.PathLike | SampleSheet, gtf: str | os.PathLike | Annotation,
               counts_dir: str | os.PathLike, qc_summary: str | os.PathLike | None = None,
               sample_errors: dict[str, str] | None = None, outdir: str | os.PathLike,
               settings: MatrixSettings = MatrixSettings()) -> StageResult:
    """Merge the samples' counts; write ``gene_counts.tsv``, ``gene_annotation.tsv``, ``samples.tsv`` and
    create ``cfrna.h5ad`` (counts, ``obs`` = samples with counts + QC, ``var`` = annotation). When the
    samples were counted with ``--dedup`` (``<ID>.counts.dedup.tsv``), also ``gene_counts_dedup.tsv``.

    ``samplesheet``/``gtf`` may be parsed objects (the pipeline parses them once). ``qc_summary`` adds
    the QC columns and exclusions; ``sample_errors`` (sample -> reason) marks samples whose upstream
    stage failed. Summary: ``n_genes``, ``n_samples`` (with counts), ``n_excluded``.
    """
    from cfrna.errors import ConfigError

    lay = OutputLayout.in_stage_folder("matrix", outdir)
    sheet = as_samplesheet(samplesheet)
    ann = gtf if isinstance(gtf, Annotation) else read_gtf(gtf)
    qc = None
    if qc_summary is not None:
        if not Path(qc_summary).exists():
            raise ConfigError("QC summary not found", where=str(qc_summary), hint="run `cfrna qc` first")
        qc = read_qc_summary(qc_summary)
    t = merge_counts(sheet, ann, counts_dir, qc=qc, sample_errors=sample_errors)
    write_table(lay.gene_counts, t.counts, index=True)
    write_table(lay.gene_annotation, t.genes, index=False)
    write_table(lay.samples_table, t.samples, index=True)
    log.info("matrix: %d genes x %d samples (%d excluded from DE)", t.counts.shape[0], t.counts.shape[1],
             t.n_excluded)
    outputs = {"gene_counts": lay.gene_counts, "gene_annotation": lay.gene_annotation,
               "samples_table": lay.samples_table}
    dedup = merge_dedup_counts(t.counts, counts_dir)
    if dedup is not None:  # counting ran with --dedup: the deduplicated matrix beside the raw one
        write_table(lay.gene_counts_dedup, dedup, index=True)
        outputs["gene_counts_dedup"] = lay.gene_counts_dedup
    else:
        lay.gene_counts_dedup.unlink(missing_ok=True)  # an older run's, not this one's
    if settings.h5ad:
        adata = new_carrier(t.counts, t.samples, t.genes.set_index("gene_id"), qc_summary=qc)
        outputs["h5ad"] = write_carrier(adata, lay.h5ad)
    warnings = [f"sample {s}: no counts, excluded" for s in t.samples.index[~t.samples["has_counts"]]]
    return StageResult("matrix", outputs=outputs,
                       summary={"n_genes": int(t.counts.shape[0]), "n_samples": int(t.counts.shape[1]),
                                "n_excluded": t.n_excluded},
                       warnings=warnings)


__all__ = ["MatrixSettings", "run_matrix"]
