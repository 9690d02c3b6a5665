"""The run's AnnData, ``matrix/cfrna.h5ad``: the carrier the cohort stages pass along.

The matrix stage creates it (:func:`new_carrier`: counts, the sample table with QC in ``obs``, the gene
annotation in ``var``); DE adds to it (:func:`add_de`: ``layers`` normalized and vst, ``varm`` and
``uns["de"]`` tables, the design, the PCA of the vst); pathways adds to it (:func:`add_pathways`: GSEA
tables, signature scores in ``obsm``); the report records the run's provenance (:func:`add_provenance`)
and reads everything else from it. Each addition is an atomic rewrite (:func:`update_carrier`); the
``.tsv`` tables stay the human-readable, Nextflow-friendly outputs of each stage.

It holds exactly the run's samples (``matrix/samples.tsv``) and contrasts (``de/design.tsv``): folders
are never listed, so tables an older run left there stay out. ``uns`` holds dicts and DataFrames (no
JSON text); ``var["gene_name"]`` is unique and filled, ready for scanpy's ``gene_symbols="gene_name"``
(docs/output.md). :func:`build_anndata` assembles the same object from a finished run folder.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cfrna.errors import ConfigError, InputFormatError
from cfrna.io.atomic import atomic_path
from cfrna.io.tables import (
    read_expression,
    read_gene_matrix,
    read_json,
    read_qc_summary,
    read_samples_table,
    read_tsv,
    read_yaml,
)
from cfrna.matrix.pca import pca

log = logging.getLogger(__name__)

#: DE table columns every consumer needs (docs/architecture.md: ``<contrast>.deseq2.tsv``)
DE_COLUMNS = ("gene_id", "baseMean", "log2FoldChange", "padj")
#: GSEA table columns every consumer needs
GSEA_COLUMNS = ("gene_set", "nes", "fdr", "leading_edge")


def _clean_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Make a DataFrame h5ad-safe: object columns with mixed types become strings."""
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].where(df[c].notna(), "").astype(str)
    df.columns = [str(c) for c in df.columns]
    return df


def _integer_columns(obs: pd.DataFrame, names: tuple[str, ...] = ("visit_month",)) -> pd.DataFrame:
    """Whole-number columns among ``names`` (e.g. visit_month) as nullable integers (pandas ``Int64``).

    The samplesheet schema allows a fractional month (6.5); such a column stays float.
    """
    for c in names:
        if c in obs.columns and pd.api.types.is_float_dtype(obs[c]):
            v = obs[c]
            if bool(((v.dropna() % 1) == 0).all()):
                obs[c] = v.astype("Int64")
    return obs


def unique_gene_names(ids: pd.Index, names: pd.Series) -> pd.Series:
    """Gene symbols usable as scanpy ``gene_symbols``: empty names take the gene id, and a symbol that
    occurs again gets ``-1``, ``-2``… in annotation order (anndata's ``var_names_make_unique`` rule)."""
    from anndata.utils import make_index_unique

    filled = names.astype(object).where(names.notna() & (names.astype(str).str.strip() != ""), pd.Series(ids, index=names.index))
    return pd.Series(make_index_unique(pd.Index(filled.astype(str))), index=names.index)


