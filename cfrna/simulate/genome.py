"""A small random genome with a GENCODE-like annotation for the simulated cohort.

Chromosomes ``chr1``..``chr5``, a small ``chrX`` and ``chrY`` and a 16.5 kb ``chrM``. Sequence is
random with ~41% GC (exons ~50%), multi-exon genes on both strands with GT-AG introns, some genes
with a second (exon-skipping) isoform, some same-strand and antisense overlapping gene pairs, an
rRNA cluster (45S pieces and identical 5S copies) on ``chr5``, mitochondrial genes at approximately
their rCRS positions, and an interspersed repeat copied into intergenic space (multi-mapping reads).
Coordinates inside this module are 0-based half-open; the GTF is 1-based inclusive.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cfrna.io.atomic import atomic_open
from cfrna.simulate.model import MITO_GENES, MITO_LENGTH, transcript_id

log = logging.getLogger(__name__)

AUTOSOMES = ("chr1", "chr2", "chr3", "chr4", "chr5")
CHROMS = (*AUTOSOMES, "chrX", "chrY", "chrM")
_AUTO_WEIGHTS = np.array([0.28, 0.24, 0.2, 0.16, 0.12])
BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
#: rRNA lengths (bp): 45S pieces as in RNA45SN5, 5S as RNA5S1
_RRNA_LENGTH = {"RNA18SN5": 1869, "RNA5-8SN5": 157, "RNA28SN5": 5070, "RNA5S1": 121, "RNA5S2": 121, "RNA5S3": 121}
REPEAT_LENGTH = 300
OVERLAP_SAME = 0.05
OVERLAP_ANTISENSE = 0.07
SECOND_ISOFORM = 0.12


@dataclass
class GenomeModel:
    """Sequence and annotation of the simulated genome.

    ``seq`` holds all chromosomes concatenated as base codes 0-3 (A, C, G, T); chromosome ``i``
    starts at ``offsets[i]``. ``genes`` is the gene catalogue plus chrom, start, end (0-based
    half-open span), strand and overlap (``same_strand``/``antisense``/``""``). ``transcripts``:
    transcript_id, gene_idx, weight (isoform share within the gene), skipped_exon. ``exons``:
    tx_idx, chrom, start, end, sorted by transcript then position.
    """

    chroms: list[str]
    lengths: np.ndarray
    offsets: np.ndarray
    seq: np.ndarray
    genes: pd.DataFrame
    transcripts: pd.DataFrame
    exons: pd.DataFrame

    def chrom_seq(self, chrom: str) -> np.ndarray:
        i = self.chroms.index(chrom)
        return self.seq[self.offsets[i]: self.offsets[i] + self.lengths[i]]


def _random_seq(n: int, gc: float, rng: np.random.Generator) -> np.ndarray:
    at = (1.0 - gc) / 2.0
    cdf = np.cumsum([at, gc / 2.0, gc / 2.0])
    return np.searchsorted(cdf, rng.random(n)).astype(np.uint8)


def _gene_structure(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exon and intron lengths of one multi-exon gene (3-10 exons)."""
    n = int(rng.integers(3, 11))
    ex = np.clip(rng.lognormal(np.log(130), 0.5, size=n), 50, 400).astype(np.int64)
    ex[0] = rng.integers(80, 300)
    ex[-1] = rng.integers(250, 900)
    intr = np.clip(rng.lognormal(np.log(300), 0.9, size=n - 1), 80, 5000).astype(np.int64)
    return ex, intr


