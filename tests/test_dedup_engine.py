"""``cfrna count --dedup``: duplicate marking and UMI deduplication in the counting pass.

Checked against the reference tools on real reads from ../shared/data:

* ``position`` = Picard MarkDuplicates: the records cfrna marks are exactly the records Picard
  flags 0x400 (yeast single-end reads, whose Illumina names make Picard break score ties by
  tile/x/y; chicken paired-end reads aligned with HISAT2 here), and the deduplicated per-gene
  counts and summary equal ``featureCounts --ignoreDup`` on Picard's BAM.
* ``directional`` / ``unique`` = ``umi_tools dedup --method ...`` (``--paired`` for pairs) +
  featureCounts, on those BAMs with UMIs in the read names and planted PCR copies of a share of
  the templates (same alignment, other qualities; the UMI copied with a one-base error now and
  then, or a new UMI: another molecule at the same position).
* each bad input is a one-line error naming the BAM and the read.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cfrna.count import count_reads
from cfrna.count.counter import count_bam
from cfrna.errors import ConfigError, InputFormatError
from cfrna.reference.layout import load_layout
from tests.conftest import require_module, require_shared, require_tool
from tests.helpers.featurecounts import featurecounts

pysam = pytest.importorskip("pysam")

BASES = "ACGT"


def _picard(bam: Path, out: Path) -> Path:
    picard = require_tool("PicardCommandLine")
    subprocess.run([picard, "MarkDuplicates", f"I={bam}", f"O={out}", f"M={out}.metrics.txt",
                    "VALIDATION_STRINGENCY=SILENT", "QUIET=true"], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def real_bams(tmp_path_factory):
    """Coordinate-sorted real BAMs and their annotation: yeast single-end (given aligned), chicken
    paired-end (aligned here with HISAT2 to its 170 kb region)."""
    samtools = require_tool("samtools")
    d = tmp_path_factory.mktemp("dedup_real")
    sam = require_shared("htseq_yeast_count", "yeast_RNASeq_excerpt_withNH.sam.gz")
    ygtf = require_shared("htseq_yeast_count", "Saccharomyces_cerevisiae.SGD1.01.56.gtf.gz")
    subprocess.run([samtools, "sort", "-o", str(d / "se.bam"), str(sam)], check=True, capture_output=True)
    hisat2 = require_tool("hisat2")
    require_tool("hisat2-build")
    g = require_shared("rnaseq_nf_ggal")
    subprocess.run(["hisat2-build", "-q", "-p", "1", str(g / "ggal_1_48850000_49020000.Ggal71.500bpflank.fa"),
                    str(d / "gg")], check=True, capture_output=True)
    subprocess.run([hisat2, "-p", "2", "-x", str(d / "gg"), "-1", str(g / "ggal_gut_1.fq.gz"), "-2",
                    str(g / "ggal_gut_2.fq.gz"), "-S", str(d / "pe.sam")], check=True, capture_output=True)
    subprocess.run([samtools, "sort", "-o", str(d / "pe.bam"), str(d / "pe.sam")], check=True, capture_output=True)
    return {"se": (d / "se.bam", ygtf), "pe": (d / "pe.bam", g / "ggal_1_48850000_49020000.bed.gff")}


def _records(bam):
    with pysam.AlignmentFile(str(bam)) as fh:
        return list(fh)


def flagged_records(bam) -> set[tuple[int, str, int]]:
    """(file index, name, read-1/2 flags) of the records flagged duplicate (0x400)."""
    return {(i, r.query_name, r.flag & 0xC0) for i, r in enumerate(_records(bam)) if r.is_duplicate}


def marked_records(bam, gtf, *, paired: bool, method: str = "position", umi_sep: str = "_") -> tuple:
    """(index, name, read-1/2 flags) of the records cfrna marks, and the engine's dedup state."""
    res = count_bam(bam, load_layout(gtf), strandedness=0, paired=paired, dedup=method, umi_sep=umi_sep,
                    dedup_marks=True, chunk_bytes=1 << 16)
    marked = set(res["dedup"].marked().tolist())
    recs = _records(bam)
    return {(i, recs[i].query_name, recs[i].flag & 0xC0) for i in marked}, res["dedup"]


