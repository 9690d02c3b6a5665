"""Benchmark: cfrna DE core (pydeseq2 via cfrna.de.deseq.deseq_fit) vs R DESeq2 on simulated NB counts.

Usage::

    .venv/bin/python benchmarks/de.py --sizes 24 200 [600] [--genes 20000] [--threads 1] [--workdir D]

For each size N: a 20,000-gene x N-sample negative-binomial matrix in two balanced groups (base mean
log-normal, median 60, sigma 1.8; dispersion 0.08 + 1/mu with log-normal scatter; size factors
log-normal sigma 0.25; 5% of genes DE with |log2FC| ~ U(0.5, 2); the model of
../shared/notes/peer-baselines.md section 6). Both tools run in their own process, one after the
other, on the same TSV: wall time (process start to exit, including reading the table), peak RSS
(``wait4`` rusage of that process), and agreement (Pearson of log2FC, Jaccard of padj < 0.05).
R: ``DESeq()`` + ``results(alpha=0.05)``; cfrna: ``deseq_fit(..., lfc_shrink=False)`` (same steps:
size factors, dispersions, Wald test, Cook's, independent filtering). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

R_SCRIPT = r"""
suppressPackageStartupMessages(library(DESeq2))
args <- commandArgs(trailingOnly = TRUE)
counts <- as.matrix(read.delim(args[1], row.names = 1, check.names = FALSE))
cd <- read.delim(args[2], row.names = 1)
cd$condition <- factor(cd$condition, levels = c("A", "B"))
dds <- DESeqDataSetFromMatrix(counts, cd, ~ condition)
dds <- DESeq(dds, quiet = TRUE)
res <- results(dds, contrast = c("condition", "B", "A"), alpha = 0.05)
out <- data.frame(gene_id = rownames(res), log2FoldChange = res$log2FoldChange, pvalue = res$pvalue, padj = res$padj)
write.table(out, args[3], sep = "\t", quote = FALSE, row.names = FALSE)
"""


def simulate(n_genes: int, n_samples: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NB counts (genes x samples) and coldata with ``condition`` A/B."""
    rng = np.random.default_rng(seed)
    base = np.exp(rng.normal(np.log(60), 1.8, n_genes))
    disp = (0.08 + 1 / base) * np.exp(rng.normal(0, 0.5, n_genes))
    sf = np.exp(rng.normal(0, 0.25, n_samples))
    cond = np.array(["A", "B"] * (n_samples // 2) + ["A"] * (n_samples % 2))
    lfc = np.zeros(n_genes)
    de = rng.choice(n_genes, n_genes // 20, replace=False)
    lfc[de] = rng.uniform(0.5, 2, len(de)) * rng.choice([-1, 1], len(de))
    mu = base[:, None] * sf[None, :] * 2.0 ** (lfc[:, None] * (cond == "B")[None, :])
    shape = 1 / disp[:, None]
    counts = rng.poisson(rng.gamma(shape, mu / shape))
    samples = [f"S{i:04d}" for i in range(n_samples)]
    genes = [f"G{i:05d}" for i in range(n_genes)]
    return (pd.DataFrame(counts, index=pd.Index(genes, name="gene_id"), columns=samples),
            pd.DataFrame({"condition": cond}, index=pd.Index(samples, name="sample")))


def worker_py(counts_path: str, coldata_path: str, out_path: str, threads: int) -> None:
    """The cfrna side, run in its own process: read, validate the contrast, fit, write."""
    from cfrna.de.contrasts import Contrast, check_contrast
    from cfrna.de.deseq import deseq_fit, filter_genes

    counts = pd.read_csv(counts_path, sep="\t", index_col=0)
    cd = pd.read_csv(coldata_path, sep="\t", index_col=0)
    summ = check_contrast(Contrast("bench", "condition", "A", "B"), cd)
    res, _ = deseq_fit(filter_genes(counts, method="none"), summ.metadata, summ.formula, summ.coefficient,
                       threads=threads, lfc_shrink=False)
    res.reset_index()[["gene_id", "log2FoldChange", "pvalue", "padj"]].to_csv(out_path, sep="\t", index=False)


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, rusage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[24, 200, 600])
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1, help="pydeseq2 n_cpus (R runs single-threaded)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workdir", help="keep inputs/outputs here (default: a temporary folder)")
    ap.add_argument("--json", help="also write the results as JSON")
    ap.add_argument("--worker", nargs=4, metavar=("COUNTS", "COLDATA", "OUT", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker_py(*args.worker[:3], int(args.worker[3]))
        return 0
    if shutil.which("Rscript") is None:
        print("Rscript not found (install r-bioc-deseq2)", file=sys.stderr)
        return 2
    work = Path(args.workdir or tempfile.mkdtemp(prefix="cfrna_bench_de_"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "deseq2.R").write_text(R_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rows = []
    for n in args.sizes:
        counts, cd = simulate(args.genes, n, args.seed + n)
        cpath, dpath = work / f"counts_{n}.tsv", work / f"coldata_{n}.tsv"
        counts.to_csv(cpath, sep="\t")
        cd.to_csv(dpath, sep="\t")
        r_out, py_out = work / f"r_{n}.tsv", work / f"py_{n}.tsv"
        r_wall, r_rss = _timed(["Rscript", str(work / "deseq2.R"), str(cpath), str(dpath), str(r_out)], env)
        py_wall, py_rss = _timed([sys.executable, __file__, "--worker", str(cpath), str(dpath), str(py_out),
                                  str(args.threads)], env)
        r = pd.read_csv(r_out, sep="\t", index_col=0)
        p = pd.read_csv(py_out, sep="\t", index_col=0)
        j = r.join(p, lsuffix="_R").dropna(subset=["log2FoldChange", "log2FoldChange_R"])
        a, b = set(r.index[r["padj"] < 0.05]), set(p.index[p["padj"] < 0.05])
        row = {"samples": n, "genes": args.genes, "threads": args.threads, "r_wall_s": round(r_wall, 1),
               "r_rss_mb": round(r_rss), "cfrna_wall_s": round(py_wall, 1), "cfrna_rss_mb": round(py_rss),
               "time_ratio_r_over_cfrna": round(r_wall / py_wall, 2), "rss_ratio_r_over_cfrna": round(r_rss / py_rss, 2),
               "pearson_lfc": round(float(np.corrcoef(j["log2FoldChange"], j["log2FoldChange_R"])[0, 1]), 6),
               "jaccard_padj05": round(len(a & b) / max(len(a | b), 1), 4)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print("| samples | R DESeq2 wall s (RSS MB) | cfrna/pydeseq2 wall s (RSS MB) | R/cfrna time | R/cfrna RSS "
          "| Pearson LFC | Jaccard padj<0.05 |")
    print("|---|---|---|---|---|---|---|")
    for r_ in rows:
        print(f"| {r_['samples']} | {r_['r_wall_s']} ({r_['r_rss_mb']}) | {r_['cfrna_wall_s']} ({r_['cfrna_rss_mb']}) | "
              f"{r_['time_ratio_r_over_cfrna']} | {r_['rss_ratio_r_over_cfrna']} | {r_['pearson_lfc']} | "
              f"{r_['jaccard_padj05']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
