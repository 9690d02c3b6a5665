"""``cfrna provenance``: write ``pipeline_info/`` params, software versions and input checksums.

`cfrna run` writes these itself; the Nextflow pipeline calls this subcommand so both runners write
the same three files with the same code.
"""

from __future__ import annotations

import argparse
import json
import types
from pathlib import Path

from cfrna.config import ALIGNERS, DEFAULT_ALIGNER
from cfrna.errors import ConfigError
from cfrna.io.samplesheet import read_samplesheet
from cfrna.pipeline import provenance


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
    out = Path(args.outdir)
    if args.params_json:
        try:
            params = json.loads(Path(args.params_json).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the parameters JSON ({exc})", where=args.params_json) from None
    else:
        params = {"samplesheet": Path(args.samplesheet).name, "fasta": Path(args.fasta).name,
                  "gtf": Path(args.gtf).name, "contrasts": Path(args.contrasts).name if args.contrasts else None,
                  "gene_sets": [Path(g).name for g in args.gene_sets], "aligner": args.aligner}
    sheet = read_samplesheet(Path(args.samplesheet).resolve())
    opts = types.SimpleNamespace(samplesheet=args.samplesheet, contrasts=args.contrasts, fasta=args.fasta,
                                 gtf=args.gtf, gene_sets=list(args.gene_sets))
    provenance.write_params(out / "params.json", params)
    provenance.write_checksums(out / "input_checksums.tsv", opts, sheet)
    provenance.write_versions(out / "software_versions.yml", aligner=args.aligner)
    return 0
