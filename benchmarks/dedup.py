"""Benchmark ``cfrna count --dedup`` against Picard MarkDuplicates and umi_tools dedup, each + featureCounts.

Data: alignments laid directly from the simulator's transcript model (``cfrna.simulate``: gene
catalogue, genome layout, transcripts and exons; no aligner), written as a coordinate-sorted BAM:
fragments of 75-300 nt on spliced transcripts (CIGARs with ``N`` where a read crosses an exon
junction), ~8% intronic/intergenic fragments, a reverse-stranded library (read 1 antisense),
single-end or paired-end (``--paired``, with ``MC`` tags as after ``samtools fixmate``). PCR
duplicates come from :mod:`cfrna.simulate.duplicates`: a finite molecule pool whose expected
duplicate fraction at this depth is ``--dup-fraction`` (default 0.5), gamma amplification (cv 0.5),
reads drawn with replacement. Every molecule has an 8-nt UMI; every read shows it with substitutions
at 0.2% per base, and carries it at the end of its name (``<name>_<UMI>``, umi_tools' convention).
The data are seeded and cached outside the repository (``--workdir``, default /tmp/cfrna_bench_dedup).

Measured, each as one fresh process (pipelines: the sum of their steps; peak RSS: the largest step):

``cfrna count --dedup MODE --dedup-out D`` writes the deduplicated counts to ``D`` and all reads'
counts to ``--out`` from one pass over the BAM; both are timed together.

- ``cfrna count --dedup position``  vs ``PicardCommandLine MarkDuplicates`` + ``featureCounts --ignoreDup``
- ``cfrna count --dedup directional`` vs ``umi_tools dedup --method directional`` + ``featureCounts``
- ``featureCounts`` alone (no deduplication) as the floor.

Wall and CPU (user + sys, children included) and peak RSS come from ``/usr/bin/time``; per-gene
counts of each cfrna mode are compared with its peer's. ``cfrna count --dedup`` is skipped (and
said so) while the count CLI has no ``--dedup``.

Usage::

    python benchmarks/dedup.py --reads 2000000 [--paired] [--repeats 1] [--workdir /tmp/cfrna_bench_dedup]
    python benchmarks/dedup.py --quick        # tiny, for CI: everything runs, counts compared
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

ROOT = Path(__file__).resolve().parents[1]
DATA_VERSION = 1
READ_LEN = 75
UMI_LEN = 8
UMI_ERROR = 0.002
AMP_CV = 0.5
FRAG_MIN, FRAG_MAX = 75, 300
OFF_TARGET = 0.08  # intronic/intergenic fragments


def _blocks(starts: np.ndarray, ends: np.ndarray, cum: np.ndarray, a: int, n: int) -> tuple[int, str]:
    """Genomic start (0-based) and CIGAR of transcript interval ``[a, a+n)`` (exons in genomic order,
    ``cum`` their cumulative lengths starting at 0)."""
    k = int(np.searchsorted(cum, a, side="right")) - 1
    pos = int(starts[k] + (a - cum[k]))
    cig = []
    left = n
    cur = pos
    while left > 0:
        take = min(left, int(ends[k]) - cur)
        cig.append(f"{take}M")
        left -= take
        if left > 0:
            cig.append(f"{int(starts[k + 1] - ends[k])}N")
            k += 1
            cur = int(starts[k])
    return pos, "".join(cig)


def _ref_len(cigar: str) -> int:
    n, num = 0, ""
    for ch in cigar:
        if ch.isdigit():
            num += ch
        else:
            if ch in "MDN=X":
                n += int(num)
            num = ""
    return n


def make_data(workdir: Path, *, reads: int, paired: bool, n_genes: int = 3000, dup_fraction: float = 0.5,
              seed: int = 7) -> tuple[Path, Path, dict]:
    """The GTF and sorted, indexed BAM (cached in ``workdir`` by their parameters); returns (bam, gtf, info)."""
    from cfrna.simulate import duplicates as dup
    from cfrna.simulate.genome import build_genome, write_gtf
    from cfrna.simulate.model import gene_catalog

    tag = f"v{DATA_VERSION}_{'pe' if paired else 'se'}_{reads}_{n_genes}_{dup_fraction}_{seed}"
    bam, gtf, info_path = workdir / f"dedup_{tag}.bam", workdir / f"genes_{n_genes}_{seed}.gtf", \
        workdir / f"dedup_{tag}.json"
    if bam.exists() and gtf.exists() and info_path.exists() and Path(f"{bam}.bai").exists():
        return bam, gtf, json.loads(info_path.read_text())
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    model = build_genome(gene_catalog(n_genes, rng), rng)
    if not gtf.exists():
        tmp = gtf.with_suffix(".tmp")
        write_gtf(model, tmp)
        tmp.replace(gtf)
    # transcripts long enough for the shortest fragment, weighted by a log-normal gene expression
    ex = model.exons
    tx_exons: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for ti, grp in ex.groupby("tx_idx", sort=True):
        order = np.argsort(grp["start"].to_numpy())
        tx_exons[int(ti)] = (grp["start"].to_numpy()[order].astype(np.int64), grp["end"].to_numpy()[order]
                             .astype(np.int64))
    tx = model.transcripts
    genes = model.genes
    g_expr = rng.lognormal(0.0, 1.5, size=len(genes))
    tids, tw = [], []
    for ti, (gi, w) in enumerate(zip(tx["gene_idx"].tolist(), tx["weight"].tolist(), strict=True)):
        s, e = tx_exons[ti]
        ln = int((e - s).sum())
        if ln >= FRAG_MIN + 10:
            tids.append(ti)
            tw.append(g_expr[gi] * w)
    tids_a = np.array(tids)
    tp = np.array(tw) / np.sum(tw)
    n_frag = reads // 2 if paired else reads
    pool = dup.pool_for_fraction(dup_fraction, n_frag, AMP_CV)
    mol, _p = dup.amplify(pool, n_frag, AMP_CV, rng)
    used, mol_local = np.unique(mol, return_inverse=True)
    m = len(used)
    true_umi = dup.umis(m, UMI_LEN, rng)
    obs, _nerr = dup.observed_umis(true_umi, mol_local, UMI_ERROR, rng)
    umi_str = np.frombuffer(np.frombuffer(b"ACGT", dtype=np.uint8)[obs].tobytes(), dtype=f"S{UMI_LEN}")
    # molecules: a transcript fragment (or an off-target genomic one) and its alignment(s)
    off = rng.random(m) < OFF_TARGET
    pick = rng.choice(len(tids_a), size=m, p=tp)
    flen = np.clip(rng.lognormal(np.log(150), 0.35, size=m).astype(np.int64), FRAG_MIN, FRAG_MAX)
    chrom_names = list(model.chroms)
    g_chrom = genes["chrom"].tolist()
    g_strand = genes["strand"].tolist()
    g_start, g_end = genes["start"].to_numpy(), genes["end"].to_numpy()
    tx_gene = tx["gene_idx"].to_numpy()
    lengths = dict(zip(chrom_names, model.lengths.tolist(), strict=True))
    aln: list[tuple] = []  # per molecule: chrom, strand, (pos_left, cig_left), (pos_right, cig_right)
    u = rng.random((m, 2))
    for j in range(m):
        ti = int(tids_a[pick[j]])
        gi = int(tx_gene[ti])
        chrom, strand = g_chrom[gi], g_strand[gi]
        if off[j]:  # intronic or intergenic: an unspliced fragment near the gene
            lo = max(0, int(g_start[gi]) - 20_000)
            hi = min(lengths[chrom] - FRAG_MAX - 1, int(g_end[gi]) + 20_000)
            fl = int(flen[j])
            a = lo + int(u[j, 0] * max(1, hi - lo))
            aln.append((chrom, strand, (a, f"{READ_LEN}M"), (a + fl - READ_LEN, f"{READ_LEN}M")))
            continue
        s, e = tx_exons[ti]
        cum = np.concatenate([[0], np.cumsum(e - s)])
        fl = min(int(flen[j]), int(cum[-1]))
        a = int(u[j, 0] * (int(cum[-1]) - fl + 1))
        left = _blocks(s, e, cum, a, READ_LEN)
        right = _blocks(s, e, cum, a + fl - READ_LEN, READ_LEN)
        aln.append((chrom, strand, left, right))
    # reads in the order drawn; names carry the UMI; bases and qualities from a seeded pool
    pool_n = 1 << 14
    seqs = [bytes(x).decode() for x in np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, (pool_n, READ_LEN))]]
    qual_codes = np.frombuffer(b"F:,#", dtype=np.uint8)[rng.choice(4, p=[0.86, 0.1, 0.03, 0.01],
                                                                    size=(pool_n, READ_LEN))]
    quals = [bytes(x).decode() for x in qual_codes]
    seq_pick = rng.integers(0, pool_n, size=n_frag)
    workdir.mkdir(parents=True, exist_ok=True)
    tmp_bam = bam.with_suffix(".tmp.bam")
    proc = subprocess.Popen(["samtools", "sort", "-@", "2", "-m", "768M", "-T", str(workdir / f"sort_{tag}"),
                             "-o", str(tmp_bam), "-"], stdin=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write("@HD\tVN:1.6\tSO:unsorted\n" + "".join(f"@SQ\tSN:{c}\tLN:{lengths[c]}\n" for c in chrom_names)
                     + "@PG\tID:bench\tPN:benchmarks/dedup.py\n")
    recs: list[str] = []
    for i in range(n_frag):
        if len(recs) >= 200_000:
            proc.stdin.write("\n".join(recs) + "\n")
            recs.clear()
        j = int(mol_local[i])
        chrom, strand, (pl, cl), (pr, cr) = aln[j]
        name = f"A00917:208:HVKTJDSXY:{1 + i % 4}:{1101 + i % 78}:{1000 + i // 36000}:{i % 36000}_" \
               f"{umi_str[i].decode()}"
        k = int(seq_pick[i])
        sq, ql = seqs[k], quals[k]
        r1_rev = strand == "+"  # reverse-stranded: read 1 antisense to the gene
        if not paired:
            p, c = (pr, cr) if r1_rev else (pl, cl)
            recs.append(f"{name}\t{16 if r1_rev else 0}\t{chrom}\t{p + 1}\t60\t{c}\t*\t0\t0\t{sq}\t{ql}\tNH:i:1")
            continue
        # read 1 at the right end (reverse) for + genes, at the left end (forward) for - genes
        (p1, c1), (p2, c2) = ((pr, cr), (pl, cl)) if r1_rev else ((pl, cl), (pr, cr))
        f1 = 1 | 2 | 64 | (16 if r1_rev else 32)
        f2 = 1 | 2 | 128 | (32 if r1_rev else 16)
        tl = pr + _ref_len(cr) - pl
        t1, t2 = (-tl, tl) if r1_rev else (tl, -tl)
        recs.append(f"{name}\t{f1}\t{chrom}\t{p1 + 1}\t60\t{c1}\t=\t{p2 + 1}\t{t1}\t{sq}\t{ql}\tNH:i:1\tMC:Z:{c2}")
        recs.append(f"{name}\t{f2}\t{chrom}\t{p2 + 1}\t60\t{c2}\t=\t{p1 + 1}\t{t2}\t{sq}\t{ql}\tNH:i:1\tMC:Z:{c1}")
    proc.stdin.write("\n".join(recs) + ("\n" if recs else ""))
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("samtools sort failed")
    import pysam

    pysam.index(str(tmp_bam))
    Path(f"{tmp_bam}.bai").replace(f"{bam}.bai")
    tmp_bam.replace(bam)
    info = {"fragments": int(n_frag), "records": int(n_frag * (2 if paired else 1)), "molecules_seen": int(m),
            "duplicate_fraction": round(1 - m / n_frag, 4), "pool": int(pool), "umi_length": UMI_LEN,
            "umi_error_rate": UMI_ERROR, "paired": paired, "seed": seed, "n_genes": n_genes,
            "generate_s": round(time.perf_counter() - t0, 1)}
    info_path.write_text(json.dumps(info, indent=1))
    return bam, gtf, info


def tool(name: str) -> str | None:
    """``name`` on PATH or beside this Python (a venv's console scripts, e.g. umi_tools)."""
    here = Path(sys.executable).parent / name
    return shutil.which(name) or (str(here) if here.exists() else None)


def timed(cmd: list[str], *, env: dict | None = None, log: Path | None = None) -> dict:
    """Run ``cmd`` under /usr/bin/time; wall, CPU (user+sys) seconds and peak RSS MB."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        t0 = time.perf_counter()
        with open(log or os.devnull, "w") as lf:
            r = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", "-o", tf.name, *cmd], stdout=lf, stderr=lf,
                               env=env)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"failed (exit {r.returncode}): {' '.join(cmd)}" + (f"; see {log}" if log else ""))
        usr, sys_, rss = Path(tf.name).read_text().split()[-3:]
    return {"wall_s": wall, "cpu_s": float(usr) + float(sys_), "peak_rss_mb": int(rss) / 1024}


def _chain(steps: list[dict]) -> dict:
    return {"wall_s": sum(s["wall_s"] for s in steps), "cpu_s": sum(s["cpu_s"] for s in steps),
            "peak_rss_mb": max(s["peak_rss_mb"] for s in steps)}


def fc_counts(path: Path) -> dict[str, int]:
    out = {}
    for ln in path.read_text().splitlines()[2:]:
        f = ln.split("\t")
        out[f[0]] = int(float(f[6]))
    return out


def cfrna_counts(path: Path) -> dict[str, int]:
    out = {}
    for ln in path.read_text().splitlines()[1:]:
        f = ln.split("\t")
        out[f[0]] = int(float(f[1]))
    return out


def cfrna_has_dedup() -> bool:
    r = subprocess.run([sys.executable, "-m", "cfrna", "count", "--help"], capture_output=True, text=True)
    return "--dedup " in r.stdout or "--dedup {" in r.stdout or "--dedup MODE" in r.stdout


def _best(runs: list[dict]) -> dict:
    b = min(runs, key=lambda r: r["wall_s"])
    return dict(b, peak_rss_mb=max(r["peak_rss_mb"] for r in runs))


def run_bench(bam: Path, gtf: Path, wd: Path, *, paired: bool, repeats: int = 1, threads: int = 1,
              skip_umi_tools: bool = False) -> dict:
    """Time every tool on ``bam``; returns {name: {wall_s, cpu_s, peak_rss_mb, counts}}."""
    fc = ["featureCounts", "-T", str(threads), "-s", "2", "-a", str(gtf)] + (["-p", "--countReadPairs"]
                                                                             if paired else [])
    env = dict(os.environ, NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba")))
    res: dict[str, dict] = {}

    def rep(fn):
        return _best([fn() for _ in range(repeats)])

    out = wd / "fc_plain.txt"
    res["featureCounts (no dedup)"] = rep(lambda: timed(fc + ["-o", str(out), str(bam)]))
    res["featureCounts (no dedup)"]["counts"] = fc_counts(out)

    md_bam, out = wd / "picard_md.bam", wd / "fc_picard.txt"

    def picard():
        s1 = timed(["PicardCommandLine", "MarkDuplicates", f"I={bam}", f"O={md_bam}", f"M={wd / 'picard.metrics'}",
                    "VALIDATION_STRINGENCY=SILENT", "QUIET=true"], log=wd / "picard.log")
        s2 = timed(fc + ["--ignoreDup", "-o", str(out), str(md_bam)])
        return dict(_chain([s1, s2]), steps={"MarkDuplicates": s1, "featureCounts --ignoreDup": s2})
    res["Picard MarkDuplicates + fC --ignoreDup"] = rep(picard)
    res["Picard MarkDuplicates + fC --ignoreDup"]["counts"] = fc_counts(out)

    if not skip_umi_tools:
        ut_bam, out = wd / "umi_tools.bam", wd / "fc_umi_tools.txt"

        def umi_tools():
            s1 = timed([tool("umi_tools") or "umi_tools", "dedup", "-I", str(bam), "-S", str(ut_bam), "--method", "directional",
                        "--log", str(wd / "umi_tools.log")] + (["--paired"] if paired else []))
            s2 = timed(fc + ["-o", str(out), str(ut_bam)])
            return dict(_chain([s1, s2]), steps={"umi_tools dedup": s1, "featureCounts": s2})
        res["umi_tools dedup directional + fC"] = rep(umi_tools)
        res["umi_tools dedup directional + fC"]["counts"] = fc_counts(out)

    if cfrna_has_dedup():
        for mode in ("position", "directional"):
            out = wd / f"cfrna_{mode}.dedup.tsv"  # all reads go to --out in the same pass
            cmd = [sys.executable, "-m", "cfrna", "-q", "count", "--bam", str(bam), "--gtf", str(gtf), "--out",
                   str(wd / f"cfrna_{mode}.tsv"), "--strandedness", "reverse", "--threads", str(threads),
                   "--dedup", mode, "--dedup-out", str(out)] + (["--paired"] if paired else [])
            timed(cmd, env=env, log=wd / f"cfrna_{mode}.log")  # numba cache warm-up (not timed)
            name = f"cfrna count --dedup {mode}"
            res[name] = rep(lambda cmd=cmd, mode=mode: timed(cmd, env=env, log=wd / f"cfrna_{mode}.log"))
            res[name]["counts"] = cfrna_counts(out)
    else:
        print("cfrna count has no --dedup yet: only the peers were measured", file=sys.stderr)
    return res


PEERS = {"cfrna count --dedup position": "Picard MarkDuplicates + fC --ignoreDup",
         "cfrna count --dedup directional": "umi_tools dedup directional + fC"}


def compare(res: dict) -> dict[str, dict]:
    """Per cfrna mode: its peer, speed-up (wall, CPU), RSS ratio and how many genes differ."""
    out = {}
    for mine, peer in PEERS.items():
        if mine not in res or peer not in res:
            continue
        a, b = res[mine], res[peer]
        genes = set(a["counts"]) | set(b["counts"])
        diff = sorted(g for g in genes if a["counts"].get(g, 0) != b["counts"].get(g, 0))
        out[mine] = {"peer": peer, "wall_x": b["wall_s"] / a["wall_s"], "cpu_x": b["cpu_s"] / a["cpu_s"],
                     "rss_ratio": a["peak_rss_mb"] / b["peak_rss_mb"], "genes_differing": len(diff),
                     "total": sum(a["counts"].values()), "peer_total": sum(b["counts"].values()),
                     "example_diff": diff[:5]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=20_000_000, help="reads (records; pairs: 2 per fragment)")
    ap.add_argument("--paired", action="store_true")
    ap.add_argument("--dup-fraction", type=float, default=0.5)
    ap.add_argument("--genes", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="tiny data (20,000 reads, 400 genes) for CI")
    ap.add_argument("--skip-umi-tools", action="store_true")
    ap.add_argument("--data-only", action="store_true", help="make (or find) the cached data and stop")
    ap.add_argument("--workdir", default=os.environ.get("CFRNA_BENCH_DEDUP", "/tmp/cfrna_bench_dedup"))
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if args.quick:
        args.reads, args.genes = 20_000, 400
    for t in ("samtools", "featureCounts", "PicardCommandLine") + (() if args.skip_umi_tools else ("umi_tools",)):
        if tool(t) is None:
            raise SystemExit(f"{t} not found (PATH or beside {sys.executable})")
    wd = Path(args.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    bam, gtf, info = make_data(wd, reads=args.reads, paired=args.paired, n_genes=args.genes,
                               dup_fraction=args.dup_fraction, seed=args.seed)
    print(f"{bam.name}: {info['records']:,} records ({'pairs' if args.paired else 'single-end'}), "
          f"{info['molecules_seen']:,} molecules seen, duplicate fraction {info['duplicate_fraction']}, "
          f"UMI {UMI_LEN} nt (errors {UMI_ERROR}/base); data made in {info['generate_s']} s (cached)")
    if args.data_only:
        return 0
    run_wd = wd / f"run_{bam.stem}"
    run_wd.mkdir(exist_ok=True)
    res = run_bench(bam, gtf, run_wd, paired=args.paired, repeats=args.repeats, threads=args.threads,
                    skip_umi_tools=args.skip_umi_tools)
    cmp_ = compare(res)
    print(f"{'tool':<42}{'wall s':>9}{'CPU s':>9}{'RSS MB':>9}{'counted':>12}")
    for name, r in res.items():
        print(f"{name:<42}{r['wall_s']:>9.2f}{r['cpu_s']:>9.2f}{r['peak_rss_mb']:>9.0f}"
              f"{sum(r['counts'].values()):>12,}")
        for step, s in r.get("steps", {}).items():
            print(f"  {step:<40}{s['wall_s']:>9.2f}{s['cpu_s']:>9.2f}{s['peak_rss_mb']:>9.0f}")
    for mine, c in cmp_.items():
        print(f"{mine} vs {c['peer']}: {c['wall_x']:.1f}x wall, {c['cpu_x']:.1f}x CPU, peak RSS x{c['rss_ratio']:.2f}; "
              f"genes differing {c['genes_differing']} (totals {c['total']:,} vs {c['peer_total']:,})")
    if args.json:
        Path(args.json).write_text(json.dumps({"data": info, "results": {k: {**{kk: vv for kk, vv in v.items()
                                                                                if kk != "counts"},
                                                                             "counted": sum(v["counts"].values())}
                                                                         for k, v in res.items()},
                                               "compare": cmp_}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
