"""`cfrna run` building blocks: the output-folder lock, the temp sweep, retiring stale outputs, progress lines,
pathways reading its contrasts from design.tsv, and the messages of the probe (gzip damage, missing asset)."""

from __future__ import annotations

import gzip
import json
import logging
import os
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest

from cfrna.cli import main
from cfrna.errors import ConfigError, InputFormatError
from cfrna.pipeline.local import (
    LOCK_NAME,
    OutdirLock,
    RunProgress,
    progress_mode,
    retire_contrasts,
    retire_samples,
    sweep_temporary,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_is_exclusive_across_processes_and_names_the_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom cfrna.pipeline.local import OutdirLock\n"
         "OutdirLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        info = json.loads((tmp_path / LOCK_NAME).read_text())
        assert info["pid"] == holder.pid and info["host"] == socket.gethostname() and info["started"]
        with pytest.raises(ConfigError, match=rf"in use by another cfrna run \(host \S+, pid {holder.pid}, started"):
            OutdirLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock is stale and taken over
    with OutdirLock(tmp_path) as lock:
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_pid_is_taken_over_with_a_warning(tmp_path, caplog):
    dead = _dead_pid()
    (tmp_path / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": dead, "started": "x"}))
    with caplog.at_level(logging.WARNING, logger="cfrna"), OutdirLock(tmp_path):
        pass
    assert f"taking over a stale lock of a run that is no longer running (host {socket.gethostname()}, pid {dead}" \
        in caplog.text


def test_lock_written_on_another_host_is_not_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"host": "node-elsewhere", "pid": 1, "started": "x"}))
    with pytest.raises(ConfigError, match=r"locked by a run on another host \(host node-elsewhere, pid 1"):
        OutdirLock(tmp_path).acquire()


def test_lock_of_a_live_process_without_flock_is_respected(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid(), "started": "x"}))
    with pytest.raises(ConfigError, match="in use by another cfrna run"):
        OutdirLock(tmp_path).acquire()


def test_sweep_removes_what_a_killed_run_leaves(tmp_path):
    (tmp_path / "alignment" / ".s01.align.abc123").mkdir(parents=True)
    (tmp_path / "alignment" / ".s01.align.abc123" / "unsorted.sam").write_text("x")
    (tmp_path / "alignment" / ".s02.bam.sort.q1w2").mkdir()
    (tmp_path / "counts").mkdir()
    (tmp_path / "counts" / ".s01.counts.tsv.k3j4.tmp").write_text("half")
    (tmp_path / "pipeline_info" / ".results").mkdir(parents=True)
    (tmp_path / "pipeline_info" / ".results" / "s01.json").write_text("{}")
    keep = [tmp_path / "counts" / "s01.counts.tsv", tmp_path / "obsolete" / "counts" / ".x.tmp",
            tmp_path / "pipeline_info" / ".stamps" / "trim.s01.json"]
    for f in keep:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("kept")
    removed = sweep_temporary(tmp_path)
    assert sorted(removed) == ["alignment/.s01.align.abc123", "alignment/.s02.bam.sort.q1w2",
                               "counts/.s01.counts.tsv.k3j4.tmp"]
    assert all(f.exists() for f in keep)
    assert not (tmp_path / "pipeline_info" / ".results").exists()


def _touch(root, *names):
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(n)


def test_retire_samples(tmp_path, caplog):
    _touch(tmp_path, "trimmed/s1_1.trimmed.fastq.gz", "trimmed/s1.trim.json", "trimmed/s1_1_1.trimmed.fastq.gz",
           "trimmed/s1_1.trim.json", "alignment/s1.bam", "alignment/s2.bam", "alignment/s2.bam.bai",
           "counts/s2.counts.tsv", "counts/s3.counts.tsv", "counts/s3.counts.tsv.summary", "counts/notes.txt",
           "qc/s3.qc.json", "qc/s2.qc.json", "qc/qc_summary.tsv", "alignment/s3.extra.log")
    with caplog.at_level(logging.WARNING, logger="cfrna"):
        moved = retire_samples(tmp_path, ["s1", "s1_1", "s2"], ok=["s1"], failed={"s2": "bad"}, previous=["s3"])
    # s1 is kept (even next to a sample named s1_1); s1_1 had no outputs of its own in this run
    assert (tmp_path / "trimmed/s1_1.trimmed.fastq.gz").exists() and (tmp_path / "trimmed/s1.trim.json").exists()
    assert sorted(moved) == ["s1_1", "s2", "s3"]
    assert sorted(moved["s2"]) == ["alignment/s2.bam", "alignment/s2.bam.bai", "counts/s2.counts.tsv"]
    assert sorted(moved["s3"]) == ["alignment/s3.extra.log", "counts/s3.counts.tsv", "counts/s3.counts.tsv.summary",
                                   "qc/s3.qc.json"]
    assert (tmp_path / "obsolete/counts/s3.counts.tsv").read_text() == "counts/s3.counts.tsv"
    assert (tmp_path / "qc/s2.qc.json").exists() and (tmp_path / "counts/notes.txt").exists()
    assert "sample s2 failed in this run" in caplog.text and "sample s3 is not in this run's samplesheet" in caplog.text


