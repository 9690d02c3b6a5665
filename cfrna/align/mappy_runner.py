"""Spliced alignment with mappy (minimap2 2.31, preset ``splice:sr``) into an unsorted SAM.

Threads (:func:`cfrna._threads.run_ordered`): one reader thread parses and validates the FASTQ in batches;
``threads`` worker threads map batches and format SAM lines; the calling thread writes the batches in
input order (so output is deterministic). Two implementations share this and the SAM rules below: the native path of
:mod:`cfrna.align.mappy_native` (default: raw FASTQ chunks, minimap2 called from numba, no GIL)
and the Python path here (mappy's ``Aligner.map``, one ``ThreadBuffer`` a thread; used when the
native path is unavailable or ``CFRNA_MAPPY_PYTHON=1``, and as the reference in the tests).
minimap2 gets the read id as the query name (it seeds the tie-breaking between equal hits).

SAM conventions (same contract as the STAR path):

- every read is written once as a primary record, unmapped reads too (flag 4; an unmapped mate
  is placed at its mate's position), so templates in = templates in the BAM;
- mappy returns minimap2's secondary hits (``best_n``; the SAM writer of minimap2 hides them in
  ``splice:sr``). Secondaries whose score proxy (``2*mlen - blen``: matches minus edits) equals
  the primary's are written as secondary records (flag 256) and counted in ``NH``; ``HI`` numbers
  the alignments 1..NH. A read with NH > 1 gets MAPQ at most 1. Further primary-chain hits of the
  same read are supplementary (flag 2048);
- pairs: ``al.map(seq1, seq2)`` returns the hits of mate 1 then of mate 2 but ``read_num`` is 1
  for both; the mate of each hit is derived from that order and, when the layout is not the
  ordinary one-hit-per-mate pair, checked against the reference sequence;
- proper pair: both mates on the same contig, opposite strands, facing each other (FR) and a
  fragment span of at most ``MAX_FRAGMENT`` (introns included);
- tags: NH, HI, NM; CIGAR with soft clips (``S``).

Annotated junctions: the index folder's ``junctions.bed`` (BED12 from the GTF) is loaded into the
minimap2 index as jumps with ``mm_idx_jjump_read`` (what ``minimap2 -j`` does) and, with
``junction_scoring``, also for scoring with ``mm_idx_bed_read`` (``--junc-bed``); called through
ctypes on the mappy extension module, after checking the index pointer (k, w, number of sequences).
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

from cfrna._threads import run_ordered
from cfrna.align.mappy_native import index_pointer, open_native
from cfrna.errors import CfrnaError, InputFormatError
from cfrna.io.fastq import iter_batches, iter_fastq_chunks, read_id

log = logging.getLogger(__name__)

PRESET = "splice:sr"
MAX_FRAGMENT = 1_000_000
_MM_JUNC_ANNO = 0x1  # minimap2 mmpriv.h
_OPS = "MIDNSHP=X"
_COMP = str.maketrans("ACGTNacgtnRYKMSWBDHVrykmswbdhv", "TGCANtgcanYRMKSWVHDByrmkswvhdb")


def _rc(s: str) -> str:
    return s.translate(_COMP)[::-1]


def load_junctions(aligner, bed: str | os.PathLike, *, scoring: bool = False) -> bool:
    """Load annotated junctions (BED12) into a mappy index, like ``minimap2 -j`` (and ``--junc-bed``).

    mappy does not expose the junction loaders; the extension module exports them, and the Cython
    ``Aligner`` object stores its ``mm_idx_t *`` right after the Python object header. The pointer
    is accepted only if the index it points to reports the aligner's k, w and sequence count.

    - ``mm_idx_jjump_read`` (``-j``, always): annotated "jumps" let a read's short overhang be
      split across an annotated junction, single-end and paired;
    - ``mm_idx_bed_read`` (``--junc-bed``, with ``scoring=True``, or when the build has no jump
      loader): a bonus for annotated splice sites inside the spliced dynamic programming. On the
      1.29 Gb benchmark genome it costs 1.5x the mapping CPU and changes about 3 alignments in
      10,000 (docs/benchmarks.md, *Annotated junctions: jumps and scoring*).

    Returns True when the junctions were loaded; False (with a warning) when not possible.
    """
    import mappy

    try:
        lib = ctypes.CDLL(mappy.__file__)
        bed_read = lib.mm_idx_bed_read
    except (OSError, AttributeError) as exc:  # pragma: no cover - depends on the mappy build
        log.warning("annotated junctions not used: mappy exports no mm_idx_bed_read (%s)", exc)
        return False
    ptr = index_pointer(aligner)
    if not ptr:
        log.warning("annotated junctions not used: unexpected mappy object layout")
        return False
    jump = getattr(lib, "mm_idx_jjump_read", None)
    if scoring or jump is None:
        bed_read.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        bed_read.restype = ctypes.c_int
        bed_read(ptr, os.fsencode(bed), 1)
    if jump is not None:
        jump.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
        jump.restype = ctypes.c_int
        jump(ptr, os.fsencode(bed), _MM_JUNC_ANNO, -1)
    return True


def junction_mode(index_dir: str | os.PathLike, *, junctions: bool = True, scoring: bool = False) -> str:
    """How :func:`open_aligner` uses the index folder's annotated junctions: ``"none"`` (not asked
    for, or no non-empty ``junctions.bed``), ``"jumps"`` or ``"jumps+scoring"``."""
    bed = Path(index_dir) / "junctions.bed"
    if not (junctions and bed.is_file() and bed.stat().st_size > 0):
        return "none"
    return "jumps+scoring" if scoring else "jumps"


def open_aligner(index_dir: str | os.PathLike, *, threads: int = 1, junctions: bool = True,
                 junction_scoring: bool = False):
    """A ``mappy.Aligner`` on the index folder's ``genome.mmi`` (+ annotated junctions)."""
    import mappy

    index_dir = Path(index_dir)
    mmi = index_dir / "genome.mmi"
    if not mmi.is_file():
        raise InputFormatError("not a mappy index folder (no genome.mmi)", where=str(index_dir),
                               hint="build it with 'cfrna index --aligner mappy'")
    al = mappy.Aligner(fn_idx_in=str(mmi), preset=PRESET, n_threads=max(1, threads))
    if not al:
        raise InputFormatError("mappy could not load the index", where=str(mmi), hint="rebuild the index")
    if junction_mode(index_dir, junctions=junctions, scoring=junction_scoring) != "none":
        bed = index_dir / "junctions.bed"
        ok = load_junctions(al, bed, scoring=junction_scoring)
        log.info("annotated junctions %s from %s%s", "loaded" if ok else "NOT loaded", bed,
                 " (jumps and scoring)" if ok and junction_scoring else "")
    return al


