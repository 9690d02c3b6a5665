"""Benchmark of the limma-style mixed-model path: voom + duplicateCorrelation (patient block).

Two measurements on simulated NB counts with a patient random intercept (3 or 4 visits per patient):

1. trial scale, cfrna only: 900 samples (300 patients x 3 visits) x 60,000 genes, voom +
   duplicate_correlation (goal <= 2 min), then the GLS fit + robust eBayes;
2. R limma side by side, same data and design in the same run: 200 samples (50 patients x 4 visits)
   x 60,000 genes, ``voom(counts, design)`` + ``duplicateCorrelation(v, design, block=patient)``
   in R 4.2 / limma 3.54 vs cfrna; ratio R / cfrna.

Times are for the computation only (data already in memory on both sides; R's own ``proc.time``),
wall and CPU seconds (CPU = user + system of all threads: the fair ratio on a shared machine).
Peak RSS: this process (``ru_maxrss``) and the R process (GNU ``time -f %M``).

Usage::

    nice -n 10 .venv/bin/python benchmarks/de_limma.py            # full
    nice -n 10 .venv/bin/python benchmarks/de_limma.py --r-genes 10000   # R part on fewer genes
    .venv/bin/python benchmarks/de_limma.py --genes 3000 --large-patients 30   # smoke test
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

R_CODE = r"""
suppressPackageStartupMessages({library(limma); library(statmod)})
d <- commandArgs(TRUE)[1]
counts <- as.matrix(read.delim(file.path(d, "counts.tsv"), row.names=1, check.names=FALSE))
design <- as.matrix(read.delim(file.path(d, "design.tsv"), row.names=1, check.names=FALSE))
block <- readLines(file.path(d, "block.txt"))
cpu <- function(p) p[["user.self"]] + p[["sys.self"]]
p0 <- proc.time()
v <- voom(counts, design)
p1 <- proc.time()
cf <- duplicateCorrelation(v, design, block=block)
p2 <- proc.time()
cat(sprintf("%.3f %.3f %.3f %.3f %.10f\n", p1[["elapsed"]] - p0[["elapsed"]], p2[["elapsed"]] - p1[["elapsed"]],
            cpu(p1) - cpu(p0), cpu(p2) - cpu(p1), cf$consensus.correlation))
