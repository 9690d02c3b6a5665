"""Synthetic plasma cfRNA trial cohorts with known truth (``cfrna simulate``).

- :func:`simulate_cohort` writes FASTQ, genome, GTF, samplesheet, contrasts and ``truth/``; with
  ``n_patients`` the longitudinal trial cohort (visits, flares, patient random intercept of a given
  intra-class correlation, the trial contrasts); with ``counts_only`` a counts matrix instead of reads.
- :func:`simulate_counts` draws a gene x sample count matrix from the cross-sectional model and
  :func:`simulate_longitudinal_counts` from the longitudinal one, for tests that need no reads.
"""

from cfrna.simulate.cohort import simulate_cohort
from cfrna.simulate.longitudinal import simulate_longitudinal_counts
from cfrna.simulate.model import simulate_counts

__all__ = ["simulate_cohort", "simulate_counts", "simulate_longitudinal_counts"]
