"""``cfrna report``: write the results browser (``report/index.html``).

Two forms: the stage's declared inputs (``--h5ad H --qc-summary Q [--params …] --outdir O/report``), or a
finished run folder (``--results O``: the AnnData is built from its tables and written to
``O/matrix/cfrna.h5ad`` unless ``--no-anndata``).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, metavar="O", help="a run's output folder (--outdir of cfrna run)")
    parser.add_argument("--h5ad", type=Path, help="the run's cfrna.h5ad (with --qc-summary and --outdir)")
    parser.add_argument("--h5ad-out", type=Path,
                        help="write the AnnData with the provenance here instead (--h5ad is left unchanged)")
    parser.add_argument("--qc-summary", type=Path, help="qc_summary.tsv of the run (with --h5ad)")
    parser.add_argument("--params", dest="params_json", type=Path, help="pipeline_info/params.json (optional)")
    parser.add_argument("--software-versions", type=Path, help="pipeline_info/software_versions.yml (optional)")
    parser.add_argument("--input-checksums", type=Path, help="pipeline_info/input_checksums.tsv (optional)")
    parser.add_argument("--outdir", type=Path, help="output folder of the report (O/report; with --h5ad)")
    parser.add_argument("--title", default=None, help="title shown in the report (default: the run's title, else the trial/study column of the samples, "
                        "else the samplesheet name)")
    parser.add_argument("--no-anndata", dest="anndata", action="store_false",
                        help="do not write the AnnData (--results: matrix/cfrna.h5ad; --h5ad: its provenance)")
    parser.add_argument("--threads", type=int, default=1, help="accepted for uniformity; the report is single-threaded")


def run(args: argparse.Namespace) -> int:
    from cfrna.errors import ConfigError

    if args.results is not None:
        if args.h5ad is not None or args.h5ad_out is not None:
            raise ConfigError("give either --results or --h5ad [--h5ad-out], not both")
        from cfrna.report import report_folder

        print(report_folder(args.results, title=args.title, anndata=args.anndata))
        return 0
    if args.h5ad is None or args.qc_summary is None or args.outdir is None:
        raise ConfigError("give --results O, or --h5ad, --qc-summary and --outdir",
                          hint="cfrna report --results <run folder>")
    from cfrna.pipeline.stages import settings_from
    from cfrna.report.stage import ReportSettings, run_report

    res = run_report(h5ad=args.h5ad, h5ad_out=args.h5ad_out, qc_summary=args.qc_summary, params_json=args.params_json,
                     software_versions=args.software_versions, input_checksums=args.input_checksums,
                     outdir=args.outdir, settings=settings_from(ReportSettings, args))
    print(res.outputs["report_html"])
    return 0
