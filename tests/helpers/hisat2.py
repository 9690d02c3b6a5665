"""HISAT2 BAMs of altered reads: the aligner output whose flag combinations the counting tests check."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import require_tool
from tests.helpers.fastq import write_fastq


def hisat2_bams(genome_fa, r1: list, r2: list, outdir) -> dict[str, Path]:
    """Align read pairs (records as from :func:`tests.helpers.fastq.read_fastq`) with HISAT2, paired-end
    and mate 1 alone; returns the coordinate-sorted BAMs ``{"pe": ..., "se": ...}`` (in ``outdir``).

    Skips without hisat2/hisat2-build/samtools locally, fails under CI=true."""
    hisat2 = require_tool("hisat2")
    build = require_tool("hisat2-build")
    samtools = require_tool("samtools")
    d = Path(outdir)
    write_fastq(d / "r1.fq", r1)
    write_fastq(d / "r2.fq", r2)
    subprocess.run([build, "-q", "-p", "1", str(genome_fa), str(d / "idx")], check=True, capture_output=True)
    bams = {}
    for name, reads in (("pe", ["-1", str(d / "r1.fq"), "-2", str(d / "r2.fq")]), ("se", ["-U", str(d / "r1.fq")])):
        sam = d / f"{name}.sam"
        subprocess.run([hisat2, "-p", "2", "-x", str(d / "idx"), *reads, "-S", str(sam)], check=True,
                       capture_output=True)
        bams[name] = d / f"{name}.bam"
        subprocess.run([samtools, "sort", "-o", str(bams[name]), str(sam)], check=True, capture_output=True)
    return bams
