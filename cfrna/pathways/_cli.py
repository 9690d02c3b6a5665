"""``cfrna pathways``: GSEA prerank per contrast and per-sample signature scores."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--de-dir", required=True, help="output folder of `cfrna de` (O/de)")
    p.add_argument("--gtf", help="GTF for gene_id -> symbol (default: gene_name of the DE tables)")
    p.add_argument("--gene-sets", nargs="+", metavar="GMT", help="GMT files (default: the curated assets/genesets)")
    p.add_argument("--outdir", required=True, help="output folder (O/pathways)")
    p.add_argument("--samplesheet", help="samplesheet (non-flare baseline of the IFN median fold-change score)")
    p.add_argument("--samples", dest="samples_table", help="O/matrix/samples.tsv (excluded samples)")
    p.add_argument("--h5ad", help="O/matrix/cfrna.h5ad: add the GSEA tables and signature scores (rewritten in place unless --h5ad-out)")
    p.add_argument("--h5ad-out", help="write the AnnData with the pathway results here instead (--h5ad is left unchanged)")
    p.add_argument("--rank-by", choices=["stat", "lfc_shrunk", "lfc"], default="stat",
                   help="ranking metric (default: stat, the Wald statistic)")
    p.add_argument("--permutations", type=int, default=1000, help="GSEA permutations (default: 1000)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    p.add_argument("--min-size", type=int, default=3, help="smallest gene set after mapping (default: 3)")
    p.add_argument("--max-size", type=int, default=500, help="largest gene set after mapping (default: 500)")
    p.add_argument("--threads", type=int, default=1, help="gseapy threads (default: 1)")


def run(args: argparse.Namespace) -> int:
    from cfrna.pathways.stage import PathwaysSettings, run_pathways
    from cfrna.pipeline.stages import settings_from

    res = run_pathways(de_dir=args.de_dir, gtf=args.gtf, gene_sets=args.gene_sets, samplesheet=args.samplesheet,
                       samples_table=args.samples_table, h5ad=args.h5ad, h5ad_out=args.h5ad_out,
                       outdir=args.outdir,
                       settings=settings_from(PathwaysSettings, args))
    for key, path in res.outputs.items():
        if key.startswith("gsea_table:"):
            print(f"{key.removeprefix('gsea_table:')}\t{path}")
    print(f"signature_scores\t{res.outputs['signature_scores']}")
    return 0
