"""Slow, obviously correct reference for ``cfrna.count`` (pysam loop, brute-force overlaps).

It states featureCounts' rules (as verified against featureCounts 2.0.3) directly in Python and
is used by the tests to check the numba kernels on small BAMs. Not for production use.
"""

from __future__ import annotations

from collections import defaultdict

import pysam

from cfrna.reference import read_gtf
from cfrna.reference.gtf import MITO_NAMES

CATS = (
    "Assigned", "Unassigned_Unmapped", "Unassigned_Read_Type", "Unassigned_Singleton",
    "Unassigned_MappingQuality", "Unassigned_Chimera", "Unassigned_FragmentLength", "Unassigned_Duplicate",
    "Unassigned_MultiMapping", "Unassigned_Secondary", "Unassigned_NonSplit", "Unassigned_NoFeatures",
    "Unassigned_Overlapping_Length", "Unassigned_Ambiguity",
)


def blocks(rec):
    """Aligned blocks (1-based inclusive): M/=/X extend a block; D and N end it."""
    out = []
    ref = rec.reference_start + 1
    cur = None
    for op, ln in rec.cigartuples or []:
        if op in (0, 7, 8):
            if cur is None:
                cur = ref
            ref += ln
        elif op in (2, 3):
            if cur is not None:
                out.append((cur, ref - 1))
                cur = None
            ref += ln
    if cur is not None:
        out.append((cur, ref - 1))
    return out


