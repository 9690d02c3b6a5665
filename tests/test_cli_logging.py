"""The CLI's log handler follows sys.stderr, so repeated in-process runs never log to a closed stream."""

from __future__ import annotations

import io
import logging
import sys

from cfrna.cli import main


def test_log_handler_follows_sys_stderr(monkeypatch, tmp_path):
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    assert main(["validate", "--samplesheet", str(tmp_path / "missing.csv")]) != 0
    first.close()  # what a capture does once its test is over
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("cfrna.test").warning("after the first stream was closed")
    assert second.getvalue() == "after the first stream was closed\n"
