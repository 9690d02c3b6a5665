"""cfRNA quality control: metrics, pass/warn/fail decisions and MultiQC files (see docs/qc.md)."""

from cfrna.qc.filters import DEFAULTS, evaluate, load_thresholds
from cfrna.qc.metrics import METRICS, GeneSets, gdna_estimate, ng80, sample_metrics
from cfrna.qc.run import qc_samples

__all__ = ["DEFAULTS", "METRICS", "GeneSets", "evaluate", "gdna_estimate", "load_thresholds", "ng80",
           "qc_samples", "sample_metrics"]
