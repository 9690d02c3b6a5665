"""numba kernel of the BAM reader (:mod:`cfrna.io.bam`): BAM records -> parallel arrays, no GIL.

Every byte is untrusted: each length is checked against the buffer and a bad record returns an
error code (a key of :data:`DECODE_ERRORS`) with its offset, never a read out of bounds.
"""

from __future__ import annotations

import numpy as np

from cfrna._numba import njit
from cfrna.io._bgzf_kernels import _u32

#: decoder error codes (kernel return value) -> message
DECODE_ERRORS = {
    1: "record length is negative or too small",
    2: "read name length is zero or runs past the record",
    3: "CIGAR runs past the record",
    4: "invalid CIGAR operation",
    5: "sequence/quality lengths run past the record",
    6: "auxiliary tag runs past the record",
    7: "invalid auxiliary tag type",
    8: "reference id out of range",
    9: "alignment position is negative for a mapped read",
    10: "alignment extends past 2^31 bases",
}


@njit
def _i32(buf, i):
    v = np.int64(_u32(buf, i))
    if v >= 2147483648:
        v -= 4294967296
    return v


@njit
def decode_records(buf, n_ref, flag, tid, pos, mapq, nh, hi, mtid, mpos, qhash, has_n, blk_off, nblk,
                   blk_start, blk_end, hash_names=True):
    """Decode as many complete records of ``buf`` as fit in the output arrays.

    Returns ``(n_records, bytes_consumed, error_code, error_offset)``; an incomplete record at the
    end of ``buf`` is left unconsumed (the caller prepends it to the next chunk). ``error_code`` is
    0 or a key of :data:`DECODE_ERRORS`.
    """
    size = buf.shape[0]
    cap = flag.shape[0]
    bcap = blk_start.shape[0]
    off = 0
    n = 0
    nb_total = 0
    while n < cap:
        if off + 4 > size:
            break
        block_size = _i32(buf, off)
        if block_size < 32:
            return n, off, 1, off
        if off + 4 + block_size > size:
            break
        p = off + 4
        end = p + block_size
        t = _i32(buf, p)
        ps = _i32(buf, p + 4)
        l_read_name = np.int64(buf[p + 8])
        mq = np.int64(buf[p + 9])
        n_cigar = np.int64(buf[p + 12]) | (np.int64(buf[p + 13]) << 8)
        fl = np.int64(buf[p + 14]) | (np.int64(buf[p + 15]) << 8)
        l_seq = _i32(buf, p + 16)
        nt = _i32(buf, p + 20)
        npos = _i32(buf, p + 24)
        if t < -1 or t >= n_ref or nt < -1 or nt >= n_ref:
            return n, off, 8, off
        if l_read_name < 1 or p + 32 + l_read_name > end:
            return n, off, 2, off
        q = p + 32
        h = np.uint64(14695981039346656037)
        if hash_names:  # only pairing needs the name: one multiply per 8 bytes, the tail as one word
            ln = l_read_name - 1
            k = 0
            while k + 8 <= ln:
                w = np.uint64(0)
                for j in range(8):  # constant trip count: compiled to one 8-byte load
                    w |= np.uint64(buf[q + k + j]) << np.uint64(8 * j)
                h = (h ^ w) * np.uint64(0x9E3779B97F4A7C15)
                h ^= h >> np.uint64(31)
                k += 8
            if k < ln:
                w = np.uint64(0)
                for j in range(ln - k):
                    w |= np.uint64(buf[q + k + j]) << np.uint64(8 * j)
                h = (h ^ w ^ np.uint64(ln)) * np.uint64(0x9E3779B97F4A7C15)
                h ^= h >> np.uint64(31)
        q += l_read_name
        if q + 4 * n_cigar > end:
            return n, off, 3, off
        if l_seq < 0 or q + 4 * n_cigar + (l_seq + 1) // 2 + l_seq > end:
            return n, off, 5, off
        if nb_total + n_cigar + 1 > bcap:
            break  # no room for this record's blocks: stop here, caller continues next call
        unmapped = (fl & 4) != 0 or t < 0
        if not unmapped and ps < 0:
            return n, off, 9, off
        # CIGAR -> aligned blocks (1-based inclusive)
        b0 = nb_total
        ref = ps + 1
        cur_s = -1
        spliced = 0
        for c in range(n_cigar):
            v = _u32(buf, q + 4 * c)
            op = v & np.uint32(15)
            ln = np.int64(v >> np.uint32(4))
            if op == 0 or op == 7 or op == 8:  # M = X
                if cur_s < 0:
                    cur_s = ref
                ref += ln
            elif op == 2 or op == 3:  # D N: end the block, skip reference
                if cur_s >= 0:
                    if not unmapped and ref - 1 >= cur_s:
                        blk_start[nb_total] = cur_s
                        blk_end[nb_total] = ref - 1
                        nb_total += 1
                    cur_s = -1
                if op == 3:
                    spliced = 1
                ref += ln
            elif op == 1 or op == 4 or op == 5 or op == 6:  # I S H P
                pass
            else:
                return n, off, 4, off
        if ref > 2147483647:
            return n, off, 10, off
        if cur_s >= 0 and not unmapped and ref - 1 >= cur_s:
            blk_start[nb_total] = cur_s
            blk_end[nb_total] = ref - 1
            nb_total += 1
        q += 4 * n_cigar + (l_seq + 1) // 2 + l_seq
        # auxiliary tags: find NH
        nh_val = -1
        hi_val = -1
        while q < end:
            if q + 3 > end:
                return n, off, 6, off
            tag0 = buf[q]
            tag1 = buf[q + 1]
            typ = buf[q + 2]
            q += 3
            val = np.int64(0)
            isint = False
            if typ == 65 or typ == 99 or typ == 67:  # A c C
                if q + 1 > end:
                    return n, off, 6, off
                val = np.int64(buf[q])
                if typ == 99 and val >= 128:
                    val -= 256
                isint = typ != 65
                q += 1
            elif typ == 115 or typ == 83:  # s S
                if q + 2 > end:
                    return n, off, 6, off
                val = np.int64(buf[q]) | (np.int64(buf[q + 1]) << 8)
                if typ == 115 and val >= 32768:
                    val -= 65536
                isint = True
                q += 2
            elif typ == 105 or typ == 73 or typ == 102:  # i I f
                if q + 4 > end:
                    return n, off, 6, off
                if typ == 105:
                    val = _i32(buf, q)
                    isint = True
                elif typ == 73:
                    val = np.int64(_u32(buf, q))
                    isint = True
                q += 4
            elif typ == 90 or typ == 72:  # Z H: NUL-terminated
                while q < end and buf[q] != 0:
                    q += 1
                if q >= end:
                    return n, off, 6, off
                q += 1
            elif typ == 66:  # B array
                if q + 5 > end:
                    return n, off, 6, off
                sub = buf[q]
                cnt = np.int64(_u32(buf, q + 1))
                q += 5
                if sub == 99 or sub == 67:
                    w = 1
                elif sub == 115 or sub == 83:
                    w = 2
                elif sub == 105 or sub == 73 or sub == 102:
                    w = 4
                else:
                    return n, off, 7, off
                if cnt > end - q or q + w * cnt > end:
                    return n, off, 6, off
                q += w * cnt
            else:
                return n, off, 7, off
            if isint and tag0 == 78 and tag1 == 72:  # NH
                nh_val = val
            elif isint and tag0 == 72 and tag1 == 73:  # HI
                hi_val = val
        flag[n] = fl
        tid[n] = t
        pos[n] = ps
        mapq[n] = mq
        nh[n] = nh_val
        hi[n] = hi_val
        mtid[n] = nt
        mpos[n] = npos
        qhash[n] = h
        has_n[n] = spliced
        blk_off[n] = b0
        nblk[n] = nb_total - b0
        n += 1
        off = end
    return n, off, 0, off
