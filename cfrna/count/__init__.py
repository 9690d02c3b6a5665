"""Gene counting: featureCounts-exact counts from a BAM with numba kernels, plus QC tallies."""

from cfrna.count.counter import SUMMARY_CATEGORIES, count_reads, strandedness_from

__all__ = ["SUMMARY_CATEGORIES", "count_reads", "strandedness_from"]
