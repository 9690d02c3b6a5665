"""numba kernels of the native mappy path: mapping and SAM formatting of whole batches of reads.

minimap2's ``mm_map`` and ``mm_map_frag`` are called straight from numba through the symbols
that the mappy extension module exports (it links libminimap2 in), so a whole batch of reads is
mapped and formatted in one call without the GIL, and worker threads really run side by side.
The results (``mm_reg1_t`` and its ``mm_extra_t``) are copied out with ``memcpy`` and read at the
offsets of minimap2 2.28–2.31's ``minimap.h``; :mod:`cfrna.align.mappy_native` checks the layout
against mappy's own Python API before the path is used.

SAM records follow the same rules as the Python path of :mod:`cfrna.align.mappy_runner` (see its
module docstring), so both write the same lines for the same reads.
"""

from __future__ import annotations

import ctypes

import numpy as np

from cfrna._numba import njit
from cfrna.io._fastq_kernels import R_ID_END, R_LEN, R_NAME, R_QUAL, R_SEQ


def _register_symbols() -> bool:
    """Give numba the addresses of minimap2's mapping functions (mappy) and libc's free/memcpy."""
    try:
        import llvmlite.binding as llb
        import mappy

        lib = ctypes.CDLL(mappy.__file__)
        libc = ctypes.CDLL(None)
        funcs = {"mm_map": lib.mm_map, "mm_map_frag": lib.mm_map_frag,
                 "free": libc.free, "memcpy": libc.memcpy}
        for name, fn in funcs.items():  # (a symbol named "cfrna_mm_map" resolved to NULL here: keep this prefix)
            llb.add_symbol("cfrna_minimap2_" + name, ctypes.cast(fn, ctypes.c_void_p).value)
        return True
    except (AttributeError, OSError, ImportError):  # pragma: no cover - depends on the mappy build
        return False


NATIVE = _register_symbols()

#: ``mm_reg1_t`` (minimap.h 2.28-2.31): 80 bytes; int32 fields and the bit field word, then ``p``
REG_SIZE = 80
#: ``mm_extra_t`` header before ``cigar[]``
EXTRA_HEAD = 28
#: per-hit columns of the kernels' hit table
H_RID, H_RS, H_RE, H_QS, H_QE, H_REV, H_MAPQ, H_PRI, H_PROXY, H_NM, H_COFF, H_CN = range(12)
N_HCOL = 12

def _comp_table() -> np.ndarray:
    t = np.arange(256, dtype=np.uint8)
    for a, b in zip("ACGTNacgtnRYKMSWBDHVrykmswbdhv", "TGCANtgcanYRMKSWVHDByrmkswvhdb", strict=True):
        t[ord(a)] = ord(b)
    return t


COMP = _comp_table()
_OPS = np.frombuffer(b"MIDNSHP=X??????", dtype=np.uint8).copy()


# ----------------------------------------------------------------------------- mapping kernels

