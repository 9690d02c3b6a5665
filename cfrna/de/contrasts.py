"""Read and validate the contrasts file (nf-core/differentialabundance layout, plus two columns).

Columns: ``id,variable,reference,target`` (required), ``blocking`` (``;``-separated covariates),
``formula`` (overrides the design built from variable + blocking; a random intercept ``(1 | patient_id)``
selects the limma-voom mixed model, as in nf-core/differentialabundance), ``method`` (``deseq2`` |
``limma_voom``; forces the engine), and two cfrna extensions:
``subset`` (a pandas query selecting the samples of this contrast, e.g. the pre-flare window
``days_to_flare <= 90 or flare == 'no_flare'``) and ``coefficient`` (the design-matrix column to test,
needed for interaction terms such as ``arm[T.steroid_tapering]:flare[T.flare]``).

:func:`check_contrast` resolves one contrast against the sample table and rejects, with a one-line
:class:`~cfrna.errors.ConfigError` naming ``file:line`` and the columns at fault, every design that
cannot be fitted: unknown columns or levels, fewer than two samples per group, missing values in
covariates, invalid formulas, rank-deficient (confounded) design matrices, unknown methods, random
terms other than a random intercept, a random intercept with ``method=deseq2``, and a random-effect
column with one level per sample.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cfrna.errors import ConfigError

log = logging.getLogger(__name__)

REQUIRED = ("id", "variable", "reference", "target")
OPTIONAL = ("blocking", "formula", "subset", "coefficient", "method")
METHODS = ("deseq2", "limma_voom")
_RANDOM_RE = re.compile(r"\(([^()|]*)\|([^()]*)\)")
_NAME_RE = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Contrast:
    """One row of the contrasts file.

    Attributes
    ----------
    id : str
        Contrast name, used in output file names (``<id>.deseq2.tsv``).
    variable, reference, target : str
        Samplesheet column and its two levels; log2 fold changes are target over reference.
    blocking : tuple of str
        Covariates added before the variable (``patient_id`` for paired designs).
    formula : str or None
        Design formula overriding ``~ blocking + variable``.
    subset : str or None
        A pandas query selecting the samples used by this contrast.
    coefficient : str or None
        Design-matrix column to test; default ``<variable>[T.<target>]``.
    method : str or None
        ``deseq2`` or ``limma_voom`` when given in the file; otherwise chosen from the formula
        (``limma_voom`` when it has a random intercept).
    source : str
        File the contrast was read from (for error messages).
    line : int
        Line number in ``source``.
    """

    id: str
    variable: str
    reference: str
    target: str
    blocking: tuple[str, ...] = ()
    formula: str | None = None
    subset: str | None = None
    coefficient: str | None = None
    method: str | None = None
    source: str = "<contrasts>"
    line: int = 0

    @property
    def where(self) -> str:
        """``file:line`` of this contrast."""
        return f"{self.source}:{self.line}"


@dataclass
class DesignSummary:
    """A contrast resolved against the samples: what will be fitted.

    Attributes
    ----------
    contrast : Contrast
        The contrast.
    formula : str
        Design formula used (``~ a + b``).
    coefficient : str
        Design-matrix column whose Wald statistic is reported (and shrunk).
    groups : dict
        Samples per level, ``{reference: n, target: n}``.
    samples : list of str
        Samples used, in sample-table order.
    metadata : pandas.DataFrame
        Design columns for ``samples`` (the contrast variable as a categorical with the reference
        level first).
    design_columns : list of str
        Columns of the design matrix.
    dropped : dict
        Sample -> why it is not used (QC exclusion, empty variable, subset, other level).
    method : str
        ``deseq2`` or ``limma_voom``.
    random_effect : str or None
        Column of the random intercept ``(1 | column)`` (limma_voom), else None.
    full_formula : str
        The formula as written, random term included (``formula`` is its fixed part).
    """

    contrast: Contrast
    formula: str
    coefficient: str
    groups: dict[str, int]
    samples: list[str]
    metadata: pd.DataFrame
    design_columns: list[str]
    dropped: dict[str, str] = field(default_factory=dict)
    method: str = "deseq2"
    random_effect: str | None = None
    full_formula: str = ""

    def describe(self) -> str:
        """One line: ``id: target n=.. vs reference n=.. (formula; k dropped)``."""
        c = self.contrast
        return (f"{c.id}: {c.target} n={self.groups[c.target]} vs {c.reference} n={self.groups[c.reference]} "
                f"({self.full_formula or self.formula}; {self.method}; {len(self.dropped)} sample(s) not used)")


def split_random(formula: str, where: str = "<formula>", cid: str = "?") -> tuple[str, str | None]:
    """Split ``~ a + b + (1 | g)`` into the fixed formula ``~ a + b`` and the random-intercept column ``g``.

    Raises
    ------
    ConfigError
        A random term other than an intercept (``(x | g)``), a grouping that is not a column name,
        or more than one random term.
    """
    terms = list(_RANDOM_RE.finditer(formula))
    if not terms:
        if "|" in formula:
            raise ConfigError(f"contrast '{cid}': formula {formula!r} has '|' outside a random term '(1 | column)'",
                              where=where, hint="write the random intercept as (1 | patient_id)")
        return formula, None
    if len(terms) > 1:
        raise ConfigError(f"contrast '{cid}': formula {formula!r} has {len(terms)} random terms; one random "
                          "intercept is supported", where=where, hint="keep a single (1 | patient_id)")
    t = terms[0]
    lhs, grp = t.group(1).strip(), t.group(2).strip()
    if lhs != "1":
        raise ConfigError(f"contrast '{cid}': random term '({lhs} | {grp})' is not supported; only a random "
                          "intercept (1 | column) is", where=where, hint="write (1 | patient_id)")
    if not _NAME_RE.match(grp):
        raise ConfigError(f"contrast '{cid}': random-effect grouping {grp!r} is not a column name", where=where,
                          hint="write (1 | patient_id)")
    fixed = (formula[:t.start()] + formula[t.end():]).strip()
    fixed = re.sub(r"\+\s*\+", "+", fixed)
    fixed = re.sub(r"~\s*\+", "~ ", fixed)
    fixed = re.sub(r"\+\s*$", "", fixed).strip()
    fixed = re.sub(r"\s+", " ", fixed)
    if "|" in fixed:
        raise ConfigError(f"contrast '{cid}': formula {formula!r} has '|' outside a random term '(1 | column)'",
                          where=where, hint="write the random intercept as (1 | patient_id)")
    if re.fullmatch(r"~\s*", fixed):
        fixed = "~ 1"
    return fixed, grp


def read_contrasts(path: str | os.PathLike, samples: pd.DataFrame | None = None) -> list[Contrast]:
    """Parse a contrasts CSV; validate each contrast against ``samples`` when given.

    Parameters
    ----------
    path : path-like
        CSV with header ``id,variable,reference,target[,blocking][,formula][,subset][,coefficient]``.
        Blank lines and lines starting with ``#`` are ignored.
    samples : pandas.DataFrame, optional
        Sample metadata indexed by sample (``SampleSheet.to_frame()``). When given, every contrast
        goes through :func:`check_contrast` so that errors surface before anything runs.

    Returns
    -------
    list of Contrast
        In file order.

    Raises
    ------
    ConfigError
        Unreadable file, bad header, duplicate or unsafe ids, empty required fields, or (with
        ``samples``) any design problem found by :func:`check_contrast`.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"cannot read contrasts file: {exc.strerror}", where=str(path),
                          hint="check the --contrasts path") from exc
    except UnicodeDecodeError:
        raise ConfigError("contrasts file is not UTF-8 text", where=str(path), hint="save it as UTF-8 CSV") from None
    rows = [(i, r) for i, r in enumerate(csv.reader(io.StringIO(text, newline=None)), 1)
            if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")]
    if not rows:
        raise ConfigError("contrasts file is empty", where=str(path), hint=f"header: {','.join(REQUIRED + OPTIONAL)}")
    hline, header = rows[0]
    header = [h.strip() for h in header]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ConfigError(f"missing required column(s): {', '.join(missing)}", where=f"{path}:{hline}",
                          hint=f"the header must contain {','.join(REQUIRED)} (optional: {','.join(OPTIONAL)})")
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise ConfigError(f"unknown column(s): {', '.join(unknown)}", where=f"{path}:{hline}",
                          hint=f"allowed columns: {','.join(REQUIRED + OPTIONAL)}")
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ConfigError(f"duplicate column(s) in header: {', '.join(dup)}", where=f"{path}:{hline}")
    out: list[Contrast] = []
    seen: dict[str, int] = {}
    for lineno, row in rows[1:]:
        where = f"{path}:{lineno}"
        if len(row) != len(header):
            raise ConfigError(f"row has {len(row)} fields but the header has {len(header)}", where=where,
                              hint="check for missing or extra commas (quote formulas containing commas)")
        rec = {h: v.strip() for h, v in zip(header, row, strict=True)}
        for col in REQUIRED:
            if not rec[col]:
                raise ConfigError(f"column '{col}' is empty", where=where, hint="every contrast needs id, variable, reference and target")
        cid = rec["id"]
        if not _ID_RE.match(cid):
            raise ConfigError(f"contrast id {cid!r} has characters other than letters, digits, '_', '.', '-'",
                              where=where, hint="the id is used in output file names")
        if cid in seen:
            raise ConfigError(f"duplicate contrast id '{cid}' (first on line {seen[cid]})", where=where)
        seen[cid] = lineno
        if rec["reference"] == rec["target"]:
            raise ConfigError(f"contrast '{cid}': reference and target are both '{rec['target']}'", where=where,
                              hint="give two different levels of the variable")
        blocking = tuple(b.strip() for b in rec.get("blocking", "").replace(",", ";").split(";") if b.strip())
        formula = rec.get("formula") or None
        if formula is not None and not formula.lstrip().startswith("~"):
            formula = "~ " + formula
        method = (rec.get("method") or "").strip().lower() or None
        if method is not None and method not in METHODS:
            raise ConfigError(f"contrast '{cid}': unknown method {rec['method']!r}", where=where,
                              hint=f"use one of {', '.join(METHODS)} or leave it empty")
        if formula is not None:
            _, rand = split_random(formula, where, cid)
            if rand is not None and method == "deseq2":
                raise ConfigError(f"contrast '{cid}': random intercept (1 | {rand}) needs method limma_voom, "
                                  "not deseq2", where=where,
                                  hint=f"set method to limma_voom, or make {rand} a fixed block (~ {rand} + ...)")
        out.append(Contrast(id=cid, variable=rec["variable"], reference=rec["reference"], target=rec["target"],
                            blocking=blocking, formula=formula, subset=rec.get("subset") or None,
                            coefficient=rec.get("coefficient") or None, method=method, source=str(path),
                            line=lineno))
    if not out:
        raise ConfigError("contrasts file has a header but no contrasts", where=str(path))
    if samples is not None:
        for c in out:
            check_contrast(c, samples)
    return out


def _is_missing(s: pd.Series) -> pd.Series:
    return s.isna() | (s.astype(str).str.strip() == "")


def _formula_variables(formula: str, where: str) -> list[str]:
    import formulaic

    try:
        f = formulaic.Formula(formula)
        names = sorted(str(v) for v in f.required_variables)
    except Exception as exc:  # formulaic raises several parser error types
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"invalid formula {formula!r}: {msg}", where=where,
                          hint="write a formula such as '~ patient_id + flare' or '~ arm * flare'") from None
    return names


