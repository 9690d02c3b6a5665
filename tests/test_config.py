"""The shared vocabularies (cfrna.config) are the ones the schemas, the CLI and the stages accept."""

from __future__ import annotations

import json

import pytest

from cfrna import config
from tests.conftest import ROOT


def _enums(obj, path=""):
    """Every ``enum`` of a JSON schema, by the name of the property that carries it."""
    if isinstance(obj, dict):
        if "enum" in obj:
            yield path.rsplit("/", 1)[-1], obj["enum"]
        for k, v in obj.items():
            yield from _enums(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for v in obj:
            yield from _enums(v, path)


# property name in a schema -> the vocabulary it must equal
VOCABULARIES = {"aligner": config.ALIGNERS, "strandedness": config.STRANDEDNESS_MODES, "dedup": config.DEDUP_RUN_MODES,
                "de_counts": config.DE_COUNTS, "qc_status": config.QC_STATUSES}


@pytest.mark.parametrize("schema", ["nextflow_schema.json", "assets/schema_input.json"])
def test_schema_enums_equal_config(schema):
    found = {name: values for name, values in _enums(json.loads((ROOT / schema).read_text()))
             if name in VOCABULARIES}
    assert found, f"{schema}: no enum of a shared vocabulary found"
    for name, values in found.items():
        assert tuple(values) == VOCABULARIES[name], f"{schema}: enum of {name!r} differs from cfrna.config"


def test_schemas_cover_aligner_and_strandedness():
    names = {n for s in ("nextflow_schema.json", "assets/schema_input.json")
             for n, _ in _enums(json.loads((ROOT / s).read_text()))}
    assert {"aligner", "strandedness"} <= names


def test_cli_choices_come_from_config():
    import argparse

    from cfrna.count._cli import configure as count_args
    from cfrna.pipeline._cli import configure as run_args

    for add, opt, vocab in ((count_args, "--strandedness", config.STRANDEDNESS),
                            (run_args, "--aligner", config.ALIGNERS)):
        p = argparse.ArgumentParser()
        add(p)
        action = next(a for a in p._actions if opt in a.option_strings)
        assert tuple(action.choices) == vocab


def test_stage_checks_use_config():
    from cfrna.align import STRANDEDNESS
    from cfrna.align.index import ALIGNERS
    from cfrna.count.counter import STRANDEDNESS as CODES

    assert STRANDEDNESS == config.STRANDEDNESS_MODES
    assert ALIGNERS == config.ALIGNERS
    assert list(CODES) == list(config.STRANDEDNESS) and list(CODES.values()) == [0, 1, 2]
    assert config.DEFAULT_ALIGNER == "mappy"