def naive_count(bam, gtf, *, strandedness=0, paired=False, min_mapq=0, primary_only=False,
                multi_mapping=False, fraction=False, allow_multi_overlap=False, ignore_dup=False, min_reads_3p=5,
                trace=None):
    """Return (counts dict gene->float, summary dict, stats dict); ``trace``: dict filled name -> category."""
    ann = read_gtf(gtf)
    genes = ann.gene_ids
    gstrand = dict(zip(genes, ann.genes["strand"], strict=True))
    feats = defaultdict(list)  # chrom -> [(start, end, gene)]
    spans = {}
    tp = {}
    for c, s, e, st, gi in zip(ann.features["chrom"].astype(str), ann.features["start"], ann.features["end"],
                               ann.features["strand"], ann.features["gene_idx"], strict=True):
        g = genes[gi]
        feats[c].append((int(s), int(e), g, st))
        lo, hi = spans.get((c, g), (int(s), int(e)))
        spans[(c, g)] = (min(lo, int(s)), max(hi, int(e)))
        key = (-int(e), int(s)) if st != "-" else (int(s), -int(e))
        if g not in tp or key < tp[g][0]:
            tp[g] = (key, c, int(s), int(e))
    exon_blocks = defaultdict(set)
    for c, lst in feats.items():
        for s, e, g, _ in lst:
            exon_blocks[g].add((c, s, e))
    multi_exon = {g: _n_merged(v) > 1 for g, v in exon_blocks.items()}

    counts = dict.fromkeys(genes, 0.0)
    summary = dict.fromkeys(CATS, 0)
    stats = dict.fromkeys(["primary_mapped", "unique", "exonic_sense", "exonic_antisense", "intronic_sense",
                           "intronic_antisense", "intergenic", "spliced", "mito", "duplicates",
                           "duplicates_flagged"], 0)
    n_uni = defaultdict(int)
    n_3p = defaultdict(int)

    def mate_info(rec):
        info = {"name": rec.query_name, "flag": rec.flag, "mapq": rec.mapping_quality, "chrom": None, "blocks": [],
                "nh": rec.get_tag("NH") if rec.has_tag("NH") else -1, "spliced": False}
        if not rec.is_unmapped and rec.reference_id >= 0:
            info["chrom"] = rec.reference_name
            info["blocks"] = blocks(rec)
            info["spliced"] = any(op == 3 for op, _ in rec.cigartuples or [])
        hits = set()  # (gene, feature strand)
        for s, e, g, st in feats.get(info["chrom"], []):
            if any(bs <= e and be >= s for bs, be in info["blocks"]):
                hits.add((g, st))
        info["hits"] = hits
        info["genes"] = {g for g, _ in hits}
        sp = set()
        for (c, g), (s, e) in spans.items():
            if c == info["chrom"] and any(bs <= e and be >= s for bs, be in info["blocks"]):
                sp.add(g)
        info["spans"] = sp
        return info

    def fragment(mates):
        cat = _fragment(mates)
        if trace is not None:
            trace[mates[0]["name"]] = cat

    def _fragment(mates):
        mapped = [m for m in mates if not m["flag"] & 4 and m["chrom"] is not None]
        nh = max([max(m["nh"], 1) for m in mapped] + [1])
        fstrand = 0
        r1 = [m for m in mapped if not (paired and m["flag"] & 1 and m["flag"] & 128 and not m["flag"] & 64)]
        if r1:
            fstrand = -1 if r1[-1]["flag"] & 16 else 1
        elif mapped:
            fstrand = 1 if mapped[-1]["flag"] & 16 else -1
        lib = -fstrand if strandedness == 2 else fstrand

        def is_sense(strands):
            return any(strandedness == 0 or st not in "+-" or (1 if st == "+" else -1) == lib for st in strands)

        if mapped and all(not m["flag"] & 0x900 for m in mates):
            stats["primary_mapped"] += 1
            stats["duplicates_flagged"] += any(m["flag"] & 1024 for m in mates)
            stats["spliced"] += any(m["spliced"] for m in mapped)
            stats["mito"] += any(m["chrom"] in MITO_NAMES for m in mapped)
            if nh <= 1:
                stats["unique"] += 1
                ex = {st for m in mapped for _, st in m["hits"]}
                sp = {gstrand[g] for m in mapped for g in m["spans"]}
                if ex:
                    stats["exonic_sense" if is_sense(ex) else "exonic_antisense"] += 1
                elif sp:
                    stats["intronic_sense" if is_sense(sp) else "intronic_antisense"] += 1
                else:
                    stats["intergenic"] += 1
        f0 = mates[0]["flag"]
        if len(mates) == 2:
            if all(m["flag"] & 4 for m in mates):
                summary["Unassigned_Unmapped"] += 1
                return "Unassigned_Unmapped"
        elif f0 & 4 and (not paired or not f0 & 1 or f0 & 8):
            summary["Unassigned_Unmapped"] += 1
            return "Unassigned_Unmapped"
        # records are checked later-in-file first; MAPQ fails the fragment when both records fail
        prev_failed = not paired
        for m in reversed(mates):
            if min_mapq > 0 and m["mapq"] < min_mapq:
                if prev_failed:
                    summary["Unassigned_MappingQuality"] += 1
                    return "Unassigned_MappingQuality"
                prev_failed = True
            if ignore_dup and m["flag"] & 1024:  # --ignoreDup: an unmapped duplicate record counts too
                summary["Unassigned_Duplicate"] += 1
                return "Unassigned_Duplicate"
            if m["flag"] & 4:
                continue  # unmapped records only take part in the MAPQ rule
            if m["nh"] > 1 and not multi_mapping:
                summary["Unassigned_MultiMapping"] += 1
                return "Unassigned_MultiMapping"
            if primary_only and m["flag"] & 256:
                summary["Unassigned_Secondary"] += 1
                return "Unassigned_Secondary"
        if prev_failed and len(mates) == 1 and min_mapq > 0 and mates[0]["mapq"] < min_mapq:
            summary["Unassigned_MappingQuality"] += 1
            return "Unassigned_MappingQuality"
        votes = defaultdict(int)
        for m in mapped:
            voted = set()
            # each mate is checked on its own strand (read 2 reversed), as featureCounts does
            mstrand = -1 if m["flag"] & 16 else 1
            if paired and m["flag"] & 128:
                mstrand = -mstrand
            for g, st in m["hits"]:
                # featureCounts: a '.' feature never equals the read strand
                fs = 1 if st == "+" else -1 if st == "-" else 0
                if strandedness == 1 and fs != mstrand:
                    continue
                if strandedness == 2 and fs == mstrand:
                    continue
                voted.add(g)
            for g in voted:
                votes[g] += 1
        if not votes:
            summary["Unassigned_NoFeatures"] += 1
            return "Unassigned_NoFeatures"
        w = 1.0
        if fraction:  # featureCounts: fixed point, units of 1/65536 with integer division
            fixed = 65536 // nh if multi_mapping else 65536
            if allow_multi_overlap:
                fixed //= len(votes)
            w = fixed / 65536
        if allow_multi_overlap:
            for g in votes:
                counts[g] += w
            summary["Assigned"] += 1
            if len(votes) > 1:
                return "Assigned"
            g = next(iter(votes))
        else:
            top = max(votes.values())
            best = [g for g, v in votes.items() if v == top]
            if len(best) > 1:
                summary["Unassigned_Ambiguity"] += 1
                return "Unassigned_Ambiguity"
            g = best[0]
            counts[g] += w
            summary["Assigned"] += 1
        n_uni[g] += 1
        _, c, s, e = tp[g]
        if all(g in m["genes"] and m["chrom"] == c and all(s <= bs and be <= e for bs, be in m["blocks"])
               for m in mapped):
            n_3p[g] += 1
        return "Assigned"

    pending = {}
    seen_dup = set()
    with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as fh:
        sorted_coord = fh.header.to_dict().get("HD", {}).get("SO") == "coordinate"
        for rec in fh.fetch(until_eof=True):
            fl = rec.flag
            if sorted_coord and not fl & 0x904 and rec.reference_id >= 0:
                rep = True
                key = (rec.reference_id, rec.reference_start, bool(fl & 16))
                if paired and fl & 1 and not fl & 8:
                    if rec.next_reference_id == rec.reference_id:
                        rep = rec.next_reference_start > rec.reference_start or (
                            rec.next_reference_start == rec.reference_start and fl & 64)
                    else:
                        rep = bool(fl & 64)
                    key += (rec.next_reference_id, rec.next_reference_start)
                if rep:
                    if key in seen_dup:
                        stats["duplicates"] += 1
                    seen_dup.add(key)
            info = mate_info(rec)
            if not paired or not fl & 1:
                fragment([info])
                continue
            # featureCounts' pairing key: name, HI, read 1's and read 2's (tid, pos) as this record
            # states them, an unmapped own or mate position read as (-1, 0); flags are not compared
            hi = rec.get_tag("HI") if rec.has_tag("HI") else None
            own = (-1, 0) if fl & 4 else (rec.reference_id, rec.reference_start)
            mate = (-1, 0) if fl & 8 else (rec.next_reference_id, rec.next_reference_start)
            k = (rec.query_name, hi, *(own + mate if fl & 64 else mate + own))
            if k in pending:
                fragment([pending.pop(k), info])
            else:
                pending[k] = info
    for info in pending.values():
        fragment([info])
    if not sorted_coord:
        stats["duplicates"] = None
    elig = [g for g in genes if n_uni[g] >= min_reads_3p and multi_exon.get(g)]
    stats["three_prime_bias"] = (sum(n_3p[g] == n_uni[g] for g in elig) / len(elig)) if elig else None
    stats["genes_detected"] = sum(1 for v in counts.values() if v > 0)
    return counts, summary, stats


def _n_merged(blocks_) -> int:
    n = 0
    cur = None
    for c, s, e in sorted(blocks_):
        if cur is None or c != cur[0] or s > cur[2] + 1:
            n += 1
            cur = [c, s, e]
        else:
            cur[2] = max(cur[2], e)
    return n
