"""Differential expression: contrasts file, design checks, the DESeq2 engine (nbglm) and limma voom per contrast."""

from cfrna.de.contrasts import Contrast, DesignSummary, check_contrast, read_contrasts
from cfrna.de.deseq import deseq_fit, filter_genes, fit_contrasts, read_counts

__all__ = ["Contrast", "DesignSummary", "check_contrast", "deseq_fit", "filter_genes", "read_contrasts",
           "read_counts", "fit_contrasts"]
