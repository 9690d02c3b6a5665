"""featureCounts (subread 2.0.3) as the counting reference of the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import require_tool


def featurecounts(bam, gtf, outdir, *, strand: int, paired: bool, flags: list[str]):
    """Run featureCounts; return (counts text 'gene\\tcount' lines, summary values)."""
    fc = require_tool("featureCounts")
    out = Path(outdir) / "fc.txt"
    cmd = [fc, "-T", "1", "-s", str(strand), *flags, "-a", str(gtf), "-o", str(out), str(bam)]
    if paired:
        cmd[1:1] = ["-p", "--countReadPairs"]
    subprocess.run(cmd, check=True, capture_output=True)
    lines = out.read_text().splitlines()[2:]
    counts = [f"{ln.split(chr(9))[0]}\t{ln.split(chr(9))[6]}" for ln in lines]
    summary = [ln.split("\t") for ln in Path(str(out) + ".summary").read_text().splitlines()[1:]]
    return counts, {k: int(v) for k, v in summary}