"""


def simulate(n_patients: int, n_visits: int, n_genes: int, seed: int = 7):
    """Counts (genes x samples, int32), design (arm + flare) and patient labels."""
    rng = np.random.default_rng(seed)
    pat = np.repeat(np.arange(n_patients), n_visits)
    n = len(pat)
    arm = (pat % 2).astype(float)
    flare = np.zeros(n)
    for p in range(0, n_patients, 3):
        flare[p * n_visits + rng.integers(n_visits)] = 1.0
    base = rng.normal(np.log(30), 1.8, n_genes)
    counts = np.empty((n_genes, n), dtype=np.int32)
    sf = rng.uniform(0.6, 1.6, n)
    beta = np.zeros(n_genes)
    beta[: n_genes // 20] = rng.normal(0, 1, n_genes // 20)
    step = 5000
    for a in range(0, n_genes, step):  # chunks keep the float temporaries small
        b = min(a + step, n_genes)
        pe = rng.normal(0, 0.4, (b - a, n_patients))[:, pat]
        mu = np.exp(base[a:b, None] + pe + beta[a:b, None] * flare[None, :] + 0.3 * arm[None, :]) * sf
        disp = 0.05 + 1 / np.exp(base[a:b])[:, None]
        counts[a:b] = rng.negative_binomial(1 / disp, 1 / (1 + mu * disp))
    keep = counts.sum(axis=1) >= 10
    design = np.column_stack([np.ones(n), arm, flare])
    return counts[keep], design, np.array([f"p{p}" for p in pat])


def run_cfrna(counts, design, block, *, full: bool):
    from cfrna.de import limma as L

    t0, c0 = time.perf_counter(), time.process_time()
    v = L.voom(counts, design)
    t1, c1 = time.perf_counter(), time.process_time()
    cr = L.duplicate_correlation(v.E, design, block, weights=v.weights)
    t2, c2 = time.perf_counter(), time.process_time()
    out = {"voom_s": t1 - t0, "dupcor_s": t2 - t1, "voom_cpu": c1 - c0, "dupcor_cpu": c2 - c1,
           "correlation": cr.consensus}
    if full:
        fit = L.lm_fit(v.E, design, weights=v.weights, block=block, correlation=cr.consensus)
        L.ebayes(fit, robust=True)
        out["gls_ebayes_s"] = time.perf_counter() - t2
    return out


def run_r(counts, design, block):
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        genes = [f"g{i}" for i in range(counts.shape[0])]
        samples = [f"s{i}" for i in range(counts.shape[1])]
        pd.DataFrame(counts, index=genes, columns=samples).to_csv(d / "counts.tsv", sep="\t")
        pd.DataFrame(design, index=samples, columns=["Intercept", "arm", "flare"]).to_csv(d / "design.tsv", sep="\t")
        (d / "block.txt").write_text("\n".join(block) + "\n")
        (d / "ref.R").write_text(R_CODE)
        # GNU time reports R's own peak RSS (RUSAGE_CHILDREN would count this process's pages copied at fork)
        gnu_time = shutil.which("time") or "/usr/bin/time"
        cmd = [rscript, str(d / "ref.R"), str(d)]
        if Path(gnu_time).exists():
            cmd = [gnu_time, "-f", "MAXRSS_KB %M", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    voom_s, dupcor_s, voom_cpu, dupcor_cpu, corr = (float(x) for x in out.stdout.split())
    kb = [ln.split()[1] for ln in out.stderr.splitlines() if ln.startswith("MAXRSS_KB ")]
    rss_mb = float(kb[-1]) / 1024 if kb else float("nan")
    return {"voom_s": voom_s, "dupcor_s": dupcor_s, "voom_cpu": voom_cpu, "dupcor_cpu": dupcor_cpu,
            "correlation": corr, "peak_rss_mb": rss_mb}


def _line(who: str, r: dict) -> None:
    print(f"{who:6s} voom {r['voom_s']:8.2f} s ({r['voom_cpu']:.1f} CPU s)  duplicateCorrelation {r['dupcor_s']:8.2f} s "
          f"({r['dupcor_cpu']:.1f} CPU s)  total {r['voom_s'] + r['dupcor_s']:8.2f} s wall, "
          f"{r['voom_cpu'] + r['dupcor_cpu']:.1f} CPU s  correlation {r['correlation']:.6f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=60000)
    ap.add_argument("--r-genes", type=int, default=None, help="genes of the R comparison (default: --genes)")
    ap.add_argument("--large-patients", type=int, default=300, help="patients x 3 visits (default: 300 -> 900)")
    ap.add_argument("--r-patients", type=int, default=50, help="patients x 4 visits vs R (default: 50 -> 200)")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--skip-r", action="store_true")
    args = ap.parse_args(argv)

    import numba

    print(f"threads: numba {numba.get_num_threads()}; R single-threaded", flush=True)
    # compile (or load cached) kernels on a tiny problem so that timings exclude JIT
    c, x, b = simulate(10, 3, 300, seed=1)
    run_cfrna(c, x, b, full=True)

    if not args.skip_large:
        counts, design, block = simulate(args.large_patients, 3, args.genes)
        print(f"\n== trial scale: {counts.shape[1]} samples x {counts.shape[0]} genes (after total >= 10)", flush=True)
        ours = run_cfrna(counts, design, block, full=True)
        _line("cfrna", ours)
        print(f"goal: voom + duplicateCorrelation <= 120 s wall; GLS + robust eBayes {ours['gls_ebayes_s']:.2f} s; "
              f"correlation {ours['correlation']:.4f}")
        print(f"peak RSS so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB", flush=True)
        del counts
    if not args.skip_r:
        counts, design, block = simulate(args.r_patients, 4, args.r_genes or args.genes)
        print(f"\n== vs R: {counts.shape[1]} samples x {counts.shape[0]} genes (after total >= 10)", flush=True)
        ours = run_cfrna(counts, design, block, full=False)
        ref = run_r(counts, design, block)
        _line("cfrna", ours)
        if ref is None:
            print("R      not installed (Rscript missing)")
        else:
            _line("R", ref)
            print(f"R peak RSS {ref['peak_rss_mb']:.0f} MB; |d correlation| {abs(ref['correlation'] - ours['correlation']):.2e}")
            for k in ("s", "cpu"):
                rt, ot = ref[f"voom_{k}"] + ref[f"dupcor_{k}"], ours[f"voom_{k}"] + ours[f"dupcor_{k}"]
                print(f"ratio R / cfrna ({'wall' if k == 's' else 'CPU'}): voom {ref[f'voom_{k}'] / ours[f'voom_{k}']:.1f}x"
                      f"  duplicateCorrelation {ref[f'dupcor_{k}'] / ours[f'dupcor_{k}']:.1f}x  total {rt / ot:.1f}x")
        del counts
    print(f"\npeak RSS (this process): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
