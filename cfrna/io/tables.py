"""One reader for gene x sample count matrices, whichever tool wrote them.

:func:`read_gene_matrix` recognises three layouts from the header, as the files come:

``table``
    cfrna's own ``matrix/gene_counts.tsv`` and any plain table: first column the gene id, then one
    numeric column per sample (``.tsv``, ``.csv``, ``.txt``, optionally gzipped).
``featurecounts``
    ``featureCounts -a genes.gtf -o counts.txt a.bam b.bam``: a ``#`` comment line (the command), then
    ``Geneid Chr Start End Strand Length`` and one column per BAM *path*. The paths are mapped to sample
    ids: the folder and ``.bam`` are dropped, then the aligner suffixes of :data:`BAM_SUFFIXES`
    (``s01.Aligned.sortedByCoord.out.bam`` -> ``s01``; ``/x/s01.markdup.sorted.bam`` -> ``s01``).
``nfcore``
    nf-core/rnaseq's ``salmon.merged.gene_counts.tsv`` (and the other ``*.gene_counts*.tsv`` it writes):
    ``gene_id gene_name`` then one column per sample. Salmon's estimated counts are fractional; they are
    rounded to the nearest integer (half to even, R's ``round()``) as nf-core/differentialabundance does
    before DESeq2. A ``*gene_tpm*`` table of the same layout is refused (TPM is not a count).

Gene names (``gene_name`` or, for featureCounts, none) are kept in ``df.attrs["gene_names"]`` and the
layout in ``df.attrs["layout"]``; the frame itself holds only the sample columns, indexed by gene id.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import re
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from cfrna.errors import InputFormatError

log = logging.getLogger(__name__)

#: featureCounts' annotation columns, in its order
FEATURECOUNTS_COLUMNS = ("Geneid", "Chr", "Start", "End", "Strand", "Length")
#: BAM name endings dropped (after ``.bam``) to turn a featureCounts column into a sample id, longest first
BAM_SUFFIXES = (".Aligned.sortedByCoord.out", ".Aligned.out", ".markdup.sorted", ".umi_dedup.sorted",
                ".dedup.sorted", ".sorted", ".markdup", ".dedup", "_sorted", ".sort")
_MISSING = ("", "NA", "NaN", "nan")


def _open_text(path: Path):
    raw = path.open("rb")
    head = raw.read(2)
    raw.seek(0)
    stream = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
    return io.TextIOWrapper(stream, encoding="utf-8", newline="")


def _is_gzip(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _sniff(path: Path) -> tuple[str, int, str]:
    """(separator, comment lines to skip, header line) of the table."""
    skip = 0
    with _open_text(path) as fh:
        for line in fh:
            if line.startswith("#"):
                skip += 1
                continue
            header = line.rstrip("\r\n")
            break
        else:
            header = ""
    if not header:
        return "\t", skip, header
    name = path.name.removesuffix(".gz")
    if "\t" in header:
        sep = "\t"
    elif "," in header or name.endswith(".csv"):
        sep = ","
    else:
        sep = "\t"
    return sep, skip, header


def sample_from_bam(column: str) -> str:
    """Sample id of a featureCounts column (a BAM path as given on its command line)."""
    name = re.split(r"[\\/]", column)[-1]
    if name.endswith(".bam"):
        name = name[: -len(".bam")]
        for suffix in BAM_SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                break
    return name


def _detect_layout(columns: list[str], path: Path) -> str:
    if tuple(columns[: len(FEATURECOUNTS_COLUMNS)]) == FEATURECOUNTS_COLUMNS:
        return "featurecounts"
    if len(columns) >= 2 and columns[1].strip().lower() == "gene_name":
        return "nfcore"
    return "table"


def read_gene_matrix(path: str | os.PathLike) -> pd.DataFrame:
    """Read a genes x samples count matrix (cfrna, featureCounts or nf-core/rnaseq layout).

    Parameters
    ----------
    path : path-like
        The table (``.tsv``/``.txt``/``.csv``, optionally gzipped; the separator is read from the header).

    Returns
    -------
    pandas.DataFrame
        Sample columns only (numeric; integer when every value is whole), indexed by ``gene_id``;
        ``attrs["layout"]`` is ``table``, ``featurecounts`` or ``nfcore``, ``attrs["gene_names"]`` a
        gene_id -> name Series when the table has a ``gene_name`` column.

    Raises
    ------
    InputFormatError
        Not a table, no sample columns, non-numeric, negative or missing-in-header values, duplicate
        gene ids or sample columns, a TPM table where counts are expected.
    FileNotFoundError
        The file does not exist.
    """
    path = Path(path)
    where = str(path)
    try:
        sep, skip, header = _sniff(path)
        if not header:
            raise InputFormatError("counts table is empty (no header line)", where=where,
                                   hint="first column gene_id, then one column per sample")
        df = pd.read_csv(path, sep=sep, skiprows=skip, dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL,
                         compression="gzip" if _is_gzip(path) else None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError, gzip.BadGzipFile,
            zlib.error) as exc:
        raise InputFormatError(f"not a counts table ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
                               where=where, hint="first column gene_id, then one column per sample") from None
    except OSError as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise InputFormatError(f"not a counts table ({exc})", where=where) from None
    raw_cols = [c.strip().strip('"') for c in header.split(sep)]
    if len(raw_cols) == df.shape[1]:
        df.columns = raw_cols  # pandas renames a repeated name to "A.1": keep the header's own names
    columns = [str(c) for c in df.columns]
    layout = _detect_layout(columns, path)
    names = None
    if layout == "featurecounts":
        samples = df.iloc[:, len(FEATURECOUNTS_COLUMNS):]
        mapped = [sample_from_bam(c) for c in samples.columns]
        seen: dict[str, str] = {}
        for col, sid in zip(samples.columns, mapped, strict=True):
            if sid in seen:
                raise InputFormatError(f"featureCounts columns {seen[sid]!r} and {col!r} both map to sample {sid!r}",
                                       where=where, hint="give the BAM files distinct names (<sample>.bam)")
            seen[sid] = col
        samples.columns = mapped
        ids = df.iloc[:, 0]
    elif layout == "nfcore":
        lower = path.name.lower()
        if "tpm" in lower or "length" in lower.replace("length_scaled", ""):
            raise InputFormatError("this is a TPM/length table, not counts", where=where,
                                   hint="use salmon.merged.gene_counts.tsv (or *.gene_counts.tsv) for DE")
        samples = df.iloc[:, 2:]
        ids = df.iloc[:, 0]
        names = pd.Series(df.iloc[:, 1].to_numpy(), index=ids.astype(str).to_numpy(), name="gene_name")
    else:
        samples = df.iloc[:, 1:]
        ids = df.iloc[:, 0]
    if samples.shape[1] == 0:
        raise InputFormatError(f"counts table has no sample columns (header: {header[:120]!r})", where=where,
                               hint="first column gene_id, then one column per sample; check the separator")
    dup_cols = sorted({c for c in samples.columns if list(samples.columns).count(c) > 1})
    if dup_cols:
        raise InputFormatError(f"duplicate sample column(s): {', '.join(dup_cols[:5])}", where=where)
    raw_blank = samples.apply(lambda c: c.str.strip().isin(_MISSING))
    values = samples.apply(lambda c: pd.to_numeric(c.str.strip().where(~c.str.strip().isin(_MISSING)),
                                                   errors="coerce"))
    bad = [c for c in samples.columns if (values[c].isna() & ~raw_blank[c]).any()]
    if bad:
        col = bad[0]
        row = int(np.flatnonzero((values[col].isna() & ~raw_blank[col]).to_numpy())[0])
        raise InputFormatError(f"non-numeric values in sample column(s) {', '.join(map(str, bad[:5]))} "
                               f"(first: {samples[col].iloc[row]!r} on line {row + 2 + skip})", where=where)
    values.index = pd.Index(ids.astype(str).str.strip().to_numpy(), name="gene_id")
    if values.index.duplicated().any():
        dup = values.index[values.index.duplicated()][0]
        raise InputFormatError(f"duplicate gene id {dup!r}", where=where)
    arr = values.to_numpy(dtype=float)
    if (arr[~np.isnan(arr)] < 0).any():
        raise InputFormatError("negative counts", where=where)
    if layout == "nfcore":
        frac = ~np.isnan(arr) & (np.mod(arr, 1) != 0)
        if frac.any():
            log.info("%s: %d fractional estimated count(s) rounded to integers (as nf-core/differentialabundance)",
                     path.name, int(frac.sum()))
            values = values.apply(np.rint)
    if not np.isnan(values.to_numpy(dtype=float)).any() and np.all(np.mod(values.to_numpy(dtype=float), 1) == 0):
        values = values.astype(np.int64)
    values.attrs["layout"] = layout
    if names is not None:
        values.attrs["gene_names"] = names
    return values


def matrix_samples(path: str | os.PathLike) -> list[str]:
    """The sample ids of a count matrix, from its header only (featureCounts BAM paths mapped)."""
    path = Path(path)
    sep, _, header = _sniff(path)
    cols = [c.strip().strip('"') for c in header.split(sep)] if header else []
    layout = _detect_layout(cols, path)
    if layout == "featurecounts":
        return [sample_from_bam(c) for c in cols[len(FEATURECOUNTS_COLUMNS):]]
    return cols[2:] if layout == "nfcore" else cols[1:]


def check_matrix_samples(path: str | os.PathLike, sample_ids: list[str]) -> None:
    """Refuse a count matrix that has no column for any sample of the samplesheet (one line, both named)."""
    cols = matrix_samples(path)
    if not cols:
        raise InputFormatError("counts table has no sample columns", where=str(path),
                               hint="first column gene_id, then one column per sample; check the separator")
    if not set(cols) & set(sample_ids):
        show = ", ".join(cols[:4]) + (" …" if len(cols) > 4 else "")
        sheet = ", ".join(sample_ids[:4]) + (" …" if len(sample_ids) > 4 else "")
        raise InputFormatError(f"none of the {len(sample_ids)} samplesheet samples ({sheet}) is a column of the "
                               f"counts table (columns: {show})", where=str(path),
                               hint="the counts table's column names must be the samplesheet's sample ids")


__all__ = ["BAM_SUFFIXES", "FEATURECOUNTS_COLUMNS", "check_matrix_samples", "matrix_samples", "read_gene_matrix",
           "sample_from_bam"]
