"""The stage registry (cfrna/pipeline/stages.py): one contract, a current table, every entry exists and runs."""

from __future__ import annotations

import dataclasses
import gzip
import inspect
import json
import shutil
import typing
from pathlib import Path

import pytest

from cfrna.cli import COMMANDS, main
from cfrna.errors import ConfigError
from cfrna.pipeline import stages
from cfrna.pipeline.layout import OutputLayout
from cfrna.pipeline.stages import OUTPUT_OVERRIDES, STAGES, StageResult, get_stage, settings_from

ROOT = Path(__file__).resolve().parents[1]

EXPECTED_ORDER = ["validate", "index", "trim", "align", "count", "qc", "matrix", "de", "pathways", "report",
                  "provenance"]


def test_registry_order_and_lookup():
    assert [s.name for s in STAGES] == EXPECTED_ORDER
    assert get_stage("count").cli == "count"
    with pytest.raises(KeyError, match="unknown stage 'nope'"):
        get_stage("nope")


def test_architecture_table_is_current():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert stages.render_into(page) == page, (
        "docs/architecture.md's stage table is out of date: run `python -m cfrna.pipeline.stages docs/architecture.md`")


def test_render_into_needs_the_markers():
    with pytest.raises(ValueError, match="markers"):
        stages.render_into("# a page without the table\n")
    page = f"x\n{stages.TABLE_BEGIN}\nSTALE ROW\n{stages.TABLE_END}\ny\n"
    out = stages.render_into(page)
    assert "STALE ROW" not in out and "| trim | `cfrna/trim/stage.py::run_trim` |" in out and out.endswith("y\n")


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_stage_function_has_the_contract(stage):
    fn = stage.load()
    mod, _, attr = stage.function.partition(":")
    assert attr == f"run_{stage.name}" and mod.endswith(".stage"), "cfrna/<package>/stage.py::run_<stage>"
    sig = inspect.signature(fn)
    params = sig.parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values()), \
        f"{stage.function}: every parameter keyword-only"
    assert "outdir" in params and "settings" in params
    extra = set(params) - set(stage.inputs) - {"outdir", "settings"} - set(OUTPUT_OVERRIDES.get(stage.name, ()))
    assert not extra, f"{stage.function}: parameters {sorted(extra)} not declared as inputs in STAGES"
    assert set(stage.inputs) <= set(params), f"{stage.function}: declared inputs missing from the signature"
    hints = typing.get_type_hints(fn)
    assert hints["return"] is StageResult
    settings_cls = hints["settings"]
    assert dataclasses.is_dataclass(settings_cls) and settings_cls.__dataclass_params__.frozen
    assert settings_cls.__name__.endswith("Settings")
    default = params["settings"].default
    assert default is not inspect.Parameter.empty and default == settings_cls(), "settings default = the defaults"


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_cli_and_nextflow_module_exist(stage):
    assert stage.cli in COMMANDS
    module = importlib_module(COMMANDS[stage.cli][0])
    assert callable(module.configure) and callable(module.run)
    assert stage.module is not None and (ROOT / stage.module / "main.nf").is_file()
    # the CLI module calls the registered function (argument parsing + run_<stage> only)
    src = Path(module.__file__).read_text(encoding="utf-8")
    mod, _, attr = stage.function.partition(":")
    assert f"from {mod} import" in src and f"{attr}(" in src, f"{module.__name__} does not call {stage.function}"


def importlib_module(name: str):
    import importlib

    return importlib.import_module(name)


def test_every_output_spec_resolves_on_the_layout():
    lay = OutputLayout("O")
    for s in STAGES:
        for spec, path in zip(s.outputs, s.output_paths(lay), strict=True):
            if spec.startswith("<"):
                continue
            assert isinstance(path, Path) and path.parts[0] == "O", (s.name, spec)
    assert get_stage("align").output_paths(lay, sample="s1")[0] == Path("O/alignment/s1.bam")


