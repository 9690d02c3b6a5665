"""Read a cfrna results folder into the compact JSON payload embedded in the HTML report.

Layout of the payload (all numeric arrays are columnar; large ones are base64 little-endian
typed arrays: ``f32`` = Float32, ``i32`` = Int32, ``u8`` = Uint8, ``i16m`` = Int16 thousandths with
-32768 for NaN, ``nlog10`` = Float32 of -log10(value)):

``genes``
    ``id`` and ``name`` lists, in ``gene_counts.tsv`` order (genes only seen in DE tables appended).
``contrasts``
    one entry per contrast listed in ``O/de/design.tsv`` (its order; the folder is never listed), with
    ``design`` (variable, reference, target, group sizes, excluded and unused sample ids) and ``top``
    (the 5 genes of smallest padj up and down), and its table ``O/de/<contrast>.deseq2.tsv`` in gene order: ``g`` (gene index, i32; null when
    the rows are exactly genes 0..n-1), ``baseMean`` (f32), ``lfc`` and ``lfc_shrunk`` (i16m: 0.001
    log2 units), ``padj`` (nlog10, NaN kept), ``plot`` (i32 row numbers drawn in the volcano/MA plots:
    every gene with padj < ``plot_padj`` (at most ``plot_max_sig``, most significant first) plus the
    first gene of each occupied cell of a grid over the volcano and MA planes, so the point cloud keeps
    its shape without drawing 60,000 SVG points).
``expr``
    per-sample normalized expression for a bounded gene set (genes with padj < ``expr_padj`` in any
    contrast, then the top ``expr_top_n`` by mean normalized count, at most ``expr_max_genes``),
    quantized as ``round(10 * log2(normalized + 1))`` in a u8 (steps of 0.1 log2 units, capped at 25.5).
``samples``, ``qc``, ``pca``, ``pathways``, ``signatures``, ``provenance``, ``notes``
    small tables as ``{"columns": [...], "rows": [[...], ...]}`` or plain lists.

:func:`collect_carrier` reads the run's AnnData (``matrix/cfrna.h5ad``: counts, samples, DE, GSEA,
signature scores, PCA; see :mod:`cfrna.matrix.anndata_io`) plus the report's other declared inputs
(the QC summary and the provenance files); :func:`collect` does the same for a run folder, building
the AnnData from its tables first.
"""

from __future__ import annotations

import base64
import datetime as _dt
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cfrna import __version__
from cfrna.errors import InputFormatError
from cfrna.io.tables import as_bool, read_json, read_tsv
from cfrna.matrix.anndata_io import DE_COLUMNS as DE_COLUMNS
from cfrna.matrix.anndata_io import GSEA_COLUMNS as GSEA_COLUMNS

log = logging.getLogger(__name__)

#: sample metadata shown in gene cards and tables when present
META_COLUMNS = ("sample", "patient_id", "visit_month", "arm", "flare")


