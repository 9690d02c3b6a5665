"""Stage function ``count`` (contract: :mod:`cfrna.pipeline.stages`).

The work is done by :func:`cfrna.count.counter.count_reads`; :class:`CountSettings`' fields are its
keyword options, passed through by name (a new option is a field here and an argument of the same
name in ``cfrna/count/_cli.py``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from cfrna.errors import ConfigError
from cfrna.pipeline.layout import OutputLayout, counts_sidecar
from cfrna.pipeline.stages import StageResult

__all__ = ["CountSettings", "run_count"]


@dataclass(frozen=True)
class CountSettings:
    """Options of ``count`` (featureCounts' options; defaults = featureCounts' defaults).

    Attributes
    ----------
    threads
        Decompression threads (default: 1).
    min_mapq
        Minimum mapping quality, ``-Q`` (default: 0).
    primary_only
        Count primary alignments only, ``--primary`` (default: False).
    multi_mapping
        Count multi-mapping reads, ``-M`` (default: False).
    fraction
        Fractional counts, ``--fraction`` (with ``multi_mapping`` and/or ``allow_multi_overlap``).
    allow_multi_overlap
        Count a read for every gene it overlaps, ``-O`` (default: False).
    feature_type, attribute
        GTF feature type ``-t`` and grouping attribute ``-g`` (default: exon, gene_id).
    ignore_dup
        Do not count fragments flagged duplicate, ``--ignoreDup`` (default: False).
    dedup, umi_sep
        Duplicate marking in the counting pass (none, position, directional, unique) and the
        separator before the UMI in read names (default: none, ``_``); see
        :func:`cfrna.count.counter.count_reads`.
    """

    threads: int = 1
    min_mapq: int = 0
    primary_only: bool = False
    multi_mapping: bool = False
    fraction: bool = False
    allow_multi_overlap: bool = False
    feature_type: str = "exon"
    attribute: str = "gene_id"
    ignore_dup: bool = False
    dedup: str = "none"
    umi_sep: str = "_"


def run_count(*, bam: str | os.PathLike, gtf: str | os.PathLike, sample: str | None = None, paired: bool = False,
              strandedness: str | None = None, align_json: str | os.PathLike | None = None,
              outdir: str | os.PathLike, settings: CountSettings = CountSettings(),
              out: str | os.PathLike | None = None, dedup_out: str | os.PathLike | None = None) -> StageResult:
    """Count one sample: ``<sample>.counts.tsv``, ``.counts.tsv.summary`` and ``.counts.tsv.stats.json`` in ``outdir``.

    Parameters
    ----------
    bam, gtf
        The sample's BAM and the annotation.
    sample
        Sample id: output prefix and the stats JSON's ``sample`` (default: the BAM name without
        ``.bam``; needed when ``out`` is not given).
    paired
        Count fragments of paired-end reads (default: False).
    strandedness, align_json
        The library strandedness (unstranded, forward, reverse), or the sample's ``align.json`` whose
        ``strandedness.used`` is taken; exactly one of the two.
    outdir
        The counts folder (``O/counts``).
    settings
        :class:`CountSettings` (default: its defaults).
    out
        Write the counts table to this path instead (``cfrna count --out``; the summary and stats
        files go beside it as ``<out>.summary`` and ``<out>.stats.json``).
    dedup_out
        Also write deduplicated counts here: without the duplicates ``settings.dedup`` marks, or with
        ``dedup`` none without flagged duplicates (default: not written).

    Returns
    -------
    StageResult
        ``summary``: ``{"summary": {category: n}, "stats": {...}, "records": n, "strandedness": s}``.
    """
    from cfrna.count import count_reads, strandedness_from

    if (strandedness is None) == (align_json is None):
        raise ConfigError("give the strandedness or the align.json to take it from (one of the two)",
                          where=f"sample {sample}" if sample else str(bam))
    if strandedness is None:
        strandedness = strandedness_from(str(align_json))
    if out is None:
        if sample is None:
            raise ConfigError("count needs the sample id to name its outputs", where=str(bam), hint="give sample=")
        out = OutputLayout.in_stage_folder("count", outdir).counts(sample)
    res = count_reads(bam, gtf, out, strandedness=strandedness, paired=paired, sample=sample, dedup_out=dedup_out,
                      **dataclasses.asdict(settings))
    outputs = {"counts": Path(out), "summary": counts_sidecar(out, "summary"), "stats": counts_sidecar(out, "stats")}
    if dedup_out is not None:
        outputs["dedup_counts"] = Path(dedup_out)
    warnings = []
    if res["summary"].get("Assigned", 0) == 0:
        warnings.append(f"{sample or bam}: no read was assigned to a gene")
    return StageResult(stage="count", outputs=outputs,
                       summary={"summary": res["summary"], "stats": res["stats"], "records": res["records"],
                                "strandedness": strandedness},
                       warnings=warnings)