@pytest.fixture(scope="module")
def picard_real(real_bams, tmp_path_factory):
    d = tmp_path_factory.mktemp("dedup_picard")
    return {k: _picard(bam, d / f"{k}.md.bam") for k, (bam, _) in real_bams.items()}


@pytest.mark.parametrize("layout", ["se", "pe"])
def test_position_marks_equal_picard(real_bams, picard_real, layout):
    bam, gtf = real_bams[layout]
    picard = flagged_records(picard_real[layout])
    mine, dd = marked_records(bam, gtf, paired=layout == "pe")
    assert len(picard) > 50  # real duplicates, and (SE) score ties broken by Picard's tile/x/y order
    assert mine == picard
    block = dd.block()
    assert block["duplicates"] == (len(picard) if layout == "se" else len({n for _, n, _ in picard}))
    assert block["unique"] == block["fragments"] - block["duplicates"]
    assert sum(k * n for k, n in block["histogram"]) <= block["fragments"]
    assert sum(n for _, n in block["histogram"]) <= block["unique"]


@pytest.mark.parametrize("layout", ["se", "pe"])
@pytest.mark.parametrize("strand", [0, 2])
def test_position_counts_equal_featurecounts_ignoredup(real_bams, picard_real, tmp_path, layout, strand):
    bam, gtf = real_bams[layout]
    paired = layout == "pe"
    fc_dd, fc_summary = featurecounts(picard_real[layout], gtf, tmp_path, strand=strand, paired=paired,
                                      flags=["--ignoreDup"])
    fc_raw, _ = featurecounts(bam, gtf, tmp_path, strand=strand, paired=paired, flags=[])
    strandedness = ["unstranded", "forward", "reverse"][strand]
    for threads in (1, 2):
        out = tmp_path / f"c{threads}.tsv"
        res = count_reads(bam, gtf, out, strandedness=strandedness, paired=paired, dedup="position",
                        dedup_out=tmp_path / "d.tsv", threads=threads, chunk_bytes=1 << 16)
        assert (tmp_path / "d.tsv").read_text().splitlines()[1:] == fc_dd
        assert out.read_text().splitlines()[1:] == fc_raw  # raw counts unchanged
        block = json.loads(Path(str(out) + ".stats.json").read_text())["dedup"]
        assert block["method"] == "position"
        # the deduplicated fragments are featureCounts' minus its Unassigned_Duplicate
        assert block["summary"] == {**fc_summary, "Unassigned_Duplicate": 0}
        assert block["duplicates"] == fc_summary["Unassigned_Duplicate"]
        assert res["stats"]["dedup"] == block
        cats = block["categories"]
        assert set(cats) == {"exonic_sense", "exonic_antisense", "intronic_sense", "intronic_antisense",
                             "intergenic", "spliced", "mito"}
        raw = res["stats"]
        assert all(cats[k] <= raw[k] for k in cats)
        assert sum(cats[k] for k in ("exonic_sense", "exonic_antisense", "intronic_sense", "intronic_antisense",
                                     "intergenic")) < raw["unique"]


# ------------------------------------------------------------------------------------------ UMIs


def _umi(rng: random.Random, n: int = 8) -> str:
    return "".join(rng.choice(BASES) for _ in range(n))


def _mutate(rng: random.Random, umi: str) -> str:
    k = rng.randrange(len(umi))
    return umi[:k] + rng.choice([b for b in BASES if b != umi[k]]) + umi[k + 1:]


