"""Adapter and quality trimming with cutadapt (in-process), plus read-level QC.

:func:`run_trim` validates the input FASTQ(s) completely first (so a bad file gives one clear
:class:`~cfrna.errors.InputFormatError` naming the file and record), runs cutadapt through its
library entry point ``cutadapt.cli.main`` (no subprocess), and writes ``<ID>_1.trimmed.fastq.gz``
(``_2`` for pairs) and ``<ID>.trim.json``.

``mean_quality``, ``gc_fraction`` and ``duplication_fraction`` are measured on the trimmed reads
(what the aligner sees); ``duplication_fraction`` is the fraction of the first 100,000 templates
whose exact sequence (both mates for pairs) occurred before. For pairs ``reads_*`` count read
pairs, ``bases_*`` count both mates, and ``reads_with_adapter`` counts pairs whose R1 had an
adapter (read-through of short cfRNA fragments shows in both mates).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cfrna.errors import ConfigError, InputFormatError
from cfrna.io.atomic import write_json
from cfrna.io.fastq import fastq_stats

__all__ = ["run_trim", "TRUSEQ_ADAPTER"]

log = logging.getLogger(__name__)

#: Illumina TruSeq adapter prefix (both mates)
TRUSEQ_ADAPTER = "AGATCGGAAGAGC"
_IUPAC = set("ACGTURYSWKMBDHVN")


@contextlib.contextmanager
def _quiet_cutadapt() -> Iterator[None]:
    """Keep cutadapt from installing its own stdout/stderr handlers (it does when root has none)."""
    root = logging.getLogger()
    null = logging.NullHandler()
    added = not root.handlers
    if added:
        root.addHandler(null)
    cut = logging.getLogger("cutadapt")
    old_level = cut.level
    cut.setLevel(logging.WARNING)
    try:
        yield
    finally:
        cut.setLevel(old_level)
        if added:
            root.removeHandler(null)


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def _check_adapter(adapter: str, name: str) -> str:
    a = adapter.strip().upper()
    if not a or not set(a) <= _IUPAC:
        raise ConfigError(f"invalid adapter sequence {adapter!r}", where=name,
                          hint="give IUPAC nucleotides, e.g. AGATCGGAAGAGC")
    return a


def run_trim(
    sample: str,
    fastq_1: str | os.PathLike,
    fastq_2: str | os.PathLike | None,
    outdir: str | os.PathLike,
    threads: int = 1,
    *,
    adapter: str = TRUSEQ_ADAPTER,
    adapter_2: str | None = None,
    quality: int = 20,
    min_length: int = 18,
) -> dict:
    """Trim adapters and low-quality 3' ends; write trimmed FASTQ(s) and ``<sample>.trim.json``.

    Parameters
    ----------
    sample
        Sample id (output file prefix).
    fastq_1, fastq_2
        Input FASTQ (gzip or plain); ``fastq_2`` None for single-end.
    outdir
        Output folder (created).
    threads
        cutadapt cores (default: 1).
    adapter, adapter_2
        3' adapter of read 1 and read 2 (default: TruSeq ``AGATCGGAAGAGC`` for both).
    quality
        Phred cutoff for 3' quality trimming, cutadapt ``-q`` (default: 20).
    min_length
        Discard reads (pairs: a pair if either mate) shorter than this after trimming (default: 18).

    Returns
    -------
    dict
        The content of ``<sample>.trim.json``.

    Raises
    ------
    InputFormatError
        An input FASTQ is malformed, truncated, empty, or R1/R2 disagree.
    ConfigError
        Bad option values.
    """
    from cutadapt.cli import main as cutadapt_main

    if quality < 0 or quality > 93:
        raise ConfigError(f"--quality {quality} out of range", where=f"sample {sample}", hint="use 0-93")
    if min_length < 1:
        raise ConfigError(f"--min-length {min_length} must be >= 1", where=f"sample {sample}")
    adapter = _check_adapter(adapter, "--adapter")
    adapter_2 = _check_adapter(adapter_2, "--adapter-2") if adapter_2 else adapter
    paired = fastq_2 is not None
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    log.info("%s: validating input FASTQ", sample)
    before = fastq_stats(fastq_1, fastq_2)

    final = [outdir / f"{sample}_1.trimmed.fastq.gz"] + ([outdir / f"{sample}_2.trimmed.fastq.gz"] if paired else [])
    tmps: list[Path] = []
    try:
        for f in final:
            fd, name = tempfile.mkstemp(prefix=f".{f.name}.", suffix=".tmp.fastq.gz", dir=outdir)
            os.close(fd)
            tmps.append(Path(name))
        args = ["-a", adapter, "-q", str(quality), "-m", str(min_length), "-j", str(max(1, int(threads))),
                "-Z", "--quiet", "-o", str(tmps[0])]
        if paired:
            args += ["-A", adapter_2, "-p", str(tmps[1])]
        args += [str(fastq_1)] + ([str(fastq_2)] if paired else [])
        log.info("%s: cutadapt %s", sample, " ".join(args))
        with _quiet_cutadapt():
            try:
                stats = cutadapt_main(args)
            except SystemExit as exc:  # cutadapt reports its own errors and exits
                raise InputFormatError(f"cutadapt failed (exit {exc.code})", where=str(fastq_1),
                                       hint="rerun with --debug for cutadapt's message") from None
        js = stats.as_json()
        after = fastq_stats(tmps[0], tmps[1] if paired else None, allow_empty=True)
        mode = 0o666 & ~_umask()
        for t, f in zip(tmps, final, strict=True):
            t.chmod(mode)
            t.replace(f)
    finally:
        for t in tmps:
            t.unlink(missing_ok=True)

    rc = js["read_counts"]
    result = {
        "sample": sample,
        "reads_in": int(rc["input"]),
        "reads_out": int(rc["output"]),
        "bases_in": int(js["basepair_counts"]["input"]),
        "bases_out": int(js["basepair_counts"]["output"]),
        "reads_with_adapter": int(rc["read1_with_adapter"] or 0),
        "too_short": int(rc["filtered"].get("too_short") or 0),
        "mean_length_after": round(after.mean_length, 3),
        "mean_quality": round(after.mean_quality, 3),
        "gc_fraction": round(after.gc_fraction, 5),
        "duplication_fraction": round(after.duplication_fraction, 5),
        "paired": paired,
    }
    if result["reads_in"] != before.reads or after.reads != result["reads_out"]:
        raise InputFormatError(
            f"read counts disagree (validated {before.reads}, cutadapt read {result['reads_in']}, "
            f"wrote {result['reads_out']}, found {after.reads})", where=str(fastq_1),
            hint="the input may have changed during trimming; rerun")
    if result["reads_out"] == 0:
        log.warning("%s: no reads left after trimming (min length %d)", sample, min_length)
    write_json(outdir / f"{sample}.trim.json", result)
    log.info("%s: %d -> %d reads (%d with adapter, %d too short)", sample, result["reads_in"],
             result["reads_out"], result["reads_with_adapter"], result["too_short"])
    return result
