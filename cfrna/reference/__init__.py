"""Reference annotation: GTF parsing and gene tables."""

from cfrna.reference.gtf import Annotation, read_gtf

__all__ = ["Annotation", "read_gtf"]
