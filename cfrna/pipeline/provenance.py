"""``pipeline_info/``: parameters, software versions, input checksums and the execution trace."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pandas as pd

from cfrna import __version__
from cfrna.io.atomic import write_json, write_table, write_text

PACKAGES = ("numpy", "pandas", "scipy", "numba", "pysam", "mappy", "cutadapt", "deflate", "pydeseq2",
            "anndata", "scanpy", "gseapy", "multiqc")


def sha256sum(path: str | os.PathLike, bufsize: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(bufsize):
            h.update(chunk)
    return h.hexdigest()


def write_params(path: Path, params: dict) -> None:
    write_json(path, {"cfrna_version": __version__, "params": params})


def write_checksums(path: Path, sheet, *, samplesheet: str | os.PathLike, fasta: str | os.PathLike,
                    gtf: str | os.PathLike, contrasts: str | os.PathLike | None = None,
                    gene_sets: list[str | os.PathLike] | tuple = ()) -> int:
    """sha256 of every input file; paths are reported by file name only (no machine paths).

    Returns the number of files listed.
    """
    rows = []
    for role, f in (("samplesheet", samplesheet), ("contrasts", contrasts), ("fasta", fasta),
                    ("gtf", gtf), *(("gene_sets", g) for g in gene_sets)):
        if f:
            rows.append({"role": role, "sample": "", "file": Path(f).name, "bytes": Path(f).stat().st_size,
                         "sha256": sha256sum(f)})
    for s in sheet.samples:
        for role, f in (("fastq_1", s.fastq_1), ("fastq_2", s.fastq_2)):
            if f:
                rows.append({"role": role, "sample": s.sample, "file": Path(f).name,
                             "bytes": Path(f).stat().st_size, "sha256": sha256sum(f)})
    write_table(path, pd.DataFrame(rows, columns=["role", "sample", "file", "bytes", "sha256"]))
    return len(rows)


def _tool_version(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else None


def software_versions(*, aligner: str = "mappy") -> dict[str, str]:
    versions = {"cfrna": __version__, "python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    if aligner == "star":
        v = _tool_version(["STAR", "--version"])
        if v:
            versions["STAR"] = v
    return versions


def write_versions(path: Path, *, aligner: str = "mappy") -> None:
    lines = ["cfrna:"] + [f"  {k}: '{v}'" for k, v in software_versions(aligner=aligner).items()]
    write_text(path, "\n".join(lines) + "\n")


def write_trace(path: Path, trace: list[dict]) -> None:
    write_table(path, pd.DataFrame(trace, columns=["step", "sample", "status", "seconds"]))