# ---------------------------------------------------------------------------------------- encoding
def _b64(arr: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode(
        "ascii"
    )


def f32(values: Any) -> dict[str, str]:
    """Float32 column as base64 (NaN kept)."""
    return {"f32": _b64(np.asarray(values, dtype=float), "float32")}


def i32(values: Any) -> dict[str, str]:
    """Int32 column as base64."""
    return {"i32": _b64(np.asarray(values, dtype=np.int64), "int32")}


def i16_milli(values: Any) -> dict[str, str]:
    """Float column as Int16 thousandths (clipped to +-32.767; NaN -> -32768) in base64."""
    v = np.asarray(values, dtype=float)
    q = np.clip(np.rint(np.nan_to_num(v, nan=0.0) * 1000.0), -32767, 32767).astype(np.int64)
    q[~np.isfinite(v)] = -32768
    return {"i16m": _b64(q, "int16")}


def nlog10(values: Any) -> dict[str, str]:
    """p-values as Float32 ``-log10(p)`` (keeps p < 1e-38 that Float32 would flush to 0; NaN kept)."""
    p = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -np.log10(np.clip(p, 1e-300, None))
    out[~np.isfinite(p)] = np.nan
    return {"nlog10": _b64(out, "float32")}


def u8(values: Any) -> dict[str, str]:
    """Uint8 column as base64."""
    return {"u8": _b64(np.asarray(values), "uint8")}


def decode(col: dict[str, str]) -> np.ndarray:
    """Inverse of :func:`f32`, :func:`i32`, :func:`u8` (used by tests and the benchmark)."""
    ((kind, text),) = col.items()
    dtype = {"f32": "<f4", "i32": "<i4", "u8": "u1", "i16m": "<i2", "nlog10": "<f4"}[kind]
    raw = np.frombuffer(base64.b64decode(text), dtype=dtype)
    if kind == "i16m":
        return np.where(raw == -32768, np.nan, raw / 1000.0)
    if kind == "nlog10":
        return 10.0 ** -raw.astype(float)
    return raw


def _clean(value: Any) -> Any:
    """A JSON-safe scalar: NaN/inf -> None, numpy -> python, floats to 4 significant digits."""
    if value is None:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        v = float(value)
        if not math.isfinite(v):
            return None
        return float(f"{v:.4g}")
    if pd.isna(value) or (isinstance(value, str) and value == ""):
        return None  # an empty cell (the AnnData stores missing text as "")
    return str(value)


def table(df: pd.DataFrame) -> dict[str, Any]:
    """A small DataFrame as ``{"columns": [...], "rows": [[...]]}`` with cleaned scalars."""
    return {
        "columns": [str(c) for c in df.columns],
        "rows": [[_clean(v) for v in row] for row in df.itertuples(index=False, name=None)],
    }


# ------------------------------------------------------------------------------------------ reading
def _require(path: Path, what: str, stage: str) -> Path:
    if not path.is_file():
        raise InputFormatError(
            f"required {what} is missing", where=str(path), hint=f"run `cfrna {stage}` first or check --results"
        )
    return path


def _read_text(path: Path | None, limit: int = 200_000) -> str | None:
    if path is None or not Path(path).is_file():
        return None
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "\n… (truncated)"


def read_qc(path: str | os.PathLike) -> pd.DataFrame:
    """The QC summary as the report shows it (``sample`` and ``status`` required, at least one sample)."""
    qc_path = _require(Path(path), "QC summary", "qc")
    qc = read_tsv(qc_path, required=("sample", "status"), what="QC summary", dtype={"sample": str})
    if qc.empty:
        raise InputFormatError("QC summary has no samples", where=str(qc_path), hint="re-run `cfrna qc`")
    # the library-complexity curves cfrna qc writes beside the summary when counting deduplicated
    from cfrna.pipeline.layout import OutputLayout

    cx = OutputLayout.in_stage_folder("qc", qc_path.parent).complexity_curves
    if cx.is_file():
        qc.attrs["complexity"] = read_tsv(cx, required=("sample", "fragments", "unique", "kind"),
                                          what="complexity curves", dtype={"sample": str})
    return qc


def read_params(path: str | os.PathLike | None) -> dict[str, Any] | None:
    """``pipeline_info/params.json`` (None when absent)."""
    if path is None or not Path(path).is_file():
        return None
    return read_json(path, error="params.json is not valid JSON", hint="re-run the pipeline or delete the file")


# ------------------------------------------------------------------------------------------- pieces
def _thin(x: np.ndarray, y: np.ndarray, *, bins: int) -> np.ndarray:
    """Indices of the first finite point of each occupied cell of a ``bins`` x ``bins`` grid."""
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if ok.size == 0:
        return ok
    xs, ys = x[ok], y[ok]

    def cell(v: np.ndarray) -> np.ndarray:
        lo, hi = float(v.min()), float(v.max())
        span = hi - lo if hi > lo else 1.0
        return np.minimum(((v - lo) / span * bins).astype(np.int64), bins - 1)

    key = cell(xs) * bins + cell(ys)
    _, first = np.unique(key, return_index=True)
    return ok[np.sort(first)]


def plot_subset(
    lfc: np.ndarray, padj: np.ndarray, base_mean: np.ndarray, *, sig_padj: float, max_sig: int, bins: int
) -> np.ndarray:
    """Rows drawn in the volcano/MA plots: significant genes (capped) + a grid-thinned background."""
    p = np.where(np.isfinite(padj), padj, np.nan)
    sig = np.flatnonzero(np.nan_to_num(p, nan=1.0) < sig_padj)
    if sig.size > max_sig:
        sig = sig[np.argsort(p[sig], kind="stable")[:max_sig]]
    with np.errstate(divide="ignore", invalid="ignore"):
        nlp = -np.log10(np.clip(np.nan_to_num(p, nan=1.0), 1e-300, 1.0))
        lbm = np.log10(base_mean + 1.0)
    back = np.union1d(_thin(lfc, nlp, bins=bins), _thin(lbm, lfc, bins=bins))
    return np.union1d(sig, back).astype(np.int64)


def _sample_ids(text: Any) -> list[str]:
    """Sample ids of a ``;``-separated design.tsv cell (an older ``id (reason)`` form keeps the id only)."""
    if not isinstance(text, str) or not text.strip():
        return []
    parts, depth, cur = [], 0, []
    for ch in text:  # split at `;` outside parentheses (an old reason text holds `;` and nested parentheses)
        depth += (ch == "(") - (ch == ")")
        if ch == ";" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.split(" (", 1)[0].strip() for p in parts if p.strip()]


