"""numba kernels of duplicate marking and UMI deduplication inside ``cfrna count`` (no I/O).

Two stages, like the counting kernels (:mod:`cfrna.count._kernels`):

* :func:`record_fields` (per chunk, any thread): walks the chunk's raw record bytes again and
  writes what the decoder does not keep: the 5' position (Picard's unclipped 5' end, or umi_tools'
  ``get_read_position``), the sum of base qualities >= 15, the template length, the read-name
  location fields Picard sorts ties by (tile, x, y) and the UMI (2 bits per base).
* :func:`dedup_records` (one chunk at a time, in file order, coordinate-sorted input): pairs mates
  (featureCounts' pairing key, so fragments are the counting engine's fragments), puts each
  fragment into the *member pool* under its duplicate key and, when no later record can join its
  group any more, decides the group and assigns the kept fragments with the counting kernel's
  :func:`cfrna.count._kernels._fragment` into separate accumulators.

Memory: a fragment is kept in the pool (its mate slots, in ``rows``) from its last record until
the BAM has moved ``window`` bases past its group's last coordinate (a record's 5' end lies at
most its clip length before its start, ``window`` exceeds twice the longest read seen). Mates
whose pair is still ahead wait in the pending table (name + HI + positions, as the counter).
UMI modes with pairs also keep groups open while a read 1 before them waits for its mate (the
group is keyed by read 1). Nothing is indexed per BAM: memory follows the open groups.

Member kinds and keys (``mkey`` = kind, k1..k5):

* ``K_FRAG`` (Picard, a single-end read or a read whose mate is unmapped): (tid, 5', strand).
* ``K_MARK`` (Picard, a read of a pair whose mate is mapped): same key, no fragment; a FRAG group
  with a MARK is all duplicates (Picard: fragments at a paired end's position are duplicates).
* ``K_PAIR`` (Picard, both mates mapped): (tid1, 5'1, orientation, tid2, 5'2), ends ordered by
  (tid, 5') as Picard orders them (ties: file order; F/R at one position is FR).
* ``K_UMI`` (umi_tools): (tid, 5', reverse, tlen) of the read (read 1 for pairs), UMI apart.
"""

from __future__ import annotations

import numpy as np

from cfrna._numba import njit
from cfrna.count._kernels import MAXH, _fragment, _load, _mix, _pair_key

# methods
M_POSITION, M_DIRECTIONAL, M_UNIQUE = 1, 2, 3
METHODS = {"position": M_POSITION, "directional": M_DIRECTIONAL, "unique": M_UNIQUE}

# member kinds
K_FRAG, K_MARK, K_PAIR, K_UMI = 1, 2, 3, 4

# record_fields errors
F_OK, F_NO_UMI, F_BAD_UMI, F_UMI_LENGTH, F_UMI_TOO_LONG = 0, 1, 2, 3, 4
MAX_UMI = 31

# dedup_records return codes
D_OK, D_GROW_ROWS, D_GROW_MEMBERS, D_GROW_PENDING, D_GROW_MARKS, D_GROW_HIST, D_UMI_LENGTH, D_LATE = range(8)

# state slots (``ds`` int64 array)
S_CUR_TID, S_CUR_POS, S_SWEEP_POS, S_NMEM, S_NPEND, S_NTOMB, S_RFREE, S_NMARK, S_WINDOW, S_SEQ, \
    S_FRAGS, S_DUPS, S_UMI_LEN, S_CLOSED_TID, S_CLOSED_POS, S_MAXQLEN = range(16)
N_DS = 16

PICARD_MIN_QUAL = 15
MIN_WINDOW = 1000  # umi_tools flushes positions 1000 bases behind the current read


@njit
def _u32le(buf, i):
    return np.int64(buf[i]) | (np.int64(buf[i + 1]) << 8) | (np.int64(buf[i + 2]) << 16) | \
        (np.int64(buf[i + 3]) << 24)


@njit
def _i32le(buf, i):
    v = _u32le(buf, i)
    if v >= 2147483648:
        v -= 4294967296
    return v


@njit
def _parse_int(buf, a, b):
    """The leading digits of buf[a:b] (optional '-') as an int, as Picard's ``rapidParseInt``
    reads them (it stops at the first other character); (ok, value), not ok without digits."""
    neg = a < b and buf[a] == 45
    if neg:
        a += 1
    v = np.int64(0)
    nd = 0
    for k in range(a, b):
        c = buf[k]
        if c < 48 or c > 57:
            break
        v = (v * 10 + (c - 48)) & 0xFFFFFFFF
        nd += 1
    if nd == 0:
        return False, np.int64(-1)
    if v >= 2147483648:
        v -= 4294967296  # Java int arithmetic
    return True, -v if neg else v


