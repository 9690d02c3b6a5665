"""QC decisions: literature thresholds and cohort-relative (median/MAD) outliers -> pass/warn/fail.

Every flag carries the rule that fired, e.g. ``intron_exon_ratio=3.4 >= 2.8 (QUAKE 95th pct)``.
The defaults and their sources are documented in ``docs/qc.md``; a JSON or YAML file given with
``--thresholds`` overrides them (same structure as :data:`DEFAULTS`).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cfrna.config import QC_RULE_LEVELS, QC_STATUSES
from cfrna.errors import ConfigError

log = logging.getLogger(__name__)

LEVELS = QC_STATUSES
_RULE_KEYS = {"fail_at_or_above", "fail_below", "warn_at_or_above", "warn_below", "source",
              "outlier", "outlier_level", "outlier_fail_k", "outlier_floor"}

#: default thresholds (see docs/qc.md for the sources)
DEFAULTS: dict[str, Any] = {
    # robust z = (x - median) / max(1.4826 * MAD, outlier_floor); |z| > mad_k flags an outlier
    "mad_k": 4.0,
    # the scale is never below this fraction of |median| (a cohort of identical values has MAD 0)
    "outlier_rel_floor": 0.05,
    # outlier rules need at least this many samples with a value
    "min_cohort": 5,
    # NG80 minimum: a number, or "auto" = min(ng80_cap, ng80_gene_fraction * genes in the GTF)
    "ng80_min": "auto",
    "ng80_cap": 1000,
    "ng80_gene_fraction": 0.1,
    # Tuñí 2025 high-quality rule: NG80 >= ng80_min AND (spliced > spliced_min OR exonic > exonic_min)
    "tuni_spliced_min": 0.20,
    "tuni_exonic_min": 0.75,
    "tuni_level": "warn",
    # reads assigned to genes: fail below max(absolute, fraction x cohort median)
    "reads_assigned_min": 1000,
    "reads_assigned_cohort_fraction": 0.1,
    # a declared sex that disagrees with XIST/chrY, or a declared strandedness that disagrees
    "sex_mismatch_level": "warn",
    "strandedness_mismatch_level": "warn",
    # known antisense share of RNA reads of the protocol (e.g. 0.01 for dUTP), used by the gDNA estimate
    "gdna_strand_error": 0.0,
    # degradation: several independent signals (cohort outliers beyond mad_k in the named direction)
    "degradation_signals": {"three_prime_bias": "high", "spliced_exonic_fraction": "low",
                            "adapter_fraction": "high"},
    "degradation_min_signals": 2,
    "degradation_level": "fail",
    "rules": {
        "intron_exon_ratio": {"fail_at_or_above": 2.8, "source": "QUAKE 95th pct",
                              "outlier": "high", "outlier_level": "warn", "outlier_fail_k": 3.0,
                              "outlier_floor": 0.05},
        "rrna_fraction": {"fail_at_or_above": 0.2, "source": "QUAKE", "outlier": "high",
                          "outlier_level": "warn", "outlier_floor": 0.01},
        "three_prime_bias": {"fail_at_or_above": 0.4, "source": "QUAKE degradation", "outlier": "high",
                             "outlier_level": "warn", "outlier_fail_k": 3.0, "outlier_floor": 0.02},
        "gdna_fraction": {"warn_at_or_above": 0.15, "fail_at_or_above": 0.3,
                          "source": "cfrna gDNA estimate", "outlier": "high",
                          "outlier_level": "warn", "outlier_fail_k": 3.0, "outlier_floor": 0.02},
        "hemoglobin_fraction": {"warn_at_or_above": 0.15, "fail_at_or_above": 0.3,
                                "source": "cfrna hemolysis default", "outlier": "high",
                                "outlier_level": "warn", "outlier_fail_k": 3.0, "outlier_floor": 0.005},
        "mapping_rate": {"fail_below": 0.1, "warn_below": 0.5, "source": "cfPeak unmapped <= 0.9",
                         "outlier": "low", "outlier_level": "warn", "outlier_floor": 0.02},
        "erythroid_fraction": {"outlier": "high", "outlier_level": "warn", "outlier_floor": 0.002},
        "platelet_fraction": {"outlier": "high", "outlier_level": "warn", "outlier_floor": 0.002},
        "mito_fraction": {"outlier": "high", "outlier_level": "warn", "outlier_floor": 0.01},
        "genes_detected": {"outlier": "low", "outlier_level": "warn"},
        "duplication_fraction": {"outlier": "high", "outlier_level": "warn", "outlier_floor": 0.02},
        "intergenic_fraction": {"outlier": "high", "outlier_level": "warn", "outlier_floor": 0.02},
        "spliced_exonic_fraction": {"outlier": "low", "outlier_level": "warn", "outlier_floor": 0.02},
        "adapter_fraction": {"outlier": "high", "outlier_level": "warn", "outlier_floor": 0.01},
    },
}


# ----------------------------------------------------------------------------------------- config
def load_thresholds(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults merged with a JSON/YAML file and/or a dict; unknown keys or bad values raise ConfigError."""
    cfg = copy.deepcopy(DEFAULTS)
    where = "thresholds"
    if path is not None:
        where = str(path)
        user = _read_config_file(Path(path))
        _merge_config(cfg, user, where)
    if overrides:
        _merge_config(cfg, overrides, where if path is None else f"{where} (+overrides)")
    _validate(cfg, where)
    return cfg


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read thresholds file: {exc.strerror}", where=str(path),
                          hint="check the --thresholds path") from exc
    except UnicodeDecodeError:
        raise ConfigError("thresholds file is not UTF-8 text", where=str(path)) from None
    if path.suffix.lower() == ".json":
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"malformed JSON ({exc.msg})", where=f"{path}:{exc.lineno}",
                              hint="fix the thresholds file") from None
    else:
        try:
            import yaml
        except ImportError:
            raise ConfigError("reading a YAML thresholds file needs PyYAML", where=str(path),
                              hint="pip install pyyaml, or give the thresholds as .json") from None
        try:
            obj = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            loc = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ConfigError(f"malformed YAML ({getattr(exc, 'problem', exc)})", where=loc,
                              hint="fix the thresholds file") from None
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise ConfigError("thresholds file must hold a mapping of keys to values", where=str(path),
                          hint="see docs/qc.md for the structure")
    return obj


