"""Benchmark ``cfrna count`` against featureCounts (and htseq-count when installed).

Generates (or takes ``--bam``/``--gtf``) a coordinate-sorted BAM of at least 2 million reads,
then runs featureCounts -T1/-T2, htseq-count (if on PATH) and ``cfrna count`` at 1 and 2 threads,
checks that all per-gene counts are identical, and prints reads/s, peak RSS and the ratio to
featureCounts.

Two timings are given for cfrna: ``cli`` is the whole ``python -m cfrna count`` process (Python
start-up, imports and loading the cached numba kernels included); ``engine`` is ``count_reads`` in
a warm process (kernels already compiled and loaded), i.e. the counting itself as featureCounts
reports it. The numba compile time (cold cache) is measured once and reported separately.

Usage::

    python benchmarks/count.py --reads 2000000 --workdir /tmp/bench_count [--paired] [--repeats 3]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHROMS = [(f"chr{i}", 6_000_000) for i in range(1, 9)]


def make_data(workdir: Path, *, reads: int, paired: bool, seed: int = 42) -> tuple[Path, Path]:
    """A GTF of ~2,500 multi-exon genes and a sorted BAM of ``reads`` 100 bp reads (70% mRNA)."""
    rng = random.Random(seed)
    gtf = workdir / "genes.gtf"
    genes = []
    lines = []
    gi = 0
    for chrom, ln in CHROMS:
        pos = 5000
        while pos < ln - 60000:
            gi += 1
            strand = rng.choice("+-")
            exons = []
            s = pos
            for _ in range(rng.randint(3, 10)):
                el = rng.randint(100, 300)
                exons.append((s, s + el - 1))
                s += el + int(10 ** rng.uniform(2.7, 3.7))
            for k, (a, b) in enumerate(exons):
                lines.append(f'{chrom}\tbench\texon\t{a}\t{b}\t.\t{strand}\t.\tgene_id "G{gi:05d}"; '
                             f'transcript_id "T{gi:05d}"; exon_number "{k + 1}";')
            genes.append((chrom, strand, exons))
            pos = s + rng.randint(-2000, 8000)
    gtf.write_text("\n".join(lines) + "\n")
    n_frag = reads // 2 if paired else reads
    weights = [rng.lognormvariate(0, 1.8) for _ in genes]
    bam = workdir / f"bench_{'pe' if paired else 'se'}.bam"
    # records go to samtools sort as they are made (it sorts out of core): tens of millions of
    # reads need little memory here
    proc = subprocess.Popen(["samtools", "sort", "-@", "2", "-m", "1G", "-T", str(workdir / "sort"), "-o", str(bam),
                             "-"], stdin=subprocess.PIPE, text=True)
    proc.stdin.write("@HD\tVN:1.6\tSO:unsorted\n" + "".join(f"@SQ\tSN:{c}\tLN:{ln}\n" for c, ln in CHROMS))
    recs: list[str] = []
    cidx = {c: i for i, (c, _) in enumerate(CHROMS)}
    # realistic record content (random bases, Illumina-binned qualities, instrument-style names), so
    # that BGZF compresses like a real BAM (~40 bytes/record): decompression is part of the real cost
    nprng = np.random.default_rng(seed)
    pool_n = 1 << 16
    seqs = ["".join(x) for x in nprng.choice(list("ACGT"), size=(pool_n, 100)).tolist()]
    quals = ["".join(x) for x in nprng.choice(list("F:,#"), p=[0.86, 0.1, 0.03, 0.01], size=(pool_n, 100)).tolist()]

    def mrna_read(exons, t):
        """A 100 bp read starting at transcript offset t: (pos0, cigar)."""
        lens = [b - a + 1 for a, b in exons]
        k = 0
        while t >= lens[k]:
            t -= lens[k]
            k += 1
        pos = exons[k][0] + t
        left = 100
        cig = []
        cur = pos
        while left > 0:
            take = min(left, exons[k][1] - cur + 1)
            cig.append(f"{take}M")
            left -= take
            if left > 0:
                if k + 1 >= len(exons):
                    cig[-1] = f"{take + left}M"
                    break
                cig.append(f"{exons[k + 1][0] - exons[k][1] - 1}N")
                k += 1
                cur = exons[k][0]
        return pos - 1, "".join(cig)

    cum = list(itertools.accumulate(weights))
    for i in range(n_frag):
        if len(recs) >= 200_000:
            proc.stdin.write("\n".join(recs) + "\n")
            recs.clear()
        g = bisect.bisect_right(cum, rng.random() * cum[-1])
        chrom, strand, exons = genes[min(g, len(genes) - 1)]
        u = rng.random()
        tx_len = sum(b - a + 1 for a, b in exons)
        nh = 2 if rng.random() < 0.015 else 1
        if u < 0.70 and tx_len > 400:
            t = rng.randint(0, tx_len - 300)
            p1, c1 = mrna_read(exons, t)
            p2, c2 = mrna_read(exons, t + rng.randint(50, 190))
        else:
            if u < 0.85:
                lo, hi = exons[0][0], exons[-1][1]
            else:
                ln = CHROMS[cidx[chrom]][1]
                lo, hi = 1000, ln - 2000
            p1 = rng.randint(lo, max(lo, hi - 400))
            p2 = p1 + rng.randint(50, 250)
            c1 = c2 = "100M"
        rev = (strand == "+")  # reverse-stranded library: read 1 antisense
        name = f"A00917:208:HVKTJDSXY:{1 + i % 4}:{1101 + i % 78}:{1000 + i // 36000}:{i % 36000}"  # unique
        seq = seqs[rng.randrange(pool_n)]
        qual = quals[rng.randrange(pool_n)]
        if not paired:
            flag = 16 if rev else 0
            recs.append(f"{name}\t{flag}\t{chrom}\t{p1 + 1}\t60\t{c1}\t*\t0\t0\t{seq}\t{qual}\tNH:i:{nh}")
        else:
            f1 = 1 | 2 | 64 | (16 if rev else 32)
            f2 = 1 | 2 | 128 | (32 if rev else 16)
            a, b = (p2, p1) if rev else (p1, p2)
            ca, cb = (c2, c1) if rev else (c1, c2)
            recs.append(f"{name}\t{f1}\t{chrom}\t{a + 1}\t60\t{ca}\t=\t{b + 1}\t0\t{seq}\t{qual}\tNH:i:{nh}")
            recs.append(f"{name}\t{f2}\t{chrom}\t{b + 1}\t60\t{cb}\t=\t{a + 1}\t0\t{seq}\t{qual}\tNH:i:{nh}")
    proc.stdin.write("\n".join(recs) + ("\n" if recs else ""))
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("samtools sort failed")
    return bam, gtf


def timed(cmd: list[str], **kw) -> tuple[float, float]:
    """Run ``cmd`` under /usr/bin/time -v; return (wall seconds, peak RSS MB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-v", "-o", tf.name, *cmd], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, **kw)
        wall = time.perf_counter() - t0
        rss = 0.0
        with open(tf.name) as fh:
            for line in fh:
                if "Maximum resident set size" in line:
                    rss = int(line.split(":")[1]) / 1024
    return wall, rss


def fc_counts(path: Path) -> list[str]:
    return [f"{ln.split(chr(9))[0]}\t{ln.split(chr(9))[6]}" for ln in path.read_text().splitlines()[2:]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bam")
    ap.add_argument("--gtf")
    ap.add_argument("--reads", type=int, default=2_000_000)
    ap.add_argument("--paired", action="store_true")
    ap.add_argument("--strandedness", default="reverse", choices=["unstranded", "forward", "reverse"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/bench_count")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    wd = Path(args.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    if args.bam:
        bam, gtf = Path(args.bam), Path(args.gtf)
    else:
        t = time.perf_counter()
        bam, gtf = make_data(wd, reads=args.reads, paired=args.paired)
        print(f"generated {bam} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    n_records = int(subprocess.run(["samtools", "view", "-c", str(bam)], capture_output=True, text=True,
                                   check=True).stdout)
    s = {"unstranded": 0, "forward": 1, "reverse": 2}[args.strandedness]
    py = sys.executable
    results = {}
    ref = None

    # numba compile time (cold cache) measured once, in a fresh cache folder
    cold_cache = wd / "numba_cold"
    shutil.rmtree(cold_cache, ignore_errors=True)
    env_cold = dict(os.environ, NUMBA_CACHE_DIR=str(cold_cache))
    small = wd / "small.bam"
    subprocess.run(["samtools", "view", "-b", "-s", "0.001", "-o", str(small), str(bam)], check=True)
    cmd_small = [py, "-m", "cfrna", "-q", "count", "--bam", str(small), "--gtf", str(gtf), "--out",
                 str(wd / "small.tsv"), "--strandedness", args.strandedness] + (["--paired"] if args.paired else [])
    cold, _ = timed(cmd_small, env=env_cold)
    warm, _ = timed(cmd_small, env=env_cold)
    results["numba_compile_s"] = round(cold - warm, 2)
    results["cli_startup_s"] = round(warm, 2)

    def record(name, walls, rss, counts):
        nonlocal ref
        best = min(walls)
        results[name] = {"wall_s": round(best, 3), "reads_per_s": round(n_records / best), "peak_rss_mb": round(rss, 1)}
        if counts is not None:
            if ref is None:
                ref = counts
            results[name]["identical"] = counts == ref

    for threads in (1, 2):
        out = wd / "fc.txt"
        cmd = ["featureCounts", "-T", str(threads), "-s", str(s), "-a", str(gtf), "-o", str(out), str(bam)]
        if args.paired:
            cmd[1:1] = ["-p", "--countReadPairs"]
        runs = [timed(cmd) for _ in range(args.repeats)]
        record(f"featureCounts_T{threads}", [w for w, _ in runs], max(r for _, r in runs), fc_counts(out))
        out_c = wd / f"cfrna_T{threads}.tsv"
        cmd = [py, "-m", "cfrna", "-q", "count", "--bam", str(bam), "--gtf", str(gtf), "--out", str(out_c),
               "--strandedness", args.strandedness, "--threads", str(threads)] + (["--paired"] if args.paired else [])
        runs = [timed(cmd, env=env_cold) for _ in range(args.repeats)]
        record(f"cfrna_cli_T{threads}", [w for w, _ in runs], max(r for _, r in runs),
               out_c.read_text().splitlines()[1:])
    # engine time in this (warm) process
    os.environ["NUMBA_CACHE_DIR"] = str(cold_cache)
    from cfrna.count import count_reads

    count_reads(small, gtf, wd / "warm.tsv", strandedness=args.strandedness, paired=args.paired)
    for threads in (1, 2):
        walls = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            count_reads(bam, gtf, wd / "engine.tsv", strandedness=args.strandedness, paired=args.paired,
                      threads=threads)
            walls.append(time.perf_counter() - t)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        record(f"cfrna_engine_T{threads}", walls, rss, (wd / "engine.tsv").read_text().splitlines()[1:])
    if shutil.which("htseq-count") and not args.paired:
        strand = {"unstranded": "no", "forward": "yes", "reverse": "reverse"}[args.strandedness]
        w, r = timed(["htseq-count", "-f", "bam", "-r", "pos", "-s", strand, "-m", "union", str(bam), str(gtf)])
        record("htseq-count", [w], r, None)
    print(f"{bam.name}: {n_records:,} records ({'pairs' if args.paired else 'single-end'}), "
          f"numba compile {results['numba_compile_s']} s, CLI start-up {results['cli_startup_s']} s")
    print(f"{'tool':<22}{'wall s':>9}{'reads/s':>13}{'x fc same T':>13}{'RSS MB':>9}  identical")
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        t = "T2" if name.endswith("T2") else "T1"
        ratio = r["reads_per_s"] / results[f"featureCounts_{t}"]["reads_per_s"]
        print(f"{name:<22}{r['wall_s']:>9.3f}{r['reads_per_s']:>13,}{ratio:>13.2f}{r['peak_rss_mb']:>9.1f}  "
              f"{r.get('identical', '-')}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    ok = all(r.get("identical", True) for r in results.values() if isinstance(r, dict))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