@njit
def record_fields(data, n, method, umi_sep, roff, five, score, tlen, qlen, tile, tx, ty, umi, umi_len):
    """Per record ``0..n-1`` of the chunk bytes ``data``: offset, 5' position, quality score, TLEN,
    query length (with hard clips), Picard's tile/x/y and the UMI.

    ``five``: Picard's unclipped 5' end (0-based; start minus leading S/H clips, or end plus
    trailing S/H clips for reverse reads) for ``M_POSITION``; umi_tools' position otherwise (start
    minus a leading soft clip; for reverse reads the exclusive end plus a trailing soft clip).
    ``tile``/``tx``/``ty``: the last three ``:``-fields of a name with 5 or 7 fields (Picard's
    default read-name parsing), -1 when the name does not parse. UMI (UMI modes): the bases after
    the last ``umi_sep`` of the name, A/C/G/T as 0..3, first base most significant.

    Returns ``(error, record)``: ``F_NO_UMI``, ``F_BAD_UMI`` (not A/C/G/T), ``F_UMI_TOO_LONG`` (more
    than 31 bases), ``F_UMI_LENGTH`` (differs from the chunk's first UMI).
    """
    off = np.int64(0)
    first_len = -1
    for i in range(n):
        roff[i] = off
        block = _i32le(data, off)
        p = off + 4
        pos = _i32le(data, p + 4)
        l_name = np.int64(data[p + 8])
        n_cigar = np.int64(data[p + 12]) | (np.int64(data[p + 13]) << 8)
        fl = np.int64(data[p + 14]) | (np.int64(data[p + 15]) << 8)
        l_seq = _i32le(data, p + 16)
        tlen[i] = _i32le(data, p + 28)
        q = p + 32
        name_end = q + l_name - 1
        c0 = q + l_name
        # CIGAR: reference span and clips at both ends
        span = np.int64(0)
        lead_s = np.int64(0)
        lead_h = np.int64(0)
        trail_s = np.int64(0)
        trail_h = np.int64(0)
        seen_aln = False
        for c in range(n_cigar):
            v = _u32le(data, c0 + 4 * c)
            op = v & 15
            ln = v >> 4
            if op == 0 or op == 2 or op == 3 or op == 7 or op == 8:
                span += ln
                seen_aln = True
                trail_s = 0
                trail_h = 0
            elif op == 4:
                if not seen_aln:
                    lead_s += ln
                else:
                    trail_s += ln
            elif op == 5:
                if not seen_aln:
                    lead_h += ln
                else:
                    trail_h += ln
            elif op == 1:
                if seen_aln:
                    trail_s = 0
                    trail_h = 0
        rev = (fl & 16) != 0
        if method == M_POSITION:
            if rev:
                five[i] = pos + span - 1 + trail_s + trail_h
            else:
                five[i] = pos - lead_s - lead_h
        else:
            # umi_tools: cigar[0]/cigar[-1] soft clips only (a hard clip outside hides them)
            first_op = -1
            last_op = -1
            first_ln = 0
            last_ln = 0
            if n_cigar > 0:
                v0 = _u32le(data, c0)
                first_op = v0 & 15
                first_ln = v0 >> 4
                v1 = _u32le(data, c0 + 4 * (n_cigar - 1))
                last_op = v1 & 15
                last_ln = v1 >> 4
            if rev:
                five[i] = pos + span + (last_ln if last_op == 4 else 0)
            else:
                five[i] = pos - (first_ln if first_op == 4 else 0)
        qlen[i] = l_seq + lead_h + trail_h
        # sum of base qualities >= 15 (Picard SUM_OF_BASE_QUALITIES, capped at Short.MAX_VALUE / 2)
        qs = c0 + 4 * n_cigar + (l_seq + 1) // 2
        s = np.int64(0)
        for k in range(l_seq):
            b = np.int64(data[qs + k])
            if b >= PICARD_MIN_QUAL and b != 255:
                s += b
        score[i] = min(s, 16383)
        # Picard's read-name location: 5 or 7 ':'-separated fields, the last three numeric
        nf = 1
        for k in range(q, name_end):
            if data[k] == 58:
                nf += 1
        tile[i] = -1
        tx[i] = -1
        ty[i] = -1
        if nf == 5 or nf == 7:
            # the last three fields
            e = name_end
            ends = np.zeros(4, np.int64)
            ends[0] = e
            found = 0
            k = e - 1
            while k >= q and found < 3:
                if data[k] == 58:
                    found += 1
                    ends[found] = k
                k -= 1
            if found == 3:
                ok1, v1 = _parse_int(data, ends[3] + 1, ends[2])
                ok2, v2 = _parse_int(data, ends[2] + 1, ends[1])
                ok3, v3 = _parse_int(data, ends[1] + 1, ends[0])
                if ok1 and ok2 and ok3:
                    tile[i] = v1
                    tx[i] = v2
                    ty[i] = v3
        # UMI after the last separator
        if method != M_POSITION:
            k = name_end - 1
            while k >= q and data[k] != umi_sep:
                k -= 1
            if k < q:
                return F_NO_UMI, i
            ul = name_end - k - 1
            if ul == 0:
                return F_NO_UMI, i
            if ul > MAX_UMI:
                return F_UMI_TOO_LONG, i
            code = np.int64(0)
            for j in range(k + 1, name_end):
                ch = data[j]
                if ch == 65:
                    b = 0
                elif ch == 67:
                    b = 1
                elif ch == 71:
                    b = 2
                elif ch == 84:
                    b = 3
                else:
                    return F_BAD_UMI, i
                code = (code << 2) | b
            umi[i] = code
            umi_len[i] = ul
            if first_len < 0:
                first_len = ul
            elif ul != first_len:
                return F_UMI_LENGTH, i
        off = off + 4 + block
    return F_OK, -1


