"""Merge per-sample counts into the cohort matrix, the sample table and the run's AnnData (the carrier)."""

from cfrna.matrix.anndata_io import build_anndata, update_carrier, write_anndata
from cfrna.matrix.merge import MatrixTables, merge_counts, read_counts_table

__all__ = ["MatrixTables", "build_anndata", "merge_counts", "read_counts_table", "update_carrier", "write_anndata"]
