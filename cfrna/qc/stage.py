"""The QC stage: per-sample passports, ``qc_summary.tsv``, decisions and MultiQC files.

QC runs before the matrix stage, so it has no AnnData to add to: the matrix stage puts the QC
columns in ``obs`` and the summary in ``uns["qc_summary"]``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cfrna.io.samplesheet import SampleSheet
from cfrna.pipeline.layout import OutputLayout
from cfrna.pipeline.stages import StageResult
from cfrna.reference.gtf import Annotation


@dataclass(frozen=True)
class QcSettings:
    """Settings of the QC stage (defaults as ``cfrna qc``; see :func:`cfrna.qc.run.qc_samples`).

    ``thresholds`` is a JSON/YAML file overriding :data:`cfrna.qc.filters.DEFAULTS`.
    """

    thresholds: str | None = None
    keep_failed: bool = False
    mad_k: float | None = None
    multiqc_report: bool = True
    threads: int = 1


def run_qc(*, samplesheet: str | os.PathLike | SampleSheet, gtf: str | os.PathLike | Annotation,
           counts_dir: str | os.PathLike, align_dir: str | os.PathLike | None = None,
           trim_dir: str | os.PathLike | None = None, outdir: str | os.PathLike,
           settings: QcSettings = QcSettings()) -> StageResult:
    """QC of every sample of the sheet; summary: sample numbers per status and the excluded samples."""
    from cfrna.qc.run import qc_samples as qc_tables

    summary = qc_tables(samplesheet, gtf, counts_dir, align_dir, trim_dir, outdir, thresholds=settings.thresholds,
                        keep_failed=settings.keep_failed, mad_k=settings.mad_k,
                        multiqc_report=settings.multiqc_report, threads=settings.threads)
    lay = OutputLayout.in_stage_folder("qc", outdir)
    outputs: dict[str, Path] = {"qc_summary": lay.qc_summary, "qc_thresholds": lay.qc_thresholds,
                                "multiqc_dir": lay.multiqc_dir}
    outputs.update({f"qc_json:{sid}": lay.qc_json(sid) for sid in summary.index})
    if lay.complexity_curves.is_file():  # counting ran with --dedup
        outputs["complexity_curves"] = lay.complexity_curves
    counts = summary["status"].value_counts()
    excluded = [str(s) for s in summary.index[summary["excluded"]]]
    return StageResult("qc", outputs=outputs,
                       summary={"n_samples": len(summary), **{k: int(counts.get(k, 0)) for k in ("pass", "warn", "fail")},
                                "excluded": excluded},
                       warnings=[f"QC fail {sid}: {summary.at[sid, 'reasons']}"
                                 for sid in summary.index[summary["status"] == "fail"]])


__all__ = ["QcSettings", "run_qc"]