# ------------------------------------------------------------------------------------ pool helpers


@njit(inline="always")
def _before(t1, p1, t2, p2):
    """(t1, p1) < (t2, p2)."""
    return t1 < t2 or (t1 == t2 and p1 < p2)


@njit(inline="always")
def _orient(rev1, rev2):
    """Picard's pair orientation byte: FF=2, FR=3, RR=4, RF=5."""
    if not rev1:
        return 2 if not rev2 else 3
    return 5 if not rev2 else 4


@njit(inline="always")
def _add_member(ds, kind, k1, k2, k3, k4, k5, umi, score, t1, t2, t3, i1, i2, ct, cp, ra, rb,
                mkey, mumi, mscore, mtie, mclose, mrow):
    m = ds[S_NMEM]
    mkey[m, 0] = kind
    mkey[m, 1] = k1
    mkey[m, 2] = k2
    mkey[m, 3] = k3
    mkey[m, 4] = k4
    mkey[m, 5] = k5
    mumi[m] = umi
    mscore[m] = score
    mtie[m, 0] = t1
    mtie[m, 1] = t2
    mtie[m, 2] = t3
    mtie[m, 3] = i1
    mtie[m, 4] = i2
    mclose[m, 0] = ct
    mclose[m, 1] = cp
    mrow[m, 0] = ra
    mrow[m, 1] = rb
    ds[S_NMEM] = m + 1


@njit(inline="always")
def _free_row(ds, rfree, r):
    if r >= 0:
        rfree[ds[S_RFREE]] = r
        ds[S_RFREE] += 1


@njit(inline="always")
def _take_row(ds, rfree):
    ds[S_RFREE] -= 1
    return rfree[ds[S_RFREE]]


@njit(inline="always")
def _tie_less(mtie, a, b):
    """Picard's order of equal-key ends: tile, x, y, read-1 index, read-2 index."""
    for f in range(5):
        if mtie[a, f] != mtie[b, f]:
            return mtie[a, f] < mtie[b, f]
    return False


@njit
def _assign(a, b, opt, gstrand, mito_tid, counts, acc, per_gene, votes, m_int, m_hits, m_h3p, m_span):
    """The counting kernel's assignment of a fragment (one call site: compiled once)."""
    _fragment(a, b, opt, gstrand, mito_tid, counts, acc, per_gene, votes, m_int, m_hits, m_h3p, m_span)


@njit
def _keep(m, opt, gstrand, mito_tid, counts, acc, per_gene, votes, mrow, m_int, m_hits, m_h3p, m_span):
    _assign(mrow[m, 0], mrow[m, 1], opt, gstrand, mito_tid, counts, acc, per_gene, votes,
            m_int, m_hits, m_h3p, m_span)


@njit
def _mark(ds, m, mtie, marks, want_marks):
    if want_marks:
        marks[ds[S_NMARK]] = mtie[m, 3]
        ds[S_NMARK] += 1
        if mtie[m, 4] >= 0:
            marks[ds[S_NMARK]] = mtie[m, 4]
            ds[S_NMARK] += 1


@njit
def _settle(kept, m, ds, mtie, marks, want_marks, opt, gstrand, mito_tid, counts, acc, per_gene, votes, mrow,
            m_int, m_hits, m_h3p, m_span):
    """One decided fragment: counted (kept) or tallied and marked as a duplicate."""
    ds[S_FRAGS] += 1
    if kept:
        _keep(m, opt, gstrand, mito_tid, counts, acc, per_gene, votes, mrow, m_int, m_hits, m_h3p, m_span)
    else:
        ds[S_DUPS] += 1
        _mark(ds, m, mtie, marks, want_marks)


@njit
def _hamming1(a, b, ulen):
    x = a ^ b
    d = 0
    for _ in range(ulen):
        if (x & 3) != 0:
            d += 1
            if d > 1:
                return False
        x >>= 2
    return d == 1


