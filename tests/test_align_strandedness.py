"""Strandedness inference from spliced/exonic reads (robust to gDNA) and the align.json block."""

from __future__ import annotations

import logging

import pysam
import pytest

from cfrna.align.strandedness import call_strandedness, infer_strandedness, strandedness_block
from tests.helpers.genome import toy_genome


def _bam(path, reads):
    """reads: (chrom, start0, cigar, reverse, mate) with mate 0 (SE), 1 or 2."""
    header = {"HD": {"VN": "1.6", "SO": "unsorted"}, "SQ": [{"SN": "chrA", "LN": 6000}, {"SN": "chrB", "LN": 3000}]}
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for i, (chrom, start, cigar, rev, mate) in enumerate(reads):
            a = pysam.AlignedSegment(out.header)
            a.query_name = f"r{i}"
            a.reference_name = chrom
            a.reference_start = start
            a.cigarstring = cigar
            qlen = sum(int(n) for n, op in zip(cigar.replace("M", " M ").replace("N", " N ").split()[::2],
                                               cigar.replace("M", " M ").replace("N", " N ").split()[1::2],
                                               strict=True) if op == "M")
            a.query_sequence = "A" * qlen
            a.query_qualities = pysam.qualitystring_to_array("I" * qlen)
            a.flag = (16 if rev else 0) | ({1: 1 | 64, 2: 1 | 128}.get(mate, 0))
            a.mapping_quality = 60
            a.set_tag("NH", 1)
            out.write(a)
    return path


def _reads(n_sense: int, n_anti: int, *, gdna: int = 0, mate: int = 0):
    reads = []
    for i in range(n_sense + n_anti):
        sense = i < n_sense
        # g1 is on '+' (chrA), g2 on '-' (chrB): alternate genes
        if i % 2:
            reads.append(("chrA", 1010 + i % 100, "50M", not sense, mate))
        else:
            reads.append(("chrB", 510 + i % 100, "50M", sense, mate))
    for i in range(gdna):  # intronic/intergenic, all on '+' (would look 'forward' if used)
        reads.append(("chrA", 1250 + i % 300, "40M", False, mate))
        reads.append(("chrA", 4000 + i % 900, "40M", False, mate))
    return reads


def test_reverse_library_robust_to_gdna(tmp_path):
    _, gtf, _ = toy_genome(tmp_path)
    reads = _reads(2, 48, gdna=200)
    reads.append(("chrA", 1150, "50M400N30M", True, 0))  # spliced, antisense to g1
    bam = _bam(tmp_path / "r.bam", reads)
    res = infer_strandedness(bam, gtf)
    assert res["inferred"] == "reverse"
    assert res["reads_used"] == 51 and res["reverse_fraction"] == pytest.approx(49 / 51, abs=1e-4)


def test_forward_unstranded_and_read2(tmp_path):
    _, gtf, _ = toy_genome(tmp_path)
    assert infer_strandedness(_bam(tmp_path / "f.bam", _reads(45, 5)), gtf)["inferred"] == "forward"
    assert infer_strandedness(_bam(tmp_path / "u.bam", _reads(26, 24)), gtf)["inferred"] == "unstranded"
    # read 2 of a reverse library lies on the gene's strand
    assert infer_strandedness(_bam(tmp_path / "m2.bam", _reads(48, 2, mate=2)), gtf)["inferred"] == "reverse"
    assert infer_strandedness(_bam(tmp_path / "few.bam", _reads(5, 0)), gtf)["inferred"] == "undetermined"
    assert infer_strandedness(_bam(tmp_path / "lim.bam", _reads(40, 10)), gtf, n_reads=20)["reads_used"] == 20


def test_call_thresholds():
    assert call_strandedness(0.80, 0.20, 100) == "forward"
    assert call_strandedness(0.05, 0.95, 100) == "reverse"
    assert call_strandedness(0.52, 0.46, 100) == "unstranded"
    assert call_strandedness(0.70, 0.30, 100) == "undetermined"
    assert call_strandedness(1.0, 0.0, 5) == "undetermined"


def test_block_used_agrees_and_warning(caplog):
    inf = {"inferred": "reverse", "forward_fraction": 0.02, "reverse_fraction": 0.98, "undetermined_fraction": 0.0,
           "reads_used": 900}
    b = strandedness_block("auto", inf)
    assert b["used"] == "reverse" and b["agrees"] is None and b["declared"] == "auto"
    assert strandedness_block("reverse", inf)["agrees"] is True
    with caplog.at_level(logging.WARNING):
        b = strandedness_block("forward", inf, sample="s1")
    assert b["used"] == "forward" and b["agrees"] is False
    assert any("disagrees" in r.getMessage() and "s1" in r.getMessage() for r in caplog.records)
    und = dict(inf, inferred="undetermined")
    assert strandedness_block("auto", und)["used"] == "unstranded"
