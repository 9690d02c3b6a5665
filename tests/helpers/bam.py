"""Test BAM and BGZF writers: raw records and blocks for the kernel tests, random BAMs for the counting tests.

``make_synthetic`` and ``make_flag_zoo`` write their GTF and BAM with pysam; ``bam_record`` and
``bgzf_block`` build the bytes by hand (struct/zlib), so the decoders are checked against data that
no reader of ours produced.
"""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import pysam

_CIGAR_OPS = "MIDNSHP=X"


def bam_record(name: str, *, flag: int, tid: int, pos: int, mapq: int, cigar: list[tuple[str, int]], seq_len: int,
               tags: list[tuple[str, str, object]], mtid: int = -1, mpos: int = -1, tlen: int = 0) -> bytes:
    """One BAM record (with its block_size prefix). ``tags``: (tag, type, value); type B takes (subtype, values)."""
    rname = name.encode() + b"\0"
    cig = b"".join(struct.pack("<I", (ln << 4) | _CIGAR_OPS.index(op)) for op, ln in cigar)
    seq = bytes((seq_len + 1) // 2)
    qual = b"\xff" * seq_len
    aux = b""
    for tag, typ, val in tags:
        aux += tag.encode() + typ.encode()
        if typ in "cCsSiI":
            aux += struct.pack("<" + {"c": "b", "C": "B", "s": "h", "S": "H", "i": "i", "I": "I"}[typ], val)
        elif typ == "A":
            aux += val.encode()
        elif typ == "f":
            aux += struct.pack("<f", val)
        elif typ in "ZH":
            aux += val.encode() + b"\0"
        elif typ == "B":
            sub, vals = val
            aux += sub.encode() + struct.pack("<I", len(vals))
            aux += b"".join(struct.pack("<" + {"c": "b", "C": "B", "s": "h", "S": "H", "i": "i", "I": "I",
                                               "f": "f"}[sub], v) for v in vals)
    fixed = struct.pack("<iiBBHHHiiii", tid, pos, len(rname), mapq, 4680, len(cigar), flag, seq_len, mtid, mpos, tlen)
    body = fixed + rname + cig + seq + qual + aux
    return struct.pack("<i", len(body)) + body


def bgzf_block(data: bytes, level: int = 6) -> bytes:
    """One BGZF block (gzip member with the BC extra field) of ``data`` (at most 64 KiB); b"" is the EOF marker."""
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    cdata = comp.compress(data) + comp.flush()
    bsize = 18 + len(cdata) + 8 - 1
    header = b"\x1f\x8b\x08\x04" + b"\0" * 4 + b"\0\xff" + struct.pack("<H", 6) + b"BC" + struct.pack("<HH", 2, bsize)
    return header + cdata + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data))


def write_bam(path, header: dict, records: list[tuple], sort: str) -> None:
    """Write records ``(name, flag, tid, pos, mtid, mpos, nh, hi, mapq, cigartuples or None, query length)``
    (NH/HI omitted when negative), coordinate- or name-sorted (any other ``sort``: as given)."""
    if sort == "coordinate":
        records = sorted(records, key=lambda r: (r[2] if r[2] >= 0 else 1 << 30, r[3]))
    elif sort == "name":
        records = sorted(records, key=lambda r: r[0])
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for name, flag, tid, pos, mtid, mpos, nh, hi, mq, cig, ql in records:
            a = pysam.AlignedSegment(out.header)
            a.query_name = name
            a.flag = flag
            a.reference_id = tid
            a.reference_start = pos
            a.next_reference_id = mtid
            a.next_reference_start = mpos
            a.mapping_quality = mq
            if cig is not None:
                a.cigartuples = cig
            a.query_sequence = "A" * ql
            a.query_qualities = pysam.qualitystring_to_array("I" * ql)
            if nh >= 0:
                a.set_tag("NH", nh)
            if hi >= 0:
                a.set_tag("HI", hi)
            out.write(a)