def check_contrast(contrast: Contrast, samples: pd.DataFrame, *,
                   excluded: Mapping[str, str] | None = None) -> DesignSummary:
    """Resolve a contrast against the sample table and check that its design can be fitted.

    Parameters
    ----------
    contrast : Contrast
        From :func:`read_contrasts`.
    samples : pandas.DataFrame
        Sample metadata indexed by sample (``SampleSheet.to_frame()``, possibly with QC columns).
    excluded : mapping, optional
        Sample -> reason for samples removed by QC; they are not used and listed in ``dropped``.

    Returns
    -------
    DesignSummary
        Samples per group, formula, tested coefficient and the design metadata.

    Raises
    ------
    ConfigError
        One line with ``file:line`` naming the fault: unknown column or level, invalid formula or
        subset, missing covariate values, fewer than 2 samples per group (naming QC-excluded
        samples when exclusion emptied a group), or a rank-deficient design naming the confounded
        columns.
    """
    c = contrast
    where = c.where
    excluded = dict(excluded or {})
    cols = list(samples.columns)
    avail = f"available columns: {', '.join(cols)}"
    if c.variable not in samples.columns:
        raise ConfigError(f"contrast '{c.id}': unknown variable column '{c.variable}'", where=where, hint=avail)
    for b in c.blocking:
        if b not in samples.columns:
            raise ConfigError(f"contrast '{c.id}': unknown blocking column '{b}'", where=where, hint=avail)
    full_formula = c.formula or "~ " + " + ".join([*c.blocking, c.variable])
    formula, random_effect = split_random(full_formula, where, c.id)
    method = c.method or ("limma_voom" if random_effect else "deseq2")
    if random_effect is not None and method != "limma_voom":
        raise ConfigError(f"contrast '{c.id}': random intercept (1 | {random_effect}) needs method limma_voom, "
                          f"not {method}", where=where,
                          hint=f"set method to limma_voom, or make {random_effect} a fixed block")
    if random_effect is not None and random_effect not in samples.columns:
        raise ConfigError(f"contrast '{c.id}': unknown random-effect column '{random_effect}'", where=where,
                          hint=avail)
    fvars = _formula_variables(formula, where)
    unknown = [v for v in fvars if v not in samples.columns]
    if unknown:
        raise ConfigError(f"contrast '{c.id}': formula {formula!r} uses unknown column(s) {', '.join(unknown)}",
                          where=where, hint=avail)
    if c.variable not in fvars:
        raise ConfigError(f"contrast '{c.id}': formula {formula!r} does not contain the contrast variable "
                          f"'{c.variable}'", where=where, hint="add the variable to the formula")
    design_vars = list(dict.fromkeys([*fvars, *c.blocking]))
    if random_effect is not None and random_effect in design_vars:
        raise ConfigError(f"contrast '{c.id}': '{random_effect}' is both a fixed effect and the random intercept "
                          f"in {full_formula!r}", where=where,
                          hint=f"keep either '{random_effect}' (fixed block) or '(1 | {random_effect})'")

    var = samples[c.variable]
    levels = set(var[~_is_missing(var)].astype(str))
    for role, lev in (("reference", c.reference), ("target", c.target)):
        if lev not in levels:
            raise ConfigError(f"contrast '{c.id}': {role} level '{lev}' not found in column '{c.variable}'",
                              where=where, hint=f"levels present: {', '.join(sorted(levels)) or 'none'}")

    dropped: dict[str, str] = {}
    keep = pd.Series(True, index=samples.index)
    for s, why in excluded.items():
        if s in keep.index:
            keep[s] = False
            dropped[s] = f"excluded by QC: {why}" if why else "excluded by QC"
    if c.subset:
        try:
            sel = samples.query(c.subset, engine="python")
        except Exception as exc:
            raise ConfigError(f"contrast '{c.id}': invalid subset {c.subset!r}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                              where=where, hint="write a pandas query over samplesheet columns, e.g. \"days_to_flare <= 90\"") from None
        out_sub = ~samples.index.isin(sel.index)
        for s in samples.index[out_sub & keep.to_numpy()]:
            dropped[s] = f"outside subset {c.subset!r}"
        keep &= ~out_sub
    miss = _is_missing(var)
    n_empty = int((miss & keep).sum())
    if n_empty:
        log.info("contrast %s: %d sample(s) with empty '%s' are not in this contrast", c.id, n_empty, c.variable)
        for s in samples.index[(miss & keep).to_numpy()]:
            dropped[s] = f"empty {c.variable}"
    keep &= ~miss
    other = ~var.astype(str).isin([c.reference, c.target])
    for s in samples.index[(other & keep).to_numpy()]:
        dropped[s] = f"{c.variable}={var[s]} (not {c.reference}/{c.target})"
    keep &= ~other

    for v in [*design_vars, *([random_effect] if random_effect else [])]:
        if v == c.variable:
            continue
        bad = _is_missing(samples[v]) & keep
        if bad.any():
            names = list(samples.index[bad.to_numpy()])
            raise ConfigError(f"contrast '{c.id}': design column '{v}' has missing values for sample(s) "
                              f"{', '.join(names[:10])}{' …' if len(names) > 10 else ''}", where=where,
                              hint="fill the values or restrict the contrast with a 'subset' query")

    used = samples.index[keep.to_numpy()]
    vals = var[used].astype(str)
    groups = {c.reference: int((vals == c.reference).sum()), c.target: int((vals == c.target).sum())}
    for lev, n in groups.items():
        if n < 2:
            lost = [s for s, why in dropped.items() if why.startswith("excluded by QC") and str(var.get(s)) == lev]
            if lost:
                raise ConfigError(f"contrast '{c.id}': group {c.variable}={lev} has {n} sample(s) after QC exclusion "
                                  f"(excluded: {', '.join(lost)})", where=where,
                                  hint="rerun with --keep-failed or drop this contrast")
            raise ConfigError(f"contrast '{c.id}': group {c.variable}={lev} has {n} sample(s); at least 2 are needed",
                              where=where, hint="add samples or choose other levels")

    meta = pd.DataFrame(index=used)
    for v in design_vars:
        col = samples.loc[used, v]
        if v == c.variable:
            meta[v] = pd.Categorical(col.astype(str), categories=[c.reference, c.target])
        elif pd.api.types.is_bool_dtype(col) or not pd.api.types.is_numeric_dtype(col):
            cats = sorted(col.astype(str).unique())
            meta[v] = pd.Categorical(col.astype(str), categories=cats)
        else:
            meta[v] = col.astype(float)
    if random_effect is not None:
        grp = samples.loc[used, random_effect].astype(str)
        sizes = grp.value_counts()
        if int(sizes.max()) < 2:
            raise ConfigError(f"contrast '{c.id}': random effect (1 | {random_effect}) has one level per sample "
                              f"({len(sizes)} levels for {len(used)} samples): there is no within-group "
                              "correlation to estimate", where=where,
                              hint=f"use the column of repeated units (e.g. patient_id), or drop (1 | {random_effect})")
        meta[random_effect] = grp.to_numpy()
    dm = _design_matrix(formula, meta, where=where, cid=c.id)
    dm.attrs["repeated"] = [v for v in design_vars if v != c.variable and isinstance(meta[v].dtype, pd.CategoricalDtype)
                            and meta[v].nunique() < len(meta)]
    _check_rank(dm, design_vars, c, formula, random_hint=random_effect is None)
    coef = c.coefficient or f"{c.variable}[T.{c.target}]"
    if coef not in dm.columns:
        raise ConfigError(f"contrast '{c.id}': coefficient '{coef}' is not a column of the design matrix",
                          where=where, hint=f"design columns: {', '.join(dm.columns)}")
    return DesignSummary(contrast=c, formula=formula, coefficient=coef, groups=groups, samples=list(used),
                         metadata=meta, design_columns=list(dm.columns), dropped=dropped, method=method,
                         random_effect=random_effect, full_formula=full_formula)


