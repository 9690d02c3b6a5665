"""UMIs in the trim stage: extraction before adapter trimming, trim.json fields, the samplesheet's UMI
columns and run-wide defaults, and each bad input as a one-line error naming file/line/sample."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import dnaio
import pytest

from cfrna.cli import main
from cfrna.errors import ConfigError, InputFormatError
from cfrna.io.samplesheet import read_samplesheet
from cfrna.trim import TRUSEQ_ADAPTER, trim_reads
from cfrna.trim.umi import resolve_umi, sample_has_umis, sample_umi

INSERT = "ACGTTGCAAGCTTGACCTAGGATCCATGCAGTCAGTTGCAACGTA"  # 45 nt
UMIS = ["AACCGGTT", "ACGTACGT", "TTGGCCAA", "GATTACAG", "AACCGGTT"]  # 4 distinct


def _fq(path: Path, recs: list[tuple[str, str]]) -> Path:
    text = "".join(f"@{n}\n{s}\n+\n{'I' * len(s)}\n" for n, s in recs)
    path.write_bytes(gzip.compress(text.encode()))
    return path


def _read(path: Path) -> list[tuple[str, str]]:
    with dnaio.open(str(path)) as fh:
        return [(r.name, r.sequence) for r in fh]


def _pairs(tmp_path: Path, *, r2_prefix=lambda u: u + "GGG") -> tuple[Path, Path]:
    """Read 1: insert + adapter; read 2: UMI (+ linker) + reverse-complement insert + adapter."""
    rc = INSERT.translate(str.maketrans("ACGT", "TGCA"))[::-1]
    f1 = _fq(tmp_path / "s_R1.fastq.gz", [(f"r{i} 1:N:0:1", INSERT + TRUSEQ_ADAPTER + "TTTTT")
                                          for i in range(len(UMIS))])
    f2 = _fq(tmp_path / "s_R2.fastq.gz", [(f"r{i} 2:N:0:1", r2_prefix(u) + rc + TRUSEQ_ADAPTER)
                                          for i, u in enumerate(UMIS)])
    return f1, f2


def test_pairs_umi_on_read2_extracted_before_adapter_trimming(tmp_path):
    f1, f2 = _pairs(tmp_path)
    res = trim_reads("P1", f1, f2, tmp_path / "out", umi_pattern="NNNNNNNNXXX", umi_read=2)
    o1, o2 = _read(tmp_path / "out" / "P1_1.trimmed.fastq.gz"), _read(tmp_path / "out" / "P1_2.trimmed.fastq.gz")
    assert [n.split()[0] for n, _ in o1] == [f"r{i}_{u}" for i, u in enumerate(UMIS)]
    assert [n.split()[0] for n, _ in o2] == [f"r{i}_{u}" for i, u in enumerate(UMIS)]
    assert o1[0][0].endswith(" 1:N:0:1")  # comment kept
    assert {s for _, s in o1} == {INSERT}  # adapter trimmed after extraction
    # the UMI is gone from read 2, the X bases (GGG) stay, the adapter is trimmed
    assert {s for _, s in o2} == {"GGG" + INSERT.translate(str.maketrans("ACGT", "TGCA"))[::-1]}
    assert res["umi_source"] == "pattern" and res["umi_pattern"] == "NNNNNNNNXXX" and res["umi_read"] == 2
    assert res["umi_length"] == 8 and res["distinct_umis"] == 4
    assert res["reads_in"] == res["reads_out"] == 5
    assert res["bases_in"] == sum(len(s) for f in (f1, f2) for _, s in _read(f))  # as given, UMI included
    assert json.loads((tmp_path / "out" / "P1.trim.json").read_text()) == res
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary left


def test_single_end_umi_on_read1_through_cli(tmp_path, capsys):
    recs = [(f"q{i}", u + INSERT + TRUSEQ_ADAPTER) for i, u in enumerate(UMIS)]
    fq = _fq(tmp_path / "se.fastq.gz", recs)
    rc = main(["trim", "--sample", "S1", "--fastq-1", str(fq), "--outdir", str(tmp_path / "o"),
               "--umi-pattern", "NNNNNNNN", "--umi-read", "1"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    out = _read(tmp_path / "o" / "S1_1.trimmed.fastq.gz")
    assert out == [(f"q{i}_{u}", INSERT) for i, u in enumerate(UMIS)]
    assert (res["umi_length"], res["distinct_umis"], res["umi_read"]) == (8, 4, 1)


def test_kit_preset_takara_pico_v3_clips_six_bases_after_the_umi(tmp_path):
    f1, f2 = _pairs(tmp_path, r2_prefix=lambda u: u + "ATTGGG")  # 8 UMI + 3 linker + 3 non-templated
    res = trim_reads("K1", f1, f2, tmp_path / "out", umi_pattern="takara-pico-v3")
    o2 = _read(tmp_path / "out" / "K1_2.trimmed.fastq.gz")
    assert {s for _, s in o2} == {INSERT.translate(str.maketrans("ACGT", "TGCA"))[::-1]}
    assert (res["umi_kit"], res["umi_pattern"], res["umi_read"], res["umi_clip"]) == ("takara-pico-v3", "NNNNNNNN",
                                                                                     2, 6)
    assert res["distinct_umis"] == 4


def test_umis_already_in_names_are_checked_and_counted(tmp_path):
    fq = _fq(tmp_path / "n.fastq.gz", [(f"A0:1:FC:1:1:{i}:1:{u} 1:N:0:ACGT", INSERT) for i, u in enumerate(UMIS)])
    res = trim_reads("N1", fq, None, tmp_path / "o", umi_in_name=True, umi_separator=":")
    assert (res["umi_source"], res["umi_length"], res["distinct_umis"]) == ("name", 8, 4)
    with pytest.raises(InputFormatError, match=r"sample N2: record 1 .* has no UMI") as e:
        trim_reads("N2", fq, None, tmp_path / "o2", umi_in_name=True)  # wrong separator: no _UMI at the end
    assert str(fq) in str(e.value) and "\n" not in str(e.value)
    plain = _fq(tmp_path / "p.fastq.gz", [("x_ACGTACGT", INSERT), ("y", INSERT)])
    with pytest.raises(InputFormatError, match=r"sample N3: record 2 \(y\) has no UMI"):
        trim_reads("N3", plain, None, tmp_path / "o3", umi_in_name=True)


def test_bad_umi_inputs_name_file_record_and_sample(tmp_path):
    short = _fq(tmp_path / "short.fastq.gz", [("a", "ACGTACGTACGTACGTACGTACGT"), ("b", "ACGTAC")])
    with pytest.raises(InputFormatError, match=r"short.fastq.gz: sample S: record 2 \(b\) is 6 nt, shorter than"):
        trim_reads("S", short, None, tmp_path / "o", umi_pattern="NNNNNNNNXX")
    withn = _fq(tmp_path / "n.fastq.gz", [("a", "ACGTACGT" + INSERT), ("b", "ACGNACGT" + INSERT)])
    with pytest.raises(InputFormatError, match=r"sample S: record 2 \(b\): UMI ACGNACGT contains N"):
        trim_reads("S", withn, None, tmp_path / "o", umi_pattern="NNNNNNNN")
    assert not list((tmp_path / "o").glob("*.trimmed.fastq.gz"))
    with pytest.raises(ConfigError, match=r"sample S: --umi-pattern: UMI pattern 'NNQ8'"):
        trim_reads("S", withn, None, tmp_path / "o", umi_pattern="NNQ8")
    with pytest.raises(ConfigError, match="read 2 but the sample is single-end"):
        trim_reads("S", withn, None, tmp_path / "o", umi_pattern="NNNNNNNN", umi_read=2)
    with pytest.raises(ConfigError, match="both a UMI pattern and UMIs already in the read names"):
        trim_reads("S", withn, None, tmp_path / "o", umi_pattern="NNNNNNNN", umi_in_name=True)


def test_cli_bad_pattern_exits_2(tmp_path, capsys):
    fq = _fq(tmp_path / "se.fastq.gz", [("q", "ACGTACGT" + INSERT)])
    rc = main(["trim", "--sample", "S1", "--fastq-1", str(fq), "--outdir", str(tmp_path / "o"),
               "--umi-pattern", "NNCC"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cell-barcode" in err and "S1" in err


HEADER = "sample,patient_id,visit_month,arm,flare,fastq_1,fastq_2,strandedness"


def _sheet(tmp_path: Path, extra_header: str, *cells: tuple[str, bool, str]) -> Path:
    for n in ("a_1", "a_2", "b_1"):
        _fq(tmp_path / f"{n}.fastq.gz", [("r", "ACGT")])
    rows = []
    for i, (sid, paired, extra) in enumerate(cells):
        fq2 = "a_2.fastq.gz" if paired else ""
        fq1 = "a_1.fastq.gz" if paired else "b_1.fastq.gz"
        rows.append(f"{sid},P{i},0,steroid_tapering,,{fq1},{fq2},reverse,{extra}")
    p = tmp_path / "sheet.csv"
    p.write_text(HEADER + "," + extra_header + "\n" + "\n".join(rows) + "\n")
    return p


def test_sheet_umi_columns_and_run_wide_defaults(tmp_path):
    p = _sheet(tmp_path, "umi_pattern,umi_read,umi_in_name",
               ("A", True, "NNNNNNNNXXX,2,"), ("B", False, ",,true"), ("C", True, ",,"), ("D", True, "none,,"),
               ("E", True, "takara-pico-v3,,"))
    sheet = read_samplesheet(p)
    a, b, c, d, e = sheet.samples
    assert (a.umi_pattern, a.umi_read, a.umi_in_name) == ("NNNNNNNNXXX", 2, None)
    assert b.umi_in_name is True and b.umi_pattern is None
    assert sample_umi(a) == resolve_umi("NNNNNNNNXXX", 2)
    assert sample_umi(b).in_name and sample_has_umis(b)
    assert not sample_has_umis(c) and not sample_has_umis(d)
    # a run-wide pattern applies to samples whose cells are empty; a sheet value overrides it
    run = {"pattern": "NNNNNN", "read": 1}
    assert sample_umi(c, **run).pattern == "NNNNNN"
    assert sample_umi(a, **run).pattern == "NNNNNNNNXXX" and sample_umi(a, **run).read == 2
    assert not sample_has_umis(d, **run)  # "none" wins over the run-wide pattern
    assert sample_umi(b, **run).in_name and sample_umi(b, **run).pattern is None
    assert sample_umi(c, in_name=True, sep=":").in_name
    assert (sample_umi(e).kit, sample_umi(e).read, sample_umi(e).clip) == ("takara-pico-v3", 2, 6)


@pytest.mark.parametrize(("extra", "paired", "msg"), [
    ("NNZZ,,", True, "column 'umi_pattern': UMI pattern 'NNZZ' is neither"),
    ("NNNN,3,", True, "column 'umi_read': must be 1 or 2"),
    ("NNNN,2,", False, "the UMI is on read 2 but the sample is single-end"),
    (",2,", False, "column 'umi_read': read 2 for a single-end sample"),
    (",,maybe", True, "column 'umi_in_name': must be true or false"),
    ("NNNN,,true", True, "both a UMI pattern and UMIs already in the read names"),
])
def test_sheet_bad_umi_cells_name_the_line(tmp_path, extra, paired, msg):
    p = _sheet(tmp_path, "umi_pattern,umi_read,umi_in_name", ("A", True, ",,"), ("B", paired, extra))
    with pytest.raises(ConfigError) as e:
        read_samplesheet(p)
    assert f"{p}:3" in str(e.value) and msg in str(e.value) and "\n" not in str(e.value)


def test_input_schema_takes_the_umi_columns_the_sheet_reader_takes():
    import re

    from cfrna._resources import asset_path
    from cfrna.trim.umi import KIT_PRESETS

    props = json.loads(asset_path("schema_input.json").read_text())["items"]["properties"]
    rx = props["umi_pattern"]["pattern"]
    for ok in ["", "NNNNNNNN", "nnnnnnnnxxx", "none", *KIT_PRESETS]:
        assert re.fullmatch(rx, ok), ok
    assert not re.fullmatch(rx, "NNZZ")
    assert set(props["umi_read"]["enum"]) == {"", "1", "2"}
    assert {"true", "false"} <= set(props["umi_in_name"]["enum"])


def test_run_options_resolve_umis_per_sample(tmp_path):
    """cfrna run: the trim options of each sample come from its UMI columns over the run-wide options."""
    from types import SimpleNamespace

    from cfrna.pipeline._cli import configure, options_from_args
    from cfrna.pipeline.local import RunOptions, check_umi_options, sample_umi_settings

    def sample(name, fq2="b.fq.gz", **umi):
        return SimpleNamespace(sample=name, fastq_1="a.fq.gz", fastq_2=fq2, umi_pattern=umi.get("pattern"),
                               umi_read=umi.get("read"), umi_in_name=umi.get("in_name"))

    pe, se = sample("pe"), sample("se", fq2=None)
    named, kit = sample("n", in_name=True), sample("k", pattern="takara-pico-v3")
    opts = RunOptions("s", "f", "g", str(tmp_path), umi_pattern="NNNNNNNN", umi_read=2, umi_separator=":")
    assert sample_umi_settings(opts, pe) == {"umi_pattern": "NNNNNNNN", "umi_read": 2, "umi_separator": ":"}
    assert sample_umi_settings(opts, named) == {"umi_in_name": True, "umi_separator": ":"}
    assert sample_umi_settings(opts, kit) == {"umi_pattern": "takara-pico-v3", "umi_read": 2, "umi_separator": ":"}
    assert sample_umi_settings(RunOptions("s", "f", "g", "o"), pe) == {}
    with pytest.raises(ConfigError, match="sample se: .*read 2 but the sample is single-end"):
        check_umi_options(opts, [pe, se])
    with pytest.raises(ConfigError, match="sample pe: its UMI .* --skip-trim"):
        check_umi_options(RunOptions("s", "f", "g", "o", umi_pattern="NNNNNN", skip_trim=True), [pe])
    check_umi_options(RunOptions("s", "f", "g", "o", umi_in_name=True, skip_trim=True), [pe])  # nothing to extract
    with pytest.raises(ConfigError, match="--umi-pattern: UMI pattern 'NNQ'"):
        check_umi_options(RunOptions("s", "f", "g", "o", umi_pattern="NNQ"), [])
    import argparse

    p = argparse.ArgumentParser()
    configure(p)
    args = p.parse_args(["--samplesheet", "s", "--fasta", "f", "--gtf", "g", "--outdir", "o", "--umi-pattern",
                         "NNNNNNNNXXX", "--umi-read", "2", "--umi-separator", ":"])
    o = options_from_args(args)
    assert (o.umi_pattern, o.umi_read, o.umi_in_name, o.umi_separator) == ("NNNNNNNNXXX", 2, False, ":")


@pytest.mark.slow
def test_cfrna_run_extracts_read2_umis_in_the_trim_stage(tmp_path):
    """A tiny paired cohort with 8-nt UMIs at the start of read 2 (samplesheet umi_pattern/umi_read)
    through `cfrna run`: the trim stage extracts them, counting deduplicates by UMI (directional)."""
    import pandas as pd

    from cfrna.simulate import simulate_cohort
    from cfrna.simulate.duplicates import DuplicateSpec

    cohort = tmp_path / "sim"
    simulate_cohort(cohort, n_samples=4, reads_per_sample=1500, n_genes=240, seed=9, paired=True,
                    duplicates=DuplicateSpec(pcr_duplicates=0.3, umi_length=8, umi_location="read2"))
    sheet = pd.read_csv(cohort / "samplesheet.csv")
    assert set(sheet["umi_pattern"]) == {"NNNNNNNN"} and set(sheet["umi_read"]) == {2}
    out = tmp_path / "results"
    rc = main(["run", "--samplesheet", str(cohort / "samplesheet.csv"), "--fasta", str(cohort / "genome.fa"),
               "--gtf", str(cohort / "genes.gtf"), "--outdir", str(out), "--threads", "2", "--no-progress",
               "--index-dir", str(tmp_path / "index")])
    assert rc == 0
    for s in sheet["sample"]:
        tj = json.loads((out / "trimmed" / f"{s}.trim.json").read_text())
        assert (tj["umi_source"], tj["umi_pattern"], tj["umi_read"], tj["umi_length"]) == ("pattern", "NNNNNNNN", 2, 8)
        assert 0 < tj["distinct_umis"] <= tj["reads_in"]
        name = _read(out / "trimmed" / f"{s}_1.trimmed.fastq.gz")[0][0]
        assert len(name.split()[0].rsplit("_", 1)[1]) == 8
    qc = pd.read_csv(out / "qc" / "qc_summary.tsv", sep="\t").set_index("sample")
    assert (qc["duplication_method"] == "directional").all()
