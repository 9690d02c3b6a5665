"""numba kernels of the counting engine (no Python objects, no I/O).

Layout of the state shared with :mod:`cfrna.count.counter`:

* interval index (exons merged per gene, or gene spans): ``iv_s``, ``iv_e`` (1-based inclusive),
  ``iv_item`` (gene row), binned per BAM reference: ``bin_off[tid]``, ``bin_n[tid]``,
  ``bin_ptr`` (CSR), ``bin_items`` (interval rows), bin width ``1 << BIN_SHIFT``.
* a *mate slot* (row of ``m_int`` = [flag, tid, pos, mapq, NH, spliced, n exon hits, n span
  hits], ``m_hits``/``m_h3p``/``m_span``) holds what one BAM record contributes to its fragment:
  the genes whose exons it overlaps (any strand) with a flag "all blocks inside the gene's 3'-most
  exon", and the genes whose span contains it. Rows ``0..cap-1`` form a linear-probing hash table
  (backward-shift deletion) of mates waiting for their pair; row ``cap`` is scratch.
* ``counts[g, 0]``: the count of gene ``g``; ``counts[g, 1]``: the same without fragments that have
  a record flagged duplicate (0x400), i.e. featureCounts ``--ignoreDup``.
* ``acc``: featureCounts' 14 summary categories then the QC tallies; ``per_gene[g]`` = fragments
  assigned to gene ``g`` alone, of which entirely inside its 3'-most exon.

Two stages, so that the work scales over threads: :func:`evaluate_records` looks each record up in
the index (no shared state: chunks run in parallel) and writes its hits in CSR form;
:func:`count_records` then runs chunk by chunk in file order (pairing mates, duplicates, sort
order, assignment) and only copies those hits.

The per-record kernels are compiled with ``_nrt=False``: with numba's reference counting every
inlined helper that receives arrays costs atomic increments and decrements per record, which
measured at 3x the counting work itself. They allocate nothing, so they need no runtime.
"""

from __future__ import annotations

import numpy as np

from cfrna._numba import njit

BIN_SHIFT = 14
MAXH = 32

# option slots (``opt`` array)
O_STRAND, O_PAIRED, O_MINQ, O_PRIMARY, O_MULTI, O_FRACTION, O_MULTIOVL, O_SORTED, O_IGNDUP = range(9)
N_OPT = 9

# summary slots, featureCounts order
S_ASSIGNED, S_UNMAPPED, S_READ_TYPE, S_SINGLETON, S_MAPQ, S_CHIMERA, S_FRAGLEN, S_DUP, S_MULTI, \
    S_SECONDARY, S_NONSPLIT, S_NOFEAT, S_OVLEN, S_AMBIG = range(14)

# stats slots
T_PRIMARY, T_UNIQUE, T_EX_SENSE, T_EX_ANTI, T_IN_SENSE, T_IN_ANTI, T_INTERGENIC, T_SPLICED, T_MITO, \
    T_DUPS, T_DUP_FLAGGED = range(11)
N_STATS = 11
N_SUMMARY = 14

# error codes
E_OK, E_TOO_MANY_HITS, E_TABLE_FULL, E_UNSORTED, E_EVAL_FULL = 0, 1, 2, 3, 4


@njit
def code_strand(code):
    """Strand of an exon-hit code ``gene * 4 + s`` (s: 0 '.', 1 '+', 2 '-') as 0/+1/-1."""
    c = code & 3
    return 1 if c == 1 else (-1 if c == 2 else 0)


@njit(inline="always", _nrt=False)
def query_index(tid, bs, be, iv_s, iv_e, iv_item, bin_off, bin_n, bin_ptr, bin_items, out, nout):
    """Append to ``out[nout:]`` the distinct items whose interval overlaps [bs, be]; new ``nout`` or -1 on overflow."""
    nb = bin_n[tid]
    if nb == 0:
        return nout
    if be < 0 or bs > be:
        return nout
    if bs < 0:
        bs = 0
    b0 = bs >> BIN_SHIFT
    b1 = be >> BIN_SHIFT
    if b0 >= nb:
        return nout
    if b1 >= nb:
        b1 = nb - 1
    for b in range(b0, b1 + 1):
        base = bin_off[tid] + b
        for k in range(bin_ptr[base], bin_ptr[base + 1]):
            j = bin_items[k]
            if iv_s[j] <= be and iv_e[j] >= bs:
                g = iv_item[j]
                seen = False
                for q in range(nout):
                    if out[q] == g:
                        seen = True
                        break
                if not seen:
                    if nout >= out.shape[0]:
                        return -1
                    out[nout] = g
                    nout += 1
    return nout


