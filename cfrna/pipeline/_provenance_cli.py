"""``cfrna provenance``: write ``pipeline_info/`` params, software versions and input checksums.

`cfrna run` writes these itself; the Nextflow pipeline calls this subcommand so both runners write
the same three files with the same code (:func:`cfrna.pipeline.stage.run_provenance`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cfrna.config import ALIGNERS, DEFAULT_ALIGNER
from cfrna.errors import ConfigError


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samplesheet", required=True, help="the run's samplesheet CSV")
    p.add_argument("--fasta", required=True, help="genome FASTA")
    p.add_argument("--gtf", required=True, help="annotation GTF")
    p.add_argument("--contrasts", help="contrasts CSV")
    p.add_argument("--gene-sets", nargs="*", default=[], metavar="GMT", help="GMT files used for GSEA")
    p.add_argument("--aligner", choices=ALIGNERS, default=DEFAULT_ALIGNER, help="aligner (for its version)")
    p.add_argument("--params-json", help="JSON file with the run's parameters (default: the arguments above)")
    p.add_argument("--outdir", required=True, help="output folder (O/pipeline_info)")
    p.add_argument("--threads", type=int, default=1, help="unused; accepted for uniformity")


def run(args: argparse.Namespace) -> int:
    from cfrna.pipeline.stage import ProvenanceSettings, run_provenance
    from cfrna.pipeline.stages import settings_from

    params = None
    if args.params_json:
        try:
            params = json.loads(Path(args.params_json).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the parameters JSON ({exc})", where=args.params_json) from None
    run_provenance(samplesheet=args.samplesheet, fasta=args.fasta, gtf=args.gtf, contrasts=args.contrasts,
                   gene_sets=list(args.gene_sets), params=params, outdir=args.outdir,
                   settings=settings_from(ProvenanceSettings, args))
    return 0