if NATIVE:
    from numba import types

    _mm_map = types.ExternalFunction(
        "cfrna_minimap2_mm_map",
        types.uintp(types.uintp, types.intc, types.uintp, types.uintp, types.uintp, types.uintp, types.uintp))
    _mm_map_frag = types.ExternalFunction(
        "cfrna_minimap2_mm_map_frag",
        types.void(types.uintp, types.intc, types.uintp, types.uintp, types.uintp, types.uintp, types.uintp,
                   types.uintp, types.uintp))
    _free = types.ExternalFunction("cfrna_minimap2_free", types.void(types.uintp))
    _memcpy = types.ExternalFunction("cfrna_minimap2_memcpy", types.uintp(types.uintp, types.uintp, types.uintp))

    @njit
    def _addr(arr, offset):
        """``arr``'s data address plus ``offset`` bytes, as an unsigned pointer (uintp + int64 would
        be float64 in numba's typing)."""
        return arr.ctypes.data + np.uintp(offset)

    @njit
    def _collect(regs, n_regs, hits, h0, cig, c0, regbuf, exbuf, flip_len):
        """Copy ``n_regs`` hits of one segment into ``hits[h0:]`` (cigars into ``cig[c0:]``); free them.

        ``flip_len`` > 0: the segment was mapped reverse-complemented (mate 2), so its query
        coordinates and strand are turned back to the read as sequenced (what minimap2's CLI does).
        Returns ``(hits used, cigar ops used, cig)`` (``cig`` may have grown).
        """
        r32 = regbuf.view(np.int32)
        r64 = regbuf.view(np.uint64)
        e32 = exbuf.view(np.int32)
        h = h0
        c = c0
        for i in range(n_regs):
            _memcpy(regbuf.ctypes.data, regs + np.uintp(REG_SIZE * i), REG_SIZE)
            p = r64[9]
            if p == 0:
                continue
            _memcpy(exbuf.ctypes.data, p, EXTRA_HEAD)
            n_cigar = np.int64(e32[6]) & 0xFFFFFFFF
            if c + n_cigar > cig.shape[0]:
                bigger = np.empty(max(2 * cig.shape[0], c + n_cigar), np.uint32)
                bigger[:c] = cig[:c]
                cig = bigger
            if n_cigar:
                _memcpy(_addr(cig, 4 * c), p + np.uintp(EXTRA_HEAD), 4 * n_cigar)
            _free(p)
            bits = np.int64(r32[15]) & 0xFFFFFFFF
            qs = np.int64(r32[4])
            qe = np.int64(r32[5])
            rev = (bits >> 10) & 1
            if flip_len > 0:
                qs, qe = flip_len - qe, flip_len - qs
                rev = 1 - rev
            mlen = np.int64(r32[11])
            blen = np.int64(r32[12])
            hits[h, H_RID] = r32[2]
            hits[h, H_RS] = r32[6]
            hits[h, H_RE] = r32[7]
            hits[h, H_QS] = qs
            hits[h, H_QE] = qe
            hits[h, H_REV] = rev
            hits[h, H_MAPQ] = bits & 0xFF
            hits[h, H_PRI] = 1 if r32[0] == r32[8] else 0
            hits[h, H_PROXY] = 2 * mlen - blen
            hits[h, H_NM] = blen - mlen + (np.int64(e32[5]) & 0x3FFFFFFF)
            hits[h, H_COFF] = c
            hits[h, H_CN] = n_cigar
            h += 1
            c += n_cigar
        if regs != 0:
            _free(regs)
        return h - h0, c - c0, cig

    @njit
    def _classify(hits, h0, nh, order, kind):
        """Order one read's hits for output: primary, then supplementary, then secondary.

        Secondary hits are kept only when their score proxy (matches minus edits) equals the
        primary's. ``kind``: 0 primary, 2048 supplementary, 256 secondary. Returns the number of
        records (0: unmapped) and NH.
        """
        prim = -1
        for j in range(h0, h0 + nh):
            if hits[j, H_PRI] == 1:
                prim = j
                break
        if prim < 0:
            return 0, 0
        m = 0
        order[m] = prim
        kind[m] = 0
        m += 1
        for j in range(h0, h0 + nh):
            if j != prim and hits[j, H_PRI] == 1:
                order[m] = j
                kind[m] = 2048
                m += 1
        best = hits[prim, H_PROXY]
        n_sec = 0
        for j in range(h0, h0 + nh):
            if hits[j, H_PRI] == 0 and hits[j, H_PROXY] >= best:
                order[m] = j
                kind[m] = 256
                m += 1
                n_sec += 1
        return m, 1 + n_sec


@njit
def _grow(out, pos, need):
    if pos + need <= out.shape[0]:
        return out
    bigger = np.empty(max(2 * out.shape[0], pos + need + (1 << 16)), np.uint8)
    bigger[:pos] = out[:pos]
    return bigger


@njit
def _put_int(out, pos, v):
    if v < 0:
        out[pos] = 45
        pos += 1
        v = -v
    if v == 0:
        out[pos] = 48
        return pos + 1
    n = 0
    t = v
    while t > 0:
        n += 1
        t //= 10
    for j in range(n - 1, -1, -1):
        out[pos + j] = 48 + v % 10
        v //= 10
    return pos + n


@njit
def _put(out, pos, src, s, n):
    for j in range(n):
        out[pos + j] = src[s + j]
    return pos + n


@njit
def _put_tag(out, pos, a, b, v):
    out[pos] = 9
    out[pos + 1] = a
    out[pos + 2] = b
    out[pos + 3] = 58
    out[pos + 4] = 105
    out[pos + 5] = 58
    return _put_int(out, pos + 6, v)


@njit
def _put_ref(out, pos, rid, names, name_off):
    """A reference name: ``rid`` >= 0 a contig, -1 ``=``, -2 ``*``."""
    if rid >= 0:
        return _put(out, pos, names, name_off[rid], name_off[rid + 1] - name_off[rid])
    out[pos] = 61 if rid == -1 else 42
    return pos + 1