def _merge_config(cfg: dict[str, Any], user: dict[str, Any], where: str) -> None:
    for key, val in user.items():
        if key not in DEFAULTS:
            raise ConfigError(f"unknown thresholds key {key!r}", where=where,
                              hint=f"valid keys: {', '.join(sorted(DEFAULTS))}")
        if key == "rules":
            if not isinstance(val, dict):
                raise ConfigError("'rules' must map metric names to rule settings", where=where)
            for metric, rule in val.items():
                if rule is None:  # disable a rule
                    cfg["rules"].pop(metric, None)
                    continue
                if not isinstance(rule, dict):
                    raise ConfigError(f"rules.{metric} must be a mapping", where=where,
                                      hint="e.g. {fail_at_or_above: 2.8}")
                bad = set(rule) - _RULE_KEYS
                if bad:
                    raise ConfigError(f"rules.{metric}: unknown setting(s) {', '.join(sorted(bad))}", where=where,
                                      hint=f"valid: {', '.join(sorted(_RULE_KEYS))}")
                cfg["rules"].setdefault(metric, {}).update(rule)
        else:
            cfg[key] = val


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _validate(cfg: dict[str, Any], where: str) -> None:
    from cfrna.qc.metrics import METRICS

    for key in ("mad_k", "outlier_rel_floor", "ng80_cap", "ng80_gene_fraction", "tuni_spliced_min", "tuni_exonic_min",
                "reads_assigned_min", "reads_assigned_cohort_fraction", "min_cohort"):
        if not _num(cfg[key]) or cfg[key] < 0:
            raise ConfigError(f"{key} must be a number >= 0, found {cfg[key]!r}", where=where)
    if cfg["mad_k"] <= 0:
        raise ConfigError(f"mad_k must be > 0, found {cfg['mad_k']!r}", where=where)
    if cfg["ng80_min"] != "auto" and (not _num(cfg["ng80_min"]) or cfg["ng80_min"] < 0):
        raise ConfigError(f"ng80_min must be 'auto' or a number >= 0, found {cfg['ng80_min']!r}", where=where)
    if not _num(cfg["gdna_strand_error"]) or not 0 <= cfg["gdna_strand_error"] < 0.5:
        raise ConfigError(f"gdna_strand_error must be a number in [0, 0.5), found {cfg['gdna_strand_error']!r}",
                          where=where)
    if not isinstance(cfg["degradation_min_signals"], int) or cfg["degradation_min_signals"] < 1:
        raise ConfigError(f"degradation_min_signals must be an integer >= 1, found {cfg['degradation_min_signals']!r}",
                          where=where)
    sig = cfg["degradation_signals"]
    if not isinstance(sig, dict) or any(m not in METRICS or d not in ("high", "low") for m, d in sig.items()):
        raise ConfigError("degradation_signals must map metric names to high or low", where=where,
                          hint="e.g. {three_prime_bias: high, spliced_exonic_fraction: low}")
    for key in ("tuni_level", "sex_mismatch_level", "strandedness_mismatch_level", "degradation_level"):
        if cfg[key] not in QC_RULE_LEVELS:
            raise ConfigError(f"{key} must be off, warn or fail, found {cfg[key]!r}", where=where)
    for metric, rule in cfg["rules"].items():
        if metric not in METRICS:
            raise ConfigError(f"rules: unknown metric {metric!r}", where=where,
                              hint="metric names are listed in docs/qc.md")
        for k in ("fail_at_or_above", "fail_below", "warn_at_or_above", "warn_below", "outlier_fail_k",
                  "outlier_floor"):
            if rule.get(k) is not None and not _num(rule[k]):
                raise ConfigError(f"rules.{metric}.{k} must be a number, found {rule[k]!r}", where=where)
        if rule.get("outlier") not in (None, "off", "high", "low", "both"):
            raise ConfigError(f"rules.{metric}.outlier must be high, low, both or off, found {rule['outlier']!r}",
                              where=where)
        if rule.get("outlier_level", "warn") not in ("warn", "fail"):
            raise ConfigError(f"rules.{metric}.outlier_level must be warn or fail", where=where)


