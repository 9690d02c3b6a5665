"""Alignment statistics from a BAM (same definitions for every aligner).

Counted on primary records (no secondary/supplementary):

- ``reads``: templates (reads, or read pairs counted once via read 1);
- ``mapped``: templates with at least one mapped mate; ``unmapped`` = reads - mapped;
- ``unique`` / ``multi``: mapped templates whose mapped mate(s) have NH == 1 (or no NH tag) /
  NH > 1 (read 1's NH, or read 2's when read 1 is unmapped);
- ``mapping_rate``, ``unique_fraction``, ``multi_fraction``: over ``reads``;
- ``spliced_fraction``, ``soft_clipped_fraction``: mapped primary reads (each mate counted) with
  an ``N`` / ``S`` CIGAR operation, over mapped primary reads;
- ``mismatch_rate``: sum of NM over aligned read bases (M/=/X/I) of mapped primary reads;
- ``insert_size_median``: median |TLEN| of proper pairs (read 1), None for single-end.
"""

from __future__ import annotations

import os

import numpy as np

from cfrna.errors import InputFormatError

_ALIGNED_OPS = (0, 1, 7, 8)  # M I = X


def bam_stats(bam: str | os.PathLike, *, sample: str = "", aligner: str = "") -> dict:
    """Compute the alignment statistics of ``bam`` (see the module docstring)."""
    import pysam

    reads = mapped = unique = multi = 0
    mapped_reads = spliced = clipped = 0
    nm_sum = aligned = 0
    paired = False
    inserts: list[int] = []
    try:
        fh = pysam.AlignmentFile(str(bam), "rb", check_sq=False)
    except (OSError, ValueError) as exc:
        raise InputFormatError(f"cannot read BAM ({exc})", where=str(bam)) from exc
    with fh:
        for r in fh.fetch(until_eof=True):
            flag = r.flag
            if flag & 0x900:
                continue
            is_paired = bool(flag & 1)
            paired = paired or is_paired
            unmapped = bool(flag & 4)
            if not unmapped:
                mapped_reads += 1
                cig = r.cigartuples or ()
                if any(op == 3 for op, _ in cig):
                    spliced += 1
                if any(op == 4 for op, _ in cig):
                    clipped += 1
                aligned += sum(n for op, n in cig if op in _ALIGNED_OPS)
                if r.has_tag("NM"):
                    nm_sum += int(r.get_tag("NM"))
            nh = int(r.get_tag("NH")) if not unmapped and r.has_tag("NH") else 1
            if not is_paired:
                reads += 1
                if not unmapped:
                    mapped += 1
                    unique += nh == 1
                    multi += nh > 1
                continue
            if flag & 64:
                reads += 1
                if not unmapped or not flag & 8:
                    mapped += 1
                if not unmapped:
                    unique += nh == 1
                    multi += nh > 1
                if flag & 2 and r.template_length != 0:
                    inserts.append(abs(r.template_length))
            if flag & 128 and not unmapped and flag & 8:
                # read 1 unmapped: the template's multiplicity comes from read 2
                unique += nh == 1
                multi += nh > 1

    def frac(a: int, b: int) -> float:
        return round(a / b, 6) if b else 0.0

    return {
        "sample": sample,
        "aligner": aligner,
        "reads": reads,
        "mapped": mapped,
        "unique": unique,
        "multi": multi,
        "unmapped": reads - mapped,
        "mapping_rate": frac(mapped, reads),
        "unique_fraction": frac(unique, reads),
        "multi_fraction": frac(multi, reads),
        "spliced_fraction": frac(spliced, mapped_reads),
        "soft_clipped_fraction": frac(clipped, mapped_reads),
        "mismatch_rate": round(nm_sum / aligned, 6) if aligned else 0.0,
        "insert_size_median": float(np.median(inserts)) if paired and inserts else None,
    }