@njit
def _put_triple(out, pos, rid, a, b, names, name_off):
    """``ref<TAB>a<TAB>b<TAB>`` (RNAME POS MAPQ, or RNEXT PNEXT TLEN)."""
    pos = _put_ref(out, pos, rid, names, name_off)
    out[pos] = 9
    pos = _put_int(out, pos + 1, a)
    out[pos] = 9
    pos = _put_int(out, pos + 1, b)
    out[pos] = 9
    return pos + 1


@njit
def _emit(out, pos, buf, r, f, hits, hj, cig, names, name_off):
    """Write one SAM line. ``r``: the read's record row; ``f``: the line's fields.

    ``f``: 0 flag, 1 rname, 2 pos (1-based, 0), 3 mapq, 4 rnext (rname and rnext: a rid, or -2
    ``*``, -1 ``=``, see :func:`_put_ref`), 5 pnext, 6 tlen, 7 tags (0 none, 1 HI only, 2 NH HI NM), 8 NH, 9 HI; ``hj`` the
    hit row for the CIGAR and strand (-1: unmapped, ``*`` CIGAR, read as sequenced).
    """
    ln = r[R_LEN]
    need = (r[R_ID_END] - r[R_NAME]) + 2 * ln + 256
    if hj >= 0:
        need += 12 * hits[hj, H_CN]
    for rid in (f[1], f[4]):
        if rid >= 0:
            need += name_off[rid + 1] - name_off[rid]
    out = _grow(out, pos, need)
    pos = _put(out, pos, buf, r[R_NAME], r[R_ID_END] - r[R_NAME])
    out[pos] = 9
    pos = _put_int(out, pos + 1, f[0])
    out[pos] = 9
    pos += 1
    pos = _put_triple(out, pos, f[1], f[2], f[3], names, name_off)  # RNAME POS MAPQ
    rev = False
    if hj < 0:
        out[pos] = 42
        pos += 1
    else:
        rev = hits[hj, H_REV] == 1
        qlen = ln
        qs = hits[hj, H_QS]
        qe = hits[hj, H_QE]
        lc = qlen - qe if rev else qs
        rc = qlen - lc - (qe - qs)
        if lc > 0:
            pos = _put_int(out, pos, lc)
            out[pos] = 83
            pos += 1
        c0 = hits[hj, H_COFF]
        for t in range(hits[hj, H_CN]):
            op = cig[c0 + t]
            pos = _put_int(out, pos, np.int64(op >> 4))
            out[pos] = _OPS[op & 0xF]
            pos += 1
        if rc > 0:
            pos = _put_int(out, pos, rc)
            out[pos] = 83
            pos += 1
    out[pos] = 9
    pos += 1
    pos = _put_triple(out, pos, f[4], f[5], f[6], names, name_off)  # RNEXT PNEXT TLEN
    s0 = r[R_SEQ]
    q0 = r[R_QUAL]
    if ln == 0:
        out[pos] = 42
        out[pos + 1] = 9
        out[pos + 2] = 42
        pos += 3
    elif rev:
        for j in range(ln):
            out[pos + j] = COMP[buf[s0 + ln - 1 - j]]
        pos += ln
        out[pos] = 9
        pos += 1
        for j in range(ln):
            out[pos + j] = buf[q0 + ln - 1 - j]
        pos += ln
    else:
        pos = _put(out, pos, buf, s0, ln)
        out[pos] = 9
        pos = _put(out, pos + 1, buf, q0, ln)
    if f[7] == 1:
        pos = _put_tag(out, pos, 72, 73, f[9])
    elif f[7] == 2:
        pos = _put_tag(out, pos, 78, 72, f[8])
        pos = _put_tag(out, pos, 72, 73, f[9])
        pos = _put_tag(out, pos, 78, 77, hits[hj, H_NM])
    out[pos] = 10
    return out, pos + 1


