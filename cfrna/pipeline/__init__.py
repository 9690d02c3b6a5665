"""Orchestration: the stage registry (:mod:`.stages`), the output tree (:mod:`.layout`), the embedded
runner ``cfrna run`` (:mod:`.local`: every stage in-process, samples in worker processes, same tree as
Nextflow), input validation (:mod:`.validate`) and ``pipeline_info/`` (:mod:`.provenance`).

``RunOptions`` and ``run_pipeline`` are imported on first use, so that the stages can use the layout
without loading the runner.
"""

from __future__ import annotations

__all__ = ["RunOptions", "run_pipeline"]


def __getattr__(name: str):
    if name in __all__:
        from cfrna.pipeline import local

        return getattr(local, name)
    raise AttributeError(f"module 'cfrna.pipeline' has no attribute {name!r}")