def test_settings_from_takes_fields_by_name():
    from argparse import Namespace

    from cfrna.trim.stage import TrimSettings

    s = settings_from(TrimSettings, Namespace(quality=30, sample="x", min_length=20, outdir="o"))
    assert (s.quality, s.min_length, s.threads) == (30, 20, 1)
    assert settings_from(TrimSettings, {"threads": 4}, quality=5) == TrimSettings(threads=4, quality=5)
    with pytest.raises(TypeError, match="no field"):
        settings_from(TrimSettings, None, nope=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.quality = 1  # type: ignore[misc]


def test_stage_result_json():
    r = StageResult("x", outputs={"a": Path("o/a.tsv")}, summary={"n": 1}, warnings=["w"], data=object())
    assert r.to_json() == {"stage": "x", "outputs": {"a": "o/a.tsv"}, "summary": {"n": 1}, "warnings": ["w"]}
    json.dumps(r.to_json())


# ----------------------------------------------------------------------------- every stage on a tiny input

def _genome(n: int = 3000, seed: int = 7) -> str:
    import random

    rng = random.Random(seed)
    return "".join(rng.choice("ACGT") for _ in range(n))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """A 3 kb genome with two genes, a single-end sample of 300 reads drawn from gene A (sense)."""
    import random

    d = tmp_path_factory.mktemp("tiny_stage")
    g = _genome()
    (d / "g.fa").write_text(">chr1\n" + "\n".join(g[i:i + 60] for i in range(0, len(g), 60)) + "\n")
    (d / "g.gtf").write_text(
        'chr1\tt\texon\t101\t900\t.\t+\t.\tgene_id "A"; transcript_id "a1"; gene_name "GA";\n'
        'chr1\tt\texon\t1501\t2400\t.\t-\t.\tgene_id "B"; transcript_id "b1"; gene_name "GB";\n')
    rng = random.Random(3)
    with gzip.open(d / "s1.fastq.gz", "wt") as fh:
        for i in range(300):
            p = rng.randrange(100, 900 - 80)
            seq = g[p:p + 80]
            fh.write(f"@r{i}\n{seq}\n+\n{'I' * len(seq)}\n")
    (d / "sheet.csv").write_text("sample,patient_id,visit_month,arm,flare,fastq_1,fastq_2,strandedness\n"
                                 "s1,P1,0,steroid_tapering,flare,s1.fastq.gz,,forward\n")
    return {"dir": d, "fasta": d / "g.fa", "gtf": d / "g.gtf", "fq": d / "s1.fastq.gz", "sheet": d / "sheet.csv"}


def test_per_sample_stages_return_stage_results(tiny, tmp_path):
    from cfrna.align.stage import AlignSettings, IndexSettings, run_align, run_index
    from cfrna.count.stage import run_count
    from cfrna.pipeline.stage import ProvenanceSettings, run_provenance, run_validate
    from cfrna.trim.stage import TrimSettings, run_trim

    lay = OutputLayout(tmp_path / "O")
    v = run_validate(samplesheet=tiny["sheet"], gtf=tiny["gtf"], fasta=tiny["fasta"], outdir=lay.info_dir)
    assert isinstance(v, StageResult) and v.stage == "validate"
    assert v.outputs["samplesheet"] == lay.validated_samplesheet and lay.validated_samplesheet.is_file()
    assert v.summary["samples"] == 1 and v.summary["genes"] == 2

    idx = run_index(fasta=tiny["fasta"], gtf=tiny["gtf"], outdir=tmp_path / "cache", settings=IndexSettings())
    assert idx.outputs["index"].is_dir() and idx.outputs["index"].parent == tmp_path / "cache"

    t = run_trim(sample="s1", fastq_1=tiny["fq"], outdir=lay.trimmed_dir, settings=TrimSettings(min_length=20))
    assert t.outputs == {"trim_1": lay.trimmed_fastq("s1"), "trim_json": lay.trim_json("s1")}
    assert t.summary == json.loads(lay.trim_json("s1").read_text()) and t.summary["reads_in"] == 300

    a = run_align(sample="s1", fastq_1=t.outputs["trim_1"], fasta=tiny["fasta"], gtf=tiny["gtf"],
                  index=idx.outputs["index"], strandedness="forward", outdir=lay.alignment_dir,
                  settings=AlignSettings())
    assert set(a.outputs) == {"bam", "bai", "align_json"} and all(p.is_file() for p in a.outputs.values())
    assert a.outputs["bam"] == lay.bam("s1") and a.summary["mapped"] > 250

    c = run_count(bam=a.outputs["bam"], gtf=tiny["gtf"], sample="s1", align_json=a.outputs["align_json"],
                  outdir=lay.counts_dir)
    assert c.outputs == {"counts": lay.counts("s1"), "summary": lay.counts_summary("s1"),
                         "stats": lay.counts_stats("s1")}
    assert c.summary["strandedness"] == "forward" and c.summary["summary"]["Assigned"] > 250
    counts = dict(line.split("\t") for line in lay.counts("s1").read_text().splitlines()[1:])
    assert int(counts["A"]) == c.summary["summary"]["Assigned"] and counts["B"] == "0"

    p = run_provenance(samplesheet=tiny["sheet"], fasta=tiny["fasta"], gtf=tiny["gtf"], outdir=lay.info_dir,
                       settings=ProvenanceSettings())
    assert set(p.outputs.values()) == {lay.params_json, lay.software_versions, lay.input_checksums}
    assert p.summary["input_files"] == 4  # sheet, fasta, gtf, one FASTQ
    assert json.loads(lay.params_json.read_text())["params"]["fasta"] == "g.fa"


def test_count_needs_exactly_one_strandedness_source(tiny, tmp_path):
    from cfrna.count.stage import run_count

    with pytest.raises(ConfigError, match="one of the two"):
        run_count(bam=tmp_path / "x.bam", gtf=tiny["gtf"], sample="s1", outdir=tmp_path)
    with pytest.raises(ConfigError, match="one of the two"):
        run_count(bam=tmp_path / "x.bam", gtf=tiny["gtf"], sample="s1", strandedness="forward",
                  align_json=tmp_path / "x.json", outdir=tmp_path)


def test_validate_stage_reports_a_bad_sheet(tiny, tmp_path):
    from cfrna.pipeline.stage import run_validate

    bad = tmp_path / "bad.csv"
    bad.write_text(tiny["sheet"].read_text().replace("forward", "sideways"))
    shutil.copy(tiny["fq"], tmp_path / "s1.fastq.gz")
    with pytest.raises(ConfigError) as err:
        run_validate(samplesheet=bad)
    assert "bad.csv:2" in err.value.one_line() and "strandedness" in err.value.one_line()
    with pytest.raises(ConfigError, match="give --gtf too"):
        run_validate(samplesheet=tiny["sheet"], fasta=tiny["fasta"])


def test_cohort_stages_return_stage_results(pipeline_run, sim_cohort, tmp_path):
    """qc -> matrix -> de -> pathways -> report through the registry, on the session's per-sample outputs."""
    src = OutputLayout(pipeline_run)
    lay = OutputLayout(tmp_path / "O")
    for stage in ("trim", "align", "count"):
        shutil.copytree(src.folder(stage), lay.folder(stage))
    shutil.copytree(src.info_dir, lay.info_dir)
    inputs = {
        "samplesheet": sim_cohort / "samplesheet.csv", "gtf": sim_cohort / "genes.gtf",
        "contrasts": sim_cohort / "contrasts.csv", "counts_dir": lay.counts_dir, "align_dir": lay.alignment_dir,
        "trim_dir": lay.trimmed_dir, "qc_summary": lay.qc_summary, "sample_errors": {},
        "counts": lay.gene_counts, "samples_table": lay.samples_table, "de_dir": lay.de_dir, "h5ad": lay.h5ad,
        "params_json": lay.params_json, "software_versions": lay.software_versions,
        "input_checksums": lay.input_checksums,
    }
    for name in ("qc", "matrix", "de", "pathways", "report"):
        stage = get_stage(name)
        fn = stage.load()
        res = fn(**{k: v for k, v in inputs.items() if k in stage.inputs}, outdir=lay.folder(name))
        assert isinstance(res, StageResult) and res.stage == name
        assert res.outputs and all(Path(p).exists() for p in res.outputs.values()), (name, res.outputs)
        for p in res.outputs.values():
            assert Path(p).resolve().is_relative_to(lay.root.resolve()), (name, p)
    assert lay.report_html.is_file() and lay.h5ad.is_file()


def test_cli_prints_the_stage_summary(tiny, tmp_path, capsys):
    out = tmp_path / "trimmed"
    assert main(["trim", "--sample", "s1", "--fastq-1", str(tiny["fq"]), "--outdir", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(OutputLayout.in_stage_folder("trim", out).trim_json("s1").read_text())
