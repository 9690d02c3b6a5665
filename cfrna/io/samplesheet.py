"""Read and validate the samplesheet with the rules of ``assets/schema_input.json``.

Every problem raises :class:`~cfrna.errors.ConfigError` with ``file:line`` and the column, so the
user can fix the sheet. Relative FASTQ paths are resolved against the samplesheet's folder.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pandas as pd

from cfrna._resources import asset_path
from cfrna.errors import ConfigError

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("sample", "patient_id", "visit_month", "arm", "flare", "fastq_1", "fastq_2", "strandedness")


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
        raise ConfigError(f"column '{col}': {msg}; found {value!r}", where=where) from None


def read_samplesheet(path: str | os.PathLike, *, check_files: bool = True) -> SampleSheet:
    """Parse and validate a samplesheet CSV.

    Checks the header (required columns present, no duplicate or empty names), every row against
    the schema, unique sample ids, that FASTQ files exist and are readable (``check_files``) and
    that R1 and R2 differ. A patient with both paired and single-end samples is allowed and
    reported in ``warnings``.
    """
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
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ConfigError(f"missing required column(s): {', '.join(missing)}", where=where_h,
                          hint=f"the header must contain {','.join(REQUIRED_COLUMNS)}")
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
        for col in REQUIRED_COLUMNS:
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
        fq1 = _resolve(base, rec["fastq_1"])
        fq2 = _resolve(base, rec["fastq_2"]) if rec["fastq_2"] else None
        if check_files:
            for col, fq in (("fastq_1", fq1), ("fastq_2", fq2)):
                if fq is None:
                    continue
                if not Path(fq).is_file():
                    raise ConfigError(f"column '{col}': file not found: {rec[col]}", where=where,
                                      hint="fix the path (relative paths are read from the samplesheet's folder)")
                if not os.access(fq, os.R_OK):
                    raise ConfigError(f"column '{col}': file not readable: {rec[col]}", where=where)
        if fq2 is not None and os.path.abspath(fq1) == os.path.abspath(fq2):
            raise ConfigError("fastq_1 and fastq_2 are the same file", where=where)
        extra = {h: rec[h] for h in header if h not in REQUIRED_COLUMNS}
        samples.append(Sample(sample=sid, patient_id=rec["patient_id"], visit_month=float(rec["visit_month"]),
                              arm=rec["arm"], flare=rec["flare"], fastq_1=fq1, fastq_2=fq2,
                              strandedness=rec["strandedness"], extra=extra))
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


def _resolve(base: Path, p: str) -> str:
    q = Path(p).expanduser()
    return str(q if q.is_absolute() else (base / q).resolve())
