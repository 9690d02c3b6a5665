"""The parallel-run groups of conftest.py: shared session runs made once, every queued group real."""

from __future__ import annotations

from types import SimpleNamespace

from tests.conftest import LONGEST_FIRST, ROOT, SHARED_SESSION_FIXTURES, _xdist_group


def _item(path: str, *fixtures: str):
    return SimpleNamespace(path=ROOT / path, fixturenames=list(fixtures))


def test_readers_of_a_shared_run_share_one_group():
    assert _xdist_group(_item("tests/test_report.py", "tmp_path", "pipeline_run")) == "pipeline_run"
    # test_pipeline_e2e's --resume reads the run arguments only: same group as the run's readers
    assert _xdist_group(_item("tests/test_pipeline_e2e.py", "pipeline_run_args")) == "pipeline_run"
    assert _xdist_group(_item("tests/test_reliability.py", "demo_run", "page")) == "demo_run"


def test_other_tests_go_with_their_file():
    assert _xdist_group(_item("tests/test_count.py", "tmp_path", "sim_cohort")) == "test_count"


def test_longest_first_names_real_groups():
    files = {p.stem for p in (ROOT / "tests").glob("test_*.py")}
    groups = set(SHARED_SESSION_FIXTURES.values())
    unknown = [g for g in LONGEST_FIRST if g not in files | groups]
    assert not unknown, f"LONGEST_FIRST names no test file or shared group: {unknown}"
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