def make_synthetic(outdir, *, paired: bool, n: int = 3000, seed: int = 0, sort: str = "coordinate"):
    """Write a random GTF and BAM exercising every rule; returns (bam, gtf).

    Genes overlap on both strands, reads are spliced / have deletions, insertions and soft clips,
    NH is absent, 1 or >1, secondaries, supplementaries, unmapped reads and mates, mates on other
    chromosomes, missing mates, low MAPQ and exact duplicates all occur. ``sort``: ``coordinate``,
    ``name`` or ``none``.
    """
    rng = random.Random(seed)
    outdir = Path(outdir)
    chroms = [("chr1", 60000), ("chr2", 40000), ("chrM", 5000), ("chrUn", 3000)]
    lines = []
    gene_locs = []
    gi = 0
    for c, ln in chroms[:3]:
        pos = 200
        while pos < ln - 4000:
            gi += 1
            st = rng.choice("+-")
            nex = rng.randint(1, 4)
            s = pos
            for k in range(nex):
                el = rng.randint(80, 300)
                est = st if rng.random() < 0.93 else rng.choice("+-.")  # a few '.' / mixed-strand exons
                lines.append(f'{c}\tsyn\texon\t{s}\t{s + el - 1}\t.\t{est}\t.\tgene_id "G{gi:03d}"; '
                             f'transcript_id "T{gi:03d}"; exon_number "{k + 1}";')
                s += el + rng.randint(100, 600)
            gene_locs.append((c, pos, s))
            # overlapping gene on either strand sometimes
            if rng.random() < 0.4:
                gi += 1
                os_ = pos + rng.randint(0, max(1, s - pos - 100))
                lines.append(f'{c}\tsyn\texon\t{os_}\t{os_ + rng.randint(50, 400)}\t.\t{rng.choice("+-")}\t.\t'
                             f'gene_id "G{gi:03d}"; transcript_id "T{gi:03d}";')
            pos = s + rng.randint(-50, 1500)
            pos = max(pos, 100)
    gtf = outdir / "syn.gtf"
    gtf.write_text("\n".join(lines) + "\n")
    hdr = {"HD": {"VN": "1.6", "SO": "coordinate" if sort == "coordinate" else "unsorted"},
           "SQ": [{"SN": c, "LN": ln} for c, ln in chroms]}
    if sort == "name":
        hdr["HD"]["SO"] = "queryname"

    def cigar(rl):
        ops = []
        left = rl
        if rng.random() < 0.15:
            sc = rng.randint(1, 10)
            ops.append((4, sc))
            left -= sc
        while left > 0:
            m = min(left, rng.randint(10, 60))
            ops.append((0, m))
            left -= m
            if left > 0:
                r = rng.random()
                if r < 0.25:
                    ops.append((3, rng.randint(50, 800)))
                elif r < 0.35:
                    ops.append((2, rng.randint(1, 30)))
                elif r < 0.45:
                    ins = min(left, rng.randint(1, 3))
                    ops.append((1, ins))
                    left -= ins
        return ops

    recs = []
    cnames = [c for c, _ in chroms]

    def place():
        if rng.random() < 0.8:
            c, s, e = rng.choice(gene_locs)
            return cnames.index(c), rng.randint(max(0, s - 300), e)
        c = rng.randrange(len(chroms))
        return c, rng.randint(0, chroms[c][1] - 1200)

    def seg(name, flag, tid, pos, cig, mq, nh, mtid=-1, mpos=-1, hi=-1):
        recs.append((name, flag, tid, pos, cig, mq, nh, mtid, mpos, hi))

    last = None
    for i in range(n):
        name = f"r{i:06d}"
        nh = rng.choice([-1, -1, 1, 1, 1, 1, 1, 2, 3]) if rng.random() < 0.9 else 0
        mq = rng.choice([0, 1, 3, 10, 30, 60, 60, 60, 255])
        extra = 0
        r = rng.random()
        if r < 0.04:
            extra = 256
        elif r < 0.06:
            extra = 2048
        if last is not None and rng.random() < 0.05:
            tid, pos, off = last  # duplicate start (and mate start)
        else:
            tid, pos = place()
            off = rng.randint(0, 400)
        last = (tid, pos, off)
        rl = rng.randint(30, 100)
        if not paired:
            if rng.random() < 0.05:
                seg(name, 4, -1 if rng.random() < 0.5 else tid, -1 if rng.random() < 0.5 else pos, None, 0, -1)
            else:
                seg(name, extra | (16 if rng.random() < 0.5 else 0), tid, pos, cigar(rl), mq, nh)
            continue
        # pairs
        kind = rng.random()
        r1rev = rng.random() < 0.5
        mtid, mpos = tid, pos + off
        if kind < 0.05:  # mate on another chromosome
            mtid, mpos = place()
        f1 = 1 | 64 | extra | (16 if r1rev else 0) | (0 if r1rev else 32)
        f2 = 1 | 128 | extra | (0 if r1rev else 16) | (32 if r1rev else 0)
        nh2 = nh if rng.random() < 0.9 else rng.choice([-1, 1, 2])
        if kind < 0.05:
            seg(name, f1, tid, pos, cigar(rl), mq, nh, mtid, mpos)
            seg(name, f2, mtid, mpos, cigar(rl), mq, nh2, tid, pos)
        elif kind < 0.10:  # read 2 unmapped, placed at read 1
            seg(name, (f1 | 8) & ~32, tid, pos, cigar(rl), mq, nh, tid, pos)
            seg(name, (f2 | 4) & ~16, tid, pos, None, 0, -1, tid, pos)
        elif kind < 0.13:  # read 1 unmapped, placed at read 2
            seg(name, (f1 | 4) & ~16, mtid, mpos, None, 0, -1, mtid, mpos)
            seg(name, (f2 | 8) & ~32, mtid, mpos, cigar(rl), mq, nh2, mtid, mpos)
        elif kind < 0.15:  # both unmapped
            seg(name, 1 | 64 | 4 | 8, -1, -1, None, 0, -1)
            seg(name, 1 | 128 | 4 | 8, -1, -1, None, 0, -1)
        elif kind < 0.17:  # mate missing from the file
            seg(name, f1 if rng.random() < 0.5 else f2, tid, pos, cigar(rl), mq, nh, mtid, mpos)
        elif kind < 0.18:  # an unpaired read among pairs
            seg(name, extra | (16 if r1rev else 0), tid, pos, cigar(rl), mq, nh)
        else:  # HI on both mates, on read 1 only (featureCounts then does not pair them), or none
            h = rng.random()
            hi1, hi2 = (1, 1) if h < 0.3 else (1, -1) if h < 0.35 else (-1, -1)
            seg(name, f1, tid, pos, cigar(rl), rng.choice([mq, mq, 0]), nh, mtid, mpos, hi1)
            seg(name, f2, mtid, mpos, cigar(rl), mq, nh2, tid, pos, hi2)
    rows = []
    for name, flag, tid, pos, cig, mq, nh, mtid, mpos, hi in recs:
        mapped_cigar = bool(cig) and not flag & 4
        ql = sum(ln for op, ln in cig if op in (0, 1, 4, 7, 8)) if mapped_cigar else 40
        rows.append((name, flag, tid, pos, mtid, mpos, nh, hi, mq, cig if mapped_cigar else None, ql))
    bam = outdir / f"syn_{'pe' if paired else 'se'}_{sort}.bam"
    write_bam(bam, hdr, rows, sort)
    return bam, gtf


