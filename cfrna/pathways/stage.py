"""The pathways stage: GSEA per contrast and per-sample signature scores; their slots in ``cfrna.h5ad``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cfrna.errors import ConfigError
from cfrna.io.samplesheet import SampleSheet
from cfrna.pipeline.layout import OutputLayout
from cfrna.pipeline.stages import StageResult


@dataclass(frozen=True)
class PathwaysSettings:
    """Settings of the pathways stage (defaults as ``cfrna pathways``; see :func:`cfrna.pathways.gsea.score_pathways`)."""

    rank_by: Literal["stat", "lfc_shrunk", "lfc"] = "stat"
    permutations: int = 1000
    seed: int = 1
    min_size: int = 3
    max_size: int = 500
    threads: int = 1

    def __post_init__(self) -> None:
        if self.threads < 1 or self.permutations < 1 or self.min_size < 1 or self.max_size < self.min_size:
            raise ConfigError("--threads and --permutations must be >= 1 and 1 <= --min-size <= --max-size")


def run_pathways(*, de_dir: str | os.PathLike, gtf: str | os.PathLike | None = None,
                 gene_sets: Sequence[str | os.PathLike] | None = None,
                 samplesheet: str | os.PathLike | SampleSheet | None = None,
                 samples_table: str | os.PathLike | None = None, h5ad: str | os.PathLike | None = None,
                 h5ad_out: str | os.PathLike | None = None, outdir: str | os.PathLike, settings: PathwaysSettings = PathwaysSettings()) -> StageResult:
    """GSEA per contrast of ``de_dir/design.tsv`` and signature scores; writes ``pathways/`` and adds
    ``uns["gsea"]``, ``obsm["signature_scores"]`` and ``uns["signature_association"]`` to ``h5ad`` (one
    atomic rewrite; to ``h5ad_out`` when given, leaving ``h5ad`` unchanged). Summary: gene sets tested and the top set per contrast."""
    from cfrna.io.tables import read_tsv
    from cfrna.matrix.anndata_io import (
        add_pathways,
        check_h5ad_out,
        read_gsea_tables,
        read_scores,
        update_carrier,
    )
    from cfrna.pathways.gsea import score_pathways as pathway_tables

    check_h5ad_out(h5ad, h5ad_out)
    res = pathway_tables(de_dir, gtf, outdir, gene_sets=gene_sets or None, samplesheet=samplesheet,
                         samples_table=samples_table, rank_by=settings.rank_by, threads=settings.threads,
                         permutations=settings.permutations, seed=settings.seed, min_size=settings.min_size,
                         max_size=settings.max_size)
    lay = OutputLayout.in_stage_folder("pathways", outdir)
    outputs: dict[str, Path] = {f"gsea_table:{cid}": lay.gsea_table(cid) for cid in res["contrasts"]}
    outputs.update(signature_scores=lay.signature_scores, signature_association=lay.signature_association,
                   gene_set_coverage=lay.gene_set_coverage)
    if h5ad is not None:
        # the tables as written (what a reader of pathways/ sees, and what a Nextflow run's AnnData holds)
        ids = list(res["contrasts"])
        outputs["h5ad"] = update_carrier(h5ad, lambda a: add_pathways(
            a, gsea=read_gsea_tables(lay.pathways_dir, ids), scores=read_scores(lay.signature_scores),
            association=read_tsv(lay.signature_association, what="signature association")), out=h5ad_out)
    summary = {"contrasts": {cid: {"sets_tested": len(t), "top": t["gene_set"].head(1).tolist()}
                             for cid, t in res["gsea"].items()},
               "signatures": [str(c) for c in res["scores"].columns]}
    return StageResult("pathways", outputs=outputs, summary=summary)


__all__ = ["PathwaysSettings", "run_pathways"]
