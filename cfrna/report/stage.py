"""The report stage: ``report/index.html`` from the run's AnnData and the report's other declared inputs.

Inputs: ``cfrna.h5ad`` (counts, samples, DE, GSEA, signature scores, PCA), ``qc_summary.tsv`` and the
provenance files of ``pipeline_info/``. Nothing else of the output tree is read. The report records the
provenance in the AnnData (``uns["provenance"]``: one atomic rewrite), which completes it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cfrna.io.atomic import write_text
from cfrna.io.tables import read_tsv, read_yaml
from cfrna.matrix.anndata_io import add_provenance, check_h5ad_out, read_carrier, write_carrier
from cfrna.pipeline.layout import OutputLayout
from cfrna.pipeline.stages import StageResult
from cfrna.report.data import _read_text, collect_carrier, read_params, read_qc
from cfrna.report.html import render_html

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportSettings:
    """Settings of the report stage.

    Attributes
    ----------
    title
        Report title (default: the run's ``title`` parameter, else the trial/study column of the samples,
        else the samplesheet name).
    anndata
        Record the provenance in the AnnData (default: True); False leaves ``h5ad`` untouched.
    threads
        Accepted for uniformity (the report is single-threaded).
    """

    title: str | None = None
    anndata: bool = True
    threads: int = 1


def write_html(payload: dict, out: str | os.PathLike) -> Path:
    """Render the payload into ``out`` atomically with the usual file mode (0666 minus the umask: the
    report is meant to be shared; a temporary file's 0600 is not kept)."""
    out = Path(out)
    write_text(out, render_html(payload))
    log.info("report: %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out


def run_report(*, h5ad: str | os.PathLike, qc_summary: str | os.PathLike, params_json: str | os.PathLike | None = None,
               software_versions: str | os.PathLike | None = None, input_checksums: str | os.PathLike | None = None,
               outdir: str | os.PathLike, settings: ReportSettings = ReportSettings(),
               h5ad_out: str | os.PathLike | None = None) -> StageResult:
    """Write ``<outdir>/index.html`` (``outdir`` = ``O/report``) from the declared inputs only.

    The provenance is recorded in ``h5ad`` (rewritten atomically), or in a new file ``h5ad_out`` that
    leaves ``h5ad`` unchanged (a Nextflow task cannot rewrite a staged input).

    Raises
    ------
    cfrna.errors.InputFormatError
        The QC summary or the AnnData is missing or malformed.
    cfrna.errors.ToolMissingError
        The vendored browser libraries are missing (run ``scripts/vendor_js.sh``).
    """
    check_h5ad_out(h5ad, h5ad_out)
    adata = read_carrier(h5ad)
    qc = read_qc(qc_summary)
    params = read_params(params_json)
    versions_text = _read_text(Path(software_versions)) if software_versions else None
    checksums = (read_tsv(input_checksums, what="input checksums")
                 if input_checksums and Path(input_checksums).is_file() else None)
    payload = collect_carrier(adata, qc, params=params, versions_text=versions_text, checksums=checksums,
                              title=settings.title)
    lay = OutputLayout.in_stage_folder("report", outdir)
    outputs = {"report_html": write_html(payload, lay.report_html)}
    if settings.anndata:
        add_provenance(adata, params=params, input_checksums=checksums,
                       software_versions=(read_yaml(software_versions, what="software versions", all_strings=True)
                                          if versions_text is not None else None))
        outputs["h5ad"] = write_carrier(adata, h5ad_out if h5ad_out is not None else h5ad)
    return StageResult("report", outputs=outputs,
                       summary={"contrasts": [c["id"] for c in payload["contrasts"]], "n_samples": payload["meta"]["n_samples"],
                                "title": payload["meta"]["title"]},
                       warnings=list(payload["notes"]))


__all__ = ["ReportSettings", "run_report", "write_html"]