def _proxy(h) -> int:
    return 2 * h.mlen - h.blen


def _left_clip(h, qlen: int, mate: int) -> int:
    """Soft clip before the alignment in reference order (see the module doc for mate 2)."""
    if mate == 0:
        return h.q_st if h.strand == 1 else qlen - h.q_en
    return qlen - h.q_en if h.strand == 1 else h.q_st


def _agreement(al, h, seq: str, mate: int) -> int:
    """Matching bases between the read's first aligned block and the reference (-1: impossible)."""
    L = len(seq)
    if h.q_en > L:
        return -1
    first_len, first_op = h.cigar[0] if h.cigar else (0, 0)
    n = min(first_len, 24) if first_op in (0, 7, 8) else 0
    if n == 0:
        return 0
    lc = _left_clip(h, L, mate)
    oriented = seq if h.strand == 1 else _rc(seq)
    read = oriented[lc:lc + n].upper()
    ref = al.seq(h.ctg, h.r_st, h.r_st + n) or ""
    return sum(1 for a, b in zip(read, ref, strict=False) if a == b)


def split_mates(al, hits: list, seq1: str, seq2: str) -> tuple[list, list]:
    """Assign the hits of ``al.map(seq1, seq2)`` to mate 1 and mate 2 (mate 1's hits come first)."""
    n = len(hits)
    if n == 0:
        return [], []
    if n == 2 and hits[0].is_primary and hits[1].is_primary and hits[0].ctg == hits[1].ctg \
            and hits[0].strand != hits[1].strand:
        return [hits[0]], [hits[1]]
    m1: list = []
    m2: list = []
    in_second = False
    for h in hits:
        a1 = _agreement(al, h, seq1, 0)
        a2 = _agreement(al, h, seq2, 1)
        if a2 > a1 or (a2 == a1 and in_second):
            in_second = True
            m2.append(h)
        else:
            m1.append(h)
    return m1, m2


