"""The Nextflow pipeline, run by real Nextflow: parity with `cfrna run`, resume, QC failures, SLURM.

The runtime is ``tools/nextflow/bin/nextflow`` (``scripts/install_nextflow.sh``) or ``nextflow`` on
PATH; without it these tests skip locally and fail under ``CI=true``. One completed run of
``-profile test`` (a simulated 6-sample cohort) is shared by the tests through a session fixture.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import IN_CI, ROOT
from tests.helpers.nextflow import VENV_BIN, nextflow_bin, task_env
from tests.helpers.tables import assert_tables_equal

STAGES = ("simulate", "validate", "index", "trim", "align", "count", "qc", "matrix", "de", "pathways", "report")
NF_TIMEOUT = 1800


# ----------------------------------------------------------------------------- helpers




def nf_command(*args: str) -> list[str]:
    return [nextflow_bin(), "-q", "run", str(ROOT), "-ansi-log", "false", *args]


def run_nextflow(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(nf_command(*args), cwd=cwd, env=task_env(), capture_output=True, text=True,
                          timeout=NF_TIMEOUT)
    if check and proc.returncode != 0:
        log = (cwd / ".nextflow.log").read_text()[-6000:] if (cwd / ".nextflow.log").exists() else ""
        pytest.fail(f"nextflow exited {proc.returncode}\nSTDOUT:\n{proc.stdout[-4000:]}\n"
                    f"STDERR:\n{proc.stderr[-4000:]}\nLOG:\n{log}")
    return proc


def latest_trace(outdir: Path) -> pd.DataFrame:
    traces = sorted((outdir / "pipeline_info").glob("execution_trace_*.txt"), key=lambda p: p.stat().st_mtime)
    assert traces, f"no Nextflow trace in {outdir}/pipeline_info"
    return pd.read_csv(traces[-1], sep="\t", dtype=str)


def tree(outdir: Path, *, skip: tuple[str, ...] = ("pipeline_info", "test_cohort")) -> set[str]:
    """Relative paths of the files under outdir (hidden files and skipped top folders excluded)."""
    out = set()
    for p in outdir.rglob("*"):
        rel = p.relative_to(outdir)
        if rel.parts[0] in skip or any(part.startswith(".") for part in rel.parts) or p.is_dir():
            continue
        out.add(rel.as_posix())
    return out


def assert_same_results(nf_out: Path, ref_out: Path) -> None:
    """The outputs that must match between two runs on the same inputs."""
    for f in sorted(nf_out.glob("counts/*.counts.tsv")):
        assert f.read_bytes() == (ref_out / "counts" / f.name).read_bytes(), f"counts differ: {f.name}"
    for f in sorted(nf_out.glob("counts/*.counts.tsv.summary")):
        # featureCounts-style header names the BAM by its path: compare the numbers only
        a = pd.read_csv(f, sep="\t", index_col=0)
        b = pd.read_csv(ref_out / "counts" / f.name, sep="\t", index_col=0)
        assert a.to_numpy().tolist() == b.to_numpy().tolist(), f"summary differs: {f.name}"
    for pattern in ("trimmed/*.trim.json", "alignment/*.align.json", "counts/*.stats.json", "qc/*.qc.json"):
        files = sorted(nf_out.glob(pattern))
        assert files, f"no {pattern}"
        for f in files:
            a = json.loads(f.read_text())
            b = json.loads((ref_out / f.relative_to(nf_out)).read_text())
            a.pop("index", None), b.pop("index", None)  # align.json records where the index was
            assert a == b, f"{f.relative_to(nf_out)} differs"
    assert_tables_equal(nf_out / "qc" / "qc_summary.tsv", ref_out / "qc" / "qc_summary.tsv")
    assert_tables_equal(nf_out / "matrix" / "gene_counts.tsv", ref_out / "matrix" / "gene_counts.tsv", rtol=0)
    assert_tables_equal(nf_out / "matrix" / "samples.tsv", ref_out / "matrix" / "samples.tsv")
    de = sorted(nf_out.glob("de/*.deseq2.tsv"))
    assert de, "no DE tables"
    for f in de:
        assert_tables_equal(f, ref_out / "de" / f.name)


# ----------------------------------------------------------------------------- fast tests (no Nextflow)


@pytest.mark.parametrize("stage", STAGES)
def test_bin_shim_is_the_cli(stage):
    shim = ROOT / "bin" / f"cfrna-{stage}"
    assert os.access(shim, os.X_OK), f"{shim} is not executable"
    text = shim.read_text()
    assert f'main(["{stage}", *sys.argv[1:]])' in text
    proc = subprocess.run([str(shim), "--help"], env=task_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"usage: cfrna {stage}" in proc.stdout


def test_every_module_has_the_nfcore_files():
    import re

    mods = sorted((ROOT / "workflow" / "modules" / "local").iterdir())
    assert {m.name for m in mods} >= {"validate", "index", "trim", "align", "count", "qc", "matrix", "de",
                                      "pathways", "report"}
    assert "includeConfig 'conf/modules.config'" in (ROOT / "nextflow.config").read_text()
    modules_config = (ROOT / "conf" / "modules.config").read_text()
    for m in mods:
        for name in ("main.nf", "meta.yml", "environment.yml"):
            assert (m / name).is_file(), f"{m.name}/{name} missing"
        text = (m / "main.nf").read_text()
        for needle in ("stub:", "label 'process_", "topic: versions", "task.ext.args", "container '"):
            assert needle in text, f"{m.name}/main.nf: no {needle!r}"
        assert "END_VERSIONS" not in text, f"{m.name}/main.nf: a versions.yml heredoc (the versions topic replaces it)"
        assert f"CFRNA_{m.name.upper()}" in modules_config, f"{m.name}: no block in conf/modules.config"
        assert not re.search(r"(?<![\w/.])params\.(?!json)", text), f"{m.name}/main.nf reads params (inputs only)"


def _config_params() -> dict[str, object]:
    """The params block of nextflow.config: name -> default (str/int/bool/None)."""
    import re

    block = (ROOT / "nextflow.config").read_text().split("params {", 1)[1].split("\n}", 1)[0]
    out: dict[str, object] = {}
    for name, raw in re.findall(r"^\s+(\w+)\s+=\s+(\S+)", block, re.M):
        if raw == "null":
            out[name] = None
        elif raw in ("true", "false"):
            out[name] = raw == "true"
        elif raw[0] in "'\"":
            out[name] = raw.strip("'\"")
        else:
            out[name] = int(raw)
    return out


def test_schema_lists_every_param():
    schema = json.loads((ROOT / "nextflow_schema.json").read_text())
    props = {k: v for group in schema["$defs"].values() for k, v in group["properties"].items()}
    refs = {r["$ref"].rsplit("/", 1)[1] for r in schema["allOf"]}
    assert refs == set(schema["$defs"]), "every schema group is referenced by allOf"
    config = _config_params()
    assert set(config) == set(props), (f"config-only: {set(config) - set(props)}; "
                                       f"schema-only: {set(props) - set(config)}")
    # every parameter has its nextflow.config default in the schema (none for null), as nf-core lint wants
    for name, default in config.items():
        if default is None:
            assert "default" not in props[name], f"{name}: schema default for a null parameter"
        else:
            assert props[name].get("default") == default, f"{name}: schema default {props[name].get('default')!r} != {default!r}"
    profile_params = set(schema["$defs"]["profile_options"]["properties"])
    profiles = "".join(p.read_text() for p in (ROOT / "conf" / "profiles").glob("*.config"))
    for p in profile_params:
        assert f"params.{p}" in profiles, f"schema profile param {p} is used by no profile"
    docs = (ROOT / "docs" / "parameters.md").read_text()
    for p in props:
        if not props[p].get("hidden"):
            assert f"--{p}" in docs, f"docs/parameters.md does not document --{p}"


def test_manifest_and_nfcore_files():
    import re

    text = (ROOT / "nextflow.config").read_text()
    manifest = text.split("manifest {", 1)[1].split("\n}", 1)[0]
    name = re.search(r"name\s+=\s+'([^']+)'", manifest).group(1)
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", name), f"manifest.name {name!r} has no owner/ prefix"
    assert re.search(r"homePage\s+=\s+'https://", manifest)
    lic = (ROOT / "LICENSE").read_text()
    assert lic.startswith("MIT License") and "Permission is hereby granted" in lic
    cites = (ROOT / "CITATIONS.md").read_text()
    for tool in ("Nextflow", "minimap2", "STAR", "featureCounts", "DESeq2", "MultiQC", "cutadapt"):
        assert tool in cites, f"CITATIONS.md does not cite {tool}"


# ----------------------------------------------------------------------------- resolved config of every profile


def nf_config(profile: str | None) -> dict[str, str]:
    args = [nextflow_bin(), "config", "-flat", str(ROOT)]
    if profile:
        args[2:2] = ["-profile", profile]
    proc = subprocess.run(args, cwd=ROOT, env=task_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"nextflow config -profile {profile}: {proc.stderr[-2000:]}"
    out = {}
    for line in proc.stdout.splitlines():
        if " = " in line:
            k, v = line.split(" = ", 1)
            out[k] = v
    return out


#: per profile, settings that must hold in `nextflow config -profile X -flat` (None: unset)
PROFILE_EXPECT: dict[str | None, dict[str, str | None]] = {
    None: {"conda.enabled": "false", "docker.enabled": "false", "podman.enabled": "false",
           "singularity.enabled": "false", "process.executor": None, "process.container": None},
    "test": {"params.simulate": "true", "params.max_cpus": "2", "executor.$local.cpus": "2",
             "process.resourceLimits": "[cpus:2, memory:'6 GB', time:'1h']", "conda.enabled": "false"},
    "local": {"process.executor": "'local'", "conda.enabled": "false"},
    "slurm": {"process.executor": "'slurm'", "process.resourceLimits": "[cpus:16, memory:'128 GB', time:'10d']"},
    "sge": {"process.executor": "'sge'", "process.penv": "'smp'"},
    "lsf": {"process.executor": "'lsf'", "executor.perJobMemLimit": "false"},
    "pbs": {"process.executor": "'pbspro'"},
    "awsbatch": {"process.executor": "'awsbatch'", "aws.region": "'eu-west-1'"},
    # docker/podman: each module's own container directive (localhost/cfrna:<version>); --container_image
    # replaces it (test_nf_modules.py checks both)
    "docker": {"docker.enabled": "true", "conda.enabled": "false", "podman.enabled": "false",
               "process.container": None, "process.'withName:CFRNA_.*'.container": None,
               "env.NUMBA_CACHE_DIR": "'/opt/cfrna/numba-cache'"},
    "podman": {"podman.enabled": "true", "docker.enabled": "false", "conda.enabled": "false",
               "podman.engineOptions": "'--runtime runc --cgroup-manager cgroupfs'",
               "process.container": None, "process.'withName:CFRNA_.*'.container": None,
               "env.NUMBA_CACHE_DIR": "'/opt/cfrna/numba-cache'"},
    "singularity": {"singularity.enabled": "true", "singularity.autoMounts": "true", "docker.enabled": "false",
                    "params.container_image": "'docker://cfrna:0.1.0'",
                    "process.'withName:CFRNA_.*'.container": "{ params.container_image }"},
    # conda: each module's own environment.yml (no pipeline-wide override)
    "conda": {"conda.enabled": "true", "docker.enabled": "false", "singularity.enabled": "false",
              "process.conda": None, "process.'withName:CFRNA_.*'.conda": None},
}


def test_every_profile_has_an_expectation():
    import re

    block = (ROOT / "nextflow.config").read_text().split("profiles {", 1)[1].split("\n}", 1)[0]
    declared = set(re.findall(r"^\s+(\w+)\s+\{", block, re.M))
    assert declared == set(PROFILE_EXPECT) - {None}, "a profile without a resolved-config check (PROFILE_EXPECT)"


@pytest.mark.nextflow
@pytest.mark.slow
def test_resolved_config_of_every_profile():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        resolved = dict(zip(PROFILE_EXPECT, pool.map(nf_config, PROFILE_EXPECT), strict=True))
    problems = []
    for profile, want in PROFILE_EXPECT.items():
        got = resolved[profile]
        for key, value in want.items():
            if got.get(key) != value:
                problems.append(f"-profile {profile}: {key} = {got.get(key)} (want {value})")
        # a profile never leaves the environment of another one switched on
        on = [k for k in ("conda.enabled", "docker.enabled", "podman.enabled", "singularity.enabled")
              if got.get(k) == "true"]
        if len(on) > 1:
            problems.append(f"-profile {profile}: {on} all enabled")
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- Nextflow: stubs and errors


@pytest.fixture(scope="module")
def stub_inputs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("nf_stub")
    (d / "fq").mkdir()
    for s in ("A", "B1", "B2"):
        (d / "fq" / f"{s}.fastq.gz").write_bytes(b"x")
    (d / "sheet.csv").write_text(
        "sample,patient_id,visit_month,arm,flare,fastq_1,fastq_2,strandedness\n"
        f"A,P1,0,steroid_tapering,flare,{d}/fq/A.fastq.gz,,auto\n"
        f"B,P2,0,steroid_maintenance,no_flare,{d}/fq/B1.fastq.gz,{d}/fq/B2.fastq.gz,reverse\n")
    for name in ("g.fa", "g.gtf", "c.csv"):
        (d / name).write_text("x\n")
    return d


@pytest.mark.nextflow
def test_stub_run_builds_the_output_tree(stub_inputs):
    d = stub_inputs
    out = d / "out"
    run_nextflow(d, "-stub-run", "--input", "sheet.csv", "--fasta", "g.fa", "--gtf", "g.gtf",
                 "--contrasts", "c.csv", "--outdir", str(out))
    files = tree(out)
    for f in ("trimmed/A_1.trimmed.fastq.gz", "trimmed/B_2.trimmed.fastq.gz", "trimmed/A.trim.json",
              "alignment/A.bam", "alignment/B.bam.bai", "alignment/B.align.json",
              "counts/A.counts.tsv", "counts/B.counts.tsv.summary", "counts/B.counts.tsv.stats.json",
              "qc/qc_summary.tsv", "matrix/gene_counts.tsv", "matrix/samples.tsv", "matrix/cfrna.h5ad",
              "report/index.html", "pathways/signature_scores.tsv"):
        assert f in files, f"{f} not published"
    info = {p.name for p in (out / "pipeline_info").iterdir()}
    assert {"params.json", "software_versions.yml", "input_checksums.tsv", "nf_process_versions.yml"} <= info
    # the versions topic of every module, one block per process (eval outputs run after the stubs too)
    import cfrna

    versions = (out / "pipeline_info" / "nf_process_versions.yml").read_text()
    for proc in ("CFRNA_VALIDATE", "CFRNA_TRIM", "CFRNA_ALIGN", "CFRNA_COUNT", "CFRNA_QC", "CFRNA_REPORT"):
        assert f"{proc}:\n    cfrna: {cfrna.__version__}\n" in versions, f"{proc} missing:\n{versions}"
    assert "CFRNA_ALIGN:\n    cfrna: " in versions and "    mappy: " in versions
    assert "Nextflow: 24." in versions
    assert any(n.startswith("execution_trace_") for n in info)
    trace = latest_trace(out)
    assert set(trace["status"]) == {"COMPLETED"}
    # per-sample tasks once per sample, cohort tasks once
    names = trace["name"].str.replace(r" \(.*\)$", "", regex=True).str.split(":").str[-1]
    assert (names == "CFRNA_COUNT").sum() == 2
    assert (names == "CFRNA_INDEX").sum() == 1
    assert (names == "CFRNA_QC").sum() == 1


@pytest.mark.nextflow
def test_missing_required_params_is_one_clear_error(tmp_path):
    proc = run_nextflow(tmp_path, "--outdir", str(tmp_path / "o"), check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "--input is required" in text
    assert "--fasta is required" in text


@pytest.mark.nextflow
def test_bad_aligner_is_rejected(tmp_path, stub_inputs):
    d = stub_inputs
    proc = run_nextflow(tmp_path, "-stub-run", "--input", str(d / "sheet.csv"), "--fasta", str(d / "g.fa"),
                        "--gtf", str(d / "g.gtf"), "--aligner", "bowtie", "--outdir", str(tmp_path / "o"),
                        check=False)
    assert proc.returncode != 0
    assert "--aligner must be mappy or star" in proc.stdout + proc.stderr


@pytest.mark.nextflow
def test_input_with_simulate_is_rejected(tmp_path, stub_inputs):
    proc = run_nextflow(tmp_path, "-stub-run", "-profile", "test", "--input", str(stub_inputs / "sheet.csv"),
                        "--outdir", str(tmp_path / "o"), check=False)
    assert proc.returncode != 0
    assert "add --simulate false" in proc.stdout + proc.stderr


@pytest.mark.nextflow
def test_stub_run_of_the_test_profile(tmp_path):
    # the simulate stub writes a samplesheet of --sim_samples rows: every per-sample task runs; an
    # unknown parameter with --validate_params false is a warning, not an error
    out = tmp_path / "o"
    proc = run_nextflow(tmp_path, "-stub-run", "-profile", "test", "--sim_samples", "4", "--outdir", str(out),
                        "--validate_params", "false", "--site_option", "x")
    log = (tmp_path / ".nextflow.log").read_text()  # (-q hides warnings from the console)
    assert "WARN" in log and "unknown parameter(s): --site_option" in log + proc.stdout + proc.stderr
    files = tree(out)
    for sid in ("s01", "s02", "s03", "s04"):
        for f in (f"trimmed/{sid}.trim.json", f"alignment/{sid}.bam", f"counts/{sid}.counts.tsv"):
            assert f in files, f"{f} not published"
    for f in ("qc/qc_summary.tsv", "matrix/gene_counts.tsv", "de/design.tsv", "pathways/signature_scores.tsv",
              "report/index.html", "matrix/cfrna.h5ad"):
        assert f in files, f"{f} not published"
    trace = latest_trace(out)
    assert set(trace["status"]) == {"COMPLETED"}
    names = trace["name"].str.replace(r" \(.*\)$", "", regex=True).str.split(":").str[-1]
    assert (names == "CFRNA_ALIGN").sum() == 4


@pytest.mark.nextflow
def test_params_are_checked_against_the_schema_at_start(tmp_path):
    proc = run_nextflow(tmp_path, "-stub-run", "-profile", "test", "--outdir", str(tmp_path / "o"),
                        "--sim_samles", "3", "--max-cpus", "3", "--min_mapq", "-1", "--skip_trim", "maybe",
                        "--sim_reads", "many", "--max_memory", "lots", "--publish_dir_mode", "copy2",
                        "--gene_sets", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    for msg in ("unknown parameter(s): --sim_samles (did you mean --sim_samples?), --max-cpus (did you mean --max_cpus?)",
                "--min_mapq must be >= 0, not -1",
                "--skip_trim must be true or false, not 'maybe'",
                "--sim_reads must be an integer, not 'many'",
                "--max_memory 'lots' does not match",
                "--publish_dir_mode must be copy, copyNoFollow, link, rellink, symlink or move, not 'copy2'",
                "--gene_sets needs a value"):
        assert msg in text, f"{msg!r} not reported:\n{text[-3000:]}"
    # reported before any task: no task in the work folder or in the trace
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())
    for trace in (tmp_path / "o" / "pipeline_info").glob("execution_trace_*"):
        assert len(trace.read_text().splitlines()) <= 1, "a task ran before the parameter check"


@pytest.mark.nextflow
def test_missing_input_file_is_reported_at_start(tmp_path, stub_inputs):
    d = stub_inputs
    proc = run_nextflow(tmp_path, "-stub-run", "--input", str(d / "nope.csv"), "--fasta", str(d / "g.fa"),
                        "--gtf", str(d / "g.gtf"), "--outdir", str(tmp_path / "o"), check=False)
    assert proc.returncode != 0
    assert f"--input: {d / 'nope.csv'} does not exist" in proc.stdout + proc.stderr


# ----------------------------------------------------------------------------- Nextflow: real runs


@pytest.fixture(scope="session")
def nf_test_run(tmp_path_factory) -> dict:
    """One complete `nextflow run . -profile test` (simulated cohort), shared by the tests below."""
    base = tmp_path_factory.mktemp("nf_test_run")
    out = base / "results"
    t0 = time.time()
    proc = run_nextflow(base, "-profile", "test", "--outdir", str(out), "-w", str(base / "work"))
    # the trace of this run (later -resume runs in the same folder add their own)
    return {"base": base, "out": out, "seconds": time.time() - t0, "proc": proc, "trace": latest_trace(out)}


@pytest.fixture(scope="session")
def cfrna_run_ref(nf_test_run, tmp_path_factory) -> Path:
    """`cfrna run` on the cohort that the Nextflow test run simulated (published in test_cohort/)."""
    cohort = nf_test_run["out"] / "test_cohort"
    out = tmp_path_factory.mktemp("cfrna_run") / "results"
    env = task_env()
    env["CFRNA_INDEX_CACHE"] = str(out.parent / "index")
    cmd = [str(VENV_BIN / "cfrna"), "run", "--samplesheet", str(cohort / "samplesheet.csv"),
           "--fasta", str(cohort / "genome.fa"), "--gtf", str(cohort / "genes.gtf"),
           "--contrasts", str(cohort / "contrasts.csv"), "--outdir", str(out), "--threads", "2", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=NF_TIMEOUT)
    assert proc.returncode == 0, f"cfrna run failed:\n{proc.stderr[-4000:]}"
    return out


@pytest.mark.nextflow
@pytest.mark.slow
def test_profile_test_succeeds(nf_test_run):
    out = nf_test_run["out"]
    trace = nf_test_run["trace"]
    assert set(trace["status"]) == {"COMPLETED"}, trace[["name", "status"]].to_string()
    assert (out / "report" / "index.html").stat().st_size > 0
    assert (out / "matrix" / "cfrna.h5ad").stat().st_size > 0
    n = len(list((out / "test_cohort" / "fastq").glob("*.fastq.gz")))
    assert n == 6
    assert len(list((out / "counts").glob("*.counts.tsv"))) == n
    params = json.loads((out / "pipeline_info" / "params.json").read_text())
    assert params["params"]["simulate"] is True


@pytest.mark.nextflow
@pytest.mark.slow
def test_same_output_tree_and_results_as_cfrna_run(nf_test_run, cfrna_run_ref):
    nf_out, ref = nf_test_run["out"], cfrna_run_ref
    assert tree(nf_out) == tree(ref), (
        f"only Nextflow: {sorted(tree(nf_out) - tree(ref))}; only cfrna run: {sorted(tree(ref) - tree(nf_out))}")
    assert_same_results(nf_out, ref)
    # provenance written by the same code: identical for identical inputs and software
    for name in ("input_checksums.tsv", "software_versions.yml"):
        assert (nf_out / "pipeline_info" / name).read_bytes() == (ref / "pipeline_info" / name).read_bytes(), name


@pytest.mark.nextflow
@pytest.mark.slow
def test_qc_failing_sample_does_not_stop_the_others(nf_test_run):
    out = nf_test_run["out"]
    qc = pd.read_csv(out / "qc" / "qc_summary.tsv", sep="\t", dtype={"sample": str})
    assert len(qc) == 6, "every sample reaches QC"
    failed = qc[qc["status"] == "fail"]
    if failed.empty:
        pytest.fail("the simulated test cohort has no QC-failing sample; this test needs one")
    assert failed["excluded"].astype(str).str.lower().eq("true").all()
    counts = pd.read_csv(out / "matrix" / "gene_counts.tsv", sep="\t", nrows=1)
    assert set(qc["sample"]) <= set(counts.columns), "failed samples stay in the matrix (flagged, not dropped)"
    design = pd.read_csv(next((out / "de").glob("design.tsv")), sep="\t")
    assert not set(failed["sample"]) & set(design.iloc[:, 0].astype(str)), "failed samples excluded from DE"
    assert list((out / "de").glob("*.deseq2.tsv")), "DE still ran on the remaining samples"


@pytest.mark.nextflow
@pytest.mark.slow
def test_resume_after_complete_run_executes_nothing(nf_test_run):
    base, out = nf_test_run["base"], nf_test_run["out"]
    run_nextflow(base, "-profile", "test", "--outdir", str(out), "-w", str(base / "work"), "-resume")
    trace = latest_trace(out)
    assert len(trace) > 10
    assert set(trace["status"]) == {"CACHED"}, trace[trace["status"] != "CACHED"][["name", "status"]].to_string()


@pytest.mark.nextflow
@pytest.mark.slow
def test_resume_after_kill_reruns_only_unfinished_tasks(nf_test_run, tmp_path):
    base = tmp_path
    out = base / "results"
    cmd = nf_command("-profile", "test", "--outdir", str(out), "-w", str(base / "work"))
    proc = subprocess.Popen(cmd, cwd=base, env=task_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + NF_TIMEOUT
        while time.time() < deadline and proc.poll() is None:
            if list((out / "counts").glob("*.counts.tsv")):
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before the first COUNT was published"
        done_before = {p.name for p in (out / "counts").glob("*.counts.tsv")}
        time.sleep(3)  # let Nextflow's cache writer record those tasks (it is asynchronous)
        os.killpg(proc.pid, signal.SIGKILL)  # the JVM and every task it started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "report" / "index.html").exists()
    # a table of an earlier run in the same --outdir: the report task reads only its staged inputs
    stale = out / "de" / "stale_contrast.deseq2.tsv"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_text("gene_id\tbaseMean\tlog2FoldChange\tpvalue\tpadj\nG1\t1\t0\t1\t1\n")

    run_nextflow(base, "-profile", "test", "--outdir", str(out), "-w", str(base / "work"), "-resume")
    assert "stale_contrast" not in (out / "report" / "index.html").read_text(encoding="utf-8")
    assert stale.exists(), "publishDir never deletes (docs/usage.md: reruns into an old --outdir)"
    stale.unlink()
    trace = latest_trace(out)
    status = dict(zip(trace["name"], trace["status"], strict=True))
    assert set(status.values()) <= {"CACHED", "COMPLETED"}
    cached = {n for n, s in status.items() if s == "CACHED"}
    rerun = {n for n, s in status.items() if s == "COMPLETED"}
    assert "CFRNA:CFRNA_SIMULATE (n=6)" in cached
    for f in done_before:
        sid = f.removesuffix(".counts.tsv")
        for step in ("CFRNA_TRIM", "CFRNA_ALIGN", "CFRNA_COUNT"):
            assert f"CFRNA:SAMPLE_COUNTS:{step} ({sid})" in cached, f"{step} of {sid} ran again"
    assert "CFRNA:CFRNA_REPORT (cohort)" in rerun and "CFRNA:CFRNA_QC (cohort)" in rerun
    assert_same_results(out, nf_test_run["out"])


# ----------------------------------------------------------------------------- Podman


PODMAN_IMAGE = "localhost/cfrna:0.1.0"


@pytest.fixture(scope="module")
def podman_image() -> str:
    """The image of scripts/build_image.sh. Building it takes 10-30 min, more than CI's budget: this
    is a documented check (docs/usage.md, Containers; `make test-container`), outside `make test`."""
    found = None
    if shutil.which("podman"):
        found = subprocess.run(["podman", "image", "exists", PODMAN_IMAGE], capture_output=True, timeout=60)
    if found is None or found.returncode != 0:
        msg = (f"{PODMAN_IMAGE} not built (bash scripts/build_image.sh)" if found is not None
               else "podman not installed (apt-get install podman runc)")
        if IN_CI:
            pytest.fail(f"CI=true: {msg}")
        pytest.skip(msg)
    return PODMAN_IMAGE


@pytest.mark.container
@pytest.mark.nextflow
@pytest.mark.slow
def test_profile_test_under_podman(podman_image, nf_test_run, tmp_path):
    out = tmp_path / "results"
    env = task_env()
    # the tasks must use the image's cfrna, not this venv's: nothing of the host's PATH is needed
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != VENV_BIN)
    cmd = nf_command("-profile", "test,podman", "--outdir", str(out), "-w", str(tmp_path / "work"))
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=NF_TIMEOUT)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    trace = latest_trace(out)
    assert set(trace["status"]) == {"COMPLETED"}
    # every task ran in the container: its .command.run calls podman with the image
    for workdir in trace["workdir"]:
        run = (Path(workdir) / ".command.run").read_text()
        assert "podman" in run and podman_image in run, f"{workdir}: not run in {podman_image}"
    assert tree(out) == tree(nf_test_run["out"])
    assert_same_results(out, nf_test_run["out"])
    for name in ("input_checksums.tsv",):
        assert (out / "pipeline_info" / name).read_bytes() == (nf_test_run["out"] / "pipeline_info" / name).read_bytes()


# ----------------------------------------------------------------------------- SLURM


@pytest.fixture(scope="module")
def local_slurm(tmp_path_factory):
    """The project's single-node SLURM (scripts/slurm); needs root and the Debian slurm packages."""
    missing = [b for b in ("slurmctld", "slurmd", "munged", "sbatch") if shutil.which(b) is None]
    if missing or os.geteuid() != 0:
        msg = f"local SLURM unavailable ({'missing ' + ', '.join(missing) if missing else 'not root'})"
        if IN_CI:
            pytest.fail(f"CI=true: {msg}")
        pytest.skip(msg)
    home = tmp_path_factory.mktemp("slurm")
    env = dict(os.environ, CFRNA_SLURM_HOME=str(home))
    start = subprocess.run(["bash", str(ROOT / "scripts" / "slurm" / "start_slurm.sh")], env=env,
                           capture_output=True, text=True, timeout=120)
    assert start.returncode == 0, start.stderr
    try:
        yield {"home": home, "conf": home / "etc" / "slurm.conf"}
    finally:
        subprocess.run(["bash", str(ROOT / "scripts" / "slurm" / "stop_slurm.sh")], env=env,
                       capture_output=True, text=True, timeout=120)


