"""Gene sets and per-sample signature scores: below both ``cfrna.de`` (blood-cell covariates of the
sensitivity analysis) and ``cfrna.pathways`` (GSEA collections, signature scores), so neither stage
imports the other.

- :mod:`cfrna.signatures.gmt`: GMT files, the curated sets of ``assets/genesets``, symbol aliases.
- :mod:`cfrna.signatures.scores`: z-score, singscore and median-fold-change scores, group association.
"""

from cfrna.signatures.gmt import (
           ALIASES,
           GeneSet,
           curated_gene_sets,
           default_gmt_paths,
           map_gene_sets,
           read_gmt,
           resolve_symbol,
)
from cfrna.signatures.scores import association, bh_adjust, median_fold_change_score, singscore, zscore_scores

__all__ = ["ALIASES", "GeneSet", "association", "bh_adjust", "curated_gene_sets", "default_gmt_paths", "map_gene_sets",
           "median_fold_change_score", "read_gmt", "resolve_symbol", "singscore", "zscore_scores"]
