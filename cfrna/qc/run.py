"""``qc_samples``: per-sample QC passports, the cohort summary, decisions and MultiQC files."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cfrna.errors import ConfigError, EmptyResultError
from cfrna.io.atomic import write_json, write_table
from cfrna.io.samplesheet import SampleSheet
from cfrna.io.tables import as_samplesheet
from cfrna.pipeline.layout import OutputLayout
from cfrna.qc import filters, metrics
from cfrna.qc import multiqc as mqc
from cfrna.reference.gtf import Annotation, read_gtf

log = logging.getLogger(__name__)


def _clean(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return None if not math.isfinite(float(v)) else float(v)
    return v


def _load_sample(sample: str, counts_dir: Path, align_dir: Path | None, trim_dir: Path | None
                 ) -> tuple[dict[str, Any], list[str]]:
    """Read the per-sample inputs that exist; return them and the list of missing file names."""
    cl = OutputLayout.in_stage_folder("count", counts_dir)
    files: dict[str, Path | None] = {
        "counts": cl.counts(sample),
        "summary": cl.counts_summary(sample),
        "stats": cl.counts_stats(sample),
        "align": OutputLayout.in_stage_folder("align", align_dir).align_json(sample) if align_dir is not None else None,
        "trim": OutputLayout.in_stage_folder("trim", trim_dir).trim_json(sample) if trim_dir is not None else None,
    }
    missing = [str(p) for p in files.values() if p is not None and not p.is_file()]
    have = {k: p for k, p in files.items() if p is not None and p.is_file()}
    data: dict[str, Any] = {
        "counts": metrics.read_counts(have["counts"]) if "counts" in have else None,
        "summary": metrics.read_summary(have["summary"]) if "summary" in have else None,
        "stats": metrics.read_json(have["stats"], required=metrics.STATS_KEYS) if "stats" in have else None,
        "align": metrics.read_json(have["align"], required=metrics.ALIGN_KEYS) if "align" in have else None,
        "trim": metrics.read_json(have["trim"], required=metrics.TRIM_KEYS) if "trim" in have else None,
    }
    return data, missing


def qc_samples(
    samplesheet: str | os.PathLike | SampleSheet,
    gtf: str | os.PathLike | Annotation,
    counts_dir: str | os.PathLike,
    align_dir: str | os.PathLike | None,
    trim_dir: str | os.PathLike | None,
    outdir: str | os.PathLike,
    *,
    thresholds: str | os.PathLike | dict[str, Any] | None = None,
    keep_failed: bool = False,
    mad_k: float | None = None,
    multiqc_report: bool = True,
    threads: int = 1,
) -> pd.DataFrame:
    """Compute cfRNA QC for every sample of the sheet and decide pass/warn/fail.

    Parameters
    ----------
    samplesheet
        Samplesheet CSV (or a parsed :class:`SampleSheet`); an optional ``sex`` column is checked
        against XIST/chrY expression.
    gtf
        The GTF used for counting (or a parsed :class:`Annotation`).
    counts_dir, align_dir, trim_dir
        Folders with ``<ID>.counts.tsv`` (+ ``.summary``, ``.stats.json``), ``<ID>.align.json``
        (+ ``<ID>.bam`` header) and ``<ID>.trim.json``. ``align_dir``/``trim_dir`` may be None
        (those metrics are then empty, not failed).
    outdir
        Output folder (``O/qc``): ``<ID>.qc.json``, ``qc_summary.tsv``, ``multiqc/``.
    thresholds
        A JSON/YAML file or a dict overriding :data:`cfrna.qc.filters.DEFAULTS` (default: None).
    keep_failed
        Mark failed samples ``excluded = false`` (default: False).
    mad_k
        Robust-z cut-off for cohort outliers; overrides ``thresholds`` (default: 4.0).
    multiqc_report
        Build ``multiqc/multiqc_report.html`` when MultiQC is installed (default: True).
    threads
        Unused beyond MultiQC; accepted for CLI symmetry (default: 1).

    Returns
    -------
    pandas.DataFrame
        The ``qc_summary.tsv`` table, indexed by sample.
    """
    counts_dir = Path(counts_dir)
    if not counts_dir.is_dir():
        raise ConfigError(f"counts folder not found: {counts_dir}", where="--counts-dir",
                          hint="point --counts-dir at the folder with <ID>.counts.tsv from cfrna count")
    align_dir = Path(align_dir) if align_dir is not None else None
    trim_dir = Path(trim_dir) if trim_dir is not None else None
    for name, d in (("--align-dir", align_dir), ("--trim-dir", trim_dir)):
        if d is not None and not d.is_dir():
            raise ConfigError(f"folder not found: {d}", where=name, hint="check the path")
    outdir = Path(outdir)
    overrides: dict[str, Any] = {}
    if isinstance(thresholds, dict):
        overrides.update(thresholds)
        thresholds = None
    if mad_k is not None:
        overrides["mad_k"] = mad_k
    config = filters.load_thresholds(thresholds, overrides or None)
    sheet = as_samplesheet(samplesheet)
    for s in sheet.samples:
        sex = (s.extra.get("sex") or "").strip()
        if sex and metrics.normalise_sex(sex) is None:
            raise ConfigError(f"column 'sex': unknown value {sex!r} for sample {s.sample}", where=str(sheet.path),
                              hint="use M, F, male, female or leave it empty")
    ann = gtf if isinstance(gtf, Annotation) else read_gtf(gtf)
    genesets = metrics.GeneSets.from_annotation(ann)
    n_genes = len(ann.genes)

    rows: dict[str, dict[str, Any]] = {}
    missing: dict[str, list[str]] = {}
    assignments: dict[str, dict[str, float]] = {}
    curves: dict[str, list[dict[str, Any]] | None] = {}
    chrom_lengths: dict[str, int] | None = None
    n_with_counts = 0
    count_lay = OutputLayout.in_stage_folder("count", counts_dir)
    for s in sheet.samples:
        data, miss = _load_sample(s.sample, counts_dir, align_dir, trim_dir)
        if miss:
            log.warning("sample %s: missing %s -> fail", s.sample, ", ".join(miss))
        missing[s.sample] = miss
        n_with_counts += data["counts"] is not None
        stats = data["stats"]
        needs_lengths = stats is not None and stats.get("strandedness") not in ("forward", "reverse")
        if needs_lengths and chrom_lengths is None and align_dir is not None:
            bam = OutputLayout.in_stage_folder("align", align_dir).bam(s.sample)
            if bam.is_file():
                chrom_lengths = metrics.bam_chrom_lengths(bam)
        rows[s.sample] = metrics.sample_metrics(
            s.sample, trim=data["trim"], align=data["align"], stats=stats, counts=data["counts"],
            summary=data["summary"], genesets=genesets, declared_strandedness=s.strandedness,
            declared_sex=s.extra.get("sex"), chrom_lengths=chrom_lengths,
            gdna_strand_error=float(config["gdna_strand_error"]),
            stats_path=count_lay.counts_stats(s.sample),
        )
        curves[s.sample] = metrics.complexity_curve_of(stats, where=str(count_lay.counts_stats(s.sample)))
        if data["summary"] is not None:
            assignments[s.sample] = data["summary"]
    if n_with_counts == 0:
        raise EmptyResultError(f"no <sample>.counts.tsv for any of the {len(sheet.samples)} samples",
                               where=str(counts_dir), hint="run cfrna count first or fix --counts-dir")

    table = pd.DataFrame.from_dict(rows, orient="index")[list(metrics.METRICS)]
    table.index.name = "sample"
    decisions = filters.evaluate(table, config, n_genes=n_genes, missing=missing)
    status_cols = [c for c in decisions.columns if c.endswith("_status")]
    summary = pd.concat([table, decisions[status_cols]], axis=1)
    summary["status"] = decisions["status"]
    summary["reasons"] = ["; ".join(r) for r in decisions["reasons"]]
    summary["excluded"] = (summary["status"] == "fail") & (not keep_failed)
    summary.index.name = "sample"

    outdir.mkdir(parents=True, exist_ok=True)
    lay = OutputLayout.in_stage_folder("qc", outdir)
    for sid in summary.index:
        rec: dict[str, Any] = {"sample": sid}
        rec.update({k: _clean(table.at[sid, k]) for k in metrics.METRICS})
        rec["checks"] = {c[: -len("_status")]: decisions.at[sid, c] for c in status_cols}
        rec["status"] = decisions.at[sid, "status"]
        rec["reasons"] = list(decisions.at[sid, "reasons"])
        rec["excluded"] = bool(summary.at[sid, "excluded"])
        rec["missing_inputs"] = missing[sid]
        rec["complexity_curve"] = curves.get(sid)
        rec["thresholds"] = {"mad_k": config["mad_k"], "ng80_min": filters.ng80_minimum(config, n_genes),
                             "keep_failed": keep_failed}
        write_json(lay.qc_json(sid), rec)
    write_table(lay.qc_summary, summary.reset_index())
    write_json(lay.qc_thresholds, config)

    mdir = lay.multiqc_dir
    mqc.write_qc_table(summary, mdir / "cfrna_qc_mqc.tsv")
    if assignments:
        mqc.write_assignment(assignments, mdir / "cfrna_assignment_mqc.tsv")
    mqc.write_general_stats(summary, mdir / "cfrna_general_stats_mqc.tsv")
    if any(curves.values()):
        mqc.write_complexity(curves, mdir / "cfrna_complexity_mqc.json")
        write_table(lay.complexity_curves, pd.DataFrame(
            [{"sample": k, **pt} for k, c in curves.items() if c for pt in c]), float_format="%.6g")
    else:
        (mdir / "cfrna_complexity_mqc.json").unlink(missing_ok=True)
        lay.complexity_curves.unlink(missing_ok=True)
    if multiqc_report:
        cfg = None
        try:
            from cfrna._resources import asset_path

            cfg = asset_path("multiqc_config.yml")
        except FileNotFoundError:
            log.warning("assets/multiqc_config.yml not found: MultiQC runs with its defaults")
        mqc.run_multiqc(mdir, config=cfg)
    n_fail = int((summary["status"] == "fail").sum())
    n_warn = int((summary["status"] == "warn").sum())
    log.info("QC: %d samples, %d pass, %d warn, %d fail (%d excluded)", len(summary),
             len(summary) - n_fail - n_warn, n_warn, n_fail, int(summary["excluded"].sum()))
    for sid in summary.index[summary["status"] == "fail"]:
        log.warning("QC fail %s: %s", sid, summary.at[sid, "reasons"])
    return summary
