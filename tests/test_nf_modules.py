"""Every Nextflow module on its own: its harness (tests/nf/<module>/main.nf) run with -stub-run and for real,
outputs compared with a committed snapshot (tests/snapshots/nf_modules/<module>.json) and, for the real run,
with the same files of a `cfrna run` of the same inputs (a 4-sample simulated cohort made once per module run).

nf-test is not available offline, so pytest drives ``nextflow run``. One JVM start costs 10-20 s on a busy
machine: tests/nf/main.nf runs every harness in one Nextflow run, once with -stub-run and once for real;
the per-module tests then read that run's ``<outdir>/<module>/``. One harness also runs alone
(``test_a_harness_runs_alone``).

Snapshots: ``CFRNA_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_nf_modules.py -m nextflow``
rewrites them from the modules' own outputs, after the parity checks against ``cfrna run`` have passed
(a snapshot is never written from outputs that differ from ``cfrna run``'s). Golden values: file names
(stub and real runs), md5 of the files that are byte-reproducible for the fixed-seed cohort (gzip content
is hashed decompressed), the header line of the other tables, the top-level keys of JSON files, and the
tool versions the module reports on the ``versions`` topic.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import cfrna
from tests.conftest import ROOT
from tests.helpers.nextflow import VENV_BIN, nextflow_bin, task_env
from tests.helpers.tables import assert_tables_equal

MODULES_DIR = ROOT / "workflow" / "modules" / "local"
HARNESS = ROOT / "tests" / "nf"
SNAPSHOTS = ROOT / "tests" / "snapshots" / "nf_modules"
UPDATE = os.environ.get("CFRNA_UPDATE_SNAPSHOTS", "").lower() in ("1", "true", "yes")
MODULES = ("simulate", "validate", "provenance", "index", "trim", "align", "count", "qc", "matrix", "de",
           "pathways", "report")
HARNESS_SAMPLES = "s01,s02"
NF_TIMEOUT = 1800

#: per module, the published files whose bytes are reproducible (md5 in the snapshot); other tables keep
#: their header line, JSON files their keys, everything else its name
MD5: dict[str, tuple[str, ...]] = {
    "simulate": ("cohort/*.csv", "cohort/*.fa", "cohort/*.gtf", "cohort/fastq/*"),
    "trim": ("*.trimmed.fastq.gz",),
    "count": ("*.counts.tsv",),
    "matrix": ("matrix/gene_counts.tsv", "matrix/gene_annotation.tsv"),
}
#: folders whose content is another tool's layout (MultiQC's): the snapshot records the folder only
OPAQUE = ("qc/multiqc", "mappy_index")


# ----------------------------------------------------------------------------- helpers


def run_harness(cwd: Path, script: Path, inputs: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    cmd = [nextflow_bin(), "-q", "run", str(script), "-c", str(HARNESS / "nextflow.config"), "-ansi-log", "false",
           *[a for k, v in inputs.items() for a in (f"--{k}", v)], *args]
    proc = subprocess.run(cmd, cwd=cwd, env=task_env(), capture_output=True, text=True, timeout=NF_TIMEOUT)
    if proc.returncode != 0:
        log = (cwd / ".nextflow.log").read_text()[-6000:] if (cwd / ".nextflow.log").exists() else ""
        pytest.fail(f"{script.relative_to(ROOT)} exited {proc.returncode}\nSTDOUT:\n{proc.stdout[-3000:]}\n"
                    f"STDERR:\n{proc.stderr[-3000:]}\nLOG:\n{log}")
    return proc


def digest(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return hashlib.md5(data).hexdigest()


def published(outdir: Path) -> list[str]:
    """Relative names of the published files (an opaque folder counts as one entry)."""
    out = set()
    for p in outdir.rglob("*"):
        rel = p.relative_to(outdir).as_posix()
        opaque = next((o for o in OPAQUE if rel == o or rel.startswith(o + "/")), None)
        if opaque:
            out.add(opaque + "/")
        elif p.is_file():
            out.add(rel)
    return sorted(out)


def describe(module: str, outdir: Path) -> dict[str, dict[str, object]]:
    files: dict[str, dict[str, object]] = {}
    for rel in published(outdir):
        p = outdir / rel
        entry: dict[str, object] = {}
        if rel.endswith("/"):
            pass
        elif any(fnmatch(rel, pat) for pat in MD5.get(module, ())):
            entry["md5"] = digest(p)
        elif rel.endswith((".tsv", ".csv")):
            entry["header"] = p.read_text(encoding="utf-8").split("\n", 1)[0]
        elif rel.endswith(".json"):
            data = json.loads(p.read_text(encoding="utf-8"))
            entry["keys"] = sorted(data) if isinstance(data, dict) else type(data).__name__
        files[rel] = entry
    return files


def versions_of(outdir: Path) -> dict[str, dict[str, str]]:
    """versions.tsv of a harness run: module -> {tool: version} (one line per task, identical per module)."""
    out: dict[str, dict[str, str]] = {}
    for line in (outdir / "versions.tsv").read_text().splitlines():
        if not line.strip():
            continue
        process, tool, version = line.split("\t")
        module = process.split(":")[-1].removeprefix("CFRNA_").lower()
        seen = out.setdefault(module, {})
        assert seen.get(tool, version) == version, f"{module}: {tool} reported as {seen[tool]} and {version}"
        seen[tool] = version
    return out


def snapshot_check(module: str, kind: str, value: object) -> None:
    """Compare ``value`` with the snapshot's ``kind`` entry (or write it under CFRNA_UPDATE_SNAPSHOTS=1)."""
    path = SNAPSHOTS / f"{module}.json"
    snap = json.loads(path.read_text()) if path.exists() else {}
    if UPDATE:
        snap["_source"] = ("tests/test_nf_modules.py (CFRNA_UPDATE_SNAPSHOTS=1): outputs of tests/nf/main.nf on "
                           "the harness_inputs cohort (cfrna simulate seed 1, 4 samples x 2,000 reads, 240 genes; "
                           f"samples {HARNESS_SAMPLES} for per-sample modules), after the parity checks against "
                           "that cfrna run passed")
        snap[kind] = value
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(snap, indent=2, sort_keys=True) + "\n")
        return
    assert kind in snap, f"{path.relative_to(ROOT)} has no {kind!r} (CFRNA_UPDATE_SNAPSHOTS=1 writes it)"
    assert value == snap[kind], (f"{module} {kind} differs from {path.relative_to(ROOT)} "
                                 f"(CFRNA_UPDATE_SNAPSHOTS=1 rewrites it if the change is intended):\n"
                                 f"got:  {json.dumps(value, sort_keys=True)}\nwant: {json.dumps(snap[kind], sort_keys=True)}")


