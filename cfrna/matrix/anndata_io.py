"""Assemble the one ``.h5ad`` with everything: counts, normalized and VST layers, sample table with
QC, gene annotation, DE and GSEA results per contrast, signature scores and provenance."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cfrna.errors import ConfigError
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
    obs = _clean_frame(samples.loc[[s for s in samples.index if s in counts.columns]])
    var = _clean_frame(genes.reindex(counts.index))
    X = counts[obs.index].T.to_numpy()
    adata = ad.AnnData(X=X.astype(np.float32), obs=obs, var=var)
    adata.layers["counts"] = X.astype(np.float32 if not np.issubdtype(X.dtype, np.integer) else np.int64)
    for name, fname in (("normalized", "normalized_counts.tsv"), ("vst", "vst.tsv")):
        layer = _layer(res / "de" / fname, adata.obs_names, adata.var_names)
        if layer is not None:
            adata.layers[name] = layer

    uns: dict = {"de": {}, "gsea": {}}
    for f in sorted((res / "de").glob("*.deseq2.tsv")):
        contrast = f.name.removesuffix(".deseq2.tsv")
        de = _read_tsv(f, dtype={"gene_id": str})
        uns["de"][contrast] = _clean_frame(de)
        aligned = de.set_index("gene_id").reindex(adata.var_names)
        adata.varm[f"de_{contrast}"] = _clean_frame(aligned.drop(columns=["gene_name"], errors="ignore"))
    for f in sorted((res / "pathways").glob("*.gsea.tsv")):
        uns["gsea"][f.name.removesuffix(".gsea.tsv")] = _clean_frame(_read_tsv(f))
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
    prov: dict[str, str] = {}
    for name in ("params.json", "software_versions.yml", "input_checksums.tsv"):
        if (info / name).exists():
            prov[name.split(".")[0]] = (info / name).read_text()
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
