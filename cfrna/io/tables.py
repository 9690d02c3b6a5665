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

The module is the one place where cfrna reads its tables; every reader turns a bad file into a one-line
:class:`~cfrna.errors.InputFormatError` naming the file (and line where known), and reads gzipped files
by their magic bytes, whatever their name:

- :func:`read_gene_matrix`: gene x sample counts (above); :func:`read_expression`: gene x sample
  float tables (``normalized_counts.tsv``, ``vst.tsv``) as float32;
- :func:`read_sample_counts`: one ``<sample>.counts.tsv`` of ``cfrna count``;
- :func:`read_samples_table`: ``matrix/samples.tsv``; :func:`read_qc_summary`: ``qc/qc_summary.tsv``
  (the two readers of the ``excluded`` column, through :func:`as_bool`);
- :func:`read_tsv`: any other cfrna TSV with required columns; :func:`read_json`: per-sample JSON.

Writing goes through :func:`write_table` (atomic, file mode, gzip by name; :mod:`cfrna.io.atomic`).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import math
import os
import re
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cfrna.errors import InputFormatError
from cfrna.io.atomic import write_table

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


# ------------------------------------------------------------------------------------ other cfrna tables
#: spellings of a true boolean cell (``excluded``): written by pandas as True/False, by hand as 1/yes
TRUE_WORDS = ("true", "1", "yes")
_REREAD = "re-run the stage that writes it"