def _design_matrix(formula: str, meta: pd.DataFrame, *, where: str, cid: str) -> pd.DataFrame:
    import formulaic

    try:
        dm = formulaic.model_matrix(formula, meta)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"contrast '{cid}': cannot build the design matrix of {formula!r}: {msg}", where=where,
                          hint="check the formula terms against the samplesheet columns") from None
    return pd.DataFrame(np.asarray(dm, dtype=float), index=meta.index, columns=list(dm.columns))


def _term_of(column: str, variables: list[str]) -> list[str]:
    """Variables named in a design-matrix column (``arm[T.b]:flare[T.flare]`` -> arm, flare)."""
    found = []
    for part in column.split(":"):
        base = part.split("[", 1)[0]
        base = re.sub(r"^C\((.*?)(,.*)?\)$", r"\1", base)
        for v in variables:
            if base == v or re.search(rf"\b{re.escape(v)}\b", base):
                found.append(v)
                break
    return found


def _check_rank(dm: pd.DataFrame, variables: list[str], c: Contrast, formula: str, *,
                random_hint: bool = False) -> None:
    x = dm.to_numpy()
    n, p = x.shape
    rank = int(np.linalg.matrix_rank(x))
    if rank < p:
        # columns taking part in a linear dependency: non-zero loadings on the null space
        _, sv, vt = np.linalg.svd(x, full_matrices=True)
        tol = sv.max() * max(n, p) * np.finfo(float).eps
        null = vt[np.sum(sv > tol):]
        involved_cols = [dm.columns[j] for j in range(p) if np.abs(null[:, j]).max() > 1e-8]
        zero_cols = [col for col in dm.columns if not np.any(dm[col].to_numpy())]
        involved_vars = list(dict.fromkeys(v for col in involved_cols for v in _term_of(col, variables)))
        if zero_cols:
            what = f"design columns {', '.join(zero_cols)} are all zero (a level combination has no samples)"
        elif c.variable in involved_vars:
            others = [v for v in involved_vars if v != c.variable]
            what = (f"{c.variable} is confounded with {', '.join(others)}" if others
                    else f"{c.variable} is confounded with the intercept")
        else:
            what = f"{', '.join(involved_vars) or 'covariates'} are confounded with each other"
        hint = "drop or merge the confounded covariates"
        if random_hint and c.variable in involved_vars:
            blocks = [v for v in involved_vars if v != c.variable and v in dm.attrs.get("repeated", ())]
            if blocks:
                hint = (f"{c.variable} varies between {blocks[0]} groups, so a fixed {blocks[0]} block absorbs it: "
                        f"use a random intercept instead, formula '~ {c.variable} + (1 | {blocks[0]})' "
                        "(method limma_voom)")
        raise ConfigError(f"contrast '{c.id}': design {formula!r} is rank-deficient ({rank} < {p} columns): {what}; "
                          f"dependent columns: {', '.join(involved_cols)}", where=c.where, hint=hint)
    if n <= p:
        raise ConfigError(f"contrast '{c.id}': design {formula!r} has {p} coefficients for {n} samples "
                          "(no residual degrees of freedom)", where=c.where,
                          hint="use fewer covariates or more samples")