def build_genome(catalog: pd.DataFrame, rng: np.random.Generator) -> GenomeModel:
    """Lay the catalogue's genes out on chromosomes and generate the sequence.

    Parameters
    ----------
    catalog
        Output of :func:`cfrna.simulate.model.gene_catalog`.
    rng
        Random generator; the genome is a pure function of its state and the catalogue.
    """
    n = len(catalog)
    chrom_of = catalog["chrom_hint"].to_numpy(dtype=object).copy()
    auto = chrom_of == "auto"
    chrom_of[auto] = rng.choice(AUTOSOMES, size=int(auto.sum()), p=_AUTO_WEIGHTS / _AUTO_WEIGHTS.sum())
    g_start = np.zeros(n, dtype=np.int64)
    g_end = np.zeros(n, dtype=np.int64)
    g_strand = np.empty(n, dtype=object)
    exons_of: dict[int, list[tuple[int, int]]] = {}
    skipped: dict[int, int] = {}
    lengths: dict[str, int] = {}
    gaps: dict[str, list[tuple[int, int]]] = {}
    modules = catalog["module"].to_numpy()
    names = catalog["gene_name"].to_numpy()
    for chrom in CHROMS:
        idx = np.flatnonzero(chrom_of == chrom)
        if chrom == "chrM":
            for gi in idx:
                rec = next(m for m in MITO_GENES if m[0] == names[gi])
                g_start[gi], g_end[gi], g_strand[gi] = rec[1] - 1, rec[2], rec[3]
                exons_of[gi] = [(rec[1] - 1, rec[2])]
            lengths[chrom] = MITO_LENGTH
            gaps[chrom] = []
            continue
        order = rng.permutation(idx)
        # keep the rRNA cluster together (45S pieces, then the 5S copies)
        rrna = [gi for gi in order if modules[gi] == "rrna"]
        order = [gi for gi in order if modules[gi] != "rrna"]
        if rrna:
            order.insert(len(order) // 2, -1)
        pos = int(rng.integers(5000, 15000))
        chrom_gaps = [(0, pos)]
        prev = None  # (gene index, length of its rightmost exon)
        for gi in order:
            if gi == -1:  # the rRNA cluster
                gap = int(rng.integers(2000, 5000))
                chrom_gaps.append((pos, pos + gap))
                pos += gap
                for k, r in enumerate(sorted(rrna, key=lambda i: list(_RRNA_LENGTH).index(names[i]))):
                    ln = _RRNA_LENGTH[names[r]]
                    g_start[r], g_end[r], g_strand[r] = pos, pos + ln, "+"
                    exons_of[r] = [(pos, pos + ln)]
                    spacer = 1500 if k < 3 else 1000
                    chrom_gaps.append((pos + ln, pos + ln + spacer))
                    pos += ln + spacer
                prev = None
                continue
            ex, intr = _gene_structure(rng)
            strand = "+" if rng.random() < 0.5 else "-"
            u = rng.random()
            can_overlap = prev is not None and modules[gi] == "filler" and modules[prev[0]] == "filler"
            if can_overlap and u < OVERLAP_SAME + OVERLAP_ANTISENSE:
                same = u < OVERLAP_SAME
                strand = g_strand[prev[0]] if same else ("-" if g_strand[prev[0]] == "+" else "+")
                if strand == "-":  # the long 3' exon is the leftmost one on the minus strand
                    ex, intr = ex[::-1], intr[::-1]
                lim = int(min(prev[1], ex[0])) - 20
                ov = int(rng.integers(30, max(31, lim)))
                start = g_end[prev[0]] - ov
            else:
                if strand == "-":
                    ex, intr = ex[::-1], intr[::-1]
                gap = int(np.clip(rng.lognormal(np.log(900), 0.8), 300, 15000))
                chrom_gaps.append((pos, pos + gap))
                start = pos + gap
            ex_list = []
            p = start
            for k, e in enumerate(ex):
                ex_list.append((p, p + int(e)))
                p += int(e)
                if k < len(intr):
                    p += int(intr[k])
            g_start[gi], g_end[gi], g_strand[gi] = start, p, strand
            exons_of[gi] = ex_list
            if len(ex) >= 4 and rng.random() < SECOND_ISOFORM:
                skipped[gi] = int(rng.integers(1, len(ex) - 1))
            pos = max(pos, p)
            prev = (gi, int(ex[-1]))
        tail = int(rng.integers(5000, 15000))
        chrom_gaps.append((pos, pos + tail))
        lengths[chrom] = pos + tail
        gaps[chrom] = chrom_gaps
    chroms = [c for c in CHROMS if c in lengths]
    lens = np.array([lengths[c] for c in chroms], dtype=np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    gc = np.where(np.array(chroms) == "chrM", 0.44, 0.41)
    seq = np.concatenate([_random_seq(int(ln), float(g), rng) for ln, g in zip(lens, gc, strict=True)])
    off_of = dict(zip(chroms, offs.tolist(), strict=True))
    # exons: GC-richer sequence
    for gi, exs in exons_of.items():
        o = off_of[chrom_of[gi]]
        for s, e in exs:
            seq[o + s: o + e] = _random_seq(e - s, 0.5, rng)
    # identical rRNA 5S copies (multi-mapping reads, like the real 5S array)
    five_s = [gi for gi in range(n) if str(names[gi]).startswith("RNA5S")]
    if len(five_s) > 1:
        src = seq[off_of[chrom_of[five_s[0]]] + g_start[five_s[0]]: off_of[chrom_of[five_s[0]]] + g_end[five_s[0]]].copy()
        for gi in five_s[1:]:
            o = off_of[chrom_of[gi]]
            seq[o + g_start[gi]: o + g_end[gi]] = src
    # GT-AG splice sites (in the gene's orientation)
    for gi, exs in exons_of.items():
        o = off_of[chrom_of[gi]]
        for (_s1, e1), (s2, _e2) in zip(exs[:-1], exs[1:], strict=True):
            if g_strand[gi] == "+":
                seq[o + e1: o + e1 + 2] = (2, 3)  # GT
                seq[o + s2 - 2: o + s2] = (0, 2)  # AG
            else:  # minus strand: CT...AC on the forward strand
                seq[o + e1: o + e1 + 2] = (1, 3)  # CT
                seq[o + s2 - 2: o + s2] = (0, 1)  # AC
    # an interspersed repeat in large intergenic gaps (identical copies -> multi-mapping gDNA reads)
    repeat = _random_seq(REPEAT_LENGTH, 0.5, rng)
    big = [(c, s, e) for c in chroms for s, e in gaps[c] if e - s >= REPEAT_LENGTH + 400]
    n_copies = min(40, len(big))
    for k in sorted(rng.choice(len(big), size=n_copies, replace=False).tolist()):
        c, s, e = big[k]
        at = int(rng.integers(s + 200, e - 200 - REPEAT_LENGTH + 1))
        rc = rng.random() < 0.5
        seq[off_of[c] + at: off_of[c] + at + REPEAT_LENGTH] = (3 - repeat[::-1]) if rc else repeat
    genes = catalog.copy()
    genes["chrom"] = chrom_of.astype(str)
    genes["start"] = g_start
    genes["end"] = g_end
    genes["strand"] = g_strand.astype(str)
    genes["overlap"] = _overlaps(genes)
    genes["multi_copy"] = genes["gene_name"].str.startswith("RNA5S")
    tx_rows, ex_rows = [], []
    n_tx = 0
    for gi in range(n):
        exs = exons_of[gi]
        variants = [(None, 1.0)]
        if gi in skipped:
            w = float(rng.uniform(0.55, 0.85))
            variants = [(None, w), (skipped[gi], 1.0 - w)]
        for skip, w in variants:
            n_tx += 1
            ti = len(tx_rows)
            tx_rows.append({"transcript_id": transcript_id(n_tx), "gene_idx": gi, "weight": w,
                            "skipped_exon": -1 if skip is None else skip})
            for k, (s, e) in enumerate(exs):
                if skip is not None and k == skip:
                    continue
                ex_rows.append({"tx_idx": ti, "chrom": chrom_of[gi], "start": s, "end": e})
    transcripts = pd.DataFrame(tx_rows)
    exons = pd.DataFrame(ex_rows)
    log.debug("genome: %d chromosomes, %d bp, %d genes, %d transcripts", len(chroms), int(lens.sum()), n,
              len(transcripts))
    return GenomeModel(chroms=chroms, lengths=lens, offsets=offs, seq=seq, genes=genes,
                       transcripts=transcripts, exons=exons)


def _overlaps(genes: pd.DataFrame) -> np.ndarray:
    """Per gene: ``same_strand`` / ``antisense`` when its span overlaps another gene's ("" otherwise)."""
    out = np.full(len(genes), "", dtype=object)
    for _chrom, grp in genes.groupby("chrom", sort=False):
        idx = grp.sort_values("start").index.to_numpy()
        st = genes.loc[idx, "start"].to_numpy()
        en = genes.loc[idx, "end"].to_numpy()
        sd = genes.loc[idx, "strand"].to_numpy()
        for a in range(len(idx)):
            b = a + 1
            while b < len(idx) and st[b] < en[a]:
                kind = "same_strand" if sd[a] == sd[b] else "antisense"
                for k in (a, b):
                    if out[idx[k]] != "same_strand":
                        out[idx[k]] = kind
                b += 1
    return out.astype(str)


def write_fasta(model: GenomeModel, path, *, width: int = 60) -> None:
    """Write ``genome.fa`` and its ``.fai`` index (samtools faidx format)."""
    fai = []
    offset = 0
    with atomic_open(path, "wb") as fh:
        for chrom, ln, o in zip(model.chroms, model.lengths.tolist(), model.offsets.tolist(), strict=True):
            header = f">{chrom}\n".encode()
            fh.write(header)
            offset += len(header)
            s = BASES[model.seq[o: o + ln]].tobytes()
            body = b"\n".join(s[i: i + width] for i in range(0, ln, width)) + b"\n"
            fh.write(body)
            fai.append(f"{chrom}\t{ln}\t{offset}\t{width}\t{width + 1}\n")
            offset += len(body)
    with atomic_open(f"{path}.fai", "w", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(fai))


def write_gtf(model: GenomeModel, path) -> None:
    """Write a GENCODE-like GTF: gene, transcript and exon lines, sorted by chromosome and start."""
    genes = model.genes
    tx_by_gene: dict[int, list[int]] = {}
    for ti, gi in enumerate(model.transcripts["gene_idx"].tolist()):
        tx_by_gene.setdefault(gi, []).append(ti)
    ex_by_tx: dict[int, list[tuple[int, int]]] = {}
    for ti, s, e in zip(model.exons["tx_idx"].tolist(), model.exons["start"].tolist(), model.exons["end"].tolist(),
                        strict=True):
        ex_by_tx.setdefault(ti, []).append((s, e))
    chrom_rank = {c: i for i, c in enumerate(model.chroms)}
    g_chrom, g_start = genes["chrom"].tolist(), genes["start"].tolist()
    order = sorted(range(len(genes)), key=lambda i: (chrom_rank[g_chrom[i]], g_start[i], i))
    lines = ["##description: cfrna simulated annotation (synthetic genes; names borrowed from human genes)\n",
             "##provider: cfrna simulate\n", "##format: gtf\n"]
    n_exon = 0
    src = "cfrna_sim"
    grecs = genes[["gene_id", "gene_name", "biotype", "chrom", "start", "end", "strand"]].to_dict("records")
    tx_ids = model.transcripts["transcript_id"].tolist()
    for gi in order:
        g = grecs[gi]
        chrom, strand, bt = g["chrom"], g["strand"], g["biotype"]
        gattr = f'gene_id "{g["gene_id"]}"; gene_type "{bt}"; gene_name "{g["gene_name"]}"; gene_biotype "{bt}";'
        lines.append(f"{chrom}\t{src}\tgene\t{g['start'] + 1}\t{g['end']}\t.\t{strand}\t.\t{gattr} level 2;\n")
        for k, ti in enumerate(tx_by_gene[gi]):
            exs = ex_by_tx[ti]
            tattr = (f'{gattr} transcript_id "{tx_ids[ti]}"; transcript_type "{bt}"; '
                     f'transcript_name "{g["gene_name"]}-{201 + k}"; transcript_biotype "{bt}";')
            lines.append(f"{chrom}\t{src}\ttranscript\t{exs[0][0] + 1}\t{exs[-1][1]}\t.\t{strand}\t.\t{tattr} level 2;\n")
            ordered = exs if strand == "+" else exs[::-1]
            for num, (s, e) in enumerate(ordered, 1):
                n_exon += 1
                lines.append(f"{chrom}\t{src}\texon\t{s + 1}\t{e}\t.\t{strand}\t.\t{tattr} exon_number {num}; "
                             f'exon_id "ENSE99{n_exon:09d}"; level 2;\n')
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(lines))