@njit
def _umi_bundle(ms, lo, hi, method, ulen, ds, opt, gstrand, mito_tid, counts, acc, per_gene, votes,
                mumi, mscore, mtie, mrow, m_int, m_hits, m_h3p, m_span, hist, marks, want_marks):
    """Deduplicate one umi_tools bundle: members ``ms[lo:hi]`` (same position key), sorted by UMI
    and, within a UMI, in read order."""
    # distinct UMIs: count, representative (highest MAPQ, then first), first-seen order
    nu = 0
    u_code = np.empty(hi - lo, np.int64)
    u_cnt = np.empty(hi - lo, np.int64)
    u_first = np.empty(hi - lo, np.int64)
    u_rep = np.empty(hi - lo, np.int64)
    j = lo
    while j < hi:
        k = j
        best = ms[j]
        while k < hi and mumi[ms[k]] == mumi[ms[j]]:
            if mscore[ms[k]] > mscore[best]:
                best = ms[k]
            k += 1
        u_code[nu] = mumi[ms[j]]
        u_cnt[nu] = k - j
        u_first[nu] = mtie[ms[j], 3]
        u_rep[nu] = best
        nu += 1
        j = k
    keep_u = np.zeros(nu, np.bool_)
    if method == M_UNIQUE:
        for a in range(nu):
            keep_u[a] = True
            hist[u_cnt[a]] += 1
    else:
        # directional: starts in order of count (descending), ties in first-seen order
        order = np.argsort(u_first[:nu], kind="mergesort")
        key = np.empty(nu, np.int64)
        for a in range(nu):
            key[a] = -u_cnt[order[a]]
        order = order[np.argsort(key, kind="mergesort")]
        found = np.zeros(nu, np.bool_)
        inq = np.zeros(nu, np.bool_)
        queue = np.empty(nu, np.int64)
        for oi in range(nu):
            s0 = order[oi]
            if found[s0]:
                continue
            # breadth-first search along the directed edges a -> b (hamming 1, n_a >= 2 n_b - 1)
            for a in range(nu):
                inq[a] = False
            qh = 0
            qt = 0
            queue[qt] = s0
            qt += 1
            inq[s0] = True
            while qh < qt:
                a = queue[qh]
                qh += 1
                for b in range(nu):
                    if not inq[b] and u_cnt[a] >= 2 * u_cnt[b] - 1 and _hamming1(u_code[a], u_code[b], ulen):
                        inq[b] = True
                        queue[qt] = b
                        qt += 1
            # the group: component nodes not in an earlier group; its UMI: most reads, then
            # the smallest UMI (umi_tools sorts the component, then by count)
            rep = -1
            total = 0
            for qi in range(qt):
                a = queue[qi]
                if found[a]:
                    continue
                total += u_cnt[a]
                if rep < 0 or u_cnt[a] > u_cnt[rep] or (u_cnt[a] == u_cnt[rep] and u_code[a] < u_code[rep]):
                    rep = a
            for qi in range(qt):
                found[queue[qi]] = True
            keep_u[rep] = True
            hist[total] += 1
    # the kept reads; every other member of the bundle is a duplicate
    keep_m = np.empty(nu, np.int64)
    nk = 0
    for a in range(nu):
        if keep_u[a]:
            keep_m[nk] = u_rep[a]
            nk += 1
    for j in range(lo, hi):
        m = ms[j]
        kept = False
        for a in range(nk):
            if keep_m[a] == m:
                kept = True
                break
        _settle(kept, m, ds, mtie, marks, want_marks, opt, gstrand, mito_tid, counts, acc, per_gene, votes, mrow,
                m_int, m_hits, m_h3p, m_span)


