"""``cfrna matrix``: per-sample count files -> the cohort counts, sample table and gene annotation.

:func:`merge_counts` does the science (no files written); :func:`cfrna.matrix.stage.run_matrix` writes
``gene_counts.tsv``, ``gene_annotation.tsv``, ``samples.tsv`` and creates ``cfrna.h5ad``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cfrna.errors import EmptyResultError, InputFormatError
from cfrna.io.samplesheet import SampleSheet
from cfrna.io.tables import as_bool, read_gene_matrix, read_sample_counts
from cfrna.reference.gtf import Annotation

log = logging.getLogger(__name__)


def read_counts_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a gene x sample counts table: cfrna, featureCounts or nf-core/rnaseq layout.

    See :func:`cfrna.io.tables.read_gene_matrix` (first column gene_id; .tsv, .csv, .txt or .gz).
    """
    return read_gene_matrix(path)


@dataclass
class MatrixTables:
    """The matrix stage's tables: ``counts`` genes x samples (GTF gene order, samplesheet sample order),
    ``samples`` indexed by sample (metadata + QC + ``qc_status``, ``qc_reasons``, ``excluded``,
    ``has_counts``), ``genes`` the GTF gene table."""

    counts: pd.DataFrame
    samples: pd.DataFrame
    genes: pd.DataFrame

    @property
    def n_excluded(self) -> int:
        return int(self.samples["excluded"].sum())


def merge_counts(sheet: SampleSheet, ann: Annotation, counts_dir: str | os.PathLike, *,
                 qc: pd.DataFrame | None = None, sample_errors: dict[str, str] | None = None) -> MatrixTables:
    """Merge ``counts_dir/<sample>.counts.tsv`` of every sample in the sheet.

    Samples without a counts file (their upstream stage failed) are kept in the sample table with
    ``excluded=True`` and the reason, and left out of the counts; nothing is dropped silently.
    ``qc`` is ``qc_summary.tsv`` indexed by sample (:func:`cfrna.io.tables.read_qc_summary`).
    """
    from cfrna.pipeline.layout import OutputLayout

    counts_dir = Path(counts_dir)
    lay = OutputLayout.in_stage_folder("count", counts_dir)
    sample_errors = dict(sample_errors or {})
    gene_ids = ann.genes["gene_id"].to_numpy()
    cols: dict[str, np.ndarray] = {}
    for s in sheet.samples:
        f = lay.counts(s.sample)
        if not f.exists():
            sample_errors.setdefault(s.sample, f"no counts ({f.name} missing)")
            log.warning("sample %s: %s", s.sample, sample_errors[s.sample])
            continue
        series = read_sample_counts(f)
        if len(series) != len(gene_ids) or not np.array_equal(series.index.to_numpy(), gene_ids):
            raise InputFormatError("gene ids differ from the GTF (counted with another annotation?)",
                                   where=str(f), hint="recount with the same --gtf")
        cols[s.sample] = series.to_numpy()
    if not cols:
        raise EmptyResultError("no sample has counts", where=str(counts_dir),
                               hint="check the per-sample errors in pipeline_info/")
    counts = pd.DataFrame(cols, index=pd.Index(gene_ids, name="gene_id"))
    if all(np.allclose(v, np.round(v)) for v in cols.values()):
        counts = counts.round().astype(np.int64)

    samples = sheet.to_frame()
    if qc is not None:
        qc = qc.rename(columns={"status": "qc_status", "reasons": "qc_reasons"})
        qc = qc.drop(columns=[c for c in qc.columns if c in samples.columns])
        samples = samples.join(qc, how="left")
    for col, default in (("qc_status", "pass"), ("qc_reasons", ""), ("excluded", False)):
        if col not in samples.columns:
            samples[col] = default
    samples["qc_reasons"] = samples["qc_reasons"].fillna("").astype(str)
    samples["excluded"] = as_bool(samples["excluded"])
    samples["has_counts"] = samples.index.isin(counts.columns)
    for sid, err in sample_errors.items():
        if sid in samples.index:
            samples.loc[sid, "excluded"] = True
            samples.loc[sid, "qc_status"] = "fail"
            prev = samples.loc[sid, "qc_reasons"]
            samples.loc[sid, "qc_reasons"] = f"{prev};{err}" if prev else err
    samples.loc[~samples["has_counts"], "excluded"] = True
    return MatrixTables(counts=counts, samples=samples, genes=ann.genes.copy())


def merge_dedup_counts(counts: pd.DataFrame, counts_dir: str | os.PathLike) -> pd.DataFrame | None:
    """The deduplicated counts (``<sample>.counts.dedup.tsv`` of ``cfrna count --dedup``) of the samples of
    ``counts`` (the raw matrix of :func:`merge_counts`), in the same gene and sample order; None when no
    sample has them. Some samples with and some without is an :class:`InputFormatError` naming one.
    """
    from cfrna.pipeline.layout import OutputLayout

    lay = OutputLayout.in_stage_folder("count", counts_dir)
    files = {s: lay.counts_dedup(s) for s in counts.columns}
    have = [s for s, f in files.items() if f.is_file()]
    if not have:
        return None
    if len(have) < len(files):
        lacking = next(s for s in files if s not in have)
        raise InputFormatError(f"sample {lacking} has no deduplicated counts while {len(have)} other(s) do",
                               where=str(files[lacking]), hint="recount every sample with the same --dedup")
    cols = {}
    for s, f in files.items():
        series = read_sample_counts(f)
        if not np.array_equal(series.index.to_numpy(), counts.index.to_numpy()):
            raise InputFormatError("gene ids differ from the raw counts' (counted with another annotation?)",
                                   where=str(f), hint="recount with the same --gtf")
        if (series.to_numpy() > counts[s].to_numpy() + 1e-9).any():
            raise InputFormatError("deduplicated counts exceed the raw counts", where=str(f),
                                   hint="the raw and deduplicated counts come from different runs: recount")
        cols[s] = series.to_numpy()
    out = pd.DataFrame(cols, index=counts.index)
    if all(np.allclose(v, np.round(v)) for v in cols.values()):
        out = out.round().astype(np.int64)
    log.info("matrix: deduplicated counts of %d samples", out.shape[1])
    return out


__all__ = ["MatrixTables", "merge_counts", "merge_dedup_counts", "read_counts_table"]