def test_retire_contrasts(tmp_path):
    _touch(tmp_path, "de/a.deseq2.tsv", "de/a.sensitivity.tsv", "de/b.deseq2.tsv", "de/vst.tsv", "de/design.tsv",
           "pathways/a.gsea.tsv", "pathways/b.gsea.tsv", "pathways/signature_scores.tsv")
    moved = retire_contrasts(tmp_path, ["b"])
    assert sorted(moved["a"]) == ["de/a.deseq2.tsv", "de/a.sensitivity.tsv", "pathways/a.gsea.tsv"]
    assert (tmp_path / "de/b.deseq2.tsv").exists() and (tmp_path / "de/vst.tsv").exists()
    moved = retire_contrasts(tmp_path, [])
    assert not list((tmp_path / "de").iterdir()) and not list((tmp_path / "pathways").iterdir())
    assert (tmp_path / "obsolete/de/a.deseq2.tsv").exists() and (tmp_path / "obsolete/de/vst.tsv").exists()


def test_progress_lines(capsys):
    assert progress_mode(False) == "off"
    assert progress_mode(True) == "lines"  # pytest's captured stderr is not a terminal
    with RunProgress("lines") as p:
        p.stage("align", 2)
        p.finished("align", "s01", "COMPLETED", 3.21)
        p.finished("align", "s02", "CACHED", 0)
        p.finished("unknown", "x")
    assert capsys.readouterr().err.splitlines() == ["[align] s01 completed (1/2, 3.2 s)",
                                                    "[align] s02 cached (2/2, 0.0 s)"]
    with RunProgress("off") as p:
        p.stage("qc", 1)
        p.finished("qc")
    assert capsys.readouterr().err == ""


def test_pathways_reads_contrasts_from_design(tmp_path):
    from cfrna.pathways.gsea import de_contrast_ids

    de = tmp_path / "de"
    _touch(tmp_path, "de/old.deseq2.tsv", "de/b.deseq2.tsv", "de/a.deseq2.tsv")
    with pytest.raises(ConfigError, match="design.tsv not found"):
        de_contrast_ids(de)
    pd.DataFrame({"contrast": ["b", "a"], "variable": ["x", "y"]}).to_csv(de / "design.tsv", sep="\t", index=False)
    assert de_contrast_ids(de) == ["b", "a"]  # the stale old.deseq2.tsv is not picked up
    (de / "a.deseq2.tsv").unlink()
    with pytest.raises(ConfigError, match="a.deseq2.tsv listed in design.tsv but missing"):
        de_contrast_ids(de)


def test_gzip_damage_after_the_last_record_blames_no_record(tmp_path):
    from cfrna.io.fastq import iter_fastq, iter_fastq_chunks

    data = gzip.compress(b"".join(b"@r%d\nACGT\n+\nIIII\n" % i for i in range(50)))
    crc = tmp_path / "crc.fastq.gz"
    crc.write_bytes(data[:-8] + b"\0\0\0\0" + data[-4:])  # only the gzip trailer's checksum is damaged
    for read in (lambda p: list(iter_fastq(p)), lambda p: list(iter_fastq_chunks(p))):
        with pytest.raises(InputFormatError) as err:
            read(crc)
        msg = err.value.one_line()
        assert "checksum at the end of the file" in msg and "record" not in msg, msg


def test_missing_asset_message_has_no_none(monkeypatch, capsys):
    from cfrna import _resources
    from cfrna.pipeline import _validate_cli

    def run(args):
        return _resources.asset_path("no_such_asset.json")

    monkeypatch.setattr(_validate_cli, "run", run)
    assert main(["validate", "--samplesheet", "x.csv"]) == 1
    err = capsys.readouterr().err.strip()
    assert "None" not in err and "asset not found: no_such_asset.json" in err and "reinstall cfrna" in err


def test_no_test_hook_in_the_runner():
    from pathlib import Path

    import cfrna.pipeline.local as local

    assert "CFRNA_FAULT" not in Path(local.__file__).read_text()


def test_jobs_never_loops_for_ever_on_a_bad_value(tmp_path):
    """Even past the preflight, _run_samples refuses jobs < 1 instead of waiting for ever."""
    from cfrna.pipeline.local import RunOptions, _run_samples

    opts = RunOptions(samplesheet="x", fasta="x", gtf="x", outdir=str(tmp_path), jobs=-1)
    t0 = time.time()
    with pytest.raises(ConfigError, match="--jobs must be >= 1"), RunProgress("off") as p:
        _run_samples(opts, [object()], None, p)
    assert time.time() - t0 < 5


def test_run_junction_scoring_option():
    """cfrna run --junction-scoring reaches the run options and params.json (default off)."""
    import argparse

    from cfrna.pipeline._cli import add_run_arguments, options_from_args

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    base = ["--samplesheet", "s.csv", "--fasta", "g.fa", "--gtf", "g.gtf", "--outdir", "o"]
    assert options_from_args(parser.parse_args(base)).params()["junction_scoring"] is False
    opts = options_from_args(parser.parse_args(base + ["--junction-scoring"]))
    assert opts.junction_scoring is True and opts.params()["junction_scoring"] is True
