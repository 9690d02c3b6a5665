"""STAR alignment (``--aligner star``) into an unsorted BAM, sorted afterwards like the mappy path.

Parameters for short, degraded cfRNA fragments: ``--outFilterMatchNminOverLread 0.33`` and
``--outFilterScoreMinOverLread 0.33`` (STAR's defaults of 0.66 drop reads whose fragment is
shorter than the read after adapter trimming or which are partially degraded), local alignment
ends (soft clipping, STAR's default), ``--outSAMunmapped Within`` (unmapped reads kept, flag 4),
``--outSAMattributes NH HI AS nM NM``, multi-mappers up to 20 loci (``--outFilterMultimapNmax``)
reported as primary + secondaries. ``two_pass`` adds ``--twopassMode Basic``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from cfrna.errors import CfrnaError, InputFormatError, ToolMissingError

log = logging.getLogger(__name__)

CFRNA_STAR_ARGS = (
    "--outFilterMatchNminOverLread", "0.33",
    "--outFilterScoreMinOverLread", "0.33",
    "--outFilterMultimapNmax", "20",
    "--outSAMattributes", "NH", "HI", "AS", "nM", "NM",
    "--outSAMunmapped", "Within",
    "--outSAMtype", "BAM", "Unsorted",
    "--outSAMprimaryFlag", "OneBestScore",
    "--genomeLoad", "NoSharedMemory",
)


def _is_gz(path: str | os.PathLike) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def align_star(
    index_dir: str | os.PathLike,
    fastq_1: str | os.PathLike,
    fastq_2: str | os.PathLike | None,
    workdir: str | os.PathLike,
    *,
    threads: int = 1,
    two_pass: bool = False,
) -> Path:
    """Run STAR; return the path of its unsorted BAM inside ``workdir``."""
    star = shutil.which("STAR")
    if star is None:
        raise ToolMissingError("STAR is not installed", where="--aligner star",
                               hint="install rna-star (apt) / star (conda) or use --aligner mappy")
    gdir = Path(index_dir) / "star"
    if not (gdir / "SA").is_file():
        raise InputFormatError("not a STAR index folder (no star/SA)", where=str(index_dir),
                               hint="build it with 'cfrna index --aligner star'")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    reads = [str(Path(fastq_1).resolve())] + ([str(Path(fastq_2).resolve())] if fastq_2 else [])
    cmd = [star, "--runThreadN", str(max(1, threads)), "--genomeDir", str(gdir), "--readFilesIn", *reads,
           "--outFileNamePrefix", str(workdir) + "/", "--outTmpDir", str(workdir / "_STARtmp"), *CFRNA_STAR_ARGS]
    if any(_is_gz(r) for r in reads):
        cmd += ["--readFilesCommand", "gzip", "-cd"]
    if two_pass:
        cmd += ["--twopassMode", "Basic"]
    log.info("STAR: %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    bam = workdir / "Aligned.out.bam"
    if proc.returncode != 0 or not bam.is_file():
        lines = (proc.stderr + proc.stdout).strip().splitlines()
        logp = workdir / "Log.out"
        if logp.is_file():
            errs = [ln for ln in logp.read_text(errors="replace").splitlines() if "ERROR" in ln or "EXITING" in ln]
            lines = errs[-2:] or lines
        msg = " | ".join(lines[-2:]) or "no message"
        raise CfrnaError(f"STAR failed (exit {proc.returncode}): {msg}", where=str(fastq_1),
                         hint="check the reads and the index; rerun with --debug")
    return bam
