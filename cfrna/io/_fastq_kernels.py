"""numba kernels of the FASTQ chunk reader (:func:`cfrna.io.fastq.iter_fastq_chunks`).

A chunk of FASTQ text is parsed into a table of offsets (one row a record) and checked on the
way: the four-line layout, ``@`` and ``+`` lines, sequence and quality of the same length. Read
ids for mate matching are the header's first word without a ``/1`` or ``/2`` suffix, as in
:func:`cfrna.io.fastq.read_id`.
"""

from __future__ import annotations

from cfrna._numba import njit

#: FASTQ parser errors (code -> message); the caller adds file and record number
FASTQ_ERRORS = {
    1: "expected '@' at the start of the record header",
    2: "expected a '+' line after the sequence",
    3: "sequence and quality lengths differ",
    4: "file ends inside a record",
    5: "the '+' line names another read than the header",
    6: "non-ASCII character in the record",
}

#: record table columns: name start, read-id end, sequence start, sequence length, quality start, record end
R_NAME, R_ID_END, R_SEQ, R_LEN, R_QUAL, R_END = range(6)
N_RCOL = 6


@njit
def _line_end(buf, i, n):
    """Index of the next newline at or after ``i`` (``n`` if none), -1 for a non-ASCII byte first."""
    while i < n:
        c = buf[i]
        if c == 10:
            return i
        if c >= 128:
            return -1
        i += 1
    return i


@njit
def _strip_cr(buf, s, e):
    return e - 1 if e > s and buf[e - 1] == 13 else e


@njit
def _is_space(c):
    return c == 32 or c == 9 or c == 11 or c == 12 or c == 13


@njit
def parse_fastq(buf, n, at_eof, rec):
    """Parse the complete FASTQ records of ``buf[:n]`` into ``rec`` (columns ``R_*``).

    Returns ``(records, consumed, error, error_record)``: ``consumed`` is where the first
    incomplete record starts (the caller keeps it for the next chunk, or reports a truncated
    file when ``at_eof``; the last line may lack its newline at the end); ``error`` a key of
    :data:`FASTQ_ERRORS` (0: none) for the record ``error_record`` of this chunk. The read id
    (``R_NAME`` to ``R_ID_END``) is the header's first word without a ``/1`` or ``/2`` suffix.
    """
    cap = rec.shape[0]
    i = 0
    k = 0
    while k < cap and i < n:
        start = i
        if buf[i] != 64:
            return k, start, 1, k
        e1 = _line_end(buf, i, n)
        if e1 < 0:
            return k, start, 6, k
        if e1 >= n:
            break
        e2 = _line_end(buf, e1 + 1, n)
        if e2 < 0:
            return k, start, 6, k
        if e2 + 1 >= n:
            break
        if buf[e2 + 1] != 43:
            return k, start, 2, k
        e3 = _line_end(buf, e2 + 1, n)
        if e3 < 0:
            return k, start, 6, k
        if e3 + 1 >= n:  # no quality line yet (an empty one needs its newline)
            break
        e4 = _line_end(buf, e3 + 1, n)
        if e4 < 0:
            return k, start, 6, k
        if e4 >= n and not at_eof:
            break
        ns = i + 1
        ne = _strip_cr(buf, ns, e1)
        while ns < ne and _is_space(buf[ns]):
            ns += 1
        ide = ns
        while ide < ne and not _is_space(buf[ide]):
            ide += 1
        if ide - ns > 2 and buf[ide - 2] == 47 and (buf[ide - 1] == 49 or buf[ide - 1] == 50):
            ide -= 2
        ps = e2 + 2
        pe = _strip_cr(buf, ps, e3)
        if pe > ps:  # a repeated name after '+' must be the header's
            hs = i + 1
            he = _strip_cr(buf, hs, e1)
            if pe - ps != he - hs:
                return k, start, 5, k
            for t in range(pe - ps):
                if buf[ps + t] != buf[hs + t]:
                    return k, start, 5, k
        ss = e1 + 1
        se = _strip_cr(buf, ss, e2)
        qs = e3 + 1
        qe = _strip_cr(buf, qs, e4)
        if qe - qs != se - ss:
            return k, start, 3, k
        rec[k, R_NAME] = ns
        rec[k, R_ID_END] = ide
        rec[k, R_SEQ] = ss
        rec[k, R_LEN] = se - ss
        rec[k, R_QUAL] = qs
        rec[k, R_END] = min(e4 + 1, n)
        k += 1
        i = min(e4 + 1, n)
    return k, i, 0, k


@njit
def first_id_mismatch(b1, r1, b2, r2, k):
    """First of the ``k`` pairs whose read ids differ (-1: all equal)."""
    for j in range(k):
        l1 = r1[j, R_ID_END] - r1[j, R_NAME]
        if l1 != r2[j, R_ID_END] - r2[j, R_NAME]:
            return j
        o1 = r1[j, R_NAME]
        o2 = r2[j, R_NAME]
        for t in range(l1):
            if b1[o1 + t] != b2[o2 + t]:
                return j
    return -1