def with_umis(bam: Path, out: Path, *, seed: int, copy_share: float = 0.35, error: float = 0.2) -> Path:
    """``bam`` with a UMI after ``_`` in every name and planted PCR copies of a share of the templates.

    A copy keeps the alignment (new name, other qualities) and the template's UMI, with a one-base
    error at rate ``error``; one copy in five gets a new UMI instead (another molecule, same position).
    """
    rng = random.Random(seed)
    with pysam.AlignmentFile(str(bam)) as fh:
        header = fh.header.to_dict()
        recs = list(fh)
    by_name: dict[str, list] = {}
    for r in recs:
        by_name.setdefault(r.query_name, []).append(r)
    tmp = out.with_suffix(".unsorted.bam")
    with pysam.AlignmentFile(str(tmp), "wb", header=header) as o:
        for name, group in by_name.items():
            umi = _umi(rng)
            copies = [umi]
            if rng.random() < copy_share:
                for _ in range(rng.choice([1, 1, 2, 3])):
                    u = umi if rng.random() >= error else _mutate(rng, umi)
                    copies.append(_umi(rng) if rng.random() < 0.2 else u)
            for c, u in enumerate(copies):
                for r in group:
                    a = pysam.AlignedSegment.fromstring(r.to_string(), o.header)
                    a.query_name = f"{name}{'' if c == 0 else f'.c{c}'}_{u}"
                    if c and a.query_qualities is not None:
                        q = list(a.query_qualities)
                        rng.shuffle(q)
                        a.query_qualities = pysam.qualitystring_to_array("".join(chr(x + 33) for x in q))
                    o.write(a)
    pysam.sort("-o", str(out), str(tmp))
    pysam.index(str(out))
    return out


@pytest.fixture(scope="module")
def umi_bams(real_bams, tmp_path_factory):
    d = tmp_path_factory.mktemp("dedup_umi")
    return {k: (with_umis(bam, d / f"{k}.umi.bam", seed=7 + len(k)), gtf) for k, (bam, gtf) in real_bams.items()}


def umi_tools_dedup(bam: Path, out: Path, *, method: str, paired: bool) -> Path:
    require_module("umi_tools")
    cmd = [sys.executable, "-m", "umi_tools.umi_tools", "dedup", "-I", str(bam), "-S", str(out), "--method", method,
           "--random-seed", "1", "--log", str(out) + ".log"]
    if paired:
        cmd.append("--paired")
    subprocess.run(cmd, check=True, capture_output=True)
    return out


@pytest.mark.parametrize("layout", ["se", "pe"])
@pytest.mark.parametrize("method", ["directional", "unique"])
def test_umi_counts_equal_umi_tools(umi_bams, tmp_path, layout, method):
    bam, gtf = umi_bams[layout]
    paired = layout == "pe"
    ut = umi_tools_dedup(bam, tmp_path / "ut.bam", method=method, paired=paired)
    fc_dd, fc_summary = featurecounts(ut, gtf, tmp_path, strand=0, paired=paired, flags=[])
    res = count_reads(bam, gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=paired, dedup=method,
                    dedup_out=tmp_path / "d.tsv", chunk_bytes=1 << 16)
    assert (tmp_path / "d.tsv").read_text().splitlines()[1:] == fc_dd
    block = res["stats"]["dedup"]
    assert block["method"] == method
    assert block["summary"]["Assigned"] == fc_summary["Assigned"]
    # one output read (read 1) per molecule
    n_out = sum(1 for r in _records(ut) if not r.is_read2)
    assert block["unique"] == n_out
    assert sum(n for _, n in block["histogram"]) == block["unique"]
    assert sum(k * n for k, n in block["histogram"]) == block["fragments"]
    assert block["duplicates"] > 0.1 * block["fragments"]


def test_umi_directional_merges_errors(umi_bams):
    """Directional merges UMIs one error apart, so it keeps fewer molecules than unique; both keep
    more than position (copies with a new UMI are other molecules)."""
    bam, gtf = umi_bams["pe"]
    kept = {m: marked_records(bam, gtf, paired=True, method=m)[1].block()["unique"]
            for m in ("position", "directional", "unique")}
    assert kept["position"] < kept["directional"] < kept["unique"]


# ------------------------------------------------------------------------------------ bad inputs


def _tiny_bam(path: Path, names: list[str], *, sort_order: str = "coordinate", positions=None) -> Path:
    header = {"HD": {"VN": "1.6", "SO": sort_order}, "SQ": [{"SN": "chr1", "LN": 10000}]}
    with pysam.AlignmentFile(str(path), "wb", header=header) as o:
        for k, name in enumerate(names):
            a = pysam.AlignedSegment(o.header)
            a.query_name = name
            a.flag = 0
            a.reference_id = 0
            a.reference_start = positions[k] if positions else 100 + 10 * k
            a.mapping_quality = 60
            a.cigarstring = "20M"
            a.query_sequence = "A" * 20
            a.query_qualities = pysam.qualitystring_to_array("I" * 20)
            o.write(a)
    return path


