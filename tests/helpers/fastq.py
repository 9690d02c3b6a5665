"""FASTQ records as lists of their four lines, for tests that alter reads before aligning them."""

from __future__ import annotations

import gzip
from pathlib import Path


def read_fastq(path) -> list[list[str]]:
    """The records of a gzipped FASTQ, each as [header, sequence, '+', quality]."""
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    return [lines[i:i + 4] for i in range(0, len(lines), 4)]


def write_fastq(path, recs) -> None:
    """Write records (as made by :func:`read_fastq`) as plain FASTQ."""
    Path(path).write_text("".join("\n".join(r) + "\n" for r in recs))