@njit(inline="always", _nrt=False)
def _fragment(a, b, opt, gstrand, mito_tid, counts, acc, per_gene, votes,
              m_int, m_hits, m_h3p, m_span):
    """Assign the fragment made of mate slots ``a`` and ``b`` (``b = -1`` for a single record)."""
    strandedness = opt[O_STRAND]
    paired = opt[O_PAIRED]
    nm = 1 if b < 0 else 2
    # ---- which mates are mapped; fragment strand (read 1 decides; else the reversed read 2)
    any_mapped = False
    all_primary = True
    fstrand = 0
    have_strand = False
    nhmax = 1
    for w in range(nm):
        s = a if w == 0 else b
        fl = m_int[s, 0]
        if (fl & 0x900) != 0:
            all_primary = False
        if (fl & 4) == 0 and m_int[s, 1] >= 0:
            any_mapped = True
            rev = (fl & 16) != 0
            if paired and (fl & 1) != 0 and (fl & 128) != 0 and (fl & 64) == 0:
                rev = not rev
                if not have_strand:
                    fstrand = -1 if rev else 1
            else:
                fstrand = -1 if rev else 1
                have_strand = True
            if m_int[s, 4] > nhmax:
                nhmax = m_int[s, 4]
    libstrand = fstrand if strandedness != 2 else -fstrand

    # ---- QC tallies from the same pass (primary fragments only)
    # a fragment is a duplicate when any of its records carries flag 0x400 (an unmapped one too)
    isdup = (m_int[a, 0] & 1024) != 0 or (b >= 0 and (m_int[b, 0] & 1024) != 0)
    if all_primary and any_mapped:
        acc[N_SUMMARY + T_PRIMARY] += 1
        if isdup:
            acc[N_SUMMARY + T_DUP_FLAGGED] += 1
        spl = False
        mito = False
        for w in range(nm):
            s = a if w == 0 else b
            if (m_int[s, 0] & 4) == 0 and m_int[s, 1] >= 0:
                if m_int[s, 5]:
                    spl = True
                if mito_tid[m_int[s, 1]]:
                    mito = True
        if spl:
            acc[N_SUMMARY + T_SPLICED] += 1
        if mito:
            acc[N_SUMMARY + T_MITO] += 1
        if nhmax <= 1:
            acc[N_SUMMARY + T_UNIQUE] += 1
            nex = 0
            sense = False
            for w in range(nm):
                s = a if w == 0 else b
                for q in range(m_int[s, 6]):
                    nex += 1
                    gs = code_strand(m_hits[s, q])
                    if strandedness == 0 or gs == 0 or gs == libstrand:
                        sense = True
            if nex > 0:
                acc[N_SUMMARY + (T_EX_SENSE if sense else T_EX_ANTI)] += 1
            else:
                nsp = 0
                for w in range(nm):
                    s = a if w == 0 else b
                    for q in range(m_int[s, 7]):
                        nsp += 1
                        gs = gstrand[m_span[s, q]]
                        if strandedness == 0 or gs == 0 or gs == libstrand:
                            sense = True
                if nsp > 0:
                    acc[N_SUMMARY + (T_IN_SENSE if sense else T_IN_ANTI)] += 1
                else:
                    acc[N_SUMMARY + T_INTERGENIC] += 1

    # ---- featureCounts' assignment, in its order of checks
    fa = m_int[a, 0]
    if b >= 0:
        if (fa & 4) != 0 and (m_int[b, 0] & 4) != 0:
            acc[S_UNMAPPED] += 1
            return
    elif (fa & 4) != 0 and (not paired or (fa & 1) == 0 or (fa & 8) != 0):
        acc[S_UNMAPPED] += 1
        return
    # per record, the later one in the file first (featureCounts' pairer order): a fragment fails
    # the MAPQ filter only when both records fail it; NH > 1 and the secondary flag fail it at once
    prev_failed = not paired  # paired mode: a lone record's MAPQ failure is only final after its NH check
    for w in range(nm):
        s = b if (w == 0 and b >= 0) else a
        if opt[O_MINQ] > 0 and m_int[s, 3] < opt[O_MINQ]:
            if prev_failed:
                acc[S_MAPQ] += 1
                return
            prev_failed = True
        # featureCounts --ignoreDup: after the MAPQ rule, before the unmapped skip (an unmapped
        # record flagged 0x400 makes its mapped mate a duplicate)
        if opt[O_IGNDUP] != 0 and (m_int[s, 0] & 1024) != 0:
            acc[S_DUP] += 1
            return
        if (m_int[s, 0] & 4) != 0:
            continue  # unmapped records only take part in the MAPQ rule
        if m_int[s, 4] > 1 and opt[O_MULTI] == 0:
            acc[S_MULTI] += 1
            return
        if opt[O_PRIMARY] != 0 and (m_int[s, 0] & 256) != 0:
            acc[S_SECONDARY] += 1
            return
    if prev_failed and b < 0 and opt[O_MINQ] > 0 and m_int[a, 3] < opt[O_MINQ]:
        acc[S_MAPQ] += 1
        return
    # strand-compatible genes and their mate votes. The strand is checked per mate, as featureCounts
    # does: a record's own strand, reversed for read 2 (flag 0x80) in paired mode, so the two mates of
    # a same-strand pair (flags 65/129, 113/177) are checked against opposite strands
    ng = 0
    for w in range(nm):
        s = a if w == 0 else b
        fl = m_int[s, 0]
        if (fl & 4) != 0:
            continue
        mstrand = -1 if (fl & 16) != 0 else 1
        if paired and (fl & 128) != 0:
            mstrand = -mstrand
        for q in range(m_int[s, 6]):
            code = m_hits[s, q]
            g = code >> 2
            # featureCounts compares feature and read strands; a '.' feature never equals a read
            # strand: never counted with -s 1, always with -s 2
            gs = code_strand(code)
            if strandedness == 1 and gs != mstrand:
                continue
            if strandedness == 2 and gs == mstrand:
                continue
            found = False
            for r in range(ng):
                if votes[r, 0] == g:
                    if votes[r, 2] != w:  # one vote per mate (a gene can have exons on both strands)
                        votes[r, 1] += 1
                        votes[r, 2] = w
                    found = True
                    break
            if not found:
                votes[ng, 0] = g
                votes[ng, 1] = 1
                votes[ng, 2] = w
                ng += 1
    if ng == 0:
        acc[S_NOFEAT] += 1
        return
    # fractional weights are fixed point in featureCounts (units of 1/65536, integer division):
    # 65536 // NH (-M), then // number of genes (-O); sums of them are exact in float64
    weight = 1.0
    if opt[O_FRACTION] != 0:
        fixed = 65536
        if opt[O_MULTI] != 0 and nhmax > 1:
            fixed = 65536 // nhmax
        if opt[O_MULTIOVL] != 0:
            fixed = fixed // ng
        weight = fixed / 65536.0
    if opt[O_MULTIOVL] != 0:
        for r in range(ng):
            counts[votes[r, 0], 0] += weight
            if not isdup:
                counts[votes[r, 0], 1] += weight
        acc[S_ASSIGNED] += 1
        if ng > 1:
            return
        best = 0
    else:
        best = 0
        tie = False
        for r in range(1, ng):
            if votes[r, 1] > votes[best, 1]:
                best = r
                tie = False
            elif votes[r, 1] == votes[best, 1]:
                tie = True
        if tie:
            acc[S_AMBIG] += 1
            return
        counts[votes[best, 0], 0] += weight
        if not isdup:
            counts[votes[best, 0], 1] += weight
        acc[S_ASSIGNED] += 1
    # 3' bias bookkeeping: fragments assigned to one gene
    g = votes[best, 0]
    per_gene[g, 0] += 1
    inside = True
    for w in range(nm):
        s = a if w == 0 else b
        if (m_int[s, 0] & 4) != 0:
            continue
        hit = False
        for q in range(m_int[s, 6]):
            if (m_hits[s, q] >> 2) == g:
                hit = m_h3p[s, q] == 1
                break
        if not hit:
            inside = False
    if inside:
        per_gene[g, 1] += 1


