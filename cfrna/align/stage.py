"""Stage functions ``index`` and ``align`` (contract: :mod:`cfrna.pipeline.stages`).

The work is done by :func:`cfrna.align.index.build_index` and :func:`cfrna.align.align_reads`; the
settings' fields are their keyword options, passed through by name.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from cfrna.align.index import ALIGNERS
from cfrna.pipeline.layout import OutputLayout
from cfrna.pipeline.stages import StageResult

DEFAULT_ALIGNER = ALIGNERS[0]

__all__ = ["AlignSettings", "IndexSettings", "run_align", "run_index"]


@dataclass(frozen=True)
class IndexSettings:
    """Options of ``index``.

    Attributes
    ----------
    aligner
        ``mappy`` or ``star`` (default: mappy).
    threads
        Threads for building (default: 1).
    sjdb_overhang
        STAR ``--sjdbOverhang`` = read length - 1 (default: 100).
    """

    aligner: str = DEFAULT_ALIGNER
    threads: int = 1
    sjdb_overhang: int = 100


def run_index(*, fasta: str | os.PathLike, gtf: str | os.PathLike | None = None, outdir: str | os.PathLike,
              settings: IndexSettings = IndexSettings()) -> StageResult:
    """Build (or reuse) the aligner index of ``fasta`` (+ ``gtf`` junctions) in the cache folder ``outdir``.

    The index goes to ``outdir/<aligner>-<content hash>/`` and is reused when a complete one with the
    same key is there. ``outputs["index"]`` is that folder.
    """
    from cfrna.align.index import build_index

    path = build_index(fasta, gtf, outdir, **dataclasses.asdict(settings))
    return StageResult(stage="index", outputs={"index": Path(path)},
                       summary={"aligner": settings.aligner, "index": str(path)})


@dataclass(frozen=True)
class AlignSettings:
    """Options of ``align`` (the keyword options of :func:`cfrna.align.align_reads`).

    Attributes
    ----------
    aligner
        ``mappy`` or ``star`` (default: mappy).
    threads
        Alignment and sorting threads (default: 1).
    two_pass
        STAR ``--twopassMode Basic`` (default: False).
    junctions
        mappy: use the GTF's annotated junctions as jumps, minimap2 ``-j`` (default: True).
    junction_scoring
        mappy: also score annotated splice sites in the alignment, minimap2 ``--junc-bed``
        (default: False; 1.5x the mapping CPU for about 3 alignments in 10,000 changed).
    n_strand_reads
        Informative reads used to infer strandedness (default: 200000).
    """

    aligner: str = DEFAULT_ALIGNER
    threads: int = 1
    two_pass: bool = False
    junctions: bool = True
    junction_scoring: bool = False
    n_strand_reads: int = 200_000


def run_align(*, sample: str, fastq_1: str | os.PathLike, fastq_2: str | os.PathLike | None = None,
              fasta: str | os.PathLike, gtf: str | os.PathLike | None = None,
              index: str | os.PathLike | None = None, strandedness: str = "auto",
              outdir: str | os.PathLike, settings: AlignSettings = AlignSettings()) -> StageResult:
    """Align one sample: ``<sample>.bam``, ``.bam.bai`` and ``<sample>.align.json`` in ``outdir``.

    Parameters
    ----------
    sample
        Sample id (output prefix).
    fastq_1, fastq_2
        Reads (``fastq_2`` None for single-end).
    fasta, gtf
        Genome and annotation (``gtf`` None: no junctions, no strandedness inference).
    index
        An index folder from ``run_index``, or a cache folder to build/reuse it in (default:
        ``$CFRNA_INDEX_CACHE`` or ``~/.cache/cfrna/index``).
    strandedness
        The sample's declared strandedness: auto, unstranded, forward or reverse (default: auto).
    outdir
        The alignment folder (``O/alignment``).
    settings
        :class:`AlignSettings` (default: its defaults).

    Returns
    -------
    StageResult
        ``summary`` is the content of ``<sample>.align.json``.
    """
    from cfrna.align import align_reads

    stats = align_reads(sample, fastq_1, fastq_2, fasta, gtf, outdir, index=index, strandedness=strandedness,
                        **dataclasses.asdict(settings))
    lay = OutputLayout.in_stage_folder("align", outdir)
    warnings = []
    block = stats.get("strandedness") or {}
    if block.get("agrees") is False:
        warnings.append(f"sample {sample}: declared strandedness {block.get('declared')} but inferred "
                        f"{block.get('inferred')}")
    return StageResult(stage="align",
                       outputs={"bam": lay.bam(sample), "bai": lay.bai(sample), "align_json": lay.align_json(sample)},
                       summary=stats, warnings=warnings)
