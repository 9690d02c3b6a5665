"""Human-scale benchmark: the per-sample path on a GENCODE-sized annotation and a gigabase genome.

No human genome can be fetched here, so the script builds the closest honest stand-ins, from a
seed, and caches them outside the repository (``$CFRNA_BENCH_CACHE``, default
``~/.cache/cfrna-bench``):

* **annotation**: the real GENCODE v24 chr19 annotation (``/work/shared/data/encode_chr19``, spike-ins
  dropped) tiled over contigs ``chr1``..``chrN``: copy *k* keeps every line (genes, transcripts,
  exons, CDS, UTRs; real structures, overlaps, antisense pairs and biotypes) with its ids made unique
  (``ENSG00…`` -> ``ENSG<kk>…``). Full mode: 22 copies = 66,220 genes, 1,565,784 exon lines.
* **genome**: one contig per copy (full mode 22 x 58.6 Mb = 1.29 Gb), made with numpy and streamed
  to disk contig by contig: isochore-like GC background, interspersed repeat families (SINE/Alu-,
  LINE/L1- (5'-truncated), LTR- and DNA-transposon-like) at human-like genome fractions and per-copy
  divergence, segmental duplications (10-100 kb, 90-99.5% identity, also between contigs),
  unannotated processed pseudogenes of annotated genes (spliced mRNA + poly(A), 1-15% divergence),
  microsatellites and poly(A) tracts, 10 kb of N at both contig ends, GT-AG at annotated introns.
  Substitutions only (no indels).
* **reads**: :mod:`cfrna.simulate` fragments (mRNA of the first two transcripts of every gene,
  pre-mRNA, gDNA, rRNA genes; no chrM in this genome), reverse-stranded, 100 bp, simulated per
  contig (reads in proportion to contig length) and interleaved in blocks of 256 so that the FASTQ is
  not in genome order.
* **count BAMs**: simulated fragments written as alignments at their TRUE positions
  (``samtools sort``) instead of being aligned (``--stages annotation count`` alone needs no genome:
  the read bases then come from a plain random background). That is honest for counting speed and exactness (the
  counter sees spliced, intronic, intergenic, antisense and overlapping-gene reads at real depth), not
  for alignment; 2% of fragments carry NH:i:2 (multi-mapping category).

Measurements (one run, each step a fresh process under ``/usr/bin/time -v``, peak RSS of the largest
process): index (``cfrna index`` mappy vs STAR genomeGenerate vs ``minimap2 -x splice:sr -d`` when
``--minimap2`` is a >= 2.29 binary), alignment reads/s at 1 and 2 threads (``benchmarks/align.py``'s
worker), GTF parse and count-index build cold and cached (and the cache hit on the second sample),
``cfrna count`` vs featureCounts on the SE and PE BAMs at 1 and 2 threads with identical per-gene
counts and summary categories, ``cfrna trim`` and ``cfrna qc`` per sample.

Usage::

    python benchmarks/human_scale.py --quick                     # CI: ~60 CPU-s, no STAR; checks only
    python benchmarks/human_scale.py --stages annotation count --count-reads 4000000   # counting, no genome
    python benchmarks/human_scale.py --contigs 4 --stages index align --no-star --minimap2 PATH --workdir W
    python benchmarks/human_scale.py --contigs 4 --stages index align --star-only --workdir W2  # STAR apart
    python benchmarks/human_scale.py [--minimap2 PATH] [--json out.json]   # everything (hours; > 16 GB RAM)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.count import fc_counts, timed  # noqa: E402

GENCODE_CHR19 = Path(os.environ.get(
    "CFRNA_BENCH_GENCODE",
    "/work/shared/data/encode_chr19/gencodeV24pri-tRNAs-ERCC-phiX_onlychr19_and_spikeins.gtf.gz"))
GENERATOR_VERSION = 1
BASES = np.frombuffer(b"ACGTN", dtype=np.uint8)
STAGES = ("annotation", "genome", "reads", "index", "align", "count", "trim", "qc")


@dataclass(frozen=True)
class Scale:
    """Sizes of one run."""

    name: str
    copies: int  # tiled copies of the chr19 annotation (one contig each)
    window: int | None  # bp of chr19 taken (None: all of it)
    se_reads: int
    pe_pairs: int
    count_se: int  # records of the counting BAMs (true positions)
    count_pe: int  # pairs

    @property
    def key(self) -> str:
        return f"{self.name}-v{GENERATOR_VERSION}"


FULL = Scale("full", copies=22, window=None, se_reads=20_000_000, pe_pairs=10_000_000,
             count_se=20_000_000, count_pe=10_000_000)
QUICK = Scale("quick", copies=3, window=4_000_000, se_reads=40_000, pe_pairs=20_000,
              count_se=40_000, count_pe=20_000)


def minimap2_version(path: str) -> str | None:
    """``minimap2 --version`` of a binary that has the ``splice:sr`` preset (added in 2.29), else None.

    cfrna's mappy is 2.31; a 2.29/2.30 CLI reads the same ``.mmi`` and has the same preset (the
    version is recorded with the results). Debian's 2.24 silently ignores ``:sr``: refused.
    """
    try:
        v = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout.strip()
        major, minor = (int(x) for x in v.split("-")[0].split(".")[:2])
    except (OSError, subprocess.CalledProcessError, ValueError):
        return None
    return v if (major, minor) >= (2, 29) else None


def cache_root() -> Path:
    return Path(os.environ.get("CFRNA_BENCH_CACHE", os.path.expanduser("~/.cache/cfrna-bench")))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# annotation: GENCODE chr19 tiled


_ID_RE = re.compile(r'((?:gene_id|transcript_id|exon_id|havana_gene|havana_transcript|protein_id|ccdsid) ")([^"]*)"')
_ENS_RE = re.compile(r"([A-Z]+)00(\d+(?:\.\d+)?)$")


def _copy_id(value: str, k: int) -> str:
    """Id of copy ``k``: ENSG00xxx -> ENSG<kk>xxx (same length and form); other ids get ``_c<k>``."""
    if k == 0:
        return value
    m = _ENS_RE.match(value)
    return f"{m.group(1)}{k:02d}{m.group(2)}" if m else f"{value}_c{k}"


def _chr19_lines(window: int | None) -> tuple[list[list[str]], int]:
    """chr19 lines of the GENCODE GTF (spike-ins dropped), genes inside ``window`` only; chr19 length used."""
    rows = []
    with gzip.open(GENCODE_CHR19, "rt") as fh:
        for line in fh:
            if line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if cols[0] == "chr19":
                rows.append(cols)
    if window is None:
        return rows, 58_617_616  # GRCh38 chr19
    # keep whole genes: a gene is kept when its gene line lies inside the window
    keep_genes = {re.search(r'gene_id "([^"]+)"', c[8]).group(1) for c in rows
                  if c[2] == "gene" and int(c[4]) <= window - 20_000}
    rows = [c for c in rows if re.search(r'gene_id "([^"]+)"', c[8]).group(1) in keep_genes]
    return rows, window


def make_annotation(scale: Scale, out: Path) -> dict:
    """Tile the chr19 annotation ``scale.copies`` times over contigs chr1..chrN (ids unique per copy)."""
    rows, length = _chr19_lines(scale.window)
    body = ["\t".join(c[1:]) for c in rows]  # without the sequence name
    n_exon = sum(c[2] == "exon" for c in rows)
    n_gene = len({re.search(r'gene_id "([^"]+)"', c[8]).group(1) for c in rows if c[2] == "exon"})
    tmp = out.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        fh.write(f"##description: GENCODE v24 chr19 tiled x{scale.copies} (cfrna human-scale benchmark)\n")
        for k in range(scale.copies):
            chrom = f"chr{k + 1}"
            text = "\n".join(body)
            text = _ID_RE.sub(lambda m, k=k: f'{m.group(1)}{_copy_id(m.group(2), k)}"', text)
            fh.write("".join(f"{chrom}\t{ln}\n" for ln in text.split("\n")))
    os.replace(tmp, out)
    return {"contig_length": length, "copies": scale.copies, "genes": n_gene * scale.copies,
            "exon_lines": n_exon * scale.copies, "lines": len(rows) * scale.copies,
            "bytes": out.stat().st_size}


# ------------------------------------------------------------------------------------------------
# genome: repeats placed the way a mammalian genome has them

#: (name, consensus length, genome fraction, divergence range, mean copy length or None = whole)
REPEAT_FAMILIES = (
    ("SINE/Alu", 300, 0.10, (0.02, 0.18), None),
    ("LINE/L1", 6200, 0.17, (0.03, 0.25), 900),  # 5'-truncated copies, ~1 kb on average
    ("LTR/ERV", 450, 0.06, (0.05, 0.22), None),
    ("DNA/hAT", 250, 0.03, (0.12, 0.30), None),
)
SEGDUP_FRACTION = 0.05
PSEUDOGENES_PER_GENE = 0.35  # ~11k processed pseudogenes for ~20k protein-coding genes in human
MICROSAT_FRACTION = 0.01
TELOMERE_N = 10_000


def _annotation_tables(gtf: Path) -> dict:
    """Per contig: gene rows, first two transcripts per gene with their exons (0-based half-open)."""
    genes: dict[str, list] = {}
    tx_exons: dict[str, list] = {}
    tx_of_gene: dict[str, list] = {}
    gid_re = re.compile(r'gene_id "([^"]+)"')
    tid_re = re.compile(r'transcript_id "([^"]+)"')
    type_re = re.compile(r'gene_type "([^"]+)"')
    with open(gtf) as fh:
        for line in fh:
            if line[0] == "#":
                continue
            c = line.split("\t", 8)
            if c[2] == "gene":
                genes.setdefault(c[0], []).append(
                    (gid_re.search(c[8]).group(1), int(c[3]) - 1, int(c[4]), c[6], type_re.search(c[8]).group(1)))
            elif c[2] == "exon":
                g = gid_re.search(c[8]).group(1)
                t = tid_re.search(c[8]).group(1)
                lst = tx_of_gene.setdefault(g, [])
                if t not in lst:
                    if len(lst) >= 2:
                        continue
                    lst.append(t)
                tx_exons.setdefault(t, []).append((int(c[3]) - 1, int(c[4])))
    return {"genes": genes, "tx_exons": tx_exons, "tx_of_gene": tx_of_gene}


def _mutate(codes: np.ndarray, rate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Substitutions at per-base ``rate`` (codes 0-3)."""
    hit = rng.random(len(codes), dtype=np.float32) < rate
    out = codes.copy()
    out[hit] = (out[hit] + rng.integers(1, 4, size=int(hit.sum()), dtype=np.uint8)) % 4
    return out


