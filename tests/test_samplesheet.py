"""Samplesheet validation: every bad input gives a one-line error naming file, line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfrna.cli import main
from cfrna.errors import ConfigError
from cfrna.io.samplesheet import read_samplesheet
from tests.helpers.samplesheet import GOOD, HEADER
from tests.helpers.samplesheet import fastq_stub as _fq
from tests.helpers.samplesheet import write_sheet as write


@pytest.fixture
def sheet_dir(tmp_path: Path) -> Path:
    for n in ("a_1", "a_2", "b_1", "c_1"):
        _fq(tmp_path / f"{n}.fastq.gz")
    return tmp_path


def test_good_sheet(sheet_dir):
    sheet = read_samplesheet(write(sheet_dir, *GOOD))
    assert sheet.ids == ["S1", "S2", "S3"]
    assert sheet["S1"].paired and not sheet["S2"].paired
    assert Path(sheet["S1"].fastq_1).is_absolute()
    # P1 mixes paired and single-end: allowed, reported
    assert any("P1" in w for w in sheet.warnings)
    df = sheet.to_frame()
    assert list(df.index) == ["S1", "S2", "S3"]
    assert df.loc["S3", "batch"] == "b2"


def test_windows_line_endings_and_bom(sheet_dir):
    p = sheet_dir / "win.csv"
    p.write_bytes(("\ufeff" + "\r\n".join([HEADER, *GOOD]) + "\r\n").encode("utf-8"))
    assert read_samplesheet(p).ids == ["S1", "S2", "S3"]


def test_non_ascii_metadata_is_kept(sheet_dir):
    sheet = read_samplesheet(write(sheet_dir, GOOD[0].replace(",b1", ",Zürich")))
    assert sheet.samples[0].extra["batch"] == "Zürich"


@pytest.mark.parametrize(
    ("rows", "header", "expected"),
    [
        (GOOD, HEADER.replace("arm,", ""), "missing required column(s): arm"),
        (GOOD, HEADER + ",batch", "duplicate column(s) in header: batch"),
        (GOOD, HEADER + ",", "empty column name"),
        ([GOOD[0], GOOD[0]], HEADER, "duplicate sample id 'S1'"),
        ([GOOD[0].replace("S1,", "S 1,")], HEADER, "column 'sample'"),
        ([GOOD[0].replace("S1,", "S1;rm -rf,")], HEADER, "column 'sample'"),
        ([GOOD[0].replace("steroid_tapering", "placebo")], HEADER, "column 'arm'"),
        ([GOOD[0].replace("no_flare", "maybe")], HEADER, "column 'flare'"),
        ([GOOD[0].replace("reverse", "sideways")], HEADER, "column 'strandedness'"),
        ([GOOD[0].replace(",0,", ",zero,")], HEADER, "column 'visit_month'"),
        ([GOOD[0].replace("a_1.fastq.gz", "missing.fastq.gz")], HEADER, "file not found: missing.fastq.gz"),
        ([GOOD[0].replace("a_1.fastq.gz", "a_1.txt")], HEADER, "column 'fastq_1'"),
        ([GOOD[0].replace("a_2.fastq.gz", "a_1.fastq.gz")], HEADER, "same file"),
        ([GOOD[0] + ",extra"], HEADER, "row has 10 fields but the header has 9"),
        ([], HEADER, "no samples"),
    ],
)
def test_bad_sheets(sheet_dir, rows, header, expected):
    p = write(sheet_dir, *rows, header=header)
    with pytest.raises(ConfigError) as ei:
        read_samplesheet(p)
    msg = ei.value.one_line()
    assert expected in msg
    assert "\n" not in msg
    assert str(p) in msg


def test_bad_sheet_names_the_line(sheet_dir):
    p = write(sheet_dir, GOOD[0], GOOD[1].replace("flare,b_1", "flared,b_1"))
    with pytest.raises(ConfigError, match=rf"{p}:3: column 'flare'"):
        read_samplesheet(p)


def test_fastq_is_a_directory(sheet_dir):
    (sheet_dir / "d.fastq.gz").mkdir()
    with pytest.raises(ConfigError, match="file not found: d.fastq.gz"):
        read_samplesheet(write(sheet_dir, GOOD[0].replace("a_1.fastq.gz", "d.fastq.gz")))


def test_empty_and_not_utf8(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("")
    with pytest.raises(ConfigError, match="empty"):
        read_samplesheet(p)
    p.write_bytes(HEADER.encode() + b"\nS\xff1,P1\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_samplesheet(p)


def test_validate_cli_exit_codes(sheet_dir, capsys):
    good = write(sheet_dir, *GOOD)
    assert main(["validate", "--samplesheet", str(good)]) == 0
    assert "3 samples" in capsys.readouterr().out
    bad = write(sheet_dir, GOOD[0], GOOD[0])
    assert main(["validate", "--samplesheet", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "duplicate sample id" in err
    assert main(["validate", "--samplesheet", str(sheet_dir / "nope.csv")]) == 2


def test_validate_normalized(sheet_dir):
    good = write(sheet_dir, *GOOD)
    out = sheet_dir / "norm.csv"
    assert main(["validate", "--samplesheet", str(good), "--normalized", str(out)]) == 0
    again = read_samplesheet(out)
    assert again.ids == ["S1", "S2", "S3"]
    assert again["S1"].fastq_1 == read_samplesheet(good)["S1"].fastq_1