# ----------------------------------------------------------------------------------------- decisions
def _fmt(v: float) -> str:
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        return f"{int(v)}"
    return f"{v:.4g}"


def robust_z(values: pd.Series, *, floor: float = 0.0, rel_floor: float = 0.0) -> tuple[pd.Series, float, float]:
    """(x - median) / max(1.4826 * MAD, floor, rel_floor * |median|); returns z, median and the scale used."""
    x = values.astype(float)
    med = float(np.nanmedian(x))
    mad = float(np.nanmedian(np.abs(x - med)))
    scale = max(1.4826 * mad, float(floor), float(rel_floor) * abs(med), 1e-12)
    return (x - med) / scale, med, scale


class _Flags:
    def __init__(self, samples: list[str]):
        self.status: dict[str, dict[str, str]] = {s: {} for s in samples}
        self.reasons: dict[str, list[str]] = {s: [] for s in samples}

    def set(self, sample: str, key: str, level: str, reason: str | None = None, *, cap: str = "fail") -> None:
        if LEVELS.index(level) > LEVELS.index(cap):
            level = cap
            if reason:
                reason += f" [capped at {cap}: low-confidence estimate]"
        cur = self.status[sample].get(key, "pass")
        if LEVELS.index(level) > LEVELS.index(cur):
            self.status[sample][key] = level
        else:
            self.status[sample].setdefault(key, cur)
        if reason and level != "pass":
            self.reasons[sample].append(f"{level}: {reason}")


