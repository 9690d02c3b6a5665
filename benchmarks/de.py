"""Benchmark: cfrna DE core (cfrna.de.deseq.deseq_fit, the cfrna.de.nbglm engine) vs R DESeq2 on simulated NB counts.

Usage::

    .venv/bin/python benchmarks/de.py --sizes 24 200 [600] [--genes 20000] [--threads 1] [--workdir D]
    .venv/bin/python benchmarks/de.py --design blocked --sizes 200 --genes 60000 --threads 2
    .venv/bin/python benchmarks/de.py --design blocked --sizes 900 --genes 60000 --threads 2 --no-r
    .venv/bin/python benchmarks/de.py --design arm --sizes 899 --genes 60000 --threads 2

Designs (``--design``): ``two_group`` (``~ condition``, two balanced groups; the default),
``blocked`` (``~ patient_id + flare``: N/3 patients x 3 visits, a patient random intercept with
SD 0.5 on the log scale, flare at 1-2 visits of about half the patients, the DE genes changing
within patient at flare) and ``arm`` (``~ arm`` on the same cohort; arm is a patient attribute).

For each size N: a 20,000-gene x N-sample negative-binomial matrix in two balanced groups (base mean
log-normal, median 60, sigma 1.8; dispersion 0.08 + 1/mu with log-normal scatter; size factors
log-normal sigma 0.25; 5% of genes DE with |log2FC| ~ U(0.5, 2); the model of
../shared/notes/peer-baselines.md section 6). Both tools run in their own process, one after the
other, on the same TSV: wall time (process start to exit, including reading the table), CPU time (user + system
over all threads) and peak RSS (``wait4`` rusage of that process), and agreement (Pearson of log2FC, Jaccard of padj < 0.05).
R: ``DESeq()`` + ``results(alpha=0.05)``; cfrna: ``deseq_fit(..., lfc_shrink=False)`` (same steps:
size factors, dispersions, Wald test, Cook's, independent filtering). Prints a Markdown table.
``--no-r`` times cfrna alone (the blocked design at 900 samples is beyond R's reach on 2 cores).
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
design <- args[4]
if (design == "two_group") {
  cd$condition <- factor(cd$condition, levels = c("A", "B"))
  dds <- DESeqDataSetFromMatrix(counts, cd, ~ condition)
  ctr <- c("condition", "B", "A")
} else if (design == "blocked") {
  cd$patient_id <- factor(cd$patient_id)
  cd$flare <- factor(cd$flare, levels = c("no_flare", "flare"))
  dds <- DESeqDataSetFromMatrix(counts, cd, ~ patient_id + flare)
  ctr <- c("flare", "flare", "no_flare")
} else {
  cd$arm <- factor(cd$arm, levels = c("standard", "steroid_tapering"))
  dds <- DESeqDataSetFromMatrix(counts, cd, ~ arm)
  ctr <- c("arm", "steroid_tapering", "standard")
}
dds <- DESeq(dds, quiet = TRUE)
res <- results(dds, contrast = ctr, alpha = 0.05)
out <- data.frame(gene_id = rownames(res), log2FoldChange = res$log2FoldChange, pvalue = res$pvalue, padj = res$padj)
write.table(out, args[3], sep = "\t", quote = FALSE, row.names = FALSE)
"""


CONTRASTS = {"two_group": ("condition", "A", "B", ()),
             "blocked": ("flare", "no_flare", "flare", ("patient_id",)),
             "arm": ("arm", "standard", "steroid_tapering", ())}


