"""Assemble the one ``.h5ad`` with everything: counts, normalized and VST layers, sample table with
QC, gene annotation, DE and GSEA results per contrast, signature scores and provenance.

It holds exactly the run's samples (``matrix/samples.tsv``) and contrasts (``de/design.tsv``): the
``de/`` and ``pathways/`` folders are never listed, so tables an older run left there stay out.
``uns`` holds dicts and DataFrames (no JSON text); ``var["gene_name"]`` is unique and filled, ready
for scanpy's ``gene_symbols="gene_name"`` (docs/output.md)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cfrna.errors import ConfigError, InputFormatError
from cfrna.io.atomic import atomic_path

log = logging.getLogger(__name__)


def _read_tsv(path: Path, **kw) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", **kw)


def _layer(path: Path, obs: pd.Index, var: pd.Index) -> np.ndarray | None:
    """A genes x samples table reindexed to samples x genes (NaN where absent)."""
    if not path.exists():
        return None
    df = _read_tsv(path, index_col=0)
    df.index = df.index.astype(str)
    return df.T.reindex(index=obs, columns=var).to_numpy(dtype=np.float32)


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


def run_contrasts(results_dir: str | os.PathLike) -> list[str]:
    """The contrasts of the run, in order: the ``contrast`` column of ``de/design.tsv`` (empty without DE)."""
    design = Path(results_dir) / "de" / "design.tsv"
    if not design.is_file():
        return []
    df = _read_tsv(design, dtype={"contrast": str})
    if "contrast" not in df.columns:
        raise InputFormatError("design table has no contrast column", where=str(design), hint="re-run `cfrna de`")
    return [str(c) for c in df["contrast"].dropna()]


def build_anndata(results_dir: str | os.PathLike):
    """Build the AnnData of a finished run folder (see docs/output.md for the slots)."""
    import anndata as ad

    res = Path(results_dir)
    mdir = res / "matrix"
    counts_path = mdir / "gene_counts.tsv"
    if not counts_path.exists():
        raise ConfigError("gene counts not found", where=str(counts_path), hint="run `cfrna matrix` first")
    counts = _read_tsv(counts_path, index_col=0)
    counts.index = counts.index.astype(str)
    samples = _read_tsv(mdir / "samples.tsv", index_col=0, dtype={"sample": str})
    samples.index = samples.index.astype(str)
    genes = _read_tsv(mdir / "gene_annotation.tsv", dtype={"gene_id": str}).set_index("gene_id")
    obs = _integer_columns(_clean_frame(samples.loc[[s for s in samples.index if s in counts.columns]]))
    var = _clean_frame(genes.reindex(counts.index))
    if "gene_name" in var.columns:
        var["gene_name_gtf"] = var["gene_name"]
        var["gene_name"] = unique_gene_names(var.index, var["gene_name"].replace("", np.nan)).to_numpy()
    X = counts[obs.index].T.to_numpy()
    adata = ad.AnnData(X=X.astype(np.float32), obs=obs, var=var)
    adata.layers["counts"] = X.astype(np.float32 if not np.issubdtype(X.dtype, np.integer) else np.int64)
    for name, fname in (("normalized", "normalized_counts.tsv"), ("vst", "vst.tsv")):
        layer = _layer(res / "de" / fname, adata.obs_names, adata.var_names)
        if layer is not None:
            adata.layers[name] = layer

    uns: dict = {"de": {}, "gsea": {}}
    contrasts = run_contrasts(res)
    for contrast in contrasts:
        f = res / "de" / f"{contrast}.deseq2.tsv"
        if not f.is_file():
            raise InputFormatError(f"contrast {contrast}: DE table listed in de/design.tsv is missing", where=str(f),
                                   hint="re-run `cfrna de`")
        de = _read_tsv(f, dtype={"gene_id": str})
        uns["de"][contrast] = _clean_frame(de)
        aligned = de.set_index("gene_id").reindex(adata.var_names)
        adata.varm[f"de_{contrast}"] = _clean_frame(aligned.drop(columns=["gene_name"], errors="ignore"))
    for contrast in contrasts:
        f = res / "pathways" / f"{contrast}.gsea.tsv"
        if f.is_file():
            uns["gsea"][contrast] = _clean_frame(_read_tsv(f))
    scores = res / "pathways" / "signature_scores.tsv"
    if scores.exists():
        sc = _read_tsv(scores, index_col=0)
        sc.index = sc.index.astype(str)
        adata.obsm["signature_scores"] = _clean_frame(sc.reindex(adata.obs_names))
    assoc = res / "pathways" / "signature_association.tsv"
    if assoc.exists():
        uns["signature_association"] = _clean_frame(_read_tsv(assoc))
    design = res / "de" / "design.tsv"
    if design.exists():
        uns["de_design"] = _clean_frame(_read_tsv(design))
    qc = res / "qc" / "qc_summary.tsv"
    if qc.exists():
        uns["qc_summary"] = _clean_frame(_read_tsv(qc))
    info = res / "pipeline_info"
    prov: dict = {}
    if (info / "params.json").exists():
        try:
            prov["params"] = _h5ad_value(json.loads((info / "params.json").read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise InputFormatError(f"params.json is not valid JSON ({exc.msg} at line {exc.lineno})",
                                   where=str(info / "params.json"), hint="re-run the pipeline") from None
    if (info / "software_versions.yml").exists():
        from cfrna.report.data import simple_yaml

        prov["software_versions"] = _h5ad_value(simple_yaml((info / "software_versions.yml").read_text(encoding="utf-8")))
    if (info / "input_checksums.tsv").exists():
        prov["input_checksums"] = _clean_frame(_read_tsv(info / "input_checksums.tsv"))
    uns["provenance"] = prov
    if not uns["de"]:
        del uns["de"]
    if not uns["gsea"]:
        del uns["gsea"]
    adata.uns.update(uns)
    return adata


def write_anndata(results_dir: str | os.PathLike) -> Path:
    """Write ``<results>/matrix/cfrna.h5ad`` atomically and return its path."""
    adata = build_anndata(results_dir)
    out = Path(results_dir) / "matrix" / "cfrna.h5ad"
    with atomic_path(out) as tmp:
        adata.write_h5ad(tmp, compression="gzip")
    log.info("wrote %s (%d samples x %d genes)", out, adata.n_obs, adata.n_vars)
    return out


def provenance_json(results_dir: str | os.PathLike) -> dict:
    p = Path(results_dir) / "pipeline_info" / "params.json"
    return json.loads(p.read_text()) if p.exists() else {}