def _h5ad_value(value):
    """A JSON value as anndata can write it in ``uns``: None -> "", lists of scalars kept, dicts recursed."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return {str(k): _h5ad_value(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_h5ad_value(v) for v in value]
        if all(isinstance(v, str) for v in items) or all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
            return np.asarray(items) if items else np.asarray([], dtype=str)
        return {str(k): v for k, v in enumerate(items)}
    return value


# ------------------------------------------------------------------------------------ the carrier
def new_carrier(counts: pd.DataFrame, samples: pd.DataFrame | None, genes: pd.DataFrame | None = None, *,
                qc_summary: pd.DataFrame | None = None):
    """The AnnData the matrix stage creates.

    Parameters
    ----------
    counts : pandas.DataFrame
        Genes x samples counts (``gene_counts.tsv``); its gene order is ``var``'s.
    samples : pandas.DataFrame or None
        The sample table indexed by sample (``samples.tsv``: metadata, QC, ``excluded``); the samples
        with counts become ``obs``, the whole table (failed samples too) is kept as ``uns["samples"]``.
        None: ``obs`` has the counts' samples and no column.
    genes : pandas.DataFrame, optional
        Gene annotation indexed by gene id (``gene_annotation.tsv``).
    qc_summary : pandas.DataFrame, optional
        ``qc_summary.tsv`` indexed by sample, kept as ``uns["qc_summary"]``.
    """
    import anndata as ad

    counts = counts.copy()
    counts.index = counts.index.astype(str)
    counts.columns = counts.columns.astype(str)
    if samples is None:
        samples, keep_table = pd.DataFrame(index=pd.Index(counts.columns, name="sample")), False
    else:
        samples, keep_table = samples.copy(), True
    samples.index = samples.index.astype(str).rename("sample")
    obs = _integer_columns(_clean_frame(samples.loc[[s for s in samples.index if s in counts.columns]]))
    var = _clean_frame(genes.reindex(counts.index)) if genes is not None else pd.DataFrame(index=counts.index)
    var.index.name = None
    if "gene_name" in var.columns:
        var["gene_name_gtf"] = var["gene_name"]
        var["gene_name"] = unique_gene_names(var.index, var["gene_name"].replace("", np.nan)).to_numpy()
    X = counts[obs.index].T.to_numpy()
    adata = ad.AnnData(X=X.astype(np.float32), obs=obs, var=var)
    adata.layers["counts"] = X.astype(np.float32 if not np.issubdtype(X.dtype, np.integer) else np.int64)
    if keep_table:
        adata.uns["samples"] = _clean_frame(samples.reset_index())
    if qc_summary is not None:
        adata.uns["qc_summary"] = _clean_frame(qc_summary.reset_index() if qc_summary.index.name == "sample"
                                               else qc_summary)
    return adata


def add_de(adata, *, tables: Mapping[str, pd.DataFrame], design: pd.DataFrame | None,
           normalized: pd.DataFrame | None = None, vst: pd.DataFrame | None = None,
           size_factors: pd.Series | None = None, pca_genes: int = 500) -> None:
    """What DE adds: ``layers["normalized"]``/``["vst"]`` (genes x samples frames; NaN where absent),
    ``varm["de_<id>"]`` and ``uns["de"][id]`` per contrast, ``uns["de_design"]``, ``obs["size_factor"]``
    and ``uns["pca"]`` (PCA of the ``pca_genes`` most variable vst genes, :func:`cfrna.matrix.pca.pca`)."""
    for name, frame in (("normalized", normalized), ("vst", vst)):
        if frame is not None:
            f = frame.copy()
            f.index = f.index.astype(str)
            f.columns = f.columns.astype(str)
            adata.layers[name] = f.T.reindex(index=adata.obs_names, columns=adata.var_names).to_numpy(dtype=np.float32)
    if vst is not None:
        p = pca(vst, n_top=pca_genes)
        if p is None:
            adata.uns.pop("pca", None)
        else:
            adata.uns["pca"] = {"samples": np.asarray(p["samples"], dtype=str), "pc1": np.asarray(p["pc1"]),
                                "pc2": np.asarray(p["pc2"]), "explained": np.asarray(p["explained"]),
                                "n_genes": int(p["n_genes"])}
    if size_factors is not None:
        adata.obs["size_factor"] = size_factors.reindex(adata.obs_names).to_numpy(dtype=float)
    for key in [k for k in adata.varm if k.startswith("de_")]:
        del adata.varm[key]
    de: dict[str, pd.DataFrame] = {}
    for cid, table in tables.items():
        de[cid] = _clean_frame(table)
        aligned = table.assign(gene_id=table["gene_id"].astype(str)).set_index("gene_id").reindex(adata.var_names)
        adata.varm[f"de_{cid}"] = _clean_frame(aligned.drop(columns=["gene_name"], errors="ignore"))
    if de:
        adata.uns["de"] = de
    else:
        adata.uns.pop("de", None)
    if design is not None:
        adata.uns["de_design"] = _clean_frame(design)


def add_pathways(adata, *, gsea: Mapping[str, pd.DataFrame], scores: pd.DataFrame | None = None,
                 association: pd.DataFrame | None = None) -> None:
    """What pathways adds: ``uns["gsea"][id]`` per contrast, ``obsm["signature_scores"]`` (samples x
    signatures, NaN for samples not scored) and ``uns["signature_association"]``."""
    if gsea:
        adata.uns["gsea"] = {cid: _clean_frame(t) for cid, t in gsea.items()}
    else:
        adata.uns.pop("gsea", None)
    if scores is not None:
        sc = scores.copy()
        sc.index = sc.index.astype(str)
        adata.obsm["signature_scores"] = _clean_frame(sc.reindex(adata.obs_names))
    if association is not None:
        adata.uns["signature_association"] = _clean_frame(association)


def drop_results(adata) -> bool:
    """Remove what DE and pathways added (a run without contrasts into a folder that had some); True if
    anything was removed."""
    keys = [k for k in ("de", "de_design", "gsea", "signature_association", "pca") if k in adata.uns]
    varm = [k for k in adata.varm if k.startswith("de_")]
    layers = [k for k in ("normalized", "vst") if k in adata.layers]
    for k in keys:
        del adata.uns[k]
    for k in varm:
        del adata.varm[k]
    for k in layers:
        del adata.layers[k]
    if "signature_scores" in adata.obsm:
        del adata.obsm["signature_scores"]
    return bool(keys or varm or layers)


def add_provenance(adata, *, params: dict | None = None, software_versions: dict | None = None,
                   input_checksums: pd.DataFrame | None = None) -> None:
    """``uns["provenance"]``: run parameters, software versions (dicts) and input checksums (a table)."""
    prov: dict[str, Any] = {}
    if params is not None:
        prov["params"] = _h5ad_value(params)
    if software_versions is not None:
        prov["software_versions"] = _h5ad_value(software_versions)
    if input_checksums is not None:
        prov["input_checksums"] = _clean_frame(input_checksums)
    adata.uns["provenance"] = prov


def read_carrier(path: str | os.PathLike):
    """Read ``cfrna.h5ad``; a missing or unreadable file is a one-line error naming it."""
    import anndata as ad

    path = Path(path)
    if not path.is_file():
        raise ConfigError("the run's AnnData is missing", where=str(path), hint="run `cfrna matrix` first")
    try:
        return ad.read_h5ad(path)
    except (OSError, KeyError, ValueError) as exc:
        raise InputFormatError(f"not a readable h5ad file ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                               where=str(path), hint="re-run `cfrna matrix`") from None


def write_carrier(adata, path: str | os.PathLike) -> Path:
    """Write the AnnData atomically (gzip-compressed datasets) and return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        adata.write_h5ad(tmp, compression="gzip")
    log.info("wrote %s (%d samples x %d genes)", path, adata.n_obs, adata.n_vars)
    return path


