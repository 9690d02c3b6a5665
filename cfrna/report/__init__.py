"""The results browser: one self-contained, offline HTML file built from a run's output folder."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from cfrna.io.atomic import write_text
from cfrna.report.data import collect
from cfrna.report.html import render_html

__all__ = ["run_report"]

log = logging.getLogger(__name__)


def _share_mode(path: Path) -> None:
    """Give the report the usual file mode (0666 minus umask): it is meant to be shared."""
    mask = os.umask(0)
    os.umask(mask)
    path.chmod(0o666 & ~mask)


def run_report(results_dir: str | Path, *, title: str | None = None, anndata: bool = True) -> Path:
    """Build ``<results_dir>/report/index.html`` (and the final AnnData when available).

    Parameters
    ----------
    results_dir
        The run's output folder ``O`` (docs/architecture.md lists what is read).
    title
        Title shown in the report (default: the run's ``title`` parameter, else the trial named in the
        sample table's ``trial``/``study`` column, else the samplesheet's file name).
    anndata
        Also call ``cfrna.matrix.write_anndata(results_dir)`` when that function exists (default: True).

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
    results_dir = Path(results_dir)
    payload = collect(results_dir, title=title)
    text = render_html(payload)
    out = results_dir / "report" / "index.html"
    write_text(out, text)
    _share_mode(out)
    log.info("report: %s (%.1f MB)", out, out.stat().st_size / 1e6)
    if anndata:
        try:
            matrix = importlib.import_module("cfrna.matrix")
        except ImportError:
            matrix = None
        if matrix is not None and hasattr(matrix, "write_anndata"):
            matrix.write_anndata(results_dir)
        else:
            log.debug("cfrna.matrix.write_anndata not available: AnnData not written")
    return out
