"""Each numba kernel against a naive Python reference, and the ordered-threads scheduler.

Marked ``kernels``: ``make test-nojit`` runs them again with ``NUMBA_DISABLE_JIT=1`` (the kernels as
plain Python, so that coverage and tracebacks see their lines); inputs are tiny for that reason.
Kernels covered elsewhere against external references: the counting kernels (featureCounts,
tests/test_count*.py), the DE kernels (R DESeq2 / limma, tests/test_de_*.py), the minimap2 kernels
(mappy's Python API, tests/test_align_native.py).
"""

from __future__ import annotations

import gzip
import random
import struct
import threading
import time
import zlib

import numpy as np
import pytest

from cfrna import _dense_kernels as D
from cfrna._threads import Cancelled, run_ordered
from cfrna.io import _bam_kernels as BK
from cfrna.io import _bgzf_kernels as GK
from cfrna.io import _fastq_kernels as FK
from tests.helpers.bam import bam_record, bgzf_block

pytestmark = pytest.mark.kernels

_M64 = (1 << 64) - 1


# ------------------------------------------------------------------------------------------ BAM


def _naive_hash(name: bytes) -> int:
    """The decoder's read-name hash, with Python integers."""
    h = 14695981039346656037
    k = 0
    ln = len(name)
    while k + 8 <= ln:
        h = ((h ^ int.from_bytes(name[k:k + 8], "little")) * 0x9E3779B97F4A7C15) & _M64
        h ^= h >> 31
        k += 8
    if k < ln:
        h = ((h ^ int.from_bytes(name[k:], "little") ^ ln) * 0x9E3779B97F4A7C15) & _M64
        h ^= h >> 31
    return h


def _naive_decode(buf: bytes) -> list[tuple]:
    """(flag, tid, pos, mapq, nh, hi, mtid, mpos, qhash, has_n, blocks) per complete record."""
    out = []
    off = 0
    while off + 4 <= len(buf):
        (size,) = struct.unpack_from("<i", buf, off)
        if off + 4 + size > len(buf):
            break
        p = off + 4
        tid, pos, lname, mapq, _bin, ncig, flag, lseq, mtid, mpos, _tlen = struct.unpack_from("<iiBBHHHiiii", buf, p)
        q = p + 32
        qhash = _naive_hash(buf[q:q + lname - 1])
        q += lname
        cig = [struct.unpack_from("<I", buf, q + 4 * c)[0] for c in range(ncig)]
        q += 4 * ncig + (lseq + 1) // 2 + lseq
        unmapped = flag & 4 or tid < 0
        blocks, ref, start, has_n = [], pos + 1, None, 0
        for v in cig:
            op, ln = v & 15, v >> 4
            if op in (0, 7, 8):
                start = ref if start is None else start
                ref += ln
            elif op in (2, 3):
                if start is not None and not unmapped:
                    blocks.append((start, ref - 1))
                start = None
                has_n |= op == 3
                ref += ln
        if start is not None and not unmapped:
            blocks.append((start, ref - 1))
        nh = hi = -1
        end = p + size
        sizes = {"c": 1, "C": 1, "A": 1, "s": 2, "S": 2, "i": 4, "I": 4, "f": 4}
        fmt = {"c": "<b", "C": "<B", "s": "<h", "S": "<H", "i": "<i", "I": "<I"}
        while q < end:
            tag, typ = buf[q:q + 2], chr(buf[q + 2])
            q += 3
            if typ in fmt:
                (val,) = struct.unpack_from(fmt[typ], buf, q)
                if tag == b"NH":
                    nh = val
                elif tag == b"HI":
                    hi = val
            if typ in sizes:
                q += sizes[typ]
            elif typ in "ZH":
                q = buf.index(b"\0", q) + 1
            else:  # B
                sub, cnt = chr(buf[q]), struct.unpack_from("<I", buf, q + 1)[0]
                q += 5 + sizes[sub] * cnt
        out.append((flag, tid, pos, mapq, nh, hi, mtid, mpos, qhash, has_n, blocks))
        off = end
    return out