@njit
def sweep(everything, method, ds, opt, gstrand, mito_tid, counts, acc, per_gene, votes,
          mkey, mumi, mscore, mtie, mclose, mrow, rfree, m_int, m_hits, m_h3p, m_span, hist, marks, want_marks,
          p_state, p_rid):
    """Decide the groups no later record can join; returns the number of members decided.

    Closable: the group's last coordinate is ``window`` bases behind the current record (all of
    them when ``everything``); UMI modes with pairs also wait for read 1s still pending before it.
    """
    nmem = ds[S_NMEM]
    if nmem == 0:
        return 0
    ft = ds[S_CUR_TID]
    fp = ds[S_CUR_POS] - ds[S_WINDOW]
    if not everything and method != M_POSITION:
        # a pending read 1 (mate ahead) joins the group of its own position when its mate arrives
        for j in range(p_state.shape[0]):
            if p_state[j] == 1:
                r = p_rid[j]
                if r >= 0 and (m_int[r, 0] & 64) != 0 and (m_int[r, 0] & 12) == 0:
                    pt = m_int[r, 1]
                    pp = m_int[r, 2] - ds[S_WINDOW]
                    if _before(pt, pp, ft, fp):
                        ft = pt
                        fp = pp
    sel = np.empty(nmem, np.int64)
    ns = 0
    for m in range(nmem):
        if everything or _before(mclose[m, 0], mclose[m, 1], ft, fp):
            sel[ns] = m
            ns += 1
    if ns == 0:
        return 0
    if not everything and _before(ds[S_CLOSED_TID], ds[S_CLOSED_POS], ft, fp):
        ds[S_CLOSED_TID] = ft
        ds[S_CLOSED_POS] = fp
    sel = sel[:ns]
    if method != M_POSITION:
        # umi_tools meets reads in read-1 order (pairs join the pool when their last mate comes)
        sel = sel[np.argsort(mtie[sel, 3], kind="mergesort")]
    # group by key: hash sort (stable; members are in arrival order), runs of equal keys
    h = np.empty(ns, np.uint64)
    for a in range(ns):
        m = sel[a]
        kind = mkey[m, 0]
        kk = 1 if kind == K_MARK else kind  # MARKs join the FRAG groups
        h[a] = _mix(np.uint64(kk), mkey[m, 1], mkey[m, 2], mkey[m, 3], mkey[m, 4] * 8 + mkey[m, 5])
    order = np.argsort(h, kind="mergesort")
    ms = sel[order]
    if method != M_POSITION:
        # within a bundle, by UMI (stable: read order kept)
        lo = 0
        while lo < ns:
            hi = lo + 1
            while hi < ns and h[order[hi]] == h[order[lo]]:
                hi += 1
            if hi - lo > 1:
                sub = ms[lo:hi].copy()
                uo = np.argsort(mumi[sub], kind="mergesort")
                ms[lo:hi] = sub[uo]
            lo = hi
    a = 0
    while a < ns:
        m0 = ms[a]
        b = a + 1
        k0 = 1 if mkey[m0, 0] == K_MARK else mkey[m0, 0]
        while b < ns:
            m1 = ms[b]
            k1 = 1 if mkey[m1, 0] == K_MARK else mkey[m1, 0]
            if k1 != k0 or mkey[m1, 1] != mkey[m0, 1] or mkey[m1, 2] != mkey[m0, 2] or mkey[m1, 3] != mkey[m0, 3] \
                    or mkey[m1, 4] != mkey[m0, 4] or mkey[m1, 5] != mkey[m0, 5]:
                break
            b += 1
        if method != M_POSITION:
            _umi_bundle(ms, a, b, method, ds[S_UMI_LEN], ds, opt, gstrand, mito_tid, counts, acc, per_gene, votes,
                        mumi, mscore, mtie, mrow, m_int, m_hits, m_h3p, m_span, hist, marks, want_marks)
        elif k0 == K_PAIR:
            best = ms[a]
            for c in range(a + 1, b):
                m = ms[c]
                if mscore[m] > mscore[best] or (mscore[m] == mscore[best] and _tie_less(mtie, m, best)):
                    best = m
            hist[b - a] += 1
            for c in range(a, b):
                m = ms[c]
                _settle(m == best, m, ds, mtie, marks, want_marks, opt, gstrand, mito_tid, counts, acc, per_gene,
                        votes, mrow, m_int, m_hits, m_h3p, m_span)
        else:
            # fragments (single reads, mate unmapped) at one 5' end: all duplicates when a paired
            # read ends there, else all but the best
            has_pair = False
            best = -1
            nfrag = 0
            for c in range(a, b):
                m = ms[c]
                if mkey[m, 0] == K_MARK:
                    has_pair = True
                else:
                    nfrag += 1
                    if best < 0 or mscore[m] > mscore[best] or (mscore[m] == mscore[best] and _tie_less(mtie, m, best)):
                        best = m
            if has_pair:
                best = -1
            elif nfrag > 0:
                hist[nfrag] += 1
            for c in range(a, b):
                m = ms[c]
                if mkey[m, 0] == K_MARK:
                    continue
                _settle(m == best, m, ds, mtie, marks, want_marks, opt, gstrand, mito_tid, counts, acc, per_gene,
                        votes, mrow, m_int, m_hits, m_h3p, m_span)
        a = b
    # free the rows of the decided members, compact the pool (arrival order kept)
    done = np.zeros(nmem, np.bool_)
    for a in range(ns):
        m = sel[a]
        done[m] = True
        _free_row(ds, rfree, mrow[m, 0])
        _free_row(ds, rfree, mrow[m, 1])
    w = 0
    for m in range(nmem):
        if done[m]:
            continue
        if w != m:
            for f in range(6):
                mkey[w, f] = mkey[m, f]
            mumi[w] = mumi[m]
            mscore[w] = mscore[m]
            for f in range(5):
                mtie[w, f] = mtie[m, f]
            mclose[w, 0] = mclose[m, 0]
            mclose[w, 1] = mclose[m, 1]
            mrow[w, 0] = mrow[m, 0]
            mrow[w, 1] = mrow[m, 1]
        w += 1
    ds[S_NMEM] = w
    return ns