def json_equal(a: Path, b: Path, *, drop: tuple[str, ...] = ()) -> None:
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    for k in drop:
        da.pop(k, None), db.pop(k, None)
    assert da == db, f"{a.name} differs from cfrna run's"


# ----------------------------------------------------------------------------- parity with `cfrna run`


def _parity_simulate(out: Path, ref: Path, ctx: dict) -> None:
    # the module is `cfrna simulate`: the same arguments give the same bytes
    direct = ctx["tmp"] / "simulate_direct"
    proc = subprocess.run([str(VENV_BIN / "cfrna"), "simulate", "--outdir", str(direct), "--samples", "4",
                           "--reads-per-sample", "300", "--seed", "7"], env=task_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for rel in ("samplesheet.csv", "contrasts.csv", "genome.fa", "genes.gtf", "fastq/s01_R1.fastq.gz"):
        assert digest(out / "cohort" / rel) == digest(direct / rel), f"cohort/{rel} differs from cfrna simulate's"


def _parity_validate(out: Path, ref: Path, ctx: dict) -> None:
    valid = pd.read_csv(out / "samplesheet.valid.csv", dtype=str)
    sheet = pd.read_csv(ctx["cohort"] / "samplesheet.csv", dtype=str)
    assert valid["sample"].tolist() == sheet["sample"].tolist()
    for fq in valid["fastq_1"]:
        assert Path(fq).is_absolute() and Path(fq).is_file(), f"{fq}: not an absolute path of an existing file"


def _parity_provenance(out: Path, ref: Path, ctx: dict) -> None:
    for name in ("software_versions.yml", "input_checksums.tsv"):
        assert (out / "pipeline_info" / name).read_bytes() == (ref / "pipeline_info" / name).read_bytes(), name
    assert json.loads((out / "pipeline_info" / "params.json").read_text())["params"] == {"aligner": "mappy"}


def _parity_index(out: Path, ref: Path, ctx: dict) -> None:
    built = sorted(p.name for p in (out / "mappy_index").iterdir())
    cached = sorted(p.name for p in ctx["index"].iterdir())
    assert built == cached, f"index files {built} vs cfrna run's {cached}"


def _parity_trim(out: Path, ref: Path, ctx: dict) -> None:
    for sid in ctx["samples"]:
        assert digest(out / f"{sid}_1.trimmed.fastq.gz") == digest(ref / "trimmed" / f"{sid}_1.trimmed.fastq.gz")
        json_equal(out / f"{sid}.trim.json", ref / "trimmed" / f"{sid}.trim.json")


def _parity_align(out: Path, ref: Path, ctx: dict) -> None:
    import pysam
    for sid in ctx["samples"]:
        json_equal(out / f"{sid}.align.json", ref / "alignment" / f"{sid}.align.json", drop=("index",))
        reads = [[str(r) for r in pysam.AlignmentFile(str(p), "rb")] for p in
                 (out / f"{sid}.bam", ref / "alignment" / f"{sid}.bam")]
        assert reads[0] == reads[1], f"{sid}.bam: records differ from cfrna run's"


def _parity_count(out: Path, ref: Path, ctx: dict) -> None:
    for sid in ctx["samples"]:
        assert (out / f"{sid}.counts.tsv").read_bytes() == (ref / "counts" / f"{sid}.counts.tsv").read_bytes()
        json_equal(out / f"{sid}.counts.tsv.stats.json", ref / "counts" / f"{sid}.counts.tsv.stats.json")


def _parity_qc(out: Path, ref: Path, ctx: dict) -> None:
    assert_tables_equal(out / "qc" / "qc_summary.tsv", ref / "qc" / "qc_summary.tsv")
    for f in sorted((out / "qc").glob("*.qc.json")):
        json_equal(f, ref / "qc" / f.name)


def _parity_matrix(out: Path, ref: Path, ctx: dict) -> None:
    assert (out / "matrix" / "gene_counts.tsv").read_bytes() == (ref / "matrix" / "gene_counts.tsv").read_bytes()
    assert_tables_equal(out / "matrix" / "samples.tsv", ref / "matrix" / "samples.tsv")


def _parity_de(out: Path, ref: Path, ctx: dict) -> None:
    tables = sorted((out / "de").glob("*.deseq2.tsv"))
    assert [t.name for t in tables] == sorted(p.name for p in (ref / "de").glob("*.deseq2.tsv"))
    for t in tables:
        assert_tables_equal(t, ref / "de" / t.name)
    # the AnnData it writes anew (its staged input is never an output) holds the DE slots of `cfrna run`'s
    a, b = _carrier(out / "cfrna.h5ad"), _carrier(ref / "matrix" / "cfrna.h5ad")
    assert list(a.uns["de"]) == list(b.uns["de"]) and sorted(a.varm) == sorted(b.varm)
    for layer in ("normalized", "vst"):
        np.testing.assert_allclose(a.layers[layer], b.layers[layer], rtol=1e-6, err_msg=layer)
    np.testing.assert_allclose(a.obs["size_factor"], b.obs["size_factor"], rtol=1e-6)


def _parity_pathways(out: Path, ref: Path, ctx: dict) -> None:
    assert_tables_equal(out / "pathways" / "signature_scores.tsv", ref / "pathways" / "signature_scores.tsv")
    for t in sorted((out / "pathways").glob("*.gsea.tsv")):
        assert_tables_equal(t, ref / "pathways" / t.name, rtol=1e-4)
    a, b = _carrier(out / "cfrna.h5ad"), _carrier(ref / "matrix" / "cfrna.h5ad")
    assert sorted(a.uns["gsea"]) == sorted(b.uns["gsea"]) and sorted(a.uns["de"]) == sorted(b.uns["de"])
    np.testing.assert_allclose(a.obsm["signature_scores"], b.obsm["signature_scores"], rtol=1e-6)


def _carrier(path: Path):
    import anndata as ad

    return ad.read_h5ad(path)


def _report_payload(html: Path) -> dict:
    m = re.search(r'<script type="application/json" id="cfrna-data">(.*?)</script>', html.read_text(encoding="utf-8"), re.S)
    assert m, f"{html}: no report payload"
    return json.loads(m.group(1))


def _parity_report(out: Path, ref: Path, ctx: dict) -> None:
    html = (out / "report" / "index.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    for contrast in pd.read_csv(ctx["cohort"] / "contrasts.csv", dtype=str)["id"]:
        assert contrast in html, f"contrast {contrast} not in the report"
    # the same report as `cfrna run`'s: its data (tables, QC, provenance) equal, but for the time it was made
    got, want = _report_payload(out / "report" / "index.html"), _report_payload(ref / "report" / "index.html")
    got["meta"].pop("generated"), want["meta"].pop("generated")
    assert sorted(got) == sorted(want)
    for key in want:
        assert got[key] == want[key], f"report data {key!r} differs from cfrna run's"
    # the AnnData with the provenance: what `cfrna run`'s holds
    a, b = _carrier(out / "cfrna.h5ad"), _carrier(ref / "matrix" / "cfrna.h5ad")
    assert sorted(a.uns) == sorted(b.uns) and sorted(a.layers) == sorted(b.layers) and a.shape == b.shape
    def as_json(value) -> str:  # h5ad dicts hold numpy arrays and scalars
        return json.dumps(value, sort_keys=True, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))

    assert as_json(a.uns["provenance"]["params"]) == as_json(b.uns["provenance"]["params"])
    assert as_json(a.uns["provenance"]["software_versions"]) == as_json(b.uns["provenance"]["software_versions"])


PARITY = {name[len("_parity_"):]: fn for name, fn in globals().items() if name.startswith("_parity_")}


# ----------------------------------------------------------------------------- fast checks (no Nextflow)


def _module_text(module: str) -> str:
    return (MODULES_DIR / module / "main.nf").read_text()


def _declared(text: str, section: str, nxt: str) -> list[str]:
    return re.search(rf"\n    {section}:\n(.*?)\n    {nxt}:", text, re.S).group(1).splitlines()


def _input_names(text: str) -> list[list[str]]:
    """Input channels of a process: names of each tuple's elements (one name for a plain input)."""
    out = []
    for line in _declared(text, "input", "output"):
        code = line.split("//", 1)[0].strip()
        if not code:
            continue
        if code.startswith("tuple "):
            out.append(re.findall(r"\b(?:val|path)\((\w+)", code))
        else:
            out.append([code.split()[1].rstrip(",")])
    return out


def _emits(text: str) -> list[str]:
    return re.findall(r"emit:\s*(\w+)", "\n".join(_declared(text, "output", "when")))


def test_every_module_has_a_harness_and_a_snapshot():
    on_disk = {p.name for p in MODULES_DIR.iterdir() if (p / "main.nf").is_file()}
    assert on_disk == set(MODULES), f"modules without a test: {on_disk - set(MODULES)}; gone: {set(MODULES) - on_disk}"
    combined = (HARNESS / "main.nf").read_text()
    for m in MODULES:
        harness = (HARNESS / m / "main.nf").read_text()
        proc = f"CFRNA_{m.upper()}"
        assert f"include {{ {proc} }} from '../../../workflow/modules/local/{m}/main'" in harness
        assert f"workflow TEST_{proc} {{" in harness and f"TEST_{proc}()" in harness
        assert f"include {{ TEST_{proc}" in combined and f"if ('{m}' in wanted)" in combined
        if not UPDATE:
            snap = json.loads((SNAPSHOTS / f"{m}.json").read_text())
            assert {"_source", "stub", "real", "versions"} <= set(snap), f"{m}.json: incomplete snapshot"


@pytest.mark.parametrize("module", MODULES)
def test_module_is_written_as_nf_core_writes_them(module):
    text = _module_text(module)
    proc = f"CFRNA_{module.upper()}"
    assert re.match(rf"process {proc} {{\n", text)
    # one image for every module, named after the package version (scripts/build_image.sh builds it)
    assert f"    container 'localhost/cfrna:{cfrna.__version__}'\n" in text
    assert '    conda "${moduleDir}/environment.yml"\n' in text
    # versions: on the topic, by eval; no versions.yml heredoc in the script or the stub
    assert "END_VERSIONS" not in text and not re.search(r"(?<![\w_])versions\.yml", text)
    assert re.search(r"""tuple val\("\$\{task\.process\}"\), val\('cfrna'\), eval\('cfrna --version \| sed "s/\^cfrna //"'\), """
                     r"emit: versions_cfrna, topic: versions", text)
    # reference files come as [ meta, file ] tuples
    for ref in ("gtf", "fasta"):
        for line in _declared(text, "input", "output"):
            if re.search(rf"path\(?\s*{ref}\b", line):
                assert re.search(rf"tuple val\(meta\d?\), path\({ref}\)", line), f"{module}: {ref} not a [meta, {ref}] tuple"
    # a module reads no params and calls the cfrna CLI itself (not the pipeline's bin/ shims)
    assert not re.search(r"(?<![\w/.])params\.", text), f"{module}/main.nf reads params"
    assert f"cfrna {module}" in text and f"cfrna-{module}" not in text


@pytest.mark.parametrize("module", MODULES)
def test_meta_yml_describes_the_module(module):
    text = _module_text(module)
    meta = yaml.safe_load((MODULES_DIR / module / "meta.yml").read_text())
    assert meta["name"] == f"cfrna_{module}"
    assert "cfrna" in meta["tools"][0] and meta["tools"][0]["cfrna"]["licence"] == ["MIT"]
    # inputs: one entry per channel, tuples as lists, in main.nf's order and names
    got = [[next(iter(e)) for e in ch] if isinstance(ch, list) else [next(iter(ch))] for ch in meta["input"]]
    assert got == _input_names(text), f"meta.yml inputs {got} != main.nf {_input_names(text)}"
    # outputs: keyed by emit name, in order
    assert list(meta["output"]) == _emits(text)
    topic = set(re.findall(r"emit:\s*(\w+), topic: versions", text))
    assert topic, f"{module}: no output on the versions topic"
    for emit, spec in meta["output"].items():
        if emit in topic:
            (proc, tool, ev), = spec
            assert next(iter(proc)) == "${task.process}"
            assert next(iter(ev.values()))["type"] == "eval"
            assert next(iter(ev)) in text, f"{emit}: eval expression differs from main.nf"
    assert [next(iter(e)) for e in meta["topics"]["versions"][0]] == ["${task.process}", "tool", "version"]


def _pyproject_dependencies() -> list[str]:
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return [re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0].lower() for d in deps]