class _Seg:
    """The hits of one read, classified for SAM output."""

    __slots__ = ("primary", "supp", "sec", "nh", "seq", "qual", "qname")

    def __init__(self, hits: list, seq: str, qual: str, qname: str):
        if not seq:  # an empty read (possible after trimming without a length filter)
            seq = qual = "*"
        self.seq, self.qual, self.qname = seq, qual, qname
        prim = [h for h in hits if h.is_primary]
        self.primary = prim[0] if prim else None
        self.supp = prim[1:]
        if self.primary is not None:
            best = _proxy(self.primary)
            self.sec = [h for h in hits if not h.is_primary and _proxy(h) >= best]
        else:
            self.sec = []
        self.nh = 1 + len(self.sec)


def _cigar(h, qlen: int, mate: int) -> str:
    lc = _left_clip(h, qlen, mate)
    rc = qlen - lc - (h.q_en - h.q_st)
    parts = [f"{lc}S"] if lc > 0 else []
    parts.extend(f"{ln}{_OPS[op]}" for ln, op in h.cigar)
    if rc > 0:
        parts.append(f"{rc}S")
    return "".join(parts)


def _records_se(seg: _Seg) -> list[str]:
    q, s, ql = seg.qname, seg.seq, seg.qual
    p = seg.primary
    if p is None:
        return [f"{q}\t4\t*\t0\t0\t*\t*\t0\t0\t{s}\t{ql}\n"]
    out = []
    rs, rq = _rc(s), ql[::-1]
    nh = seg.nh
    mapq = p.mapq if nh == 1 else min(p.mapq, 1)
    for h, extra in [(p, 0)] + [(h, 2048) for h in seg.supp] + [(h, 256) for h in seg.sec]:
        rev = h.strand == -1
        flag = extra | (16 if rev else 0)
        hi = 1 if extra != 256 else 2 + seg.sec.index(h)
        mq = mapq if extra != 256 else 0
        out.append(f"{q}\t{flag}\t{h.ctg}\t{h.r_st + 1}\t{mq}\t{_cigar(h, len(s), 0)}\t*\t0\t0\t"
                   f"{rs if rev else s}\t{rq if rev else ql}\tNH:i:{nh}\tHI:i:{hi}\tNM:i:{h.NM}\n")
    return out


def _records_pe(seg1: _Seg, seg2: _Seg) -> list[str]:
    out: list[str] = []
    p1, p2 = seg1.primary, seg2.primary
    proper = False
    tlen1 = tlen2 = 0
    if p1 is not None and p2 is not None and p1.ctg == p2.ctg:
        left = min(p1.r_st, p2.r_st)
        right = max(p1.r_en, p2.r_en)
        span = right - left
        if p1.strand != p2.strand:
            fwd, rev = (p1, p2) if p1.strand == 1 else (p2, p1)
            proper = fwd.r_st <= rev.r_en and span <= MAX_FRAGMENT
        if p1.r_st < p2.r_st or (p1.r_st == p2.r_st and (p1.strand == 1 or p2.strand == -1)):
            tlen1, tlen2 = span, -span
        else:
            tlen1, tlen2 = -span, span
    for mate, seg, other, tlen in ((0, seg1, seg2, tlen1), (1, seg2, seg1, tlen2)):
        q, s, ql = seg.qname, seg.seq, seg.qual
        base = 1 | (64 if mate == 0 else 128)
        op = other.primary
        if op is None:
            base |= 8
        elif op.strand == -1:
            base |= 32
        p = seg.primary
        if p is None:
            if op is None:
                out.append(f"{q}\t{base | 4}\t*\t0\t0\t*\t*\t0\t0\t{s}\t{ql}\n")
            else:  # placed at the mate's position (SAM convention); HI:1 pairs it with the mate's primary
                out.append(f"{q}\t{base | 4}\t{op.ctg}\t{op.r_st + 1}\t0\t*\t=\t{op.r_st + 1}\t0\t{s}\t{ql}\tHI:i:1\n")
            continue
        rs, rq = _rc(s), ql[::-1]
        nh = seg.nh
        mapq = p.mapq if nh == 1 else min(p.mapq, 1)
        pnext = p.r_st + 1 if op is None else op.r_st + 1
        for h, extra in [(p, 0)] + [(h, 2048) for h in seg.supp] + [(h, 256) for h in seg.sec]:
            rev = h.strand == -1
            flag = base | extra | (16 if rev else 0) | (2 if proper and extra == 0 else 0)
            hi = 1 if extra != 256 else 2 + seg.sec.index(h)
            mq = mapq if extra != 256 else 0
            rn = "=" if op is None or op.ctg == h.ctg else op.ctg
            tl = tlen if extra == 0 else 0
            out.append(f"{q}\t{flag}\t{h.ctg}\t{h.r_st + 1}\t{mq}\t{_cigar(h, len(s), mate)}\t{rn}\t{pnext}\t{tl}\t"
                       f"{rs if rev else s}\t{rq if rev else ql}\tNH:i:{nh}\tHI:i:{hi}\tNM:i:{h.NM}\n")
    return out