# --------------------------------------------------------------------------------- pending table


@njit(inline="always")
def _p_find(kh, ka, kb, kc, kd, p_state, p_key, p_a, p_b, p_c, p_d):
    """Slot of the live entry with this key, else -(insertion slot) - 1."""
    cap = p_state.shape[0]
    mask = np.int64(cap - 1)
    j = np.int64(_mix(kh, ka, kb, kc, kd) & np.uint64(mask))
    ins = -1
    for _ in range(cap):
        s = p_state[j]
        if s == 0:
            return -(j if ins < 0 else ins) - 1
        if s == 2:
            if ins < 0:
                ins = j
        elif p_key[j] == kh and p_a[j] == ka and p_b[j] == kb and p_c[j] == kc and p_d[j] == kd:
            return j
        j = (j + 1) & mask
    return -ins - 1


@njit
def rehash_pending(o_state, o_key, o_a, o_b, o_c, o_d, o_rid, o_info,
                   p_state, p_key, p_a, p_b, p_c, p_d, p_rid, p_info):
    """Move the live entries into a new table (no tombstones); returns their number."""
    n = 0
    for j in range(o_state.shape[0]):
        if o_state[j] != 1:
            continue
        s = -_p_find(o_key[j], o_a[j], o_b[j], o_c[j], o_d[j], p_state, p_key, p_a, p_b, p_c, p_d) - 1
        p_state[s] = 1
        p_key[s] = o_key[j]
        p_a[s] = o_a[j]
        p_b[s] = o_b[j]
        p_c[s] = o_c[j]
        p_d[s] = o_d[j]
        p_rid[s] = o_rid[j]
        for f in range(o_info.shape[1]):
            p_info[s, f] = o_info[j, f]
        n += 1
    return n


# p_info / per-record info columns: 5' position, strand, score, tile, x, y, record index, UMI, MAPQ, TLEN
I_FIVE, I_REV, I_SCORE, I_TILE, I_X, I_Y, I_IDX, I_UMI, I_MAPQ, I_TLEN = range(10)
N_INFO = 10


@njit
def _fragment_member(method, paired, ra, ia, rb, ib, ds, opt, gstrand, mito_tid, counts, acc, per_gene, votes,
                     mkey, mumi, mscore, mtie, mclose, mrow, rfree, m_int, m_hits, m_h3p, m_span):
    """A complete fragment (rows ``ra`` and ``rb`` (-1: one record), infos ``ia``/``ib``): a pool
    member, or assigned at once (not a duplicate candidate), or dropped (UMI modes: what
    umi_tools does not output)."""
    fa = m_int[ra, 0]
    fb = m_int[rb, 0] if rb >= 0 else 0
    map_a = (fa & 4) == 0 and m_int[ra, 1] >= 0
    map_b = rb >= 0 and (fb & 4) == 0 and m_int[rb, 1] >= 0
    if method == M_POSITION:
        if ((fa | fb) & 0x900) != 0 or not (map_a or map_b):
            # secondary/supplementary and unmapped fragments: Picard leaves them unmarked
            _assign(ra, rb, opt, gstrand, mito_tid, counts, acc, per_gene, votes, m_int, m_hits, m_h3p, m_span)
            _free_row(ds, rfree, ra)
            _free_row(ds, rfree, rb)
            return
        if map_a and map_b and (fa & 1) != 0:
            # a pair: ends ordered by (tid, 5'); the first record in the file on ties
            ta = m_int[ra, 1]
            tb = m_int[rb, 1]
            ca = ia[I_FIVE]
            cb = ib[I_FIVE]
            reva = ia[I_REV] != 0
            revb = ib[I_REV] != 0
            if _before(tb, cb, ta, ca):
                t1, c1, t2, c2, o = tb, cb, ta, ca, _orient(revb, reva)
                i1, i2 = ib[I_IDX], ia[I_IDX]
            else:
                t1, c1, t2, c2, o = ta, ca, tb, cb, _orient(reva, revb)
                i1, i2 = ia[I_IDX], ib[I_IDX]
                if t1 == t2 and c1 == c2 and o == 5:
                    o = 3
            ct, cp = (t2, c2) if _before(t1, c1, t2, c2) else (t1, c1)
            _add_member(ds, K_PAIR, t1, c1, o, t2, c2, 0, ia[I_SCORE] + ib[I_SCORE], ia[I_TILE], ia[I_X], ia[I_Y],
                        i1, i2, ct, cp, ra, rb, mkey, mumi, mscore, mtie, mclose, mrow)
            return
        if (map_a and (fa & 1) != 0 and (fa & 8) == 0) or (map_b and (fb & 1) != 0 and (fb & 8) == 0):
            # a read of a pair whose mate is mapped but never came: Picard never marks it
            _assign(ra, rb, opt, gstrand, mito_tid, counts, acc, per_gene, votes, m_int, m_hits, m_h3p, m_span)
            _free_row(ds, rfree, ra)
            _free_row(ds, rfree, rb)
            return
        # a fragment: the mapped read (single-end, or its mate unmapped)
        info = ia if map_a else ib
        r = ra if map_a else rb
        t = m_int[r, 1]
        # Picard flags the mapped read only (its unmapped mate keeps its flags)
        _add_member(ds, K_FRAG, t, info[I_FIVE], info[I_REV], -1, -1, 0, info[I_SCORE], info[I_TILE], info[I_X],
                    info[I_Y], info[I_IDX], -1, t, info[I_FIVE], ra, rb, mkey, mumi, mscore, mtie, mclose, mrow)
        return
    # umi_tools: the read (read 1 of a pair) decides; unmapped read 1 or (pairs) unmapped mate: not output
    if paired and rb >= 0 and (fb & 64) != 0 and (fa & 64) == 0:
        r1, i1, r2, i2 = rb, ib, ra, ia
    else:
        r1, i1, r2, i2 = ra, ia, rb, ib
    f1 = m_int[r1, 0]
    drop = (f1 & 4) != 0 or m_int[r1, 1] < 0
    if paired and (f1 & 1) != 0:
        if (f1 & 64) == 0 or (f1 & 8) != 0:
            drop = True  # a read 2 without its read 1, or a pair whose read 2 is unmapped
    if drop:
        _free_row(ds, rfree, ra)
        _free_row(ds, rfree, rb)
        return
    t = m_int[r1, 1]
    tl = i1[I_TLEN] if paired else 0
    _add_member(ds, K_UMI, t, i1[I_FIVE], i1[I_REV], tl, 0, i1[I_UMI], i1[I_MAPQ], 0, 0, 0, i1[I_IDX],
                i2[I_IDX] if r2 >= 0 else -1, t, i1[I_FIVE], ra, rb, mkey, mumi, mscore, mtie, mclose, mrow)


