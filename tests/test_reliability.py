"""Faults: SIGKILL and --resume, a crashing sample worker, a full disk, no network, no shell, no machine paths."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import IN_CI, ROOT, require_tool

pytestmark = pytest.mark.slow

TABLES = ("counts/*.counts.tsv", "counts/*.counts.tsv.summary", "qc/qc_summary.tsv", "matrix/gene_counts.tsv",
          "matrix/samples.tsv", "de/*.deseq2.tsv", "pathways/*.gsea.tsv", "pathways/signature_scores.tsv")


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    from cfrna.simulate import simulate_cohort

    out = tmp_path_factory.mktemp("rel_cohort")
    simulate_cohort(out, n_samples=6, reads_per_sample=4000, seed=5)
    return out


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("rel_index")


def run_args(cohort: Path, out: Path, index_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cfrna", "run", "--samplesheet", str(cohort / "samplesheet.csv"),
            "--fasta", str(cohort / "genome.fa"), "--gtf", str(cohort / "genes.gtf"),
            "--contrasts", str(cohort / "contrasts.csv"), "--outdir", str(out), "--threads", "2",
            "--no-progress", "--index-dir", str(index_dir), *extra]


def tables(out: Path) -> dict[str, bytes]:
    found = {}
    for pattern in TABLES:
        for f in sorted(out.glob(pattern)):
            found[str(f.relative_to(out))] = f.read_bytes()
    return found


@pytest.fixture(scope="module")
def baseline(cohort, index_dir, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("rel_base") / "results"
    t0 = time.time()
    proc = subprocess.run(run_args(cohort, out, index_dir), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return {"out": out, "seconds": time.time() - t0, "tables": tables(out)}


@pytest.mark.parametrize("seed", [11, 23])
def test_sigkill_then_resume_gives_identical_outputs(cohort, index_dir, baseline, tmp_path, seed):
    out = tmp_path / "results"
    rng = random.Random(seed)
    delay = rng.uniform(3.0, max(4.0, 0.8 * baseline["seconds"]))
    proc = subprocess.Popen(run_args(cohort, out, index_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # whatever was finished before the kill must not be recomputed
    stamps = out / "pipeline_info" / ".stamps"
    done_before = {p.stem for p in stamps.glob("*.json")} if stamps.exists() else set()
    resumed = subprocess.run([*run_args(cohort, out, index_dir), "--resume"], capture_output=True, text=True,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert tables(out) == baseline["tables"]
    assert not list(out.rglob("*.tmp"))
    trace = pd.read_csv(out / "pipeline_info" / "execution_trace.tsv", sep="\t").fillna("")
    for _, row in trace.iterrows():
        name = f"{row['step']}.{row['sample']}" if row["sample"] else row["step"]
        if name in done_before and row["step"] in ("trim", "align", "count"):
            assert row["status"] == "CACHED", name


def test_crashing_worker_loses_only_its_sample(cohort, index_dir, tmp_path):
    out = tmp_path / "results"
    env = {**os.environ, "CFRNA_FAULT_INJECT": "kill:s06"}
    proc = subprocess.run(run_args(cohort, out, index_dir), capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "s06" in proc.stdout and "failed" in proc.stdout
    errors = pd.read_csv(out / "pipeline_info" / "sample_errors.tsv", sep="\t")
    assert errors["sample"].tolist() == ["s06"]
    assert "worker process died" in errors["error"].iloc[0]
    samples = pd.read_csv(out / "matrix" / "samples.tsv", sep="\t", index_col=0)
    assert samples.loc["s06", "excluded"]
    assert "worker process died" in samples.loc["s06", "qc_reasons"]
    counts = pd.read_csv(out / "matrix" / "gene_counts.tsv", sep="\t", index_col=0)
    assert list(counts.columns) == ["s01", "s02", "s03", "s04", "s05"]
    assert (out / "report" / "index.html").exists()


def test_corrupt_fastq_fails_only_that_sample(cohort, index_dir, tmp_path):
    bad = tmp_path / "cohort"
    shutil.copytree(cohort, bad)
    fq = bad / "fastq" / "s05_R1.fastq.gz"
    fq.write_bytes(fq.read_bytes()[: len(fq.read_bytes()) // 2])
    out = tmp_path / "results"
    proc = subprocess.run(run_args(bad, out, index_dir), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    errors = pd.read_csv(out / "pipeline_info" / "sample_errors.tsv", sep="\t")
    assert errors["sample"].tolist() == ["s05"]
    assert "s05_R1.fastq.gz" in errors["error"].iloc[0]
    samples = pd.read_csv(out / "matrix" / "samples.tsv", sep="\t", index_col=0)
    assert samples.loc["s05", "excluded"] and samples.loc["s05", "qc_status"] == "fail"
    assert not (out / "counts" / "s05.counts.tsv").exists()


def test_every_sample_failing_is_an_error(cohort, index_dir, tmp_path):
    bad = tmp_path / "cohort"
    shutil.copytree(cohort, bad)
    for fq in (bad / "fastq").glob("*.fastq.gz"):
        fq.write_bytes(b"not a fastq\n")
    out = tmp_path / "results"
    proc = subprocess.run(run_args(bad, out, index_dir), capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "every sample failed" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 or "error:" in proc.stderr.splitlines()[-1]
    assert not (out / "report" / "index.html").exists()


def test_disk_full_gives_clear_error_and_no_partial_file(baseline, cohort, tmp_path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if IN_CI:
            pytest.fail("CI=true: the disk-full test needs root and mount")
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "full"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mnt)], capture_output=True,
                         check=False)
    if res.returncode != 0:
        if IN_CI:
            pytest.fail(f"CI=true: cannot mount tmpfs: {res.stderr!r}")
        pytest.skip("cannot mount a tmpfs here")
    try:
        src = baseline["out"]
        sheet = cohort / "samplesheet.csv"
        proc = subprocess.run(
            [sys.executable, "-m", "cfrna", "matrix", "--samplesheet", str(sheet),
             "--gtf", str(Path(sheet).parent / "genes.gtf"), "--counts-dir", str(src / "counts"),
             "--outdir", str(mnt / "matrix")],
            capture_output=True, text=True, check=False)
        assert proc.returncode == 1, proc.stderr
        assert "no space left on device" in proc.stderr.lower()
        assert proc.stderr.strip().count("\n") == 0
        left = [p.name for p in (mnt / "matrix").iterdir()] if (mnt / "matrix").exists() else []
        assert "gene_counts.tsv" not in left and not [n for n in left if n.endswith(".tmp")]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_demo_runs_without_network(tmp_path):
    require_tool("unshare")
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI=true: the no-network test needs root for unshare -n")
        pytest.skip("unshare -n needs root")
    proc = subprocess.run(["unshare", "-n", sys.executable, "-m", "cfrna", "demo", "--outdir", str(tmp_path / "d"),
                           "--samples", "4", "--reads-per-sample", "3000", "--threads", "2", "--no-progress"],
                          capture_output=True, text=True, check=False, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "d" / "results" / "report" / "index.html").exists()


def test_no_shell_in_package():
    pattern = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(|subprocess\.getoutput|commands\.")
    offenders = []
    for f in (ROOT / "cfrna").rglob("*.py"):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, offenders


def test_outputs_carry_no_machine_paths(baseline, cohort):
    import pysam

    out = baseline["out"]
    needles = {str(cohort), str(out), str(cohort.resolve())}
    for f in out.rglob("*"):
        if not f.is_file() or ".stamps" in f.parts or ".results" in f.parts or f.suffix == ".log":
            continue
        if f.suffix in (".tsv", ".json", ".yml", ".html", ".summary", ".csv", ".txt"):
            text = f.read_text(errors="replace")
            for n in needles:
                assert n not in text, f"{f.relative_to(out)} contains {n}"
    for bam in (out / "alignment").glob("*.bam"):
        with pysam.AlignmentFile(str(bam)) as fh:
            header = str(fh.header)
        for n in needles:
            assert n not in header, f"{bam.name} header contains {n}"