@pytest.mark.parametrize("module", MODULES)
def test_environment_yml_can_run_the_module(module):
    path = MODULES_DIR / module / "environment.yml"
    env = yaml.safe_load(path.read_text())
    assert env["channels"] == ["conda-forge", "bioconda"]
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    names = {}
    for d in deps:
        m = re.fullmatch(r"(conda-forge|bioconda)::([\w.-]+)(?:=([\w.]+))?", d)
        assert m, f"{module}: {d!r} is not channel::name=version"
        names[m.group(2).lower()] = m.group(3)
    pinned_pip = {re.split("==", p)[0].lower(): p for p in pip if "==" in p}
    # every dependency cfrna declares is installed by conda (pinned) or pinned for pip: pip adds cfrna only
    for dep in _pyproject_dependencies():
        assert names.get(dep) or dep in pinned_pip, f"{module}/environment.yml: {dep} missing or unpinned"
    assert names.get("python") == "3.11" and "pip" in names
    # cfrna itself: the repository root, resolved against the file's folder (conda runs pip there)
    local = [p for p in pip if "==" not in p]
    assert len(local) == 1, f"{module}: one local pip entry expected, got {local}"
    root = (path.parent / local[0]).resolve()
    assert root == ROOT and 'name = "cfrna"' in (root / "pyproject.toml").read_text()
    # the modules that run STAR have it (and samtools)
    if module in ("index", "align"):
        assert names.get("star") and names.get("samtools")


