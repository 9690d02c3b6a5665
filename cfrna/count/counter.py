"""Orchestration of ``cfrna count``: GTF -> gene index, BAM batches -> numba kernels -> outputs.

Assignment follows featureCounts 2.0.3 (verified against the binary, see ``tests/test_count_fc.py``):

* features of type ``-t`` grouped by ``-g`` into genes; a read (fragment) overlapping exons of
  exactly one gene (>= 1 base, on the compatible strand) is assigned; more than one gene is
  ``Unassigned_Ambiguity`` (``-O``: counted for each gene). Aligned blocks come from CIGAR
  M/=/X; D and N gaps do not overlap anything; soft clips and insertions are ignored. Strand is
  checked per feature, not per gene; a feature with strand ``.`` is never counted with
  ``forward`` and always with ``reverse`` (featureCounts compares it as a third strand value).
* order of checks: unmapped, ``--min-mapq`` (a fragment passes when any mapped mate passes),
  multi-mapping (NH > 1 on any mate; records without NH count as unique, so minimap2's secondary
  records are counted unless ``--primary``), ``--primary`` (secondary flag 0x100; supplementary
  records are counted like featureCounts does), no features, ambiguity.
* ``-M``: multi-mapping alignments are counted; ``--fraction``: featureCounts' fixed-point weights
  (units of 1/65536, integer division): 65536 // NH (largest NH of the mates) with ``-M``, then
  // (number of genes) with ``-O``.
* paired-end (``--paired`` = ``-p --countReadPairs``): mates are paired in a hash table by
  featureCounts' key (its ``SAM_pairer_get_read_full_name``): read name, HI tag, read 1's and read
  2's (chromosome, position) as each record states them, where an unmapped record's own position
  and a mate-unmapped record's mate position count as (-1, 0). The read-1/read-2 flags are not
  compared: two records with the same key pair (HISAT2 writes repeated secondary pairs without HI).
  Coordinate-sorted and name-sorted BAMs both work (memory: the mates waiting for their pair, i.e.
  pairs spanning the current position in a sorted BAM). An absent HI differs from ``HI:i:1``.
  Strand is checked per mate, as featureCounts does: a record's strand, reversed for read 2 (flag
  0x80), so the mates of a same-strand pair (flags 65/129, 113/177) are checked against opposite
  strands. Each mate votes once for each gene it overlaps; the gene with the most votes wins, a
  tie is ambiguous. A mate whose key never recurs leaves a single-mate fragment, counted like
  featureCounts counts it. Fragments whose mates are on different chromosomes are counted
  (featureCounts without ``-C``). For the QC tallies below the fragment strand is read 1's (the
  reversed read 2 when read 1 is unmapped).

QC tallies (``<out>.stats.json``, one pass, fragments for pairs, primary records only):

* ``primary_mapped``: fragments with a mapped, primary (not 0x100/0x800) record;
  ``unique``: those with NH <= 1 on every mate (or no NH tag).
* ``exonic_*``, ``intronic_*``, ``intergenic`` partition ``unique``: exonic when a mate overlaps
  an exon of any gene (either strand); intronic when not exonic but a mate lies in a gene span
  (first exon start .. last exon end); else intergenic. *Sense* means library-consistent: the
  fragment's library strand (read-1 strand for ``forward``, its opposite for ``reverse``) equals
  the strand of at least one overlapped gene. So for a reverse-stranded library a read 1 on the
  opposite strand of the gene is *sense*; genomic DNA gives sense and antisense equally. For
  ``unstranded`` libraries everything is counted as sense.
* ``spliced``: a mate has an N in its CIGAR; ``mito``: a mate maps to chrM/MT/M (see
  :data:`cfrna.reference.layout.MITO_NAMES`).
* ``duplicates``: primary mapped fragments with the same chromosome, start, strand (and mate
  chromosome/start for pairs) as an earlier one. Needs a coordinate-sorted BAM (header
  ``SO:coordinate``); ``null`` otherwise. A BAM that claims coordinate order but breaks it raises
  :class:`InputFormatError`.
* ``duplicates_flagged``: primary mapped fragments with a record flagged duplicate (0x400, e.g.
  by Picard MarkDuplicates); with ``ignore_dup`` these are ``Unassigned_Duplicate`` and the
  counts are featureCounts ``--ignoreDup``'s. The counts without them are kept in the same pass
  (``dedup_out``).
* ``three_prime_bias`` (QUAKE-style): per gene, the 3'-most exon is the feature with the largest
  end (``+`` strand) or smallest start (``-`` strand). Among genes with at least
  :data:`MIN_READS_3P` fragments assigned to them alone and more than one exon, the fraction of
  genes for which every such fragment lies entirely (all aligned blocks of all mates) inside that
  exon. ``null`` when no gene qualifies.
* ``genes_detected``: genes with a count > 0.

Duplicates (``dedup``, coordinate-sorted BAMs; :mod:`cfrna.count._dedup_kernels`), in the same
pass: ``position`` marks what Picard MarkDuplicates (2.27, defaults) flags: read ends keyed by
reference, unclipped 5' end and strand (pairs by both ends, ordered and oriented as Picard does),
the best sum of base qualities >= 15 kept (ties: tile/x/y from the read name, then file order),
fragments (single reads, reads with an unmapped mate) at a paired read's end all duplicates;
secondary/supplementary records and pairs whose mate never comes stay unmarked, as Picard leaves
them in a coordinate-sorted BAM. ``directional``/``unique`` deduplicate as ``umi_tools dedup``
(``--paired`` for pairs) does with the UMI after the last ``umi_sep`` of the read name: bundles by
umi_tools' read position (soft clips), strand and, for pairs, read 1's TLEN; per UMI the read with
the highest MAPQ (umi_tools draws among ties at random, cfrna takes the first); directional
networks (``n_a >= 2 n_b - 1``, one base apart) and their representative UMI as umi_tools picks
it. Reads umi_tools does not output (unmapped; for pairs read 2s without their read 1, pairs with
an unmapped mate) are not in the deduplicated counts. The deduplicated fragments are assigned by
the same kernel into their own counts and tallies (``dedup_out``, stats ``dedup``); the raw
counts are unchanged and the 0x400 flags play no part. Known difference: a template whose
primary mate pairs with a secondary record under featureCounts' key (HISAT2 secondary pairs
without HI) makes fragments mixing primary and secondary records, which stay unmarked.
Memory: the open duplicate groups (a group closes when the BAM has moved twice the longest read,
at least 1000 bases, past its last 5' end) and the mates whose pair is still ahead (for UMI pairs
also the groups after a read 1 still waiting for its mate); no index of read names.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

import numpy as np

from cfrna.config import DEDUP_MODES, STRAND_CODE
from cfrna.count import _dedup_kernels as D
from cfrna.count import _kernels as K
from cfrna.errors import ConfigError, EmptyResultError, InputFormatError
from cfrna.io.atomic import write_json, write_text
from cfrna.io.bam import Slot, read_header, stream_records
from cfrna.pipeline.layout import counts_sidecar
from cfrna.reference.layout import (
    MITO_NAMES,
    FeatureLayout,
    layout_from_annotation,
    load_layout,
    merge_intervals,
)

log = logging.getLogger(__name__)

#: featureCounts' summary categories, in its order
SUMMARY_CATEGORIES = (
    "Assigned", "Unassigned_Unmapped", "Unassigned_Read_Type", "Unassigned_Singleton",
    "Unassigned_MappingQuality", "Unassigned_Chimera", "Unassigned_FragmentLength", "Unassigned_Duplicate",
    "Unassigned_MultiMapping", "Unassigned_Secondary", "Unassigned_NonSplit", "Unassigned_NoFeatures",
    "Unassigned_Overlapping_Length", "Unassigned_Ambiguity",
)
STRANDEDNESS = STRAND_CODE
#: minimum fragments assigned to a gene for it to enter the 3' bias fraction
MIN_READS_3P = 5
_INITIAL_TABLE = 1 << 12


class GeneIndex:
    """Binned per-reference interval arrays for exons (merged per gene) and gene spans.

    Built from a :class:`~cfrna.reference.layout.FeatureLayout` for one BAM header: ``tid`` in
    the arrays is the BAM reference id.
    """

    def __init__(self, layout: FeatureLayout, references: list[str]):
        self.gene_ids = layout.gene_ids
        n_genes = layout.n_genes
        self.n_genes = n_genes
        tid_of = {name: i for i, name in enumerate(references)}
        n_ref = len(references)
        chrom_tid = np.array([tid_of.get(c, -1) for c in layout.chroms], dtype=np.int64)
        tid = chrom_tid[layout.f_chrom] if len(layout.f_chrom) else np.zeros(0, np.int64)
        start, end, gidx = layout.f_start, layout.f_end, layout.f_gene
        gtf_chroms = list(layout.chroms)
        matched = [c for c in gtf_chroms if c in tid_of]
        if not matched:
            raise InputFormatError(
                f"no chromosome of the GTF ({', '.join(gtf_chroms[:5])}{', …' if len(gtf_chroms) > 5 else ''}) "
                f"is a reference of the BAM ({', '.join(references[:5])}{', …' if len(references) > 5 else ''})",
                where=layout.path, hint="use the GTF of the genome the reads were aligned to (chr1 vs 1 naming?)",
            )
        unmatched = [c for c in gtf_chroms if c not in tid_of]
        if unmatched:
            log.warning("%d GTF chromosome(s) are not in the BAM and get no reads: %s", len(unmatched),
                        ", ".join(unmatched[:10]) + (" …" if len(unmatched) > 10 else ""))
        self.unmatched_chromosomes = unmatched
        self.gstrand = layout.gene_strand.astype(np.int8)  # +1/-1; 0 for '.'
        # exons merged per (gene, strand, tid); the index item is the hit code gene * 4 + strand
        # (0 '.', 1 '+', 2 '-'): featureCounts checks the strand of each feature, not of the gene
        keep = tid >= 0
        scode = layout.f_strand.astype(np.int64)
        ex = merge_intervals(tid[keep], gidx[keep] * 4 + scode[keep], start[keep], end[keep])
        self.n_exon_blocks = np.bincount(merge_intervals(tid[keep], gidx[keep], start[keep], end[keep])[1],
                                         minlength=n_genes)
        self.exon = _binned(*ex, n_ref)
        # spans per (gene, tid)
        sp = _spans(tid[keep], gidx[keep], start[keep], end[keep])
        self.span = _binned(*sp, n_ref)
        # 3'-most exon per gene
        tp_tid = np.full(n_genes, -1, np.int32)
        tp_s = np.zeros(n_genes, np.int32)
        tp_e = np.zeros(n_genes, np.int32)
        ft, fg, fs, fe = tid[keep], gidx[keep], start[keep], end[keep]
        minus = scode[keep] == 2
        # + strand: max end, then min start; - strand: min start, then max end
        key1 = np.where(minus, fs, -fe)
        key2 = np.where(minus, -fe, fs)
        order = np.lexsort((key2, key1, fg))
        firsts = order[np.r_[True, fg[order][1:] != fg[order][:-1]]] if len(order) else order
        tp_tid[fg[firsts]] = ft[firsts]
        tp_s[fg[firsts]] = fs[firsts]
        tp_e[fg[firsts]] = fe[firsts]
        self.tp = (tp_tid, tp_s, tp_e)
        self.tid_ok = np.zeros(max(n_ref, 1), np.bool_)
        self.tid_ok[np.unique(tid[keep])] = True
        self.mito_tid = np.array([r in MITO_NAMES for r in references] or [False], dtype=np.bool_)


def _spans(tid, gidx, start, end):
    if len(tid) == 0:
        z = np.zeros(0, np.int64)
        return z, z, z, z
    key = tid * (int(gidx.max()) + 1) + gidx
    uniq, inv = np.unique(key, return_inverse=True)
    s = np.full(len(uniq), np.iinfo(np.int64).max)
    e = np.zeros(len(uniq), np.int64)
    np.minimum.at(s, inv, start)
    np.maximum.at(e, inv, end)
    n = int(gidx.max()) + 1
    return uniq // n, uniq % n, s, e


def _binned(tid, item, start, end, n_ref):
    """CSR bin index: (iv_s, iv_e, iv_item, bin_off, bin_n, bin_ptr, bin_items)."""
    shift = K.BIN_SHIFT
    bin_n = np.zeros(max(n_ref, 1), np.int64)
    for t in np.unique(tid):
        bin_n[t] = int(end[tid == t].max() >> shift) + 1
    bin_off = np.zeros(max(n_ref, 1), np.int64)
    if n_ref > 1:
        bin_off[1:] = np.cumsum(bin_n)[:-1]
    total = int(bin_n.sum())
    # each interval goes into every bin it touches
    b0 = start >> shift
    b1 = end >> shift
    reps = (b1 - b0 + 1).astype(np.int64)
    iv = np.repeat(np.arange(len(start), dtype=np.int64), reps)
    within = np.arange(int(reps.sum()), dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
    gbin = bin_off[tid[iv]] + b0[iv] + within if len(iv) else np.zeros(0, np.int64)
    order = np.argsort(gbin, kind="stable")
    bin_items = iv[order].astype(np.int64)
    counts = np.bincount(gbin, minlength=total) if total else np.zeros(0, np.int64)
    bin_ptr = np.zeros(total + 1, np.int64)
    bin_ptr[1:] = np.cumsum(counts)
    return (start.astype(np.int64), end.astype(np.int64), item.astype(np.int64), bin_off, bin_n, bin_ptr,
            bin_items)


class _State:
    """Accumulators and the pending-mate table passed to the kernels."""

    def __init__(self, n_genes: int, table: int):
        self.counts2 = np.zeros((n_genes, 2), np.float64)  # raw, without flagged duplicates
        # summary categories then QC tallies; per gene: fragments assigned alone, of which inside the 3' exon
        self.acc = np.zeros(K.N_SUMMARY + K.N_STATS, np.int64)
        self.per_gene = np.zeros((n_genes, 2), np.int64)
        self.votes = np.zeros((2 * K.MAXH, 3), np.int64)  # gene, votes, last voting mate
        self.dup_state = np.array([-1, -1, 0, 0, 0, 0], np.int64)
        self.dup_keys = np.zeros(4096, np.int64)
        self._alloc(table)

    def _alloc(self, cap: int):
        self.t_state = np.zeros(cap, np.int8)
        self.t_key = np.zeros(cap, np.uint64)
        self.t_a = np.zeros(cap, np.int32)
        self.t_b = np.zeros(cap, np.int32)
        self.t_c = np.zeros(cap, np.int32)
        self.t_d = np.zeros(cap, np.int32)
        rows = cap + 2
        # mate slots: [flag, tid, pos, mapq, NH, spliced, n exon-gene hits, n span-gene hits], hits, 3' flags, spans
        self.m = (np.zeros((rows, 8), np.int64), np.zeros((rows, K.MAXH), np.int64),
                  np.zeros((rows, K.MAXH), np.int8), np.zeros((rows, K.MAXH), np.int64))

    @property
    def counts(self) -> np.ndarray:
        """Per-gene counts."""
        return self.counts2[:, 0]

    @property
    def counts_dedup(self) -> np.ndarray:
        """Per-gene counts without fragments flagged duplicate (featureCounts ``--ignoreDup``)."""
        return self.counts2[:, 1]

    @property
    def summary(self) -> np.ndarray:
        return self.acc[:K.N_SUMMARY]

    @property
    def stats(self) -> np.ndarray:
        return self.acc[K.N_SUMMARY:]

    @property
    def n_uni(self) -> np.ndarray:
        return self.per_gene[:, 0]

    @property
    def n_3p(self) -> np.ndarray:
        return self.per_gene[:, 1]

    @property
    def table(self):
        return (self.t_state, self.t_key, self.t_a, self.t_b, self.t_c, self.t_d)

    def grow(self):
        cap = len(self.t_state)
        new_cap = cap * 2
        old_table, old_m = self.table, self.m
        self._alloc(new_cap)
        n = K.rehash(*old_table, *self.table, *[x[:cap] for x in old_m], *self.m)
        self.dup_state[4] = n
        self.dup_state[5] = 0
        log.debug("pending-mate table: %d live entries, capacity %d", n, new_cap)


class _CountSlot(Slot):
    """Per-chunk working memory: the BAM slot, the index look-ups of its records (CSR), the
    local mate table and this slot's own accumulators (summed at the end)."""

    def __init__(self, chunk_bytes: int, n_genes: int):
        super().__init__(chunk_bytes)
        self.ev_off = np.zeros(1025, np.int64)
        self.ev_nex = np.zeros(1024, np.int32)
        self.ev_code = np.zeros(1 << 14, np.int64)
        self.ev_3p = np.zeros(1 << 14, np.int8)
        self.hits = np.zeros(K.MAXH, np.int64)
        self.left = np.zeros(1024, np.int8)
        self.table = np.zeros(2048, np.int32)
        self.counts2 = np.zeros((n_genes, 2), np.float64)
        self.acc = np.zeros(K.N_SUMMARY + K.N_STATS, np.int64)
        self.per_gene = np.zeros((n_genes, 2), np.int64)
        self.votes = np.zeros((2 * K.MAXH, 3), np.int64)
        self.m = (np.zeros((2, 8), np.int64), np.zeros((2, K.MAXH), np.int64), np.zeros((2, K.MAXH), np.int8),
                  np.zeros((2, K.MAXH), np.int64))

    def ensure_eval(self, n: int) -> None:
        if len(self.ev_nex) < n:
            self.ev_off = np.zeros(n + 1, np.int64)
            self.ev_nex = np.zeros(n, np.int32)
            self.left = np.zeros(n, np.int8)
        if len(self.table) < 2 * n:
            self.table = np.zeros(1 << int(2 * n - 1).bit_length(), np.int32)

    def grow_eval(self) -> None:
        cap = 2 * len(self.ev_code)
        self.ev_code = np.resize(self.ev_code, cap)
        self.ev_3p = np.resize(self.ev_3p, cap)


