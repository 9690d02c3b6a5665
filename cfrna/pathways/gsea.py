"""Pathway stage: gseapy prerank per contrast, per-sample signature scores, score-flare association.

Inputs are the files of ``O/de`` (``<contrast>.deseq2.tsv``, ``vst.tsv``, ``normalized_counts.tsv``,
``design.tsv``); gene sets are local GMT files (no network). Gene ids are mapped to symbols with the
GTF (else the ``gene_name`` column of the DE tables) and old symbols through
:data:`cfrna.signatures.gmt.ALIASES`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import pandas as pd

from cfrna.errors import ConfigError, InputFormatError
from cfrna.io.atomic import write_table
from cfrna.io.samplesheet import SampleSheet
from cfrna.io.tables import as_samplesheet, read_expression, read_samples_table, read_tsv
from cfrna.signatures.gmt import GeneSet, default_gmt_paths, map_gene_sets, read_gmt
from cfrna.signatures.scores import association, median_fold_change_score, singscore

log = logging.getLogger(__name__)

GSEA_COLUMNS = ["gene_set", "source", "size", "es", "nes", "pvalue", "fdr", "leading_edge"]
RANK_COLUMNS = {"stat": "stat", "lfc_shrunk": "log2FoldChange_shrunk", "lfc": "log2FoldChange"}
IFN_RICE_GENES = ["IFI27", "IFI44L", "IFIT1", "ISG15", "RSAD2", "SIGLEC1"]


def ranking(de: pd.DataFrame, symbols: pd.Series, *, rank_by: str = "stat") -> pd.Series:
    """Symbol -> ranking metric, descending; NaN dropped; duplicate symbols keep the largest |value|.

    Parameters
    ----------
    de : pandas.DataFrame
        A ``<contrast>.deseq2.tsv`` table.
    symbols : pandas.Series
        gene_id -> symbol.
    rank_by : {"stat", "lfc_shrunk", "lfc"}
        Wald statistic (default), shrunken or raw log2 fold change.
    """
    col = RANK_COLUMNS.get(rank_by)
    if col is None:
        raise ConfigError(f"unknown --rank-by {rank_by!r}", hint=f"use one of {', '.join(RANK_COLUMNS)}")
    if col not in de.columns:
        raise InputFormatError(f"DE table has no column {col!r}", hint="rerun `cfrna de`")
    v = pd.Series(de[col].to_numpy(dtype=float), index=de["gene_id"].astype(str))
    sym = symbols.reindex(v.index)
    sym = sym.where(sym.notna() & (sym != ""), pd.Series(v.index, index=v.index))
    df = pd.DataFrame({"symbol": sym.to_numpy(), "v": v.to_numpy()}).dropna()
    df = df.loc[df["v"].abs().sort_values(ascending=False, kind="mergesort").index].drop_duplicates("symbol")
    return pd.Series(df["v"].to_numpy(), index=df["symbol"].to_numpy()).sort_values(ascending=False, kind="mergesort")


def prerank(rnk: pd.Series, gene_sets: dict[str, list[str]], *, source: str, min_size: int = 3, max_size: int = 500,
            permutations: int = 1000, seed: int = 1, threads: int = 1) -> pd.DataFrame:
    """gseapy prerank of one ranking against one collection; rows in the ``*.gsea.tsv`` layout."""
    import gseapy

    present = set(rnk.index)
    sets = {k: [g for g in v if g in present] for k, v in gene_sets.items()}
    sets = {k: v for k, v in sets.items() if min_size <= len(v) <= max_size}
    if not sets:
        return pd.DataFrame(columns=GSEA_COLUMNS)
    res = gseapy.prerank(rnk=rnk, gene_sets=sets, min_size=min_size, max_size=max_size,
                         permutation_num=permutations, seed=seed, threads=threads, outdir=None,
                         no_plot=True, verbose=False).res2d
    out = pd.DataFrame({
        "gene_set": res["Term"].astype(str).to_numpy(),
        "source": source,
        "size": [len(sets[t]) for t in res["Term"].astype(str)],
        "es": res["ES"].astype(float).to_numpy(),
        "nes": res["NES"].astype(float).to_numpy(),
        "pvalue": res["NOM p-val"].astype(float).to_numpy(),
        "fdr": res["FDR q-val"].astype(float).to_numpy(),
        "leading_edge": res["Lead_genes"].astype(str).to_numpy(),
    })
    return out


def _symbols(gtf: str | os.PathLike | None, de_tables: dict[str, pd.DataFrame]) -> pd.Series:
    if gtf:
        from cfrna.reference import read_gtf

        return pd.Series(read_gtf(gtf).symbol_map())
    names: dict[str, str] = {}
    for t in de_tables.values():
        names.update(zip(t["gene_id"].astype(str), t["gene_name"].fillna(t["gene_id"]).astype(str), strict=True))
    return pd.Series(names, dtype=object)


def de_contrast_ids(de_dir: str | os.PathLike) -> list[str]:
    """The contrasts of a ``cfrna de`` run, in its order: the ``contrast`` column of ``design.tsv``.

    Read from what that run declared, not from a listing of the folder: a ``<id>.deseq2.tsv`` left by an
    older run into the same folder is not picked up. Raises ConfigError when ``design.tsv`` or a table it
    lists is missing.
    """
    from cfrna.pipeline.layout import OutputLayout

    de_dir = Path(de_dir)
    de = OutputLayout.in_stage_folder("de", de_dir)
    design = de.design
    if not design.is_file():
        raise ConfigError("no <contrast>.deseq2.tsv files listed: design.tsv not found", where=str(de_dir),
                          hint="run `cfrna de` first")
    ids = read_tsv(design, what="cfrna de design table", required=("contrast",), dtype=str,
                   hint="rerun `cfrna de`")["contrast"].dropna().tolist()
    if not ids:
        raise ConfigError("no <contrast>.deseq2.tsv files: design.tsv lists no contrast", where=str(design),
                          hint="rerun `cfrna de`")
    for cid in ids:
        if not de.deseq2_table(cid).is_file():
            raise ConfigError(f"contrast {cid}: {de.deseq2_table(cid).name} listed in design.tsv but missing", where=str(de_dir),
                              hint="rerun `cfrna de`")
    return ids


def score_pathways(de_dir: str | os.PathLike, gtf: str | os.PathLike | None, outdir: str | os.PathLike, *,
                 gene_sets: Sequence[str | os.PathLike] | None = None,
                 samplesheet: str | os.PathLike | SampleSheet | None = None,
                 samples_table: str | os.PathLike | None = None,
                 rank_by: Literal["stat", "lfc_shrunk", "lfc"] = "stat", threads: int = 1,
                 permutations: int = 1000, seed: int = 1, min_size: int = 3, max_size: int = 500) -> dict:
    """GSEA per contrast and per-sample signature scores from a ``cfrna de`` output folder.

    Parameters
    ----------
    de_dir : path-like
        ``O/de`` with ``design.tsv`` (its ``contrast`` column says which ``<contrast>.deseq2.tsv`` to use),
        ``vst.tsv``, ``normalized_counts.tsv``.
    gtf : path-like or None
        GTF for gene_id -> symbol (else the DE tables' ``gene_name``).
    outdir : path-like
        ``O/pathways``.
    gene_sets : list of path-like, optional
        GMT files (several allowed); default: the curated sets of ``assets/genesets/``.
    samplesheet : path-like, optional
        Used for the IFN median-fold-change baseline (``flare == no_flare``).
    samples_table : path-like, optional
        ``O/matrix/samples.tsv`` (excluded samples are not used as the IFN baseline).
    rank_by : {"stat", "lfc_shrunk", "lfc"}
        Ranking metric for prerank (default: ``"stat"``, the Wald statistic).
    threads, permutations, seed : int
        gseapy settings (defaults: 1, 1000, 1).
    min_size, max_size : int
        Gene-set size limits after mapping (defaults: 3, 500); smaller/larger sets are reported in
        ``gene_set_coverage.tsv``.

    Returns
    -------
    dict
        ``{"contrasts": {id: path}, "signature_scores": path, "signature_association": path}``.

    Raises
    ------
    ConfigError
        No ``design.tsv`` in ``de_dir``, or a DE table it lists is missing.
    InputFormatError
        A GMT file none of whose genes is present in the data (names the file), a bad GMT.
    """
    from cfrna.pipeline.layout import OutputLayout

    de_dir, outdir = Path(de_dir), Path(outdir)
    de, lay = OutputLayout.in_stage_folder("de", de_dir), OutputLayout.in_stage_folder("pathways", outdir)
    tables = {cid: read_tsv(de.deseq2_table(cid), what=f"DE table of contrast {cid}", required=("gene_id",),
                            dtype={"gene_id": str, "gene_name": str}, hint="rerun `cfrna de`")
              for cid in de_contrast_ids(de_dir)}
    symbols = _symbols(gtf, tables)
    universe: set[str] = set()
    for t in tables.values():
        universe |= set(symbols.reindex(t["gene_id"]).dropna().astype(str))
        universe |= set(t["gene_id"])
    gmt_paths = [Path(p) for p in gene_sets] if gene_sets else default_gmt_paths()
    collections: list[tuple[str, Path, dict[str, list[str]]]] = []
    coverage: list[dict] = []
    curated: list[GeneSet] = []
    for path in gmt_paths:
        sets = read_gmt(path)
        mapped, cov = map_gene_sets(sets, universe)
        if not any(mapped.values()):
            raise InputFormatError(f"no gene of the {len(sets)} gene sets is present in the data", where=str(path),
                                   hint="the GMT must use gene symbols of the same species as the GTF")
        for rec in cov:
            n = rec["size_mapped"]
            rec["status"] = "ok" if min_size <= n <= max_size else ("too_small" if n < min_size else "too_large")
        small = [r["gene_set"] for r in cov if r["status"] == "too_small"]
        if small:
            log.warning("pathways: %s: %d set(s) with fewer than %d genes after mapping are skipped: %s", path.name,
                        len(small), min_size, ", ".join(small[:10]) + (" …" if len(small) > 10 else ""))
        coverage.extend(cov)
        collections.append((sets[0].source, path, mapped))
        if path.name == "cfrna_lupus.gmt":
            curated = sets
    write_table(lay.gene_set_coverage, pd.DataFrame(coverage))

    result: dict = {"contrasts": {}, "outdir": str(outdir), "gsea": {}}
    for cid, table in tables.items():
        rnk = ranking(table, symbols, rank_by=rank_by)
        parts = [prerank(rnk, mapped, source=src, min_size=min_size, max_size=max_size, permutations=permutations,
                         seed=seed, threads=threads) for src, _, mapped in collections]
        parts = [p for p in parts if not p.empty]
        gsea = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=GSEA_COLUMNS)
        gsea = gsea.sort_values(["fdr", "pvalue"], kind="mergesort", na_position="last")[GSEA_COLUMNS]
        path = lay.gsea_table(cid)
        write_table(path, gsea, float_format="%.6g")
        result["contrasts"][cid] = str(path)
        result["gsea"][cid] = gsea
        top = gsea.head(3)["gene_set"].tolist()
        log.info("pathways: %s: %d sets tested; top: %s", cid, len(gsea), ", ".join(top))

    # per-sample signature scores
    if not curated:
        from cfrna._resources import asset_path

        curated = read_gmt(asset_path("genesets", "cfrna_lupus.gmt"))
    score_sets = {s.name: list(s.genes) for s in curated}
    vst_path, norm_path = de.vst, de.normalized_counts
    for p in (vst_path, norm_path):
        if not p.exists():
            raise ConfigError(f"{p.name} not found", where=str(de_dir), hint="run `cfrna de` first")
    vst = read_expression(vst_path, what="vst matrix", dtype=float)
    norm = read_expression(norm_path, what="normalized counts", dtype=float)
    sym = symbols.reindex(vst.index)
    sym = sym.where(sym.notna(), pd.Series(vst.index, index=vst.index)).astype(str)
    ex_universe = set(sym)
    mapped_scores, _ = map_gene_sets([GeneSet(k, "cfrna_lupus", "", tuple(v)) for k, v in score_sets.items()], ex_universe)
    vst_sym = vst.set_axis(sym.to_numpy(), axis=0)
    norm_sym = norm.set_axis(symbols.reindex(norm.index).fillna(pd.Series(norm.index, index=norm.index)).astype(str)
                             .to_numpy(), axis=0)
    scores = singscore(vst_sym, mapped_scores)
    baseline = _baseline_samples(list(vst.columns), samplesheet, samples_table)
    if not baseline:
        log.info("pathways: no non-flare samples known; the IFN median fold change uses all samples as baseline")
        baseline = list(vst.columns)
    rice_genes, _ = map_gene_sets([GeneSet("r", "r", "", tuple(IFN_RICE_GENES))], set(norm_sym.index))
    scores["IFN_score_Rice2013_median_fc"] = median_fold_change_score(norm_sym, rice_genes["r"], baseline)
    scores.index.name = "sample"
    write_table(lay.signature_scores, scores.reset_index(), float_format="%.6g")

    design_path = de.design
    assoc_parts = []
    if design_path.exists():
        design = read_tsv(design_path, what="cfrna de design table", dtype=str).fillna("")
        for _, row in design.iterrows():
            groups = {s: row["reference"] for s in row.get("reference_samples", "").split(";") if s}
            groups.update({s: row["target"] for s in row.get("target_samples", "").split(";") if s})
            if not groups:
                continue
            a = association(scores, pd.Series(groups), reference=row["reference"], target=row["target"])
            a.insert(0, "contrast", row["contrast"])
            assoc_parts.append(a)
    assoc = pd.concat(assoc_parts, ignore_index=True) if assoc_parts else pd.DataFrame(
        columns=["contrast", "signature", "n_reference", "n_target", "mean_reference", "mean_target", "difference",
                 "statistic", "pvalue", "fdr"])
    write_table(lay.signature_association, assoc, float_format="%.6g")
    result["scores"], result["association"] = scores, assoc
    result["signature_scores"] = str(lay.signature_scores)
    result["signature_association"] = str(lay.signature_association)
    return result


def _baseline_samples(columns: list[str], samplesheet, samples_table) -> list[str]:
    if samplesheet is None:
        return []
    df = as_samplesheet(samplesheet).to_frame()
    keep = set(columns)
    if samples_table is not None and Path(samples_table).exists():
        st = read_samples_table(samples_table)
        keep -= set(st.index[st["excluded"]])
    return [s for s in columns if s in keep and s in df.index and df.loc[s, "flare"] == "no_flare"]


__all__ = ["de_contrast_ids", "ranking", "prerank", "score_pathways"]
