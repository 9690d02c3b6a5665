"""The expression model shared by the read-level and the count-level simulators.

One gene catalogue (real human gene names for the signatures, plus generic filler genes), one
cohort design (patients, visits, arms, flares) and one count model:

``mu[g, s] = base[g] * patient_effect[g, patient(s)] * 2**(log2fc[g] * flare(s))
             * hemolysis(s, g) * sex(s, g) * Gamma(1/phi[g], phi[g])``

``patient_effect`` is log-normal (a random effect on every gene), ``log2fc`` is non-zero only for
the planted flare genes (the interferon module strongly up, plasmablast genes moderately up, T-cell
genes down, a few filler genes mostly down) and the gamma term gives negative-binomial counts once reads are drawn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cfrna.errors import ConfigError

log = logging.getLogger(__name__)

#: the planted gene set: type I interferon genes, strongly up at flare
IFN_GENES = (
    "IFI27", "IFI44", "IFI44L", "RSAD2", "ISG15", "IFIT1", "IFIT3", "MX1", "OAS1", "OAS2", "OAS3",
    "HERC5", "SIGLEC1", "LY6E", "EPSTI1", "USP18", "IFI6", "LAMP3", "RTP4", "PLSCR1", "SPATS2L",
    "XAF1", "OASL", "HES4", "CMPK2",
)
#: plasmablast / plasma-cell genes, moderately up at flare
PLASMABLAST_GENES = ("CD38", "JCHAIN", "TNFRSF17", "TXNDC5", "MZB1")
#: T-cell genes, down at flare (lymphopenia of active lupus)
TCELL_GENES = ("CD3E", "CD3D", "CD247", "IL7R", "CCR7", "LEF1", "TCF7", "CD28")
#: not differentially expressed; scored as signatures / confounders
NEUTROPHIL_GENES = ("ELANE", "MPO", "LTF", "CEACAM8", "DEFA4", "BPI", "CTSG", "OLFM4", "CEACAM6", "DEFA1",
                    "DEFA3")
ERYTHROID_GENES = ("HBB", "HBA1", "HBA2", "HBD", "ALAS2", "CA1", "SLC4A1", "EPB42", "GYPB", "BPGM", "FECH",
                   "SELENBP1", "SNCA", "XK", "MARCHF8", "BCL2L1", "TENT5C", "GMPR", "GPR146", "GYPE", "KRT1", "NFIX",
                   "OSBP2", "PLEK2", "SLC14A1", "TMCC2", "TMOD1", "TNS1", "TRIM10", "TUBB2A")
PLATELET_GENES = ("PPBP", "PF4", "NRGN", "GNG11", "ITGA2B", "GP9", "ITGB3", "TREML1", "VWF", "MYL9", "TUBB1",
                  "F13A1", "ABCC3", "ALOX12", "CALD1", "CMTM5", "ESAM", "JAM3", "MPL", "PDE5A", "PROS1", "PTGS1",
                  "TSPAN9")
KIDNEY_GENES = ("NPHS1", "NPHS2", "PODXL", "UMOD", "SLC34A1", "WT1", "SYNPO", "PTPRO", "CLIC5", "MAFB", "LRP2",
                "CUBN", "SLC12A1", "SLC12A3", "AQP2", "HAVCR1")
#: proliferation genes of the BloodGen3 plasma-cell module (not planted)
PROLIFERATION_GENES = ("ABCB9", "CCNB2", "CDC20", "CDCA5", "IGLL3", "PCLAF", "TOP2A", "TYMS", "UBE2C", "UHRF1")
HOUSEKEEPING_GENES = ("ACTB", "GAPDH", "B2M", "TMSB4X", "FTL", "FTH1", "EEF1A1", "TPT1", "RPLP0", "MALAT1")
#: interferon-related genes that are NOT planted (so BloodGen3 M10.1-like sets are only partly DE)
IFN_OTHER_GENES = ("STAT1", "IRF7", "GBP1", "IFIH1", "IFITM3", "SERPING1", "OTOF", "TRIM6", "RIGI", "DDX60",
                   "DHX58", "FBXO6", "GBP4", "GBP5", "IFI35", "IFIT2", "IFIT5", "LAP3", "PARP12", "PARP14", "SAMD9L",
                   "SCO2", "TRIM22", "ZBP1")
RRNA_GENES = ("RNA18SN5", "RNA5-8SN5", "RNA28SN5", "RNA5S1", "RNA5S2", "RNA5S3")

#: baseline expression in expected fragments per 15,000 mRNA fragments (a 20k-read library)
_FIXED_BASE = {
    "ACTB": 300, "GAPDH": 150, "B2M": 400, "TMSB4X": 400, "FTL": 250, "FTH1": 200, "EEF1A1": 200,
    "TPT1": 150, "RPLP0": 100, "MALAT1": 100,
    "PPBP": 300, "PF4": 250, "NRGN": 120, "GNG11": 80, "ITGA2B": 60, "GP9": 60, "ITGB3": 50,
    "TREML1": 50, "VWF": 40, "MYL9": 60, "TUBB1": 60, "F13A1": 40,
    "HBB": 400, "HBA1": 200, "HBA2": 200, "HBD": 30, "ALAS2": 40, "CA1": 30, "SLC4A1": 25, "EPB42": 20,
    "GYPB": 20, "BPGM": 20, "FECH": 15, "SELENBP1": 20, "SNCA": 25, "XK": 10,
    "NPHS1": 3, "NPHS2": 3, "PODXL": 10, "UMOD": 5, "SLC34A1": 3,
    "XIST": 30, "RPS4Y1": 30, "DDX3Y": 15,
    "STAT1": 40, "IRF7": 25, "GBP1": 30, "IFIH1": 15, "IFITM3": 40, "SERPING1": 20,
}

#: baseline range for named genes without a fixed value
_MODULE_BASE = {"erythroid": (5, 20), "platelet": (10, 40), "kidney": (1, 5), "proliferation": (3, 12),
                "interferon_other": (10, 30), "neutrophil": (15, 40)}

#: chrM genes: (name, start, end, strand, biotype, share of mitochondrial reads); approximate rCRS layout
MITO_GENES = (
    ("MT-RNR1", 648, 1601, "+", "Mt_rRNA", 0.05),
    ("MT-RNR2", 1671, 3229, "+", "Mt_rRNA", 0.25),
    ("MT-ND1", 3307, 4262, "+", "protein_coding", 0.05),
    ("MT-ND2", 4470, 5511, "+", "protein_coding", 0.04),
    ("MT-CO1", 5904, 7445, "+", "protein_coding", 0.15),
    ("MT-CO2", 7586, 8269, "+", "protein_coding", 0.08),
    ("MT-ATP8", 8366, 8572, "+", "protein_coding", 0.01),
    ("MT-ATP6", 8527, 9207, "+", "protein_coding", 0.10),
    ("MT-CO3", 9207, 9990, "+", "protein_coding", 0.08),
    ("MT-ND3", 10059, 10404, "+", "protein_coding", 0.02),
    ("MT-ND4L", 10470, 10766, "+", "protein_coding", 0.01),
    ("MT-ND4", 10760, 12137, "+", "protein_coding", 0.06),
    ("MT-ND5", 12337, 14148, "+", "protein_coding", 0.03),
    ("MT-ND6", 14149, 14673, "-", "protein_coding", 0.01),
    ("MT-CYB", 14747, 15887, "+", "protein_coding", 0.06),
)
MITO_LENGTH = 16569

ARMS = ("steroid_tapering", "steroid_maintenance")
BAD_KINDS = ("gdna", "hemolysis", "degraded")
#: fraction of genes planted DE between flare and no_flare
DE_FRACTION = 0.07
HEMOLYSIS_FOLD = 20.0


def gene_id(i: int) -> str:
    """A GENCODE-like stable gene id (the ``99`` prefix marks synthetic genes)."""
    return f"ENSG99{i:09d}"


def transcript_id(i: int) -> str:
    return f"ENST99{i:09d}"


def n_named_genes() -> int:
    """How many genes of the catalogue are not generic fillers."""
    named = (IFN_GENES + PLASMABLAST_GENES + TCELL_GENES + NEUTROPHIL_GENES + ERYTHROID_GENES + PLATELET_GENES
             + KIDNEY_GENES + HOUSEKEEPING_GENES + IFN_OTHER_GENES + PROLIFERATION_GENES + RRNA_GENES)
    return len(named) + 3 + len(MITO_GENES)  # + XIST, RPS4Y1, DDX3Y


def gene_catalog(n_genes: int, rng: np.random.Generator) -> pd.DataFrame:
    """The gene table: names, biotypes, modules, baseline expression and planted log2 fold changes.

    Parameters
    ----------
    n_genes
        Total number of genes including named, rRNA and mitochondrial genes; the rest are fillers
        named ``GENE0001``... Must be at least ``n_named_genes() + 50``.
    rng
        Random generator (the catalogue is a pure function of its state).

    Returns
    -------
    DataFrame
        One row per gene: gene_id, gene_name, biotype, module, source (``mrna``, ``mito``,
        ``rrna``), chrom_hint, base, log2fc, is_de, in_planted_set, erythroid, sex_specific, dispersion.
    """
    minimum = n_named_genes() + 50
    if n_genes < minimum:
        raise ConfigError(f"n_genes={n_genes} is too small", where="simulate",
                          hint=f"use at least {minimum} genes (named signature genes + 50 fillers)")
    rows: list[dict] = []

    def add(name, module, *, biotype="protein_coding", source="mrna", chrom="auto", base=0.0, lfc=0.0,
            sex="", planted=False):
        rows.append({"gene_name": name, "biotype": biotype, "module": module, "source": source,
                     "chrom_hint": chrom, "base": float(base), "log2fc": float(lfc),
                     "in_planted_set": planted, "erythroid": module == "erythroid", "sex_specific": sex})

    for name in IFN_GENES:
        add(name, "interferon", base=float(np.clip(rng.lognormal(np.log(26), 0.35), 16, 60)),
            lfc=rng.uniform(2.0, 3.2), planted=True)
    for name in PLASMABLAST_GENES:
        add(name, "plasmablast", base=rng.uniform(45, 90), lfc=rng.uniform(1.6, 2.2))
    for name in TCELL_GENES:
        add(name, "tcell", base=rng.uniform(50, 110), lfc=-rng.uniform(1.5, 2.2))
    for module, names in (("neutrophil", NEUTROPHIL_GENES), ("erythroid", ERYTHROID_GENES),
                          ("platelet", PLATELET_GENES), ("kidney", KIDNEY_GENES),
                          ("housekeeping", HOUSEKEEPING_GENES), ("interferon_other", IFN_OTHER_GENES),
                          ("proliferation", PROLIFERATION_GENES)):
        lo, hi = _MODULE_BASE.get(module, (15, 40))
        for name in names:
            base = _FIXED_BASE.get(name, float(rng.uniform(lo, hi)))
            add(name, module, biotype="lncRNA" if name == "MALAT1" else "protein_coding", base=base)
    add("XIST", "sex", biotype="lncRNA", chrom="chrX", base=_FIXED_BASE["XIST"], sex="F")
    add("RPS4Y1", "sex", chrom="chrY", base=_FIXED_BASE["RPS4Y1"], sex="M")
    add("DDX3Y", "sex", chrom="chrY", base=_FIXED_BASE["DDX3Y"], sex="M")
    for name in RRNA_GENES:
        add(name, "rrna", biotype="rRNA", source="rrna", chrom="chr5")
    for name, _s, _e, _st, biotype, share in MITO_GENES:
        add(name, "mito", biotype=biotype, source="mito", chrom="chrM", base=share)
    n_fill = n_genes - len(rows)
    fill_base = np.clip(rng.lognormal(np.log(8.0), 1.4, size=n_fill), 0.2, 400.0)
    fill_biotype = rng.choice(["protein_coding", "lncRNA", "processed_pseudogene"], size=n_fill,
                              p=[0.8, 0.15, 0.05])
    fill_base[fill_biotype != "protein_coding"] *= 0.4
    fill_chrom = np.where(rng.random(n_fill) < 0.05, "chrX", "auto")
    n_de_total = int(round(DE_FRACTION * n_genes))
    n_de_fill = max(0, n_de_total - len(IFN_GENES) - len(PLASMABLAST_GENES) - len(TCELL_GENES))
    de_idx = set(rng.choice(np.flatnonzero(fill_biotype == "protein_coding"), size=n_de_fill,
                            replace=False).tolist())
    for i in range(n_fill):
        name = f"GENE{i + 1:04d}"
        if i in de_idx:
            sign = 1.0 if rng.random() < 0.3 else -1.0  # mostly down: balances the up-regulated modules
            add(name, "flare_de", base=rng.uniform(50, 150), lfc=sign * rng.uniform(1.5, 2.5),
                chrom=str(fill_chrom[i]))
        else:
            add(name, "filler", biotype=str(fill_biotype[i]), base=fill_base[i], chrom=str(fill_chrom[i]))
    genes = pd.DataFrame(rows)
    genes.insert(0, "gene_id", [gene_id(i + 1) for i in range(len(genes))])
    genes["is_de"] = genes["log2fc"] != 0.0
    genes["dispersion"] = np.where(genes["source"] == "mrna",
                                   0.03 * rng.lognormal(0.0, 0.4, size=len(genes)), 0.01)
    # rRNA: share proportional to length is applied by the read simulator; here equal placeholders
    genes.loc[genes["source"] == "rrna", "base"] = 1.0
    return genes


# --------------------------------------------------------------------------------------------------
# cohort design


def make_design(n_samples: int, rng: np.random.Generator, *, paired_patients: bool = True,
                plant_bad: bool = True) -> pd.DataFrame:
    """The trial cohort: one row per sample with the samplesheet metadata and the planted defects.

    Flaring patients contribute a pre-flare visit (``flare = no_flare``) and the visit at flare
    (``flare = flare``); non-flaring patients contribute two visits (one when the count is odd).
    Planted bad samples (``planted_bad``: gdna, hemolysis, degraded, at most one each) are always
    non-flaring patients' samples, so the flare contrast keeps its groups. With
    ``paired_patients=False`` every sample is a different patient (same numbers of flare samples).

    Returns
    -------
    DataFrame
        Index ``sample``; columns patient_id, visit_month, arm, flare, strandedness, batch,
        second_randomization, steroid_dose_mg, egfr, sex, months_to_flare, flare_window,
        flare_patient, planted_bad.
    """
    if n_samples < 2:
        raise ConfigError(f"--samples {n_samples}: a cohort needs at least 2 samples", where="simulate",
                          hint="use --samples 2 or more (default 12)")
    n_flare_pat = max(1, n_samples // 3, min(2, n_samples // 2))  # >= 2 flare samples from 4 samples on
    rest = n_samples - (2 if paired_patients else 1) * n_flare_pat
    visits: list[dict] = []
    pid = 0

    def patient(flaring: bool, n_visits: int) -> None:
        nonlocal pid
        pid += 1
        p = f"P{pid:02d}"
        arm = ARMS[(pid - 1) % 2] if flaring else ARMS[pid % 2]
        sex = "M" if rng.random() < 0.2 else "F"
        egfr0 = float(np.clip(rng.normal(78, 15), 25, 120))
        second = "MMF" if rng.random() < 0.5 else "TAC"
        flare_month = int(rng.choice([3, 6, 12])) if flaring else None
        months = [0, flare_month] if flaring else [0, 6, 12][:n_visits]
        if flaring and n_visits == 1:  # unpaired design: only the visit at flare
            months = [flare_month]
        for m in months:
            at_flare = flaring and m == flare_month
            visits.append({
                "patient_id": p, "visit_month": m, "arm": arm,
                "flare": "flare" if at_flare else "no_flare",
                "second_randomization": second,
                "steroid_dose_mg": _steroid_dose(arm, m),
                "egfr": round(egfr0 - (18.0 if at_flare else 0.0) + float(rng.normal(0, 3)), 1),
                "sex": sex,
                "months_to_flare": (flare_month - m) if flaring else None,
                "flare_window": ("at_flare" if at_flare else "pre_flare") if flaring else "no_flare_patient",
                "flare_patient": "yes" if flaring else "no",
            })

    if paired_patients:
        for _ in range(n_flare_pat):
            patient(True, 2)
        for _ in range(rest // 2):
            patient(False, 2)
        if rest % 2:
            patient(False, 1)
    else:
        for _ in range(n_flare_pat):
            patient(True, 1)
        for _ in range(rest):
            patient(False, 1)
    design = pd.DataFrame(visits)
    design.insert(0, "sample", [f"s{i + 1:02d}" for i in range(len(design))])
    design = design.set_index("sample")
    design["strandedness"] = "reverse"
    design["batch"] = np.where(np.arange(len(design)) % 2 == 0, "B1", "B2")
    design["planted_bad"] = "none"
    if plant_bad:
        candidates = design.index[design["flare_patient"] == "no"].to_numpy()
        chosen = rng.permutation(candidates)[: len(BAD_KINDS)]
        for kind, s in zip(BAD_KINDS, chosen, strict=False):
            design.loc[s, "planted_bad"] = kind
    good_non_flaring = design.index[(design["flare_patient"] == "no") & (design["planted_bad"] == "none")]
    if len(design) >= 3:
        good_no_flare = design.index[(design["flare"] == "no_flare") & (design["planted_bad"] == "none")]
        auto = good_non_flaring[0] if len(good_non_flaring) else good_no_flare[-1]
        design.loc[auto, "strandedness"] = "auto"
    design["months_to_flare"] = design["months_to_flare"].astype("Int64")
    cols = ["patient_id", "visit_month", "arm", "flare", "strandedness", "batch", "second_randomization",
            "steroid_dose_mg", "egfr", "sex", "months_to_flare", "flare_window", "flare_patient", "planted_bad"]
    return design[cols]


def _steroid_dose(arm: str, month: int) -> float:
    if arm == "steroid_tapering":
        return {0: 10.0, 3: 5.0, 6: 2.5}.get(month, 0.0)
    return 7.5 if month > 0 else 10.0


# --------------------------------------------------------------------------------------------------
# technical (library) parameters per sample


@dataclass(frozen=True)
class LibraryParams:
    """Per-sample library composition and fragment parameters (the truth of ``samples.tsv``)."""

    gdna_fraction: float
    rrna_fraction: float
    mito_fraction: float
    pre_mrna_fraction: float
    hemolysis: bool
    degradation: float
    fragment_mean: float
    fragment_sd: float


def library_params(planted_bad: str, rng: np.random.Generator) -> LibraryParams:
    """Draw the library parameters of one sample; ``planted_bad`` selects a defect."""
    gdna = float(rng.uniform(0.02, 0.05))
    rrna = float(rng.uniform(0.01, 0.05))
    mito = float(rng.uniform(0.02, 0.08))
    pre = float(rng.uniform(0.10, 0.20))
    degr = float(rng.uniform(0.0, 0.3))
    fmean = float(rng.uniform(140, 165))
    fsd = 40.0
    if planted_bad == "gdna":
        gdna = 0.40
    elif planted_bad == "degraded":
        degr, fmean, fsd = 4.0, 95.0, 25.0
    return LibraryParams(gdna_fraction=gdna, rrna_fraction=rrna, mito_fraction=mito, pre_mrna_fraction=pre,
                         hemolysis=planted_bad == "hemolysis", degradation=degr, fragment_mean=fmean,
                         fragment_sd=fsd)


# --------------------------------------------------------------------------------------------------
# the count model


def expression_matrix(genes: pd.DataFrame, design: pd.DataFrame, hemolysis: np.ndarray,
                      rng: np.random.Generator, *, patient_sd: float = 0.35) -> np.ndarray:
    """Relative abundance (genes x samples, columns sum to 1 over ``source == "mrna"`` genes).

    Non-mRNA rows (rRNA, mito) are zero: their shares are applied separately per sample.
    """
    is_mrna = (genes["source"] == "mrna").to_numpy()
    base = genes["base"].to_numpy(dtype=float)
    lfc = genes["log2fc"].to_numpy(dtype=float)
    disp = genes["dispersion"].to_numpy(dtype=float)
    ery = genes["erythroid"].to_numpy(dtype=bool)
    sexspec = genes["sex_specific"].to_numpy()
    patients = pd.unique(design["patient_id"])
    peff = rng.normal(0.0, patient_sd, size=(len(genes), len(patients)))
    pidx = pd.Index(patients).get_indexer(design["patient_id"])
    flare = (design["flare"] == "flare").to_numpy(dtype=float)
    sex = design["sex"].to_numpy()
    logmu = np.log(np.maximum(base, 1e-9))[:, None] + peff[:, pidx] + np.log(2.0) * lfc[:, None] * flare[None, :]
    logmu += np.log(HEMOLYSIS_FOLD) * (ery[:, None] & hemolysis[None, :])
    off = ((sexspec[:, None] == "F") & (sex[None, :] == "M")) | ((sexspec[:, None] == "M") & (sex[None, :] == "F"))
    logmu += np.log(0.005) * off
    mu = np.exp(logmu)
    shape = 1.0 / disp
    mu = rng.gamma(shape[:, None], mu / shape[:, None])
    mu[~is_mrna] = 0.0
    return mu / mu.sum(axis=0, keepdims=True)


def draw_counts(genes: pd.DataFrame, share: np.ndarray, libs: list, depth: float, depth_sd: float,
                rng: np.random.Generator) -> np.ndarray:
    """Poisson counts (genes x samples) from expression shares plus each library's mito and rRNA fractions.

    Library sizes are ``depth`` times a log-normal factor (SD ``depth_sd``), drawn before the counts.
    """
    src = genes["source"].to_numpy()
    mito = np.where(src == "mito", genes["base"].to_numpy(), 0.0)
    mito = mito / mito.sum()
    rrna = (src == "rrna").astype(float)
    rrna = rrna / rrna.sum()
    mito_f = np.array([lp.mito_fraction for lp in libs])
    rrna_f = np.array([lp.rrna_fraction for lp in libs])
    p = share * (1 - mito_f - rrna_f)[None, :] + mito[:, None] * mito_f + rrna[:, None] * rrna_f
    lib = depth * np.exp(rng.normal(0.0, depth_sd, size=share.shape[1]))
    return rng.poisson(p * lib[None, :]).astype(np.int64)


def simulate_counts(
    *,
    n_samples: int = 24,
    n_genes: int = 2000,
    seed: int = 1,
    depth: float = 2e6,
    paired_patients: bool = True,
    plant_bad: bool = False,
    patient_sd: float = 0.35,
    depth_sd: float = 0.2,
    effect_scale: float = 1.0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Count-level cohort from the same model as :func:`cfrna.simulate.simulate_cohort` (no reads).

    Parameters
    ----------
    n_samples
        Number of samples (default: 24).
    n_genes
        Number of genes including the named signature, rRNA and chrM genes (default: 2000).
    seed
        Random seed; the output is a pure function of the arguments.
    depth
        Mean counted fragments per sample (default: 2e6); per-sample depth is log-normal around it.
    paired_patients
        Flaring patients sampled before and at flare (default), or every sample a different patient.
    plant_bad
        Also plant the gDNA/hemolysis/degraded samples (only hemolysis changes gene counts here).
    patient_sd
        Standard deviation of the log-normal patient random effect (natural log; default: 0.35).
    depth_sd
        Standard deviation of the log library size (default: 0.2).
    effect_scale
        Multiplies every planted log2 fold change (default: 1.0); below 1 makes DE harder, e.g. to
        compare the power of paired and unpaired designs.

    Returns
    -------
    counts : DataFrame
        Integer counts, genes (index gene_id) x samples.
    samples : DataFrame
        Samplesheet metadata indexed by sample (plus ``planted_bad``).
    truth : DataFrame
        One row per gene: gene_id, gene_name, biotype, module, base, log2fc, is_de, in_planted_set.
    """
    if depth <= 0:
        raise ConfigError(f"depth={depth} must be positive", where="simulate_counts")
    ss = np.random.SeedSequence(seed)
    r_genes, r_design, r_lib, r_expr, r_counts = (np.random.default_rng(s) for s in ss.spawn(5))
    if not np.isfinite(effect_scale) or effect_scale < 0:
        raise ConfigError(f"effect_scale={effect_scale} must be a finite number >= 0", where="simulate_counts")
    genes = gene_catalog(n_genes, r_genes)
    genes["log2fc"] *= effect_scale
    genes["is_de"] = genes["log2fc"] != 0.0
    design = make_design(n_samples, r_design, paired_patients=paired_patients, plant_bad=plant_bad)
    libs = [library_params(b, r_lib) for b in design["planted_bad"]]
    hemo = np.array([lp.hemolysis for lp in libs])
    share = expression_matrix(genes, design, hemo, r_expr, patient_sd=patient_sd)
    counts = draw_counts(genes, share, libs, depth, depth_sd, r_counts)
    counts_df = pd.DataFrame(counts, index=pd.Index(genes["gene_id"], name="gene_id"), columns=design.index)
    truth = genes[["gene_id", "gene_name", "biotype", "module", "base", "log2fc", "is_de", "in_planted_set"]].copy()
    return counts_df, design.copy(), truth