@njit(_nrt=False)
def evaluate_records(start, n, flag, tid, blk_off, nblk, blk_start, blk_end, tid_ok,
                     ex_s, ex_e, ex_item, ex_boff, ex_bn, ex_bptr, ex_bitems,
                     sp_s, sp_e, sp_item, sp_boff, sp_bn, sp_bptr, sp_bitems, tp_tid, tp_s, tp_e,
                     ev_off, ev_nex, ev_code, ev_3p, hits):
    """Look up records ``start..n-1`` in the interval index (no order, so chunks run in parallel).

    Record ``i``'s entries are ``ev_code[ev_off[i]:ev_off[i + 1]]``: first ``ev_nex[i]`` exon-hit
    codes (``gene * 4 + strand``) with ``ev_3p`` = all its blocks inside that gene's 3'-most exon,
    then, only when no exon is hit, the genes whose span holds a block. Returns ``(next_index,
    error_code, error_record)``: ``E_EVAL_FULL`` asks the caller to grow ``ev_code``/``ev_3p`` and
    call again from ``next_index``; ``E_TOO_MANY_HITS``: a record overlaps more than ``MAXH`` genes.
    """
    cap = ev_code.shape[0]
    for i in range(start, n):
        o = ev_off[i]
        if o + MAXH > cap:
            return i, E_EVAL_FULL, i
        fl = flag[i]
        t = tid[i]
        nhit = 0
        nsp = 0
        if (fl & 4) == 0 and t >= 0 and tid_ok[t]:
            b0 = blk_off[i]
            nb = nblk[i]
            for k in range(nb):
                nhit = query_index(t, blk_start[b0 + k], blk_end[b0 + k], ex_s, ex_e, ex_item, ex_boff, ex_bn,
                                   ex_bptr, ex_bitems, hits, nhit)
                if nhit < 0:
                    return i, E_TOO_MANY_HITS, i
            for q in range(nhit):
                ev_code[o + q] = hits[q]
                g = hits[q] >> 2
                inside = tp_tid[g] == t
                if inside:
                    for k in range(nb):
                        if blk_start[b0 + k] < tp_s[g] or blk_end[b0 + k] > tp_e[g]:
                            inside = False
                            break
                ev_3p[o + q] = 1 if inside else 0
            if nhit == 0 and nb > 0:
                for k in range(nb):
                    nsp = query_index(t, blk_start[b0 + k], blk_end[b0 + k], sp_s, sp_e, sp_item, sp_boff, sp_bn,
                                      sp_bptr, sp_bitems, hits, nsp)
                    if nsp < 0:
                        return i, E_TOO_MANY_HITS, i
                for q in range(nsp):
                    ev_code[o + q] = hits[q]
        ev_nex[i] = nhit
        ev_off[i + 1] = o + nhit + nsp
    return n, E_OK, -1


