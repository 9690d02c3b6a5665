"""Alignment benchmark: mappy (cfrna default) vs STAR (and a minimap2 >= 2.31 CLI if given) on the same reads.

Usage::

    python benchmarks/align.py --reads 100000 [--paired] [--threads 1 2] [--minimap2 PATH] \
        [--repeats 3] [--workdir /tmp/cfrna-bench-align] [--json results.json]

Simulates one cohort (``cfrna.simulate``; two samples, the first is aligned), builds every index
once (timed separately), then runs each aligner at each thread count in a fresh subprocess and
reports: wall time of the aligner step (FASTQ -> unsorted SAM/BAM, index loading included),
reads/s (every read counts; a pair is 2 reads), CPU seconds of the step (user+sys of the process
and its children; less sensitive than wall time to other load on the machine), the peak RSS of that step (VmHWM of the Python
process for mappy, of the aligner process for STAR/minimap2, polled every 50 ms), and the mapped and
spliced fractions of the sorted result (:func:`cfrna.align.stats.bam_stats`). The minimap2 CLI
is run as ``minimap2 -ax splice:sr -t T -j J idx.mmi R1 [R2]`` (the annotated junctions as
jumps, as cfrna loads them into mappy); with ``--junction-scoring`` both use them for scoring too
(``--junc-bed J``, ``cfrna align --junction-scoring``). Debian's minimap2 2.24 silently ignores ``:sr``: it is
refused.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _vmhwm_mb(pid: int | str = "self") -> float:
    """Peak RSS (VmHWM) of a live process; unlike ru_maxrss it does not inherit the parent's peak."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


