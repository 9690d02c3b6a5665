"""cfrna count vs featureCounts 2.0.3: identical per-gene counts and summary categories.

Data: random BAMs exercising every rule (``naive_count.make_synthetic``), the real yeast SAM of
htseq (converted to BAM), the rnaseq-nf chicken reads aligned by ``cfrna.align.align_reads`` and
samples of the simulated cohorts. Under ``CI=true`` nothing here may skip.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cfrna.count import count_reads
from tests.conftest import require_shared, require_tool
from tests.helpers.bam import make_synthetic
from tests.helpers.featurecounts import featurecounts

STRANDS = ["unstranded", "forward", "reverse"]
# (featureCounts flags, count_reads keywords)
OPTIONS = [
    ([], {}),
    (["-Q", "10", "--primary"], {"min_mapq": 10, "primary_only": True}),
    (["-M"], {"multi_mapping": True}),
    (["-M", "--fraction"], {"multi_mapping": True, "fraction": True}),
    (["-O"], {"allow_multi_overlap": True}),
    (["-M", "-O", "--fraction", "-Q", "3"], {"multi_mapping": True, "allow_multi_overlap": True,
                                             "fraction": True, "min_mapq": 3}),
]


def assert_same(bam, gtf, tmp_path, *, strand: int, paired: bool, flags, kwargs):
    fc_counts, fc_summary = featurecounts(bam, gtf, tmp_path, strand=strand, paired=paired, flags=flags)
    res = count_reads(bam, gtf, tmp_path / "c.tsv", strandedness=STRANDS[strand], paired=paired, **kwargs)
    ours = (tmp_path / "c.tsv").read_text().splitlines()[1:]
    assert res["summary"] == fc_summary, (flags, strand)
    diff = [(a, b) for a, b in zip(fc_counts, ours, strict=True) if a != b]
    assert not diff, (flags, strand, diff[:5])


@pytest.fixture(scope="module")
def synth_fc(tmp_path_factory):
    d = tmp_path_factory.mktemp("count_fc")
    return {key: make_synthetic(d, paired=key[0], n=3000, seed=21, sort=key[1])
            for key in [(False, "coordinate"), (True, "coordinate"), (True, "name")]}


@pytest.mark.parametrize("key", [(False, "coordinate"), (True, "coordinate"), (True, "name")])
@pytest.mark.parametrize("strand", [0, 1, 2])
@pytest.mark.parametrize("opt", range(len(OPTIONS)))
def test_synthetic_vs_featurecounts(synth_fc, tmp_path, key, strand, opt):
    bam, gtf = synth_fc[key]
    flags, kwargs = OPTIONS[opt]
    assert_same(bam, gtf, tmp_path, strand=strand, paired=key[0], flags=flags, kwargs=kwargs)


@pytest.fixture(scope="module")
def yeast(tmp_path_factory):
    require_tool("samtools")
    sam = require_shared("htseq_yeast_count", "yeast_RNASeq_excerpt_withNH.sam.gz")
    gtf = require_shared("htseq_yeast_count", "Saccharomyces_cerevisiae.SGD1.01.56.gtf.gz")
    d = tmp_path_factory.mktemp("yeast")
    bam = d / "yeast.bam"
    subprocess.run(["samtools", "view", "-b", "-o", str(bam), str(sam)], check=True, capture_output=True)
    sorted_bam = d / "yeast.sorted.bam"
    subprocess.run(["samtools", "sort", "-o", str(sorted_bam), str(bam)], check=True, capture_output=True)
    return bam, sorted_bam, gtf


@pytest.mark.parametrize("strand", [0, 1, 2])
@pytest.mark.parametrize("opt", range(len(OPTIONS)))
def test_yeast_vs_featurecounts(yeast, tmp_path, strand, opt):
    bam, sorted_bam, gtf = yeast
    flags, kwargs = OPTIONS[opt]
    assert_same(bam, gtf, tmp_path, strand=strand, paired=False, flags=flags, kwargs=kwargs)
    if opt == 0:
        assert_same(sorted_bam, gtf, tmp_path, strand=strand, paired=False, flags=flags, kwargs=kwargs)


@pytest.fixture(scope="module")
def ggal_bam(tmp_path_factory):
    from cfrna.align import align_reads

    d = require_shared("rnaseq_nf_ggal")
    out = tmp_path_factory.mktemp("ggal")
    align_reads("ggal", d / "ggal_gut_1.fq.gz", d / "ggal_gut_2.fq.gz", d / "ggal_1_48850000_49020000.Ggal71.500bpflank.fa",
              d / "ggal_1_48850000_49020000.bed.gff", out, aligner="mappy", threads=1)
    return out / "ggal.bam", d / "ggal_1_48850000_49020000.bed.gff"


@pytest.mark.parametrize("strand", [0, 1, 2])
@pytest.mark.parametrize("opt", [0, 1, 4])
def test_ggal_pairs_vs_featurecounts(ggal_bam, tmp_path, strand, opt):
    bam, gtf = ggal_bam
    flags, kwargs = OPTIONS[opt]
    assert_same(bam, gtf, tmp_path, strand=strand, paired=True, flags=flags, kwargs=kwargs)


def _align_cohort(cohort: Path, out: Path, n: int, paired: bool):
    import pandas as pd

    from cfrna.align import align_reads

    sheet = pd.read_csv(cohort / "samplesheet.csv")
    bams = []
    for _, row in sheet.head(n).iterrows():
        fq1 = cohort / row["fastq_1"] if not Path(row["fastq_1"]).is_absolute() else Path(row["fastq_1"])
        fq2 = None
        if paired:
            fq2 = cohort / row["fastq_2"] if not Path(row["fastq_2"]).is_absolute() else Path(row["fastq_2"])
        align_reads(row["sample"], fq1, fq2, cohort / "genome.fa", cohort / "genes.gtf", out, aligner="mappy",
                  threads=1)
        bams.append(out / f"{row['sample']}.bam")
    return bams


@pytest.mark.slow
@pytest.mark.parametrize("paired", [False, True])
def test_sim_cohort_vs_featurecounts(request, tmp_path, paired):
    cohort = request.getfixturevalue("sim_cohort_pe" if paired else "sim_cohort")
    require_tool("featureCounts")
    for bam in _align_cohort(cohort, tmp_path / "aln", 2, paired):
        for strand in (0, 2):
            for opt in (0, 4):
                flags, kwargs = OPTIONS[opt]
                assert_same(bam, cohort / "genes.gtf", tmp_path, strand=strand, paired=paired, flags=flags,
                            kwargs=kwargs)
