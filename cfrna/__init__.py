"""cfrna: plasma cell-free RNA sequencing, from reads to QC-gated counts, DE and pathway signatures."""

__version__ = "0.1.0"

__all__ = ["__version__"]
