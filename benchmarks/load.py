"""Load benchmark: the steps after alignment at trial scale (default 900 samples x 60,000 genes).

Usage::

    .venv/bin/python benchmarks/load.py [--samples 900] [--genes 60000] [--workdir D] [--no-peer]

Builds a synthetic run folder as the alignment and counting stages would leave it (per-sample
counts, assignment summaries, counting tallies, alignment and trimming JSON; a GTF with one
multi-exon gene per id; a samplesheet of ~225 patients x 4 visits with flare/no_flare, both arms,
batches and steroid dose), then runs, each in its own process, ``cfrna qc`` (QC gating),
``cfrna matrix``, ``cfrna de`` on 2 contrasts (flare vs no_flare blocked on patient, and arm),
``cfrna pathways`` and ``cfrna report``, and prints wall time and peak RSS (``wait4`` rusage of
that process) per step. The peer measured in the same run is R DESeq2 (``Rscript``, Debian
r-bioc-deseq2) on the same filtered matrix and the arm design (``~ arm``), next to ``cfrna de``
restricted to that contrast: the ratio is printed. The whole workflow must stay within 24 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

R_SCRIPT = r"""
suppressPackageStartupMessages(library(DESeq2))
args <- commandArgs(trailingOnly = TRUE)
counts <- as.matrix(read.delim(args[1], row.names = 1, check.names = FALSE))
cd <- read.delim(args[2], row.names = 1)
cd$arm <- factor(cd$arm, levels = c("steroid_maintenance", "steroid_tapering"))
dds <- DESeqDataSetFromMatrix(counts[, rownames(cd)], cd, ~ arm)
dds <- DESeq(dds, quiet = TRUE)
res <- results(dds, contrast = c("arm", "steroid_tapering", "steroid_maintenance"), alpha = 0.05)
write.table(data.frame(gene_id = rownames(res), log2FoldChange = res$log2FoldChange, padj = res$padj),
            args[3], sep = "\t", quote = FALSE, row.names = FALSE)
"""


def run_step(name: str, cmd: list[str], log_dir: Path) -> dict:
    """Run one command in its own process; wall time and that process's peak RSS."""
    t0 = time.time()
    with open(log_dir / f"{name}.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - t0
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        sys.exit(f"{name} failed (exit {rc}); see {log_dir / (name + '.log')}")
    return {"step": name, "wall_s": round(wall, 1), "peak_rss_mb": round(usage.ru_maxrss / 1024, 0),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)}