@njit
def dedup_records(start, n, base, method, flag, tid, pos, mapq, nh, hi, mtid, mpos, qhash, has_n,
                  ev_off, ev_nex, ev_code, ev_3p,
                  five, score, tlen, qlen, tile, tx, ty, umi, umi_len,
                  ds, opt, gstrand, mito_tid, counts, acc, per_gene, votes,
                  mkey, mumi, mscore, mtie, mclose, mrow, rfree, m_int, m_hits, m_h3p, m_span,
                  p_state, p_key, p_a, p_b, p_c, p_d, p_rid, p_info, hist, marks, want_marks):
    """Records ``start..n-1`` of a chunk in file order (``base``: index of the chunk's first record).

    Returns ``(next, code, record)``; a ``D_GROW_*`` code asks the caller to grow that store and
    call again from ``next`` (nothing of record ``next`` was done yet). ``D_UMI_LENGTH``: the
    record's UMI length differs from the first UMI's. ``D_LATE``: a record's 5' end lies behind
    groups already decided (a clip longer than the window).
    """
    paired = opt[1] != 0
    umi_mode = method != M_POSITION
    ia = np.empty(N_INFO, np.int64)
    ib = np.empty(N_INFO, np.int64)
    for i in range(start, n):
        # room for this record: 2 rows, 2 members, a pending slot, the marks and histogram of a sweep
        nmem = ds[S_NMEM]
        if ds[S_RFREE] < 3:
            return i, D_GROW_ROWS, i
        if hist.shape[0] < nmem + 4:
            return i, D_GROW_HIST, i
        if want_marks and marks.shape[0] - ds[S_NMARK] < 2 * nmem + 4:
            return i, D_GROW_MARKS, i
        if paired and (ds[S_NPEND] + ds[S_NTOMB] + 1) * 2 > p_state.shape[0]:
            return i, D_GROW_PENDING, i
        if nmem + 3 > mkey.shape[0]:
            return i, D_GROW_MEMBERS, i
        fl = flag[i]
        t = tid[i]
        if umi_mode:
            if ds[S_UMI_LEN] < 0:
                ds[S_UMI_LEN] = umi_len[i]
            elif umi_len[i] != ds[S_UMI_LEN]:
                return i, D_UMI_LENGTH, i
        if qlen[i] > ds[S_MAXQLEN]:
            ds[S_MAXQLEN] = qlen[i]
            if 2 * qlen[i] + 2 > ds[S_WINDOW]:
                ds[S_WINDOW] = 2 * qlen[i] + 2
        # ---- the position moves on: decide the groups left behind
        if t >= 0 and (fl & 4) == 0:
            if t != ds[S_CUR_TID] or pos[i] - ds[S_SWEEP_POS] >= ds[S_WINDOW]:
                ds[S_CUR_TID] = t
                ds[S_CUR_POS] = pos[i]
                sweep(False, method, ds, opt, gstrand, mito_tid, counts, acc, per_gene, votes, mkey, mumi,
                      mscore, mtie, mclose, mrow, rfree, m_int, m_hits, m_h3p, m_span, hist, marks, want_marks,
                      p_state, p_rid)
                ds[S_SWEEP_POS] = pos[i]
            else:
                ds[S_CUR_POS] = pos[i]
            if _before(t, five[i], ds[S_CLOSED_TID], ds[S_CLOSED_POS]):
                return i, D_LATE, i
        # ---- this record's info
        ia[I_FIVE] = five[i]
        ia[I_REV] = 1 if (fl & 16) != 0 else 0
        ia[I_SCORE] = score[i]
        ia[I_TILE] = tile[i]
        ia[I_X] = tx[i]
        ia[I_Y] = ty[i]
        ia[I_IDX] = base + i
        ia[I_UMI] = umi[i]
        ia[I_MAPQ] = mapq[i]
        ia[I_TLEN] = tlen[i]
        r = _take_row(ds, rfree)
        _load(i, r, flag, tid, pos, mapq, nh, has_n, ev_off, ev_nex, ev_code, ev_3p, m_int, m_hits, m_h3p, m_span)
        mapped = (fl & 4) == 0 and t >= 0
        if method == M_POSITION and paired and mapped and (fl & 0x900) == 0 and (fl & 1) != 0 and (fl & 8) == 0:
            # a paired read end: fragments at its 5' end are its duplicates (Picard)
            _add_member(ds, K_MARK, t, five[i], ia[I_REV], -1, -1, 0, 0, 0, 0, 0, -1, -1, t, five[i], -1, -1,
                        mkey, mumi, mscore, mtie, mclose, mrow)
        if not paired or (fl & 1) == 0:
            _fragment_member(method, paired, r, ia, -1, ib, ds, opt, gstrand, mito_tid, counts, acc, per_gene,
                             votes, mkey, mumi, mscore, mtie, mclose, mrow, rfree, m_int, m_hits, m_h3p, m_span)
            continue
        kh, ka, kb, kc, kd = _pair_key(i, flag, tid, pos, hi, mtid, mpos, qhash)
        j = _p_find(kh, ka, kb, kc, kd, p_state, p_key, p_a, p_b, p_c, p_d)
        if j >= 0:
            for f in range(N_INFO):
                ib[f] = p_info[j, f]
            ra = p_rid[j]
            p_state[j] = 2
            ds[S_NPEND] -= 1
            ds[S_NTOMB] += 1
            _fragment_member(method, paired, ra, ib, r, ia, ds, opt, gstrand, mito_tid, counts, acc, per_gene,
                             votes, mkey, mumi, mscore, mtie, mclose, mrow, rfree, m_int, m_hits, m_h3p, m_span)
            continue
        s = -j - 1
        if p_state[s] == 2:
            ds[S_NTOMB] -= 1
        p_state[s] = 1
        p_key[s] = kh
        p_a[s] = ka
        p_b[s] = kb
        p_c[s] = kc
        p_d[s] = kd
        p_rid[s] = r
        for f in range(N_INFO):
            p_info[s, f] = ia[f]
        ds[S_NPEND] += 1
    return n, D_OK, -1