def _random_records(rng: random.Random, n: int, n_ref: int = 3) -> list[bytes]:
    recs = []
    for i in range(n):
        name = "r" + "x" * rng.randrange(0, 20) + str(i)
        ops = [(rng.choice("MMMIDNS=X"), rng.randrange(1, 40)) for _ in range(rng.randrange(0, 6))]
        tags = []
        if rng.random() < 0.8:
            tags.append(("NH", rng.choice("cCsSiI"), rng.randrange(1, 100)))
        if rng.random() < 0.6:
            tags.append(("HI", rng.choice("CsI"), rng.randrange(1, 100)))
        if rng.random() < 0.5:
            tags.append(("XZ", "Z", "hello"))
        if rng.random() < 0.3:
            tags.append(("XB", "B", ("s", [1, -2, 3])))
        if rng.random() < 0.3:
            tags.append(("XF", "f", 1.5))
        flag = rng.choice([0, 16, 4, 256, 1 | 2 | 64, 1 | 128 | 16, 2048])
        tid = -1 if flag == 4 and rng.random() < 0.5 else rng.randrange(n_ref)
        recs.append(bam_record(name, flag=flag, tid=tid, pos=rng.randrange(0, 10000), mapq=rng.randrange(0, 61),
                               cigar=ops, seq_len=rng.randrange(0, 30), mtid=rng.randrange(-1, n_ref),
                               mpos=rng.randrange(-1, 10000), tags=tags))
    return recs


def _decode(buf: bytes, cap: int = 64, bcap: int = 512, n_ref: int = 3):
    a = np.frombuffer(buf, np.uint8)
    cols = [np.zeros(cap, t) for t in (np.int32,) * 8 + (np.uint64, np.int8, np.int64, np.int32)]
    bs, be = np.zeros(bcap, np.int32), np.zeros(bcap, np.int32)
    with np.errstate(over="ignore"):  # the hash wraps around (uint64), also as plain Python
        n, used, err, eoff = BK.decode_records(a, n_ref, *cols, bs, be, True)
    flag, tid, pos, mapq, nh, hi, mtid, mpos, qh, has_n, boff, nblk = cols
    got = [(int(flag[i]), int(tid[i]), int(pos[i]), int(mapq[i]), int(nh[i]), int(hi[i]), int(mtid[i]), int(mpos[i]),
            int(qh[i]), int(has_n[i]), [(int(bs[j]), int(be[j])) for j in range(boff[i], boff[i] + nblk[i])])
           for i in range(int(n))]
    return got, int(used), int(err), int(eoff)


@pytest.mark.parametrize("seed", [1, 2])
def test_bam_decode_matches_naive(seed):
    rng = random.Random(seed)
    buf = b"".join(_random_records(rng, 40))
    got, used, err, _ = _decode(buf)
    assert err == 0 and used == len(buf)
    assert got == _naive_decode(buf)


def test_bam_decode_stops_at_an_incomplete_record_and_at_capacity():
    recs = _random_records(random.Random(3), 6)
    buf = b"".join(recs)
    got, used, err, _ = _decode(buf[:-5])  # the last record is cut: left for the next chunk
    assert err == 0 and used == len(buf) - len(recs[-1]) and len(got) == 5
    got, used, err, _ = _decode(buf, cap=2)
    assert err == 0 and used == len(recs[0]) + len(recs[1]) and got == _naive_decode(buf)[:2]


# record layout: 4 size + 32 fixed (tid at 4, l_read_name at 12) + "r\0" -> CIGAR at 38
@pytest.mark.parametrize("mutate,code", [
    (lambda r: struct.pack("<i", 8) + r[4:], 1),  # block size < 32
    (lambda r: r[:12] + b"\0" + r[13:], 2),  # read name length 0
    (lambda r: r[:38] + struct.pack("<I", (5 << 4) | 15) + r[42:], 4),  # CIGAR operation 15
    (lambda r: r[:4] + struct.pack("<i", 7) + r[8:], 8),  # reference id out of range
    (lambda r: r[:-1], 6),  # NH tag cut short (the record size says so)
])
def test_bam_decode_error_codes(mutate, code):
    rec = mutate(bam_record("r", flag=0, tid=0, pos=10, mapq=5, cigar=[("M", 5)], seq_len=5, tags=[("NH", "C", 1)]))
    if code == 6:
        rec = struct.pack("<i", len(rec) - 4) + rec[4:]
    got, used, err, eoff = _decode(rec + bam_record("s", flag=4, tid=-1, pos=-1, mapq=0, cigar=[], seq_len=0, tags=[]))
    assert err == code and used == 0 and eoff == 0 and got == []
    assert code in BK.DECODE_ERRORS


