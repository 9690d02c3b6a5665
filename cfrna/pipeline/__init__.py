"""The embedded runner: every stage in-process (samples in worker processes), same tree as Nextflow."""

from cfrna.pipeline.local import RunOptions, run_pipeline

__all__ = ["RunOptions", "run_pipeline"]