def test_environments_are_shared_where_the_modules_need_the_same_tools():
    # Nextflow caches a conda environment per file content: two environments, not twelve
    texts = {m: (MODULES_DIR / m / "environment.yml").read_text() for m in MODULES}
    assert len(set(texts.values())) == 2
    assert texts["index"] == texts["align"] and texts["count"] == texts["report"]


def test_image_name_is_the_one_build_image_sh_builds():
    script = (ROOT / "scripts" / "build_image.sh").read_text()
    assert "IMAGE=${CFRNA_IMAGE:-localhost/cfrna:$VERSION}" in script
    assert cfrna.__version__ in (ROOT / "nextflow.config").read_text()  # manifest.version


def test_publish_dirs_and_options_live_in_conf_modules_config():
    text = (ROOT / "conf" / "modules.config").read_text()
    for m in MODULES:
        assert f"CFRNA_{m.upper()}" in text, f"conf/modules.config: nothing for CFRNA_{m.upper()}"
    assert not list(MODULES_DIR.glob("*/nextflow.config")), "module options belong in conf/modules.config"


# ----------------------------------------------------------------------------- Nextflow runs


@pytest.fixture(scope="module")
def harness_inputs(tmp_path_factory) -> dict:
    """Inputs of the harnesses: a small simulated cohort (4 samples x 2,000 reads, 240 genes, seed 1), one
    `cfrna run` of it (every stage's outputs, the reference of the parity checks) and that run's mappy index."""
    base = tmp_path_factory.mktemp("nf_modules")
    cohort, results, index_dir = base / "cohort", base / "cfrna_run", base / "index"
    cfrna_cli = str(VENV_BIN / "cfrna")
    for cmd in ([cfrna_cli, "simulate", "--outdir", str(cohort), "--samples", "4", "--reads-per-sample", "2000",
                 "--genes", "240", "--seed", "1"],
                [cfrna_cli, "run", "--samplesheet", str(cohort / "samplesheet.csv"), "--fasta", str(cohort / "genome.fa"),
                 "--gtf", str(cohort / "genes.gtf"), "--contrasts", str(cohort / "contrasts.csv"), "--outdir",
                 str(results), "--threads", "2", "--no-progress", "--index-dir", str(index_dir)]):
        proc = subprocess.run(cmd, env=task_env(), capture_output=True, text=True, timeout=NF_TIMEOUT)
        assert proc.returncode == 0, f"{' '.join(cmd[:2])} failed:\n{proc.stderr[-3000:]}"
    index = sorted(index_dir.glob("mappy-*"))
    assert len(index) == 1, f"expected one mappy index in {index_dir}: {index}"
    return {"cohort": cohort, "results": results, "index": index[0], "samples": HARNESS_SAMPLES.split(","),
            "tmp": base}