@pytest.fixture(scope="module")
def tiny_gtf(tmp_path_factory):
    p = tmp_path_factory.mktemp("tiny") / "g.gtf"
    p.write_text('chr1\tt\texon\t50\t900\t.\t+\t.\tgene_id "g1"; transcript_id "t1";\n')
    return p


@pytest.mark.parametrize(("names", "message"), [
    (["r1_ACGT", "r2"], "read r2 has no UMI after the last '_'"),
    (["r1_ACGT", "r2_ACNT"], "read r2_ACNT has a UMI with a base other than A/C/G/T"),
    (["r1_ACGT", "r2_acgt"], "read r2_acgt has a UMI with a base other than A/C/G/T"),
    (["r1_ACGT", "r2_ACGTA"], "read r2_ACGTA has a UMI of 5 bases, earlier reads 4"),
    (["r1_ACGT", "r2_"], "read r2_ has no UMI"),
    (["r1_" + "A" * 32], "read r1_" + "A" * 32 + " has a UMI longer than 31 bases"),
])
def test_bad_umis(tmp_path, tiny_gtf, names, message):
    bam = _tiny_bam(tmp_path / "t.bam", names)
    for method in ("directional", "unique"):
        with pytest.raises(InputFormatError) as exc:
            count_reads(bam, tiny_gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False, dedup=method)
        text = str(exc.value)
        assert message in text and str(bam) in text and "\n" not in text
    # position mode ignores names
    count_reads(bam, tiny_gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False, dedup="position")


def test_umi_length_across_chunks(tmp_path, tiny_gtf):
    """Another UMI length far from the first read (a later chunk) is found too."""
    names = [f"r{k}_ACGT" for k in range(3000)] + ["late_ACG"]
    bam = _tiny_bam(tmp_path / "t.bam", names, positions=[100 + k for k in range(3001)])
    with pytest.raises(InputFormatError, match="read late_ACG has a UMI of 3 bases, earlier reads 4"):
        count_reads(bam, tiny_gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False, dedup="unique",
                  chunk_bytes=1 << 16)


def test_umi_sep(tmp_path, tiny_gtf):
    bam = _tiny_bam(tmp_path / "t.bam", ["r1:ACGT", "r2:ACGA", "r3:ACGT"], positions=[100, 100, 100])
    res = count_reads(bam, tiny_gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False, dedup="unique",
                    umi_sep=":")
    assert (res["stats"]["dedup"]["fragments"], res["stats"]["dedup"]["unique"]) == (3, 2)
    assert res["stats"]["dedup"]["histogram"] == [[1, 1], [2, 1]]
    res = count_reads(bam, tiny_gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False,
                    dedup="directional", umi_sep=":")
    assert res["stats"]["dedup"]["unique"] == 1  # ACGT (2 reads) absorbs ACGA (1 read)
    with pytest.raises(ConfigError, match="one ASCII character"):
        count_reads(bam, tiny_gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False, dedup="unique",
                  umi_sep="::")


@pytest.mark.parametrize("order", ["unsorted", "queryname", "unknown"])
def test_not_coordinate_sorted(tmp_path, tiny_gtf, order):
    bam = _tiny_bam(tmp_path / "t.bam", ["r1_ACGT", "r2_ACGT"], sort_order=order)
    with pytest.raises(InputFormatError) as exc:
        count_reads(bam, tiny_gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False, dedup="position")
    assert str(bam) in str(exc.value) and "samtools sort" in str(exc.value)
    # without dedup any order is counted
    count_reads(bam, tiny_gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False)


def test_no_dedup_block_without_dedup(tmp_path, tiny_gtf):
    bam = _tiny_bam(tmp_path / "t.bam", ["r1", "r2"])
    res = count_reads(bam, tiny_gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False)
    assert res["stats"]["dedup"] is None
    with pytest.raises(ConfigError, match="unknown dedup method"):
        count_reads(bam, tiny_gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False, dedup="umi")


