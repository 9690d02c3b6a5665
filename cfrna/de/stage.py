"""The DE stage: DESeq2 / limma voom per contrast; the tables of ``de/`` and their slots in ``cfrna.h5ad``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cfrna.errors import ConfigError
from cfrna.io.samplesheet import SampleSheet
from cfrna.io.tables import as_samplesheet, check_matrix_samples, read_expression
from cfrna.pipeline.layout import OutputLayout
from cfrna.pipeline.stages import StageResult


@dataclass(frozen=True)
class DeSettings:
    """Settings of the DE stage (defaults as ``cfrna de``; see :func:`cfrna.de.deseq.fit_contrasts`)."""

    keep_failed: bool = False
    threads: int = 1
    min_count_filter: Literal["default", "cpm", "none"] = "default"
    alpha: float = 0.05
    lfc_shrink: bool = True
    sensitivity: bool = True
    pca_genes: int = 500

    def __post_init__(self) -> None:
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {self.threads}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.pca_genes < 2:
            raise ConfigError(f"PCA needs at least 2 genes, got {self.pca_genes}")


def run_de(*, counts: str | os.PathLike, samplesheet: str | os.PathLike | SampleSheet, contrasts: str | os.PathLike,
           samples_table: str | os.PathLike | None = None, gtf: str | os.PathLike | None = None,
           annotation: str | os.PathLike | None = None, h5ad: str | os.PathLike | None = None,
           h5ad_out: str | os.PathLike | None = None, outdir: str | os.PathLike,
           settings: DeSettings = DeSettings()) -> StageResult:
    """Differential expression for every contrast; writes ``de/`` and adds to the run's AnnData.

    ``h5ad`` (the matrix stage's ``cfrna.h5ad``) gets ``layers["normalized"]``/``["vst"]``,
    ``obs["size_factor"]``, ``varm["de_<id>"]``, ``uns["de"]``, ``uns["de_design"]`` and ``uns["pca"]``
    in one atomic rewrite (to ``h5ad_out`` when given: ``h5ad`` is then left unchanged). Summary: per contrast ``n_significant`` and group sizes.
    """
    from cfrna.de.deseq import fit_contrasts as de_tables
    from cfrna.matrix.anndata_io import (
        add_de,
        check_h5ad_out,
        contrast_ids,
        read_de_tables,
        read_design,
        read_size_factors,
        update_carrier,
    )

    check_h5ad_out(h5ad, h5ad_out)
    sheet = as_samplesheet(samplesheet)
    check_matrix_samples(counts, sheet.ids)
    res = de_tables(counts, sheet, contrasts, outdir, samples_table=samples_table, keep_failed=settings.keep_failed,
                    threads=settings.threads, min_count_filter=settings.min_count_filter, alpha=settings.alpha,
                    lfc_shrink=settings.lfc_shrink, gtf=gtf, annotation=annotation, sensitivity=settings.sensitivity)
    lay = OutputLayout.in_stage_folder("de", outdir)
    outputs: dict[str, Path] = {"design": lay.design, "normalized_counts": lay.normalized_counts, "vst": lay.vst,
                                "size_factors": lay.size_factors}
    for cid in res["contrasts"]:
        outputs[f"deseq2_table:{cid}"] = lay.deseq2_table(cid)
        if lay.sensitivity_table(cid).is_file():
            outputs[f"sensitivity_table:{cid}"] = lay.sensitivity_table(cid)
    design = read_design(lay.design)
    if h5ad is not None:
        # the tables as written (what a reader of de/ sees, and what a Nextflow run's AnnData holds)
        ids = contrast_ids(design)
        outputs["h5ad"] = update_carrier(h5ad, lambda a: add_de(
            a, tables=read_de_tables(lay.de_dir, ids), design=design,
            normalized=read_expression(lay.normalized_counts, what="normalized counts"),
            vst=read_expression(lay.vst, what="vst matrix"), size_factors=read_size_factors(lay.size_factors),
            pca_genes=settings.pca_genes), out=h5ad_out)
    summary = {"contrasts": {cid: {"n_significant": info["n_significant"], "groups": info["groups"]}
                             for cid, info in res["contrasts"].items()}}
    warnings = [f"contrast {r['contrast']}: sensitivity table not written: {r['sensitivity']}"
                for r in design.to_dict("records")
                if settings.sensitivity and r["sensitivity"] not in ("ok", "not run")]
    return StageResult("de", outputs=outputs, summary=summary, warnings=warnings)


__all__ = ["DeSettings", "run_de"]
