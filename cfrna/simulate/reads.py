"""Fragments and reads: vectorised sampling of cfRNA library fragments and FASTQ writing.

All molecules a fragment can come from are laid end to end in one "molecule space" (codes 0-3, in
the molecule's 5'->3' orientation): mature transcripts (mRNA, chrM and rRNA genes), pre-mRNA (the
gene's genomic span) and both strands of every chromosome (gDNA). A fragment is (offset, length)
in that space; reads are gathered with numpy fancy indexing, never a per-base Python loop.

Read names carry the truth: ``<sample>:<n>:<source>:<gene_id|->:<chrom>:<start>-<end>:<strand>``
with ``source`` in mrna, pre, mito, rrna, gdna; start-end is the fragment's genomic span (1-based,
inclusive; for spliced fragments the span includes the introns) and strand the molecule's strand.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass

import numpy as np

from cfrna.io.atomic import atomic_open
from cfrna.simulate.genome import BASES, GenomeModel
from cfrna.simulate.model import LibraryParams

log = logging.getLogger(__name__)

SOURCES = ("mrna", "pre", "mito", "rrna", "gdna")
#: TruSeq read-through: adapter, index and flow-cell sequence as read after a short insert
ADAPTER_R1 = "AGATCGGAAGAGCACACGTCTGAACTCCAGTCACATCACGATCTCGTATGCCGTCTTCTGCTTG"
ADAPTER_R2 = "AGATCGGAAGAGCGTCGTGTAGGGAAAGAGTGTAGATCTCGGTGGTCGCCGTATCATTAAAAAA"
MIN_FRAGMENT = 40
MAX_FRAGMENT = 600
SUBSTITUTION_RATE = 0.003
_CODE = np.full(256, 0, dtype=np.uint8)
_CODE[np.frombuffer(b"ACGT", dtype=np.uint8)] = np.arange(4, dtype=np.uint8)


def _codes(s: str) -> np.ndarray:
    return _CODE[np.frombuffer(s.encode(), dtype=np.uint8)]


@dataclass
class MoleculeSpace:
    """Molecules end to end plus the segment table mapping space positions to the genome."""

    space: np.ndarray
    seg_space: np.ndarray
    seg_chrom: np.ndarray
    seg_gstart: np.ndarray
    seg_gend: np.ndarray
    seg_minus: np.ndarray
    tx_off: np.ndarray
    tx_len: np.ndarray
    pre_off: np.ndarray
    pre_len: np.ndarray
    chr_off_plus: np.ndarray
    chr_off_minus: np.ndarray

    def to_genome(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(chromosome index, 0-based genomic position) of space positions."""
        k = np.searchsorted(self.seg_space, pos, side="right") - 1
        d = pos - self.seg_space[k]
        g = np.where(self.seg_minus[k], self.seg_gend[k] - 1 - d, self.seg_gstart[k] + d)
        return self.seg_chrom[k], g


