"""Stage function ``trim`` (contract: :mod:`cfrna.pipeline.stages`).

The work is done by :func:`cfrna.trim.trim_reads`; :class:`TrimSettings`' fields are its keyword
options, passed through by name (a new option is a field here and an argument of the same name in
``cfrna/trim/_cli.py``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from cfrna.pipeline.layout import OutputLayout
from cfrna.pipeline.stages import StageResult
from cfrna.trim import TRUSEQ_ADAPTER

__all__ = ["TrimSettings", "run_trim"]


@dataclass(frozen=True)
class TrimSettings:
    """Options of ``trim`` (the keyword options of :func:`cfrna.trim.trim_reads`).

    Attributes
    ----------
    threads
        cutadapt cores (default: 1).
    adapter, adapter_2
        3' adapter of read 1 and read 2 (default: TruSeq ``AGATCGGAAGAGC``; read 2: same as read 1).
    quality
        Phred cutoff for 3' quality trimming (default: 20).
    min_length
        Minimum length after trimming (default: 18).
    umi_pattern, umi_read, umi_in_name, umi_separator
        UMIs (docs/usage.md, "UMIs and low-input kits"; default: none).
    """

    threads: int = 1
    adapter: str = TRUSEQ_ADAPTER
    adapter_2: str | None = None
    quality: int = 20
    min_length: int = 18
    umi_pattern: str | None = None
    umi_read: int | None = None
    umi_in_name: bool = False
    umi_separator: str = "_"


def run_trim(*, sample: str, fastq_1: str | os.PathLike, fastq_2: str | os.PathLike | None = None,
             outdir: str | os.PathLike, settings: TrimSettings = TrimSettings()) -> StageResult:
    """Trim one sample: ``<sample>_1.trimmed.fastq.gz`` (``_2`` for pairs) and ``<sample>.trim.json`` in ``outdir``.

    Parameters
    ----------
    sample
        Sample id (output prefix).
    fastq_1, fastq_2
        Input FASTQ (gzip or plain); ``fastq_2`` None for single-end.
    outdir
        The trimmed-reads folder (``O/trimmed``).
    settings
        :class:`TrimSettings` (default: its defaults).

    Returns
    -------
    StageResult
        ``summary`` is the content of ``<sample>.trim.json``.
    """
    from cfrna.trim import trim_reads

    stats = trim_reads(sample, fastq_1, fastq_2, outdir, **dataclasses.asdict(settings))
    lay = OutputLayout.in_stage_folder("trim", outdir)
    outputs = {"trim_1": lay.trimmed_fastq(sample, 1)}
    if fastq_2 is not None:
        outputs["trim_2"] = lay.trimmed_fastq(sample, 2)
    outputs["trim_json"] = lay.trim_json(sample)
    warnings = [f"sample {sample}: no reads left after trimming"] if stats["reads_out"] == 0 else []
    return StageResult(stage="trim", outputs=outputs, summary=stats, warnings=warnings)
