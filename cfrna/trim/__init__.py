"""Adapter and quality trimming with cutadapt (in-process), plus read-level QC.

:func:`trim_reads` validates the input FASTQ(s) completely first (so a bad file gives one clear
:class:`~cfrna.errors.InputFormatError` naming the file and record), runs cutadapt through its
library entry point ``cutadapt.cli.main`` (no subprocess), and writes ``<ID>_1.trimmed.fastq.gz``
(``_2`` for pairs) and ``<ID>.trim.json``.

``mean_quality``, ``gc_fraction`` and ``duplication_fraction`` are measured on the trimmed reads
(what the aligner sees); ``duplication_fraction`` is the fraction of the first 100,000 templates
whose exact sequence (both mates for pairs) occurred before. For pairs ``reads_*`` count read
pairs, ``bases_*`` count both mates, and ``reads_with_adapter`` counts pairs whose R1 had an
adapter (read-through of short cfRNA fragments shows in both mates).

UMIs (:mod:`cfrna.trim.umi`): with ``umi_pattern`` the UMI bases are moved into the read names
(``umi_tools extract`` string method) before adapter trimming, in the same stage; with
``umi_in_name`` the names are checked to carry one. ``<ID>.trim.json`` then also has
``umi_pattern``, ``umi_read``, ``umi_length``, ``distinct_umis`` and ``umi_source`` (``pattern`` or
``name``); ``bases_in`` counts the bases as given (UMI included), ``bases_out`` those written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cfrna.errors import CfrnaError, ConfigError, InputFormatError
from cfrna.io.atomic import write_json
from cfrna.io.fastq import fastq_stats
from cfrna.pipeline.layout import OutputLayout
from cfrna.trim.umi import extract_umis, name_umi_stats, resolve_umi

__all__ = ["trim_reads", "TRUSEQ_ADAPTER"]

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


def _sample_error(sample: str, fn, *args, **kwargs):
    """Call ``fn``; a :class:`CfrnaError` it raises gets the sample named in front of its message."""
    try:
        return fn(*args, **kwargs)
    except CfrnaError as exc:
        exc.message = f"sample {sample}: {exc.message}"
        exc.args = (exc.one_line(),)
        raise


def trim_reads(
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
    umi_pattern: str | None = None,
    umi_read: int | None = None,
    umi_in_name: bool = False,
    umi_separator: str = "_",
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
    umi_pattern, umi_read
        umi_tools string pattern (``N`` UMI base, ``X`` kept base) at the 5' end of read ``umi_read``
        (1 or 2; default 1, or the preset's), or a kit preset name (:data:`cfrna.trim.umi.KIT_PRESETS`).
        The UMI goes into both mates' names as ``id<umi_separator>UMI`` before adapter trimming.
    umi_in_name
        The UMIs are already in the read names (bcl-convert, fastp, umi_tools): check every read has one.
    umi_separator
        Separator between read id and UMI (default ``_`` as umi_tools; bcl-convert and fastp use ``:``).

    Returns
    -------
    dict
        The content of ``<sample>.trim.json``.

    Raises
    ------
    InputFormatError
        An input FASTQ is malformed, truncated, empty, or R1/R2 disagree.
    ConfigError
        Bad option values (an invalid UMI pattern, a read-2 UMI for single-end reads...).
    InputFormatError
        Also: a read shorter than the UMI pattern, a UMI with N, a name without a UMI with ``umi_in_name``.
    """
    from cutadapt.cli import main as cutadapt_main

    if quality < 0 or quality > 93:
        raise ConfigError(f"--quality {quality} out of range", where=f"sample {sample}", hint="use 0-93")
    if min_length < 1:
        raise ConfigError(f"--min-length {min_length} must be >= 1", where=f"sample {sample}")
    adapter = _check_adapter(adapter, "--adapter")
    adapter_2 = _check_adapter(adapter_2, "--adapter-2") if adapter_2 else adapter
    paired = fastq_2 is not None
    umi = resolve_umi(umi_pattern, umi_read, in_name=umi_in_name, sep=umi_separator, paired=paired,
                      where=f"sample {sample}: --umi-pattern")
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)

    log.info("%s: validating input FASTQ", sample)
    before = fastq_stats(fastq_1, fastq_2)

    umi_info: dict = {}
    tmps: list[Path] = []
    if umi.in_name:
        _n, umi_len, distinct = _sample_error(sample, name_umi_stats, fastq_1, sep=umi.sep)
        umi_info = {"umi_source": "name", "umi_pattern": None, "umi_read": None, "umi_length": umi_len,
                    "distinct_umis": distinct}
    elif umi.pattern is not None:
        ext = [outdir / f".{sample}_{i}.umi.{os.getpid()}.tmp.fastq" for i in ((1, 2) if paired else (1,))]
        tmps += ext
        log.info("%s: UMI %s on read %d into the read names", sample, umi.pattern, umi.read)
        try:
            ex = _sample_error(sample, extract_umis, fastq_1, fastq_2, ext[0], ext[1] if paired else None,
                               pattern=umi.pattern if umi.read == 1 else None,
                               pattern2=umi.pattern if umi.read == 2 else None, sep=umi.sep)
        except BaseException:
            for t in ext:
                t.unlink(missing_ok=True)
            raise
        fastq_1, fastq_2 = ext[0], (ext[1] if paired else None)
        umi_info = {"umi_source": "pattern", "umi_pattern": umi.pattern, "umi_read": umi.read,
                    "umi_length": ex["umi_length"], "distinct_umis": ex["distinct_umis"]}
        if umi.kit:
            umi_info.update(umi_kit=umi.kit, umi_clip=umi.clip)

    layout = OutputLayout.in_stage_folder("trim", outdir)
    final = [layout.trimmed_fastq(sample, mate) for mate in ((1, 2) if paired else (1,))]
    try:
        for f in final:
            fd, name = tempfile.mkstemp(prefix=f".{f.name}.", suffix=".tmp.fastq.gz", dir=outdir)
            os.close(fd)
            tmps.append(Path(name))
        out_tmps = tmps[-len(final):]
        args = ["-a", adapter, "-q", str(quality), "-m", str(min_length), "-j", str(max(1, int(threads))),
                "-Z", "--quiet", "-o", str(out_tmps[0])]
        if umi.clip:  # non-templated bases after the UMI (kit presets): cut before adapter trimming
            args += ["-u" if umi.read == 1 else "-U", str(umi.clip)]
        if paired:
            args += ["-A", adapter_2, "-p", str(out_tmps[1])]
        args += [str(fastq_1)] + ([str(fastq_2)] if paired else [])
        log.info("%s: cutadapt %s", sample, " ".join(args))
        with _quiet_cutadapt():
            try:
                stats = cutadapt_main(args)
            except SystemExit as exc:  # cutadapt reports its own errors and exits
                raise InputFormatError(f"cutadapt failed (exit {exc.code})", where=str(fastq_1),
                                       hint="rerun with --debug for cutadapt's message") from None
        js = stats.as_json()
        after = fastq_stats(out_tmps[0], out_tmps[1] if paired else None, allow_empty=True)
        mode = 0o666 & ~_umask()
        for t, f in zip(out_tmps, final, strict=True):
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
        "bases_in": int(before.bases),
        "bases_out": int(js["basepair_counts"]["output"]),
        "reads_with_adapter": int(rc["read1_with_adapter"] or 0),
        "too_short": int(rc["filtered"].get("too_short") or 0),
        "mean_length_after": round(after.mean_length, 3),
        "mean_quality": round(after.mean_quality, 3),
        "gc_fraction": round(after.gc_fraction, 5),
        "duplication_fraction": round(after.duplication_fraction, 5),
        "paired": paired,
        **umi_info,
    }
    if result["reads_in"] != before.reads or after.reads != result["reads_out"]:
        raise InputFormatError(
            f"read counts disagree (validated {before.reads}, cutadapt read {result['reads_in']}, "
            f"wrote {result['reads_out']}, found {after.reads})", where=str(fastq_1),
            hint="the input may have changed during trimming; rerun")
    if result["reads_out"] == 0:
        log.warning("%s: no reads left after trimming (min length %d)", sample, min_length)
    write_json(layout.trim_json(sample), result)
    log.info("%s: %d -> %d reads (%d with adapter, %d too short)", sample, result["reads_in"],
             result["reads_out"], result["reads_with_adapter"], result["too_short"])
    return result