def test_cli_dedup(tmp_path, tiny_gtf, capsys):
    from cfrna.cli import main

    bam = _tiny_bam(tmp_path / "t.bam", ["r1_ACGT", "r2_ACGT", "r3_TTTT"], positions=[100, 100, 100])
    out = tmp_path / "c.tsv"
    assert main(["count", "--bam", str(bam), "--gtf", str(tiny_gtf), "--out", str(out), "-s", "unstranded",
                 "--dedup", "unique", "--dedup-out", str(tmp_path / "d.tsv")]) == 0
    assert (tmp_path / "d.tsv").read_text() == "gene_id\tcount\ng1\t2\n"
    assert out.read_text() == "gene_id\tcount\ng1\t3\n"
    block = json.loads(Path(str(out) + ".stats.json").read_text())["dedup"]
    assert (block["method"], block["fragments"], block["duplicates"], block["unique"]) == ("unique", 3, 1, 2)
    assert main(["count", "--bam", str(bam), "--gtf", str(tiny_gtf), "--out", str(out), "-s", "unstranded",
                 "--dedup", "position", "--dedup-out", str(tmp_path / "d.tsv")]) == 0
    assert (tmp_path / "d.tsv").read_text() == "gene_id\tcount\ng1\t1\n"
    bad = _tiny_bam(tmp_path / "b.bam", ["r1_ACGT", "r2"])
    assert main(["count", "--bam", str(bad), "--gtf", str(tiny_gtf), "--out", str(out), "-s", "unstranded",
                 "--dedup", "directional"]) == 1
    err = capsys.readouterr().err
    assert "read r2 has no UMI" in err


# ------------------------------------------------------------------- kernel vs naive reference


def random_bam(path: Path, *, seed: int, paired: bool, n: int = 300) -> Path:
    """Dense random alignments on two references: soft/hard clips, deletions and splices, both
    strands, qualities around Picard's threshold, MAPQ ties, Illumina-like names (tile:x:y) for
    half the templates, UMIs from a small pool with one-base errors; single-end secondaries and
    unmapped reads; pairs with every orientation, mates on the other reference, unmapped mates."""
    rng = random.Random(seed)
    header = pysam.AlignmentHeader.from_dict(
        {"HD": {"VN": "1.6", "SO": "unsorted"}, "SQ": [{"SN": "chr1", "LN": 5000}, {"SN": "chr2", "LN": 5000}]})
    pool = [_umi(rng, 5) for _ in range(4)]

    def cigar() -> tuple[str, int]:
        text = (rng.choice(["", "", "2S", "5S", "3H", "1H2S"]) + rng.choice(["20M", "22M", "10M2D10M", "8M100N12M",
                                                                            "10M2I8M"])
                + rng.choice(["", "", "3S", "4S", "2H"]))
        return text, sum(int(n) for n, op in re.findall(r"(\d+)([MIDNSHP=X])", text) if op in "MDN=X")

    def seq_len(text: str) -> int:
        return sum(int(n) for n, op in re.findall(r"(\d+)([MIDNSHP=X])", text) if op in "MIS=X")

    def rec(name, flag, tid, pos, cig, mapq, mtid=-1, mpos=-1, tlen=0):
        a = pysam.AlignedSegment(header)
        a.query_name = name
        a.flag = flag
        a.reference_id = tid
        a.reference_start = pos
        a.mapping_quality = mapq if not flag & 4 else 0
        if cig and not flag & 4:
            a.cigarstring = cig
            length = seq_len(cig)
        else:
            length = 20
        a.query_sequence = "".join(rng.choice(BASES) for _ in range(length))
        a.query_qualities = pysam.qualitystring_to_array("".join(chr(33 + rng.choice([2, 14, 15, 30, 40]))
                                                                 for _ in range(length)))
        a.next_reference_id = mtid
        a.next_reference_start = mpos
        a.template_length = tlen
        return a

    recs = []
    for k in range(n):
        umi = rng.choice(pool)
        if rng.random() < 0.2:
            umi = _mutate(rng, umi)
        name = (f"I:{k}:{rng.randint(1, 3)}:{rng.randint(1, 4)}:{rng.randint(1, 4)}_{umi}" if rng.random() < 0.5
                else f"q{k}_{umi}")
        tid = rng.choice([0, 0, 1])
        pos = rng.randint(200, 212 if paired else 240)
        cig, span = cigar()
        rev = rng.random() < 0.5
        mapq = rng.choice([0, 10, 60, 60])
        if not paired:
            u = rng.random()
            flag = (16 if rev else 0) | (256 if u < 0.05 else 0) | (4 if 0.05 <= u < 0.1 else 0)
            recs.append(rec(name, flag, -1 if flag & 4 else tid, -1 if flag & 4 else pos, cig, mapq))
            continue
        u = rng.random()
        if u < 0.05:  # both unmapped
            recs += [rec(name, 77, -1, -1, None, 0), rec(name, 141, -1, -1, None, 0)]
            continue
        first = 64 if rng.random() < 0.5 else 128
        other = 192 - first
        if u < 0.15:  # mate unmapped, placed with its mapped mate
            recs.append(rec(name, 1 | 8 | first | (16 if rev else 0), tid, pos, cig, mapq, tid, pos))
            recs.append(rec(name, 1 | 4 | other | (32 if rev else 0), tid, pos, None, 0, tid, pos))
            continue
        mtid = tid if rng.random() < 0.9 else 1 - tid
        mpos = pos + rng.choice([-10, 0, 50, 90])
        mrev = (not rev) if rng.random() < 0.8 else rev
        mcig, mspan = cigar()
        if mtid == tid:
            left, right = min(pos, mpos), max(pos + span, mpos + mspan)
            tlen = right - left if pos <= mpos else -(right - left)
        else:
            tlen = 0
        recs.append(rec(name, 1 | 2 | first | (16 if rev else 0) | (32 if mrev else 0), tid, pos, cig, mapq, mtid,
                        mpos, tlen))
        recs.append(rec(name, 1 | 2 | other | (16 if mrev else 0) | (32 if rev else 0), mtid, mpos, mcig,
                        rng.choice([0, 60]), tid, pos, -tlen))
    tmp = path.with_suffix(".unsorted.bam")
    with pysam.AlignmentFile(str(tmp), "wb", header=header) as o:
        for a in recs:
            o.write(a)
    pysam.sort("-o", str(path), str(tmp))
    return path