DEDUP_METHODS = DEDUP_MODES
_FIELD_ERRORS = {
    D.F_NO_UMI: ("has no UMI after the last {sep!r} of its name",
                 "extract UMIs into read names first (cfrna trim --umi / umi_tools extract), or set --umi-sep"),
    D.F_BAD_UMI: ("has a UMI with a base other than A/C/G/T",
                  "UMIs with N or other characters cannot be deduplicated; filter those reads first"),
    D.F_UMI_TOO_LONG: (f"has a UMI longer than {D.MAX_UMI} bases", "use UMIs of at most 31 bases"),
    D.F_UMI_LENGTH: ("has a UMI of another length than the reads before it",
                     "all UMIs of a BAM must have one length (umi_tools refuses mixed lengths too)"),
}


def _read_name(data: np.ndarray, off: int) -> str:
    """The name of the BAM record starting at byte ``off`` of ``data``."""
    l_name = int(data[off + 12])
    return bytes(data[off + 36:off + 36 + l_name - 1]).decode("ascii", "replace")


class _Dedup:
    """Duplicate marking / UMI deduplication state (:mod:`cfrna.count._dedup_kernels`): the pool
    of open duplicate groups, the pending mates and the accumulators of the deduplicated counts."""

    def __init__(self, method: str, umi_sep: str, opt: np.ndarray, index: GeneIndex, *, want_marks: bool,
                 bam: str):
        self.name = method
        self.method = D.METHODS[method]
        self.sep = umi_sep
        self.sep_byte = ord(umi_sep)
        self.bam = bam
        self.index = index
        self.ds = D.new_state()
        self.opt = opt.copy()
        self.opt[K.O_IGNDUP] = 0  # duplicates are what this pass marks, not the flags
        self.paired = bool(opt[K.O_PAIRED])
        n = index.n_genes
        self.counts2 = np.zeros((n, 2), np.float64)
        self.acc = np.zeros(K.N_SUMMARY + K.N_STATS, np.int64)
        self.per_gene = np.zeros((n, 2), np.int64)
        self.votes = np.zeros((2 * K.MAXH, 3), np.int64)
        self.want_marks = want_marks
        self.marks = np.zeros(1024 if want_marks else 1, np.int64)
        self.hist = np.zeros(1024, np.int64)
        self._rows(1024)
        self._members(1024)
        self._pending(1024 if self.paired else 2)

    # ---- growable stores
    def _rows(self, cap: int) -> None:
        old = getattr(self, "m", None)
        self.m = (np.zeros((cap, 8), np.int64), np.zeros((cap, K.MAXH), np.int64), np.zeros((cap, K.MAXH), np.int8),
                  np.zeros((cap, K.MAXH), np.int64))
        if old is None:
            self.rfree = np.arange(cap - 1, -1, -1, dtype=np.int64)
            self.ds[D.S_RFREE] = cap
            return
        n_old = old[0].shape[0]
        for a, b in zip(self.m, old, strict=True):
            a[:n_old] = b
        nfree = int(self.ds[D.S_RFREE])
        rfree = np.zeros(cap, np.int64)
        rfree[:nfree] = self.rfree[:nfree]
        rfree[nfree:nfree + cap - n_old] = np.arange(cap - 1, n_old - 1, -1)
        self.rfree = rfree
        self.ds[D.S_RFREE] = nfree + cap - n_old

    def _members(self, cap: int) -> None:
        def grow(a, shape, dtype=np.int64):
            new = np.zeros(shape, dtype)
            if a is not None:
                new[:a.shape[0]] = a
            return new
        g = getattr
        self.mkey = grow(g(self, "mkey", None), (cap, 6))
        self.mumi = grow(g(self, "mumi", None), cap)
        self.mscore = grow(g(self, "mscore", None), cap)
        self.mtie = grow(g(self, "mtie", None), (cap, 5))
        self.mclose = grow(g(self, "mclose", None), (cap, 2))
        self.mrow = grow(g(self, "mrow", None), (cap, 2))

    def _pending(self, cap: int) -> None:
        old = getattr(self, "ptab", None)
        self.ptab = (np.zeros(cap, np.int8), np.zeros(cap, np.uint64), np.zeros(cap, np.int32),
                     np.zeros(cap, np.int32), np.zeros(cap, np.int32), np.zeros(cap, np.int32),
                     np.zeros(cap, np.int64), np.zeros((cap, D.N_INFO), np.int64))
        if old is not None:
            self.ds[D.S_NPEND] = D.rehash_pending(*old, *self.ptab)
            self.ds[D.S_NTOMB] = 0

    def _grow(self, code: int) -> None:
        ds = self.ds
        if code == D.D_GROW_ROWS:
            self._rows(2 * self.m[0].shape[0])
        elif code == D.D_GROW_MEMBERS:
            self._members(2 * self.mkey.shape[0])
        elif code == D.D_GROW_PENDING:
            cap = len(self.ptab[0])
            self._pending(2 * cap if 4 * (int(ds[D.S_NPEND]) + 1) > cap else cap)
        elif code == D.D_GROW_HIST:
            self.hist = np.concatenate([self.hist, np.zeros(max(len(self.hist), int(ds[D.S_NMEM]) + 8), np.int64)])
        elif code == D.D_GROW_MARKS:
            need = int(ds[D.S_NMARK]) + 2 * int(ds[D.S_NMEM]) + 8
            self.marks = np.concatenate([self.marks, np.zeros(max(len(self.marks), need), np.int64)])

    def _kernel_state(self):
        return (self.ds, self.opt, self.index.gstrand, self.index.mito_tid, self.counts2, self.acc, self.per_gene,
                self.votes, self.mkey, self.mumi, self.mscore, self.mtie, self.mclose, self.mrow, self.rfree, *self.m)

    # ---- per chunk
    def fields(self, slot, rec) -> None:
        """Per-record fields of a chunk (any thread): 5' position, scores, name fields, UMI."""
        n = rec.n
        f = getattr(slot, "dedup_fields", None)
        if f is None or len(f[0]) < n:
            cap = max(n, 1 << 14)
            f = tuple(np.zeros(cap, np.int64) for _ in range(10))  # offset, then the kernel's 9 fields
            slot.dedup_fields = f
        err, where = D.record_fields(slot.data, n, self.method, self.sep_byte, *f)
        if err != D.F_OK:
            msg, hint = _FIELD_ERRORS[int(err)]
            name = _read_name(slot.data, int(f[0][int(where)]))
            if err == D.F_UMI_LENGTH:
                msg = f"has a UMI of {len(name.rsplit(self.sep, 1)[1])} bases, earlier reads {int(f[9][0])}"
            raise InputFormatError(f"read {name} {msg.format(sep=self.sep)}", where=self.bam, hint=hint)

    def records(self, slot, rec, base: int) -> None:
        """The file-order part for one chunk (records numbered from ``base``)."""
        f = slot.dedup_fields
        start = 0
        while True:
            nxt, code, where = D.dedup_records(
                start, rec.n, base, self.method, rec.flag, rec.tid, rec.pos, rec.mapq, rec.nh, rec.hi, rec.mtid,
                rec.mpos, rec.qhash, rec.has_n, slot.ev_off, slot.ev_nex, slot.ev_code, slot.ev_3p, *f[1:],
                *self._kernel_state(), *self.ptab, self.hist, self.marks, self.want_marks)
            if code == D.D_OK:
                return
            start = int(nxt)
            if code == D.D_UMI_LENGTH:
                name = _read_name(slot.data, int(f[0][int(where)]))
                raise InputFormatError(
                    f"read {name} has a UMI of {int(f[9][int(where)])} bases, earlier reads "
                    f"{int(self.ds[D.S_UMI_LEN])}", where=self.bam,
                    hint="all UMIs of a BAM must have one length (umi_tools refuses mixed lengths too)")
            if code == D.D_LATE:
                name = _read_name(slot.data, int(f[0][int(where)]))
                raise InputFormatError(
                    f"read {name} is clipped so far that its 5' end lies behind duplicate groups already "
                    "decided (they are kept open for twice the longest read before it, at least "
                    f"{D.MIN_WINDOW} bases)", where=self.bam,
                    hint="trim or filter such reads before counting with --dedup")
            self._grow(int(code))

    def finish(self) -> None:
        """End of the BAM: lone mates, then every open group."""
        while len(self.hist) < int(self.ds[D.S_NMEM]) + int(self.ds[D.S_NPEND]) + 4:
            self._grow(D.D_GROW_HIST)
        while self.want_marks and len(self.marks) - int(self.ds[D.S_NMARK]) < \
                2 * (int(self.ds[D.S_NMEM]) + int(self.ds[D.S_NPEND])) + 4:
            self._grow(D.D_GROW_MARKS)
        D.dedup_finish(self.method, *self._kernel_state(), self.ptab[0], self.ptab[6], self.ptab[7], self.hist,
                       self.marks, self.want_marks)

    # ---- results
    @property
    def counts(self) -> np.ndarray:
        return self.counts2[:, 0]

    def marked(self) -> np.ndarray:
        """Sorted file-order indices (0-based) of the records of duplicate fragments."""
        return np.sort(self.marks[:int(self.ds[D.S_NMARK])])

    def block(self) -> dict:
        """The ``dedup`` block of the stats JSON."""
        s = self.acc[K.N_SUMMARY:]
        frags = int(self.ds[D.S_FRAGS])
        dups = int(self.ds[D.S_DUPS])
        ks = np.flatnonzero(self.hist)
        return {
            "method": self.name,
            "fragments": frags,
            "duplicates": dups,
            "unique": frags - dups,
            "histogram": [[int(k), int(self.hist[k])] for k in ks],
            "summary": {k: int(v) for k, v in zip(SUMMARY_CATEGORIES, self.acc[:K.N_SUMMARY].tolist(), strict=True)},
            "categories": {
                "exonic_sense": int(s[K.T_EX_SENSE]), "exonic_antisense": int(s[K.T_EX_ANTI]),
                "intronic_sense": int(s[K.T_IN_SENSE]), "intronic_antisense": int(s[K.T_IN_ANTI]),
                "intergenic": int(s[K.T_INTERGENIC]), "spliced": int(s[K.T_SPLICED]), "mito": int(s[K.T_MITO]),
            },
        }


