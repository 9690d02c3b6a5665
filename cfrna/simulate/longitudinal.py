"""The longitudinal trial model: patients followed over fixed visits, flares, and planted effects.

A CSTAR008-like cohort: each patient is seen at fixed months (default 0, 3, 6, 12, 18); some
patients flare once, at one visit after baseline; the visits within ``preflare_days`` before the flare
form the pre-flare window. On the natural-log expression scale, per gene ``g`` and sample ``s`` of
patient ``p``::

    log mu[g, s] = log base[g] + b[g, p] + e[g, s]
                   + ln 2 * ( lfc_flare[g]      * at_flare[s]
                            + lfc_preflare[g]   * pre_flare[s]
                            + lfc_flare_pt[g]   * flare_patient[p]
                            + lfc_arm[g]        * tapering[p]
                            + lfc_arm_flare[g]  * tapering[p] * at_flare[s] )
                   + hemolysis and sex terms (as in the cross-sectional model)

``e ~ N(0, sigma_within^2)`` with ``sigma_within^2 = log(1 + dispersion[g])`` (a log-normal
biological noise of the gene's dispersion) and the patient random intercept
``b ~ N(0, sigma_patient^2)`` with ``sigma_patient^2 = icc / (1 - icc) * sigma_within^2``, so that the
intra-class correlation of the biological log expression is ``icc`` for every gene (the Poisson
sampling noise of the reads or counts comes on top).

Planted gene kinds (``truth/longitudinal_genes.tsv``):

- ``flare``: the cross-sectional catalogue's flare genes (interferon module up, plasmablast up,
  T-cell down, fillers) change at the flare visit against the same patient's other visits
  (within-patient effect);
- ``preflare``: change at the pre-flare visits only (an early signal);
- ``flare_patient``: differ between patients who flare and patients who never flare, at every
  visit (between-patient effect);
- ``arm``: differ between the steroid-tapering and the maintenance arm at every visit;
- ``arm_flare``: change at flare in the tapering arm only (arm x flare interaction).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cfrna.errors import ConfigError
from cfrna.simulate.model import ARMS, BAD_KINDS, HEMOLYSIS_FOLD, _steroid_dose, draw_counts, gene_catalog

log = logging.getLogger(__name__)

DAYS_PER_MONTH = 30.44
DEFAULT_VISITS = (0, 3, 6, 12, 18)
#: kinds of planted genes, in the order of the truth columns
KINDS = ("flare", "preflare", "flare_patient", "arm", "arm_flare")
LFC_COLUMNS = {k: f"log2fc_{k}" for k in KINDS}
#: (fraction of genes, |log2FC| range) of the kinds planted on filler genes
_PLANT = {"preflare": (0.02, (1.2, 2.0)), "flare_patient": (0.03, (1.0, 1.8)), "arm": (0.02, (1.0, 1.8)),
          "arm_flare": (0.01, (1.8, 2.6))}
LONG_SHEET_COLUMNS = ("sample", "patient_id", "visit_month", "arm", "flare", "fastq_1", "fastq_2", "strandedness",
                      "batch", "second_randomization", "steroid_dose_mg", "egfr", "sex", "months_to_flare",
                      "days_to_flare", "flare_window", "flare_patient")


@dataclass(frozen=True)
class LongitudinalSpec:
    """Parameters of a longitudinal cohort (see the module docstring for the model).

    Attributes
    ----------
    n_patients : int
        Patients (at least 4; default 30).
    visits : tuple of int
        Visit months, increasing, first >= 0 (default: 0, 3, 6, 12, 18).
    icc : float
        Intra-class correlation of the biological log expression, in [0, 1) (default: 0.5).
    flare_fraction : float
        Fraction of patients who flare once (default: 0.4; at least 2 flaring and 2 never-flaring).
    preflare_days : int
        Visits within this many days before the flare are ``pre_flare`` (default: 183, six months).
    dispersion_scale : float
        Multiplies the catalogue's per-gene dispersion (median 0.03) for the within-patient noise
        (default: 2.0).
    effect_scale : float
        Multiplies every planted log2 fold change (default: 1.0).
    """

    n_patients: int = 30
    visits: tuple[int, ...] = DEFAULT_VISITS
    icc: float = 0.5
    flare_fraction: float = 0.4
    preflare_days: int = 183
    dispersion_scale: float = 2.0
    effect_scale: float = 1.0
    plant: dict = field(default_factory=lambda: dict(_PLANT))

    def check(self, where: str = "simulate") -> LongitudinalSpec:
        """Raise :class:`ConfigError` naming the option when a parameter is out of range."""
        if not isinstance(self.n_patients, (int, np.integer)) or self.n_patients < 4:
            raise ConfigError(f"--patients {self.n_patients}: a longitudinal cohort needs at least 4 patients",
                              where=where, hint="use --patients 4 or more (2 flaring, 2 never flaring)")
        v = list(self.visits)
        if len(v) < 2:
            raise ConfigError(f"--visits {','.join(map(str, v))}: give at least 2 visit months", where=where,
                              hint="e.g. --visits 0,3,6,12,18")
        if any(not isinstance(m, (int, np.integer)) for m in v) or v[0] < 0 or np.any(np.diff(v) <= 0):
            raise ConfigError(f"--visits {','.join(map(str, v))}: visit months must be whole, increasing and >= 0",
                              where=where, hint="e.g. --visits 0,3,6,12,18")
        if v[-1] > 600:
            raise ConfigError(f"--visits: month {v[-1]} is beyond 600", where=where)
        if self.n_patients * len(v) > 999:
            raise ConfigError(f"--patients {self.n_patients} x {len(v)} visits = {self.n_patients * len(v)} samples "
                              "is more than 999", where=where, hint="use fewer patients or visits")
        if not (isinstance(self.icc, (int, float)) and np.isfinite(self.icc) and 0.0 <= self.icc < 1.0):
            raise ConfigError(f"--icc {self.icc} must be in [0, 1)", where=where,
                              hint="the intra-class correlation of a patient's samples, e.g. 0.5")
        if not (np.isfinite(self.flare_fraction) and 0.0 < self.flare_fraction < 1.0):
            raise ConfigError(f"--flare-fraction {self.flare_fraction} must be strictly between 0 and 1", where=where)
        if self.preflare_days < 1:
            raise ConfigError(f"preflare_days={self.preflare_days} must be >= 1", where=where)
        if not (np.isfinite(self.dispersion_scale) and self.dispersion_scale > 0):
            raise ConfigError(f"dispersion_scale={self.dispersion_scale} must be > 0", where=where)
        if not (np.isfinite(self.effect_scale) and self.effect_scale >= 0):
            raise ConfigError(f"effect_scale={self.effect_scale} must be a finite number >= 0", where=where)
        return self


def parse_visits(text: str) -> tuple[int, ...]:
    """``"0,3,6"`` -> ``(0, 3, 6)``; :class:`ConfigError` naming ``--visits`` otherwise."""
    try:
        out = tuple(int(x) for x in str(text).replace(";", ",").split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"--visits {text!r}: not a comma-separated list of whole months", where="simulate",
                          hint="e.g. --visits 0,3,6,12,18") from None
    return out


# --------------------------------------------------------------------------------------------------
# design


def longitudinal_design(spec: LongitudinalSpec, rng: np.random.Generator, *, plant_bad: bool = True) -> pd.DataFrame:
    """One row per visit: the samplesheet metadata of the longitudinal cohort and the planted defects.

    Patients alternate between the two arms (1:1). ``round(flare_fraction * n_patients)`` patients
    (at least 2, leaving at least 2 never-flaring) flare once, at a visit after baseline drawn
    uniformly; the flaring patients are split evenly between the arms. Columns:

    - ``flare``: ``flare`` at the flare visit, ``no_flare`` otherwise;
    - ``days_to_flare`` / ``months_to_flare``: time from the visit to the flare for visits at or
      before it (0 at the flare), empty after the flare and for never-flaring patients;
    - ``flare_window``: ``at_flare``, ``pre_flare`` (0 < days_to_flare <= preflare_days),
      ``remission`` (the flaring patient's other visits) or ``no_flare_patient``;
    - ``flare_patient``: ``yes`` / ``no``.

    Planted bad samples (gdna, hemolysis, degraded; at most one each) are never-flaring patients'
    samples, as in the cross-sectional design.
    """
    spec.check()
    n, visits = int(spec.n_patients), [int(m) for m in spec.visits]
    n_flaring = int(np.clip(round(spec.flare_fraction * n), 2, n - 2))
    pids = [f"P{i + 1:0{max(2, len(str(n)))}d}" for i in range(n)]
    arms = [ARMS[i % 2] for i in range(n)]
    by_arm = [[i for i in range(n) if arms[i] == a] for a in ARMS]
    order = [list(rng.permutation(ix)) for ix in by_arm]
    flaring: set[int] = set()
    k = 0
    while len(flaring) < n_flaring:  # alternate arms so the flaring patients are balanced
        pool = order[k % 2]
        if pool:
            flaring.add(int(pool.pop(0)))
        k += 1
    rows: list[dict] = []
    for i, p in enumerate(pids):
        sex = "M" if rng.random() < 0.2 else "F"
        egfr0 = float(np.clip(rng.normal(78, 15), 25, 120))
        second = "MMF" if rng.random() < 0.5 else "TAC"
        flare_month = int(rng.choice(visits[1:])) if i in flaring else None
        for m in visits:
            at = flare_month is not None and m == flare_month
            days = round(DAYS_PER_MONTH * (flare_month - m)) if flare_month is not None and m <= flare_month else None
            if flare_month is None:
                window = "no_flare_patient"
            elif at:
                window = "at_flare"
            elif days is not None and 0 < days <= spec.preflare_days:
                window = "pre_flare"
            else:
                window = "remission"
            rows.append({
                "patient_id": p, "visit_month": m, "arm": arms[i], "flare": "flare" if at else "no_flare",
                "second_randomization": second, "steroid_dose_mg": _steroid_dose(arms[i], m),
                "egfr": round(egfr0 - (18.0 if at else 0.0) + float(rng.normal(0, 3)), 1), "sex": sex,
                "months_to_flare": (flare_month - m) if days is not None else None,
                "days_to_flare": days, "flare_window": window,
                "flare_patient": "yes" if flare_month is not None else "no",
            })
    design = pd.DataFrame(rows)
    width = max(2, len(str(len(design))))
    design.insert(0, "sample", [f"s{j + 1:0{width}d}" for j in range(len(design))])
    design = design.set_index("sample")
    design["strandedness"] = "reverse"
    design["batch"] = np.where(np.arange(len(design)) % 2 == 0, "B1", "B2")
    design["planted_bad"] = "none"
    if plant_bad:
        cand = design.index[design["flare_patient"] == "no"].to_numpy()
        for kind, s in zip(BAD_KINDS, rng.permutation(cand)[: len(BAD_KINDS)], strict=False):
            design.loc[s, "planted_bad"] = kind
        good = design.index[(design["flare_patient"] == "no") & (design["planted_bad"] == "none")]
        design.loc[good[0], "strandedness"] = "auto"
    for col in ("months_to_flare", "days_to_flare"):
        design[col] = design[col].astype("Int64")
    cols = ["patient_id", "visit_month", "arm", "flare", "strandedness", "batch", "second_randomization",
            "steroid_dose_mg", "egfr", "sex", "months_to_flare", "days_to_flare", "flare_window", "flare_patient",
            "planted_bad"]
    return design[cols]


# --------------------------------------------------------------------------------------------------
# genes


def longitudinal_genes(n_genes: int, spec: LongitudinalSpec, rng_catalog: np.random.Generator,
                       rng_plant: np.random.Generator) -> pd.DataFrame:
    """The gene catalogue with the longitudinal effects planted.

    The catalogue's flare genes (``log2fc`` of :func:`cfrna.simulate.model.gene_catalog`) become the
    within-patient ``flare`` genes; disjoint sets of protein-coding filler genes (baseline raised to
    50-150 so that they are testable) carry the ``preflare``, ``flare_patient``, ``arm`` and
    ``arm_flare`` effects, each with a random sign. Adds ``kind``, ``log2fc_<kind>``,
    ``sigma_within`` and ``sigma_patient`` (natural log) and keeps ``log2fc`` = ``log2fc_flare``.
    """
    g = gene_catalog(int(n_genes), rng_catalog)
    scale = float(spec.effect_scale)
    g["log2fc"] = g["log2fc"] * scale
    g["kind"] = np.where(g["log2fc"] != 0.0, "flare", "none")
    g[LFC_COLUMNS["flare"]] = g["log2fc"]
    for k in KINDS[1:]:
        g[LFC_COLUMNS[k]] = 0.0
    pool = list(np.flatnonzero(((g["module"] == "filler") & (g["biotype"] == "protein_coding")
                                & (g["source"] == "mrna")).to_numpy()))
    pool = [int(i) for i in rng_plant.permutation(pool)]
    for k in KINDS[1:]:
        frac, (lo, hi) = spec.plant[k]
        m = min(len(pool), max(2, int(round(frac * n_genes))))
        take, pool = pool[:m], pool[m:]
        sign = np.where(rng_plant.random(m) < 0.5, 1.0, -1.0)
        g.loc[g.index[take], LFC_COLUMNS[k]] = sign * rng_plant.uniform(lo, hi, size=m) * scale
        g.loc[g.index[take], "base"] = rng_plant.uniform(50, 150, size=m)
        g.loc[g.index[take], "kind"] = k
    g["dispersion"] = g["dispersion"] * float(spec.dispersion_scale)
    g["sigma_within"] = np.sqrt(np.log1p(g["dispersion"].to_numpy()))
    g["sigma_patient"] = g["sigma_within"] * np.sqrt(spec.icc / (1.0 - spec.icc))
    g["is_de"] = (g[list(LFC_COLUMNS.values())] != 0.0).any(axis=1)
    return g


def longitudinal_expression(genes: pd.DataFrame, design: pd.DataFrame, hemolysis: np.ndarray,
                            rng: np.random.Generator) -> np.ndarray:
    """Relative abundance (genes x samples; columns sum to 1 over ``source == "mrna"`` genes)."""
    is_mrna = (genes["source"] == "mrna").to_numpy()
    base = genes["base"].to_numpy(dtype=float)
    patients = pd.unique(design["patient_id"])
    pidx = pd.Index(patients).get_indexer(design["patient_id"])
    sb = genes["sigma_patient"].to_numpy(dtype=float)
    se = genes["sigma_within"].to_numpy(dtype=float)
    b = rng.normal(0.0, 1.0, size=(len(genes), len(patients))) * sb[:, None]
    e = rng.normal(0.0, 1.0, size=(len(genes), len(design))) * se[:, None]
    at = (design["flare"] == "flare").to_numpy(dtype=float)
    pre = (design["flare_window"] == "pre_flare").to_numpy(dtype=float)
    fp = (design["flare_patient"] == "yes").to_numpy(dtype=float)
    tap = (design["arm"] == ARMS[0]).to_numpy(dtype=float)
    lfc = {k: genes[c].to_numpy(dtype=float)[:, None] for k, c in LFC_COLUMNS.items()}
    eff = (lfc["flare"] * at + lfc["preflare"] * pre + lfc["flare_patient"] * fp + lfc["arm"] * tap
           + lfc["arm_flare"] * (tap * at))
    logmu = np.log(np.maximum(base, 1e-9))[:, None] + b[:, pidx] + e + np.log(2.0) * eff
    logmu += np.log(HEMOLYSIS_FOLD) * (genes["erythroid"].to_numpy(dtype=bool)[:, None] & hemolysis[None, :])
    sexspec = genes["sex_specific"].to_numpy()
    sex = design["sex"].to_numpy()
    off = ((sexspec[:, None] == "F") & (sex[None, :] == "M")) | ((sexspec[:, None] == "M") & (sex[None, :] == "F"))
    logmu += np.log(0.005) * off
    mu = np.exp(logmu)
    mu[~is_mrna] = 0.0
    return mu / mu.sum(axis=0, keepdims=True)


# --------------------------------------------------------------------------------------------------
# contrasts and their truth


#: the trial statistician's designs, in the contrasts-file layout (columns of ``CONTRAST_COLUMNS``)
TRIAL_CONTRASTS = (
    {"id": "flare_vs_no_flare", "variable": "flare", "reference": "no_flare", "target": "flare",
     "blocking": "patient_id", "formula": "~ patient_id + flare", "coefficient": "", "method": "deseq2"},
    {"id": "pre_flare_vs_never", "variable": "flare_window", "reference": "no_flare_patient", "target": "pre_flare",
     "blocking": "", "formula": "~ flare_window + (1 | patient_id)", "coefficient": "", "method": "limma_voom"},
    {"id": "flaring_vs_never", "variable": "flare_patient", "reference": "no", "target": "yes",
     "blocking": "", "formula": "~ flare_patient + (1 | patient_id)", "coefficient": "", "method": "limma_voom"},
    {"id": "arm", "variable": "arm", "reference": "steroid_maintenance", "target": "steroid_tapering",
     "blocking": "", "formula": "~ arm + (1 | patient_id)", "coefficient": "", "method": "limma_voom"},
    {"id": "arm_x_flare", "variable": "flare", "reference": "no_flare", "target": "flare",
     "blocking": "", "formula": "~ arm * flare + (1 | patient_id)",
     "coefficient": "arm[T.steroid_tapering]:flare[T.flare]", "method": "limma_voom"},
)
CONTRAST_COLUMNS = ("id", "variable", "reference", "target", "blocking", "formula", "coefficient", "method")
#: which planted kind each trial contrast is meant to find
PRIMARY_KIND = {"flare_vs_no_flare": ("flare",), "pre_flare_vs_never": ("preflare", "flare_patient"),
                "flaring_vs_never": ("flare_patient",), "arm": ("arm",), "arm_x_flare": ("arm_flare",)}


def trial_contrasts(design: pd.DataFrame) -> pd.DataFrame:
    """The trial contrasts estimable on ``design`` (>= 2 samples per group and, for the
    interaction, flares in both arms); the others are logged and left out."""
    rows = []
    for c in TRIAL_CONTRASTS:
        vals = design[c["variable"]].astype(str)
        ok = (vals == c["reference"]).sum() >= 2 and (vals == c["target"]).sum() >= 2
        if c["id"] == "arm_x_flare":
            flares = design[design["flare"] == "flare"]
            ok = ok and flares["arm"].nunique() == 2 and flares.groupby("arm").size().min() >= 2
        if ok:
            rows.append(dict(c))
        else:
            log.warning("simulate: contrast %s left out: fewer than 2 samples in a group", c["id"])
    return pd.DataFrame(rows, columns=list(CONTRAST_COLUMNS))


def contrast_truth(genes: pd.DataFrame, contrasts: pd.DataFrame) -> pd.DataFrame:
    """Per contrast and gene: ``planted`` (a gene of the kind the contrast is meant to find),
    ``expected_log2fc`` (the planted effect in the tested coefficient) and ``null`` (no planted
    effect of any kind, not sex-specific: a discovery of a null gene is a false discovery whatever
    the design). Genes neither planted nor null carry another kind's effect, which a design may or
    may not see; truth tests leave them out of recall and FDP."""
    clean = ~genes["is_de"] & (genes["sex_specific"] == "") & (genes["source"] == "mrna")
    out = []
    for cid in contrasts["id"]:
        kinds = PRIMARY_KIND.get(cid, ())
        exp = sum((genes[LFC_COLUMNS[k]] for k in kinds), start=pd.Series(0.0, index=genes.index))
        planted = (genes[[LFC_COLUMNS[k] for k in kinds]] != 0.0).any(axis=1) if kinds else clean & False
        out.append(pd.DataFrame({"contrast": cid, "gene_id": genes["gene_id"], "gene_name": genes["gene_name"],
                                 "kind": genes["kind"], "planted": planted, "expected_log2fc": exp,
                                 "null": clean}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(
        columns=["contrast", "gene_id", "gene_name", "kind", "planted", "expected_log2fc", "null"])


def gene_truth_table(genes: pd.DataFrame) -> pd.DataFrame:
    """The ``truth/longitudinal_genes.tsv`` table."""
    cols = ["gene_id", "gene_name", "module", "biotype", "source", "kind", "base", "dispersion", "sigma_within",
            "sigma_patient", *LFC_COLUMNS.values(), "is_de", "sex_specific", "erythroid"]
    return genes[cols].copy()


# --------------------------------------------------------------------------------------------------
# count level


def simulate_longitudinal_counts(
    *,
    n_patients: int = 30,
    visits: tuple[int, ...] = DEFAULT_VISITS,
    icc: float = 0.5,
    n_genes: int = 2000,
    seed: int = 1,
    depth: float = 2e6,
    depth_sd: float = 0.2,
    flare_fraction: float = 0.4,
    preflare_days: int = 183,
    dispersion_scale: float = 2.0,
    effect_scale: float = 1.0,
    plant_bad: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Count-level longitudinal cohort (no reads): the model of the module docstring, Poisson counts.

    Parameters
    ----------
    n_patients, visits, icc, flare_fraction, preflare_days, dispersion_scale, effect_scale
        See :class:`LongitudinalSpec`.
    n_genes
        Genes including the named signature, rRNA and chrM genes (default: 2000).
    seed
        Random seed; the output is a pure function of the arguments.
    depth, depth_sd
        Mean counted fragments per sample (default: 2e6) and SD of the log library size (default: 0.2).
    plant_bad
        Plant the gDNA/hemolysis/degraded samples (only hemolysis changes gene counts here).

    Returns
    -------
    counts : DataFrame
        Integer counts, genes (index gene_id) x samples.
    samples : DataFrame
        Samplesheet metadata indexed by sample (plus ``planted_bad``).
    genes : DataFrame
        :func:`gene_truth_table` (one row per gene with its kind and planted effects).
    """
    spec = LongitudinalSpec(n_patients=n_patients, visits=tuple(visits), icc=icc, flare_fraction=flare_fraction,
                            preflare_days=preflare_days, dispersion_scale=dispersion_scale,
                            effect_scale=effect_scale).check("simulate_longitudinal_counts")
    if not np.isfinite(depth) or depth <= 0:
        raise ConfigError(f"depth={depth} must be positive", where="simulate_longitudinal_counts")
    from cfrna.simulate.model import library_params

    ss = np.random.SeedSequence(seed)
    r_cat, r_plant, r_design, r_lib, r_expr, r_counts = (np.random.default_rng(s) for s in ss.spawn(6))
    genes = longitudinal_genes(n_genes, spec, r_cat, r_plant)
    design = longitudinal_design(spec, r_design, plant_bad=plant_bad)
    libs = [library_params(b, r_lib) for b in design["planted_bad"]]
    hemo = np.array([lp.hemolysis for lp in libs])
    share = longitudinal_expression(genes, design, hemo, r_expr)
    counts = draw_counts(genes, share, libs, float(depth), float(depth_sd), r_counts)
    counts_df = pd.DataFrame(counts, index=pd.Index(genes["gene_id"], name="gene_id"), columns=design.index)
    return counts_df, design.copy(), gene_truth_table(genes)


def estimate_icc(log_expr: np.ndarray, patient: np.ndarray) -> np.ndarray:
    """One-way ANOVA intra-class correlation per row of ``log_expr`` (genes x samples), balanced or not.

    ``(MSB - MSW) / (MSB + (n0 - 1) MSW)`` with ``n0`` the ANOVA average group size; used by the
    truth tests to check that the simulated ICC is the requested one.
    """
    labels, pidx = np.unique(np.asarray(patient), return_inverse=True)
    k, n = len(labels), log_expr.shape[1]
    sizes = np.bincount(pidx, minlength=k).astype(float)
    means = np.stack([log_expr[:, pidx == j].mean(axis=1) for j in range(k)], axis=1)
    grand = log_expr.mean(axis=1, keepdims=True)
    ssb = (sizes[None, :] * (means - grand) ** 2).sum(axis=1)
    ssw = ((log_expr - means[:, pidx]) ** 2).sum(axis=1)
    msb, msw = ssb / (k - 1), ssw / (n - k)
    n0 = (n - (sizes ** 2).sum() / n) / (k - 1)
    return (msb - msw) / (msb + (n0 - 1) * msw)
