"""Faults: SIGKILL and --resume, a crashing sample worker, a full disk, no network, no shell, no machine paths;
reruns into an old folder, concurrent runs, colliding columns, parameters checked before any work.

Faults are injected from the test side: a ``sitecustomize.py`` on the subprocess's PYTHONPATH wraps a stage
function (in the run and in its forkserver workers), so the package carries no test hook.
"""

from __future__ import annotations

import json
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


FAULTS = """
import os, signal, time
from pathlib import Path

_kill = os.environ.get("CFRNA_TEST_KILL_TRIM")
if _kill:  # a worker killed the way the kernel's OOM killer would, before it writes anything
    import cfrna.trim as _trim

    _trim_reads = _trim.trim_reads

    def trim_reads(sample, *a, **k):
        if sample == _kill:
            os.kill(os.getpid(), signal.SIGKILL)
        return _trim_reads(sample, *a, **k)

    _trim.trim_reads = trim_reads

_gate = os.environ.get("CFRNA_TEST_ALIGN_GATE")
if _gate:  # s01's alignment waits (its work folder exists) until the gate opens, then the whole run is killed
    import cfrna.align.mappy_runner as _mr

    _align = _mr.align_to_sam

    def align_to_sam(idx, fq1, fq2, out, **k):
        if "--sample s01 " in k.get("command", ""):
            Path(_gate + ".reached").touch()
            while not Path(_gate).exists():
                time.sleep(0.05)
            os.killpg(os.getpgid(0), signal.SIGKILL)
        return _align(idx, fq1, fq2, out, **k)

    _mr.align_to_sam = align_to_sam
"""


