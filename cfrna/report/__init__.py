"""The results browser: one self-contained, offline HTML file built from the run's AnnData.

:func:`cfrna.report.stage.run_report` reads the declared inputs (``cfrna.h5ad``, ``qc_summary.tsv``,
provenance files); :func:`report_folder` does the same for a finished run folder whose AnnData is
built from its tables (``cfrna report --results O``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from cfrna.report.data import collect_carrier, folder_inputs

__all__ = ["report_folder"]

log = logging.getLogger(__name__)


def report_folder(results_dir: str | Path, *, title: str | None = None, anndata: bool = True) -> Path:
    """Build ``<results_dir>/report/index.html`` from a run folder's tables (and ``matrix/cfrna.h5ad``).

    Parameters
    ----------
    results_dir
        The run's output folder ``O`` (docs/architecture.md lists what is read).
    title
        Title shown in the report (default: the run's ``title`` parameter, else the trial named in the
        sample table's ``trial``/``study`` column, else the samplesheet's file name).
    anndata
        Also write the AnnData built from the tables to ``matrix/cfrna.h5ad`` (default: True).

    Returns
    -------
    Path
        The written ``index.html``.

    Raises
    ------
    cfrna.errors.InputFormatError
        A required run output (``qc/qc_summary.tsv``, ``matrix/gene_counts.tsv``) is missing or malformed.
    cfrna.errors.ToolMissingError
        The vendored browser libraries are missing (run ``scripts/vendor_js.sh``).
    """
    from cfrna.matrix.anndata_io import write_carrier
    from cfrna.pipeline.layout import OutputLayout
    from cfrna.report.stage import write_html

    lay = OutputLayout(results_dir)
    adata, qc, kwargs = folder_inputs(lay.root)
    out = write_html(collect_carrier(adata, qc, title=title, **kwargs), lay.report_html)
    if anndata:
        write_carrier(adata, lay.h5ad)
    return out