def count_bam(bam, annotation, *, strandedness: int, paired: bool, threads: int = 1, min_mapq: int = 0,
              primary_only: bool = False, multi_mapping: bool = False, fraction: bool = False,
              allow_multi_overlap: bool = False, ignore_dup: bool = False, chunk_bytes: int = 1 << 22,
              dedup: str = "none", umi_sep: str = "_", dedup_marks: bool = False) -> dict:
    """Count one BAM against a :class:`~cfrna.reference.layout.FeatureLayout` (or an
    :class:`~cfrna.reference.gtf.Annotation`); returns raw arrays and tallies.

    Chunks of the BAM are inflated, decoded and looked up in the gene index on ``threads``
    threads; the order-dependent part (mate pairing, duplicates, sort order, assignment) runs on
    one chunk at a time in file order (:func:`cfrna.io.bam.stream_records`), so any number of
    threads gives the same numbers. With ``dedup`` (see :func:`count_reads`) the same pass also
    marks duplicates and counts the deduplicated fragments (``result["dedup"]``, a
    :class:`_Dedup`); ``dedup_marks`` keeps the (0-based, file-order) indices of the records of
    duplicate fragments in ``result["dedup"].marked()``.
    """
    header = read_header(bam)
    if not header.references:
        raise InputFormatError("BAM header has no reference sequences (@SQ)", where=str(bam),
                               hint="the BAM has no alignments to a genome; re-create it with the aligner")
    layout = annotation if isinstance(annotation, FeatureLayout) else layout_from_annotation(annotation)
    index = GeneIndex(layout, header.references)
    sorted_coord = header.sort_order == "coordinate"
    if dedup != "none" and not sorted_coord:
        raise InputFormatError(f"--dedup {dedup} needs a coordinate-sorted BAM, but the header says "
                               f"SO:{header.sort_order}", where=str(bam),
                               hint="sort it with samtools sort -o sorted.bam in.bam")
    opt = np.zeros(K.N_OPT, np.int64)
    opt[K.O_STRAND] = strandedness
    opt[K.O_PAIRED] = int(paired)
    opt[K.O_MINQ] = int(min_mapq)
    opt[K.O_PRIMARY] = int(primary_only)
    opt[K.O_MULTI] = int(multi_mapping)
    opt[K.O_FRACTION] = int(fraction)
    opt[K.O_MULTIOVL] = int(allow_multi_overlap)
    opt[K.O_SORTED] = int(sorted_coord)
    opt[K.O_IGNDUP] = int(ignore_dup)
    st = _State(index.n_genes, _INITIAL_TABLE if paired else 2)
    dd = _Dedup(dedup, umi_sep, opt, index, want_marks=dedup_marks, bam=str(bam)) if dedup != "none" else None
    ex, sp = index.exon, index.span
    seen = {"records": 0, "paired_flag": 0}

    def lookup(slot: _CountSlot, rec) -> None:  # any thread, any order
        slot.ensure_eval(rec.n)
        start = 0
        while True:
            nxt, err, where = K.evaluate_records(
                start, rec.n, rec.flag, rec.tid, rec.blk_off, rec.nblk, rec.blk_start, rec.blk_end, index.tid_ok,
                *ex, *sp, *index.tp, slot.ev_off, slot.ev_nex, slot.ev_code, slot.ev_3p, slot.hits)
            if err == K.E_OK:
                break
            if err == K.E_EVAL_FULL:
                slot.grow_eval()
                start = int(nxt)
                continue
            w = int(where)
            raise InputFormatError(
                f"the record at {header.references[int(rec.tid[w])]}:{int(rec.pos[w]) + 1} overlaps more than "
                f"{K.MAXH} genes",
                where=str(bam),
                hint="the annotation has too many overlapping genes at this locus; use a gene-level GTF",
            )
        K.assign_local(rec.n, rec.flag, rec.tid, rec.pos, rec.mapq, rec.nh, rec.hi, rec.mtid, rec.mpos, rec.qhash,
                       rec.has_n, slot.ev_off, slot.ev_nex, slot.ev_code, slot.ev_3p, opt, index.gstrand,
                       index.mito_tid, slot.counts2, slot.acc, slot.per_gene, slot.votes, slot.table, slot.left,
                       *slot.m)
        if dd is not None:
            dd.fields(slot, rec)

    def assign(slot: _CountSlot, rec) -> None:  # one chunk at a time, in file order
        base = seen["records"]
        seen["records"] += rec.n
        if not seen["paired_flag"]:
            seen["paired_flag"] = int(np.count_nonzero(rec.flag[:rec.n] & 1))
            if seen["paired_flag"] and not paired:
                raise ConfigError("paired-end reads in the BAM, but --paired was not given", where=str(bam),
                                  hint="add --paired to count fragments (featureCounts refuses this too)")
        start = 0
        while True:
            nxt, err, where = K.count_records(
                rec.n, rec.flag, rec.tid, rec.pos, rec.mapq, rec.nh, rec.hi, rec.mtid, rec.mpos, rec.qhash,
                rec.has_n, slot.ev_off, slot.ev_nex, slot.ev_code, slot.ev_3p, slot.left, start, opt, index.gstrand,
                index.mito_tid, st.counts2, st.acc, st.per_gene, st.votes, st.dup_state, st.dup_keys, *st.table,
                *st.m)
            if err == K.E_OK:
                break
            if err == K.E_TABLE_FULL:
                st.grow()
                start = int(nxt)
                continue
            raise InputFormatError(
                f"BAM header says SO:coordinate but record {base + int(where) + 1} is out of order", where=str(bam),
                hint="sort it with samtools sort (or fix the header)",
            )
        if dd is not None:
            dd.records(slot, rec, base)

    slots: list[_CountSlot] = []

    def make_slot(size: int) -> _CountSlot:
        slots.append(_CountSlot(size, index.n_genes))
        return slots[-1]

    n_records = stream_records(bam, header, parallel=lookup, ordered=assign, threads=threads,
                               chunk_bytes=chunk_bytes, hash_names=paired, make_slot=make_slot)
    for slot in slots:  # chunk-local assignments
        st.counts2 += slot.counts2
        st.acc += slot.acc
        st.per_gene += slot.per_gene
    if paired and n_records and not seen["paired_flag"]:
        raise ConfigError("no paired-end reads in the BAM, but --paired was given", where=str(bam),
                          hint="drop --paired for single-end data (featureCounts refuses this too)")
    if paired:
        left = K.flush_pending(opt, index.gstrand, index.mito_tid, st.counts2, st.acc, st.per_gene, st.votes,
                               st.t_state, *st.m)
        if left:
            log.info("%d mate(s) without a record of the same pairing key (name, HI, mate positions) were "
                     "counted as single-mate fragments, as featureCounts does", left)
    if dd is not None:
        dd.finish()
    if n_records == 0:
        log.warning("%s contains no alignment records", bam)
    return {"index": index, "state": st, "records": n_records, "sorted": sorted_coord, "dedup": dd}