def fault_env(tmp_path: Path, **env: str) -> dict[str, str]:
    d = tmp_path / "faults"
    d.mkdir(exist_ok=True)
    (d / "sitecustomize.py").write_text(FAULTS)
    path = os.pathsep.join(p for p in (str(d), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, **env}


def temp_leftovers(out: Path) -> list[str]:
    return [str(p.relative_to(out)) for p in out.rglob(".*")
            if "obsolete" not in p.parts and (p.name.endswith(".tmp") or ".align." in p.name or ".sort." in p.name)]


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
    assert not temp_leftovers(out)
    assert not (out / ".cfrna.lock").exists()
    trace = pd.read_csv(out / "pipeline_info" / "execution_trace.tsv", sep="\t").fillna("")
    for _, row in trace.iterrows():
        name = f"{row['step']}.{row['sample']}" if row["sample"] else row["step"]
        if name in done_before and row["step"] in ("trim", "align", "count"):
            assert row["status"] == "CACHED", name


def test_crashing_worker_loses_only_its_sample(cohort, index_dir, tmp_path):
    out = tmp_path / "results"
    env = fault_env(tmp_path, CFRNA_TEST_KILL_TRIM="s06")
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


def test_demo_runs_without_network(demo_run):
    """The session's one default ``cfrna demo`` (conftest ``demo_run``) ran under ``unshare -n``."""
    require_tool("unshare")
    if os.geteuid() != 0:
        if IN_CI:
            pytest.fail("CI=true: the no-network test needs root for unshare -n")
        pytest.skip("unshare -n needs root")
    proc = demo_run["proc"]
    assert demo_run["offline"] and proc.args[:2] == ["unshare", "-n"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (demo_run["root"] / "results" / "report" / "index.html").exists()


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


# ----------------------------------------------------------------------------- parameters before any work


def _run_in_process(cohort: Path, out: Path, index_dir: Path, *extra: str) -> list[str]:
    return ["run", "--samplesheet", str(cohort / "samplesheet.csv"), "--fasta", str(cohort / "genome.fa"),
            "--gtf", str(cohort / "genes.gtf"), "--contrasts", str(cohort / "contrasts.csv"), "--outdir", str(out),
            "--threads", "2", "--no-progress", "--index-dir", str(index_dir), *extra]


BAD_PARAMETERS = {
    "jobs -1": (["--jobs", "-1"], 2, "--jobs must be an integer >= 1, got -1"),
    "jobs 0": (["--jobs", "0"], 2, "--jobs must be"),
    "threads 0": (["--threads", "0"], 2, "--threads must be an integer >= 1, got 0"),
    "min-mapq -1": (["--min-mapq", "-1"], 2, "--min-mapq must be between 0 and 255"),
    "min-mapq 256": (["--min-mapq", "256"], 2, "--min-mapq must be between 0 and 255"),
    "thresholds missing": (["--qc-thresholds", "{tmp}/nope.yml"], 2, "--qc-thresholds {tmp}/nope.yml: file not found"),
    "thresholds bad": (["--qc-thresholds", "{tmp}/bad.json"], 2, "mad_k must be a number"),
    "gene set missing": (["--gene-sets", "{tmp}/nope.gmt"], 2, "--gene-sets {tmp}/nope.gmt: file not found"),
    "gene set empty": (["--gene-sets", "{tmp}/empty.gmt"], 1, "GMT file has no gene set"),
    "aligner": (["--aligner", "bowtie"], 2, "invalid choice: 'bowtie'"),
}


@pytest.mark.parametrize("case", list(BAD_PARAMETERS))
def test_invalid_parameter_rejected_before_any_work(cohort, index_dir, tmp_path, capsys, case):
    from cfrna.cli import main

    (tmp_path / "bad.json").write_text('{"mad_k": "x"}\n')
    (tmp_path / "empty.gmt").write_text("")
    args, code, message = BAD_PARAMETERS[case]
    args = [a.format(tmp=tmp_path) for a in args]
    out = tmp_path / "results"
    t0 = time.time()
    rc = main(_run_in_process(cohort, out, index_dir, *args))
    elapsed = time.time() - t0
    err = capsys.readouterr().err.strip()
    assert rc == code, err
    assert message.format(tmp=tmp_path) in err
    assert elapsed < 5, f"rejected after {elapsed:.1f} s"
    assert err.count("\n") == 0 or case == "aligner"  # argparse prints its usage first
    assert not out.exists(), "nothing may be written before every parameter is checked"


def test_missing_report_assets_rejected_before_any_work(cohort, index_dir, tmp_path, capsys, monkeypatch):
    from cfrna.cli import main
    from cfrna.report import html

    monkeypatch.setattr(html, "VENDOR", tmp_path / "no_vendor")
    out = tmp_path / "results"
    t0 = time.time()
    rc = main(_run_in_process(cohort, out, index_dir))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "report libraries missing" in err and "None" not in err and "\n" not in err
    assert time.time() - t0 < 5 and not out.exists()


def test_outdir_that_is_a_file(cohort, index_dir, tmp_path, capsys):
    from cfrna.cli import main

    f = tmp_path / "results"
    f.write_text("not a folder\n")
    rc = main(_run_in_process(cohort, f, index_dir))
    err = capsys.readouterr().err.strip()
    assert rc == 2 and f"--outdir {f}: File exists and is not a folder" in err and "\n" not in err
    assert f.read_text() == "not a folder\n"


def test_missing_or_unreadable_gtf_exit_codes(cohort, index_dir, tmp_path, capsys, monkeypatch):
    """A path that does not exist is a configuration error (2); a file that cannot be read is bad data (1),
    the same for a GTF as for a FASTQ (tests/test_samplesheet_rules.py)."""
    from cfrna.cli import main

    args = _run_in_process(cohort, tmp_path / "r1", index_dir)
    args[args.index("--gtf") + 1] = str(tmp_path / "missing.gtf")
    assert main(args) == 2
    assert "--gtf" in capsys.readouterr().err
    gtf = str(cohort / "genes.gtf")
    real = os.access
    monkeypatch.setattr(os, "access", lambda f, mode, *a, **k: False if str(f) == gtf else real(f, mode, *a, **k))
    assert main(_run_in_process(cohort, tmp_path / "r2", index_dir)) == 1
    err = capsys.readouterr().err.strip()
    assert "--gtf" in err and "not readable" in err
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_colliding_column_rejected_by_run(cohort, index_dir, tmp_path, capsys):
    from cfrna.cli import main

    sheet = pd.read_csv(cohort / "samplesheet.csv", dtype=str, keep_default_na=False)
    sheet["fastq_1"] = [str(cohort / f) for f in sheet["fastq_1"]]
    sheet["excluded"] = "false"  # would put QC-failed samples back into DE if it were merged
    bad = tmp_path / "sheet.csv"
    sheet.to_csv(bad, index=False)
    args = _run_in_process(cohort, tmp_path / "results", index_dir)
    args[args.index("--samplesheet") + 1] = str(bad)
    t0 = time.time()
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "column 'excluded' is reserved" in err and "\n" not in err
    assert time.time() - t0 < 5 and not (tmp_path / "results").exists()


# ----------------------------------------------------------------------------- reruns into an old folder


@pytest.fixture(scope="module")
def rerun(cohort, index_dir, baseline, tmp_path_factory) -> dict:
    """A run, then a rerun into the same folder with a contrast removed, s05 now failing and s06 removed.

    The first run is not given --no-progress and its stderr is a pipe: it logs one line per finished step.
    """
    d = tmp_path_factory.mktemp("rerun")
    out = d / "results"
    args = [a for a in run_args(cohort, out, index_dir) if a != "--no-progress"]
    first = subprocess.run(args, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    first_manifest = json.loads((out / "pipeline_info" / "manifest.json").read_text())
    sheet = pd.read_csv(cohort / "samplesheet.csv", dtype=str, keep_default_na=False)
    sheet["fastq_1"] = [str(cohort / f) for f in sheet["fastq_1"]]
    broken = d / "s05_R1.fastq.gz"
    data = (cohort / "fastq" / "s05_R1.fastq.gz").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    sheet.loc[sheet["sample"] == "s05", "fastq_1"] = str(broken)
    sheet = sheet[sheet["sample"] != "s06"]
    sheet.to_csv(d / "samplesheet.csv", index=False)
    contrasts = pd.read_csv(cohort / "contrasts.csv", dtype=str, keep_default_na=False)
    contrasts[contrasts["id"] == "arm"].to_csv(d / "contrasts.csv", index=False)
    args = run_args(cohort, out, index_dir, "--resume")
    args[args.index("--samplesheet") + 1] = str(d / "samplesheet.csv")
    args[args.index("--contrasts") + 1] = str(d / "contrasts.csv")
    second = subprocess.run(args, capture_output=True, text=True, check=False)
    assert second.returncode == 0, second.stderr
    return {"out": out, "first": first, "first_manifest": first_manifest, "second": second}


def test_progress_lines_when_stderr_is_not_a_terminal(rerun):
    err = rerun["first"].stderr
    for stage in ("trim", "align", "count", "samples"):
        lines = [ln for ln in err.splitlines() if ln.startswith(f"[{stage}] ")]
        assert len(lines) == 6, (stage, lines)
        assert {ln.split()[1] for ln in lines} == {f"s0{i}" for i in range(1, 7)}
        assert any("completed (6/6, " in ln for ln in lines)
    for stage in ("index", "qc", "matrix", "de", "pathways", "report"):
        assert re.search(rf"^\[{stage}\] (completed|cached) \(1/1, [0-9.]+ s\)$", err, re.M), stage


def test_rerun_manifest_lists_this_runs_samples_and_contrasts(rerun):
    assert rerun["first_manifest"]["samples"]["ok"] == [f"s0{i}" for i in range(1, 7)]
    m = json.loads((rerun["out"] / "pipeline_info" / "manifest.json").read_text())
    assert m["samples"]["ok"] == ["s01", "s02", "s03", "s04"]
    assert list(m["samples"]["failed"]) == ["s05"] and m["contrasts"] == ["arm"]


def test_rerun_removed_contrast_leaves_no_trace(rerun):
    out = rerun["out"]
    assert not list(out.glob("de/flare_vs_no_flare.*")) and not list(out.glob("pathways/flare_vs_no_flare.*"))
    assert (out / "obsolete" / "de" / "flare_vs_no_flare.deseq2.tsv").exists()
    assert (out / "obsolete" / "pathways" / "flare_vs_no_flare.gsea.tsv").exists()
    assert pd.read_csv(out / "de" / "design.tsv", sep="\t")["contrast"].tolist() == ["arm"]
    assert sorted(p.name for p in out.glob("pathways/*.gsea.tsv")) == ["arm.gsea.tsv"]
    assert "contrast flare_vs_no_flare is not in this run's contrasts" in rerun["second"].stderr


def test_rerun_newly_failing_and_removed_samples(rerun, baseline):
    out = rerun["out"]
    counts = pd.read_csv(out / "matrix" / "gene_counts.tsv", sep="\t", index_col=0)
    assert list(counts.columns) == ["s01", "s02", "s03", "s04"]
    base = pd.read_csv(baseline["out"] / "matrix" / "gene_counts.tsv", sep="\t", index_col=0)
    pd.testing.assert_frame_equal(counts, base[["s01", "s02", "s03", "s04"]])  # as a fresh folder would have it
    qc = pd.read_csv(out / "qc" / "qc_summary.tsv", sep="\t", index_col=0)
    assert list(qc.index) == ["s01", "s02", "s03", "s04", "s05"]
    assert qc.loc["s05", "status"] == "fail" and bool(qc.loc["s05", "excluded"])
    samples = pd.read_csv(out / "matrix" / "samples.tsv", sep="\t", index_col=0)
    assert "s06" not in samples.index and bool(samples.loc["s05", "excluded"])
    assert "s05_R1.fastq.gz" in samples.loc["s05", "qc_reasons"]
    for stage in ("trimmed", "alignment", "counts"):
        assert not list((out / stage).glob("s05*")) and not list((out / stage).glob("s06*"))
    assert (out / "obsolete" / "counts" / "s05.counts.tsv").exists()
    assert (out / "obsolete" / "alignment" / "s06.bam").exists() and not (out / "qc" / "s06.qc.json").exists()
    err = rerun["second"].stderr
    assert "sample s05 failed in this run; outputs of an earlier run" in err
    assert "sample s06 is not in this run's samplesheet" in err
    trace = pd.read_csv(out / "pipeline_info" / "execution_trace.tsv", sep="\t").fillna("")
    kept = trace[trace["sample"].isin(["s01", "s02", "s03", "s04"])]
    assert set(kept["status"]) == {"CACHED"}  # the rerun did not redo the samples it kept


# ----------------------------------------------------------------------------- concurrent runs, kills


def test_concurrent_run_refused_then_kill_during_alignment_leaves_nothing(cohort, index_dir, tmp_path):
    out = tmp_path / "results"
    gate = tmp_path / "gate"
    first = subprocess.Popen(run_args(cohort, out, index_dir), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, start_new_session=True, env=fault_env(tmp_path, CFRNA_TEST_ALIGN_GATE=str(gate)))
    try:
        deadline = time.time() + 600
        while not Path(str(gate) + ".reached").exists():
            assert first.poll() is None, first.stderr.read()
            assert time.time() < deadline, "s01 never reached alignment"
            time.sleep(0.1)
        lock = json.loads((out / ".cfrna.lock").read_text())
        assert lock["pid"] == first.pid and lock["host"] and lock["started"]
        # a second run into the same folder: refused at once, naming the holder
        t0 = time.time()
        second = subprocess.run(run_args(cohort, out, index_dir), capture_output=True, text=True, check=False)
        assert second.returncode == 2, second.stderr
        msg = second.stderr.strip().splitlines()[-1]  # after the preflight's info lines: one error line
        assert msg.startswith(f"cfrna run: error: {out}: output folder is in use by another cfrna run (host ")
        assert f"pid {first.pid}, started " in msg
        assert time.time() - t0 < 30
        assert (out / ".cfrna.lock").exists()
    finally:
        gate.touch()  # s01's alignment goes on and kills the whole run, as an OOM killer or scancel would
        first.wait(timeout=120)
    assert first.returncode == -signal.SIGKILL
    assert any(".s01.align." in p for p in temp_leftovers(out)), temp_leftovers(out)
    # the next run into the folder: takes over the dead run's lock, sweeps its temporary files
    sheet = pd.read_csv(cohort / "samplesheet.csv", dtype=str, keep_default_na=False).iloc[:1]
    sheet["fastq_1"] = [str(cohort / f) for f in sheet["fastq_1"]]
    sheet.to_csv(tmp_path / "one.csv", index=False)
    args = run_args(cohort, out, index_dir, "--resume")
    args[args.index("--samplesheet") + 1] = str(tmp_path / "one.csv")
    i = args.index("--contrasts")
    del args[i:i + 2]
    third = subprocess.run(args, capture_output=True, text=True, check=False)
    assert third.returncode == 0, third.stderr
    assert f"taking over a stale lock of a run that is no longer running (host {lock['host']}, pid {first.pid}" \
        in third.stderr
    assert "temporary file(s) left by an interrupted run" in third.stderr
    assert not temp_leftovers(out)
    assert not (out / ".cfrna.lock").exists()
    assert list(pd.read_csv(out / "matrix" / "gene_counts.tsv", sep="\t", index_col=0).columns) == ["s01"]