def make_flag_zoo(outdir, *, n: int = 2500, seed: int = 0, sort: str = "coordinate", dup_rate: float = 0.1):
    """A GTF and a BAM holding each flag combination of paired aligner output; returns (bam, gtf).

    Per template: proper pairs (99/147, 163/83); singletons (73/133, 89/165, 137/69, 153/101) with the
    unmapped mate placed at its mate, or unplaced, and the mapped mate's RNEXT pointing at itself
    (HISAT2), at nothing or at the unmapped mate; non-proper pairs on one chromosome and on two
    (65/129, 81/161, 97/145, 113/177); multi-mapping templates with NH and HI (or NH only, as HISAT2
    writes them) whose secondary pairs are 355/403 or 339/419, with secondary mates of unpaired
    alignments (329/393, 345/409) and repeated keys; both mates unmapped (77/141). A share
    ``dup_rate`` of the records carries the duplicate flag 0x400.
    """
    rng = random.Random(seed)
    outdir = Path(outdir)
    chroms = [("chr1", 50000), ("chr2", 30000)]
    lines, loci = [], []
    gi = 0
    for c, ln in chroms:
        pos = 300
        while pos < ln - 3000:
            gi += 1
            st = rng.choice("+-")
            s = pos
            for k in range(rng.randint(1, 3)):
                el = rng.randint(100, 300)
                lines.append(f'{c}\tzoo\texon\t{s}\t{s + el - 1}\t.\t{st}\t.\tgene_id "Z{gi:03d}"; '
                             f'transcript_id "Z{gi:03d}.1"; exon_number "{k + 1}";')
                s += el + rng.randint(100, 500)
            if rng.random() < 0.3:  # a gene on the other strand inside
                gi += 1
                o = rng.randint(pos, s - 100)
                lines.append(f'{c}\tzoo\texon\t{o}\t{o + 150}\t.\t{"-" if st == "+" else "+"}\t.\t'
                             f'gene_id "Z{gi:03d}"; transcript_id "Z{gi:03d}.1";')
            loci.append((0 if c == "chr1" else 1, pos, s))
            pos = s + rng.randint(200, 1500)
    gtf = outdir / "zoo.gtf"
    gtf.write_text("\n".join(lines) + "\n")
    recs = []
    rl = 50

    def place():
        if rng.random() < 0.85:
            t, s, e = rng.choice(loci)
            return t, rng.randint(max(0, s - 200), e)
        t = rng.randrange(2)
        return t, rng.randint(0, chroms[t][1] - 500)

    def add(name, flag, tid, pos, mtid, mpos, *, nh=1, hi=-1, mq=60, cig=None):
        if rng.random() < dup_rate:  # flagged duplicate (one mate only, or an unmapped one, at times)
            flag |= 1024
        recs.append((name, flag, tid, pos, mtid, mpos, nh, hi, mq, cig))

    def cigar():
        if rng.random() < 0.2:
            a = rng.randint(10, rl - 10)
            return [(0, a), (3, rng.randint(100, 600)), (0, rl - a)]
        return [(0, rl)]

    for i in range(n):
        name = f"q{i:05d}"
        kind = rng.randrange(9)
        t, p = place()
        off = rng.randint(0, 300)
        r1rev = rng.random() < 0.5
        fr1 = 1 | 64 | (16 if r1rev else 32)
        fr2 = 1 | 128 | (32 if r1rev else 16)
        if kind == 0:  # proper pair
            a, b = (p + off, p) if r1rev else (p, p + off)
            add(name, fr1 | 2, t, a, t, b)
            add(name, fr2 | 2, t, b, t, a)
        elif kind == 1:  # singleton: one mate unmapped
            mapped_r1 = rng.random() < 0.5
            rev = 16 if rng.random() < 0.5 else 0
            conv = rng.randrange(3)
            fm = 1 | (64 if mapped_r1 else 128) | 8 | rev
            fu = 1 | (128 if mapped_r1 else 64) | 4 | (32 if rev else 0)
            if conv == 0:  # HISAT2/BWA: unmapped mate placed at its mate, both RNEXT at the mapped mate
                add(name, fm, t, p, t, p)
                add(name, fu, t, p, t, p, nh=-1, mq=0)
            elif conv == 1:  # mapped mate RNEXT '*', unmapped placed and pointing at the mapped mate
                add(name, fm, t, p, -1, -1)
                add(name, fu, t, p, t, p, nh=-1, mq=0)
            else:  # unmapped mate not placed at all
                add(name, fm, t, p, -1, -1)
                add(name, fu, -1, -1, t, p, nh=-1, mq=0)
        elif kind in (2, 3):  # non-proper: same strand or far apart, same or other chromosome
            t2, p2 = place() if kind == 3 else (t, min(chroms[t][1] - 100, p + rng.randint(2000, 20000)))
            f1 = 1 | 64 | rng.choice([0, 16])
            f2 = 1 | 128 | rng.choice([0, 16])
            f1 |= 32 if f2 & 16 else 0
            f2 |= 32 if f1 & 16 else 0
            add(name, f1, t, p, t2, p2, cig=cigar())
            add(name, f2, t2, p2, t, p, cig=cigar())
        elif kind in (4, 5):  # multi-mapping template: primary pair and secondary pairs, NH with or without HI
            k = rng.randint(2, 4)
            use_hi = kind == 4
            a, b = (p + off, p) if r1rev else (p, p + off)
            add(name, fr1 | 2, t, a, t, b, nh=k, hi=1 if use_hi else -1, mq=1)
            add(name, fr2 | 2, t, b, t, a, nh=k, hi=1 if use_hi else -1, mq=1)
            for h in range(2, k + 1):
                t3, p3 = place()
                q = rng.randint(0, 300)
                s1, s2 = (p3 + q, p3) if r1rev else (p3, p3 + q)
                hi = h if use_hi else -1
                u = rng.random()
                if u < 0.5:  # secondary proper pair (355/403 or 339/419)
                    add(name, 256 | fr1 | 2, t3, s1, t3, s2, nh=k, hi=hi, mq=1, cig=cigar())
                    add(name, 256 | fr2 | 2, t3, s2, t3, s1, nh=k, hi=hi, mq=1, cig=cigar())
                    if not use_hi and rng.random() < 0.3:  # HISAT2: the same pair again, another splice
                        add(name, 256 | fr1 | 2, t3, s1, t3, s2, nh=k, mq=1, cig=cigar())
                        add(name, 256 | fr2 | 2, t3, s2, t3, s1, nh=k, mq=1, cig=cigar())
                elif u < 0.8:  # secondary mates of unpaired alignments (329/393), RNEXT at themselves
                    add(name, 256 | 1 | 64 | 8 | (16 if r1rev else 0), t3, s1, t3, s1, nh=k, hi=hi, mq=1)
                    add(name, 256 | 1 | 128 | 8 | (0 if r1rev else 16), t3, s2, t3, s2, nh=k, hi=hi, mq=1)
                else:  # one secondary mate alone (345 / 409)
                    add(name, 256 | 1 | rng.choice([64, 128]) | 8 | 16, t3, s1, t3, s1, nh=k, hi=hi, mq=1)
        elif kind == 6:  # both unmapped
            add(name, 1 | 64 | 4 | 8, -1, -1, -1, -1, nh=-1, mq=0)
            add(name, 1 | 128 | 4 | 8, -1, -1, -1, -1, nh=-1, mq=0)
        elif kind == 7:  # proper pair, spliced, low MAPQ on one mate
            a, b = (p + off, p) if r1rev else (p, p + off)
            add(name, fr1 | 2, t, a, t, b, cig=cigar(), mq=rng.choice([0, 60]))
            add(name, fr2 | 2, t, b, t, a, cig=cigar())
        else:  # discordant pair with both mates unique on other chromosomes and NH on one only
            t2, p2 = place()
            add(name, fr1, t, p, t2, p2)
            add(name, fr2, t2, p2, t, p, nh=-1)
    hdr = {"HD": {"VN": "1.6", "SO": "coordinate" if sort == "coordinate" else "queryname"},
           "SQ": [{"SN": c, "LN": ln} for c, ln in chroms]}
    bam = outdir / f"zoo_{sort}.bam"
    write_bam(bam, hdr, [(name, flag, tid, pos, mtid, mpos, nh, hi, mq, None if flag & 4 else cig or [(0, rl)], rl)
                         for name, flag, tid, pos, mtid, mpos, nh, hi, mq, cig in recs], sort)
    return bam, gtf
