"""Shared fixtures: external-tool policy, shared test data and cached simulated cohorts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CFRNA_SHARED", ROOT.parent / "shared")) / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".cache" / "numba"))
os.environ.setdefault("CFRNA_ANNOTATION_CACHE", str(ROOT / ".cache" / "annotation"))
os.environ.setdefault("MPLBACKEND", "Agg")


def require_tool(name: str) -> str:
    """Path of an external tool; skip when absent locally, fail when absent under CI=true."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not installed (install it, e.g. via .ci/run)"
        if IN_CI:
            pytest.fail(f"CI=true: {msg}")
        pytest.skip(msg)
    return path


def require_module(name: str):
    """Import and return a Python module; skip when it is missing locally, fail when missing under CI=true.

    Use it instead of ``pytest.importorskip`` (which skips in CI too) for modules that CI installs."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        msg = f"Python module {name} is not installed ({exc}; pip install it, e.g. via make env)"
        if IN_CI:
            pytest.fail(f"CI=true: {msg}")
        pytest.skip(msg)


def require_shared(*parts: str) -> Path:
    """A file of ../shared/data; skip when absent locally, fail under CI=true."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        if IN_CI:
            pytest.fail(f"CI=true: shared test data missing: {p}")
        pytest.skip(f"shared test data missing: {p}")
    return p


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.exists():
        if IN_CI:
            pytest.fail(f"CI=true: {SHARED} missing")
        pytest.skip(f"{SHARED} missing")
    return SHARED


def _cohort(tmp_path_factory, name: str, **kwargs) -> Path:
    from cfrna.simulate import simulate_cohort

    out = tmp_path_factory.mktemp(name)
    simulate_cohort(out, **kwargs)
    return out


@pytest.fixture(scope="session")
def sim_cohort(tmp_path_factory) -> Path:
    """The default tiny single-end cohort (12 samples)."""
    return _cohort(tmp_path_factory, "cohort_se", n_samples=12, reads_per_sample=20000, paired=False, seed=1)


@pytest.fixture(scope="session")
def sim_cohort_pe(tmp_path_factory) -> Path:
    """A tiny paired-end cohort (6 samples)."""
    return _cohort(tmp_path_factory, "cohort_pe", n_samples=6, reads_per_sample=10000, paired=True, seed=2)


@pytest.fixture(scope="session")
def pipeline_run_args(sim_cohort, tmp_path_factory) -> list[str]:
    """The ``cfrna run`` arguments of :func:`pipeline_run` (for a ``--resume`` of the same run)."""
    out = tmp_path_factory.mktemp("pipeline_run") / "results"
    index = tmp_path_factory.mktemp("pipeline_run_index")
    return ["run", "--samplesheet", str(sim_cohort / "samplesheet.csv"), "--fasta", str(sim_cohort / "genome.fa"),
            "--gtf", str(sim_cohort / "genes.gtf"), "--contrasts", str(sim_cohort / "contrasts.csv"),
            "--outdir", str(out), "--threads", "2", "--no-progress", "--index-dir", str(index)]


@pytest.fixture(scope="session")
def pipeline_run(pipeline_run_args) -> Path:
    """One real ``cfrna run`` of ``sim_cohort`` with its contrasts and the bundled gene sets, made once per
    test session (its results folder) and shared by the end-to-end, browser, AnnData and Nextflow-parity
    tests; tests must not modify it (copy it first). The one exception, test_pipeline_e2e's ``--resume``,
    recomputes nothing."""
    from cfrna.cli import main

    assert main(pipeline_run_args) == 0
    return Path(pipeline_run_args[pipeline_run_args.index("--outdir") + 1])


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> dict:
    """One ``cfrna demo`` with its defaults, as a new user runs it, shared by the session (read-only).

    Run without network (``unshare -n``) when the tests run as root, so that it also proves the demo
    needs none. Returns ``{"root": outdir, "proc": CompletedProcess, "offline": bool}``."""
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("demo")
    cmd = [sys.executable, "-m", "cfrna", "demo", "--outdir", str(root), "--threads", "2", "--no-progress",
           "--index-dir", str(root / "index")]
    offline = os.geteuid() == 0 and shutil.which("unshare") is not None
    if offline:
        cmd = ["unshare", "-n", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1500)
    return {"root": root, "proc": proc, "offline": offline}


# --- parallel runs ---------------------------------------------------------------------------------------
# `make test` runs the suite on pytest-xdist workers with `--dist loadgroup`. Every test is grouped with its
# file (its module-scoped fixtures are then made once, on one worker), except the tests that read one of the
# expensive session fixtures below: those go together to one worker, so the fixture is made once per run and
# test_pipeline_e2e's --resume of the shared run never overlaps a reader of it. Groups are queued longest
# first (the figures in the comment: seconds on 2 cores), so the two workers end close together.
SHARED_SESSION_FIXTURES = {"pipeline_run": "pipeline_run", "pipeline_run_args": "pipeline_run", "demo_run": "demo_run"}
LONGEST_FIRST = (  # seconds: a 2-core run with both workers busy
    "test_nextflow",  # Nextflow test profile, kill/resume, SLURM, configs of every profile (~600 s)
    "test_packaging",  # wheel in a clean venv running `cfrna demo`, numba compiled from cold (~360 s)
    "test_reliability",  # faults, kills and reruns of cfrna run (~280 s)
    "pipeline_run",  # the shared cfrna run and its readers: e2e, browser, AnnData, stages (~200 s)
    "test_de_nbglm",  # blocked design against R DESeq2 (~160 s)
    "test_nf_modules",  # every module's stub and real run (~150 s)
    "test_de_limma",  # R limma comparisons (~100 s)
    "demo_run",
    "test_align",
    "test_human_scale_quick",
    "test_qc_truth",
    "test_carrier",
    "test_dedup_engine",
    "test_dedup",
)


def _xdist_group(item) -> str:
    names = set(getattr(item, "fixturenames", ()))
    for fixture, group in SHARED_SESSION_FIXTURES.items():
        if fixture in names:
            return group
    return item.path.stem


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    if getattr(config.option, "dist", "no") != "loadgroup":
        return
    groups = {}
    for item in items:
        groups[item.nodeid] = _xdist_group(item)
        item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
    rank = {g: i for i, g in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda it: rank.get(groups[it.nodeid], len(rank)))  # stable: file order kept within a group
