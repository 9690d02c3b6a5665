"""Samplesheet rules shared by every stage: reserved computed column names, sample ids, metadata-only sheets,
exit codes of unreadable inputs."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest

from cfrna._resources import asset_path
from cfrna.cli import main
from cfrna.errors import ConfigError, InputFormatError
from cfrna.io.samplesheet import check_column_name, check_sample_id, computed_columns, read_samplesheet
from tests.helpers.samplesheet import GOOD, HEADER
from tests.helpers.samplesheet import fastq_stub as _fq
from tests.helpers.samplesheet import write_sheet as write


@pytest.fixture
def sheet_dir(tmp_path):
    for n in ("a_1", "a_2", "b_1", "c_1"):
        _fq(tmp_path / f"{n}.fastq.gz")
    return tmp_path


@pytest.mark.parametrize("col", ["excluded", "qc_status", "qc_reasons", "reasons", "status", "mapping_rate",
                                 "sex_inferred", "has_counts", "paired", "qc_anything", "ng80_status",
                                 "degradation_status", "reads_assigned_status"])
def test_colliding_column_is_an_error_naming_it(sheet_dir, capsys, col):
    rows = [r + ",x" for r in GOOD]
    p = write(sheet_dir, *rows, header=HEADER + f",{col}")
    with pytest.raises(ConfigError, match=rf"samplesheet.csv:1: column '{col}' is reserved"):
        read_samplesheet(p)
    assert main(["validate", "--samplesheet", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"'{col}'" in err and "rename it" in err


def test_every_computed_qc_column_is_reserved():
    from cfrna.qc.metrics import METRICS

    assert set(METRICS) <= computed_columns()
    assert {f"{m}_status" for m in METRICS} | {"degradation_status", "strandedness_status"} <= computed_columns()
    for col in ("sex", "batch", "days_to_flare", "single_end", "quality", "flare_status"):
        check_column_name(col, "x")  # ordinary metadata names stay allowed


@pytest.mark.parametrize(("sid", "why"), [
    ("s" * 101, "1-100 characters"), ("-x02", "starting with"), (".hidden", "starting with"),
    ("../../x", "letters, digits"), ("a/b", "letters, digits"), ("a b", "letters, digits"), ("", "1-100"),
])
def test_bad_sample_ids(sheet_dir, sid, why):
    p = write(sheet_dir, f"{sid},P1,0,steroid_tapering,no_flare,a_1.fastq.gz,,reverse,b1")
    with pytest.raises(ConfigError, match=why) as err:
        read_samplesheet(p)
    assert len(err.value.one_line()) < 400  # a 101-character id is not repeated in full
    with pytest.raises(ConfigError):
        check_sample_id(sid)


def test_sample_id_limits_are_in_the_schema():
    schema = json.loads(asset_path("schema_input.json").read_text())["items"]["properties"]["sample"]
    for sid in ("s" * 101, "-x", ".x", "a/b", "../x"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(sid, {k: v for k, v in schema.items() if k not in ("meta", "errorMessage")})
    for sid in ("s" * 100, "_x", "S1.rep-2", "0a"):
        jsonschema.validate(sid, {k: v for k, v in schema.items() if k not in ("meta", "errorMessage")})
        assert check_sample_id(sid) == sid


@pytest.mark.parametrize("command", ["trim", "align"])
def test_stage_commands_refuse_sample_ids_leaving_outdir(tmp_path, capsys, command):
    fq = tmp_path / "r.fastq.gz"
    _fq(fq)
    extra = ["--fasta", str(fq)] if command == "align" else []
    for sid in ("../../x", "-x02", "s" * 240):
        rc = main([command, f"--sample={sid}", "--fastq-1", str(fq), "--outdir", str(tmp_path / "o"), *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in err and "--sample" in err, err
    assert not (tmp_path / "o").exists() and not (tmp_path.parent / "x").exists()


def test_metadata_only_sheet(tmp_path, capsys):
    p = tmp_path / "meta.csv"
    p.write_text("sample,patient_id,visit_month,arm,flare,egfr\nS1,P1,0,steroid_tapering,flare,60\n"
                 "S2,P2,3,steroid_maintenance,no_flare,71\n")
    sheet = read_samplesheet(p, check_files=False)
    assert sheet.ids == ["S1", "S2"] and sheet["S1"].fastq_1 == "" and not sheet["S1"].paired
    assert sheet.to_frame().loc["S2", "egfr"] == 71
    # a run needs the FASTQ columns: the error says which and mentions the metadata-only form
    with pytest.raises(ConfigError, match="missing required column"):
        read_samplesheet(p)
    assert main(["validate", "--samplesheet", str(p), "--metadata-only"]) == 0
    assert "metadata only" in capsys.readouterr().out
    # metadata-only sheets still need the clinical columns
    bad = tmp_path / "bad.csv"
    bad.write_text("sample,patient_id\nS1,P1\n")
    with pytest.raises(ConfigError, match=r"missing required column\(s\): visit_month, arm, flare"):
        read_samplesheet(bad, check_files=False)


def test_unreadable_fastq_is_a_data_error(sheet_dir, monkeypatch, capsys):
    """Unreadable input data exits 1 whatever the file (FASTQ here, GTF in test_pipeline_run)."""
    p = write(sheet_dir, *GOOD)
    target = str(sheet_dir / "b_1.fastq.gz")
    real = os.access
    monkeypatch.setattr(os, "access", lambda f, mode, *a, **k: False if str(f) == target else real(f, mode, *a, **k))
    with pytest.raises(InputFormatError, match="file not readable"):
        read_samplesheet(p)
    assert main(["validate", "--samplesheet", str(p)]) == 1
    assert "b_1.fastq.gz" in capsys.readouterr().err