class ChildPeak(threading.Thread):
    """Poll the largest peak RSS among this process's descendants (STAR, minimap2) every 50 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self.stop = threading.Event()

    def run(self) -> None:
        me = str(os.getpid())
        while not self.stop.is_set():
            parent: dict[str, str] = {}
            for entry in Path("/proc").iterdir():
                pid = entry.name
                if not pid.isdigit():
                    continue
                try:
                    with open(f"/proc/{pid}/stat") as fh:
                        parent[pid] = fh.read().rsplit(")", 1)[1].split()[1]
                except (OSError, IndexError):
                    continue
            for pid in parent:  # descendants (the Debian STAR is a wrapper script around STAR-avx2)
                p, hops = pid, 0
                while p in parent and p != me and hops < 8:
                    p, hops = parent[p], hops + 1
                if p == me and pid != me:
                    self.peak = max(self.peak, _vmhwm_mb(pid))
            self.stop.wait(0.05)


def _stats(unsorted: Path, work: Path, threads: int) -> dict:
    from cfrna.align import sort_and_index
    from cfrna.align.stats import bam_stats

    bam = work / "sorted.bam"
    sort_and_index(unsorted, bam, threads=threads)
    st = bam_stats(bam)
    return {"mapping_rate": st["mapping_rate"], "spliced_fraction": st["spliced_fraction"],
            "unique_fraction": st["unique_fraction"], "soft_clipped_fraction": st["soft_clipped_fraction"]}


def worker(args: argparse.Namespace) -> None:
    """One measurement in a fresh process: prints a JSON line."""
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    r2 = args.fastq_2 or None
    watcher = ChildPeak()
    watcher.start()
    ru0 = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    t0 = time.perf_counter()
    if args.tool in ("mappy", "mappy-python"):
        from cfrna.align.mappy_runner import align_to_sam

        unsorted = work / "out.sam"
        align_to_sam(args.index, args.fastq_1, r2, unsorted, threads=args.threads, native=args.tool == "mappy",
                     junction_scoring=args.junction_scoring)
        wall = time.perf_counter() - t0
        rss = _vmhwm_mb()
    elif args.tool == "star":
        from cfrna.align.star import align_star

        unsorted = align_star(args.index, args.fastq_1, r2, work, threads=args.threads)
        wall = time.perf_counter() - t0
        rss = watcher.peak
    else:  # minimap2 CLI
        unsorted = work / "out.sam"
        idx = Path(args.index)
        cmd = [args.tool, "-ax", "splice:sr", "-t", str(args.threads)]
        bed = idx.parent / "junctions.bed"
        if bed.is_file():
            cmd += (["--junc-bed", str(bed)] if args.junction_scoring else []) + ["-j", str(bed)]
        cmd += [str(idx), args.fastq_1] + ([r2] if r2 else [])
        with open(unsorted, "w") as fh:
            subprocess.run(cmd, stdout=fh, stderr=subprocess.DEVNULL, check=True)
        wall = time.perf_counter() - t0
        rss = watcher.peak
    watcher.stop.set()
    ru1 = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum((b.ru_utime + b.ru_stime) - (a.ru_utime + a.ru_stime) for a, b in zip(ru0, ru1, strict=True))
    out = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "peak_rss_mb": round(rss, 1)}
    out.update(_stats(unsorted, work, args.threads))
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(out))


def _count_reads(path: Path) -> int:
    import gzip

    with gzip.open(path, "rt") as fh:
        return sum(1 for _ in fh) // 4


def _minimap2_ok(path: str) -> bool:
    try:
        v = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return False
    major, minor = (int(x) for x in v.split("-")[0].split(".")[:2])
    return (major, minor) >= (2, 31)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reads", type=int, default=100_000, help="reads (pairs with --paired) (default: %(default)s)")
    ap.add_argument("--paired", action="store_true")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=1, help="runs per setting; the fastest is kept (default: %(default)s)")
    ap.add_argument("--python-path", action="store_true",
                    help="also time cfrna's mappy Python-API path (the fallback of the native path)")
    ap.add_argument("--minimap2", default=None, help="a minimap2 >= 2.31 binary (e.g. built from the mappy sdist)")
    ap.add_argument("--junction-scoring", action="store_true",
                    help="mappy and the CLI also score annotated splice sites (minimap2 --junc-bed)")
    ap.add_argument("--workdir", default="/tmp/cfrna-bench-align")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--_worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--tool"), ap.add_argument("--index"), ap.add_argument("--fastq-1"), ap.add_argument("--fastq-2")
    ap.add_argument("--work")
    args = ap.parse_args()
    if args._worker:
        worker(argparse.Namespace(tool=args.tool, index=args.index, fastq_1=args.fastq_1, fastq_2=args.fastq_2,
                                  work=args.work, threads=args.threads[0], junction_scoring=args.junction_scoring))
        return

    from cfrna.align.index import build_index
    from cfrna.simulate import simulate_cohort

    wd = Path(args.workdir)
    cohort = wd / f"cohort_{'pe' if args.paired else 'se'}_{args.reads}"
    if not (cohort / "samplesheet.csv").is_file():
        simulate_cohort(cohort, n_samples=2, reads_per_sample=args.reads, paired=args.paired, seed=11)
    fa, gtf = cohort / "genome.fa", cohort / "genes.gtf"
    r1 = cohort / "fastq" / "s01_R1.fastq.gz"
    r2 = cohort / "fastq" / "s01_R2.fastq.gz" if args.paired else None
    n_reads = _count_reads(r1) * (2 if args.paired else 1)
    results: dict = {"reads": n_reads, "paired": args.paired, "index_build_s": {}, "runs": []}
    idx = {}
    for tool in ("mappy", "star"):
        t0 = time.perf_counter()
        idx[tool] = build_index(fa, gtf, wd / "index", aligner=tool, threads=max(args.threads))
        results["index_build_s"][tool] = round(time.perf_counter() - t0, 2)
    tools = [("mappy", str(idx["mappy"])), ("star", str(idx["star"]))]
    if args.python_path:
        tools.insert(1, ("mappy-python", str(idx["mappy"])))
    if args.minimap2:
        if not _minimap2_ok(args.minimap2):
            sys.exit(f"{args.minimap2}: not minimap2 >= 2.31 (older versions ignore splice:sr)")
        mmi = idx["mappy"] / "genome.mmi"  # same index file format and preset
        tools.append((args.minimap2, str(mmi)))
    for tool, index in tools:
        for t in args.threads:
            cmd = [sys.executable, __file__, "--_worker", "--tool", tool, "--index", index, "--fastq-1", str(r1),
                   "--threads", str(t), "--work", str(wd / "run")]
            if args.junction_scoring:
                cmd.append("--junction-scoring")
            if r2:
                cmd += ["--fastq-2", str(r2)]
            reps = []
            for _ in range(max(1, args.repeats)):
                out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
                reps.append(json.loads(out.stdout.strip().splitlines()[-1]))
            res = min(reps, key=lambda r: r["wall_s"])
            res["wall_s_all"] = [r["wall_s"] for r in reps]
            res["cpu_s"] = min(r["cpu_s"] for r in reps)
            name = "minimap2-cli" if tool == args.minimap2 else tool
            res.update({"tool": name, "threads": t, "reads_per_s": round(n_reads / res["wall_s"]),
                        "reads_per_cpu_s": round(n_reads / res["cpu_s"]) if res["cpu_s"] else None})
            results["runs"].append(res)
            print(json.dumps(res), file=sys.stderr)
    by = {(r["tool"], r["threads"]): r for r in results["runs"]}
    lines = ["| aligner | threads | wall s | reads/s | CPU s | reads/CPU-s | peak RSS MB | mapped | spliced | unique |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        lines.append(f"| {r['tool']} | {r['threads']} | {r['wall_s']} | {r['reads_per_s']:,} | {r['cpu_s']} | "
                     f"{r['reads_per_cpu_s']:,} | {r['peak_rss_mb']:.0f} | "
                     f"{r['mapping_rate']:.4f} | {r['spliced_fraction']:.4f} | {r['unique_fraction']:.4f} |")
    for t in args.threads:
        if ("mappy", t) in by and ("star", t) in by:
            lines.append(f"\nmappy/STAR reads/s at {t} thread(s): "
                         f"{by[('mappy', t)]['reads_per_s'] / by[('star', t)]['reads_per_s']:.2f} "
                         f"(per CPU-second: {by[('mappy', t)]['reads_per_cpu_s'] / by[('star', t)]['reads_per_cpu_s']:.2f})")
        if ("mappy", t) in by and ("minimap2-cli", t) in by:
            lines.append(f"mappy/minimap2-CLI reads/s at {t} thread(s): "
                         f"{by[('mappy', t)]['reads_per_s'] / by[('minimap2-cli', t)]['reads_per_s']:.2f} "
                         f"(per CPU-second: "
                         f"{by[('mappy', t)]['reads_per_cpu_s'] / by[('minimap2-cli', t)]['reads_per_cpu_s']:.2f})")
    results["table"] = "\n".join(lines)
    print(results["table"])
    print(f"index build s: {results['index_build_s']}; reads: {n_reads}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
