"""Alignment stage: index building, mappy/STAR alignment, sorted BAM, stats and strandedness.

:func:`align_reads` writes ``<sample>.bam`` (coordinate-sorted), ``<sample>.bam.bai`` and
``<sample>.align.json`` (statistics of :mod:`cfrna.align.stats` and the ``strandedness`` block
of :mod:`cfrna.align.strandedness`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from cfrna.align.index import ALIGNERS, build_index, resolve_index
from cfrna.align.stats import bam_stats
from cfrna.align.strandedness import infer_strandedness, strandedness_block
from cfrna.config import STRANDEDNESS_MODES
from cfrna.errors import ConfigError, EmptyResultError, InputFormatError
from cfrna.io.atomic import atomic_path, write_json
from cfrna.io.fastq import EmptyFastqError, quick_check
from cfrna.pipeline.layout import OutputLayout

__all__ = ["align_reads", "build_index", "infer_strandedness", "bam_stats", "STRANDEDNESS"]

log = logging.getLogger(__name__)

STRANDEDNESS = STRANDEDNESS_MODES


_ABS_PATH = re.compile(r"(?<![\w.])/(?:[^\s/]+/)*([^\s/]+)")


def portable_header(text: str) -> str:
    """The SAM header with machine paths in @PG/@CO lines reduced to file names, sorted by coordinate."""
    out = []
    for line in text.splitlines():
        if line.startswith("@HD"):
            fields = [f for f in line.split("\t") if not f.startswith("SO:")]
            line = "\t".join([*fields, "SO:coordinate"])
        elif line.startswith(("@PG", "@CO")):
            line = _ABS_PATH.sub(lambda m: m.group(1), line)
        out.append(line)
    return "\n".join(out) + "\n"


def sort_and_index(unsorted: str | os.PathLike, bam: str | os.PathLike, *, threads: int = 1,
                   memory_per_thread: str = "256M") -> None:
    """Coordinate-sort ``unsorted`` (SAM or BAM) into ``bam`` with bounded memory, then index it.

    Absolute paths in the aligners' @PG/@CO command lines are reduced to file names, so outputs
    carry no machine paths. Both files are written atomically (``bam`` first, then ``bam.bai``).
    """
    import pysam

    bam = Path(bam)
    with atomic_path(bam) as tmp:
        prefix = tempfile.mkdtemp(prefix=f".{bam.name}.sort.", dir=bam.parent)
        try:
            with pysam.AlignmentFile(str(unsorted), check_sq=False) as fh:
                header = portable_header(str(fh.header))
            hdr_path = Path(prefix) / "header.sam"
            hdr_path.write_text(header)
            sorted_tmp = Path(prefix) / "sorted.bam"
            pysam.sort("--no-PG", "-@", str(max(1, threads)), "-m", memory_per_thread,
                       "-T", str(Path(prefix) / "chunk"), "-O", "bam", "-o", str(sorted_tmp), str(unsorted))
            pysam.samtools.reheader("--no-PG", str(hdr_path), str(sorted_tmp), save_stdout=str(tmp))
        except (pysam.SamtoolsError, ValueError) as exc:
            raise InputFormatError(f"sorting the alignments failed ({exc})", where=str(unsorted)) from exc
        finally:
            shutil.rmtree(prefix, ignore_errors=True)
    with atomic_path(str(bam) + ".bai") as tmp_bai:
        pysam.index("-b", "-o", str(tmp_bai), str(bam))


def align_reads(
    sample: str,
    fastq_1: str | os.PathLike,
    fastq_2: str | os.PathLike | None,
    fasta: str | os.PathLike,
    gtf: str | os.PathLike | None,
    outdir: str | os.PathLike,
    aligner: str = "mappy",
    index: str | os.PathLike | None = None,
    threads: int = 1,
    strandedness: str = "auto",
    *,
    two_pass: bool = False,
    junctions: bool = True,
    junction_scoring: bool = False,
    n_strand_reads: int = 200_000,
) -> dict:
    """Align one sample; write ``<sample>.bam``, ``.bam.bai`` and ``<sample>.align.json``.

    Parameters
    ----------
    sample
        Sample id (output prefix).
    fastq_1, fastq_2
        Reads (``fastq_2`` None for single-end).
    fasta, gtf
        Genome and annotation (``gtf`` None: no junctions, no strandedness inference).
    outdir
        Output folder.
    aligner
        ``"mappy"`` (default) or ``"star"``.
    index
        An index folder from :func:`build_index`, or a cache folder to build/reuse it in
        (default: ``$CFRNA_INDEX_CACHE`` or ``~/.cache/cfrna/index``).
    threads
        Alignment and sorting threads (default: 1).
    strandedness
        Declared library strandedness: auto, unstranded, forward or reverse (default: auto).
    two_pass
        STAR ``--twopassMode Basic`` (default: False).
    junctions
        mappy: use the GTF's annotated junctions as jumps, minimap2 ``-j`` (default: True).
    junction_scoring
        mappy: also score annotated splice sites in the alignment, minimap2 ``--junc-bed``
        (default: False; 1.5x the mapping CPU for about 3 alignments in 10,000 changed).
    n_strand_reads
        Informative reads used to infer strandedness (default: 200000).

    Returns
    -------
    dict
        The content of ``<sample>.align.json``.
    """
    if aligner not in ALIGNERS:
        raise ConfigError(f"unknown aligner {aligner!r}", where="--aligner", hint=f"choose one of {', '.join(ALIGNERS)}")
    if strandedness not in STRANDEDNESS:
        raise ConfigError(f"unknown strandedness {strandedness!r}", where=f"sample {sample}",
                          hint=f"choose one of {', '.join(STRANDEDNESS)}")
    if fastq_2 is not None and Path(fastq_1).resolve() == Path(fastq_2).resolve():
        raise ConfigError("--fastq-1 and --fastq-2 are the same file", where=f"sample {sample}")
    for fq in (fastq_1, fastq_2):
        if fq is not None and not Path(fq).is_file():
            raise InputFormatError("FASTQ file not found", where=str(fq), hint="check the path")
    threads = max(1, int(threads))
    try:
        quick_check(fastq_1, fastq_2)  # fail fast (and clearly) before loading or building an index
    except EmptyFastqError as exc:
        raise EmptyResultError(exc.message, where=exc.where, hint="no reads left for this sample (after trimming?)") from None
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    idx = resolve_index(index, fasta, gtf, aligner=aligner, threads=threads)
    layout = OutputLayout.in_stage_folder("align", outdir)
    bam = layout.bam(sample)
    work = Path(tempfile.mkdtemp(prefix=f".{sample}.align.", dir=outdir))
    try:
        if aligner == "mappy":
            from cfrna.align.mappy_runner import align_to_sam

            unsorted = work / "unsorted.sam"
            n = align_to_sam(idx, fastq_1, fastq_2, unsorted, threads=threads, junctions=junctions,
                             junction_scoring=junction_scoring,
                             command=f"cfrna align --sample {sample} --aligner mappy")
            log.info("%s: mappy aligned %d templates", sample, n)
        else:
            from cfrna.align.star import align_star

            unsorted = align_star(idx, fastq_1, fastq_2, work, threads=threads, two_pass=two_pass)
        sort_and_index(unsorted, bam, threads=threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stats = bam_stats(bam, sample=sample, aligner=aligner)
    if stats["reads"] == 0:
        raise EmptyResultError("no reads in the input", where=str(fastq_1), hint="check the FASTQ (after trimming)")
    if gtf is not None:
        inferred = infer_strandedness(bam, gtf, n_reads=n_strand_reads)
    else:
        inferred = {"inferred": "undetermined", "forward_fraction": 0.0, "reverse_fraction": 0.0,
                    "undetermined_fraction": 0.0, "reads_used": 0}
    stats["strandedness"] = strandedness_block(strandedness, inferred, sample=sample)
    stats["index"] = str(idx)
    if aligner == "mappy":  # how the annotated junctions were used (align.json records the choice)
        from cfrna.align.mappy_runner import junction_mode

        stats["annotated_junctions"] = junction_mode(idx, junctions=junctions, scoring=junction_scoring)
    write_json(layout.align_json(sample), stats)
    log.info("%s: %d reads, mapping rate %.3f, spliced %.3f, strandedness %s (inferred %s)", sample,
             stats["reads"], stats["mapping_rate"], stats["spliced_fraction"], stats["strandedness"]["used"],
             stats["strandedness"]["inferred"])
    return stats