def as_bool(values: pd.Series) -> pd.Series:
    """A boolean column as written by pandas or by hand (True/true/1/yes; empty and NaN are false)."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(bool)
    return values.fillna(False).astype(str).str.strip().str.lower().isin(TRUE_WORDS)


def as_samplesheet(samplesheet):
    """A parsed :class:`~cfrna.io.samplesheet.SampleSheet` as given, or the sheet at a path parsed once
    here (metadata only, FASTQ paths not checked: the cohort stages need the metadata)."""
    from cfrna.io.samplesheet import SampleSheet, read_samplesheet

    if isinstance(samplesheet, SampleSheet):
        return samplesheet
    return read_samplesheet(samplesheet, check_files=False)


def read_tsv(path: str | os.PathLike, *, what: str = "table", required: Sequence[str] = (),
             hint: str = _REREAD, **kwargs: Any) -> pd.DataFrame:
    """Read a cfrna TSV (gzipped or not); a parse error or a missing column is one InputFormatError naming the file.

    ``kwargs`` go to :func:`pandas.read_csv` (``dtype``, ``index_col``, ``usecols``…).
    """
    path = Path(path)
    try:
        compression = "gzip" if _is_gzip(path) else None
        df = pd.read_csv(path, sep="\t", compression=compression, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError, gzip.BadGzipFile,
            zlib.error) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFormatError(f"cannot read {what}: {first}", where=str(path), hint=hint) from exc
    missing = [c for c in required if c not in df.columns and c != df.index.name]
    if missing:
        raise InputFormatError(
            f"{what} lacks column(s) {', '.join(missing)} (has: {', '.join(map(str, df.columns[:12]))})",
            where=str(path),
            hint=hint if hint != _REREAD else "write it with the cfrna stage of the same version (docs/architecture.md)")
    return df


def read_samples_table(path: str | os.PathLike) -> pd.DataFrame:
    """``matrix/samples.tsv`` indexed by ``sample``: ``excluded`` boolean, ``qc_reasons`` text (both filled)."""
    st = read_tsv(path, what="samples table", required=("sample",), dtype={"sample": str},
                  hint="pass O/matrix/samples.tsv from `cfrna matrix`")
    st = st.set_index("sample")
    st["excluded"] = as_bool(st["excluded"]) if "excluded" in st.columns else False
    st["qc_reasons"] = st["qc_reasons"].fillna("").astype(str) if "qc_reasons" in st.columns else ""
    return st


def read_qc_summary(path: str | os.PathLike) -> pd.DataFrame:
    """``qc/qc_summary.tsv`` indexed by ``sample``; ``excluded`` boolean (false when absent)."""
    qc = read_tsv(path, what="QC summary", required=("sample", "status"), dtype={"sample": str},
                  hint="re-run `cfrna qc`")
    qc = qc.set_index("sample")
    qc["excluded"] = as_bool(qc["excluded"]) if "excluded" in qc.columns else False
    return qc


def read_expression(path: str | os.PathLike, *, what: str = "expression table", dtype=np.float32) -> pd.DataFrame:
    """A gene x sample float table (``normalized_counts.tsv``, ``vst.tsv``) as ``dtype`` (default float32:
    half the memory of float64 at 60,000 x 900); a sample x gene table (first column ``sample``) is
    transposed. Index and columns are strings."""
    path = Path(path)
    try:
        with _open_text(path) as fh:
            header = fh.readline().rstrip("\r\n").split("\t")
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputFormatError(f"cannot read {what}: {exc}", where=str(path), hint=_REREAD) from None
    if header and header[0] != "sample":
        try:
            df = read_tsv(path, what=what, index_col=0, dtype=dict.fromkeys(header[1:], dtype))
        except ValueError as exc:
            raise InputFormatError(f"{what} has a non-numeric value ({str(exc).splitlines()[0]})", where=str(path),
                                   hint="expected gene_id then one numeric column per sample") from exc
    else:
        df = read_tsv(path, what=what, index_col=0)
    if df.index.name == "sample":
        df = df.T
    df.index = df.index.astype(str)
    df.columns = df.columns.astype(str)
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise InputFormatError(f"{what} has non-numeric column(s) {', '.join(bad[:5])}", where=str(path),
                               hint="expected gene_id then samples")
    return df


def read_sample_counts(path: str | os.PathLike) -> pd.Series:
    """One ``<sample>.counts.tsv`` of ``cfrna count`` (``gene_id<TAB>count``, header optional) as a float Series.

    Errors name the line (a line loop is as fast as pandas here: ~70 ms for 60,000 genes).
    """
    path = Path(path)
    ids: list[str] = []
    vals: list[float] = []
    first = True
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith("#"):
                continue
            is_first, first = first, False
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) < 2:
                raise InputFormatError(f"expected gene_id<TAB>count, found {len(cols)} column(s)",
                                       where=f"{path}:{lineno}", hint="rerun cfrna count")
            try:
                v = float(cols[-1])
            except ValueError:
                if is_first:
                    continue  # header line
                raise InputFormatError(f"count is not a number: {cols[-1]!r}", where=f"{path}:{lineno}",
                                       hint="rerun cfrna count") from None
            if not math.isfinite(v) or v < 0:
                raise InputFormatError(f"invalid count {cols[-1]!r}", where=f"{path}:{lineno}",
                                       hint="counts must be finite and >= 0")
            ids.append(cols[0])
            vals.append(v)
    if not ids:
        raise InputFormatError("no genes in counts file", where=str(path), hint="rerun cfrna count")
    s = pd.Series(np.asarray(vals), index=pd.Index(ids, name="gene_id"), name="count")
    if s.index.has_duplicates:
        dup = s.index[s.index.duplicated()][0]
        raise InputFormatError(f"duplicate gene_id {dup!r}", where=str(path), hint="rerun cfrna count")
    return s


def read_json(path: str | os.PathLike, *, required: Sequence[str] = (), error: str = "malformed JSON",
              hint: str = "the file is truncated or corrupt; rerun the stage that wrote it") -> dict[str, Any]:
    """A JSON object; malformed JSON (``error`` at file:line), a non-object or a missing key is an InputFormatError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputFormatError("not UTF-8 text", where=str(path), hint="rerun the stage that wrote it") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFormatError(f"{error} ({exc.msg} at line {exc.lineno})",
                               where=f"{path}:{exc.lineno}", hint=hint) from None
    if not isinstance(obj, dict):
        raise InputFormatError("expected a JSON object", where=str(path), hint="rerun the stage that wrote it")
    missing = [k for k in required if k not in obj]
    if missing:
        raise InputFormatError(f"missing key(s) {', '.join(missing)}", where=str(path),
                               hint="the file does not follow docs/architecture.md; rerun the stage that wrote it")
    return obj


def read_yaml(path: str | os.PathLike, *, what: str = "YAML file", all_strings: bool = False) -> dict[str, Any]:
    """A YAML mapping with pyyaml; malformed YAML names file:line.

    ``all_strings`` keeps every scalar as its text (``yaml.BaseLoader``): software versions such as
    ``samtools: 1.10`` must not become the number 1.1.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        obj = yaml.load(text, Loader=yaml.BaseLoader) if all_strings else yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InputFormatError(f"{what} is malformed YAML ({getattr(exc, 'problem', None) or exc})", where=where,
                               hint=_REREAD) from None
    except UnicodeDecodeError:
        raise InputFormatError("not UTF-8 text", where=str(path), hint=_REREAD) from None
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise InputFormatError(f"{what} is not a mapping", where=str(path), hint=_REREAD)
    return obj


__all__ = ["BAM_SUFFIXES", "FEATURECOUNTS_COLUMNS", "TRUE_WORDS", "as_bool", "as_samplesheet", "check_matrix_samples", "matrix_samples",
           "read_expression", "read_gene_matrix", "read_json", "read_qc_summary", "read_sample_counts",
           "read_samples_table", "read_tsv", "read_yaml", "sample_from_bam", "write_table"]