@njit
def _mix(h, a, b, c, d):
    x = h ^ (np.uint64(a + 2) * np.uint64(0x9E3779B97F4A7C15))
    x ^= np.uint64(b + 2) * np.uint64(0xC2B2AE3D27D4EB4F)
    x = (x ^ (x >> np.uint64(29))) * np.uint64(0xBF58476D1CE4E5B9)
    x ^= np.uint64(c + 2) * np.uint64(0x165667B19E3779F9)
    x ^= np.uint64(d + 2) * np.uint64(0x85EBCA77C2B2AE63)
    x ^= x >> np.uint64(32)
    return x


@njit(inline="always", _nrt=False)
def _load(i, row, flag, tid, pos, mapq, nh, has_n, ev_off, ev_nex, ev_code, ev_3p, m_int, m_hits, m_h3p, m_span):
    """Fill mate slot ``row`` from record ``i`` of a batch and its index look-ups."""
    m_int[row, 0] = flag[i]
    m_int[row, 1] = tid[i]
    m_int[row, 2] = pos[i]
    m_int[row, 3] = mapq[i]
    m_int[row, 4] = nh[i]
    m_int[row, 5] = has_n[i]
    o = ev_off[i]
    nhit = ev_nex[i]
    nsp = ev_off[i + 1] - o - nhit
    for q in range(nhit):
        m_hits[row, q] = ev_code[o + q]
        m_h3p[row, q] = ev_3p[o + q]
    for q in range(nsp):
        m_span[row, q] = ev_code[o + nhit + q]
    m_int[row, 6] = nhit
    m_int[row, 7] = nsp