def _design_of(ddf: pd.DataFrame | None, cid: str) -> dict[str, Any]:
    """Variable, levels, group sizes and excluded/unused sample ids of one contrast (design.tsv row)."""
    if ddf is None:
        return {}
    row = ddf.loc[ddf["contrast"].astype(str) == cid]
    if row.empty:
        return {}
    r = row.iloc[0]
    out: dict[str, Any] = {
        k: _clean(r[k]) for k in ("variable", "reference", "target", "formula", "n_reference", "n_target") if k in r
    }
    out["excluded"] = _sample_ids(r.get("excluded_samples"))
    out["not_used"] = _sample_ids(r.get("not_used_samples"))
    return out


def top_genes(df: pd.DataFrame, gidx: np.ndarray, *, n: int = 5) -> dict[str, list[list[Any]]]:
    """The ``n`` genes with the smallest padj in each direction: ``[gene index, log2FC, padj]`` rows."""
    lfc = df["log2FoldChange"].to_numpy(dtype=float)
    padj = df["padj"].to_numpy(dtype=float)
    out: dict[str, list[list[Any]]] = {}
    for key, mask in (("up", lfc > 0), ("down", lfc < 0)):
        rows = np.flatnonzero(mask & np.isfinite(padj))
        rows = rows[np.lexsort((rows, padj[rows]))][:n]
        out[key] = [[int(gidx[i]), _clean(lfc[i]), _clean(padj[i])] for i in rows]
    return out


def design_table(ddf: pd.DataFrame) -> dict[str, Any]:
    """The design table shown in the Provenance tab: group sizes and excluded sample ids, no long text.

    The sample lists of each group stay in ``de/design.tsv``; a long message (sensitivity status, a
    correlation warning) keeps its first clause (the full text is in the log and design.tsv).
    """
    keep = [c for c in ddf.columns if not str(c).endswith("_samples")]
    out = ddf[keep].copy()
    if "excluded_samples" in ddf.columns:
        out.insert(len(out.columns), "excluded", [", ".join(_sample_ids(v)) for v in ddf["excluded_samples"]])
    def short(v: Any) -> Any:
        if not isinstance(v, str) or len(v) <= 60:
            return v
        head = v.split(":", 1)[0]
        return head if len(head) <= 60 else head[:57] + "…"

    for col in out.columns:
        if col not in ("contrast", "formula", "excluded") and out[col].dtype == object:
            out[col] = [short(v) for v in out[col]]
    return table(out)


def default_title(params: dict[str, Any] | None, samples: pd.DataFrame) -> str:
    """The report title of a run: its ``title`` parameter, else the trial named in the sample table,
    else the samplesheet file name (never the output folder's name)."""
    p = (params or {}).get("params", params or {})
    if isinstance(p, dict) and p.get("title"):
        return str(p["title"])
    for col in ("trial", "study", "project"):
        if col in samples.columns:
            vals = [str(v) for v in pd.unique(samples[col].dropna()) if str(v).strip()]
            if vals:
                return f"{', '.join(vals[:3])} — cfrna report"
    sheet = (p.get("samplesheet") or p.get("input")) if isinstance(p, dict) else None  # cfrna run / Nextflow
    if sheet:
        return f"cfrna report — {Path(str(sheet)).name}"
    return "cfrna report"