@pytest.mark.nextflow
@pytest.mark.slurm
@pytest.mark.slow
def test_profile_test_on_local_slurm(local_slurm, nf_test_run, tmp_path):
    out = tmp_path / "results"
    os.environ["SLURM_CONF"] = str(local_slurm["conf"])
    try:
        run_nextflow(tmp_path, "-profile", "test,slurm", "--outdir", str(out), "-w", str(tmp_path / "work"))
    finally:
        os.environ.pop("SLURM_CONF", None)
    trace = latest_trace(out)
    assert set(trace["status"]) == {"COMPLETED"}
    ids = set(trace["native_id"])
    assert all(i.isdigit() for i in ids), f"native ids are not SLURM job ids: {ids}"
    # SLURM's own completion log lists every job Nextflow submitted, all COMPLETED
    jobcomp = (local_slurm["home"] / "log" / "jobcomp.txt").read_text().splitlines()
    done = {}
    for line in jobcomp:
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        done[fields.get("JobId")] = fields.get("JobState")
    for i in ids:
        assert done.get(i) == "COMPLETED", f"job {i} not completed by SLURM ({done.get(i)})"
    assert tree(out) == tree(nf_test_run["out"])
    assert_same_results(out, nf_test_run["out"])


def test_install_script_uses_a_nextflow_already_on_path(tmp_path):
    fake = tmp_path / "bin" / "nextflow"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho '      version 24.10.9 build 1'\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
               NXF_INSTALL_DIR=str(tmp_path / "nf"))
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "install_nextflow.sh")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"using nextflow on PATH: {fake}" in proc.stdout
    assert not (tmp_path / "nf").exists(), "nothing is built when nextflow is on PATH"


@pytest.mark.nextflow
def test_install_script_is_idempotent():
    local = ROOT / "tools" / "nextflow" / "bin" / "nextflow"
    if not local.exists():
        nextflow_bin()  # skip (or fail under CI) with the usual message
        pytest.skip("Nextflow is on PATH, not installed by the script")
    env = dict(os.environ, NXF_FORCE_MAVEN="1")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "install_nextflow.sh")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "already installed" in proc.stdout
    version = subprocess.run([str(local), "-version"], env=task_env(), capture_output=True, text=True, timeout=120)
    assert "version 24.10" in version.stdout


def test_slurm_scripts_are_pid_file_based():
    stop = (ROOT / "scripts" / "slurm" / "stop_slurm.sh").read_text()
    assert "pkill" not in stop and "killall" not in stop
    start = (ROOT / "scripts" / "slurm" / "start_slurm.sh").read_text()
    assert "CFRNA_SLURM_HOME" in start and "jobcomp" in start