if NATIVE:

    @njit
    def _name_to(scratch, buf, r):
        """The read id, NUL-terminated, in ``scratch`` (minimap2 hashes it to break ties)."""
        n = min(r[R_ID_END] - r[R_NAME], scratch.shape[0] - 1)
        for j in range(n):
            scratch[j] = buf[r[R_NAME] + j]
        scratch[n] = 0
        return scratch.ctypes.data

    @njit
    def _scratch(n_hits, n_cig):
        """Per-batch work arrays: hit counts, one ``mm_reg1_t`` and ``mm_extra_t`` header, the hit
        table, a CIGAR pool, a NUL-terminated name and the SAM line fields."""
        return (np.zeros(2, np.int32), np.empty(REG_SIZE, np.uint8), np.empty(32, np.uint8),
                np.empty((n_hits, N_HCOL), np.int64), np.empty(n_cig, np.uint32), np.empty(1024, np.uint8),
                np.zeros(10, np.int64))

    @njit
    def map_se_batch(mi, tb, opt, buf, rec, k, names, name_off, out):
        """Map ``k`` single-end reads and write their SAM lines; returns ``(out, bytes)``."""
        nreg, regbuf, exbuf, hits, cig, scratch, f = _scratch(64, 4096)
        order = np.empty(64, np.int64)
        kind = np.empty(64, np.int64)
        pos = 0
        for i in range(k):
            r = rec[i]
            ln = r[R_LEN]
            nh_hits = 0
            if ln > 0:
                name = _name_to(scratch, buf, r)
                nreg[0] = 0
                regs = _mm_map(mi, ln, _addr(buf, r[R_SEQ]), nreg.ctypes.data, tb, opt, name)
                if nreg[0] > hits.shape[0]:
                    hits = np.empty((2 * nreg[0], N_HCOL), np.int64)
                    order = np.empty(2 * nreg[0], np.int64)
                    kind = np.empty(2 * nreg[0], np.int64)
                nh_hits, _c, cig = _collect(regs, nreg[0], hits, 0, cig, 0, regbuf, exbuf, 0)
            m, nh = _classify(hits, 0, nh_hits, order, kind)
            if m == 0:
                f[:] = 0
                f[0] = 4
                f[1] = -2
                f[4] = -2
                out, pos = _emit(out, pos, buf, r, f, hits, -1, cig, names, name_off)
                continue
            p = order[0]
            mapq = hits[p, H_MAPQ] if nh == 1 else min(hits[p, H_MAPQ], 1)
            n_sec = 0
            for t in range(m):
                j = order[t]
                f[0] = kind[t] | (16 if hits[j, H_REV] == 1 else 0)
                f[1] = hits[j, H_RID]
                f[2] = hits[j, H_RS] + 1
                f[3] = 0 if kind[t] == 256 else mapq
                f[4] = -2
                f[5] = 0
                f[6] = 0
                f[7] = 2
                f[8] = nh
                if kind[t] == 256:
                    n_sec += 1
                    f[9] = 1 + n_sec
                else:
                    f[9] = 1
                out, pos = _emit(out, pos, buf, r, f, hits, j, cig, names, name_off)
        return out, pos

    @njit
    def map_pe_batch(mi, tb, opt, b1, r1, b2, r2, k, names, name_off, out, max_frag):
        """Map ``k`` read pairs (mate 2 reverse-complemented, FR) and write their SAM lines."""
        nreg, regbuf, exbuf, hits, cig, scratch, f = _scratch(128, 8192)
        regp = np.zeros(2, np.uint64)
        qlens = np.zeros(2, np.int32)
        seqp = np.zeros(2, np.uint64)
        order = np.empty((2, 128), np.int64)
        kind = np.empty((2, 128), np.int64)
        rc2 = np.empty(1024, np.uint8)
        m = np.zeros(2, np.int64)
        nh = np.zeros(2, np.int64)
        h0 = np.zeros(2, np.int64)
        nseg = np.zeros(2, np.int64)
        pos = 0
        for i in range(k):
            ra = r1[i]
            rb = r2[i]
            la = ra[R_LEN]
            lb = rb[R_LEN]
            nseg[0] = 0
            nseg[1] = 0
            if la > 0 or lb > 0:
                if lb + 1 > rc2.shape[0]:
                    rc2 = np.empty(2 * lb + 1, np.uint8)
                s0 = rb[R_SEQ]
                for j in range(lb):
                    rc2[j] = COMP[b2[s0 + lb - 1 - j]]
                name = _name_to(scratch, b1, ra)
                nreg[0] = 0
                nreg[1] = 0
                regp[0] = 0
                regp[1] = 0
                if la > 0 and lb > 0:
                    qlens[0] = la
                    qlens[1] = lb
                    seqp[0] = _addr(b1, ra[R_SEQ])
                    seqp[1] = rc2.ctypes.data
                    _mm_map_frag(mi, 2, qlens.ctypes.data, seqp.ctypes.data, nreg.ctypes.data, regp.ctypes.data,
                                 tb, opt, name)
                elif la > 0:
                    regp[0] = _mm_map(mi, la, _addr(b1, ra[R_SEQ]), nreg.ctypes.data, tb, opt, name)
                else:
                    regp[1] = _mm_map(mi, lb, rc2.ctypes.data, _addr(nreg, 4), tb, opt, name)
                need = nreg[0] + nreg[1]
                if need > hits.shape[0]:
                    hits = np.empty((2 * need, N_HCOL), np.int64)
                if need > order.shape[1]:
                    order = np.empty((2, 2 * need), np.int64)
                    kind = np.empty((2, 2 * need), np.int64)
                h0[0] = 0
                n0, c0, cig = _collect(regp[0], nreg[0], hits, 0, cig, 0, regbuf, exbuf, 0)
                h0[1] = n0
                n1, _c1, cig = _collect(regp[1], nreg[1], hits, n0, cig, c0, regbuf, exbuf, lb)
                nseg[0] = n0
                nseg[1] = n1
            for s in range(2):
                ms, nhs = _classify(hits, h0[s], nseg[s], order[s], kind[s])
                m[s] = ms
                nh[s] = nhs
            p1 = order[0, 0] if m[0] > 0 else -1
            p2 = order[1, 0] if m[1] > 0 else -1
            proper = False
            tlen1 = 0
            tlen2 = 0
            if p1 >= 0 and p2 >= 0 and hits[p1, H_RID] == hits[p2, H_RID]:
                left = min(hits[p1, H_RS], hits[p2, H_RS])
                right = max(hits[p1, H_RE], hits[p2, H_RE])
                span = right - left
                if hits[p1, H_REV] != hits[p2, H_REV]:
                    fw, rv = (p1, p2) if hits[p1, H_REV] == 0 else (p2, p1)
                    proper = hits[fw, H_RS] <= hits[rv, H_RE] and span <= max_frag
                if hits[p1, H_RS] < hits[p2, H_RS] or (hits[p1, H_RS] == hits[p2, H_RS]
                                                       and (hits[p1, H_REV] == 0 or hits[p2, H_REV] == 1)):
                    tlen1 = span
                    tlen2 = -span
                else:
                    tlen1 = -span
                    tlen2 = span
            for s in range(2):
                r = ra if s == 0 else rb
                buf = b1 if s == 0 else b2
                p = p1 if s == 0 else p2
                op = p2 if s == 0 else p1
                tlen = tlen1 if s == 0 else tlen2
                base = 1 | (64 if s == 0 else 128)
                if op < 0:
                    base |= 8
                elif hits[op, H_REV] == 1:
                    base |= 32
                if p < 0:
                    f[:] = 0
                    f[0] = base | 4
                    if op < 0:
                        f[1] = -2
                        f[4] = -2
                    else:
                        f[1] = hits[op, H_RID]
                        f[2] = hits[op, H_RS] + 1
                        f[4] = -1
                        f[5] = hits[op, H_RS] + 1
                        f[7] = 1
                        f[9] = 1
                    out, pos = _emit(out, pos, buf, r, f, hits, -1, cig, names, name_off)
                    continue
                mapq = hits[p, H_MAPQ] if nh[s] == 1 else min(hits[p, H_MAPQ], 1)
                pnext = hits[p, H_RS] + 1 if op < 0 else hits[op, H_RS] + 1
                n_sec = 0
                for t in range(m[s]):
                    j = order[s, t]
                    kd = kind[s, t]
                    f[0] = base | kd | (16 if hits[j, H_REV] == 1 else 0) | (2 if proper and kd == 0 else 0)
                    f[1] = hits[j, H_RID]
                    f[2] = hits[j, H_RS] + 1
                    f[3] = 0 if kd == 256 else mapq
                    f[4] = -1 if op < 0 or hits[op, H_RID] == hits[j, H_RID] else hits[op, H_RID]
                    f[5] = pnext
                    f[6] = tlen if kd == 0 else 0
                    f[7] = 2
                    f[8] = nh[s]
                    if kd == 256:
                        n_sec += 1
                        f[9] = 1 + n_sec
                    else:
                        f[9] = 1
                    out, pos = _emit(out, pos, buf, r, f, hits, j, cig, names, name_off)
        return out, pos