def gsea_permutations(params: dict[str, Any] | None) -> int:
    """GSEA permutations of the run (its parameter, else the default of ``cfrna pathways``)."""
    import inspect

    from cfrna.pathways.gsea import score_pathways

    p = (params or {}).get("params", params or {})
    for key in ("gsea_permutations", "permutations"):
        if isinstance(p, dict) and isinstance(p.get(key), int) and p[key] > 0:
            return int(p[key])
    return int(inspect.signature(score_pathways).parameters["permutations"].default)


# --------------------------------------------------------------------------------------------- main
def _layer_frame(adata, name: str) -> pd.DataFrame | None:
    """A layer as a genes x samples frame of the samples and genes it covers (rows/columns not all NaN)."""
    if name not in adata.layers:
        return None
    x = np.asarray(adata.layers[name], dtype=np.float32)
    ok = np.isfinite(x)
    rows, cols = ok.any(axis=1), ok.any(axis=0)
    return pd.DataFrame(x[np.ix_(rows, cols)].T, index=adata.var_names[cols], columns=adata.obs_names[rows])


def _uns_table(adata, key: str) -> pd.DataFrame | None:
    v = adata.uns.get(key)
    return v if isinstance(v, pd.DataFrame) else None


def collect_carrier(
    adata,
    qc: pd.DataFrame,
    *,
    params: dict[str, Any] | None = None,
    versions_text: str | None = None,
    checksums: pd.DataFrame | None = None,
    title: str | None = None,
    notes: list[str] | None = None,
    expr_padj: float = 0.1,
    expr_top_n: int = 1000,
    expr_max_genes: int = 3000,
    plot_padj: float = 0.1,
    plot_max_sig: int = 2500,
    plot_bins: int = 100,
) -> dict[str, Any]:
    """The report payload from the run's AnnData and the report's other declared inputs.

    Parameters
    ----------
    adata
        The run's AnnData (:mod:`cfrna.matrix.anndata_io`): ``var`` genes in ``gene_counts.tsv`` order,
        ``obs`` the samples with counts, ``uns["samples"]`` the whole sample table, ``uns["de_design"]``
        the run's contrasts, ``uns["de"]``/``uns["gsea"]`` their tables, ``layers["normalized"]``,
        ``uns["pca"]``, ``obsm["signature_scores"]``, ``uns["signature_association"]``.
    qc
        ``qc/qc_summary.tsv`` (:func:`read_qc`).
    params, versions_text, checksums
        ``pipeline_info/params.json`` (parsed), ``software_versions.yml`` (its text) and
        ``input_checksums.tsv`` (a table); None when not recorded.
    title
        Report title (default: :func:`default_title` of the run's parameters and sample table).
    notes
        Notes already known (e.g. about files of the run folder); more are added for absent pieces.
    expr_padj, expr_top_n, expr_max_genes
        Gene-card expression is embedded for genes with padj < ``expr_padj`` in any contrast plus the
        top ``expr_top_n`` genes by mean normalized count, at most ``expr_max_genes`` genes
        (default: 0.1, 1000, 3000).
    plot_padj, plot_max_sig, plot_bins
        Volcano/MA plots draw every gene with padj < ``plot_padj`` (at most ``plot_max_sig``) plus a
        ``plot_bins`` x ``plot_bins`` grid-thinned background (default: 0.1, 2500, 100).

    Returns
    -------
    dict
        JSON-serialisable payload (see the module docstring).
    """
    import yaml

    notes = list(notes or [])
    complexity = qc.attrs.get("complexity")  # read_qc: qc/complexity_curves.tsv, when present
    if adata.n_vars == 0:
        raise InputFormatError("gene count matrix has no genes", hint="check the GTF")
    count_samples = [str(s) for s in adata.obs_names]
    gene_ids: list[str] = [str(g) for g in adata.var_names]
    gene_pos = {g: i for i, g in enumerate(gene_ids)}
    names: dict[str, str] = {}
    name_col = next((c for c in ("gene_name_gtf", "gene_name", "symbol", "gene_symbol") if c in adata.var.columns), None)
    if name_col:
        names.update(zip(gene_ids, adata.var[name_col].fillna("").astype(str), strict=True))
    else:
        notes.append("matrix/gene_annotation.tsv absent: gene symbols come from the DE tables only.")

    def gene_index(ids: list[str]) -> np.ndarray:
        out = np.empty(len(ids), dtype=np.int64)
        for k, g in enumerate(ids):
            i = gene_pos.get(g)
            if i is None:
                i = gene_pos[g] = len(gene_ids)
                gene_ids.append(g)
            out[k] = i
        return out

    # --- samples (metadata + QC)
    samples = _uns_table(adata, "samples")
    if samples is None:
        notes.append("matrix/samples.tsv absent: sample metadata (flare, patient, visit) not shown.")
        samples = qc[["sample"]].copy()
    samples = samples.drop_duplicates("sample").set_index("sample", drop=False)
    if "samples" in adata.uns:
        # this run's samples are those of matrix/samples.tsv: QC rows of other samples (an older run into
        # the same folder) are not shown
        stale = ~qc["sample"].isin(samples.index)
        if stale.any():
            notes.append(
                f"{int(stale.sum())} sample(s) of qc/qc_summary.tsv are not in this run's matrix/samples.tsv and are "
                f"not shown: {', '.join(qc.loc[stale, 'sample'].head(10))}"
            )
            qc = qc.loc[~stale].reset_index(drop=True)
            if qc.empty:
                raise InputFormatError(
                    "no sample of the QC summary is in matrix/samples.tsv",
                    hint="re-run `cfrna qc` and `cfrna matrix` on the same samples",
                )

    # --- the contrasts of this run: uns["de_design"] (de/design.tsv), in its order
    ddf = _uns_table(adata, "de_design")
    contrast_ids: list[str] = [str(c) for c in ddf["contrast"] if str(c)] if ddf is not None else []
    de_tables = adata.uns.get("de", {})

    # --- DE tables
    contrasts: list[dict[str, Any]] = []
    de_frames: dict[str, pd.DataFrame] = {}
    for cid in contrast_ids:
        df = de_tables.get(cid)
        if df is None:
            raise InputFormatError(f"DE table of contrast {cid} (listed in de/design.tsv) is not in the AnnData",
                                   hint="re-run `cfrna de` with --h5ad")
        df = df.reset_index(drop=True)
        if "gene_name" in df.columns:
            for g, n in zip(df["gene_id"], df["gene_name"], strict=True):
                if isinstance(n, str) and n and not names.get(g):
                    names[g] = n
        de_frames[cid] = df
        gidx = gene_index(df["gene_id"].astype(str).tolist())
        # stored in gene order (the page sorts by padj): no gene-index column when it covers all genes
        perm = np.argsort(gidx, kind="stable")
        df, gidx = df.iloc[perm].reset_index(drop=True), gidx[perm]
        lfc = df["log2FoldChange"].to_numpy(dtype=float)
        padj = df["padj"].to_numpy(dtype=float)
        bm = df["baseMean"].to_numpy(dtype=float)
        shr = (
            df["log2FoldChange_shrunk"].to_numpy(dtype=float)
            if "log2FoldChange_shrunk" in df.columns
            else np.full(len(df), np.nan)
        )
        plot = plot_subset(lfc, padj, bm, sig_padj=plot_padj, max_sig=plot_max_sig, bins=plot_bins)
        contrasts.append(
            {
                "id": cid,
                "n": len(df),
                "n_sig": int(np.sum(np.nan_to_num(padj, nan=1.0) < 0.05)),
                "design": _design_of(ddf, cid),
                "top": top_genes(df, gidx),
                "g": None if np.array_equal(gidx, np.arange(len(gidx))) else i32(gidx),
                "baseMean": f32(bm),
                "lfc": i16_milli(lfc),
                "lfc_shrunk": i16_milli(shr),
                "padj": nlog10(padj),
                "plot": i32(plot),
            }
        )
    if not contrasts:
        notes.append("No differential expression results (de/design.tsv): no contrasts were given or DE did not run.")

    # --- expression for gene cards (bounded, quantized)
    expr: dict[str, Any] | None = None
    norm = _layer_frame(adata, "normalized")
    if norm is not None:
        chosen: list[str] = []
        seen: set[str] = set()
        sig_rank = []
        for df in de_frames.values():
            p = df["padj"].to_numpy(dtype=float)
            keep = np.nan_to_num(p, nan=1.0) < expr_padj
            sig_rank.append(pd.Series(p[keep], index=df["gene_id"].astype(str).to_numpy()[keep]))
        if sig_rank:
            best = pd.concat(sig_rank).groupby(level=0).min().sort_values(kind="stable")
            for g in best.index:
                if g in norm.index and g not in seen and len(chosen) < expr_max_genes:
                    chosen.append(g)
                    seen.add(g)
        n_sig_expr = len(chosen)
        mean = norm.mean(axis=1).sort_values(ascending=False, kind="stable")
        for g in mean.index[: expr_top_n + len(seen)]:
            if len(chosen) >= expr_max_genes or len(chosen) - n_sig_expr >= expr_top_n:
                break
            if g not in seen:
                chosen.append(g)
                seen.add(g)
        vals = norm.loc[chosen].to_numpy(dtype=float)
        q = np.clip(np.rint(10.0 * np.log2(np.clip(np.nan_to_num(vals, nan=0.0), 0, None) + 1.0)), 0, 255)
        expr = {
            "samples": list(norm.columns),
            "g": i32(gene_index(chosen)),
            "values": u8(q.astype(np.uint8).ravel()),  # gene-major: values[gi * n_samples + si]
            "scale": 10,
            "rule": f"padj < {expr_padj} in any contrast ({n_sig_expr} genes) + top {expr_top_n} by mean "
            f"normalized count; at most {expr_max_genes} genes",
        }
    else:
        notes.append("de/normalized_counts.tsv absent: gene cards show no per-sample expression.")

    # --- PCA of vst (computed when DE added the vst layer: cfrna.matrix.pca)
    pca_out = None
    p = adata.uns.get("pca")
    if isinstance(p, dict) and "pc1" in p:
        pca_out = {"samples": [str(x) for x in p["samples"]], "pc1": [float(x) for x in p["pc1"]],
                   "pc2": [float(x) for x in p["pc2"]], "explained": [float(x) for x in p["explained"]],
                   "n_genes": int(p["n_genes"])}
    elif "vst" in adata.layers:
        notes.append("PCA skipped: fewer than 3 samples or no variable genes in de/vst.tsv.")
    else:
        notes.append("de/vst.tsv absent: no PCA.")

    # --- pathways
    pathways: dict[str, Any] = {}
    gsea_tables = adata.uns.get("gsea", {})
    for cid in contrast_ids:
        df = gsea_tables.get(cid)
        if df is None:
            continue
        cols = [c for c in ("gene_set", "source", "size", "es", "nes", "pvalue", "fdr", "leading_edge") if c in df]
        pathways[cid] = table(df[cols])
    if contrasts and not pathways:
        notes.append("No pathway results (pathways/<contrast>.gsea.tsv): gene sets were not given or the stage did not run.")
    sig_scores = None
    if "signature_scores" in adata.obsm:
        sc = pd.DataFrame(adata.obsm["signature_scores"]).copy()
        sc = sc.loc[~sc.isna().all(axis=1)] if sc.shape[1] else sc
        sc.insert(0, "sample", [str(s) for s in sc.index])
        sig_scores = table(sc.reset_index(drop=True))
    assoc = _uns_table(adata, "signature_association")
    sig_assoc = table(assoc) if assoc is not None else None

    # --- design (contrast order of contrasts.csv; long sample lists stay in the TSV)
    design = design_table(ddf) if ddf is not None else None

    # --- provenance
    if params is None and versions_text is None and checksums is None:
        notes.append("pipeline_info/ absent: run provenance (parameters, versions, checksums) not available.")

    # --- QC table and samples table
    qc_cols = list(qc.columns)
    front = [c for c in ("sample", "status", "reasons", "excluded") if c in qc_cols]
    metric_cols = [c for c in qc_cols if c not in front and not c.endswith("_status")]
    status_cols = [c for c in qc_cols if c.endswith("_status") and c != "status"]
    qc_small = qc[front + metric_cols + status_cols]
    excluded = []
    if "excluded" in qc.columns:
        ex = as_bool(qc["excluded"])
        excluded = qc.loc[ex, "sample"].tolist()
    meta_cols = [c for c in samples.columns if c in META_COLUMNS or c in ("qc_status", "excluded", "batch")]
    meta = samples[meta_cols].reset_index(drop=True)

    missing_in_counts = [s for s in qc["sample"] if s not in set(count_samples)]
    if missing_in_counts and len(missing_in_counts) < len(qc):
        notes.append(
            f"{len(missing_in_counts)} QC sample(s) absent from the gene matrix: {', '.join(missing_in_counts[:10])}"
        )

    versions = yaml.load(versions_text, Loader=yaml.BaseLoader) if versions_text else None
    name_list = [names.get(g, "") or "" for g in gene_ids]
    return {
        "meta": {
            "title": title or default_title(params, samples),
            "gsea_permutations": gsea_permutations(params) if pathways else None,
            "version": __version__,
            "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "n_genes": adata.n_vars,
            "n_samples": len(qc),
            "n_matrix_samples": len(count_samples),
        },
        "notes": notes,
        "genes": {"id": gene_ids, "name": name_list},
        "contrasts": contrasts,
        "expr": expr,
        "samples": table(meta),
        "qc": table(qc_small),
        "complexity": (table(complexity[complexity["sample"].isin(set(qc["sample"]))].reset_index(drop=True))
                       if complexity is not None else None),
        "excluded": excluded,
        "pca": pca_out,
        "pathways": pathways,
        "signatures": {"scores": sig_scores, "association": sig_assoc},
        "design": design,
        "provenance": {
            "params": params,
            "software_versions": versions if isinstance(versions, dict) else None,
            "software_versions_text": versions_text,
            "checksums": table(checksums) if checksums is not None else None,
        },
    }