def build_space(model: GenomeModel) -> MoleculeSpace:
    """Build the molecule space of a genome (transcripts, pre-mRNAs, both genome strands)."""
    chunks: list[np.ndarray] = []
    segs: list[tuple[int, int, int, int, bool]] = []
    cursor = 0
    chrom_index = {c: i for i, c in enumerate(model.chroms)}
    genes = model.genes
    strand_minus = (genes["strand"] == "-").to_numpy()
    ex_tx = model.exons["tx_idx"].to_numpy()
    ex_s = model.exons["start"].to_numpy()
    ex_e = model.exons["end"].to_numpy()
    bounds = np.searchsorted(ex_tx, np.arange(len(model.transcripts) + 1))
    tx_gene = model.transcripts["gene_idx"].to_numpy()
    tx_off = np.zeros(len(model.transcripts), dtype=np.int64)
    tx_len = np.zeros(len(model.transcripts), dtype=np.int64)
    for ti in range(len(model.transcripts)):
        gi = tx_gene[ti]
        ci = chrom_index[genes["chrom"].iat[gi]]
        cseq = model.chrom_seq(model.chroms[ci])
        rng_ = range(bounds[ti], bounds[ti + 1])
        minus = bool(strand_minus[gi])
        order = list(rng_)[::-1] if minus else list(rng_)
        tx_off[ti] = cursor
        for k in order:
            piece = cseq[ex_s[k]: ex_e[k]]
            if minus:
                piece = 3 - piece[::-1]
            chunks.append(piece)
            segs.append((cursor, ci, int(ex_s[k]), int(ex_e[k]), minus))
            cursor += len(piece)
        tx_len[ti] = cursor - tx_off[ti]
    pre_off = np.full(len(genes), -1, dtype=np.int64)
    pre_len = np.zeros(len(genes), dtype=np.int64)
    for gi in np.flatnonzero((genes["source"] == "mrna").to_numpy()):
        ci = chrom_index[genes["chrom"].iat[gi]]
        s, e = int(genes["start"].iat[gi]), int(genes["end"].iat[gi])
        piece = model.chrom_seq(model.chroms[ci])[s:e]
        minus = bool(strand_minus[gi])
        if minus:
            piece = 3 - piece[::-1]
        pre_off[gi] = cursor
        pre_len[gi] = e - s
        chunks.append(piece)
        segs.append((cursor, ci, s, e, minus))
        cursor += e - s
    n_chr = len(model.chroms)
    off_p = np.zeros(n_chr, dtype=np.int64)
    off_m = np.zeros(n_chr, dtype=np.int64)
    for ci, chrom in enumerate(model.chroms):
        cseq = model.chrom_seq(chrom)
        ln = len(cseq)
        off_p[ci] = cursor
        chunks.append(cseq)
        segs.append((cursor, ci, 0, ln, False))
        cursor += ln
        off_m[ci] = cursor
        chunks.append(3 - cseq[::-1])
        segs.append((cursor, ci, 0, ln, True))
        cursor += ln
    seg = np.array([s[:4] for s in segs], dtype=np.int64)
    return MoleculeSpace(
        space=np.concatenate(chunks).astype(np.uint8), seg_space=seg[:, 0], seg_chrom=seg[:, 1],
        seg_gstart=seg[:, 2], seg_gend=seg[:, 3], seg_minus=np.array([s[4] for s in segs], dtype=bool),
        tx_off=tx_off, tx_len=tx_len, pre_off=pre_off, pre_len=pre_len, chr_off_plus=off_p, chr_off_minus=off_m,
    )


@dataclass
class Fragments:
    """Sampled fragments of one library (in output order)."""

    start: np.ndarray  # offset in the molecule space
    length: np.ndarray
    source: np.ndarray  # index into SOURCES
    gene: np.ndarray  # gene index or -1 (gDNA)
    minus: np.ndarray  # molecule on the genome's minus strand


def _fragment_lengths(n: int, lib: LibraryParams, rng: np.random.Generator) -> np.ndarray:
    f = np.rint(rng.normal(lib.fragment_mean, lib.fragment_sd, size=n)).astype(np.int64)
    return np.clip(f, MIN_FRAGMENT, MAX_FRAGMENT)