def _paste(seq: np.ndarray, pos: np.ndarray, pieces: np.ndarray, lens: np.ndarray) -> None:
    """Write concatenated ``pieces`` (lengths ``lens``) at ``pos`` (clipped at the contig end)."""
    if len(lens) == 0:
        return
    starts = np.repeat(pos - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(int(lens.sum()))
    ok = starts < len(seq)
    seq[starts[ok]] = pieces[ok]


def _copies(consensus: np.ndarray, n: int, mean_len: int | None, div: tuple[float, float],
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` diverged copies of ``consensus`` (random orientation, 3' ends kept when truncated)."""
    L = len(consensus)
    if mean_len is None:
        lens = np.minimum(L, np.maximum(30, rng.normal(L * 0.95, L * 0.08, size=n))).astype(np.int64)
    else:
        lens = np.minimum(L, np.maximum(100, rng.exponential(mean_len, size=n))).astype(np.int64)
    off = np.repeat(L - lens - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(int(lens.sum()))
    bases = consensus[off]
    rate = np.repeat(rng.uniform(*div, size=n).astype(np.float32), lens)
    bases = _mutate(bases, rate, rng)
    minus = np.repeat(rng.random(n) < 0.5, lens)
    # reverse complement the minus copies piecewise: reverse within each copy
    seg_start = np.repeat(np.r_[0, np.cumsum(lens)[:-1]], lens)
    within = np.arange(len(bases)) - seg_start
    rev_idx = seg_start + np.repeat(lens, lens) - 1 - within
    bases = np.where(minus, 3 - bases[rev_idx], bases).astype(np.uint8)
    return bases, lens


def _spliced(seq: np.ndarray, exons: list[tuple[int, int]], strand: str) -> np.ndarray:
    s = np.concatenate([seq[a:b] for a, b in sorted(exons)])
    return (3 - s[::-1]).astype(np.uint8) if strand == "-" else s


def make_contig(length: int, genes: list, tx_exons: dict, tx_of_gene: dict, consensus: list[np.ndarray],
                prev: np.ndarray | None, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """One contig (codes 0-3, 4 = N) and a tally of what was placed."""
    stats = {}
    # isochore-like background: GC drawn per 100 kb block (35-52%)
    n_blocks = -(-length // 100_000)
    gc = np.repeat(np.clip(rng.normal(0.41, 0.04, n_blocks), 0.33, 0.55), 100_000)[:length].astype(np.float32)
    u = rng.random(length, dtype=np.float32)
    seq = np.where(u < gc, np.where(u < gc / 2, 1, 2), np.where(u < (1 + gc) / 2, 0, 3)).astype(np.uint8)
    del u, gc
    for (name, _L, frac, div, mean_len), cons in zip(REPEAT_FAMILIES, consensus, strict=True):
        mean = mean_len or len(cons) * 0.95
        n = int(length * frac / mean)
        bases, lens = _copies(cons, n, mean_len, div, rng)
        pos = np.sort(rng.integers(0, length, size=n))
        _paste(seq, pos, bases, lens)
        if name == "SINE/Alu":  # poly(A) tails
            tail = rng.integers(8, 30, size=n)
            _paste(seq, pos + lens, np.zeros(int(tail.sum()), np.uint8), tail)
        stats[name] = {"copies": n, "bp": int(lens.sum())}
    # segmental duplications: 10-100 kb, 90-99.5% identity, from this contig or the previous one
    n_sd = max(1, int(length * SEGDUP_FRACTION / 40_000))
    sd_bp = 0
    for _ in range(n_sd):
        ln = int(min(length // 4, 10 ** rng.uniform(4, 5)))
        src = prev if prev is not None and rng.random() < 0.4 else seq
        a = int(rng.integers(0, len(src) - ln))
        piece = src[a:a + ln].copy()
        piece[piece == 4] = 0
        piece = _mutate(piece, np.float32(rng.uniform(0.005, 0.10)), rng)
        if rng.random() < 0.5:
            piece = (3 - piece[::-1]).astype(np.uint8)
        b = int(rng.integers(0, length - ln))
        seq[b:b + ln] = piece
        sd_bp += ln
    stats["segmental_duplications"] = {"copies": n_sd, "bp": sd_bp}
    # microsatellites (units 1-6 bp, 20-200 bp long) and poly(A) tracts
    n_ms = int(length * MICROSAT_FRACTION / 80)
    ms_len = rng.integers(20, 200, size=n_ms)
    unit_len = rng.integers(1, 7, size=n_ms)
    units = rng.integers(0, 4, size=(n_ms, 6), dtype=np.uint8)
    within = np.arange(int(ms_len.sum())) - np.repeat(np.r_[0, np.cumsum(ms_len)[:-1]], ms_len)
    rows = np.repeat(np.arange(n_ms), ms_len)
    pieces = units[rows, within % np.repeat(unit_len, ms_len)]
    _paste(seq, np.sort(rng.integers(0, length, size=n_ms)), pieces, ms_len)
    stats["microsatellites"] = {"copies": n_ms, "bp": int(ms_len.sum())}
    # GT-AG at annotated introns (after repeats and duplications, which may have covered them)
    strand_of = {g[0]: g[3] for g in genes}
    for gid, txs in tx_of_gene.items():
        if gid not in strand_of:
            continue
        for t in txs:
            ex = sorted(tx_exons[t])
            for (_a, b), (c, _d) in zip(ex[:-1], ex[1:], strict=False):
                if c - b < 4:
                    continue
                if strand_of[gid] == "+":
                    seq[b:b + 2] = (2, 3)
                    seq[c - 2:c] = (0, 2)
                else:  # CT-AC on the plus strand
                    seq[b:b + 2] = (1, 3)
                    seq[c - 2:c] = (0, 1)
    # processed pseudogenes of annotated genes, pasted outside gene spans
    covered = np.zeros(length + 1, np.int32)
    for g in genes:
        covered[g[1]] += 1
        covered[min(g[2], length)] -= 1
    free = np.cumsum(covered[:-1]) == 0
    free_pos = np.flatnonzero(free[::1000]) * 1000
    coding = [g for g in genes if g[4] == "protein_coding" and tx_of_gene.get(g[0])]
    n_pg = int(len(coding) * PSEUDOGENES_PER_GENE)
    pg_bp = 0
    for i in rng.choice(len(coding), size=min(n_pg, len(coding)), replace=False) if coding else []:
        g = coding[int(i)]
        mrna = _spliced(seq, tx_exons[tx_of_gene[g[0]][0]], g[3])
        mrna = np.concatenate([mrna, np.zeros(int(rng.integers(10, 40)), np.uint8)])
        if rng.random() < 0.5:  # 5'-truncated copies are the rule
            mrna = mrna[int(rng.integers(0, max(1, len(mrna) // 2))):]
        mrna = _mutate(mrna, np.float32(rng.uniform(0.01, 0.15)), rng)
        if rng.random() < 0.5:
            mrna = (3 - mrna[::-1]).astype(np.uint8)
        if len(free_pos) == 0:
            break
        b = int(free_pos[rng.integers(0, len(free_pos))])
        seq[b:b + len(mrna)] = mrna[: max(0, length - b)]
        pg_bp += len(mrna)
    stats["processed_pseudogenes"] = {"copies": min(n_pg, len(coding)), "bp": pg_bp}
    seq[:TELOMERE_N] = 4
    seq[-TELOMERE_N:] = 4
    return seq, stats


def _write_fasta_record(fh, name: str, seq: np.ndarray, width: int = 60) -> None:
    fh.write(f">{name}\n".encode())
    ascii_ = BASES[seq]
    full = len(ascii_) // width * width
    block = np.empty((full // width, width + 1), np.uint8)
    block[:, :width] = ascii_[:full].reshape(-1, width)
    block[:, width] = 10
    fh.write(block.tobytes())
    if full < len(ascii_):
        fh.write(ascii_[full:].tobytes() + b"\n")


def make_genome(scale: Scale, gtf: Path, out: Path, *, seed: int) -> dict:
    """Write the genome FASTA contig by contig (``out``, plus per-contig codes for the read simulator)."""
    rng = np.random.default_rng(seed)
    consensus = [rng.integers(0, 4, size=L, dtype=np.uint8) for _n, L, *_ in REPEAT_FAMILIES]
    tables = _annotation_tables(gtf)
    length = _annotation_length(gtf, scale)
    prev = None
    totals: dict[str, dict] = {}
    codes_dir = out.parent / "contigs"
    codes_dir.mkdir(exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for k in range(scale.copies):
            chrom = f"chr{k + 1}"
            crng = np.random.default_rng([seed, k])
            genes = tables["genes"].get(chrom, [])
            gene_ids = {g[0] for g in genes}
            txg = {g: t for g, t in tables["tx_of_gene"].items() if g in gene_ids}
            seq, st = make_contig(length, genes, tables["tx_exons"], txg, consensus, prev, crng)
            _write_fasta_record(fh, chrom, seq)
            np.save(codes_dir / f"{chrom}.npy", seq)
            for key, v in st.items():
                t = totals.setdefault(key, {"copies": 0, "bp": 0})
                t["copies"] += v["copies"]
                t["bp"] += v["bp"]
            prev = seq
            log(f"genome: {chrom} written ({length:,} bp)")
    os.replace(tmp, out)
    total = length * scale.copies
    return {"bp": total, "contigs": scale.copies,
            "placed": {k: {**v, "genome_fraction": round(v["bp"] / total, 4)} for k, v in totals.items()}}


def _annotation_length(gtf: Path, scale: Scale) -> int:
    return 58_617_616 if scale.window is None else scale.window


# ------------------------------------------------------------------------------------------------
# reads (cfrna.simulate per contig) and true-position BAMs

LIBRARY = {"gdna_fraction": 0.04, "rrna_fraction": 0.03, "mito_fraction": 0.0, "pre_mrna_fraction": 0.15,
           "hemolysis": False, "degradation": 0.2, "fragment_mean": 150.0, "fragment_sd": 40.0}
READ_LENGTH = 100
BATCH = 200_000
INTERLEAVE = 256


def _contig_model(chrom: str, seq: np.ndarray, tables: dict, rng: np.random.Generator):
    """A :class:`cfrna.simulate.genome.GenomeModel` of one contig and each gene's mRNA share."""
    import pandas as pd

    from cfrna.simulate.genome import GenomeModel

    genes = [g for g in tables["genes"].get(chrom, []) if tables["tx_of_gene"].get(g[0])]
    gdf = pd.DataFrame(genes, columns=["gene_id", "start", "end", "strand", "biotype"])
    gdf["chrom"] = chrom
    gdf["source"] = np.where(gdf["biotype"] == "rRNA", "rrna", "mrna")
    gdf["base"] = 0.0
    tx_rows, ex_rows = [], []
    for gi, g in enumerate(genes):
        txs = tables["tx_of_gene"][g[0]]
        for j, t in enumerate(txs):
            ti = len(tx_rows)
            tx_rows.append((t, gi, 0.7 if len(txs) > 1 and j == 0 else (0.3 if j else 1.0)))
            ex_rows += [(ti, chrom, a, b) for a, b in sorted(tables["tx_exons"][t])]
    tx = pd.DataFrame(tx_rows, columns=["transcript_id", "gene_idx", "weight"])
    ex = pd.DataFrame(ex_rows, columns=["tx_idx", "chrom", "start", "end"])
    codes = np.where(seq == 4, 0, seq).astype(np.uint8)  # the N ends read as poly(A) (they do not align)
    model = GenomeModel(chroms=[chrom], lengths=np.array([len(seq)]), offsets=np.array([0]), seq=codes, genes=gdf,
                        transcripts=tx, exons=ex)
    share = np.where(gdf["source"] == "mrna", rng.lognormal(0.0, 2.0, len(gdf)), 0.0)
    return model, share / share.sum()


def _blocks(space, a: int, b: int) -> list[tuple[int, int]]:
    """Genomic blocks (0-based half-open, ascending) of the molecule-space interval [a, b)."""
    k0 = int(np.searchsorted(space.seg_space, a, side="right")) - 1
    k1 = int(np.searchsorted(space.seg_space, b - 1, side="right")) - 1
    out = []
    for k in range(k0, k1 + 1):
        s = max(a, int(space.seg_space[k]))
        e = min(b, int(space.seg_space[k + 1]) if k + 1 < len(space.seg_space) else b)
        if space.seg_minus[k]:
            g1 = int(space.seg_gend[k]) - (s - int(space.seg_space[k]))
            out.append((g1 - (e - s), g1))
        else:
            g0 = int(space.seg_gstart[k]) + (s - int(space.seg_space[k]))
            out.append((g0, g0 + (e - s)))
    out.sort()
    return out


def _cigar(blocks: list[tuple[int, int]]) -> str:
    parts = [f"{blocks[0][1] - blocks[0][0]}M"]
    for (_a, b), (c, d) in zip(blocks[:-1], blocks[1:], strict=False):
        parts.append(f"{c - b}N{d - c}M")
    return "".join(parts)


def _mate_blocks(space, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str], list]:
    """Leftmost 0-based start, end and CIGAR of the molecule-space intervals [a, b).

    Vectorised for the reads inside one segment (most of them); the spliced ones go through
    :func:`_blocks`.
    """
    k0 = np.searchsorted(space.seg_space, a, side="right") - 1
    k1 = np.searchsorted(space.seg_space, b - 1, side="right") - 1
    minus = space.seg_minus[k0]
    d = a - space.seg_space[k0]
    start = np.where(minus, space.seg_gend[k0] - d - (b - a), space.seg_gstart[k0] + d).astype(np.int64)
    end = start + (b - a)
    cigar = [f"{n}M" for n in (b - a).tolist()]
    for i in np.flatnonzero(k0 != k1).tolist():
        bl = _blocks(space, int(a[i]), int(b[i]))
        start[i], end[i], cigar[i] = bl[0][0], bl[-1][1], _cigar(bl)
    return start, end, cigar


def _mate_strings(codes: np.ndarray, quals: np.ndarray, rl: np.ndarray, rev: np.ndarray) -> tuple[list[str], list[str]]:
    """SEQ and QUAL of each read's first ``rl`` bases, reverse-complemented where ``rev`` (SAM stores the
    reference strand)."""
    n, L = codes.shape
    j = np.arange(L)
    idx = np.where(rev[:, None], np.maximum(rl[:, None] - 1 - j, 0), j)
    c = np.take_along_axis(codes, idx, axis=1)
    c = np.where(rev[:, None], _COMP[c], c)
    q = np.take_along_axis(quals, idx, axis=1)
    sb, qb = BASES[c].tobytes().decode(), q.tobytes().decode()
    ends = rl.tolist()
    return ([sb[i * L: i * L + e] for i, e in enumerate(ends)], [qb[i * L: i * L + e] for i, e in enumerate(ends)])


def _sam_records(chrom: str, space, frags, r1_anti: np.ndarray, reads: dict, names: list[bytes], *,
                 paired: bool, nh2: np.ndarray) -> list[str]:
    """SAM lines placing each read at its true position (spliced where the fragment is)."""
    L = READ_LENGTH
    st = frags.start.astype(np.int64)
    fl = frags.length.astype(np.int64)
    rl = np.minimum(L, fl)
    mates = []
    for m, anti in (("r1", r1_anti.astype(bool)), ("r2", ~r1_anti.astype(bool)))[: 2 if paired else 1]:
        a = np.where(anti, st + fl - rl, st)
        b = a + rl
        start, end, cigar = _mate_blocks(space, a, b)
        rev = frags.minus.astype(bool) != anti
        seq, qual = _mate_strings(reads[m][0], reads[m][1], rl, rev)
        mates.append((start, end, cigar, rev, seq, qual))
    name = [x.decode() for x in names]
    tag = np.where(nh2, "NH:i:2", "NH:i:1").tolist()
    if not paired:
        start, _end, cigar, rev, seq, qual = mates[0]
        flag = np.where(rev, 16, 0).tolist()
        pos = (start + 1).tolist()
        return [f"{name[i]}\t{flag[i]}\t{chrom}\t{pos[i]}\t60\t{cigar[i]}\t*\t0\t0\t{seq[i]}\t{qual[i]}\t{tag[i]}"
                for i in range(len(name))]
    (s1, e1, c1, rv1, q1s, q1q), (s2, e2, c2, rv2, q2s, q2q) = mates
    tlen = np.maximum(e1, e2) - np.minimum(s1, s2)
    t1 = np.where(s1 <= s2, tlen, -tlen)
    f1 = (1 | 2 | 64 | np.where(rv1, 16, 0) | np.where(rv2, 32, 0)).tolist()
    f2 = (1 | 2 | 128 | np.where(rv2, 16, 0) | np.where(rv1, 32, 0)).tolist()
    p1, p2, t1l = (s1 + 1).tolist(), (s2 + 1).tolist(), t1.tolist()
    out = []
    for i in range(len(name)):
        out.append(f"{name[i]}\t{f1[i]}\t{chrom}\t{p1[i]}\t60\t{c1[i]}\t=\t{p2[i]}\t{t1l[i]}\t{q1s[i]}\t{q1q[i]}\t{tag[i]}")
        out.append(f"{name[i]}\t{f2[i]}\t{chrom}\t{p2[i]}\t60\t{c2[i]}\t=\t{p1[i]}\t{-t1l[i]}\t{q2s[i]}\t{q2q[i]}\t{tag[i]}")
    return out


_COMP = np.array([3, 2, 1, 0, 4], dtype=np.uint8)


def simulate_sample(scale: Scale, data: Path, gtf: Path, *, sample: str, n_fragments: int, paired: bool, seed: int,
                    fastq_out: list[Path] | None, bam_out: Path | None) -> dict:
    """Simulate one library over all contigs: FASTQ (interleaved blocks) and/or a true-position BAM."""
    from cfrna.simulate.model import LibraryParams
    from cfrna.simulate.reads import build_space, make_reads, read_names, sample_fragments

    tables = _annotation_tables(gtf)
    contigs = [f"chr{k + 1}" for k in range(scale.copies)]
    length = _annotation_length(gtf, scale)
    per_contig = np.random.default_rng([seed, 99]).multinomial(n_fragments, np.full(len(contigs), 1 / len(contigs)))
    tmpdir = data / f".tmp_{sample}"
    shutil.rmtree(tmpdir, ignore_errors=True)
    tmpdir.mkdir()
    sort = None
    if bam_out is not None:
        sort = subprocess.Popen(["samtools", "sort", "-@", "2", "-m", "768M", "-T", str(tmpdir / "sort"), "-o",
                                 str(bam_out), "-"], stdin=subprocess.PIPE, text=True)
        sort.stdin.write("@HD\tVN:1.6\tSO:unsorted\n" + "".join(f"@SQ\tSN:{c}\tLN:{length}\n" for c in contigs))
    by_source = np.zeros(5, np.int64)
    chunk_files = []
    for k, chrom in enumerate(contigs):
        rng = np.random.default_rng([seed, k])
        if (data / "contigs" / f"{chrom}.npy").is_file():
            seq = np.load(data / "contigs" / f"{chrom}.npy")
        else:  # counting only: positions and CIGARs are what matters; bases are a plain random background
            seq = rng.integers(0, 4, size=length, dtype=np.uint8)
        model, share = _contig_model(chrom, seq, tables, rng)
        lib = dict(LIBRARY)
        if not (model.genes["source"] == "rrna").any():
            lib["rrna_fraction"] = 0.0
        lib = LibraryParams(**lib)
        space = build_space(model)
        stack = contextlib.ExitStack()
        fh = None
        if fastq_out is not None:
            chunk_files.append([tmpdir / f"{chrom}_R{m}.fq" for m in ((1, 2) if paired else (1,))])
            fh = [stack.enter_context(open(p, "wb")) for p in chunk_files[-1]]  # noqa: SIM115
        left = int(per_contig[k])
        while left > 0:
            n = min(BATCH, left)
            left -= n
            frags, _ = sample_fragments(space, model, share, lib, n, rng)
            reads = make_reads(space, frags, read_length=READ_LENGTH, strandedness="reverse", paired=paired, rng=rng)
            names = read_names(sample, space, model, frags)
            by_source += np.bincount(frags.source, minlength=5)
            if fh is not None:
                for m, f in zip(("r1", "r2"), fh, strict=False):
                    seq_b, qual_b = BASES[reads[m][0]].tobytes(), reads[m][1].tobytes()
                    f.write(b"".join(b"@%s\n%s\n+\n%s\n" % (nm, seq_b[i * READ_LENGTH:(i + 1) * READ_LENGTH],
                                                            qual_b[i * READ_LENGTH:(i + 1) * READ_LENGTH])
                                     for i, nm in enumerate(names)))
            if sort is not None:
                nh2 = rng.random(n) < 0.02
                sort.stdin.write("\n".join(_sam_records(chrom, space, frags, reads["r1_antisense"], reads, names,
                                                        paired=paired, nh2=nh2)) + "\n")
        stack.close()
        log(f"{sample}: {chrom} simulated ({int(per_contig[k]):,} fragments)")
    if sort is not None:
        sort.stdin.close()
        if sort.wait() != 0:
            raise SystemExit("samtools sort failed")
        subprocess.run(["samtools", "index", str(bam_out)], check=True)
    if fastq_out is not None:
        _interleave(chunk_files, fastq_out, per_contig, seed)
    shutil.rmtree(tmpdir, ignore_errors=True)
    from cfrna.simulate.reads import SOURCES

    return {"fragments": int(n_fragments), "paired": paired,
            "source_fraction": {s: round(int(c) / max(1, n_fragments), 4) for s, c in zip(SOURCES, by_source, strict=True)}}


def _interleave(chunk_files: list[list[Path]], out: list[Path], per_contig: np.ndarray, seed: int) -> None:
    """Merge the per-contig FASTQs in random blocks of INTERLEAVE records (mates stay in step)."""
    rng = np.random.default_rng([seed, 7])
    blocks = np.concatenate([np.full(-(-int(n) // INTERLEAVE), k) for k, n in enumerate(per_contig)])
    rng.shuffle(blocks)
    with contextlib.ExitStack() as stack:
        ins = [[stack.enter_context(open(p, "rb")) for p in files] for files in chunk_files]
        outs = [stack.enter_context(gzip.GzipFile(p.with_suffix(".tmp"), "wb", compresslevel=1, mtime=0)) for p in out]
        for k in blocks:
            for m, o in enumerate(outs):
                f = ins[k][m]
                o.write(b"".join(f.readline() for _ in range(4 * INTERLEAVE)))
    for p in out:
        os.replace(p.with_suffix(".tmp"), p)


# ------------------------------------------------------------------------------------------------
# measurements


def _py(*args: str) -> list[str]:
    return [sys.executable, "-m", "cfrna", *args]


def _env(**kw: str) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), **kw}


def _du_mb(path: Path) -> float:
    if path.is_file():
        return round(path.stat().st_size / 1e6, 1)
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6, 1)


_CPU: list[float] = [0.0]  # CPU seconds (user + sys) of the last _timed command and its children


def _timed(cmd: list[str], **kw) -> tuple[float, float]:
    """:func:`benchmarks.count.timed`; a failing command is run again to report its error.

    Also keeps the command's CPU seconds in ``_CPU[0]`` (RUSAGE_CHILDREN grows by the waited-for
    ``time`` process and everything it waited for): on a shared machine CPU time says more than wall time.
    """
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        out = timed(cmd, **kw)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        _CPU[0] = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        return out
    except subprocess.CalledProcessError as exc:
        err = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw).stderr.strip().splitlines()
        raise SystemExit(f"failed (exit {exc.returncode}): {' '.join(cmd)}\n" + "\n".join(err[-5:])) from None


def _run(name: str, cmd: list[str], results: dict, **kw) -> dict:
    wall, rss = _timed(cmd, **kw)
    results[name] = {"wall_s": round(wall, 2), "cpu_s": round(_CPU[0], 2), "peak_rss_mb": round(rss, 1)}
    log(f"{name}: {results[name]}")
    return results[name]


def _summary(path: Path) -> dict[str, int]:
    rows = path.read_text().splitlines()[1:]
    return {r.split("\t")[0]: int(r.split("\t")[1]) for r in rows}


_LAYOUT_SNIPPET = ("import sys, time; t = time.perf_counter(); from cfrna.reference.layout import load_layout; "
                   "lay = load_layout(sys.argv[1]); print(time.perf_counter() - t, lay.n_genes, len(lay.f_start))")
_GTF_SNIPPET = ("import sys, time; t = time.perf_counter(); from cfrna.reference.gtf import read_gtf; "
                "a = read_gtf(sys.argv[1]); print(time.perf_counter() - t, len(a.genes), len(a.features))")


def measure_annotation(gtf: Path, bam: Path | None, wd: Path, results: dict) -> None:
    """GTF parse / count-layout build, cold and cached; the cache hit of a second sample's count."""
    cache = wd / "annotation_cache"
    shutil.rmtree(cache, ignore_errors=True)
    env = _env(CFRNA_ANNOTATION_CACHE=str(cache))
    r = results.setdefault("annotation", {})
    _run("read_gtf_pandas", [sys.executable, "-c", _GTF_SNIPPET, str(gtf)], r, env=env)
    _run("count_layout_cold", [sys.executable, "-c", _LAYOUT_SNIPPET, str(gtf)], r, env=env)
    entries = sorted(cache.glob("*.npz"))
    r["cache_entry_mb"] = _du_mb(entries[0]) if entries else None
    _run("count_layout_cached", [sys.executable, "-c", _LAYOUT_SNIPPET, str(gtf)], r, env=env)
    if bam is None:
        return
    # two samples counted one after the other with an empty cache: the second must take the cached path
    shutil.rmtree(cache, ignore_errors=True)
    for k in (1, 2):
        out = wd / f"cache_sample{k}.tsv"
        t0 = time.perf_counter()
        proc = subprocess.run(_py("count", "--bam", str(bam), "--gtf", str(gtf), "--out", str(out), "-s", "reverse"),
                              capture_output=True, text=True, env=env, check=True)
        hit = "from the annotation cache" in proc.stderr
        r[f"count_sample{k}"] = {"wall_s": round(time.perf_counter() - t0, 2), "layout_from_cache": hit}
        log(f"count sample {k}: {r[f'count_sample{k}']}")
    if not r["count_sample2"]["layout_from_cache"] or r["count_sample1"]["layout_from_cache"]:
        raise SystemExit("the second sample did not take the cached annotation path")


def measure_count(bam: Path, gtf: Path, wd: Path, *, paired: bool, threads: list[int], repeats: int,
                  results: dict) -> bool:
    """featureCounts vs ``cfrna count`` (whole process); True when all counts and categories are identical."""
    n_records = int(subprocess.run(["samtools", "view", "-c", str(bam)], capture_output=True, text=True,
                                   check=True).stdout)
    r = results.setdefault(f"count_{'pe' if paired else 'se'}", {"records": n_records})
    env = _env(CFRNA_ANNOTATION_CACHE=str(wd / "annotation_cache"))
    # warm the annotation cache (one-off per annotation; measured separately) and the numba cache
    subprocess.run(_py("-q", "count", "--bam", str(bam), "--gtf", str(gtf), "--out", str(wd / "warm.tsv"),
                       "-s", "reverse", *(["--paired"] if paired else [])), check=True, env=env)
    ok = True
    for t in threads:
        fc_out = wd / f"fc_T{t}.txt"
        cmd = ["featureCounts", "-T", str(t), "-s", "2", "-a", str(gtf), "-o", str(fc_out), str(bam)]
        if paired:
            cmd[1:1] = ["-p", "--countReadPairs"]
        best = min(((*_timed(cmd), _CPU[0]) for _ in range(repeats)), key=lambda x: x[0])
        c_out = wd / f"cfrna_T{t}.tsv"
        ccmd = _py("-q", "count", "--bam", str(bam), "--gtf", str(gtf), "--out", str(c_out), "-s", "reverse",
                   "--threads", str(t), *(["--paired"] if paired else []))
        cbest = min(((*_timed(ccmd, env=env), _CPU[0]) for _ in range(repeats)), key=lambda x: x[0])
        genes_equal = fc_counts(fc_out) == c_out.read_text().splitlines()[1:]
        fcs, cs = _summary(Path(str(fc_out) + ".summary")), _summary(Path(str(c_out) + ".summary"))
        cats_equal = fcs == cs
        ok &= genes_equal and cats_equal
        r[f"T{t}"] = {"featureCounts_s": round(best[0], 2), "featureCounts_cpu_s": round(best[2], 2),
                      "featureCounts_rss_mb": round(best[1], 1),
                      "cfrna_s": round(cbest[0], 2), "cfrna_cpu_s": round(cbest[2], 2), "cfrna_rss_mb": round(cbest[1], 1),
                      "ratio": round(best[0] / cbest[0], 2), "cfrna_reads_per_s": round(n_records / cbest[0]),
                      "identical_genes": genes_equal, "identical_categories": cats_equal,
                      "assigned": cs.get("Assigned")}
        if not cats_equal:
            r[f"T{t}"]["categories_differ"] = {k: (fcs.get(k), cs.get(k)) for k in set(fcs) | set(cs)
                                               if fcs.get(k) != cs.get(k)}
        log(f"count {'PE' if paired else 'SE'} T{t}: {r[f'T{t}']}")
    return ok


def measure_index(fa: Path, gtf: Path, wd: Path, *, threads: int, minimap2: str | None, star: bool,
                  results: dict, mappy: bool = True, reuse: bool = False) -> dict[str, Path]:
    r = results.setdefault("index", {})
    out: dict[str, Path] = {}
    for aligner in [a for a, on in (("mappy", mappy), ("star", star)) if on]:
        d = wd / f"index_{aligner}"
        done = [p for p in d.glob(f"{aligner}-*") if (p / "manifest.json").is_file()] if d.is_dir() else []
        if reuse and done:  # built (and measured) by an earlier run in this workdir: not timed again
            out[aligner] = done[0]
            r[aligner] = {"reused": str(done[0]), "size_mb": _du_mb(done[0])}
            log(f"{aligner}: index reused from {done[0]}")
            continue
        shutil.rmtree(d, ignore_errors=True)
        _run(aligner, _py("-q", "index", "--fasta", str(fa), "--gtf", str(gtf), "--aligner", aligner, "--outdir",
                          str(d), "--threads", str(threads), "--sjdb-overhang", str(READ_LENGTH - 1)), r, env=_env())
        out[aligner] = next(p for p in d.iterdir() if p.is_dir() and p.name.startswith(aligner))
        r[aligner]["size_mb"] = _du_mb(out[aligner])
    if minimap2 and not (reuse and (wd / "minimap2_cli.mmi").is_file()):
        mmi = wd / "minimap2_cli.mmi"
        _run("minimap2_cli", [minimap2, "-x", "splice:sr", "-t", str(threads), "-d", str(mmi), str(fa)], r)
        r["minimap2_cli"]["size_mb"] = _du_mb(mmi)
    return out


def _fastq_records(path: Path) -> int:
    with gzip.open(path, "rb") as fh:
        return sum(1 for _ in fh) // 4


def measure_align(index: dict[str, Path], fastq: dict[str, list[Path]], wd: Path, *, threads: list[int],
                  minimap2: str | None, results: dict, junction_scoring: bool = False) -> None:
    """reads/s, CPU and peak RSS per aligner and thread count, via benchmarks/align.py's worker."""
    tools = [("mappy", index["mappy"])] if "mappy" in index else []
    if "star" in index:
        tools.append(("star", index["star"]))
    if minimap2:  # the mappy index file (same format and preset) and its junctions.bed
        tools.append((minimap2, index["mappy"] / "genome.mmi"))
    for lib, files in fastq.items():
        n_reads = _fastq_records(files[0]) * len(files)
        r = results.setdefault(f"align_{lib}", {"reads": n_reads})
        for tool, idx in tools:
            name = "minimap2_cli" if tool == minimap2 else tool
            for t in threads:
                cmd = [sys.executable, str(ROOT / "benchmarks" / "align.py"), "--_worker", "--tool", tool, "--index",
                       str(idx), "--fastq-1", str(files[0]), "--threads", str(t), "--work", str(wd / "align_run")]
                if len(files) > 1:
                    cmd += ["--fastq-2", str(files[1])]
                if junction_scoring:
                    cmd.append("--junction-scoring")
                p = subprocess.run(cmd, capture_output=True, text=True, check=True, env=_env())
                res = json.loads(p.stdout.strip().splitlines()[-1])
                res["reads_per_s"] = round(n_reads / res["wall_s"])
                r[f"{name}_T{t}"] = res
                log(f"align {lib} {name} T{t}: {res}")


def measure_sample_path(fastq: dict[str, list[Path]], fa: Path, gtf: Path, index: Path, wd: Path, *, threads: int,
                        results: dict) -> None:
    """``cfrna trim``, ``cfrna align``, ``cfrna count`` and ``cfrna qc`` per sample, as the pipeline runs them."""
    import csv

    env = _env(CFRNA_ANNOTATION_CACHE=str(wd / "annotation_cache"))
    dirs = {k: wd / "pipeline" / k for k in ("trimmed", "alignment", "counts", "qc")}
    for d in dirs.values():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    r = results.setdefault("per_sample", {})
    rows = []
    for lib, files in fastq.items():
        sample = f"hs_{lib}"
        _run(f"trim_{lib}", _py("-q", "trim", "--sample", sample, "--fastq-1", str(files[0]),
                                *(["--fastq-2", str(files[1])] if len(files) > 1 else []),
                                "--outdir", str(dirs["trimmed"]), "--threads", str(threads)), r, env=env)
        trimmed = sorted(dirs["trimmed"].glob(f"{sample}*.fastq.gz"))
        _run(f"align_{lib}", _py("-q", "align", "--fasta", str(fa), "--gtf", str(gtf), "--index", str(index),
                                 "--fastq-1", str(trimmed[0]), *(["--fastq-2", str(trimmed[1])] if len(trimmed) > 1 else []),
                                 "--sample", sample, "--strandedness", "reverse", "--threads", str(threads),
                                 "--outdir", str(dirs["alignment"])), r, env=env)
        _run(f"count_{lib}", _py("-q", "count", "--bam", str(dirs["alignment"] / f"{sample}.bam"), "--gtf", str(gtf),
                                 "--out", str(dirs["counts"] / f"{sample}.counts.tsv"), "-s", "reverse",
                                 "--threads", str(threads), *(["--paired"] if len(files) > 1 else [])), r, env=env)
        rows.append({"sample": sample, "patient_id": f"P{lib}", "visit_month": 0, "arm": "steroid_maintenance",
                     "flare": "no_flare",
                     "fastq_1": str(files[0]), "fastq_2": str(files[1]) if len(files) > 1 else "",
                     "strandedness": "reverse"})
    sheet = wd / "pipeline" / "samplesheet.csv"
    with open(sheet, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    _run("qc_cohort", _py("-q", "qc", "--samplesheet", str(sheet), "--gtf", str(gtf), "--counts-dir",
                          str(dirs["counts"]), "--align-dir", str(dirs["alignment"]), "--trim-dir", str(dirs["trimmed"]),
                          "--outdir", str(dirs["qc"]), "--no-multiqc", "--threads", str(threads)), r, env=env)


def depth_fastq(files: list[Path], reads: int, out_dir: Path) -> tuple[list[Path], int, int]:
    """FASTQs of about ``reads`` records (SE; PE: pairs = reads // 2) made by repeating ``files``.

    A gzip file may hold several members, so the simulated FASTQ's bytes are concatenated k times: no
    re-simulation, and every copy is a real read with its adapter read-through. Returns the paths, k and
    the records per file."""
    have = _fastq_records(files[0])
    want = reads // len(files)
    k = max(1, round(want / max(have, 1)))
    outs = [out_dir / f"depth_x{k}_{f.name}" for f in files]
    for f, o in zip(files, outs, strict=True):
        if o.is_file():
            continue
        blob = f.read_bytes()
        tmp = o.with_name(o.name + ".tmp")
        with open(tmp, "wb") as fh:
            for _ in range(k):
                fh.write(blob)
        os.replace(tmp, o)
    return outs, k, have * k


def measure_trim_depth(fastq: dict[str, list[Path]], wd: Path, *, reads: int, threads: list[int],
                       results: dict) -> None:
    """``cfrna trim`` on FASTQs of ``reads`` reads (SE, at each thread count) / ``reads // 2`` pairs (PE, at the
    largest)."""
    r = results.setdefault("trim_depth", {})
    for lib, files in fastq.items():
        files_d, k, n = depth_fastq(files, reads, files[0].parent)
        for t in (threads if lib == "se" else [max(threads)]):  # PE at the largest thread count only
            out = wd / "trim_depth" / f"{lib}_t{t}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            cell = _run(f"trim_{lib}_t{t}", _py("-q", "trim", "--sample", f"d{lib}", "--fastq-1", str(files_d[0]),
                                                *(["--fastq-2", str(files_d[1])] if len(files_d) > 1 else []),
                                                "--outdir", str(out), "--threads", str(t)), r)
            cell.update(records=n, copies=k, reads_per_s=round(n / max(cell["wall_s"], 1e-9)))
            shutil.rmtree(out, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# driver


def prepare(scale: Scale, stages: set[str], *, seed: int, count_se: int, count_pe: int,
            libs: list[str] | tuple[str, ...] = ("se", "pe")) -> dict:
    """Make (or reuse) the data of ``scale`` under the cache folder; returns the paths (``libs`` only)."""
    data = cache_root() / f"{scale.key}-seed{seed}"
    data.mkdir(parents=True, exist_ok=True)
    p = {"data": data, "gtf": data / "genes.gtf", "fa": data / "genome.fa",
         "fastq": {"se": [data / f"se_{scale.se_reads}_R1.fastq.gz"],
                   "pe": [data / f"pe_{scale.pe_pairs}_R{m}.fastq.gz" for m in (1, 2)]},
         "bam": {"se": data / f"count_se_{count_se}.bam", "pe": data / f"count_pe_{count_pe}.bam"}}
    p["fastq"] = {lib: f for lib, f in p["fastq"].items() if lib in libs}
    p["bam"] = {lib: b for lib, b in p["bam"].items() if lib in libs}
    meta_path = data / "data.json"
    meta: dict = {}  # what this process makes; merged into data.json (several processes may prepare at once)
    if not p["gtf"].is_file():
        t0 = time.perf_counter()
        meta["annotation"] = make_annotation(scale, p["gtf"])
        log(f"annotation: {meta['annotation']} in {time.perf_counter() - t0:.0f} s")
    needs_genome = stages & {"genome", "reads", "index", "align", "trim", "qc"}
    if needs_genome and not p["fa"].is_file():
        t0 = time.perf_counter()
        meta["genome"] = make_genome(scale, p["gtf"], p["fa"], seed=seed)
        meta["genome"]["seconds"] = round(time.perf_counter() - t0, 1)
        log(f"genome: {meta['genome']}")
    if stages & {"align", "trim", "qc", "reads"}:
        for lib, files in p["fastq"].items():
            if not all(f.is_file() for f in files):
                n = scale.se_reads if lib == "se" else scale.pe_pairs
                # when the counting BAM has as many fragments, it is written in the same pass (same fragments)
                same = "count" in stages and n == (count_se if lib == "se" else count_pe)
                t0 = time.perf_counter()
                meta[f"reads_{lib}"] = simulate_sample(scale, data, p["gtf"], sample=lib, n_fragments=n,
                                                       paired=lib == "pe", seed=seed + (1 if lib == "se" else 2),
                                                       fastq_out=files, bam_out=p["bam"][lib] if same else None)
                meta[f"reads_{lib}"]["seconds"] = round(time.perf_counter() - t0, 1)
                if same:
                    meta[f"count_bam_{lib}"] = {"same_fragments_as": f"reads_{lib}"}
    if not p["fa"].is_file():  # counting-only data: BAM bases from a random background (named apart)
        p["bam"] = {lib: b.with_name(b.stem + "_randombg.bam") for lib, b in p["bam"].items()}
    if "count" in stages:
        for lib, bam in p["bam"].items():
            if not bam.is_file():
                n = count_se if lib == "se" else count_pe
                t0 = time.perf_counter()
                meta[f"count_bam_{lib}"] = simulate_sample(scale, data, p["gtf"], sample=f"c{lib}", n_fragments=n,
                                                           paired=lib == "pe", seed=seed + 10, fastq_out=None,
                                                           bam_out=bam)
                meta[f"count_bam_{lib}"]["seconds"] = round(time.perf_counter() - t0, 1)
    merged = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    merged.update(meta)
    tmp = meta_path.with_name(f".data.json.{os.getpid()}")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    os.replace(tmp, meta_path)
    p["meta"] = merged
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="small sizes (12 Mb = 3 x chr19 0-4 Mb, 723 genes, 40k reads; no STAR; alignment at 2 threads): checks only")
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                    help="what to measure (default: everything)")
    ap.add_argument("--libs", nargs="+", choices=["se", "pe"], default=["se", "pe"],
                    help="libraries to count and align (default: both)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=1, help="runs per count setting, fastest kept (default: 1)")
    ap.add_argument("--count-reads", type=int, default=None,
                    help="records of the SE counting BAM (PE: half as many pairs) (default: the scale's read numbers)")
    ap.add_argument("--contigs", type=int, default=None,
                    help="full-size chr19 copies (default: 22 = 1.29 Gb, 66k genes; e.g. 4 = 234 Mb for a mid-size run)")
    ap.add_argument("--align-reads", type=int, default=None,
                    help="SE reads of the alignment FASTQs (PE: half as many pairs) (default: the scale's; "
                         "full: 20 M / 10 M pairs)")
    ap.add_argument("--no-star", action="store_true", help="skip STAR (index and alignment; always skipped by --quick)")
    ap.add_argument("--star-only", action="store_true",
                    help="index and align with STAR alone (to run it as a separate process next to a --no-star run; "
                         "use another --workdir)")
    ap.add_argument("--minimap2", default=None, help="a minimap2 >= 2.29 binary (index -d and alignment)")
    ap.add_argument("--junction-scoring", action="store_true",
                    help="align with annotated splice-site scoring too (cfrna align --junction-scoring; the CLI "
                         "with --junc-bed)")
    ap.add_argument("--reuse-index", action="store_true",
                    help="take the indexes an earlier run left in --workdir (not timed again)")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--workdir", default=None, help="scratch folder (default: <cache>/run-<scale>)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--trim-reads", type=int, default=None,
                    help="also time cfrna trim at this depth (SE reads; PE: half as many pairs), on the alignment "
                         "FASTQs repeated (with the trim stage; e.g. 20000000)")
    ap.add_argument("--prepare-only", action="store_true",
                    help="make (or reuse) the data the stages need and stop: to build it beforehand, in parallel "
                         "processes, and measure later on a quiet machine")
    args = ap.parse_args(argv)
    scale = QUICK if args.quick else FULL
    if args.contigs is not None:
        if args.contigs < 1:
            ap.error("--contigs must be at least 1")
        scale = dataclasses.replace(scale, name=f"{scale.name}{args.contigs}", copies=args.contigs)
    mm2_version = minimap2_version(args.minimap2) if args.minimap2 else None
    if args.minimap2 and mm2_version is None:
        ap.error(f"{args.minimap2}: not minimap2 >= 2.29 (older versions have no splice:sr preset)")
    if args.align_reads is not None:
        if args.align_reads < 2:
            ap.error("--align-reads must be at least 2")
        scale = dataclasses.replace(scale, se_reads=args.align_reads, pe_pairs=args.align_reads // 2)
    star = not (args.no_star or args.quick)
    if args.star_only and (not star or args.minimap2 or set(args.stages) & {"trim", "qc"}):
        ap.error("--star-only needs STAR (no --quick/--no-star), no --minimap2 and no trim/qc stage")
    # quick: alignment only at the largest thread count (every cell loads an index; checks, not speed)
    align_threads = [max(args.threads)] if args.quick else args.threads
    count_se = args.count_reads or scale.count_se
    count_pe = (args.count_reads // 2) if args.count_reads else scale.count_pe
    stages = set(args.stages)
    t_start = time.perf_counter()
    results: dict = {"scale": scale.name, "seed": args.seed, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                     "load_avg_start": os.getloadavg(), "cpus": os.cpu_count(), "minimap2_cli": mm2_version}
    p = prepare(scale, stages, seed=args.seed, count_se=count_se, count_pe=count_pe, libs=args.libs)
    results["data"] = p["meta"]
    if args.prepare_only:
        print(json.dumps(p["meta"], indent=2))
        return 0
    wd = Path(args.workdir) if args.workdir else cache_root() / f"run-{scale.name}"
    wd.mkdir(parents=True, exist_ok=True)
    ok = True
    if "annotation" in stages:
        first = next(iter(p["bam"].values()))
        measure_annotation(p["gtf"], first if first.is_file() else None, wd, results)
    if "count" in stages:
        for lib in p["bam"]:
            ok &= measure_count(p["bam"][lib], p["gtf"], wd, paired=lib == "pe", threads=args.threads,
                                repeats=args.repeats, results=results)
    index = None
    if stages & {"index", "align", "qc"}:
        index = measure_index(p["fa"], p["gtf"], wd, threads=max(args.threads), minimap2=args.minimap2,
                              star=star, results=results, mappy=not args.star_only, reuse=args.reuse_index)
    if "align" in stages:
        measure_align(index, p["fastq"], wd, threads=align_threads, minimap2=args.minimap2, results=results,
                      junction_scoring=args.junction_scoring)
    if stages & {"trim", "qc"}:
        measure_sample_path(p["fastq"], p["fa"], p["gtf"], index["mappy"], wd, threads=max(args.threads),
                            results=results)
    if "trim" in stages and args.trim_reads:
        measure_trim_depth(p["fastq"], wd, reads=args.trim_reads, threads=args.threads, results=results)
    results["load_avg_end"] = os.getloadavg()
    results["total_s"] = round(time.perf_counter() - t_start, 1)
    results["counts_identical"] = ok
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    if not ok:
        log("cfrna count and featureCounts differ (see count_se / count_pe)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
