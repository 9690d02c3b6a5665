"""Merge per-sample counts into the cohort matrix, the sample table and the final AnnData."""

from cfrna.matrix.anndata_io import write_anndata
from cfrna.matrix.merge import read_counts_table, run_matrix

__all__ = ["read_counts_table", "run_matrix", "write_anndata"]