# ----------------------------------------------------------------------------------------- BGZF


def _naive_frames(raw: bytes) -> list[tuple]:
    """(start, payload start, payload end, crc, isize) of each complete BGZF block."""
    out, i = [], 0
    while i + 18 <= len(raw):
        (xlen,) = struct.unpack_from("<H", raw, i + 10)
        extra = raw[i + 12:i + 12 + xlen]
        j, bsize = 0, None
        while j + 4 <= len(extra):
            slen = struct.unpack_from("<H", extra, j + 2)[0]
            if extra[j:j + 2] == b"BC":
                bsize = struct.unpack_from("<H", extra, j + 4)[0]
            j += 4 + slen
        total = bsize + 1
        if i + total > len(raw):
            break
        crc, isz = struct.unpack_from("<II", raw, i + total - 8)
        out.append((i, i + 12 + xlen, i + total - 8, crc, isz))
        i += total
    return out


def _frame(raw: bytes):
    a = np.frombuffer(raw, np.uint8)
    cap = len(raw) // 28 + 1
    bstart, ps, pe, isz = (np.zeros(cap, np.int64) for _ in range(4))
    crc = np.zeros(cap, np.uint32)
    k, nxt, err, eoff = GK.frame_blocks(a, len(raw), bstart, ps, pe, crc, isz)
    rows = [(int(bstart[b]), int(ps[b]), int(pe[b]), int(crc[b]), int(isz[b])) for b in range(int(k))]
    return rows, int(nxt), int(err), int(eoff)


def test_bgzf_framing_matches_naive_and_inflates_like_gzip(tmp_path):
    from cfrna.io.bgzf import RESERVE, inflate_chunk, iter_raw_chunks

    rng = random.Random(5)
    payloads = [bytes(rng.randrange(65, 70) for _ in range(rng.randrange(0, 3000))) for _ in range(6)] + [b""]
    raw = b"".join(bgzf_block(p) for p in payloads)
    rows, nxt, err, _ = _frame(raw)
    assert err == 0 and nxt == len(raw) and rows == _naive_frames(raw)
    rows, nxt, err, _ = _frame(raw[:-10])  # the last block is incomplete: left for the next window
    assert err == 0 and rows == _naive_frames(raw)[:-1] and nxt == rows[-1][2] + 8
    path = tmp_path / "x.bgz"
    path.write_bytes(raw)
    out = np.empty(RESERVE + (1 << 16), np.uint8)
    data = b"".join(out[RESERVE:RESERVE + inflate_chunk(c, out, str(path))].tobytes()
                    for c in iter_raw_chunks(path, chunk_bytes=1 << 16))
    assert data == gzip.decompress(raw) == b"".join(payloads)


def test_bgzf_framing_errors():
    block = bgzf_block(b"abc")
    assert _frame(b"\0" + block)[2:] == (1, 0)  # bad magic at byte 0
    plain = gzip.compress(b"abc" * 10)  # gzip without the BC field (FEXTRA unset): read as bad magic/no BC
    assert _frame(plain)[2] in (1, 2)
    no_bc = block[:12] + b"XY" + block[14:]
    assert _frame(no_bc)[2] == 2


# ---------------------------------------------------------------------------------------- FASTQ


def _naive_fastq(text: bytes) -> list[tuple[bytes, bytes, bytes]]:
    lines = text.split(b"\n")
    if lines and lines[-1] == b"":
        lines = lines[:-1]
    out = []
    for i in range(0, len(lines) - 3, 4):
        head, seq, _plus, qual = (ln.rstrip(b"\r") for ln in lines[i:i + 4])
        rid = head[1:].split()[0] if head[1:].split() else b""
        if len(rid) > 2 and rid[-2:] in (b"/1", b"/2"):
            rid = rid[:-2]
        out.append((rid, seq, qual))
    return out