def _params(ctx: dict) -> dict[str, str]:
    return {"cohort": str(ctx["cohort"]), "results": str(ctx["results"]), "index": str(ctx["index"]),
            "samples": HARNESS_SAMPLES}


@pytest.fixture(scope="module")
def stub_run(harness_inputs) -> Path:
    base = harness_inputs["tmp"] / "stub"
    run_harness(base, HARNESS / "main.nf", {**_params(harness_inputs), "outdir": str(base / "out")}, "-stub-run")
    return base / "out"


@pytest.fixture(scope="module")
def real_run(harness_inputs) -> Path:
    base = harness_inputs["tmp"] / "real"
    run_harness(base, HARNESS / "main.nf", {**_params(harness_inputs), "outdir": str(base / "out")})
    return base / "out"


@pytest.mark.nextflow
@pytest.mark.parametrize("module", MODULES)
def test_module_stub(module, stub_run):
    out = stub_run / module
    assert out.is_dir(), f"{module}: nothing published by the stub run"
    snapshot_check(module, "stub", published(out))
    # the stub reports versions too (eval runs after the stub script)
    assert versions_of(stub_run)[module]["cfrna"] == cfrna.__version__


@pytest.mark.nextflow
@pytest.mark.slow
@pytest.mark.parametrize("module", MODULES)
def test_module_real_run(module, real_run, harness_inputs):
    out = real_run / module
    assert out.is_dir(), f"{module}: nothing published by the real run"
    PARITY[module](out, harness_inputs["results"], harness_inputs)
    versions = versions_of(real_run)[module]
    assert versions["cfrna"] == cfrna.__version__
    snapshot_check(module, "real", describe(module, out))
    snapshot_check(module, "versions", versions)


