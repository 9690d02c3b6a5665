"""Plain-Python references of ``cfrna count --dedup`` (slow, whole file in memory, obviously correct).

:func:`naive_position` follows Picard MarkDuplicates' definition (read ends by library = one per
BAM, reference, unclipped 5' end and strand; pairs keyed by both ends in Picard's order; best sum
of base qualities >= 15, ties by tile/x/y parsed from the name, then file order; fragments at a
paired read's end are duplicates). :func:`naive_umi` follows ``umi_tools dedup`` (bundles by
umi_tools' read position, strand and, for pairs, read 1's TLEN; per UMI the read with the highest
MAPQ, the first on ties; ``unique`` keeps one read per UMI, ``directional`` one per group of
:class:`umi_tools.network.UMIClusterer` when umi_tools is installed, else of the local network
below). Both return the file indices of the records of duplicate fragments, as
``count_bam(..., dedup_marks=True)["dedup"].marked()`` does.
"""

from __future__ import annotations

import pysam

_CLIPS = (4, 5)  # S H


def picard_five(r) -> int:
    """Unclipped 5' end (0-based)."""
    cig = r.cigartuples
    if r.is_reverse:
        end = r.reference_end - 1
        for op, ln in reversed(cig):
            if op not in _CLIPS:
                break
            end += ln
        return end
    start = r.reference_start
    for op, ln in cig:
        if op not in _CLIPS:
            break
        start -= ln
    return start


def umi_tools_five(r) -> int:
    """umi_tools ``get_read_position``: soft clips at the outer CIGAR ends only."""
    cig = r.cigartuples
    if r.is_reverse:
        return r.reference_end + (cig[-1][1] if cig[-1][0] == 4 else 0)
    return r.reference_start - (cig[0][1] if cig[0][0] == 4 else 0)


def picard_score(r) -> int:
    q = r.query_qualities
    return min(sum(x for x in q if x >= 15), 16383) if q is not None else 0


def _lead_int(s: str):
    neg = s.startswith("-")
    digits = ""
    for c in s[1:] if neg else s:
        if not c.isdigit():
            break
        digits += c
    if not digits:
        return None
    v = int(digits) & 0xFFFFFFFF
    v = v - (1 << 32) if v >= 1 << 31 else v
    return -v if neg else v


def picard_location(name: str) -> tuple[int, int, int]:
    """Tile, x, y as Picard's default read-name parsing finds them (-1 when it does not parse)."""
    f = name.split(":")
    if len(f) in (5, 7):
        vals = [_lead_int(x) for x in f[-3:]]
        if None not in vals:
            return vals[0], vals[1], vals[2]
    return -1, -1, -1


def naive_position(bam) -> set[int]:
    recs = list(pysam.AlignmentFile(str(bam)))
    frags: dict[tuple, list] = {}  # (tid, five, rev) -> [(paired, score, tie, idx)]
    pairs: dict[tuple, list] = {}
    first: dict[str, tuple] = {}
    for i, r in enumerate(recs):
        if r.is_unmapped or r.is_secondary or r.is_supplementary:
            continue
        five = picard_five(r)
        loc = picard_location(r.query_name)
        paired_end = r.is_paired and not r.mate_is_unmapped
        frags.setdefault((r.reference_id, five, r.is_reverse), []).append(
            (paired_end, picard_score(r), (*loc, i), i))
        if not paired_end:
            continue
        if r.query_name not in first:
            first[r.query_name] = (r.reference_id, five, r.is_reverse, i, picard_score(r), loc)
            continue
        t0, c0, rev0, i0, s0, loc0 = first.pop(r.query_name)
        t1, c1 = r.reference_id, five
        if (t1, c1) >= (t0, c0):
            ends = ((t0, c0, rev0, i0), (t1, c1, r.is_reverse, i))
        else:
            ends = ((t1, c1, r.is_reverse, i), (t0, c0, rev0, i0))
        (ta, ca, ra, ia), (tb, cb, rb, ib) = ends
        orient = {(False, False): 2, (False, True): 3, (True, True): 4, (True, False): 5}[(ra, rb)]
        if (ta, ca) == (tb, cb) and orient == 5:
            orient = 3
        pairs.setdefault((ta, ca, orient, tb, cb), []).append((s0 + picard_score(r), (*loc0, ia, ib), (ia, ib)))
    dups: set[int] = set()
    for members in pairs.values():
        best = min(members, key=lambda m: (-m[0], m[1]))
        for m in members:
            if m is not best:
                dups.update(m[2])
    for members in frags.values():
        single = [m for m in members if not m[0]]
        if not single:
            continue
        if len(single) < len(members):
            dups.update(m[3] for m in single)
            continue
        best = min(single, key=lambda m: (-m[1], m[2]))
        dups.update(m[3] for m in single if m is not best)
    return dups


def _directional_groups(counts: dict[str, int]) -> list[list[str]]:
    """umi_tools' directional groups (its own clusterer when installed)."""
    try:
        from umi_tools.network import UMIClusterer
    except ImportError:  # pragma: no cover - the same algorithm, written out
        return _directional_local(counts)
    enc = {u.encode(): n for u, n in counts.items()}
    return [[u.decode() for u in g] for g in UMIClusterer("directional")(enc, 1)]


def _directional_local(counts: dict[str, int]) -> list[list[str]]:
    umis = list(counts)

    def ham1(a, b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1

    adj = {u: [v for v in umis if v != u and ham1(u, v) and counts[u] >= 2 * counts[v] - 1] for u in umis}
    found: set[str] = set()
    groups = []
    for u in sorted(umis, key=lambda x: counts[x], reverse=True):
        if u in found:
            continue
        comp, queue = {u}, [u]
        while queue:
            a = queue.pop()
            for b in adj[a]:
                if b not in comp:
                    comp.add(b)
                    queue.append(b)
        group = [x for x in sorted(sorted(comp), key=lambda x: counts[x], reverse=True) if x not in found]
        found |= comp
        groups.append(group)
    return groups


def naive_umi(bam, *, method: str, paired: bool, sep: str = "_") -> set[int]:
    recs = list(pysam.AlignmentFile(str(bam)))
    mate: dict[int, int] = {}
    if paired:
        by_name: dict[str, list[int]] = {}
        for i, r in enumerate(recs):
            by_name.setdefault(r.query_name, []).append(i)
        for idx in by_name.values():
            r1 = [i for i in idx if recs[i].is_read1]
            r2 = [i for i in idx if recs[i].is_read2]
            if len(r1) == 1 and len(r2) == 1:
                mate[r1[0]] = r2[0]
    bundles: dict[tuple, dict[str, list[int]]] = {}
    for i, r in enumerate(recs):
        if r.is_read2 or r.is_unmapped:
            continue
        if paired and r.is_paired and r.mate_is_unmapped:
            continue
        key = (r.reference_id, umi_tools_five(r), r.is_reverse, r.template_length if paired else 0)
        bundles.setdefault(key, {}).setdefault(r.query_name.rsplit(sep, 1)[1], []).append(i)
    dups: set[int] = set()
    for by_umi in bundles.values():
        rep = {u: max(idx, key=lambda i: (recs[i].mapping_quality, -i)) for u, idx in by_umi.items()}
        counts = {u: len(idx) for u, idx in by_umi.items()}
        groups = [[u] for u in counts] if method == "unique" else _directional_groups(counts)
        keep = {rep[g[0]] for g in groups}
        for idx in by_umi.values():
            for i in idx:
                if i not in keep:
                    dups.add(i)
                    if i in mate:
                        dups.add(mate[i])
    return dups