def _fastq_text(rng: random.Random, n: int, mate: str = "") -> bytes:
    recs = []
    for i in range(n):
        seq = "".join(rng.choice("ACGTN") for _ in range(rng.randrange(0, 12)))
        head = f"@read{i}{mate}" + (" extra words" if rng.random() < 0.5 else "")
        plus = "+" + (head[1:] if rng.random() < 0.3 else "")
        eol = "\r\n" if rng.random() < 0.2 else "\n"
        recs.append(eol.join([head, seq, plus, "I" * len(seq)]) + eol)
    return "".join(recs).encode()


def _parse(buf: bytes, at_eof=True, cap=100):
    rec = np.zeros((cap, FK.N_RCOL), np.int64)
    k, used, err, erec = FK.parse_fastq(np.frombuffer(buf, np.uint8), len(buf), at_eof, rec)
    rows = [(buf[r[FK.R_NAME]:r[FK.R_ID_END]], buf[r[FK.R_SEQ]:r[FK.R_SEQ] + r[FK.R_LEN]],
             buf[r[FK.R_QUAL]:r[FK.R_QUAL] + r[FK.R_LEN]]) for r in rec[:k]]
    return rows, int(used), int(err), int(erec), rec[:k]


@pytest.mark.parametrize("seed", [1, 2])
def test_fastq_parse_matches_naive_at_any_chunk_boundary(seed):
    rng = random.Random(seed)
    text = _fastq_text(rng, 12, mate="/1")
    ref = _naive_fastq(text.replace(b"\r\n", b"\n"))
    assert _parse(text)[0] == ref
    for cut in sorted(rng.sample(range(1, len(text)), 8)):  # a chunk ends anywhere: the rest waits
        rows, used, err, _, _ = _parse(text[:cut], at_eof=False)
        assert err == 0 and rows == ref[:len(rows)]
        rest, used2, err2, _, _ = _parse(text[used:], at_eof=True)
        assert err2 == 0 and rows + rest == ref and used + used2 == len(text)


@pytest.mark.parametrize("text,code", [
    (b"read\nACGT\n+\nIIII\n", 1), (b"@r\nACGT\nIIII\nIIII\n", 2), (b"@r\nACGT\n+\nIII\n", 3),
    (b"@r\nACGT\n+s\nIIII\n", 5), (b"@r\nAC\xc3\xa9T\n+\nIIII\n", 6),
])
def test_fastq_parse_errors(text, code):
    _, used, err, erec, _ = _parse(b"@ok\nA\n+\nI\n" + text)
    assert (err, erec, used) == (code, 1, 10) and code in FK.FASTQ_ERRORS


def test_fastq_mate_ids():
    t1, t2 = _fastq_text(random.Random(4), 6, "/1"), _fastq_text(random.Random(4), 6, "/2")
    _, _, _, _, r1 = _parse(t1)
    _, _, _, _, r2 = _parse(t2)
    a1, a2 = np.frombuffer(t1, np.uint8), np.frombuffer(t2, np.uint8)
    assert FK.first_id_mismatch(a1, r1, a2, r2, len(r1)) == -1
    t3 = t2.replace(b"@read3/2", b"@read9/2", 1)
    _, _, _, _, r3 = _parse(t3)
    assert FK.first_id_mismatch(a1, r1, np.frombuffer(t3, np.uint8), r3, len(r1)) == 3


# ---------------------------------------------------------------------------------------- dense


@pytest.mark.parametrize("p", [1, 3, 5])
def test_cholesky_matches_numpy(p):
    rng = np.random.default_rng(p)
    m = rng.normal(size=(p, p))
    a = m @ m.T + p * np.eye(p)
    big = np.full((p + 2, p + 2), 7.0)  # only the leading p x p block is used
    big[:p, :p] = a
    assert D.chol_inplace(big, p)
    L = np.tril(big[:p, :p])
    np.testing.assert_allclose(L, np.linalg.cholesky(a), rtol=1e-12, atol=1e-12)
    assert big[p, p] == 7.0 and (p == 1 or big[0, p - 1] == a[0, p - 1])
    b = rng.normal(size=p)
    out = np.empty(p)
    D.chol_solve(big, b, p, out)
    np.testing.assert_allclose(out, np.linalg.solve(a, b), rtol=1e-10)
    bad = -np.eye(p)
    assert not D.chol_inplace(bad, p)