def check_h5ad_out(h5ad: str | os.PathLike | None, h5ad_out: str | os.PathLike | None) -> None:
    """Check a stage's ``--h5ad``/``--h5ad-out`` pair before any work: an output needs an input carrier, and
    the output must be a file name (not a folder)."""
    if h5ad_out is None:
        return
    if h5ad is None:
        raise ConfigError("--h5ad-out needs --h5ad (the AnnData the results are added to)",
                          hint="give --h5ad O/matrix/cfrna.h5ad")
    if Path(h5ad_out).is_dir():
        raise ConfigError("--h5ad-out is a folder, not a file name", where=str(h5ad_out),
                          hint="give the file to write, e.g. cfrna.h5ad")


def update_carrier(path: str | os.PathLike, change: Callable[[Any], None], *, out: str | os.PathLike | None = None) -> Path:
    """Read the carrier at ``path``, apply ``change(adata)``, write it back atomically (to ``out`` if given)."""
    adata = read_carrier(path)
    change(adata)
    return write_carrier(adata, out if out is not None else path)


# ------------------------------------------------------------------------------ from the run's tables
def contrast_ids(design: pd.DataFrame | None) -> list[str]:
    """The run's contrasts in order: the ``contrast`` column of ``de/design.tsv``."""
    return [] if design is None else [str(c) for c in design["contrast"].dropna()]


def read_design(path: str | os.PathLike) -> pd.DataFrame | None:
    """``de/design.tsv`` (None when absent)."""
    return read_tsv(path, what="design table", required=("contrast",), dtype={"contrast": str},
                    hint="re-run `cfrna de`") if Path(path).is_file() else None


def read_de_tables(de_dir: str | os.PathLike, ids: list[str]) -> dict[str, pd.DataFrame]:
    """``<id>.deseq2.tsv`` of each listed contrast (a listed table that is missing is an error)."""
    from cfrna.pipeline.layout import OutputLayout

    de = OutputLayout.in_stage_folder("de", de_dir)
    out = {}
    for cid in ids:
        f = de.deseq2_table(cid)
        if not f.is_file():
            raise InputFormatError(f"contrast {cid}: DE table listed in de/design.tsv is missing", where=str(f),
                                   hint="re-run `cfrna de`")
        out[cid] = read_tsv(f, what=f"DE table of contrast {cid}", required=DE_COLUMNS, dtype={"gene_id": str})
    return out