def evaluate(metrics: pd.DataFrame, config: dict[str, Any], *, n_genes: int,
             missing: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Apply the rules to a metrics table (index = sample).

    Returns a DataFrame with ``<metric>_status`` columns, ``status`` (worst level) and ``reasons``
    (list of strings). ``missing`` maps a sample to the input files it lacks (each -> fail).
    """
    samples = list(metrics.index)
    fl = _Flags(samples)
    missing = missing or {}
    for s in samples:
        fl.set(s, "inputs", "pass")
        for f in missing.get(s, []):
            fl.set(s, "inputs", "fail", f"missing {f}")
    k = float(config["mad_k"])
    for metric, rule in config["rules"].items():
        if metric not in metrics.columns:
            continue
        col = pd.to_numeric(metrics[metric], errors="coerce")
        src = f" ({rule['source']})" if rule.get("source") else ""
        key = f"{metric}_status"
        caps = _caps(metrics, metric)
        for s in samples:
            v = col[s]
            if pd.isna(v):
                fl.status[s].setdefault(key, "na")
                continue
            fl.set(s, key, "pass")
            for level in ("fail", "warn"):
                hi, lo = rule.get(f"{level}_at_or_above"), rule.get(f"{level}_below")
                if hi is not None and v >= hi:
                    fl.set(s, key, level, f"{metric}={_fmt(v)} >= {_fmt(hi)}{src}", cap=caps[s])
                    break
                if lo is not None and v < lo:
                    fl.set(s, key, level, f"{metric}={_fmt(v)} < {_fmt(lo)}{src}", cap=caps[s])
                    break
        direction = rule.get("outlier")
        n_ok = int(col.notna().sum())
        if direction in (None, "off") or n_ok < int(config["min_cohort"]):
            continue
        z, med, scale = robust_z(col, floor=float(rule.get("outlier_floor", 0.0) or 0.0),
                                 rel_floor=float(config["outlier_rel_floor"]))
        fail_k = rule.get("outlier_fail_k")
        for s in samples:
            zs = z[s]
            if pd.isna(zs):
                continue
            hit = (direction in ("high", "both") and zs > k) or (direction in ("low", "both") and zs < -k)
            if not hit:
                continue
            level = rule.get("outlier_level", "warn")
            kk = k
            if fail_k is not None and abs(zs) > k * float(fail_k):
                level, kk = "fail", k * float(fail_k)
            sign = ">" if zs > 0 else "<"
            fl.set(s, key, level, f"{metric}={_fmt(col[s])} cohort outlier (robust z={zs:.1f} {sign} "
                                  f"{'' if zs > 0 else '-'}{_fmt(kk)}; median {_fmt(med)}, scale {_fmt(scale)})",
                   cap=caps[s])
    _special_rules(metrics, config, fl, n_genes=n_genes)
    _degradation_rule(metrics, config, fl)
    out = pd.DataFrame.from_dict(fl.status, orient="index").reindex(samples)
    out = out.fillna("na")
    worst = []
    for s in samples:
        levels = [lv for lv in fl.status[s].values() if lv in LEVELS]
        worst.append(max(levels, key=LEVELS.index) if levels else "pass")
    out["status"] = worst
    out["reasons"] = [fl.reasons[s] for s in samples]
    return out


def _caps(metrics: pd.DataFrame, metric: str) -> dict[str, str]:
    """Highest level a metric may reach per sample: the unstranded gDNA estimate is only an upper bound."""
    caps = dict.fromkeys(metrics.index, "fail")
    if metric == "gdna_fraction" and "gdna_method" in metrics.columns:
        for s in metrics.index:
            if metrics.at[s, "gdna_method"] not in ("strand", None) and not pd.isna(metrics.at[s, "gdna_method"]):
                caps[s] = "warn"
    return caps


def ng80_minimum(config: dict[str, Any], n_genes: int) -> float:
    """The NG80 minimum in force: a configured number, or min(cap, fraction x genes in the GTF)."""
    if config["ng80_min"] == "auto":
        return float(min(config["ng80_cap"], config["ng80_gene_fraction"] * n_genes))
    return float(config["ng80_min"])


def _special_rules(metrics: pd.DataFrame, config: dict[str, Any], fl: _Flags, *, n_genes: int) -> None:
    samples = list(metrics.index)
    get = lambda s, c: metrics.at[s, c] if c in metrics.columns else None  # noqa: E731
    # reads assigned: absolute minimum and a fraction of the cohort median
    if "reads_assigned" in metrics.columns:
        ra = pd.to_numeric(metrics["reads_assigned"], errors="coerce")
        med = float(ra.median()) if ra.notna().any() else 0.0
        rel = float(config["reads_assigned_cohort_fraction"]) * med
        thr = max(float(config["reads_assigned_min"]), rel)
        why = (f"QUAKE-style minimum; max({_fmt(float(config['reads_assigned_min']))}, "
               f"{config['reads_assigned_cohort_fraction']:g} x cohort median {_fmt(med)})")
        for s in samples:
            v = ra[s]
            if pd.isna(v):
                fl.status[s].setdefault("reads_assigned_status", "na")
            elif v < thr:
                fl.set(s, "reads_assigned_status", "fail", f"reads_assigned={_fmt(v)} < {_fmt(thr)} ({why})")
            else:
                fl.set(s, "reads_assigned_status", "pass")
    # Tuñí 2025 high-quality rule
    level = config["tuni_level"]
    ngmin = ng80_minimum(config, n_genes)
    for s in samples:
        ng, sp, ex = get(s, "ng80"), get(s, "spliced_fraction"), get(s, "exonic_fraction")
        if ng is None or pd.isna(ng):
            fl.status[s].setdefault("ng80_status", "na")
            continue
        if level == "off":
            fl.set(s, "ng80_status", "pass")
            continue
        parts = []
        if ng < ngmin:
            parts.append(f"ng80={_fmt(ng)} < {_fmt(ngmin)}")
        sp_ok = sp is not None and not pd.isna(sp) and sp > config["tuni_spliced_min"]
        ex_ok = ex is not None and not pd.isna(ex) and ex > config["tuni_exonic_min"]
        if not (sp_ok or ex_ok):
            sp_t = "NA" if sp is None or pd.isna(sp) else _fmt(sp)
            ex_t = "NA" if ex is None or pd.isna(ex) else _fmt(ex)
            parts.append(f"spliced_fraction={sp_t} <= {_fmt(config['tuni_spliced_min'])} and "
                         f"exonic_fraction={ex_t} <= {_fmt(config['tuni_exonic_min'])}")
        if parts:
            fl.set(s, "ng80_status", level, f"not high quality: {'; '.join(parts)} (Tuñí 2025)")
        else:
            fl.set(s, "ng80_status", "pass")
    # sex check and strandedness agreement
    for s in samples:
        sc = get(s, "sex_check")
        if sc == "mismatch" and config["sex_mismatch_level"] != "off":
            fl.set(s, "sex_check_status", config["sex_mismatch_level"],
                   f"sex_check: declared {get(s, 'sex_declared')} but XIST/chrY says {get(s, 'sex_inferred')}")
        elif sc == "match":
            fl.set(s, "sex_check_status", "pass")
        else:
            fl.status[s].setdefault("sex_check_status", "na")
        dec, inf = get(s, "strandedness_declared"), get(s, "strandedness_inferred")
        lvl = config["strandedness_mismatch_level"]
        if dec in ("forward", "reverse", "unstranded") and inf in ("forward", "reverse", "unstranded") \
                and dec != inf and lvl != "off":
            fl.set(s, "strandedness_status", lvl,
                   f"strandedness declared {dec} but inferred {inf} (nf-core/rnaseq 80%/10% rule)")
        elif inf is not None:
            fl.set(s, "strandedness_status", "pass")


def _degradation_rule(metrics: pd.DataFrame, config: dict[str, Any], fl: _Flags) -> None:
    """Degradation: at least ``degradation_min_signals`` independent signals are cohort outliers.

    Degraded RNA gives short inserts (adapter read-through), fewer reads across splice junctions
    (spliced share of *exonic* reads, less diluted by gDNA than the spliced share of all reads) and reads piled in 3'-most exons.
    """
    level = config["degradation_level"]
    signals = config["degradation_signals"]
    if level == "off" or not signals:
        return
    k = float(config["mad_k"])
    hits: dict[str, list[str]] = {s: [] for s in metrics.index}
    n_signals = 0
    for metric, direction in signals.items():
        if metric not in metrics.columns:
            continue
        col = pd.to_numeric(metrics[metric], errors="coerce")
        if int(col.notna().sum()) < int(config["min_cohort"]):
            continue
        n_signals += 1
        rule = config["rules"].get(metric, {})
        z, _med, _scale = robust_z(col, floor=float(rule.get("outlier_floor", 0.0) or 0.0),
                                   rel_floor=float(config["outlier_rel_floor"]))
        for s in metrics.index:
            zs = z[s]
            if pd.notna(zs) and ((direction == "high" and zs > k) or (direction == "low" and zs < -k)):
                hits[s].append(f"{metric}={_fmt(col[s])} (z={zs:.1f})")
    need = int(config["degradation_min_signals"])
    for s in metrics.index:
        if n_signals < need:
            fl.status[s].setdefault("degradation_status", "na")
        elif len(hits[s]) >= need:
            fl.set(s, "degradation_status", level,
                   f"degradation: {len(hits[s])} of {n_signals} signals are cohort outliers beyond "
                   f"|z| > {_fmt(k)}: {', '.join(hits[s])}")
        else:
            fl.set(s, "degradation_status", "pass")
