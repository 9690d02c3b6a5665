"""Differential expression with pydeseq2: one fit per contrast, tables with fixed columns.

``fit_contrasts`` reads the counts table, the samplesheet (and the matrix stage's ``samples.tsv`` with QC
exclusions), validates every contrast before fitting anything, filters genes, and per contrast runs
pydeseq2 (size factors, dispersions, Wald test, Cook's outliers, independent filtering, apeGLM-like
LFC shrinkage of the tested coefficient). See ``docs/de.md`` for the differences from R DESeq2.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from cfrna.de.contrasts import (
    Contrast,
    DesignSummary,
    check_contrast,
    read_contrasts,
)
from cfrna.de.sensitivity import adjusted_design, not_fittable, sensitivity_table
from cfrna.errors import ConfigError, EmptyResultError, InputFormatError
from cfrna.io.atomic import write_table
from cfrna.io.samplesheet import SampleSheet
from cfrna.io.tables import as_samplesheet, read_samples_table, read_tsv
from cfrna.pipeline.layout import OutputLayout

log = logging.getLogger(__name__)

FilterMethod = Literal["default", "cpm", "none"]
RESULT_COLUMNS = ["gene_id", "gene_name", "baseMean", "log2FoldChange", "lfcSE", "stat", "pvalue", "padj",
                  "log2FoldChange_shrunk"]
#: signatures (names in assets/genesets/cfrna_lupus.gmt) used as covariates in the sensitivity analysis
SENSITIVITY_SIGNATURES = {"erythroid": "BloodGen3_M9.2_Erythroid",
                          "platelet": "BloodGen3_M8.2_Platelet",  # published label "Prostanoids": SOURCES.md
                          "neutrophil": "BloodGen3_M10.4_Neutrophil_activation"}


@contextlib.contextmanager
def blas_single_thread() -> Iterator[None]:
    """Limit BLAS/OpenMP to one thread (pydeseq2 parallelises over genes with joblib instead).

    Without this, per-gene small matrix products oversubscribe the cores: pasilla took 133 s
    instead of 25 s on the 2-core test machine.
    """
    from threadpoolctl import threadpool_limits

    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    old = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict.fromkeys(keys, "1"))  # inherited by joblib/loky workers
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def read_counts(path: str | os.PathLike) -> pd.DataFrame:
    """Read a genes x samples integer counts table: cfrna, featureCounts or nf-core/rnaseq layout.

    See :func:`cfrna.io.tables.read_gene_matrix` (BAM paths mapped to sample ids, salmon counts rounded).

    Raises
    ------
    InputFormatError
        Not a table, non-numeric, negative or non-integer counts, duplicate gene ids.
    """
    from cfrna.io.tables import read_gene_matrix

    df = read_gene_matrix(path)
    vals = df.to_numpy(dtype=float)
    if np.isnan(vals).any():
        col = df.columns[np.isnan(vals).any(axis=0)][0]
        raise InputFormatError(f"missing values in sample column '{col}'", where=str(path),
                               hint="counts must be complete; write 0 for genes without reads")
    if not np.all(np.equal(np.mod(vals, 1), 0)):
        col = df.columns[(np.mod(vals, 1) != 0).any(axis=0)][0]
        raise InputFormatError(f"non-integer counts in sample column '{col}'", where=str(path),
                               hint="DESeq2 needs raw integer counts, not TPM/normalised values "
                                    "(round estimated counts first)")
    return df.astype(np.int64)


def filter_genes(counts: pd.DataFrame, *, method: FilterMethod = "default", min_total: int = 10,
                 min_cpm: float = 0.5, min_fraction: float = 0.75) -> pd.DataFrame:
    """Drop genes before DE.

    Parameters
    ----------
    counts : pandas.DataFrame
        Genes x samples.
    method : {"default", "cpm", "none"}
        ``default``: total count over the samples >= ``min_total`` (DESeq2 vignette pre-filter;
        default: 10). ``cpm``: CPM > ``min_cpm`` in more than ``min_fraction`` of the samples (the
        cfRNA literature filter, 0.5 CPM in > 75%). ``none``: only all-zero genes are dropped.
        All-zero genes are always dropped.

    Returns
    -------
    pandas.DataFrame
        The kept rows.
    """
    total = counts.sum(axis=1)
    keep = total > 0
    if method == "default":
        keep &= total >= min_total
    elif method == "cpm":
        lib = counts.sum(axis=0).replace(0, np.nan)
        cpm = counts / lib * 1e6
        keep &= (cpm > min_cpm).mean(axis=1) > min_fraction
    elif method != "none":
        raise ConfigError(f"unknown gene filter {method!r}", hint="use default, cpm or none")
    return counts.loc[keep]


def deseq_fit(counts: pd.DataFrame, metadata: pd.DataFrame, formula: str, coefficient: str, *,
              threads: int = 1, alpha: float = 0.05, lfc_shrink: bool = True, cooks: bool = True,
              independent_filter: bool = True) -> tuple[pd.DataFrame, object]:
    """Fit one design with the cfrna DESeq2 engine (:mod:`cfrna.de.nbglm`) and test one coefficient.

    The largest categorical main effect of the formula (e.g. ``patient_id`` in
    ``~ patient_id + flare``) is absorbed as a block, so hundreds of patient levels cost little.

    Parameters
    ----------
    counts : pandas.DataFrame
        Genes x samples (the samples of ``metadata``, any order).
    metadata : pandas.DataFrame
        Design columns indexed by sample; categorical columns carry the reference level first.
    formula : str
        Design formula, e.g. ``~ patient_id + flare``.
    coefficient : str
        Design-matrix column to test (Wald) and shrink, e.g. ``flare[T.flare]``.
    threads : int
        Genes fitted in parallel (numba threads) (default: 1).
    alpha : float
        Target FDR of independent filtering (default: 0.05).
    lfc_shrink : bool
        Add ``log2FoldChange_shrunk`` (apeGLM-like Cauchy prior, as pydeseq2 ``lfc_shrink``) (default: True).
    cooks, independent_filter : bool
        Cook's outlier filtering/refitting and independent filtering (default: True).

    Returns
    -------
    (pandas.DataFrame, NBGLMFit)
        Results indexed by gene id with baseMean, log2FoldChange, lfcSE, stat, pvalue, padj,
        log2FoldChange_shrunk; and the fit (size factors, dispersions, coefficients).

    Raises
    ------
    ConfigError
        Unknown coefficient; a design that is rank-deficient, e.g. a tested variable constant
        within every level of the absorbed block (names the columns).
    """
    from cfrna.de.nbglm import nbinom_deseq

    with blas_single_thread():
        res, fit = nbinom_deseq(counts, metadata, formula, coefficient, threads=threads, alpha=alpha,
                                lfc_shrink=lfc_shrink, cooks=cooks, independent_filter=independent_filter)
    return res[["baseMean", "log2FoldChange", "lfcSE", "stat", "pvalue", "padj", "log2FoldChange_shrunk"]], fit


def _gene_names(index: pd.Index, *, gtf: str | os.PathLike | None, annotation: str | os.PathLike | None) -> pd.Series:
    names: dict[str, str] = {}
    if gtf:
        from cfrna.reference import read_gtf

        names = read_gtf(gtf).symbol_map()
    elif annotation:
        ann = read_tsv(annotation, what="annotation table", required=("gene_id", "gene_name"), dtype=str,
                       hint="pass O/matrix/gene_annotation.tsv")
        names = dict(zip(ann["gene_id"], ann["gene_name"].fillna(ann["gene_id"]), strict=True))
    s = pd.Series([names.get(g) or g for g in index], index=index, dtype=object)
    return s


def signature_covariates(normalized: pd.DataFrame, gene_names: pd.Series, *,
                         gene_sets: dict[str, list[str]] | None = None, min_genes: int = 3) -> pd.DataFrame:
    """Blood-cell-origin scores (erythroid, platelet, neutrophil) per sample for the sensitivity model.

    Score = mean over the set's genes of the per-gene z-scored log2(normalised + 1) (see
    :func:`cfrna.signatures.zscore_scores`), standardised across samples. Signatures with fewer
    than ``min_genes`` genes present are left out (logged).
    """
    from cfrna.signatures import curated_gene_sets, resolve_symbol, zscore_scores

    sets = gene_sets or curated_gene_sets()
    expr = np.log2(normalized + 1.0)
    expr.index = gene_names.reindex(expr.index).fillna(pd.Series(expr.index, index=expr.index)).to_numpy()
    universe = set(expr.index)
    use = {short: [g for g in (resolve_symbol(x, universe) for x in sets[name]) if g is not None]
           for short, name in SENSITIVITY_SIGNATURES.items() if name in sets}
    scores = zscore_scores(expr, use, min_genes=min_genes)
    out = pd.DataFrame(index=normalized.columns)
    for short in use:
        col = scores.get(short)
        if col is None or col.isna().all() or col.std() == 0:
            log.info("sensitivity: signature %s not scored (fewer than %d genes present or constant)", short, min_genes)
            continue
        out[f"score_{short}"] = (col - col.mean()) / col.std()
    return out


def _sensitivity(counts: pd.DataFrame, summary: DesignSummary, primary: pd.DataFrame, covars: pd.DataFrame, *,
                 threads: int, alpha: float) -> tuple[pd.DataFrame | None, str]:
    try:
        meta, formula, _ = adjusted_design(summary, covars)
    except ConfigError as exc:
        return None, not_fittable(exc, covars)
    adj, _ = deseq_fit(counts, meta, formula, summary.coefficient, threads=threads, alpha=alpha, lfc_shrink=False)
    return sensitivity_table(primary, adj["log2FoldChange"], adj["padj"], covars, alpha=alpha), "ok"


#: extra columns of a limma_voom table (after the DESeq2 layout)
LIMMA_EXTRA_COLUMNS = ["AveExpr", "B"]


def _limma_fit(counts: pd.DataFrame, summ: DesignSummary, normalized: pd.DataFrame, *,
               threads: int) -> tuple[pd.DataFrame, dict]:
    """voom -> duplicateCorrelation -> GLS -> robust eBayes for one contrast (:mod:`cfrna.de.limma`)."""
    from cfrna.de.limma import limma_contrast

    res, info = limma_contrast(counts, summ, base_mean=normalized[summ.samples].mean(axis=1), threads=threads)
    cid = summ.contrast.id
    if summ.random_effect is not None:
        log.info("de: %s: consensus within-%s correlation %.4f (limma_voom, quality weights: %s)", cid,
                 summ.random_effect, info["correlation"], info["quality_weights"])
    if info["correlation_warning"]:
        log.warning("de: %s: CorrelationWarning: %s", cid, info["correlation_warning"])
    return res, info


def _method_columns(summ: DesignSummary, limma_info: dict) -> dict:
    """design.tsv columns naming the engine, the fixed blocks, the random effect and its correlation."""
    corr = limma_info.get("correlation")
    return {"method": summ.method, "blocking": ";".join(summ.contrast.blocking),
            "random_effect": summ.random_effect or "",
            "correlation": "" if corr is None else f"{corr:.6g}",
            "correlation_warning": limma_info.get("correlation_warning", ""),
            "quality_weights": limma_info.get("quality_weights", "")}


def fit_contrasts(counts: str | os.PathLike, samplesheet: str | os.PathLike | SampleSheet, contrasts: str | os.PathLike,
           outdir: str | os.PathLike, *, samples_table: str | os.PathLike | None = None, keep_failed: bool = False,
           threads: int = 1, min_count_filter: FilterMethod = "default", alpha: float = 0.05,
           lfc_shrink: bool = True, gtf: str | os.PathLike | None = None,
           annotation: str | os.PathLike | None = None, sensitivity: bool = True) -> dict:
    """Differential expression for every contrast of the contrasts file.

    Parameters
    ----------
    counts : path-like
        Genes x samples counts table (first column gene_id; .tsv/.csv/.gz).
    samplesheet : path-like or SampleSheet
        The samplesheet CSV (FASTQ paths not checked) or the sheet the pipeline parsed.
    contrasts : path-like
        Contrasts CSV (see :mod:`cfrna.de.contrasts` and docs/de.md).
    outdir : path-like
        Output folder (``O/de``).
    samples_table : path-like, optional
        ``O/matrix/samples.tsv``; samples with ``excluded`` true are dropped (unless
        ``keep_failed``) and listed with their ``qc_reasons`` in ``design.tsv``.
    keep_failed : bool
        Keep QC-failed samples (default: False).
    threads : int
        pydeseq2 ``n_cpus`` (default: 1).
    min_count_filter : {"default", "cpm", "none"}
        Gene filter (see :func:`filter_genes`) (default: ``"default"``, total count >= 10).
    alpha : float
        FDR level for independent filtering and the sensitivity table (default: 0.05).
    lfc_shrink : bool
        Compute ``log2FoldChange_shrunk`` (default: True).
    gtf, annotation : path-like, optional
        Source of gene names (GTF, else ``O/matrix/gene_annotation.tsv``; else names = ids).
    sensitivity : bool
        Write ``<contrast>.sensitivity.tsv`` (default: True).

    Returns
    -------
    dict
        ``{"contrasts": {id: {"n_significant", "groups", "path"}}, "outdir"}``.

    Raises
    ------
    ConfigError
        Bad contrasts/design, sample ids missing from the counts table, empty group after QC
        exclusion.
    InputFormatError
        Bad counts table.
    EmptyResultError
        No gene left after filtering.
    """
    outdir = Path(outdir)
    lay = OutputLayout.in_stage_folder("de", outdir)
    sheet = as_samplesheet(samplesheet)
    samples = sheet.to_frame()
    excluded: dict[str, str] = {}
    if samples_table is not None:
        st = read_samples_table(samples_table)
        extra = [c for c in st.columns if c not in samples.columns]
        samples = samples.join(st[extra], how="left")
        if not keep_failed:
            for s, row in st[st["excluded"]].iterrows():
                if s in samples.index:
                    excluded[s] = row["qc_reasons"] or "failed QC"
        if excluded:
            log.info("de: %d sample(s) excluded by QC (reasons: qc/qc_summary.tsv): %s", len(excluded),
                     ", ".join(excluded))
    cmat = read_counts(counts)
    not_in_counts = [s for s in samples.index if s not in cmat.columns and s not in excluded]
    for s in not_in_counts:
        excluded[s] = "no counts in the counts table"
    if not_in_counts:
        log.warning("de: %d samplesheet sample(s) missing from %s: %s", len(not_in_counts), counts,
                    ", ".join(not_in_counts))
    contrast_list = read_contrasts(contrasts)
    summaries = [check_contrast(c, samples, excluded=excluded) for c in contrast_list]  # all before fitting
    for s in summaries:
        log.info("de: %s", s.describe())

    used_all = [s for s in samples.index if s not in excluded]
    filtered = filter_genes(cmat[used_all], method=min_count_filter)
    if filtered.empty:
        raise EmptyResultError(f"no gene passes the '{min_count_filter}' filter over {len(used_all)} samples",
                               where=str(counts), hint="check the counts or use --filter none")
    log.info("de: %d of %d genes pass the '%s' filter", len(filtered), len(cmat), min_count_filter)
    names = _gene_names(cmat.index, gtf=gtf, annotation=annotation)

    # cohort-level size factors, normalised counts and VST (blind=False when a contrast covers every sample)
    full = next((s for s in summaries if set(s.samples) == set(used_all)), None)
    cohort_dds = _cohort_dds(filtered[used_all], full, threads=threads)
    sf = pd.Series(cohort_dds.obs["size_factors"].to_numpy(), index=used_all)
    normalized = pd.DataFrame(cohort_dds.layers["normed_counts"].T, index=filtered.index, columns=used_all)
    vst = pd.DataFrame(np.asarray(cohort_dds.layers["vst_counts"]).T, index=filtered.index, columns=used_all)
    del cohort_dds  # its layers are several genes x samples float64 arrays: free them before the fits
    write_table(lay.size_factors, pd.DataFrame({"sample": used_all, "size_factor": sf.to_numpy()}))
    write_table(lay.normalized_counts, normalized.rename_axis("gene_id").reset_index(), float_format="%.6g")
    write_table(lay.vst, vst.rename_axis("gene_id").reset_index(), float_format="%.6g")

    covars = (signature_covariates(normalized, names) if sensitivity else pd.DataFrame(index=used_all))
    design_rows = []
    out: dict = {"outdir": str(outdir), "contrasts": {}}
    for summ in summaries:
        c = summ.contrast
        sub = filter_genes(filtered[summ.samples], method="none")
        limma_info: dict = {}
        if summ.method == "limma_voom":
            res, limma_info = _limma_fit(sub, summ, normalized, threads=threads)
            columns = RESULT_COLUMNS + LIMMA_EXTRA_COLUMNS
        else:
            # keep only the results: the fitted dataset is freed before the next fit (bounded memory at scale)
            res = deseq_fit(sub, summ.metadata, summ.formula, summ.coefficient, threads=threads, alpha=alpha,
                            lfc_shrink=lfc_shrink)[0]
            columns = RESULT_COLUMNS
        table = res.reset_index()
        table.insert(1, "gene_name", names.reindex(table["gene_id"]).to_numpy())
        table = table.sort_values(["padj", "pvalue"], na_position="last", kind="mergesort")[columns]
        path = lay.deseq2_table(c.id)
        write_table(path, table, float_format="%.6g")
        n_sig = int((table["padj"] < alpha).sum())
        sens_status = "not run"
        if sensitivity:
            if summ.method == "limma_voom":
                from cfrna.de.limma import limma_sensitivity

                sens, sens_status = limma_sensitivity(sub, summ, res, covars, alpha=alpha, threads=threads,
                                                      correlation=limma_info.get("correlation"))
            else:
                sens, sens_status = _sensitivity(sub, summ, res, covars, threads=threads, alpha=alpha)
            if sens is not None:
                sens.insert(1, "gene_name", names.reindex(sens["gene_id"]).to_numpy())
                write_table(lay.sensitivity_table(c.id), sens, float_format="%.6g")
            else:
                log.warning("de: %s: sensitivity table not written: %s", c.id, sens_status)
        log.info("de: %s: %d genes tested, %d with padj < %g", c.id, len(table), n_sig, alpha)
        design_rows.append({
            "contrast": c.id, "variable": c.variable, "reference": c.reference, "target": c.target,
            "formula": summ.full_formula or summ.formula, "coefficient": summ.coefficient, "subset": c.subset or "",
            "n_reference": summ.groups[c.reference], "n_target": summ.groups[c.target],
            "reference_samples": ";".join(s for s in summ.samples if summ.metadata.loc[s, c.variable] == c.reference),
            "target_samples": ";".join(s for s in summ.samples if summ.metadata.loc[s, c.variable] == c.target),
            "excluded_samples": ";".join(s for s in summ.dropped if s in excluded),  # reasons: qc_summary.tsv
            "not_used_samples": ";".join(f"{s} ({r})" for s, r in summ.dropped.items() if s not in excluded),
            "gene_filter": min_count_filter, "genes_tested": len(table), "n_significant": n_sig, "alpha": alpha,
            "sensitivity": sens_status,
            **_method_columns(summ, limma_info),
            # which counts were tested: gene_counts.tsv (raw) or gene_counts_dedup.tsv (cfrna run --de-counts)
            "counts": Path(counts).name if isinstance(counts, (str, os.PathLike)) else "",
        })
        out["contrasts"][c.id] = {"n_significant": n_sig, "groups": summ.groups, "path": str(path)}
    write_table(lay.design, pd.DataFrame(design_rows))
    return out


@dataclass
class CohortFit:
    """Cohort-level size factors, normalised counts and VST (``obs``/``layers`` as in AnnData).

    ``obs["size_factors"]`` per sample; ``layers["normed_counts"]`` and ``layers["vst_counts"]`` are
    samples x genes.
    """

    obs: pd.DataFrame
    layers: dict[str, np.ndarray]


def _cohort_dds(counts: pd.DataFrame, full: DesignSummary | None, *, threads: int) -> CohortFit:
    """Size factors, normalised counts and VST over all used samples.

    With a contrast covering every sample, its design is used (as R's ``vst(dds, blind=FALSE)``,
    dispersion trend from 1,000 genes with mean > 5); otherwise an intercept-only design (blind).
    """
    from cfrna.de import nbglm

    if full is not None:
        meta, formula = full.metadata.loc[counts.columns], full.formula
    else:
        meta, formula = pd.DataFrame({"all": np.ones(counts.shape[1])}, index=counts.columns), "~ 1"
        log.info("de: no contrast uses every sample; vst.tsv is blind (intercept-only design)")
    y = counts.to_numpy(dtype=float)
    with blas_single_thread():
        sf = nbglm.size_factors(y)
        design = nbglm.build_design(formula, meta)
        vst = nbglm.vst(y, design, sf, threads=threads)
    obs = pd.DataFrame({"size_factors": sf}, index=counts.columns)
    return CohortFit(obs=obs, layers={"normed_counts": (y / sf[None, :]).T, "vst_counts": vst.T})


def results_for(counts: pd.DataFrame, samples: pd.DataFrame, contrast: Contrast, **kwargs) -> pd.DataFrame:
    """Convenience: validate ``contrast`` against ``samples`` and return its results table (no files)."""
    summ = check_contrast(contrast, samples)
    res, _ = deseq_fit(filter_genes(counts[summ.samples], method="none"), summ.metadata, summ.formula,
                       summ.coefficient, **kwargs)
    return res


__all__: Sequence[str] = ["fit_contrasts", "deseq_fit", "filter_genes", "read_counts", "results_for", "signature_covariates"]