def read_gsea_tables(pw_dir: str | os.PathLike, ids: list[str]) -> dict[str, pd.DataFrame]:
    """``<id>.gsea.tsv`` of each listed contrast that has one."""
    from cfrna.pipeline.layout import OutputLayout

    pw = OutputLayout.in_stage_folder("pathways", pw_dir)
    out = {}
    for cid in ids:
        f = pw.gsea_table(cid)
        if f.is_file():
            out[cid] = read_tsv(f, what=f"GSEA table of contrast {cid}", required=GSEA_COLUMNS)
    return out


def read_size_factors(path: str | os.PathLike) -> pd.Series | None:
    """``de/size_factors.tsv`` as a Series indexed by sample (None when absent)."""
    if not Path(path).is_file():
        return None
    sf = read_tsv(path, what="size factors", required=("sample", "size_factor"), dtype={"sample": str})
    return sf.set_index("sample")["size_factor"]


def read_scores(path: str | os.PathLike) -> pd.DataFrame | None:
    """``signature_scores.tsv`` indexed by sample (None when absent)."""
    if not Path(path).is_file():
        return None
    return read_tsv(path, what="signature scores", required=("sample",), dtype={"sample": str}).set_index("sample")


def read_provenance(info: str | os.PathLike) -> dict[str, Any]:
    """The keyword arguments of :func:`add_provenance` from a ``pipeline_info/`` folder (absent files left out)."""
    from cfrna.pipeline.layout import OutputLayout

    lay = OutputLayout.in_stage_folder("pipeline_info", info)
    kw: dict[str, Any] = {}
    if lay.params_json.is_file():
        kw["params"] = read_json(lay.params_json, error=f"{lay.params_json.name} is not valid JSON",
                                 hint="re-run the pipeline or delete the file")
    if lay.software_versions.is_file():
        kw["software_versions"] = read_yaml(lay.software_versions, what="software versions", all_strings=True)
    if lay.input_checksums.is_file():
        kw["input_checksums"] = read_tsv(lay.input_checksums, what="input checksums")
    return kw


def build_anndata(results_dir: str | os.PathLike):
    """Build the AnnData of a finished run folder from its tables (see docs/output.md for the slots)."""
    from cfrna.pipeline.layout import OutputLayout

    lay = OutputLayout(results_dir)
    if not lay.gene_counts.exists():
        raise ConfigError("gene counts not found", where=str(lay.gene_counts), hint="run `cfrna matrix` first")
    counts = read_gene_matrix(lay.gene_counts)
    samples = read_samples_table(lay.samples_table) if lay.samples_table.is_file() else None
    genes = (read_tsv(lay.gene_annotation, what="gene annotation", required=("gene_id",), dtype=str).set_index("gene_id")
             if lay.gene_annotation.is_file() else None)
    qc = read_qc_summary(lay.qc_summary) if lay.qc_summary.is_file() else None
    adata = new_carrier(counts, samples, genes, qc_summary=qc)
    design = read_design(lay.design)
    ids = contrast_ids(design)
    add_de(adata, tables=read_de_tables(lay.de_dir, ids), design=design,
           normalized=read_expression(lay.normalized_counts, what="normalized counts")
           if lay.normalized_counts.is_file() else None,
           vst=read_expression(lay.vst, what="vst matrix") if lay.vst.is_file() else None,
           size_factors=read_size_factors(lay.size_factors))
    assoc = lay.signature_association
    add_pathways(adata, gsea=read_gsea_tables(lay.pathways_dir, ids), scores=read_scores(lay.signature_scores),
                 association=read_tsv(assoc, what="signature association") if assoc.is_file() else None)
    add_provenance(adata, **read_provenance(lay.info_dir))
    return adata


def write_anndata(results_dir: str | os.PathLike) -> Path:
    """Write ``<results>/matrix/cfrna.h5ad`` from the run folder's tables, atomically, and return its path."""
    from cfrna.pipeline.layout import OutputLayout

    return write_carrier(build_anndata(results_dir), OutputLayout(results_dir).h5ad)