def _map_batch(al, tb, batch) -> str:
    lines: list[str] = []
    for r1, r2 in batch:
        qname = read_id(r1[0])
        if r2 is None:
            hits = list(al.map(r1[1], name=qname, buf=tb))
            if len(hits) == 1 and hits[0].is_primary:  # the common case, formatted directly
                h = hits[0]
                s, ql = r1[1], r1[2]
                if h.strand == 1:
                    flag = 0
                else:
                    flag, s, ql = 16, _rc(s), ql[::-1]
                lines.append(f"{qname}\t{flag}\t{h.ctg}\t{h.r_st + 1}\t{h.mapq}\t{_cigar(h, len(s), 0)}\t*\t0\t0\t"
                             f"{s}\t{ql}\tNH:i:1\tHI:i:1\tNM:i:{h.NM}\n")
                continue
            lines.extend(_records_se(_Seg(hits, r1[1], r1[2], qname)))
        else:
            hits = list(al.map(r1[1], r2[1], name=qname, buf=tb))
            h1, h2 = split_mates(al, hits, r1[1], r2[1])
            lines.extend(_records_pe(_Seg(h1, r1[1], r1[2], qname), _Seg(h2, r2[1], r2[2], qname)))
    return "".join(lines)


def sam_header(contigs: list[tuple[str, int]], *, program: str, version: str, command: str) -> str:
    lines = ["@HD\tVN:1.6\tSO:unsorted\n"]
    lines += [f"@SQ\tSN:{c}\tLN:{n}\n" for c, n in contigs]
    lines.append(f"@PG\tID:{program}\tPN:{program}\tVN:{version}\tCL:{command}\n")
    return "".join(lines)


def align_to_sam(
    index_dir: str | os.PathLike,
    fastq_1: str | os.PathLike,
    fastq_2: str | os.PathLike | None,
    sam_out: str | os.PathLike,
    *,
    threads: int = 1,
    batch_size: int = 2000,
    junctions: bool = True,
    junction_scoring: bool = False,
    native: bool = True,
    command: str = "cfrna align",
) -> int:
    """Align reads (pairs) with mappy into an unsorted SAM file; return the number of templates.

    ``native`` (default) uses :mod:`cfrna.align.mappy_native` when it passes its self-check;
    otherwise (or with ``native=False``) mappy's Python API maps batches of ``batch_size`` reads.

    Raises
    ------
    InputFormatError
        A FASTQ problem found by the reader thread (file and record named).
    """
    import mappy

    from cfrna.align.index import read_contigs

    threads = max(1, int(threads))
    al = open_aligner(index_dir, threads=threads, junctions=junctions, junction_scoring=junction_scoring)
    contigs = read_contigs(index_dir)
    mapper = open_native(al, PRESET, max_fragment=MAX_FRAGMENT, contigs=contigs) if native else None
    n_templates = [0]

    if mapper is not None:
        log.info("mappy: native path (minimap2 called from numba), %d thread(s)", threads)

        def batches():
            for chunk in iter_fastq_chunks(fastq_1, fastq_2):
                n_templates[0] += chunk.n
                yield chunk

        def make_worker():
            tb = mapper.thread_buffer()
            return (lambda chunk: mapper.map_chunk(tb, chunk)), (lambda: mapper.free_thread_buffer(tb))
    else:
        log.info("mappy: Python API path, %d thread(s)", threads)

        def batches():
            for batch in iter_batches(fastq_1, fastq_2, batch_size=batch_size):
                n_templates[0] += len(batch)
                yield batch

        def make_worker():
            tb = mappy.ThreadBuffer()
            return (lambda batch: _map_batch(al, tb, batch).encode()), (lambda: None)

    with open(sam_out, "wb") as fh:
        fh.write(sam_header(contigs, program="mappy", version=mappy.__version__, command=command).encode())
        try:
            run_ordered(batches(), make_worker, fh.write, threads=threads, name="cfrna-mappy")
        except CfrnaError:
            raise
        except Exception as exc:
            raise CfrnaError(f"mappy alignment failed: {exc!r}", where=str(fastq_1)) from exc
    return n_templates[0]
