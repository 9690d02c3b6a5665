"""``cfrna matrix``: per-sample count files -> ``gene_counts.tsv``, ``gene_annotation.tsv``, ``samples.tsv``."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cfrna.errors import ConfigError, EmptyResultError, InputFormatError
from cfrna.io.atomic import write_table
from cfrna.io.samplesheet import read_samplesheet
from cfrna.reference import read_gtf

log = logging.getLogger(__name__)


def read_sample_counts(path: str | os.PathLike) -> pd.Series:
    """Read one ``<sample>.counts.tsv`` (``gene_id<TAB>count``, header line) into a Series."""
    try:
        df = pd.read_csv(path, sep="\t", dtype={0: str}, comment="#")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputFormatError(f"not a counts table ({exc})", where=str(path)) from None
    if df.shape[1] < 2 or df.columns[0] != "gene_id":
        raise InputFormatError("expected columns gene_id<TAB>count", where=str(path))
    s = pd.to_numeric(df.iloc[:, 1], errors="coerce")
    if s.isna().any():
        bad = int(np.flatnonzero(s.isna().to_numpy())[0]) + 2
        raise InputFormatError("non-numeric count", where=f"{path}:{bad}")
    return pd.Series(s.to_numpy(), index=df["gene_id"].astype(str).to_numpy(), name=Path(path).name)


def read_counts_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a gene x sample counts table: cfrna, featureCounts or nf-core/rnaseq layout.

    See :func:`cfrna.io.tables.read_gene_matrix` (first column gene_id; .tsv, .csv, .txt or .gz).
    """
    from cfrna.io.tables import read_gene_matrix

    return read_gene_matrix(path)


def _qc_table(qc_summary: str | os.PathLike | None) -> pd.DataFrame | None:
    if qc_summary is None:
        return None
    if not Path(qc_summary).exists():
        raise ConfigError("QC summary not found", where=str(qc_summary), hint="run `cfrna qc` first")
    qc = pd.read_csv(qc_summary, sep="\t", dtype={"sample": str}).set_index("sample")
    return qc


def run_matrix(
    samplesheet: str | os.PathLike,
    gtf: str | os.PathLike,
    counts_dir: str | os.PathLike,
    outdir: str | os.PathLike,
    *,
    qc_summary: str | os.PathLike | None = None,
    sample_errors: dict[str, str] | None = None,
) -> dict:
    """Merge ``counts_dir/<sample>.counts.tsv`` of every sample in the sheet.

    Samples without a counts file (their upstream stage failed) are kept in ``samples.tsv`` with
    ``excluded=True`` and the reason, and left out of ``gene_counts.tsv``; nothing is dropped
    silently. Returns the paths written and the sample/gene numbers.
    """
    sheet = read_samplesheet(samplesheet, check_files=False)
    ann = read_gtf(gtf)
    outdir = Path(outdir)
    counts_dir = Path(counts_dir)
    sample_errors = dict(sample_errors or {})
    gene_ids = ann.genes["gene_id"].to_numpy()
    cols: dict[str, np.ndarray] = {}
    for s in sheet.samples:
        f = counts_dir / f"{s.sample}.counts.tsv"
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
    qc = _qc_table(qc_summary)
    if qc is not None:
        qc = qc.rename(columns={"status": "qc_status", "reasons": "qc_reasons"})
        qc = qc.drop(columns=[c for c in qc.columns if c in samples.columns])
        samples = samples.join(qc, how="left")
    for col, default in (("qc_status", "pass"), ("qc_reasons", ""), ("excluded", False)):
        if col not in samples.columns:
            samples[col] = default
    samples["qc_reasons"] = samples["qc_reasons"].fillna("").astype(str)
    samples["excluded"] = samples["excluded"].fillna(False).astype(str).str.lower().isin(["true", "1", "yes"])
    samples["has_counts"] = samples.index.isin(counts.columns)
    for sid, err in sample_errors.items():
        if sid in samples.index:
            samples.loc[sid, "excluded"] = True
            samples.loc[sid, "qc_status"] = "fail"
            prev = samples.loc[sid, "qc_reasons"]
            samples.loc[sid, "qc_reasons"] = f"{prev};{err}" if prev else err
    samples.loc[~samples["has_counts"], "excluded"] = True

    genes = ann.genes.copy()
    paths = {
        "gene_counts": outdir / "gene_counts.tsv",
        "gene_annotation": outdir / "gene_annotation.tsv",
        "samples": outdir / "samples.tsv",
    }
    write_table(paths["gene_counts"], counts, index=True)
    write_table(paths["gene_annotation"], genes, index=False)
    write_table(paths["samples"], samples, index=True)
    n_excl = int(samples["excluded"].sum())
    log.info("matrix: %d genes x %d samples (%d excluded from DE)", counts.shape[0], counts.shape[1], n_excl)
    return {"paths": {k: str(v) for k, v in paths.items()}, "n_genes": counts.shape[0],
            "n_samples": counts.shape[1], "n_excluded": n_excl}
