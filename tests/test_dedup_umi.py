"""UMI extraction into read names (umi_tools ``extract`` string-pattern conventions) and UMIs read back from names."""

from __future__ import annotations

import gzip

import dnaio
import pytest

from cfrna.errors import ConfigError, InputFormatError
from cfrna.trim.umi import check_names_have_umis, extract_umis, parse_pattern, split_umi, umi_from_name


def _fq(path, recs):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt") as fh:
        for name, seq in recs:
            fh.write(f"@{name}\n{seq}\n+\n{'I' * len(seq)}\n")
    return path


def _read(path):
    with dnaio.open(str(path)) as fh:
        return [(r.name, r.sequence, r.qualities) for r in fh]


def test_pattern_rules():
    assert parse_pattern("nnnxxnn") == "NNNXXNN"
    assert parse_pattern(None) is None
    for bad, word in (("NNCC", "cell-barcode"), ("NN8", "other than N and X"), ("XXX", "no UMI base")):
        with pytest.raises(ConfigError, match=word):
            parse_pattern(bad)


def test_split_umi_five_and_three_prime():
    # umi_tools' documented example: N bases form the UMI, X bases stay in the read
    assert split_umi("AAAGGGGCCTTTT", "0123456789abc", "NNNXXXXNN") == ("AAACC", "GGGGTTTT", "34569abc")
    # --3prime: the pattern lies over the last bases; kept X bases follow the rest of the read
    assert split_umi("TTTTGGGGAAACC", "abcdefghijklm", "NNNXXXXNN", three_prime=True) == ("GGGCC", "TTTTGAAA",
                                                                                        "abcdhijk")
    with pytest.raises(ValueError, match="shorter"):
        split_umi("ACG", "III", "NNNN")


def test_extract_pairs_read2_pattern(tmp_path):
    """SMARTer Pico v3 style: an 8-nt UMI then 3 linker bases at the start of read 2."""
    f1 = _fq(tmp_path / "a_R1.fastq.gz", [("r1 1:N:0:1", "ACGTACGTAC"), ("r2 1:N:0:1", "GGGGCCCCAA")])
    f2 = _fq(tmp_path / "a_R2.fastq.gz", [("r1 2:N:0:1", "TTTTAAAACCCGGGG"), ("r2 2:N:0:1", "CCCCGGGGTTTACGT")])
    res = extract_umis(f1, f2, tmp_path / "o1.fq.gz", tmp_path / "o2.fq.gz", pattern2="NNNNNNNNXXX")
    assert res == {"reads": 2, "umi_length": 8, "distinct_umis": 2}
    o1, o2 = _read(tmp_path / "o1.fq.gz"), _read(tmp_path / "o2.fq.gz")
    assert [r[0] for r in o1] == ["r1_TTTTAAAA 1:N:0:1", "r2_CCCCGGGG 1:N:0:1"]
    assert [r[0] for r in o2] == ["r1_TTTTAAAA 2:N:0:1", "r2_CCCCGGGG 2:N:0:1"]
    assert [r[1] for r in o1] == ["ACGTACGTAC", "GGGGCCCCAA"]  # read 1 untouched
    assert [r[1] for r in o2] == ["CCCGGGG", "TTTACGT"]  # UMI removed, linker kept (X)
    assert all(len(s) == len(q) for _, s, q in o1 + o2)
    with gzip.open(tmp_path / "o1.fq.gz", "rt") as fh:  # gzip written for .gz names
        assert fh.readline().startswith("@r1_TTTTAAAA")
    assert umi_from_name(o1[0][0]) == "TTTTAAAA"
    assert check_names_have_umis(tmp_path / "o2.fq.gz") == 8


def test_extract_both_reads_concatenates(tmp_path):
    f1 = _fq(tmp_path / "r1.fq", [("x", "AAAACGT")])
    f2 = _fq(tmp_path / "r2.fq", [("x", "CCGGTTT")])
    extract_umis(f1, f2, tmp_path / "o1.fq", tmp_path / "o2.fq", pattern="NNNN", pattern2="NN", sep=":")
    assert _read(tmp_path / "o1.fq") == [("x:AAAACC", "CGT", "III")]
    assert _read(tmp_path / "o2.fq") == [("x:AAAACC", "GGTTT", "IIIII")]


def test_pattern_longer_than_read_names_file_and_record(tmp_path):
    f1 = _fq(tmp_path / "s.fq", [("ok", "ACGTACGTACGT"), ("short", "ACG")])
    with pytest.raises(InputFormatError) as e:
        extract_umis(f1, None, tmp_path / "o.fq", pattern="NNNNNNNN")
    msg = str(e.value)
    assert "s.fq" in msg and "record 2 (short)" in msg and "shorter than the UMI pattern (8 nt)" in msg
    assert "\n" not in msg
    assert not (tmp_path / "o.fq").exists()  # no partial output


def test_umi_with_n_is_an_error(tmp_path):
    f1 = _fq(tmp_path / "s.fq", [("a", "ACGTACGTAAAA"), ("b", "ACGNACGTAAAA")])
    with pytest.raises(InputFormatError, match=r"record 2 \(b\): UMI ACGNACGT contains N"):
        extract_umis(f1, None, tmp_path / "o.fq", pattern="NNNNNNNN")


def test_names_without_umis_are_an_error(tmp_path):
    f = _fq(tmp_path / "n.fq", [("r1_ACGTACGT", "ACGT"), ("r2", "ACGT")])
    with pytest.raises(InputFormatError, match=r"n.fq.*record 2 \(r2\) has no UMI"):
        check_names_have_umis(f)
    g = _fq(tmp_path / "m.fq", [("r1_ACGTACGT", "ACGT"), ("r2_ACGT", "ACGT")])
    with pytest.raises(InputFormatError, match="record 2: UMI ACGT is 4 nt"):
        check_names_have_umis(g)


def test_umi_from_name_conventions():
    assert umi_from_name("read7_ACGTN 1:N:0") == "ACGTN"
    assert umi_from_name("read7") is None
    assert umi_from_name("read_7") is None  # not bases
    assert umi_from_name("M0:12:FC:1:1101:100:200:ACGTACGT 1:N:0:1", sep=":") == "ACGTACGT"


def test_bad_arguments(tmp_path):
    f1 = _fq(tmp_path / "s.fq", [("a", "ACGTACGT")])
    with pytest.raises(ConfigError, match="no UMI pattern"):
        extract_umis(f1, None, tmp_path / "o.fq")
    with pytest.raises(ConfigError, match="single-end"):
        extract_umis(f1, None, tmp_path / "o.fq", pattern2="NNNN")
    with pytest.raises(ConfigError, match="separator"):
        extract_umis(f1, None, tmp_path / "o.fq", pattern="NNNN", sep=" ")
