"""Read and validate the samplesheet with the rules of ``assets/schema_input.json``.

Every problem raises :class:`~cfrna.errors.ConfigError` with ``file:line`` and the column, so the
user can fix the sheet. Relative FASTQ paths are resolved against the samplesheet's folder.

Two rules keep sheet columns and computed columns apart and sample ids usable everywhere:

- a sheet column may not be named like a column cfrna computes (:func:`check_column_name`: the QC
  metric names and their ``<metric>_status`` decisions, ``status``, ``reasons``, ``excluded``,
  ``paired``, ...; any ``qc_*``);
- a sample id is 1-100 characters of ``[A-Za-z0-9_.-]`` not starting with ``.`` or ``-``
  (:func:`check_sample_id`, also used by the stage commands for ``--sample``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from cfrna._resources import asset_path
from cfrna.errors import ConfigError, InputFormatError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("sample", "patient_id", "visit_month", "arm", "flare", "fastq_1", "fastq_2", "strandedness")
#: columns a metadata-only sheet (``cfrna de``/``pathways``/``report`` on counts made elsewhere) may leave out
FASTQ_COLUMNS = ("fastq_1", "fastq_2", "strandedness")
METADATA_COLUMNS = tuple(c for c in REQUIRED_COLUMNS if c not in FASTQ_COLUMNS)
#: columns cfrna adds to the sample tables (qc_summary.tsv, matrix/samples.tsv, the AnnData obs)
COMPUTED_COLUMNS = frozenset({"status", "reasons", "excluded", "paired", "has_counts", "size_factor",
                              "error", "missing_inputs", "checks", "thresholds"})
RESERVED_PREFIXES = ("qc_",)
#: QC decision columns that are not ``<metric>_status`` of a metric (cfrna.qc.filters)
QC_DECISION_COLUMNS = frozenset({"degradation_status", "strandedness_status"})
SAMPLE_ID_MAX = 100
#: optional per-sample UMI columns (docs/usage.md "UMIs and low-input kits"); an empty cell takes the
#: run-wide value (cfrna run --umi-pattern/--umi-read/--umi-in-name), ``umi_pattern=none`` says "no UMIs"
UMI_COLUMNS = ("umi_pattern", "umi_read", "umi_in_name")
_BOOL = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class Sample:
    """One row of the samplesheet (paths absolute)."""

    sample: str
    patient_id: str
    visit_month: float
    arm: str
    flare: str
    fastq_1: str
    fastq_2: str | None
    strandedness: str
    extra: dict[str, str] = field(default_factory=dict)
    #: UMI columns as parsed (None: empty cell, the run-wide value applies); see cfrna.trim.umi.sample_umi
    umi_pattern: str | None = None
    umi_read: int | None = None
    umi_in_name: bool | None = None

    @property
    def paired(self) -> bool:
        return self.fastq_2 is not None


@dataclass
class SampleSheet:
    path: str
    samples: list[Sample]
    warnings: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [s.sample for s in self.samples]

    def __getitem__(self, sample_id: str) -> Sample:
        for s in self.samples:
            if s.sample == sample_id:
                return s
        raise KeyError(sample_id)

    def to_frame(self) -> pd.DataFrame:
        """Metadata table indexed by sample (FASTQ paths excluded); extra columns typed when numeric."""
        import pandas as pd

        rows = []
        for s in self.samples:
            rows.append({"sample": s.sample, "patient_id": s.patient_id, "visit_month": s.visit_month,
                         "arm": s.arm, "flare": s.flare, "strandedness": s.strandedness,
                         "paired": s.paired, **s.extra})
        df = pd.DataFrame(rows).set_index("sample")
        for col in df.columns:
            if col in REQUIRED_COLUMNS or df[col].dtype != object:
                continue
            vals = df[col].replace("", pd.NA)
            num = pd.to_numeric(vals, errors="coerce")
            if num.notna().sum() == vals.notna().sum() and vals.notna().any():
                df[col] = num
        return df


def computed_columns() -> frozenset[str]:
    """Every column name cfrna computes into a sample table: QC metrics and their ``<metric>_status`` decisions."""
    from cfrna.qc.metrics import METRICS

    return COMPUTED_COLUMNS | QC_DECISION_COLUMNS | frozenset(METRICS) | frozenset(f"{m}_status" for m in METRICS)


def check_column_name(col: str, where: str) -> None:
    """Refuse a samplesheet column that would collide with a computed column."""
    why = None
    if col in computed_columns():
        why = "a column cfrna computes"
    elif col.startswith(RESERVED_PREFIXES):
        why = f"the {'/'.join(p + '*' for p in RESERVED_PREFIXES)} names are reserved for computed QC columns"
    if why:
        raise ConfigError(f"column '{col}' is reserved ({why})", where=where,
                          hint=f"rename it, e.g. to 'sheet_{col.removeprefix('qc_')}' (docs/usage.md)")


def check_sample_id(sample: str, outdir: str | os.PathLike | None = None, *, option: str = "--sample") -> str:
    """Refuse a sample id that a stage or a file system cannot take; return it.

    The rule of ``assets/schema_input.json``: 1-100 characters of letters, digits, ``_``, ``.`` and ``-``,
    not starting with ``.`` or ``-``. With ``outdir``, also check that ``<outdir>/<sample>.*`` stays
    inside ``outdir``.
    """
    prop = input_schema()["items"]["properties"]["sample"]
    shown = sample if len(sample) <= 40 else sample[:40] + f"... ({len(sample)} characters)"
    if not isinstance(sample, str) or not sample or len(sample) > int(prop.get("maxLength", SAMPLE_ID_MAX)) \
            or not re.fullmatch(prop["pattern"], sample):
        raise ConfigError(f"{option} {shown!r}: {prop['errorMessage']}",
                          hint="rename the sample in the samplesheet")
    if outdir is not None:
        root = Path(os.path.normpath(Path(outdir).absolute()))
        if Path(os.path.normpath(root / f"{sample}.x")).parent != root:  # lexical: symlinked outputs stay allowed
            raise ConfigError(f"{option} {shown!r} would write outside --outdir {outdir}",
                              hint="sample ids may not contain path separators")
    return sample


@cache
def input_schema() -> dict:
    """The samplesheet JSON schema shipped in ``assets/`` (or inside the installed package)."""
    return json.loads(asset_path("schema_input.json").read_text())


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read samplesheet: {exc.strerror}", where=str(path),
                          hint="check the --samplesheet path") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("samplesheet is not UTF-8 text", where=f"{path}:{line}",
                          hint="save the sheet as UTF-8 CSV") from None


def _check_value(col: str, value, prop: dict, where: str) -> None:
    import jsonschema

    try:
        jsonschema.validate(value, {k: v for k, v in prop.items() if k not in ("meta", "exists", "format")})
    except jsonschema.ValidationError:
        msg = prop.get("errorMessage", f"invalid value for {col}")
        shown = value if not isinstance(value, str) or len(value) <= 40 else value[:40] + f"... ({len(value)} characters)"
        raise ConfigError(f"column '{col}': {msg}; found {shown!r}", where=where) from None


def read_samplesheet(path: str | os.PathLike, *, check_files: bool = True,
                     require_fastq: bool | None = None) -> SampleSheet:
    """Parse and validate a samplesheet CSV.

    Checks the header (required columns present, no duplicate or empty names, no column named like a
    computed column), every row against the schema, unique sample ids, that FASTQ files exist and are
    readable (``check_files``) and that R1 and R2 differ. A patient with both paired and single-end
    samples is allowed and reported in ``warnings``.

    ``require_fastq`` (default: ``check_files``): when False the sheet may be metadata only (no
    ``fastq_1``, ``fastq_2``, ``strandedness`` columns), as for ``cfrna de`` on counts made elsewhere;
    such samples have ``fastq_1 == ""`` and ``strandedness == ""``.
    """
    if require_fastq is None:
        require_fastq = check_files
    path = Path(path)
    text = _read_text(path)
    if not text.strip():
        raise ConfigError("samplesheet is empty", where=str(path), hint=f"header: {','.join(REQUIRED_COLUMNS)}")
    reader = csv.reader(io.StringIO(text, newline=None))
    rows = list(reader)
    header = [h.strip() for h in rows[0]]
    where_h = f"{path}:1"
    if "" in header:
        raise ConfigError(f"empty column name in header (column {header.index('') + 1})", where=where_h)
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ConfigError(f"duplicate column(s) in header: {', '.join(dup)}", where=where_h)
    metadata_only = not require_fastq and "fastq_1" not in header
    required = METADATA_COLUMNS if metadata_only else REQUIRED_COLUMNS
    missing = [c for c in required if c not in header]
    if missing:
        raise ConfigError(f"missing required column(s): {', '.join(missing)}", where=where_h,
                          hint=f"the header must contain {','.join(required)}"
                               + ("" if require_fastq else f" (or only {','.join(METADATA_COLUMNS)} for DE on "
                                                           "an existing counts table)"))
    for col in header:
        if col not in REQUIRED_COLUMNS:
            check_column_name(col, where_h)
    props = input_schema()["items"]["properties"]
    base = path.parent
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for lineno, row in enumerate(rows[1:], 2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{path}:{lineno}"
        if len(row) != len(header):
            raise ConfigError(f"row has {len(row)} fields but the header has {len(header)}", where=where,
                              hint="check for missing or extra commas")
        rec = {h: v.strip() for h, v in zip(header, row, strict=True)}
        if metadata_only:
            rec.update({"fastq_1": "", "fastq_2": "", "strandedness": rec.get("strandedness", "")})
        for col in required:
            value: object = rec[col]
            if col == "visit_month":
                try:
                    value = float(rec[col])
                except ValueError:
                    raise ConfigError(f"column 'visit_month': {props[col]['errorMessage']}; found {rec[col]!r}",
                                      where=where) from None
            _check_value(col, value, props[col], where)
        sid = rec["sample"]
        if sid in seen:
            raise ConfigError(f"duplicate sample id '{sid}' (first on line {seen[sid]})", where=where,
                              hint="sample ids must be unique")
        seen[sid] = lineno
        fq1 = _resolve(base, rec["fastq_1"]) if rec["fastq_1"] else ""
        fq2 = _resolve(base, rec["fastq_2"]) if rec["fastq_2"] else None
        if check_files:
            for col, fq in (("fastq_1", fq1), ("fastq_2", fq2)):
                if fq is None:
                    continue
                if not Path(fq).is_file():
                    raise ConfigError(f"column '{col}': file not found: {rec[col]}", where=where,
                                      hint="fix the path (relative paths are read from the samplesheet's folder)")
                if not os.access(fq, os.R_OK):
                    # exists but cannot be read: a data problem (exit 1), as an unreadable GTF or FASTA
                    raise InputFormatError(f"column '{col}': file not readable: {rec[col]}", where=where,
                                           hint="check the file's permissions")
        if fq2 is not None and fq1 and os.path.abspath(fq1) == os.path.abspath(fq2):
            raise ConfigError("fastq_1 and fastq_2 are the same file", where=where)
        extra = {h: rec[h] for h in header if h not in REQUIRED_COLUMNS}
        umi = _umi_cells(rec, paired=fq2 is not None, where=where)
        samples.append(Sample(sample=sid, patient_id=rec["patient_id"], visit_month=float(rec["visit_month"]),
                              arm=rec["arm"], flare=rec["flare"], fastq_1=fq1, fastq_2=fq2,
                              strandedness=rec["strandedness"], extra=extra, **umi))
    if not samples:
        raise ConfigError("samplesheet has a header but no samples", where=str(path))
    sheet = SampleSheet(path=str(path), samples=samples)
    by_patient: dict[str, set[bool]] = {}
    for s in samples:
        by_patient.setdefault(s.patient_id, set()).add(s.paired)
    for pid, kinds in sorted(by_patient.items()):
        if len(kinds) > 1:
            msg = (f"{path}: patient {pid} has both paired-end and single-end samples; "
                   "counts are comparable (fragments vs reads) but check this is intended")
            sheet.warnings.append(msg)
            log.warning(msg)
    return sheet


def _umi_cells(rec: dict[str, str], *, paired: bool, where: str) -> dict:
    """The optional UMI columns of one row, checked (pattern or kit preset, read 1/2, boolean)."""
    from cfrna.trim.umi import resolve_umi

    out: dict = {}
    raw_in = rec.get("umi_in_name", "").strip().lower()
    if raw_in:
        if raw_in not in _BOOL:
            raise ConfigError(f"column 'umi_in_name': must be true or false; found {rec['umi_in_name']!r}",
                              where=where, hint="true when the read names already end in their UMI")
        out["umi_in_name"] = _BOOL[raw_in]
    raw_read = rec.get("umi_read", "").strip()
    if raw_read:
        if raw_read not in ("1", "2"):
            raise ConfigError(f"column 'umi_read': must be 1 or 2; found {raw_read!r}", where=where,
                              hint="the read whose 5' end holds the UMI")
        out["umi_read"] = int(raw_read)
    pat = rec.get("umi_pattern", "").strip()
    if pat.lower() == "none":
        out["umi_pattern"] = "none"
    elif pat:
        spec = resolve_umi(pat, out.get("umi_read"), in_name=bool(out.get("umi_in_name")), paired=paired or not rec.get(
            "fastq_1"), where=f"{where}: column 'umi_pattern'")
        out["umi_pattern"] = spec.kit or spec.pattern
    elif out.get("umi_read") == 2 and not paired and rec.get("fastq_1"):
        raise ConfigError("column 'umi_read': read 2 for a single-end sample", where=where,
                          hint="use 1 for single-end libraries, or give fastq_2")
    return out


def _resolve(base: Path, p: str) -> str:
    q = Path(p).expanduser()
    return str(q if q.is_absolute() else (base / q).resolve())
