"""`cfrna count --strandedness-from`: the strandedness recorded by the align stage."""

from __future__ import annotations

import json

import pytest

from cfrna.count import strandedness_from
from cfrna.errors import InputFormatError


@pytest.mark.parametrize(("used", "expected"), [("reverse", "reverse"), ("forward", "forward"),
                                                 ("unstranded", "unstranded"), ("undetermined", "unstranded")])
def test_used_strandedness(tmp_path, used, expected):
    p = tmp_path / "s.align.json"
    p.write_text(json.dumps({"sample": "s", "strandedness": {"declared": "auto", "used": used}}))
    assert strandedness_from(str(p)) == expected


@pytest.mark.parametrize("text", ["{not json", "[]"])
def test_bad_align_json(tmp_path, text):
    p = tmp_path / "s.align.json"
    p.write_text(text)
    with pytest.raises(InputFormatError, match="s.align.json"):
        strandedness_from(str(p))


def test_missing_align_json(tmp_path):
    with pytest.raises(InputFormatError, match="cannot read"):
        strandedness_from(str(tmp_path / "missing.align.json"))
