"""``cfrna run``: the whole workflow in-process."""

from __future__ import annotations

import argparse
import os

from cfrna.config import ALIGNERS, DE_COUNTS, DEDUP_RUN_MODES, DEFAULT_ALIGNER
from cfrna.pipeline.local import RunOptions, run_pipeline


def add_run_arguments(p: argparse.ArgumentParser, *, inputs_required: bool = True) -> None:
    if inputs_required:
        p.add_argument("--samplesheet", required=True, help="samplesheet CSV (assets/schema_input.json)")
        p.add_argument("--fasta", required=True, help="genome FASTA")
        p.add_argument("--gtf", required=True, help="gene annotation GTF")
        p.add_argument("--outdir", required=True, help="output folder")
        p.add_argument("--contrasts", help="contrasts CSV; without it DE and pathways are skipped")
        p.add_argument("--gene-sets", nargs="+", default=[], metavar="GMT",
                       help="GMT files for GSEA (default: the curated sets in assets/genesets)")
    p.add_argument("--aligner", choices=ALIGNERS, default=DEFAULT_ALIGNER, help="aligner (default: %(default)s)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPUs to use, >= 1 (default: all)")
    p.add_argument("--jobs", type=int, help="samples processed at once, >= 1 (default: min(threads, samples))")
    p.add_argument("--resume", action="store_true", help="skip steps whose outputs and inputs are unchanged")
    p.add_argument("--keep-failed", action="store_true", help="keep QC-failed samples in DE")
    p.add_argument("--index-dir", help="aligner index cache (default: $CFRNA_INDEX_CACHE or ~/.cache/cfrna/index)")
    p.add_argument("--skip-trim", action="store_true", help="align the raw FASTQ (no adapter/quality trimming)")
    p.add_argument("--min-mapq", type=int, default=0, help="minimum MAPQ for counting, 0-255 (default: 0)")
    p.add_argument("--star-two-pass", action="store_true", help="STAR two-pass mode")
    p.add_argument("--junction-scoring", action="store_true",
                   help="mappy: also score annotated splice sites (minimap2 --junc-bed; ~1.5x the alignment CPU)")
    p.add_argument("--qc-thresholds", help="YAML/JSON file overriding QC thresholds (docs/qc.md)")
    p.add_argument("--dedup", choices=DEDUP_RUN_MODES, default="auto",
                   help="duplicate marking while counting, for QC (library complexity) and deduplicated counts: "
                        "auto = directional for samples with UMIs, else position; none skips it (default: auto)")
    p.add_argument("--de-counts", choices=DE_COUNTS, default="auto",
                   help="counts DE tests: auto = deduplicated when every sample has UMIs (true PCR copies), raw "
                        "without UMIs (position duplicates of expressed genes are mostly distinct molecules; "
                        "docs/parameters.md) (default: auto)")
    p.add_argument("--umi-pattern", default=None,
                   help="UMI at the 5' end of --umi-read for samples without a umi_pattern column value: umi_tools "
                        "string pattern (N UMI base, X kept base) or kit preset (takara-pico-v3); extracted into the "
                        "read names by the trim stage (docs/usage.md, UMIs and low-input kits)")
    p.add_argument("--umi-read", type=int, choices=(1, 2), default=None,
                   help="read holding the UMI (default: 1, or the kit preset's)")
    p.add_argument("--umi-in-name", action="store_true",
                   help="the reads already carry their UMI at the end of the name (checked by the trim stage)")
    p.add_argument("--umi-separator", default="_",
                   help="separator between read id and UMI in read names (default: %(default)s; bcl-convert: ':')")
    p.add_argument("--title", help="report title (default: the trial/study column of the samplesheet, else its file name)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress (default: bars on a terminal, one line per finished step otherwise)")


def configure(p: argparse.ArgumentParser) -> None:
    add_run_arguments(p)


def options_from_args(args: argparse.Namespace, **override) -> RunOptions:
    kw = {
        "samplesheet": getattr(args, "samplesheet", None), "fasta": getattr(args, "fasta", None),
        "gtf": getattr(args, "gtf", None), "outdir": getattr(args, "outdir", None),
        "contrasts": getattr(args, "contrasts", None), "gene_sets": list(getattr(args, "gene_sets", []) or []),
        "aligner": args.aligner, "threads": args.threads, "jobs": args.jobs, "resume": args.resume,
        "keep_failed": args.keep_failed, "index_dir": args.index_dir, "skip_trim": args.skip_trim,
        "min_mapq": args.min_mapq, "star_two_pass": args.star_two_pass,
        "junction_scoring": getattr(args, "junction_scoring", False), "qc_thresholds": args.qc_thresholds,
        "progress": not args.no_progress, "title": getattr(args, "title", None),
        "dedup": getattr(args, "dedup", "auto"), "de_counts": getattr(args, "de_counts", "auto"),
        "umi_pattern": getattr(args, "umi_pattern", None), "umi_read": getattr(args, "umi_read", None),
        "umi_in_name": getattr(args, "umi_in_name", False), "umi_separator": getattr(args, "umi_separator", "_"),
    }
    kw.update(override)
    return RunOptions(**kw)


def run(args: argparse.Namespace) -> int:
    from cfrna.pipeline.layout import OutputLayout

    res = run_pipeline(options_from_args(args))
    if res["failed"]:
        print(f"warning: {len(res['failed'])} sample(s) failed and were excluded "
              f"(see {OutputLayout(args.outdir).sample_errors}): {', '.join(res['failed'])}")
    print(res["report"])
    return 0