def _place(mol_off: np.ndarray, mol_len: np.ndarray, flen: np.ndarray, rng: np.random.Generator,
           *, three_prime_bias: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets of fragments inside their molecules; ``three_prime_bias`` > 0 pushes them 3'."""
    flen = np.minimum(flen, mol_len)
    room = mol_len - flen
    u = rng.random(len(flen))
    if three_prime_bias > 0:
        u = u ** (1.0 / (1.0 + three_prime_bias))
    start = mol_off + np.minimum(np.floor(u * (room + 1)).astype(np.int64), room)
    return start, flen


def sample_fragments(space: MoleculeSpace, model: GenomeModel, share: np.ndarray, lib: LibraryParams,
                     n_reads: int, rng: np.random.Generator) -> tuple[Fragments, dict[str, np.ndarray]]:
    """Draw ``n_reads`` fragments of one library.

    Parameters
    ----------
    share
        Relative abundance of each gene's mRNA in this sample (sums to 1 over mRNA genes).

    Returns
    -------
    fragments, per_gene
        ``per_gene`` maps ``mature`` (mRNA, chrM and rRNA transcripts) and ``pre`` to per-gene
        fragment counts.
    """
    genes = model.genes
    n_genes = len(genes)
    probs = np.array([0.0, lib.pre_mrna_fraction, lib.mito_fraction, lib.rrna_fraction, lib.gdna_fraction])
    probs[0] = 1.0 - probs[1:].sum()
    n_src = rng.multinomial(n_reads, probs)
    src_kind = genes["source"].to_numpy()
    mito_w = np.where(src_kind == "mito", genes["base"].to_numpy(dtype=float), 0.0)
    span = (genes["end"] - genes["start"]).to_numpy(dtype=float)
    rrna_w = np.where(src_kind == "rrna", span, 0.0)
    pre_w = share * span
    weights = (share, pre_w, mito_w, rrna_w)
    per_gene = {"mature": np.zeros(n_genes, dtype=np.int64), "pre": np.zeros(n_genes, dtype=np.int64)}
    starts, lens, srcs, gidx = [], [], [], []
    tx = model.transcripts
    tx_gene = tx["gene_idx"].to_numpy()
    tx_w = tx["weight"].to_numpy()
    # first and (optional) second transcript of every gene
    first_tx = np.full(n_genes, -1, dtype=np.int64)
    second_tx = np.full(n_genes, -1, dtype=np.int64)
    w_first = np.ones(n_genes)
    for ti in range(len(tx)):
        gi = tx_gene[ti]
        if first_tx[gi] < 0:
            first_tx[gi] = ti
            w_first[gi] = tx_w[ti]
        else:
            second_tx[gi] = ti
    for si, w in enumerate(weights):
        n = int(n_src[si])
        if n == 0:
            continue
        counts = rng.multinomial(n, w / w.sum())
        g = np.repeat(np.arange(n_genes), counts)
        flen = _fragment_lengths(n, lib, rng)
        if SOURCES[si] == "pre":
            st, fl = _place(space.pre_off[g], space.pre_len[g], flen, rng)
            per_gene["pre"] += counts
        else:
            t = first_tx[g]
            alt = (second_tx[g] >= 0) & (rng.random(n) >= w_first[g])
            t = np.where(alt, second_tx[g], t)
            bias = lib.degradation if SOURCES[si] in ("mrna", "mito") else 0.0
            st, fl = _place(space.tx_off[t], space.tx_len[t], flen, rng, three_prime_bias=bias)
            per_gene["mature"] += counts
        starts.append(st)
        lens.append(fl)
        srcs.append(np.full(n, si, dtype=np.int8))
        gidx.append(g)
    n = int(n_src[4])
    if n:
        chrom_len = model.lengths.astype(float)
        ci = rng.choice(len(chrom_len), size=n, p=chrom_len / chrom_len.sum())
        minus = rng.random(n) < 0.5
        off = np.where(minus, space.chr_off_minus[ci], space.chr_off_plus[ci])
        st, fl = _place(off, model.lengths[ci], _fragment_lengths(n, lib, rng), rng)
        starts.append(st)
        lens.append(fl)
        srcs.append(np.full(n, 4, dtype=np.int8))
        gidx.append(np.full(n, -1, dtype=np.int64))
    start = np.concatenate(starts)
    length = np.concatenate(lens)
    order = rng.permutation(len(start))
    start, length = start[order], length[order]
    k = np.searchsorted(space.seg_space, start, side="right") - 1
    frags = Fragments(start=start, length=length, source=np.concatenate(srcs)[order],
                      gene=np.concatenate(gidx)[order], minus=space.seg_minus[k])
    return frags, per_gene


def _gather(space: np.ndarray, start: np.ndarray, flen: np.ndarray, antisense: np.ndarray, adapter: np.ndarray,
            read_length: int) -> np.ndarray:
    """Read bases (codes) from fragment ends; antisense reads start at the fragment's 3' end."""
    i = np.arange(read_length, dtype=np.int64)[None, :]
    first = np.where(antisense, start + flen - 1, start)[:, None]
    step = np.where(antisense, -1, 1)[:, None]
    pos = np.clip(first + step * i, 0, len(space) - 1)
    bases = space[pos]
    bases ^= (antisense[:, None] * np.uint8(3)).astype(np.uint8)  # complement: code ^ 3 == 3 - code
    inside = i < flen[:, None]
    if inside.all():
        return bases
    ad_i = np.clip(i - flen[:, None], 0, len(adapter) - 1)
    return np.where(inside, bases, adapter[ad_i]).astype(np.uint8)


def _errors_and_quals(bases: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Substitution errors (rate rising along the read) and Phred+33 qualities."""
    n, L = bases.shape
    rel = np.arange(L) / max(L - 1, 1)
    p_err = (SUBSTITUTION_RATE * (0.5 + rel)).astype(np.float32)
    err = rng.random((n, L), dtype=np.float32) < p_err[None, :]
    rows, cols = np.nonzero(err)
    out = bases.copy()
    out[rows, cols] = (out[rows, cols] + rng.integers(1, 4, size=len(rows), dtype=np.uint8)) % 4
    mean_q = np.rint(38.0 - 8.0 * rel**2).astype(np.int16)
    q = mean_q[None, :] + rng.integers(-3, 3, size=(n, L), dtype=np.int16)
    q[rows, cols] = rng.integers(8, 22, size=len(rows), dtype=np.int16)
    q = (np.clip(q, 2, 41) + 33).astype(np.uint8)
    return out, q, len(rows)


def make_reads(space: MoleculeSpace, frags: Fragments, *, read_length: int, strandedness: str, paired: bool,
               rng: np.random.Generator) -> dict:
    """Sequences and qualities of R1 (and R2) for the fragments of one library.

    ``reverse`` (dUTP): R1 is antisense to the molecule, R2 sense; ``forward`` the opposite;
    ``unstranded`` a coin flip per fragment.
    """
    n = len(frags.start)
    if strandedness == "reverse":
        r1_anti = np.ones(n, dtype=bool)
    elif strandedness == "forward":
        r1_anti = np.zeros(n, dtype=bool)
    else:
        r1_anti = rng.random(n) < 0.5
    out: dict = {"r1_antisense": r1_anti}
    b1 = _gather(space.space, frags.start, frags.length, r1_anti, _codes(ADAPTER_R1), read_length)
    out["r1"] = _errors_and_quals(b1, rng)
    if paired:
        b2 = _gather(space.space, frags.start, frags.length, ~r1_anti, _codes(ADAPTER_R2), read_length)
        out["r2"] = _errors_and_quals(b2, rng)
    out["readthrough"] = int((frags.length < read_length).sum())
    return out


def exon_labels(model: GenomeModel) -> dict[str, np.ndarray]:
    """Per-base exon ownership of the concatenated genome, per strand and strand-blind.

    Values: gene index when exactly one gene has an exon on that base, -2 when several do, -1 none.
    """
    total = int(model.lengths.sum())
    labels = {"+": np.full(total, -1, dtype=np.int32), "-": np.full(total, -1, dtype=np.int32)}
    off = dict(zip(model.chroms, model.offsets.tolist(), strict=True))
    tx_gene = model.transcripts["gene_idx"].to_numpy()
    strand = model.genes["strand"].to_numpy()
    seen: set[tuple[int, int, int]] = set()
    for ti, chrom, s, e in zip(model.exons["tx_idx"].tolist(), model.exons["chrom"].tolist(),
                               model.exons["start"].tolist(), model.exons["end"].tolist(), strict=True):
        gi = int(tx_gene[ti])
        if (gi, s, e) in seen:
            continue
        seen.add((gi, s, e))
        arr = labels[strand[gi]][off[chrom] + s: off[chrom] + e]
        arr[(arr >= 0) & (arr != gi)] = -2
        arr[arr == -1] = gi
    p, m = labels["+"], labels["-"]
    both = np.where(p == -1, m, np.where(m == -1, p, np.where(p == m, p, -2)))
    labels["."] = both.astype(np.int32)
    return labels


def space_labels(space: MoleculeSpace, model: GenomeModel, labels: dict[str, np.ndarray], *,
                 stranded: bool) -> np.ndarray:
    """Exon ownership (see :func:`exon_labels`) of every molecule-space position.

    For stranded libraries a position sees the exons on its molecule's strand (a read's gene strand
    is the molecule strand for both ``forward`` and ``reverse`` libraries); otherwise both strands.
    """
    out = np.full(len(space.space), -1, dtype=np.int32)
    ends = np.append(space.seg_space[1:], len(space.space))
    for k in range(len(space.seg_space)):
        o = int(model.offsets[space.seg_chrom[k]])
        minus = bool(space.seg_minus[k])
        arr = labels[("-" if minus else "+") if stranded else "."]
        piece = arr[o + space.seg_gstart[k]: o + space.seg_gend[k]]
        out[space.seg_space[k]: ends[k]] = piece[::-1] if minus else piece
    return out


def assignable_counts(pos_labels: np.ndarray, frags: Fragments, r1_antisense: np.ndarray, n_genes: int, *,
                      read_length: int, paired: bool) -> np.ndarray:
    """Per-gene counts an exact exon counter should report from the true read placements.

    A read (a fragment for pairs) is assigned to a gene when its bases overlap exons of exactly one
    gene, on the gene's strand for stranded libraries (featureCounts defaults: ``-t exon -g
    gene_id``, no multi-overlap). Every fragment source counts (mRNA, pre-mRNA, gDNA...); adapter
    bases are ignored. Multi-mapping (the identical 5S copies, the interspersed repeat) is not
    modelled, so those genes read higher here than a counter that drops NH > 1 reads.
    ``pos_labels`` comes from :func:`space_labels`.
    """
    if len(frags.start) == 0:
        return np.zeros(n_genes, dtype=np.int64)
    i = np.arange(read_length, dtype=np.int64)[None, :]
    flen = frags.length[:, None]
    valid = i < flen
    rows = []
    for anti in ([r1_antisense, ~r1_antisense] if paired else [r1_antisense]):
        first = np.where(anti, frags.start + frags.length - 1, frags.start)[:, None]
        step = np.where(anti, -1, 1)[:, None]
        pos = np.where(valid, first + step * i, frags.start[:, None])
        rows.append(np.where(valid, pos_labels[pos], -1))
    lab = np.concatenate(rows, axis=1)
    ambiguous = (lab == -2).any(axis=1)
    hi = lab.max(axis=1)
    lo = np.where(lab < 0, np.iinfo(np.int32).max, lab).min(axis=1)
    ok = ~ambiguous & (hi >= 0) & (hi == lo)
    return np.bincount(hi[ok], minlength=n_genes).astype(np.int64)


def read_names(sample: str, space: MoleculeSpace, model: GenomeModel, frags: Fragments) -> list[bytes]:
    """Truth-carrying read names (without '@')."""
    c1, g1 = space.to_genome(frags.start)
    _c2, g2 = space.to_genome(frags.start + frags.length - 1)
    left = np.minimum(g1, g2) + 1
    right = np.maximum(g1, g2) + 1
    gene_ids = np.append(model.genes["gene_id"].to_numpy(dtype=object), "-")
    gid = gene_ids[np.where(frags.gene >= 0, frags.gene, len(gene_ids) - 1)]
    chroms = np.array(model.chroms, dtype=object)[c1]
    src = np.array(SOURCES, dtype=object)[frags.source]
    strand = np.where(frags.minus, "-", "+")
    return [f"{sample}:{k + 1}:{s}:{g}:{c}:{a}-{b}:{st}".encode()
            for k, (s, g, c, a, b, st) in enumerate(zip(src.tolist(), gid.tolist(), chroms.tolist(), left.tolist(),
                                                        right.tolist(), strand.tolist(), strict=True))]


def write_fastq(path, names: list[bytes], bases: np.ndarray, quals: np.ndarray, *, compresslevel: int = 1) -> None:
    """Write a gzip FASTQ with a fixed gzip header (mtime 0, no name), so bytes depend only on content."""
    L = bases.shape[1]
    seq = BASES[bases].tobytes()
    qual = quals.tobytes()
    parts = []
    for k, name in enumerate(names):
        o = k * L
        parts.append(b"@%s\n%s\n+\n%s\n" % (name, seq[o: o + L], qual[o: o + L]))
    data = b"".join(parts)
    with atomic_open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                        compresslevel=compresslevel) as gz:
        gz.write(data)