def _format_count(x: float, *, fraction: bool) -> str:
    if not fraction:
        return str(int(round(x)))
    if x == int(x):
        return str(int(x))
    return f"{x:.2f}"


def count_reads(
    bam: str | os.PathLike,
    gtf: str | os.PathLike,
    out: str | os.PathLike,
    *,
    strandedness: Literal["unstranded", "forward", "reverse"],
    paired: bool,
    threads: int = 1,
    min_mapq: int = 0,
    primary_only: bool = False,
    multi_mapping: bool = False,
    fraction: bool = False,
    allow_multi_overlap: bool = False,
    feature_type: str = "exon",
    attribute: str = "gene_id",
    sample: str | None = None,
    ignore_dup: bool = False,
    dedup_out: str | os.PathLike | None = None,
    dedup: Literal["none", "position", "directional", "unique"] = "none",
    umi_sep: str = "_",
    chunk_bytes: int = 1 << 22,
) -> dict:
    """Count reads (fragments for pairs) per gene exactly as featureCounts 2.0.3 does.

    Parameters
    ----------
    bam
        Input BAM (coordinate- or name-sorted; any order works for counting).
    gtf
        Annotation (plain or gzipped GTF).
    out
        Output counts table ``gene_id<TAB>count``; ``<out>.summary`` and ``<out>.stats.json`` are
        written next to it.
    strandedness
        ``unstranded`` (-s 0), ``forward`` (-s 1) or ``reverse`` (-s 2).
    paired
        Count fragments of paired-end reads (featureCounts ``-p --countReadPairs``).
    threads
        Decompression threads (default: 1).
    min_mapq
        Minimum mapping quality (``-Q``; default: 0).
    primary_only
        Count primary alignments only (``--primary``; default: False).
    multi_mapping
        Count multi-mapping reads (``-M``; default: False).
    fraction
        Fractional counts (``--fraction``; requires ``multi_mapping`` or ``allow_multi_overlap``).
    allow_multi_overlap
        Count a read for every gene it overlaps (``-O``; default: False).
    feature_type, attribute
        GTF feature type (``-t``) and grouping attribute (``-g``).
    sample
        Sample name for the stats JSON (default: the BAM file name without ``.bam``).
    ignore_dup
        Fragments with a record flagged duplicate (0x400, e.g. by Picard MarkDuplicates) are not
        counted: ``Unassigned_Duplicate`` (featureCounts ``--ignoreDup``; default: False).
    dedup_out
        Also write deduplicated counts here (``gene_id<TAB>count``), from the same pass (default:
        not written): with ``dedup="none"`` the counts without flagged duplicates (what
        ``--ignoreDup`` would count), else the counts without the duplicates ``dedup`` marks.
    dedup
        Mark duplicates in the counting pass (coordinate-sorted BAM; default: ``none``):
        ``position`` as Picard MarkDuplicates does (5' ends and strands, best sum of base
        qualities kept), ``directional`` / ``unique`` as ``umi_tools dedup --method ...`` does
        with the UMI in the read name (``--paired`` for pairs). The raw counts are unchanged; the
        stats JSON gets a ``dedup`` block.
    umi_sep
        Separator before the UMI at the end of read names (umi_tools ``--umi-separator``; default ``_``).
    chunk_bytes
        Uncompressed bytes per chunk of the BAM (whole BGZF blocks, at least 64 KiB; default 4 MiB).

    Returns
    -------
    dict
        ``{"summary": {category: n}, "stats": {...}, "counts": path, "records": n}``.

    Raises
    ------
    ConfigError
        Invalid option values.
    InputFormatError
        Corrupt, truncated or non-BAM input; GTF chromosomes absent from the BAM.
    EmptyResultError
        The BAM has no records at all.
    """
    if strandedness not in STRANDEDNESS:
        raise ConfigError(f"unknown strandedness {strandedness!r}", where="--strandedness",
                          hint="use unstranded, forward or reverse")
    if fraction and not (multi_mapping or allow_multi_overlap):
        raise ConfigError("--fraction needs -M/--multi-mapping or -O/--allow-multi-overlap", where="--fraction",
                          hint="add -M or -O, or drop --fraction")
    if min_mapq < 0 or min_mapq > 255:
        raise ConfigError(f"--min-mapq {min_mapq} is outside 0..255", where="--min-mapq")
    if threads < 1:
        raise ConfigError(f"--threads {threads} must be >= 1", where="--threads")
    if dedup not in DEDUP_METHODS:
        raise ConfigError(f"unknown dedup method {dedup!r}", where="--dedup", hint="use " + ", ".join(DEDUP_METHODS))
    if len(umi_sep) != 1 or not umi_sep.isascii():
        raise ConfigError(f"--umi-sep {umi_sep!r} must be one ASCII character", where="--umi-sep")
    bam = Path(bam)
    out = Path(out)
    if not bam.exists():
        raise InputFormatError("BAM file not found", where=str(bam), hint="check the --bam path")
    annotation = load_layout(gtf, feature_type=feature_type, attribute=attribute)
    res = count_bam(bam, annotation, strandedness=STRANDEDNESS[strandedness], paired=paired, threads=threads,
                    min_mapq=min_mapq, primary_only=primary_only, multi_mapping=multi_mapping, fraction=fraction,
                    allow_multi_overlap=allow_multi_overlap, ignore_dup=ignore_dup, chunk_bytes=chunk_bytes,
                    dedup=dedup, umi_sep=umi_sep)
    if res["records"] == 0:
        raise EmptyResultError("BAM has no alignment records", where=str(bam),
                               hint="check the alignment step produced reads")
    index, st = res["index"], res["state"]
    lines = [f"{g}\t{_format_count(c, fraction=fraction)}" for g, c in zip(index.gene_ids, st.counts.tolist(),
                                                                        strict=True)]
    write_text(out, "gene_id\tcount\n" + "\n".join(lines) + "\n")
    if dedup_out is not None:
        dcounts = st.counts_dedup if res["dedup"] is None else res["dedup"].counts
        dd = [f"{g}\t{_format_count(c, fraction=fraction)}" for g, c in zip(index.gene_ids, dcounts.tolist(),
                                                                          strict=True)]
        write_text(dedup_out, "gene_id\tcount\n" + "\n".join(dd) + "\n")
    summary = {k: int(v) for k, v in zip(SUMMARY_CATEGORIES, st.summary.tolist(), strict=True)}
    write_text(counts_sidecar(out, "summary"), f"Status\t{Path(bam).name}\n" + "".join(f"{k}\t{v}\n" for k, v in summary.items()))
    stats = _stats(res, sample=sample or bam.name.removesuffix(".bam"), strandedness=strandedness, paired=paired)
    write_json(counts_sidecar(out, "stats"), stats)
    log.info("%s: %d records, %d assigned (%s), %d genes detected", bam, res["records"], summary["Assigned"],
             "fragments" if paired else "reads", stats["genes_detected"])
    return {"summary": summary, "stats": stats, "counts": str(out), "records": res["records"]}