@njit(inline="always", _nrt=False)
def _pair_key(i, flag, tid, pos, hi, mtid, mpos, qhash):
    """Mate-pairing key of record ``i``, featureCounts' "full read name" (``SAM_pairer_get_read_full_name``):
    name and HI hash, then read 1's (tid, pos) and read 2's (tid, pos) as this record states them.

    An unmapped record's own position and a mate-unmapped record's mate position count as
    (-1, 0) whatever the fields hold; read 1 is the record with flag 0x40 (else its mate). The
    read-1/read-2 flags are not part of the key: two records with the same key pair whatever
    their flags (HISAT2 writes secondary pairs without HI whose keys repeat).
    """
    fl = flag[i]
    t, p = (np.int32(-1), np.int32(0)) if (fl & 4) != 0 else (tid[i], pos[i])
    mt, mp = (np.int32(-1), np.int32(0)) if (fl & 8) != 0 else (mtid[i], mpos[i])
    if (fl & 64) != 0:
        ka, kb, kc, kd = t, p, mt, mp
    else:
        ka, kb, kc, kd = mt, mp, t, p
    kh = qhash[i] ^ (np.uint64(hi[i] + 2) * np.uint64(0x9E3779B97F4A7C15))
    return kh, ka, kb, kc, kd


@njit(_nrt=False)
def assign_local(n, flag, tid, pos, mapq, nh, hi, mtid, mpos, qhash, has_n, ev_off, ev_nex, ev_code, ev_3p,
                 opt, gstrand, mito_tid, counts, acc, per_gene, votes, table, left, m_int, m_hits, m_h3p, m_span):
    """Assign the fragments that lie wholly in one chunk (runs on chunks in parallel).

    Single-end records, and paired records whose mate is in the same chunk (paired through
    ``table``, open addressing over record indices, ``table.size`` a power of two >= 2n), are
    assigned into this chunk's accumulators. The others get ``left[i] = 1`` and are paired in file
    order by :func:`count_records`. Returns the number left over.
    """
    paired = opt[O_PAIRED]
    mask = np.int64(table.shape[0] - 1)
    for j in range(table.shape[0]):
        table[j] = 0
    nleft = 0
    for i in range(n):
        left[i] = 0
        fl = flag[i]
        if not paired or (fl & 1) == 0:
            _load(i, 0, flag, tid, pos, mapq, nh, has_n, ev_off, ev_nex, ev_code, ev_3p, m_int, m_hits, m_h3p,
                  m_span)
            _fragment(0, -1, opt, gstrand, mito_tid, counts, acc, per_gene, votes, m_int, m_hits, m_h3p, m_span)
            continue
        kh, ka, kb, kc, kd = _pair_key(i, flag, tid, pos, hi, mtid, mpos, qhash)
        p = np.int64(_mix(kh, ka, kb, kc, kd) & np.uint64(mask))
        found = -1
        while table[p] != 0:
            j = table[p] - 1
            if j >= 0 and left[j] == 1:
                kh2, ka2, kb2, kc2, kd2 = _pair_key(j, flag, tid, pos, hi, mtid, mpos, qhash)
                if kh2 == kh and ka2 == ka and kb2 == kb and kc2 == kc and kd2 == kd:
                    found = p
                    break
            p = (p + 1) & mask
        if found < 0:
            table[p] = i + 1
            left[i] = 1
            nleft += 1
            continue
        j = table[found] - 1
        table[found] = -1  # tombstone: probing goes on past it
        left[j] = 0
        nleft -= 1
        _load(j, 0, flag, tid, pos, mapq, nh, has_n, ev_off, ev_nex, ev_code, ev_3p, m_int, m_hits, m_h3p, m_span)
        _load(i, 1, flag, tid, pos, mapq, nh, has_n, ev_off, ev_nex, ev_code, ev_3p, m_int, m_hits, m_h3p, m_span)
        _fragment(0, 1, opt, gstrand, mito_tid, counts, acc, per_gene, votes, m_int, m_hits, m_h3p, m_span)
    return nleft


