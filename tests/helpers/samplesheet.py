"""Samplesheet rows and files for the samplesheet tests."""

from __future__ import annotations

import gzip
from pathlib import Path

HEADER = "sample,patient_id,visit_month,arm,flare,fastq_1,fastq_2,strandedness,batch"


def fastq_stub(path: Path) -> str:
    """A one-read gzipped FASTQ at ``path``; returns its file name."""
    with gzip.open(path, "wt") as fh:
        fh.write("@r1\nACGT\n+\nIIII\n")
    return path.name


def write_sheet(d: Path, *rows: str, header: str = HEADER) -> Path:
    """``d``/samplesheet.csv with ``header`` and ``rows``."""
    p = d / "samplesheet.csv"
    p.write_text("\n".join([header, *rows]) + "\n")
    return p


GOOD = [
    "S1,P1,0,steroid_tapering,no_flare,a_1.fastq.gz,a_2.fastq.gz,reverse,b1",
    "S2,P1,6,steroid_tapering,flare,b_1.fastq.gz,,reverse,b1",
    "S3,P2,0,steroid_maintenance,,c_1.fastq.gz,,auto,b2",
]
