"""cfrna count vs featureCounts 2.0.3 on aligner output and on every flag combination of paired reads.

* HISAT2 (Debian ``hisat2``) single- and paired-end BAMs of a simulated cohort sample, aligned in
  the test; a share of the pairs is altered before alignment so that HISAT2 writes every kind of
  record it writes for real cfRNA libraries: same-strand pairs (flags 65/129, 113/177), mates on
  other chromosomes, mates far apart (97/145, 81/161), singletons (73/133, 137/69, 89, 153),
  secondary pairs (339/419, 355/403) and secondary mates of unpaired alignments (329/393, 345).
* STAR (Debian ``rna-star``) paired-end BAM of the same reads.
* hand-made BAMs (pysam) holding each of those flag combinations with the RNEXT/PNEXT conventions
  of HISAT2, STAR and others, NH with and without HI, repeated secondary keys, at the same loci.

Every BAM is counted at 1 and 2 threads and in 64 KiB chunks, so that mates are paired within a
chunk and across chunks. Per-gene counts and every summary category must equal featureCounts'.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from cfrna.count import count_reads
from tests.conftest import require_tool
from tests.helpers.bam import make_flag_zoo
from tests.helpers.fastq import read_fastq as _fastq
from tests.helpers.fastq import write_fastq as _write_fastq  # noqa: F401 (tests/test_dedup.py imports it from here)
from tests.helpers.featurecounts import featurecounts
from tests.helpers.hisat2 import hisat2_bams

STRANDS = ["unstranded", "forward", "reverse"]
OPTIONS = [
    ([], {}),
    (["-M"], {"multi_mapping": True}),
    (["--primary", "-Q", "1"], {"primary_only": True, "min_mapq": 1}),
    (["-M", "-O", "--fraction"], {"multi_mapping": True, "allow_multi_overlap": True, "fraction": True}),
    (["--ignoreDup", "-Q", "1"], {"ignore_dup": True, "min_mapq": 1}),
]
_COMP = str.maketrans("ACGTN", "TGCAN")


def _assert_fc(bam, gtf, tmp_path, *, strand, paired, opt, threads=(1, 2)):
    flags, kwargs = OPTIONS[opt]
    fc_counts, fc_summary = featurecounts(bam, gtf, tmp_path, strand=strand, paired=paired, flags=flags)
    for t in threads:
        for chunk in (1 << 16, 1 << 22):
            out = tmp_path / f"c{t}_{chunk}.tsv"
            res = count_reads(bam, gtf, out, strandedness=STRANDS[strand], paired=paired, threads=t, chunk_bytes=chunk,
                            **kwargs)
            assert res["summary"] == fc_summary, (flags, strand, t, chunk)
            ours = out.read_text().splitlines()[1:]
            diff = [(a, b) for a, b in zip(fc_counts, ours, strict=True) if a != b]
            assert not diff, (flags, strand, t, chunk, len(diff), diff[:5])


# ----------------------------------------------------------------------------------- aligner BAMs


def _perturb(r1, r2, seed):
    """Alter a share of the pairs so that the aligner writes non-proper, discordant and singleton records."""
    rng = random.Random(seed)
    r2 = [list(r) for r in r2]
    n = len(r2)
    for i in range(n):
        u = rng.random()
        if u < 0.06:  # same-strand pair: read 2 reverse-complemented
            r2[i][1] = r2[i][1].translate(_COMP)[::-1]
            r2[i][3] = r2[i][3][::-1]
        elif u < 0.12:  # read 2 of another fragment: another chromosome or far away on the same one
            j = rng.randrange(n)
            r2[i][1], r2[i][3] = r2[j][1], r2[j][3]
        elif u < 0.15:  # read 2 that cannot align: a singleton
            r2[i][1] = "".join(rng.choice("ACGT") for _ in r2[i][1])
        elif u < 0.17:  # read 1 that cannot align
            r1[i] = list(r1[i])
            r1[i][1] = "".join(rng.choice("ACGT") for _ in r1[i][1])
    return r1, r2


@pytest.fixture(scope="module")
def aligned(sim_cohort_pe, tmp_path_factory):
    """HISAT2 PE and SE BAMs (coordinate-sorted) of one simulated sample with altered pairs; STAR PE if present."""
    require_tool("featureCounts")
    d = tmp_path_factory.mktemp("hisat2")
    cohort = sim_cohort_pe
    fq = sorted((cohort / "fastq").glob("*_R1.fastq.gz"))[0]
    r1, r2 = _perturb(_fastq(fq), _fastq(Path(str(fq).replace("_R1.", "_R2."))), seed=3)
    bams = hisat2_bams(cohort / "genome.fa", r1, r2, d)
    return bams, cohort / "genes.gtf", d


def _flags(bam):
    out = subprocess.run(["samtools", "view", str(bam)], check=True, capture_output=True, text=True).stdout
    return {int(ln.split("\t", 2)[1]) for ln in out.splitlines()}


def test_hisat2_bam_has_the_hard_records(aligned):
    """The altered reads give HISAT2 records of every kind the held-out library had."""
    bams, _, _ = aligned
    flags = _flags(bams["pe"])
    for group in ((73, 89, 137, 153), (65, 129), (113, 177), (97, 145), (81, 161), (339, 419), (133, 69)):
        assert flags & set(group), group


@pytest.mark.parametrize("strand", [0, 1, 2])
@pytest.mark.parametrize("opt", range(len(OPTIONS)))
def test_hisat2_pe_vs_featurecounts(aligned, tmp_path, strand, opt):
    bams, gtf, _ = aligned
    _assert_fc(bams["pe"], gtf, tmp_path, strand=strand, paired=True, opt=opt)


@pytest.mark.parametrize("strand", [0, 2])
@pytest.mark.parametrize("opt", [0, 1])
def test_hisat2_se_vs_featurecounts(aligned, tmp_path, strand, opt):
    bams, gtf, _ = aligned
    _assert_fc(bams["se"], gtf, tmp_path, strand=strand, paired=False, opt=opt)


@pytest.fixture(scope="module")
def star_pe(aligned, tmp_path_factory):
    star = require_tool("STAR")
    _, gtf, d = aligned
    cohort = gtf.parent
    out = tmp_path_factory.mktemp("star")
    idx = out / "idx"
    idx.mkdir()
    subprocess.run([star, "--runMode", "genomeGenerate", "--runThreadN", "2", "--genomeDir", str(idx),
                    "--genomeFastaFiles", str(cohort / "genome.fa"), "--genomeSAindexNbases", "8",
                    "--outFileNamePrefix", str(out) + "/gen_"], check=True, capture_output=True)
    subprocess.run([star, "--runThreadN", "2", "--genomeDir", str(idx), "--readFilesIn", str(d / "r1.fq"),
                    str(d / "r2.fq"), "--outSAMtype", "BAM", "SortedByCoordinate", "--outSAMunmapped", "Within",
                    "--outSAMmultNmax", "3", "--outSAMprimaryFlag", "AllBestScore", "--outFileNamePrefix",
                    str(out) + "/"], check=True, capture_output=True)
    return out / "Aligned.sortedByCoord.out.bam", gtf


@pytest.mark.parametrize("strand", [0, 2])
def test_star_pe_vs_featurecounts(star_pe, tmp_path, strand):
    bam, gtf = star_pe
    for opt in (0, 1):
        _assert_fc(bam, gtf, tmp_path, strand=strand, paired=True, opt=opt)


# ------------------------------------------------------------------------------ hand-made records


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    require_tool("featureCounts")
    d = tmp_path_factory.mktemp("zoo")
    return {s: make_flag_zoo(d, seed=5, sort=s) for s in ("coordinate", "name")}


@pytest.mark.parametrize("sort", ["coordinate", "name"])
@pytest.mark.parametrize("strand", [0, 1, 2])
@pytest.mark.parametrize("opt", range(len(OPTIONS)))
def test_flag_zoo_vs_featurecounts(zoo, tmp_path, sort, strand, opt):
    bam, gtf = zoo[sort]
    _assert_fc(bam, gtf, tmp_path, strand=strand, paired=True, opt=opt)


def test_same_strand_pair_is_checked_per_mate(tmp_path):
    """Read 1 forward in a + gene and read 2 forward in a - gene (flags 65/129): with -s 1 each mate
    matches its own gene (featureCounts: ambiguous), with -s 2 neither (no features)."""
    import pysam

    gtf = tmp_path / "g.gtf"
    gtf.write_text('chr1\tt\texon\t1001\t2000\t.\t+\t.\tgene_id "P"; transcript_id "P1";\n'
                   'chr1\tt\texon\t5001\t6000\t.\t-\t.\tgene_id "M"; transcript_id "M1";\n')
    bam = tmp_path / "t.bam"
    with pysam.AlignmentFile(str(bam), "wb", header={"HD": {"VN": "1.6", "SO": "coordinate"},
                                                      "SQ": [{"SN": "chr1", "LN": 20000}]}) as out:
        for flag, pos, mpos in ((65, 1100, 5100), (129, 5100, 1100)):
            a = pysam.AlignedSegment(out.header)
            a.query_name, a.flag, a.reference_id, a.reference_start = "x", flag, 0, pos
            a.next_reference_id, a.next_reference_start, a.mapping_quality = 0, mpos, 60
            a.cigartuples = [(0, 50)]
            a.query_sequence = "A" * 50
            out.write(a)
    fwd = count_reads(bam, gtf, tmp_path / "f.tsv", strandedness="forward", paired=True)["summary"]
    rev = count_reads(bam, gtf, tmp_path / "r.tsv", strandedness="reverse", paired=True)["summary"]
    assert fwd["Unassigned_Ambiguity"] == 1 and fwd["Assigned"] == 0
    assert rev["Unassigned_NoFeatures"] == 1 and rev["Assigned"] == 0
    if shutil.which("featureCounts"):
        for strand, ours in ((1, fwd), (2, rev)):
            assert featurecounts(bam, gtf, tmp_path, strand=strand, paired=True, flags=[])[1] == ours


@pytest.mark.parametrize("strand", [0, 2])
def test_flag_zoo_vs_naive_reference(tmp_path, strand):
    """The same records against the pysam reference of the rules (runs without featureCounts)."""
    from tests.helpers.naive_count import naive_count

    bam, gtf = make_flag_zoo(tmp_path, n=800, seed=9)
    for kwargs in ({}, {"multi_mapping": True, "fraction": True}, {"ignore_dup": True, "min_mapq": 1}):
        counts, summary, _ = naive_count(bam, gtf, strandedness=strand, paired=True, **kwargs)
        res = count_reads(bam, gtf, tmp_path / "c.tsv", strandedness=STRANDS[strand], paired=True, chunk_bytes=1 << 16,
                        **kwargs)
        assert res["summary"] == summary
        ours = dict(ln.split("\t") for ln in (tmp_path / "c.tsv").read_text().splitlines()[1:])
        assert {g: round(float(v), 2) for g, v in ours.items()} == {g: round(v, 2) for g, v in counts.items()}
