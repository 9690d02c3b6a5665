"""cfrna trim: adapter and quality trimming (cutadapt in-process), read QC and bad-input errors."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import dnaio
import pytest

from cfrna.cli import main
from cfrna.errors import ConfigError, InputFormatError
from cfrna.io.fastq import fastq_stats, iter_pairs, read_id
from cfrna.trim import TRUSEQ_ADAPTER, trim_reads
from tests.conftest import require_shared

INSERT = "ACGTTGCAAGCTTGACCTAGGATCCATGCAGTCAGTTGCAACGTA"  # 45 nt, no adapter prefix inside
JSON_KEYS = {"sample", "reads_in", "reads_out", "bases_in", "bases_out", "reads_with_adapter", "too_short",
             "mean_length_after", "mean_quality", "gc_fraction", "duplication_fraction", "paired"}


def _rc(s: str) -> str:
    return s.translate(str.maketrans("ACGT", "TGCA"))[::-1]


def write_fastq(path: Path, records: list[tuple[str, str, str]], *, gz: bool = True) -> Path:
    text = "".join(f"@{n}\n{s}\n+\n{q}\n" for n, s, q in records)
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def read_fastq(path: Path) -> list[tuple[str, str, str]]:
    with dnaio.open(str(path)) as r:
        return [(rec.name, rec.sequence, rec.qualities) for rec in r]


def test_adapter_removed_single_end(tmp_path):
    recs = [(f"r{i}", INSERT + TRUSEQ_ADAPTER + "TTTTTTTTTTTTTTTTT", "I" * 75) for i in range(10)]
    recs += [(f"c{i}", INSERT + "GCATTACCGGATTACAGGCATTACCGGATT", "I" * 75) for i in range(5)]
    fq = write_fastq(tmp_path / "in.fastq.gz", recs)
    res = trim_reads("S1", fq, None, tmp_path / "out")
    assert set(res) == JSON_KEYS
    out = read_fastq(tmp_path / "out" / "S1_1.trimmed.fastq.gz")
    assert [r[1] for r in out[:10]] == [INSERT] * 10
    assert all(len(r[1]) == 75 for r in out[10:])
    assert res["reads_in"] == 15 and res["reads_out"] == 15 and res["reads_with_adapter"] >= 10
    assert res["bases_in"] == 15 * 75 and res["bases_out"] == 10 * 45 + 5 * 75
    assert res["paired"] is False
    assert json.loads((tmp_path / "out" / "S1.trim.json").read_text()) == res


def test_quality_trimming_and_min_length(tmp_path):
    good = "GATTACAGGCATTACCGGATTACAGGCATTACCGGA"  # 36 nt
    recs = [("q1", good + "ACGTACGTAC", "I" * 36 + "#" * 10),  # low-quality tail removed
            ("q2", "ACGTACGTACGT", "I" * 12)]  # shorter than --min-length 18
    fq = write_fastq(tmp_path / "in.fastq", recs, gz=False)
    res = trim_reads("S2", fq, None, tmp_path, quality=20, min_length=18)
    out = read_fastq(tmp_path / "S2_1.trimmed.fastq.gz")
    assert [r[1] for r in out] == [good]
    assert res["too_short"] == 1 and res["reads_out"] == 1
    assert res["mean_quality"] == pytest.approx(40.0)
    assert res["mean_length_after"] == pytest.approx(36.0)


def test_read_qc_values(tmp_path):
    recs = [("a", "GGGGCCCCAAAATTTTGGCC", "5" * 20), ("b", "GGGGCCCCAAAATTTTGGCC", "5" * 20),
            ("c", "ATATATATATATATATATAT", "?" * 20), ("d", "GGGGCCCCAAAATTTTGGCC", "5" * 20)]
    fq = write_fastq(tmp_path / "in.fq.gz", recs)
    res = trim_reads("S3", fq, None, tmp_path, quality=0)
    assert res["duplication_fraction"] == pytest.approx(0.5)  # b and d repeat a
    assert res["gc_fraction"] == pytest.approx((12 * 3) / 80)
    assert res["mean_quality"] == pytest.approx((20 * 3 + 30 * 1) / 4)


def test_pairs_stay_in_sync(tmp_path):
    r1, r2 = [], []
    for i in range(20):
        frag = INSERT if i % 2 else INSERT + "GGATCCTTAGCAATGCCTAGGTTACAGGTACCATGATC"
        s1 = (frag + TRUSEQ_ADAPTER + "A" * 40)[:75]
        s2 = (_rc(frag) + "AGATCGGAAGAGCGTCGTGTAGGG" + "C" * 40)[:75]
        r1.append((f"p{i}/1", s1, "I" * 75))
        r2.append((f"p{i}/2", s2, "I" * 75))
    r1.append(("short/1", "ACGTACGTAC" + TRUSEQ_ADAPTER + "A" * 52, "I" * 75))  # insert 10 nt: pair dropped
    r2.append(("short/2", "GTACGTACGT" + TRUSEQ_ADAPTER + "C" * 52, "I" * 75))
    f1 = write_fastq(tmp_path / "a_R1.fq.gz", r1)
    f2 = write_fastq(tmp_path / "a_R2.fq.gz", r2)
    res = trim_reads("P", f1, f2, tmp_path / "o", threads=2)
    o1 = read_fastq(tmp_path / "o" / "P_1.trimmed.fastq.gz")
    o2 = read_fastq(tmp_path / "o" / "P_2.trimmed.fastq.gz")
    assert [read_id(a[0]) for a in o1] == [read_id(b[0]) for b in o2] == [f"p{i}" for i in range(20)]
    assert res["paired"] is True and res["reads_in"] == 21 and res["reads_out"] == 20 and res["too_short"] == 1
    for i in range(1, 20, 2):
        assert o1[i][1] == INSERT and o2[i][1] == _rc(INSERT)


def test_real_pairs_ggal(tmp_path):
    d = require_shared("rnaseq_nf_ggal")
    res = trim_reads("gut", d / "ggal_gut_1.fq.gz", d / "ggal_gut_2.fq.gz", tmp_path)
    assert res["reads_in"] == 2937
    assert 0 < res["too_short"] < 50 and res["reads_out"] == 2937 - res["too_short"]
    assert 30 < res["mean_quality"] < 41 and 0.35 < res["gc_fraction"] < 0.6
    st = fastq_stats(tmp_path / "gut_1.trimmed.fastq.gz", tmp_path / "gut_2.trimmed.fastq.gz")
    assert st.reads == res["reads_out"] and st.bases == res["bases_out"]


# ---------------------------------------------------------------- bad inputs: one-line errors


def _bad_cases(tmp: Path) -> dict[str, tuple[Path, Path | None, str]]:
    good = [(f"r{i}", "ACGTACGTACGTACGTACGTA", "I" * 21) for i in range(2000)]
    data = gzip.compress("".join(f"@{n}\n{s}\n+\n{q}\n" for n, s, q in good).encode())
    (tmp / "trunc.fq.gz").write_bytes(data[: len(data) // 2])
    write_fastq(tmp / "lens.fq", [("a", "ACGTACGTACGTACGTACGT", "I" * 20), ("b", "ACGTACGT", "III")], gz=False)
    (tmp / "empty.fq").write_text("")
    (tmp / "garbage.fq").write_text("this is not\na fastq file\n")
    (tmp / "reads.fa").write_text(">r1\nACGTACGTACGTACGTACGT\n")
    write_fastq(tmp / "ok_1.fq", good[:10], gz=False)
    write_fastq(tmp / "short_2.fq", good[:9], gz=False)
    write_fastq(tmp / "names_2.fq", [(("x" + n) if i == 4 else n, s, q) for i, (n, s, q) in enumerate(good[:10])],
                gz=False)
    return {
        "truncated gzip": (tmp / "trunc.fq.gz", None, "truncated"),
        "seq/qual lengths": (tmp / "lens.fq", None, "record 2"),
        "empty": (tmp / "empty.fq", None, "empty"),
        "not fastq": (tmp / "garbage.fq", None, "not valid FASTQ"),
        "fasta": (tmp / "reads.fa", None, "FASTA"),
        "read counts": (tmp / "ok_1.fq", tmp / "short_2.fq", "different read counts"),
        "read names": (tmp / "ok_1.fq", tmp / "names_2.fq", "record 5"),
    }


@pytest.mark.parametrize("case", ["truncated gzip", "seq/qual lengths", "empty", "not fastq", "fasta",
                                  "read counts", "read names"])
def test_bad_fastq_is_one_line_error(tmp_path, case):
    f1, f2, text = _bad_cases(tmp_path)[case]
    with pytest.raises(InputFormatError) as ei:
        trim_reads("B", f1, f2, tmp_path / "out")
    msg = ei.value.one_line()
    assert text in msg and "\n" not in msg
    bad = f2 if case in ("read counts", "read names") else f1
    assert str(bad.name) in msg
    assert not (tmp_path / "out" / "B.trim.json").exists()
    assert not list((tmp_path / "out").glob("*.fastq.gz"))


def test_cli_bad_input_exit_code(tmp_path, capsys):
    f1, _, _ = _bad_cases(tmp_path)["seq/qual lengths"]
    rc = main(["-q", "trim", "--sample", "B", "--fastq-1", str(f1), "--outdir", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and err[0].startswith("cfrna trim: error:") and "lens.fq" in err[0]


def test_cli_ok_and_bad_options(tmp_path, capsys):
    fq = write_fastq(tmp_path / "in.fq.gz", [("r", INSERT + TRUSEQ_ADAPTER + "A" * 17, "I" * 75)])
    rc = main(["trim", "--sample", "C", "--fastq-1", str(fq), "--outdir", str(tmp_path / "o"), "--min-length", "20"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["reads_out"] == 1 and (tmp_path / "o" / "C_1.trimmed.fastq.gz").is_file()
    with pytest.raises(ConfigError):
        trim_reads("C", fq, None, tmp_path, adapter="NOT-DNA!")
    with pytest.raises(ConfigError):
        trim_reads("C", fq, None, tmp_path, min_length=0)


def test_iter_pairs_strips_mate_suffix(tmp_path):
    f1 = write_fastq(tmp_path / "1.fq", [("x/1 comment", "ACGT", "IIII")], gz=False)
    f2 = write_fastq(tmp_path / "2.fq", [("x/2 other", "TTTT", "IIII")], gz=False)
    pairs = list(iter_pairs(f1, f2))
    assert len(pairs) == 1 and pairs[0][1][1] == "TTTT"
