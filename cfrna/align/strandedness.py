"""Library strandedness from aligned reads, robust to genomic DNA.

Like RSeQC ``infer_experiment.py``, but a read is used only when it is uniquely aligned (NH == 1)
and either spliced (its blocks overlap annotated exons of genes on one strand only) or fully
exonic (every aligned block inside the merged exons of genes on one strand only). Intronic and
intergenic reads, which in cfRNA are largely genomic DNA and carry no strand information, are
ignored. Reads in exons of genes on both strands count as ``undetermined``.

Orientation convention (featureCounts ``-s``): ``forward`` = read 1 (or a single-end read) on the
gene's strand (``-s 1``); ``reverse`` = read 1 antisense to the gene, as in dUTP libraries
(``-s 2``); read 2 is counted with the opposite orientation. Calls use nf-core/rnaseq's thresholds:
a fraction >= 0.8 in one orientation -> ``forward``/``reverse``; |forward - reverse| < 0.1 ->
``unstranded``; anything else (or fewer than ``MIN_READS`` usable reads) -> ``undetermined``.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_right

import numpy as np

from cfrna.config import STRANDEDNESS

log = logging.getLogger(__name__)

STRANDED_THRESHOLD = 0.8
UNSTRANDED_THRESHOLD = 0.1
MIN_READS = 20
VALUES = STRANDEDNESS


def _merged_exons(annotation) -> dict[tuple[str, str], tuple[list[int], list[int]]]:
    """(chrom, strand) -> merged, sorted exon intervals as 0-based half-open (starts, ends)."""
    f = annotation.features
    out: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    chroms = f["chrom"].astype(str).to_numpy()
    strands = f["strand"].to_numpy()
    starts = f["start"].to_numpy() - 1
    ends = f["end"].to_numpy()
    for key in set(zip(chroms.tolist(), strands.tolist(), strict=True)):
        if key[1] not in "+-":
            continue
        m = (chroms == key[0]) & (strands == key[1])
        order = np.argsort(starts[m], kind="stable")
        s_, e_ = starts[m][order].tolist(), ends[m][order].tolist()
        ms: list[int] = []
        me: list[int] = []
        for s, e in zip(s_, e_, strict=True):
            if ms and s <= me[-1]:
                me[-1] = max(me[-1], e)
            else:
                ms.append(s)
                me.append(e)
        out[key] = (ms, me)
    return out


def _contained(iv, bs: int, be: int) -> bool:
    starts, ends = iv
    i = bisect_right(starts, bs) - 1
    return i >= 0 and ends[i] >= be


def _overlaps(iv, bs: int, be: int) -> bool:
    starts, ends = iv
    i = bisect_right(starts, be - 1) - 1
    return i >= 0 and ends[i] > bs


def call_strandedness(forward: float, reverse: float, reads_used: int) -> str:
    """nf-core/rnaseq's rule on the two orientation fractions."""
    if reads_used < MIN_READS:
        return "undetermined"
    if forward >= STRANDED_THRESHOLD:
        return "forward"
    if reverse >= STRANDED_THRESHOLD:
        return "reverse"
    if abs(forward - reverse) < UNSTRANDED_THRESHOLD:
        return "unstranded"
    return "undetermined"


def infer_strandedness(bam: str | os.PathLike, gtf, n_reads: int = 200_000) -> dict:
    """Infer strandedness from up to ``n_reads`` informative reads of ``bam``.

    Parameters
    ----------
    bam
        Aligned reads (any order; sorted BAMs are read from the start).
    gtf
        GTF path or an :class:`~cfrna.reference.gtf.Annotation`.
    n_reads
        Stop after this many usable (strand-informative) reads (default: 200000).

    Returns
    -------
    dict
        ``inferred`` (forward/reverse/unstranded/undetermined), ``forward_fraction``,
        ``reverse_fraction``, ``undetermined_fraction``, ``reads_used``.
    """
    import pysam

    from cfrna.reference.gtf import Annotation, read_gtf

    ann = gtf if isinstance(gtf, Annotation) else read_gtf(gtf)
    exons = _merged_exons(ann)
    fwd = rev = und = 0
    with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as fh:
        for r in fh.fetch(until_eof=True):
            if fwd + rev + und >= n_reads:
                break
            if r.flag & 0x904:  # unmapped, secondary, supplementary
                continue
            if r.has_tag("NH") and int(r.get_tag("NH")) > 1:
                continue
            chrom = r.reference_name
            plus, minus = exons.get((chrom, "+")), exons.get((chrom, "-"))
            if plus is None and minus is None:
                continue
            blocks = r.get_blocks()
            if not blocks:
                continue
            spliced = any(op == 3 for op, _ in (r.cigartuples or ()))
            hit = []
            for strand, iv in (("+", plus), ("-", minus)):
                if iv is None:
                    continue
                if spliced:
                    ok = any(_overlaps(iv, s, e) for s, e in blocks)
                else:
                    ok = all(_contained(iv, s, e) for s, e in blocks)
                if ok:
                    hit.append(strand)
            if not hit:
                continue
            if len(hit) == 2:
                und += 1
                continue
            read_plus = not r.is_reverse
            if r.is_paired and r.is_read2:
                read_plus = not read_plus
            if read_plus == (hit[0] == "+"):
                fwd += 1
            else:
                rev += 1
    used = fwd + rev + und
    ff = fwd / used if used else 0.0
    rf = rev / used if used else 0.0
    uf = und / used if used else 0.0
    return {"inferred": call_strandedness(ff, rf, used), "forward_fraction": round(ff, 5),
            "reverse_fraction": round(rf, 5), "undetermined_fraction": round(uf, 5), "reads_used": used}


def strandedness_block(declared: str, inferred: dict, *, sample: str = "") -> dict:
    """The align.json ``strandedness`` block: declared, inferred, fractions, ``used`` and ``agrees``.

    ``used`` is the inferred value when ``declared`` is ``auto`` (``unstranded`` with a warning when
    inference is undetermined: counting both strands loses nothing), else the declared value.
    ``agrees`` is None when either side is auto/undetermined. A disagreement is logged as a warning.
    """
    inf = inferred["inferred"]
    who = f"{sample}: " if sample else ""
    if declared == "auto":
        if inf in VALUES:
            used = inf
        else:
            used = "unstranded"
            log.warning("%sstrandedness could not be inferred (forward %.2f, reverse %.2f, %d reads); "
                        "counting as unstranded", who, inferred["forward_fraction"], inferred["reverse_fraction"],
                        inferred["reads_used"])
        agrees = None
    else:
        used = declared
        agrees = None if inf not in VALUES else declared == inf
        if agrees is False:
            log.warning("%sdeclared strandedness '%s' disagrees with the inferred '%s' (forward %.2f, reverse %.2f, "
                        "%d reads); check the samplesheet or use 'auto'", who, declared, inf,
                        inferred["forward_fraction"], inferred["reverse_fraction"], inferred["reads_used"])
    return {"declared": declared, "inferred": inf, "forward_fraction": inferred["forward_fraction"],
            "reverse_fraction": inferred["reverse_fraction"],
            "undetermined_fraction": inferred["undetermined_fraction"], "reads_used": inferred["reads_used"],
            "used": used, "agrees": agrees}