@pytest.mark.nextflow
def test_a_harness_runs_alone(harness_inputs):
    base = harness_inputs["tmp"] / "alone"
    run_harness(base, HARNESS / "count" / "main.nf", {**_params(harness_inputs), "outdir": str(base / "out")},
                "-stub-run")
    assert published(base / "out" / "count") == sorted(
        f"{s}{suffix}" for s in HARNESS_SAMPLES.split(",")
        for suffix in (".counts.tsv", ".counts.tsv.stats.json", ".counts.tsv.summary"))


@pytest.mark.nextflow
def test_harness_refuses_an_unknown_module(harness_inputs):
    base = harness_inputs["tmp"] / "unknown"
    cmd = [nextflow_bin(), "-q", "run", str(HARNESS / "main.nf"), "-c", str(HARNESS / "nextflow.config"),
           "--modules", "count,cuont", "-stub-run", "--outdir", str(base / "out")]
    base.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(cmd, cwd=base, env=task_env(), capture_output=True, text=True, timeout=NF_TIMEOUT)
    assert proc.returncode != 0
    assert "unknown module(s) cuont" in proc.stdout + proc.stderr


@pytest.mark.nextflow
def test_container_image_option_replaces_the_modules_image(tmp_path):
    # `nextflow config` takes no --params: the value is set in a config read before the profile's
    # (the profile decides on params.container_image when it is parsed, as with --container_image)
    extra = tmp_path / "image.config"
    extra.write_text("params.container_image = 'registry.example/cfrna:9'\n"
                     f"includeConfig '{ROOT / 'conf' / 'profiles' / 'podman.config'}'\n")
    proc = subprocess.run([nextflow_bin(), "-c", str(extra), "config", "-flat", "-profile", "podman", str(ROOT)],
                          cwd=ROOT, env=task_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "process.'withName:CFRNA_.*'.container = 'registry.example/cfrna:9'" in proc.stdout
