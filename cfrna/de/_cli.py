"""``cfrna de``: differential expression per contrast (DESeq2, or limma voom with a random patient intercept)."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--counts", required=True, help="gene x sample counts table (gene_id first; .tsv/.csv/.gz)")
    p.add_argument("--samplesheet", required=True, help="samplesheet CSV (metadata used in designs)")
    p.add_argument("--contrasts", required=True,
                   help="contrasts CSV (id,variable,reference,target[,blocking,formula,subset,coefficient,method]); "
                        "a random intercept '(1 | patient_id)' in formula selects limma voom (docs/de.md)")
    p.add_argument("--outdir", required=True, help="output folder (O/de)")
    p.add_argument("--samples", dest="samples_table", help="O/matrix/samples.tsv: QC-excluded samples are dropped")
    p.add_argument("--gtf", help="GTF for gene names")
    p.add_argument("--annotation", help="O/matrix/gene_annotation.tsv for gene names (when no --gtf)")
    p.add_argument("--h5ad", help="O/matrix/cfrna.h5ad: add the DE layers and tables to it (rewritten in place unless --h5ad-out)")
    p.add_argument("--h5ad-out", help="write the AnnData with the DE results here instead (--h5ad is left unchanged)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads for the DESeq2 fits and the limma per-gene REML/GLS (default: 1)")
    p.add_argument("--keep-failed", action="store_true", help="keep samples that failed QC")
    p.add_argument("--filter", dest="min_count_filter", choices=["default", "cpm", "none"], default="default",
                   help="gene filter: total count >= 10 (default), CPM > 0.5 in > 75%% of samples (cpm), "
                        "or only all-zero genes (none)")
    p.add_argument("--alpha", type=float, default=0.05, help="FDR level for independent filtering (default: 0.05)")
    p.add_argument("--no-shrink", dest="lfc_shrink", action="store_false", help="skip LFC shrinkage")
    p.add_argument("--no-sensitivity", dest="sensitivity", action="store_false",
                   help="skip the blood-cell-score sensitivity tables")


def run(args: argparse.Namespace) -> int:
    from cfrna.de.stage import DeSettings, run_de
    from cfrna.pipeline.stages import settings_from

    settings = settings_from(DeSettings, args)
    res = run_de(counts=args.counts, samplesheet=args.samplesheet, contrasts=args.contrasts,
                 samples_table=args.samples_table, gtf=args.gtf, annotation=args.annotation, h5ad=args.h5ad,
                 h5ad_out=args.h5ad_out, outdir=args.outdir, settings=settings)
    for cid, info in res.summary["contrasts"].items():
        groups = ", ".join(f"{k} n={v}" for k, v in info["groups"].items())
        print(f"{cid}\t{groups}\t{info['n_significant']} genes padj<{settings.alpha}\t{res.outputs[f'deseq2_table:{cid}']}")
    return 0