def _stats(res: dict, *, sample: str, strandedness: str, paired: bool) -> dict:
    index, st = res["index"], res["state"]
    s = st.stats
    multi_exon = index.n_exon_blocks > 1
    eligible = (st.n_uni >= MIN_READS_3P) & multi_exon
    n_elig = int(eligible.sum())
    bias = float((st.n_3p[eligible] == st.n_uni[eligible]).sum() / n_elig) if n_elig else None
    return {
        "sample": sample,
        "strandedness": strandedness,
        "paired": bool(paired),
        "primary_mapped": int(s[K.T_PRIMARY]),
        "unique": int(s[K.T_UNIQUE]),
        "exonic_sense": int(s[K.T_EX_SENSE]),
        "exonic_antisense": int(s[K.T_EX_ANTI]),
        "intronic_sense": int(s[K.T_IN_SENSE]),
        "intronic_antisense": int(s[K.T_IN_ANTI]),
        "intergenic": int(s[K.T_INTERGENIC]),
        "spliced": int(s[K.T_SPLICED]),
        "mito": int(s[K.T_MITO]),
        "duplicates": int(s[K.T_DUPS]) if res["sorted"] else None,
        "duplicates_flagged": int(s[K.T_DUP_FLAGGED]),
        "three_prime_bias": bias,
        "genes_detected": int((st.counts > 0).sum()),
        "dedup": res["dedup"].block() if res.get("dedup") is not None else None,
    }


def strandedness_from(align_json: str) -> str:
    """The strandedness `cfrna align` decided to use (inferred for `auto` samples)."""
    import json

    try:
        info = json.loads(Path(align_json).read_text(encoding="utf-8"))
        used = (info.get("strandedness") or {}).get("used")
    except (OSError, ValueError, AttributeError) as exc:
        raise InputFormatError(f"cannot read the strandedness block ({exc})", where=align_json,
                               hint="give the <sample>.align.json written by `cfrna align`") from None
    if used not in STRAND_CODE:
        # inconclusive inference for an `auto` sample: count sense and antisense (docs/usage.md)
        log.warning("%s: strandedness could not be inferred (%s); counting as unstranded", align_json, used)
        return "unstranded"
    return used