def collect(results_dir: str | os.PathLike, *, title: str | None = None, **options: Any) -> dict[str, Any]:
    """The report payload of a run folder ``O``: its AnnData is built from the folder's tables
    (:func:`folder_inputs`), then :func:`collect_carrier`.

    ``options`` are those of :func:`collect_carrier`. Raises InputFormatError when a required file
    (``qc/qc_summary.tsv``, ``matrix/gene_counts.tsv``) is missing or a file is malformed.
    """
    adata, qc, kwargs = folder_inputs(results_dir)
    return collect_carrier(adata, qc, title=title, **kwargs, **options)


def folder_inputs(results_dir: str | os.PathLike) -> tuple[Any, pd.DataFrame, dict[str, Any]]:
    """``(adata, qc, kwargs)`` of :func:`collect_carrier` for a finished run folder: the AnnData built
    from its tables (:func:`cfrna.matrix.anndata_io.build_anndata`), the QC summary, and the provenance
    and notes about the folder."""
    from cfrna.matrix.anndata_io import build_anndata
    from cfrna.pipeline.layout import OutputLayout

    lay = OutputLayout(results_dir)
    if not lay.root.is_dir():
        raise InputFormatError("results folder not found", where=str(lay.root), hint="pass the run's --outdir as --results")
    qc = read_qc(lay.qc_summary)
    _require(lay.gene_counts, "gene count matrix", "matrix")
    notes = []
    if not lay.design.is_file() and lay.de_dir.is_dir() and any(lay.de_dir.glob(lay.deseq2_table("*").name)):
        notes.append("de/design.tsv absent: the DE tables in de/ are not listed by a run and are not shown.")
    return build_anndata(lay.root), qc, {"notes": notes, **provenance_inputs(lay.info_dir)}


def provenance_inputs(info: str | os.PathLike) -> dict[str, Any]:
    """``params``, ``versions_text`` and ``checksums`` of :func:`collect_carrier` from a ``pipeline_info/`` folder."""
    from cfrna.pipeline.layout import OutputLayout

    lay = OutputLayout.in_stage_folder("pipeline_info", info)
    ck = lay.input_checksums
    return {"params": read_params(lay.params_json), "versions_text": _read_text(lay.software_versions),
            "checksums": read_tsv(ck, what="input checksums") if ck.is_file() else None}