@njit
def dedup_finish(method, ds, opt, gstrand, mito_tid, counts, acc, per_gene, votes,
                 mkey, mumi, mscore, mtie, mclose, mrow, rfree, m_int, m_hits, m_h3p, m_span,
                 p_state, p_rid, p_info, hist, marks, want_marks):
    """End of the BAM: mates whose pair never came are single-record fragments; decide every group."""
    for j in range(p_state.shape[0]):
        if p_state[j] != 1:
            continue
        p_state[j] = 0
        ds[S_NPEND] -= 1
        r = p_rid[j]
        fl = m_int[r, 0]
        if method == M_POSITION or ((fl & 64) != 0 and (fl & 12) == 0):
            # too late for its group (decided already): kept as it is
            _assign(r, -1, opt, gstrand, mito_tid, counts, acc, per_gene, votes, m_int, m_hits, m_h3p, m_span)
        _free_row(ds, rfree, r)
    sweep(True, method, ds, opt, gstrand, mito_tid, counts, acc, per_gene, votes, mkey, mumi, mscore, mtie,
          mclose, mrow, rfree, m_int, m_hits, m_h3p, m_span, hist, marks, want_marks, p_state, p_rid)


def new_state() -> np.ndarray:
    ds = np.zeros(N_DS, np.int64)
    ds[S_CUR_TID] = -1
    ds[S_CLOSED_TID] = -1
    ds[S_CLOSED_POS] = -(1 << 40)
    ds[S_WINDOW] = MIN_WINDOW
    ds[S_UMI_LEN] = -1
    return ds


__all__ = ["MAXH"]
