"""Synthetic plasma cfRNA trial cohorts with known truth (``cfrna simulate``).

- :func:`simulate_cohort` writes FASTQ, genome, GTF, samplesheet, contrasts and ``truth/``.
- :func:`simulate_counts` draws a gene x sample count matrix from the same expression model,
  for tests that need no reads.
"""

from cfrna.simulate.cohort import simulate_cohort
from cfrna.simulate.model import simulate_counts

__all__ = ["simulate_cohort", "simulate_counts"]
