"""`cfrna validate --gtf --fasta`: the reference checks run before any work."""

from __future__ import annotations

import gzip

import pytest

from cfrna.cli import main

SHEET = ("sample,patient_id,visit_month,arm,flare,fastq_1,fastq_2,strandedness\n"
         "S1,P1,0,steroid_tapering,flare,a.fastq.gz,,reverse\n")


@pytest.fixture
def d(tmp_path):
    with gzip.open(tmp_path / "a.fastq.gz", "wt") as fh:
        fh.write("@r\nACGT\n+\nIIII\n")
    (tmp_path / "s.csv").write_text(SHEET)
    (tmp_path / "g.gtf").write_text('chr1\ts\texon\t1\t4\t.\t+\t.\tgene_id "G";\n')
    return tmp_path


def validate(d):
    return main(["validate", "--samplesheet", str(d / "s.csv"), "--gtf", str(d / "g.gtf"), "--fasta", str(d / "g.fa")])


def test_reference_ok(d, capsys):
    (d / "g.fa").write_text(">chr1 desc\nACGTACGT\n")
    assert validate(d) == 0
    assert "GTF OK: 1 genes" in capsys.readouterr().out


@pytest.mark.parametrize("fasta", [">1\nACGT\n", "chr1\nACGT\n", ""])
def test_reference_problems(d, capsys, fasta):
    (d / "g.fa").write_text(fasta)
    assert validate(d) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and ("g.fa" in err or "g.gtf" in err)


def test_fasta_without_gtf_is_a_usage_error(d):
    (d / "g.fa").write_text(">chr1\nACGT\n")
    assert main(["validate", "--samplesheet", str(d / "s.csv"), "--fasta", str(d / "g.fa")]) == 2