def build(workdir: Path, n_samples: int, n_genes: int, seed: int, blocking: str) -> dict:
    """Write the synthetic post-alignment run folder; return its paths."""
    from cfrna.simulate import simulate_counts

    rng = np.random.default_rng(seed)
    counts, samples, truth = simulate_counts(n_samples=n_samples, n_genes=n_genes, seed=seed, depth=3e6,
                                         plant_bad=True)
    res = workdir / "results"
    for d in ("counts", "alignment", "trimmed"):
        (res / d).mkdir(parents=True, exist_ok=True)
    # GTF: genes laid out on 20 chromosomes, 3 exons each, in the order of the count matrix
    gtf = workdir / "genes.gtf"
    gene_ids = counts.index.to_numpy()
    names = truth.set_index("gene_id")["gene_name"].reindex(gene_ids).fillna("").to_numpy()
    with open(gtf, "w") as fh:
        for i, (gid, name) in enumerate(zip(gene_ids, names, strict=True)):
            chrom = "chrM" if str(gid).startswith("MT") else f"chr{i % 20 + 1}"
            base = 10_000 + (i // 20) * 30_000
            strand = "+" if i % 2 else "-"
            for e in range(3):
                s = base + e * 5000
                fh.write(f'{chrom}\tsim\texon\t{s}\t{s + 199}\t.\t{strand}\t.\tgene_id "{gid}"; '
                         f'gene_name "{name or gid}"; transcript_id "{gid}.1"; exon_number "{e + 1}";\n')
    # annotation order = first appearance in the GTF, which is the matrix order
    from cfrna.reference import read_gtf

    ann = read_gtf(gtf)
    counts = counts.reindex(ann.genes["gene_id"])
    fq = workdir / "empty.fastq.gz"
    fq.write_bytes(b"")
    sheet = samples.reset_index().rename(columns={"index": "sample"})
    sheet["fastq_1"] = fq.name
    sheet["fastq_2"] = ""
    cols = ["sample", "patient_id", "visit_month", "arm", "flare", "fastq_1", "fastq_2", "strandedness"]
    extra = [c for c in sheet.columns if c not in cols and c != "planted_bad"]
    sheet[cols + extra].to_csv(workdir / "samplesheet.csv", index=False)
    pd.DataFrame([
        {"id": "flare_vs_no_flare", "variable": "flare", "reference": "no_flare", "target": "flare",
         "blocking": blocking, "formula": ""},
        {"id": "arm", "variable": "arm", "reference": "steroid_maintenance", "target": "steroid_tapering",
         "blocking": "", "formula": ""},
    ]).to_csv(workdir / "contrasts.csv", index=False)
    for s in counts.columns:
        c = counts[s].to_numpy()
        pd.DataFrame({"gene_id": counts.index, "count": c}).to_csv(res / "counts" / f"{s}.counts.tsv", sep="\t",
                                                                    index=False)
        assigned = int(c.sum())
        total = int(assigned / rng.uniform(0.55, 0.75))
        summary = {"Assigned": assigned, "Unassigned_Unmapped": int(total * 0.05),
                   "Unassigned_MultiMapping": int(total * 0.04), "Unassigned_NoFeatures": int(total * 0.15),
                   "Unassigned_Ambiguity": int(total * 0.02)}
        pd.DataFrame({"Status": list(summary), s: list(summary.values())}).to_csv(
            res / "counts" / f"{s}.counts.tsv.summary", sep="\t", index=False)
        mapped = int(total * 0.95)
        exonic = int(mapped * rng.uniform(0.65, 0.8))
        intronic = int(mapped * rng.uniform(0.1, 0.2))
        inter = mapped - exonic - intronic
        bad = samples.loc[s, "planted_bad"]
        anti = 0.02 if bad != "gdna" else 0.2
        stats = {"sample": s, "strandedness": "reverse", "paired": False, "primary_mapped": mapped,
                 "unique": int(mapped * 0.96), "exonic_sense": int(exonic * (1 - anti)),
                 "exonic_antisense": int(exonic * anti), "intronic_sense": int(intronic * (1 - anti)),
                 "intronic_antisense": int(intronic * anti), "intergenic": inter,
                 "spliced": int(mapped * rng.uniform(0.18, 0.3)), "mito": int(mapped * 0.03),
                 "duplicates": int(mapped * 0.1), "three_prime_bias": float(rng.uniform(0.01, 0.05)),
                 "genes_detected": int((c > 0).sum())}
        (res / "counts" / f"{s}.counts.tsv.stats.json").write_text(json.dumps(stats))
        align = {"sample": s, "aligner": "mappy", "reads": total, "mapped": mapped, "unique": int(mapped * 0.96),
                 "multi": int(mapped * 0.04), "unmapped": total - mapped, "mapping_rate": mapped / total,
                 "unique_fraction": 0.96, "multi_fraction": 0.04, "spliced_fraction": 0.22,
                 "soft_clipped_fraction": 0.1, "mismatch_rate": 0.004, "insert_size_median": None,
                 "strandedness": {"declared": "reverse", "inferred": "reverse", "forward_fraction": 0.03,
                                  "reverse_fraction": 0.95, "undetermined_fraction": 0.02, "reads_used": 50000,
                                  "used": "reverse", "agrees": True}}
        (res / "alignment" / f"{s}.align.json").write_text(json.dumps(align))
        trim = {"sample": s, "reads_in": int(total * 1.02), "reads_out": total, "bases_in": total * 76,
                "bases_out": total * 74, "reads_with_adapter": int(total * 0.05), "too_short": int(total * 0.02),
                "mean_length_after": 73.5, "mean_quality": 35.0, "gc_fraction": 0.45,
                "duplication_fraction": 0.1, "paired": False}
        (res / "trimmed" / f"{s}.trim.json").write_text(json.dumps(trim))
    return {"res": res, "gtf": gtf, "sheet": workdir / "samplesheet.csv", "contrasts": workdir / "contrasts.csv"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=900)
    ap.add_argument("--genes", type=int, default=60000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", default="/tmp/cfrna_bench_load")
    ap.add_argument("--no-peer", action="store_true", help="skip R DESeq2")
    ap.add_argument("--blocking", default="patient_id",
                    help="blocking of the flare contrast (default: patient_id; '' for none, 'arm;batch' ...)")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    t0 = time.time()
    p = build(work, args.samples, args.genes, args.seed, args.blocking)
    print(f"built {args.samples} samples x {args.genes} genes in {time.time() - t0:.1f} s", flush=True)
    cfrna = [sys.executable, "-m", "cfrna"]
    res, logs = p["res"], work / "logs"
    logs.mkdir()
    th = ["--threads", str(args.threads)]
    rows = [
        run_step("qc", [*cfrna, "qc", "--samplesheet", str(p["sheet"]), "--gtf", str(p["gtf"]),
                        "--counts-dir", str(res / "counts"), "--align-dir", str(res / "alignment"),
                        "--trim-dir", str(res / "trimmed"), "--outdir", str(res / "qc"), "--no-multiqc", *th], logs),
        run_step("matrix", [*cfrna, "matrix", "--samplesheet", str(p["sheet"]), "--gtf", str(p["gtf"]),
                            "--counts-dir", str(res / "counts"), "--qc-summary", str(res / "qc" / "qc_summary.tsv"),
                            "--outdir", str(res / "matrix")], logs),
        run_step("de (2 contrasts)", [*cfrna, "de", "--counts", str(res / "matrix" / "gene_counts.tsv"),
                                      "--samplesheet", str(p["sheet"]), "--contrasts", str(p["contrasts"]),
                                      "--samples", str(res / "matrix" / "samples.tsv"), "--gtf", str(p["gtf"]),
                                      "--outdir", str(res / "de"), *th], logs),
        run_step("pathways", [*cfrna, "pathways", "--de-dir", str(res / "de"), "--gtf", str(p["gtf"]),
                              "--samplesheet", str(p["sheet"]), "--samples", str(res / "matrix" / "samples.tsv"),
                              "--outdir", str(res / "pathways"), *th], logs),
        run_step("report (+ h5ad)", [*cfrna, "report", "--results", str(res)], logs),
    ]
    total = sum(r["wall_s"] for r in rows)
    peak = max(r["peak_rss_mb"] for r in rows)
    print(f"\n## Load: {args.samples} samples x {args.genes} genes, {args.threads} threads, "
          f"flare contrast blocked on {args.blocking or 'nothing'}\n")
    print("| step | wall s | CPU s | peak RSS MB |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['step']} | {r['wall_s']} | {r['cpu_s']} | {r['peak_rss_mb']:.0f} |")
    print(f"| **total** | **{total:.1f}** | | **{peak:.0f}** (max of steps; budget 24,576) |")
    html = res / "report" / "index.html"
    print(f"\nreport: {html.stat().st_size / 1e6:.1f} MB; h5ad: {(res / 'matrix' / 'cfrna.h5ad').stat().st_size / 1e6:.1f} MB")
    if not args.no_peer and shutil.which("Rscript"):
        # peer: the arm contrast (~ arm) on the same filtered matrix, R DESeq2 vs cfrna de
        peer = work / "peer"
        peer.mkdir()
        (peer / "de.R").write_text(R_SCRIPT)
        samples = pd.read_csv(res / "matrix" / "samples.tsv", sep="\t", index_col=0)
        keep = samples.index[~samples["excluded"].astype(str).str.lower().eq("true")]
        samples.loc[keep, ["arm"]].to_csv(peer / "coldata.tsv", sep="\t")
        counts = pd.read_csv(res / "matrix" / "gene_counts.tsv", sep="\t", index_col=0)[keep]
        counts = counts[counts.sum(axis=1) >= 10]
        counts.to_csv(peer / "counts.tsv", sep="\t")
        pd.DataFrame([{"id": "arm", "variable": "arm", "reference": "steroid_maintenance",
                       "target": "steroid_tapering", "blocking": "", "formula": ""}]).to_csv(peer / "c.csv", index=False)
        r = run_step("R DESeq2 (arm)", ["Rscript", str(peer / "de.R"), str(peer / "counts.tsv"),
                                          str(peer / "coldata.tsv"), str(peer / "r.tsv")], logs)
        c = run_step("cfrna de (arm)", [*cfrna, "de", "--counts", str(peer / "counts.tsv"), "--samplesheet",
                                        str(p["sheet"]), "--contrasts", str(peer / "c.csv"), "--samples",
                                        str(res / "matrix" / "samples.tsv"), "--outdir", str(peer / "cfrna"),
                                        "--threads", str(args.threads)], logs)
        print("\n| DE, arm contrast only | wall s | peak RSS MB |\n|---|---|---|")
        print(f"| R DESeq2 1 thread | {r['wall_s']} | {r['peak_rss_mb']:.0f} |")
        print(f"| cfrna de ({args.threads} threads) | {c['wall_s']} | {c['peak_rss_mb']:.0f} |")
        print(f"| ratio R / cfrna (time) | {r['wall_s'] / c['wall_s']:.2f}x | "
              f"{r['peak_rss_mb'] / c['peak_rss_mb']:.2f}x (memory) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
