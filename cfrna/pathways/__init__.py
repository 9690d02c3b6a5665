"""Pathways: gseapy prerank per contrast, per-sample signature scores and their association."""

from cfrna.pathways.gsea import prerank, ranking, score_pathways
from cfrna.signatures.gmt import ALIASES, GeneSet, map_gene_sets, read_gmt
from cfrna.signatures.scores import median_fold_change_score, singscore, zscore_scores

__all__ = ["ALIASES", "GeneSet", "map_gene_sets", "median_fold_change_score", "prerank", "ranking", "read_gmt",
           "score_pathways", "singscore", "zscore_scores"]