def _brent(f, a, b, x0, rtol, atol, maxit=100):
    st = np.empty(D.BRENT_STATE)
    D.brent_start(st, a, b, x0, f(x0))
    for _ in range(maxit):
        u = D.brent_next(st, rtol, atol)
        if u != u:
            return st[D.BRENT_X], True
        D.brent_update(st, u, f(u))
    return st[D.BRENT_X], False


@pytest.mark.parametrize("f,a,b", [
    (lambda x: (x - 0.3) ** 2, -1.0, 1.0),
    (lambda x: np.cos(x), 2.0, 5.0),
    (lambda x: abs(x - 1.7) + 0.1 * x * x, 0.0, 4.0),
    (lambda x: x, 0.0, 1.0),  # minimum at a bound
])
def test_brent_matches_fminbound_and_a_grid(f, a, b):
    from scipy.optimize import fminbound

    x, conv = _brent(f, a, b, a + 0.3819660112501051 * (b - a), 1.4901161193847656e-08, 1e-7 / 3.0)
    ref = fminbound(f, a, b, xtol=1e-7)
    grid = np.linspace(a, b, 20001)
    best = grid[np.argmin([f(g) for g in grid])]
    assert conv and a <= x <= b
    assert abs(x - ref) < 1e-6 and abs(x - best) < 1e-3


# ------------------------------------------------------------------------------------ scheduler


def _sleepy(rng):
    def work(i):
        time.sleep(rng.random() * 0.002)
        return i * i
    return work


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_run_ordered_emits_in_input_order(threads):
    got = []
    n = run_ordered(range(60), lambda: (_sleepy(random.Random(threading.get_ident())), None), got.append,
                    threads=threads, window=5)
    assert n == 60 and got == [i * i for i in range(60)]


def test_run_ordered_bounds_items_in_flight():
    read, emitted, worst = [0], [0], [0]

    def items():
        for i in range(40):
            read[0] += 1
            worst[0] = max(worst[0], read[0] - emitted[0])
            yield i

    def emit(_):
        emitted[0] += 1

    run_ordered(items(), lambda: (_sleepy(random.Random(1)), None), emit, threads=3, window=4)
    assert emitted[0] == 40 and worst[0] <= 4


@pytest.mark.parametrize("threads", [1, 3])
def test_run_ordered_raises_the_earliest_error_and_closes_workers(threads):
    closed, got = [], []

    def make():
        def work(i):
            if i == 13:
                time.sleep(0.02)  # fails last in time, first in order
                raise ValueError("item 13")
            if i == 17:
                raise KeyError("item 17")
            return i
        return work, lambda: closed.append(1)

    with pytest.raises(ValueError, match="item 13"):
        run_ordered(range(50), make, got.append, threads=threads, window=8)
    assert got == list(range(len(got))) and len(got) <= 13  # nothing after the failed item
    assert len(closed) == threads


@pytest.mark.parametrize("where", ["reader", "emit"])
def test_run_ordered_reader_and_emit_errors(where):
    def items():
        yield from range(5)
        if where == "reader":
            raise OSError("read failed")
        yield from range(5, 10)

    def emit(x):
        if where == "emit" and x == 3:
            raise RuntimeError("emit failed")

    with pytest.raises(OSError if where == "reader" else RuntimeError):
        run_ordered(items(), lambda: ((lambda x: x), None), emit, threads=2)


def test_run_ordered_cancelled_work_is_not_reported_and_on_stop_wakes_it():
    gate = threading.Event()

    def work(i):
        if i == 0:
            time.sleep(0.01)
            raise ValueError("first")
        if not gate.wait(5):  # blocked on another item, as the BAM reader's hand-over is
            raise AssertionError("not woken")
        raise Cancelled

    with pytest.raises(ValueError, match="first"):
        run_ordered(range(4), lambda: (work, None), lambda _: None, threads=3, on_stop=gate.set)


def test_make_worker_failure_is_raised():
    def make():
        raise MemoryError("no buffer")

    with pytest.raises(MemoryError):
        run_ordered(range(3), make, lambda _: None, threads=2)


def test_zlib_reference_is_raw_deflate():
    # the test writer's blocks are what samtools writes: raw deflate (wbits -15) with a BC extra field
    blk = bgzf_block(b"hello")
    assert blk[:4] == b"\x1f\x8b\x08\x04" and zlib.decompress(blk[18:-8], -15) == b"hello"