@njit(_nrt=False)
def count_records(n, flag, tid, pos, mapq, nh, hi, mtid, mpos, qhash, has_n,
                  ev_off, ev_nex, ev_code, ev_3p, left,
                  start, opt, gstrand, mito_tid,
                  counts, acc, per_gene, votes, dup_state, dup_keys,
                  t_state, t_key, t_a, t_b, t_c, t_d,
                  m_int, m_hits, m_h3p, m_span):
    """The file-order part of counting, one chunk at a time: sort order and duplicates over all
    records ``start..n-1``, then the records :func:`assign_local` left over (``left[i] == 1``:
    mates whose pair is not in their chunk) are paired through the pending-mate table and assigned.

    Returns ``(next_index, error_code, error_record)``. ``E_TABLE_FULL``: the pending-mate table
    needs to grow (the caller grows it and calls again from ``next_index``). ``E_UNSORTED``:
    coordinate order is violated while duplicates are being tallied for a coordinate-sorted BAM.
    """
    cap = t_state.shape[0]
    scratch = cap
    paired = opt[O_PAIRED]
    track_dups = opt[O_SORTED] != 0
    for i in range(start, n):
        fl = flag[i]
        if paired and (dup_state[4] + 1) * 2 > cap:
            return i, E_TABLE_FULL, i  # grow the pending table (more than half full) before this record
        # --- coordinate order and duplicate tally (primary mapped records that represent a fragment)
        if track_dups:
            t = tid[i]
            p = pos[i]
            if t >= 0:
                if dup_state[0] == -2 or t < dup_state[0] or (t == dup_state[0] and p < dup_state[1]):
                    if not (dup_state[0] == -1 and dup_state[1] == -1):
                        return i, E_UNSORTED, i
                if t != dup_state[0] or p != dup_state[1]:
                    dup_state[0] = t
                    dup_state[1] = p
                    dup_state[2] = 0
                if (fl & 0x904) == 0:
                    rep = True
                    key = np.int64(1 if (fl & 16) != 0 else 0)
                    if paired and (fl & 1) != 0 and (fl & 8) == 0:
                        mt = mtid[i]
                        mp = mpos[i]
                        if mt == t and (mp < p or (mp == p and (fl & 64) == 0)) or mt != t and (fl & 64) == 0:
                            rep = False
                        key = key | (np.int64(mp + 1) << 2) | (np.int64(mt + 1) << 34)
                    if rep:
                        dup = False
                        for k in range(dup_state[2]):
                            if dup_keys[k] == key:
                                dup = True
                                break
                        if dup:
                            acc[N_SUMMARY + T_DUPS] += 1
                        elif dup_state[2] < dup_keys.shape[0]:
                            dup_keys[dup_state[2]] = key
                            dup_state[2] += 1
            else:
                dup_state[0] = -2  # unmapped tail: no mapped read may follow
        if left[i] == 0:
            continue  # assigned within its chunk
        # --- a mate whose pair is in another chunk: load it into the scratch slot, pair it globally
        _load(i, scratch, flag, tid, pos, mapq, nh, has_n, ev_off, ev_nex, ev_code, ev_3p, m_int, m_hits, m_h3p,
              m_span)
        kh, ka, kb, kc, kd = _pair_key(i, flag, tid, pos, hi, mtid, mpos, qhash)
        h = _mix(kh, ka, kb, kc, kd)
        mask = np.int64(cap - 1)
        j = np.int64(h & np.uint64(mask))
        found = -1
        for _ in range(cap):
            if t_state[j] == 0:
                break
            if t_key[j] == kh and t_a[j] == ka and t_b[j] == kb and t_c[j] == kc and t_d[j] == kd:
                found = j
                break
            j = (j + 1) & mask
        if found >= 0:
            _fragment(found, scratch, opt, gstrand, mito_tid, counts, acc, per_gene, votes, m_int, m_hits, m_h3p,
                      m_span)
            # delete with backward shift (linear probing without tombstones)
            t_state[found] = 0
            dup_state[4] -= 1
            hole = found
            k = found
            while True:
                k = (k + 1) & mask
                if t_state[k] == 0:
                    break
                home = np.int64(_mix(t_key[k], t_a[k], t_b[k], t_c[k], t_d[k]) & np.uint64(mask))
                # move k into the hole unless its home lies cyclically in (hole, k]
                if hole <= k:
                    stay = hole < home <= k
                else:
                    stay = home > hole or home <= k
                if not stay:
                    t_state[hole] = 1
                    t_key[hole] = t_key[k]
                    t_a[hole] = t_a[k]
                    t_b[hole] = t_b[k]
                    t_c[hole] = t_c[k]
                    t_d[hole] = t_d[k]
                    _copy_slot(k, hole, m_int, m_hits, m_h3p, m_span)
                    t_state[k] = 0
                    hole = k
            continue
        slot = j
        t_state[slot] = 1
        t_key[slot] = kh
        t_a[slot] = ka
        t_b[slot] = kb
        t_c[slot] = kc
        t_d[slot] = kd
        _copy_slot(scratch, slot, m_int, m_hits, m_h3p, m_span)
        dup_state[4] += 1
    return n, E_OK, -1