@pytest.mark.parametrize("paired", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kernel_equals_naive(tmp_path, tiny_gtf, seed, paired):
    from tests.helpers.naive_dedup import naive_position, naive_umi

    bam = random_bam(tmp_path / "r.bam", seed=seed, paired=paired, n=2500 if seed == 3 else (1000 if paired else 300))
    layout = load_layout(tiny_gtf)
    for method in ("position", "unique", "directional"):
        res = count_bam(bam, layout, strandedness=0, paired=paired, dedup=method, dedup_marks=True,
                        chunk_bytes=1 << 16)
        mine = set(res["dedup"].marked().tolist())
        ref = naive_position(bam) if method == "position" else naive_umi(bam, method=method, paired=paired)
        assert len(ref) > 20
        assert mine == ref, (method, sorted(mine - ref)[:5], sorted(ref - mine)[:5])


def test_clip_behind_decided_groups(tmp_path, tiny_gtf):
    """A read clipped further back than the groups kept open is an error naming it (not a silent miss)."""
    header = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "chr1", "LN": 10000}]}
    bam = tmp_path / "clip.bam"
    with pysam.AlignmentFile(str(bam), "wb", header=header) as o:
        for name, pos, cig in (("a", 100, "20M"), ("b", 3000, "20M"), ("c", 3000, "2500S20M")):
            a = pysam.AlignedSegment(o.header)
            a.query_name, a.flag, a.reference_id, a.reference_start = name, 0, 0, pos
            a.mapping_quality, a.cigarstring = 60, cig
            n = 2520 if cig.startswith("2500") else 20
            a.query_sequence = "A" * n
            a.query_qualities = pysam.qualitystring_to_array("I" * n)
            o.write(a)
    with pytest.raises(InputFormatError, match="read c is clipped so far") as exc:
        count_reads(bam, tiny_gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False, dedup="position")
    assert str(bam) in str(exc.value)