def simulate(n_genes: int, n_samples: int, seed: int, design: str = "two_group") -> tuple[pd.DataFrame, pd.DataFrame]:
    """NB counts (genes x samples) and coldata (``condition``; ``patient_id``, ``flare``, ``arm``)."""
    rng = np.random.default_rng(seed)
    base = np.exp(rng.normal(np.log(60), 1.8, n_genes))
    disp = (0.08 + 1 / base) * np.exp(rng.normal(0, 0.5, n_genes))
    sf = np.exp(rng.normal(0, 0.25, n_samples))
    cond = np.array(["A", "B"] * (n_samples // 2) + ["A"] * (n_samples % 2))
    lfc = np.zeros(n_genes)
    de = rng.choice(n_genes, n_genes // 20, replace=False)
    lfc[de] = rng.uniform(0.5, 2, len(de)) * rng.choice([-1, 1], len(de))
    n_pat = -(-n_samples // 3)
    pidx = np.repeat(np.arange(n_pat), 3)[:n_samples]
    flare = np.zeros(n_samples, dtype=bool)
    for p in range(n_pat):
        idx = np.flatnonzero(pidx == p)
        if len(idx) > 1 and rng.random() < 0.5:
            flare[rng.choice(idx, rng.integers(1, len(idx)), replace=False)] = True
    arm_p = rng.random(n_pat) < 0.5
    if design == "two_group":
        effect = (cond == "B")[None, :]
        log_mu = np.zeros((1, n_samples))
    else:
        effect = (flare if design == "blocked" else arm_p[pidx])[None, :]
        log_mu = rng.normal(0, 0.5, (n_genes, n_pat)).astype(np.float32)[:, pidx]  # patient random intercept
    mu = base[:, None] * sf[None, :] * np.exp(log_mu) * 2.0 ** (lfc[:, None] * effect)
    del log_mu
    shape = 1 / disp[:, None]
    counts = rng.poisson(rng.gamma(shape, mu / shape)).astype(np.int32)
    del mu
    samples = [f"S{i:04d}" for i in range(n_samples)]
    genes = [f"G{i:05d}" for i in range(n_genes)]
    cd = pd.DataFrame({"condition": cond, "patient_id": [f"P{p:04d}" for p in pidx],
                       "flare": np.where(flare, "flare", "no_flare"),
                       "arm": np.where(arm_p[pidx], "steroid_tapering", "standard")},
                      index=pd.Index(samples, name="sample"))
    return pd.DataFrame(counts, index=pd.Index(genes, name="gene_id"), columns=samples), cd


def worker_py(counts_path: str, coldata_path: str, out_path: str, threads: int, design: str = "two_group") -> None:
    """The cfrna side, run in its own process: read, validate the contrast, fit, write."""
    from cfrna.de.contrasts import Contrast, check_contrast
    from cfrna.de.deseq import deseq_fit, filter_genes

    counts = pd.read_csv(counts_path, sep="\t", index_col=0)
    cd = pd.read_csv(coldata_path, sep="\t", index_col=0)
    var, ref, tgt, blocking = CONTRASTS[design]
    summ = check_contrast(Contrast("bench", var, ref, tgt, blocking=blocking), cd)
    res, _ = deseq_fit(filter_genes(counts, method="none"), summ.metadata, summ.formula, summ.coefficient,
                       threads=threads, lfc_shrink=False)
    res.reset_index()[["gene_id", "log2FoldChange", "pvalue", "padj"]].to_csv(out_path, sep="\t", index=False)


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system, all threads) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, rusage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err[-2000:]}")
    return wall, rusage.ru_maxrss / 1024, rusage.ru_utime + rusage.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[24, 200, 600])
    ap.add_argument("--genes", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1, help="cfrna threads (R runs single-threaded)")
    ap.add_argument("--design", choices=sorted(CONTRASTS), default="two_group")
    ap.add_argument("--no-r", action="store_true", help="time cfrna only")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workdir", help="keep inputs/outputs here (default: a temporary folder)")
    ap.add_argument("--json", help="also write the results as JSON")
    ap.add_argument("--worker", nargs=5, metavar=("COUNTS", "COLDATA", "OUT", "THREADS", "DESIGN"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker_py(*args.worker[:3], int(args.worker[3]), args.worker[4])
        return 0
    if not args.no_r and shutil.which("Rscript") is None:
        print("Rscript not found (install r-bioc-deseq2)", file=sys.stderr)
        return 2
    work = Path(args.workdir or tempfile.mkdtemp(prefix="cfrna_bench_de_"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "deseq2.R").write_text(R_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    rows = []
    for n in args.sizes:
        tag = f"{args.design}_{n}_{args.genes}"
        cpath, dpath = work / f"counts_{tag}.tsv", work / f"coldata_{tag}.tsv"
        if not cpath.exists():
            counts, cd = simulate(args.genes, n, args.seed + n, args.design)
            counts.to_csv(cpath, sep="\t")
            cd.to_csv(dpath, sep="\t")
            del counts
        r_out, py_out = work / f"r_{tag}.tsv", work / f"py_{tag}.tsv"
        py_wall, py_rss, py_cpu = _timed([sys.executable, __file__, "--worker", str(cpath), str(dpath), str(py_out),
                                  str(args.threads), args.design], env)
        row = {"design": args.design, "samples": n, "genes": args.genes, "threads": args.threads,
               "cfrna_wall_s": round(py_wall, 1), "cfrna_cpu_s": round(py_cpu, 1), "cfrna_rss_mb": round(py_rss)}
        if not args.no_r:
            r_wall, r_rss, r_cpu = _timed(["Rscript", str(work / "deseq2.R"), str(cpath), str(dpath), str(r_out),
                                    args.design], env)
            r = pd.read_csv(r_out, sep="\t", index_col=0)
            p = pd.read_csv(py_out, sep="\t", index_col=0)
            j = r.join(p, lsuffix="_R").dropna(subset=["log2FoldChange", "log2FoldChange_R"])
            a, b = set(r.index[r["padj"] < 0.05]), set(p.index[p["padj"] < 0.05])
            row.update({"r_wall_s": round(r_wall, 1), "r_cpu_s": round(r_cpu, 1), "r_rss_mb": round(r_rss),
                        "cpu_ratio_r_over_cfrna": round(r_cpu / py_cpu, 2),
                        "time_ratio_r_over_cfrna": round(r_wall / py_wall, 2),
                        "rss_ratio_r_over_cfrna": round(r_rss / py_rss, 2),
                        "pearson_lfc": round(float(np.corrcoef(j["log2FoldChange"], j["log2FoldChange_R"])[0, 1]), 6),
                        "jaccard_padj05": round(len(a & b) / max(len(a | b), 1), 4)})
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print("| design | samples x genes | R DESeq2 wall s (RSS MB) | cfrna wall s (RSS MB) | R/cfrna time | R/cfrna RSS "
          "| Pearson LFC | Jaccard padj<0.05 |")
    print("|---|---|---|---|---|---|---|---|")
    for r_ in rows:
        g = r_.get
        print(f"| {r_['design']} | {r_['samples']} x {r_['genes']} | {g('r_wall_s', '-')} ({g('r_rss_mb', '-')}) | "
              f"{r_['cfrna_wall_s']} ({r_['cfrna_rss_mb']}) | {g('time_ratio_r_over_cfrna', '-')} | "
              f"{g('rss_ratio_r_over_cfrna', '-')} | {g('pearson_lfc', '-')} | {g('jaccard_padj05', '-')} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