@njit(inline="always", _nrt=False)
def _copy_slot(src, dst, m_int, m_hits, m_h3p, m_span):
    for f in range(m_int.shape[1]):
        m_int[dst, f] = m_int[src, f]
    for q in range(m_int[src, 6]):
        m_hits[dst, q] = m_hits[src, q]
        m_h3p[dst, q] = m_h3p[src, q]
    for q in range(m_int[src, 7]):
        m_span[dst, q] = m_span[src, q]


@njit
def flush_pending(opt, gstrand, mito_tid, counts, acc, per_gene, votes, t_state,
                  m_int, m_hits, m_h3p, m_span):
    """At the end of the file: mates whose pair never appeared are counted as single-mate fragments."""
    n = 0
    for j in range(t_state.shape[0]):
        if t_state[j] == 1:
            _fragment(j, -1, opt, gstrand, mito_tid, counts, acc, per_gene, votes,
                      m_int, m_hits, m_h3p, m_span)
            t_state[j] = 0
            n += 1
    return n


@njit
def rehash(old_state, old_key, old_a, old_b, old_c, old_d, new_state, new_key, new_a, new_b, new_c, new_d,
           src_int, src_hits, src_h3p, src_span,
           m_int, m_hits, m_h3p, m_span):
    """Move the live entries of the old pending table into a new (larger) one; returns their number."""
    cap = new_state.shape[0]
    live = 0
    for j in range(old_state.shape[0]):
        if old_state[j] != 1:
            continue
        h = _mix(old_key[j], old_a[j], old_b[j], old_c[j], old_d[j])
        k = np.int64(h & np.uint64(cap - 1))
        while new_state[k] != 0:
            k = np.int64((k + 1) & np.int64(cap - 1))
        new_state[k] = 1
        new_key[k] = old_key[j]
        new_a[k] = old_a[j]
        new_b[k] = old_b[j]
        new_c[k] = old_c[j]
        new_d[k] = old_d[j]
        for f in range(m_int.shape[1]):
            m_int[k, f] = src_int[j, f]
        for q in range(src_int[j, 6]):
            m_hits[k, q] = src_hits[j, q]
            m_h3p[k, q] = src_h3p[j, q]
        for q in range(src_int[j, 7]):
            m_span[k, q] = src_span[j, q]
        live += 1
    return live
