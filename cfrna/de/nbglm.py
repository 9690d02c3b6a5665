"""DESeq2's negative-binomial GLM with a large blocking factor absorbed (the cfrna DE engine).

The model and its steps are those of R DESeq2 (``DESeq()`` + ``results()``): median-of-ratios size
factors; gene-wise dispersions maximising the Cox-Reid adjusted profile likelihood; the parametric
dispersion trend ``a0 + a1 / mean`` (a Gamma-family GLM, refitted after dropping genes far from the
curve; the trimmed mean when it fails); the prior variance of log dispersions; MAP dispersions
(gene-wise estimates far above the trend are kept); coefficients by IRLS with ridge ``1e-6``; Wald
tests; Cook's distances with outlier replacement and refit (cells with >= 7 replicates) and
filtering (samples in cells with >= 3 replicates); independent filtering on the mean of normalised
counts; Benjamini-Hochberg; and the apeGLM-like Cauchy-prior shrinkage of the tested coefficient
as in pydeseq2's ``lfc_shrink``.

What differs from a dense implementation is the algebra: the design is written
``X = [one-hot block | Z]`` where the block is the largest categorical main effect of the formula
(``patient_id`` in ``~ patient_id + flare``), so that ``X'WX`` has a diagonal leading block and every
per-gene solve, log-determinant, standard error and hat value goes through a q x q Schur complement
(see :mod:`cfrna.de._nbglm_kernels`). Cost grows linearly with the number of blocks; designs
without a categorical term run with no block.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cfrna.errors import ConfigError

log = logging.getLogger(__name__)

MIN_DISP = 1e-8
MIN_MU = 0.5
RIDGE = 1e-6
BETA_TOL = 1e-8
MAXIT = 100
OUTLIER_SD = 2.0
XTOL = 1e-7


@dataclass(frozen=True)
class BlockDesign:
    """A design matrix split as ``[one-hot block | Z]``.

    Attributes
    ----------
    z : numpy.ndarray
        n x q, the columns not absorbed (float64, C order).
    z_columns : list of str
        Names of the ``z`` columns (formulaic names, e.g. ``flare[T.flare]``).
    block : numpy.ndarray
        Block code (0..n_blocks-1) of each sample (int64; zeros when ``n_blocks == 0``).
    n_blocks : int
        Number of blocks (0: no block, ``z`` is the whole design).
    block_name : str or None
        The absorbed factor.
    block_levels : list of str
        Its levels, in code order.
    """

    z: np.ndarray
    z_columns: list[str]
    block: np.ndarray
    n_blocks: int = 0
    block_name: str | None = None
    block_levels: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return self.z.shape[0]

    @property
    def n_coef(self) -> int:
        """Number of coefficients of the full design (blocks + Z columns)."""
        return self.n_blocks + self.z.shape[1]

    def dense(self) -> np.ndarray:
        """The full n x p design matrix ``[one-hot block | Z]`` (for checks and references)."""
        oh = np.zeros((self.n_samples, self.n_blocks))
        if self.n_blocks:
            oh[np.arange(self.n_samples), self.block] = 1.0
        return np.hstack([oh, self.z])

    def rows(self) -> np.ndarray:
        """Group id of each sample by identical design row."""
        key = np.column_stack([self.block.astype(float), self.z])
        _, inv = np.unique(key, axis=0, return_inverse=True)
        return inv.ravel()


def build_design(formula: str, metadata: pd.DataFrame, *, absorb: str | None | bool = "auto",
                 keep: str | None = None) -> BlockDesign:
    """Build the design of ``formula`` over ``metadata``, absorbing one categorical factor.

    Parameters
    ----------
    formula : str
        Design formula (formulaic syntax, treatment coding), e.g. ``~ patient_id + flare``.
    metadata : pandas.DataFrame
        Design columns indexed by sample.
    absorb : "auto", str, None or False
        ``"auto"``: the categorical main-effect term with the most levels that appears in no
        interaction (needs an intercept); a column name forces that factor; None/False: no block.

    Returns
    -------
    BlockDesign

    Raises
    ------
    ConfigError
        Invalid formula, a forced factor that cannot be absorbed.
    """
    import formulaic

    try:
        mm = formulaic.model_matrix(formula, metadata)
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot build the design matrix of {formula!r}: {msg}",
                          hint="check the formula terms against the samplesheet columns") from None
    cols = list(mm.columns)
    x = np.asarray(mm, dtype=float)
    slices = mm.model_spec.term_slices
    terms = {str(t): [str(f) for f in t.factors] for t in slices}
    has_icpt = any(f == ["1"] for f in terms.values())
    candidates: dict[str, int] = {}
    for name, factors in terms.items():
        if len(factors) != 1 or factors[0] == "1" or factors[0] not in metadata.columns:
            continue
        v = factors[0]
        col = metadata[v]
        if not (isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object or pd.api.types.is_bool_dtype(col)):
            continue
        if sum(v in f for f in terms.values()) > 1:  # in an interaction: cannot be absorbed
            continue
        if keep is not None and keep in cols[slices_of(slices, name)]:
            continue
        candidates[name] = int(pd.Series(col).astype(str).nunique())
    chosen: str | None = None
    if absorb == "auto":
        if has_icpt and candidates:
            chosen = max(candidates, key=lambda k: candidates[k])
    elif absorb:
        if absorb not in candidates or not has_icpt:
            raise ConfigError(f"cannot absorb {absorb!r} in {formula!r}",
                              hint="only a categorical main effect that is in no interaction, with an intercept, "
                                   "can be absorbed")
        chosen = str(absorb)
    if chosen is None:
        z = np.ascontiguousarray(x)
        return BlockDesign(z=z, z_columns=cols, block=np.zeros(len(metadata), dtype=np.int64))
    drop = set(range(*slices_of(slices, chosen).indices(len(cols))))
    drop |= {cols.index("Intercept")} if "Intercept" in cols else set()
    keep = [j for j in range(len(cols)) if j not in drop]
    var = metadata[chosen].astype(str)
    levels = sorted(var.unique())
    code = pd.Categorical(var, categories=levels).codes.astype(np.int64)
    return BlockDesign(z=np.ascontiguousarray(x[:, keep]), z_columns=[cols[j] for j in keep], block=code,
                       n_blocks=len(levels), block_name=chosen, block_levels=levels)


def slices_of(slices, name: str) -> slice:
    """The column slice of the term called ``name``."""
    for t, s in slices.items():
        if str(t) == name:
            return s
    raise KeyError(name)


def check_design(design: BlockDesign, *, where: str = "") -> None:
    """Raise a one-line ConfigError when the design is rank-deficient, naming the columns.

    With a block, each Z column is centred within blocks; a Z column (or combination) that is
    constant within every block is confounded with the block.
    """
    z = design.z
    n = design.n_samples
    if design.n_blocks:
        cnt = np.bincount(design.block, minlength=design.n_blocks).astype(float)
        means = np.zeros((design.n_blocks, z.shape[1]))
        np.add.at(means, design.block, z)
        zc = z - (means / cnt[:, None])[design.block]
    else:
        zc = z
    if zc.shape[1]:
        u, sv, vt = np.linalg.svd(zc, full_matrices=True)
        scale = max(sv.max() if sv.size else 0.0, np.abs(z).max() if z.size else 0.0, 1.0)
        tol = scale * max(n, zc.shape[1]) * np.finfo(float).eps * 10
        rank = int(np.sum(sv > tol))
    else:
        rank, vt = 0, np.zeros((0, 0))
    q = zc.shape[1]
    if rank < q:
        null = vt[rank:]
        bad = [design.z_columns[j] for j in range(q) if np.abs(null[:, j]).max() > 1e-8]
        if design.n_blocks:
            what = (f"design column(s) {', '.join(bad)} are confounded with the block '{design.block_name}' "
                    f"(constant within every level, or a combination of other columns)")
        else:
            what = f"design column(s) {', '.join(bad)} are linearly dependent"
        raise ConfigError(f"rank-deficient design: {what}", where=where or None,
                          hint="drop the confounded column or the blocking factor, or test a within-block variable")
    if n <= design.n_coef:
        raise ConfigError(f"design has {design.n_coef} coefficients for {n} samples (no residual degrees of freedom)",
                          where=where or None, hint="use fewer covariates or more samples")


# ----------------------------------------------------------------------------------------------
# size factors, moments, trend
# ----------------------------------------------------------------------------------------------

def size_factors(counts: np.ndarray) -> np.ndarray:
    """Median-of-ratios size factors (DESeq2 ``estimateSizeFactors``) of a genes x samples matrix.

    When every gene has a zero, falls back to pydeseq2's iterative estimator (R DESeq2 errors).
    """
    y = np.asarray(counts, dtype=float)
    with np.errstate(divide="ignore"):
        logy = np.log(y)
    logmeans = logy.mean(axis=1)
    ok = np.isfinite(logmeans)
    if not ok.any():
        return _iterative_size_factors(y)
    return np.exp(np.median(logy[ok] - logmeans[ok, None], axis=0))


def _iterative_size_factors(y: np.ndarray) -> np.ndarray:
    from pydeseq2.dds import DeseqDataSet

    n = y.shape[1]
    meta = pd.DataFrame({"all": np.ones(n)}, index=[f"s{i}" for i in range(n)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dds = DeseqDataSet(counts=pd.DataFrame(y.T.astype(np.int64), index=meta.index), metadata=meta,
                           design="~ 1", quiet=True)
        dds._fit_iterate_size_factors()
    log.info("nbglm: every gene has a zero count; iterative size factors (pydeseq2)")
    return dds.obs["size_factors"].to_numpy()


def _trimmed_mean(x: np.ndarray, trim: float, axis: int) -> np.ndarray:
    n = x.shape[axis]
    k = int(math.floor(n * trim))
    s = np.sort(x, axis=axis)
    return np.take(s, np.arange(k, n - k), axis=axis).mean(axis=axis)


def robust_moments_disp(normed: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """DESeq2 ``robustMethodOfMomentsDisp`` (dispersion used in Cook's distances), genes x samples."""
    ids, cnt = np.unique(rows, return_counts=True)
    cells = ids[cnt >= 3]
    m = normed.mean(axis=1)
    if cells.size:
        v = np.full(normed.shape[0], -np.inf)
        sizes = {c: int(k) for c, k in zip(ids, cnt, strict=True) if k >= 3}
        by_size: dict[int, list[int]] = {}
        for c in cells:
            by_size.setdefault(sizes[c], []).append(c)
        for k, group in by_size.items():
            idx = np.stack([np.flatnonzero(rows == c) for c in group])  # cells x k
            trim = 1 / 3 if k < 3.5 else (1 / 4 if k < 23.5 else 1 / 8)
            scale = 2.04 if k < 3.5 else (1.86 if k < 23.5 else 1.51)
            sub = normed[:, idx]  # genes x cells x k
            cm = _trimmed_mean(sub, trim, axis=2)
            sq = (sub - cm[..., None]) ** 2
            var = scale * _trimmed_mean(sq, trim, axis=2)
            v = np.maximum(v, var.max(axis=1))
    else:
        rm = _trimmed_mean(normed, 0.125, axis=1)
        v = 1.51 * _trimmed_mean((normed - rm[:, None]) ** 2, 0.125, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = (v - m) / m**2
    return np.maximum(np.nan_to_num(alpha, nan=0.04), 0.04)


def _gamma_identity_glm(x: np.ndarray, y: np.ndarray, start: np.ndarray, maxit: int = 25,
                        eps: float = 1e-8) -> tuple[np.ndarray, bool]:
    """R ``glm(y ~ x, family = Gamma(link = "identity"), start = start)``: IRLS with step halving."""
    X = np.column_stack([np.ones_like(x), x])
    coef = start.astype(float)

    def dev(mu):
        return -2.0 * np.sum(np.log(y / mu) - (y - mu) / mu)

    mu = X @ coef
    if np.any(mu <= 0):
        return coef, False
    devold = dev(mu)
    for _ in range(maxit):
        w = 1.0 / mu**2
        xtw = X.T * w
        new = np.linalg.solve(xtw @ X, xtw @ y)
        mu_new = X @ new
        halv = 0
        while (np.any(mu_new <= 0) or not np.isfinite(dev(mu_new))) and halv < 30:
            new = (new + coef) / 2
            mu_new = X @ new
            halv += 1
        if np.any(mu_new <= 0):
            return new, False
        coef, mu = new, mu_new
        d = dev(mu)
        if abs(d - devold) / (abs(d) + 0.1) < eps:
            return coef, True
        devold = d
    return coef, False


@dataclass
class DispersionTrend:
    """The dispersion-mean trend: ``a0 + a1 / mean`` (parametric) or a constant (mean)."""

    kind: str
    a0: float
    a1: float = 0.0

    def __call__(self, means: np.ndarray) -> np.ndarray:
        """Trend value at ``means``."""
        if self.kind == "parametric":
            return self.a0 + self.a1 / np.asarray(means, dtype=float)
        return np.full(np.shape(means), self.a0)


def fit_trend(means: np.ndarray, disps: np.ndarray) -> DispersionTrend:
    """DESeq2 ``parametricDispersionFit`` on genes with dispersion > 100 * minDisp; on failure the
    trimmed mean (trim 0.001) of those dispersions (R substitutes a local fit there; logged)."""
    use = np.isfinite(disps) & (disps > 100 * MIN_DISP) & np.isfinite(means) & (means > 0)
    m, d = means[use], disps[use]
    if m.size == 0:
        raise ConfigError("no gene has a dispersion estimate above 1e-6: the counts look Poisson or empty",
                          hint="check the counts table (were the counts simulated without overdispersion?)")
    coefs = np.array([0.1, 1.0])
    ok = False
    for _ in range(11):
        resid = d / (coefs[0] + coefs[1] / m)
        good = (resid > 1e-4) & (resid < 15)
        if good.sum() < 3:
            break
        new, conv = _gamma_identity_glm(1 / m[good], d[good], coefs)
        old, coefs = coefs, new
        if not np.all(coefs > 0):
            break
        if np.sum(np.log(coefs / old) ** 2) < 1e-6 and conv:
            ok = True
            break
    if ok:
        return DispersionTrend("parametric", float(coefs[0]), float(coefs[1]))
    log.warning("nbglm: the parametric dispersion trend a0 + a1/mean did not fit; using the mean dispersion")
    return DispersionTrend("mean", float(_trimmed_mean(d, 0.001, axis=0)))


def _prior_var_small_df(resid: np.ndarray, dfr: int, seed: int = 2) -> float:
    """DESeq2's prior variance of log dispersions for 1-3 residual degrees of freedom: the normal
    variance that, added to log(chi2_df / df), best matches the histogram of log residuals
    (Kullback-Leibler over a grid of 200 variances in [0, 8], smoothed by a local quadratic fit
    with span 0.2 as R's ``loess``, minimised on a grid of 1,000). The random draws are numpy's,
    not R's (seeded)."""
    rng = np.random.default_rng(seed)
    brks = np.arange(-20, 21) / 2
    obs = resid[(resid > brks[0]) & (resid < brks[-1])]
    obs_d, _ = np.histogram(obs, bins=brks, density=True)
    grid = np.linspace(0, 8, 200)
    kl = np.empty(len(grid))
    for i, v in enumerate(grid):
        rd = np.log(rng.chisquare(dfr, 10000)) + rng.normal(0, math.sqrt(v), 10000) - math.log(dfr)
        rd = rd[(rd > brks[0]) & (rd < brks[-1])]
        rd_d, _ = np.histogram(rd, bins=brks, density=True)
        z = np.concatenate([obs_d, rd_d])
        small = z[z > 0].min()
        kl[i] = np.sum(obs_d * (np.log(obs_d + small) - np.log(rd_d + small)))
    fine = np.linspace(0, 8, 1000)
    k = int(math.ceil(0.2 * len(grid)))
    fitted = np.empty(len(fine))
    for i, x0 in enumerate(fine):
        d = np.abs(grid - x0)
        idx = np.argsort(d, kind="stable")[:k]
        h = d[idx].max() * 1.0000001 or 1.0
        w = (1 - (d[idx] / h) ** 3) ** 3
        xx = np.column_stack([np.ones(k), grid[idx] - x0, (grid[idx] - x0) ** 2])
        beta = np.linalg.lstsq(xx * np.sqrt(w)[:, None], kl[idx] * np.sqrt(w), rcond=None)[0]
        fitted[i] = beta[0]
    return float(max(fine[int(np.argmin(fitted))], 0.25))


def _mad(x: np.ndarray) -> float:
    return float(1.482602218505602 * np.median(np.abs(x - np.median(x))))


# ----------------------------------------------------------------------------------------------
# the fit
# ----------------------------------------------------------------------------------------------

@dataclass
class NBGLMFit:
    """A fitted DESeq2 model (genes are the rows of the counts given).

    Attributes hold per-gene arrays over all genes (NaN for all-zero genes): ``base_mean``,
    ``disp_gene``, ``disp_trend``, ``dispersion`` (final), ``coef`` (natural-log coefficients, G x p,
    blocks first), ``se`` (G x q, standard errors of the Z columns), ``converged``, ``max_cooks``,
    ``refitted``; per sample ``size_factors``; and the fit constants.
    """

    design: BlockDesign
    genes: pd.Index
    samples: pd.Index
    size_factors: np.ndarray
    base_mean: np.ndarray
    disp_gene: np.ndarray
    disp_trend: np.ndarray
    dispersion: np.ndarray
    coef: np.ndarray
    se: np.ndarray
    converged: np.ndarray
    max_cooks: np.ndarray
    cooks_argmax: np.ndarray
    refitted: np.ndarray
    new_all_zero: np.ndarray
    trend: DispersionTrend
    prior_var: float
    cooks_cutoff: float
    nonzero: np.ndarray
    counts: np.ndarray = field(repr=False)

    @property
    def normed_counts(self) -> np.ndarray:
        """Counts divided by size factors (genes x samples)."""
        return self.counts / self.size_factors[None, :]


def _kernels():
    from cfrna.de import _nbglm_kernels as k

    return k


def _dispersions(y: np.ndarray, sf: np.ndarray, design: BlockDesign, *, linear: bool
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gene-wise dispersions (DESeq2 estimateDispersionsGeneEst). Returns (disp, mu, converged)."""
    k = _kernels()
    n = y.shape[1]
    max_disp = max(10.0, float(n))
    normed = y / sf[None, :]
    mu = np.empty_like(y)
    rough = k.k_linear_mu(y, sf, design.block, design.n_blocks, design.z, MIN_MU, mu)
    bm = normed.mean(axis=1)
    bv = normed.var(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mom = (bv - np.mean(1 / sf) * bm) / bm**2
    alpha0 = np.clip(np.fmin(rough, np.nan_to_num(mom, nan=0.0)), MIN_DISP, max_disp)
    if not linear:
        k.k_irls_mu(y, sf, design.block, design.n_blocks, design.z, alpha0, RIDGE, MIN_MU, BETA_TOL, MAXIT, mu)
    disp, conv = k.k_fit_disp(y, mu, design.block, design.n_blocks, design.z, math.log(MIN_DISP),
                              math.log(max_disp), False, np.zeros(1), 1.0, np.log(alpha0), XTOL)
    return np.clip(disp, MIN_DISP, max_disp), mu, conv


def _map_dispersions(y, mu, design, trend_vals, prior_var, disp_gene, var_log):
    k = _kernels()
    n = y.shape[1]
    max_disp = max(10.0, float(n))
    init = np.where(disp_gene > 0.1 * trend_vals, disp_gene, trend_vals)  # DESeq2 dispInit
    mapd, _ = k.k_fit_disp(y, mu, design.block, design.n_blocks, design.z, math.log(MIN_DISP), math.log(max_disp),
                           True, np.log(trend_vals), prior_var, np.log(init), XTOL)
    mapd = np.clip(mapd, MIN_DISP, max_disp)
    outlier = np.log(disp_gene) > np.log(trend_vals) + OUTLIER_SD * math.sqrt(var_log)
    return np.where(outlier, disp_gene, mapd)


def fit(counts: np.ndarray | pd.DataFrame, design: BlockDesign, *, sf: np.ndarray | None = None,
        threads: int = 1, refit_cooks: bool = True, min_replicates: int = 7,
        genes: pd.Index | None = None, samples: pd.Index | None = None) -> NBGLMFit:
    """Fit DESeq2's model (``DESeq()``) to a genes x samples count matrix.

    Parameters
    ----------
    counts : numpy.ndarray or pandas.DataFrame
        Genes x samples non-negative integer counts (columns in design order).
    design : BlockDesign
        From :func:`build_design` (checked with :func:`check_design`).
    sf : numpy.ndarray, optional
        Size factors (default: median of ratios).
    threads : int
        Numba threads (genes in parallel) (default: 1).
    refit_cooks : bool
        Replace Cook's outliers in cells with >= ``min_replicates`` samples and refit those genes
        (default: True).
    min_replicates : int
        (default: 7, as DESeq2).

    Returns
    -------
    NBGLMFit
    """
    from scipy.special import polygamma
    from scipy.stats import f as f_dist

    from cfrna._numba import thread_limit

    if isinstance(counts, pd.DataFrame):
        genes = counts.index if genes is None else genes
        samples = counts.columns if samples is None else samples
        counts = counts.to_numpy()
    y_all = np.ascontiguousarray(counts, dtype=np.float64)
    G, n = y_all.shape
    genes = pd.RangeIndex(G) if genes is None else pd.Index(genes)
    samples = pd.RangeIndex(n) if samples is None else pd.Index(samples)
    if n != design.n_samples:
        raise ValueError(f"counts have {n} samples, the design {design.n_samples}")
    p = design.n_coef
    sf = size_factors(y_all) if sf is None else np.asarray(sf, dtype=float)
    nz = y_all.sum(axis=1) > 0
    y = np.ascontiguousarray(y_all[nz])
    rows = design.rows()
    linear = len(np.unique(rows)) == p
    k = _kernels()
    with thread_limit(threads):
        disp_gene, mu, _ = _dispersions(y, sf, design, linear=linear)
        base_mean = (y / sf[None, :]).mean(axis=1)
        trend = fit_trend(base_mean, disp_gene)
        trend_vals = trend(base_mean)
        above = disp_gene >= 100 * MIN_DISP
        resid = np.log(disp_gene[above]) - np.log(trend_vals[above])
        if resid.size == 0:
            raise ConfigError("no gene has a dispersion estimate above 1e-6", hint="check the counts table")
        var_log = _mad(resid) ** 2
        dfr = n - p
        if 0 < dfr <= 3:
            log.info("nbglm: %d residual degrees of freedom: prior variance of log dispersions by simulation", dfr)
            prior_var = _prior_var_small_df(resid, dfr)
        else:
            prior_var = float(max(var_log - float(polygamma(1, dfr / 2)), 0.25)) if dfr > 0 else 0.25
        disp = _map_dispersions(y, mu, design, trend_vals, prior_var, disp_gene, var_log)
        del mu
        # final coefficients, Wald SEs, Cook's distances
        normed = y / sf[None, :]
        rob = robust_moments_disp(normed, rows)
        ids, cnt = np.unique(rows, return_counts=True)
        per_row = dict(zip(ids, cnt, strict=True))
        use_max = np.array([per_row[r] >= 3 for r in rows])
        replaceable = np.array([per_row[r] >= min_replicates for r in rows])
        cooks_cut = float(f_dist.ppf(0.99, p, n - p)) if n > p else np.inf
        do_replace = refit_cooks and n > p and replaceable.any()
        flags = np.zeros((y.shape[0], n) if do_replace else (0, 0), dtype=np.bool_)
        coef, se, conv, maxc, maxc_nr, argc = k.k_fit_beta(
            y, sf, design.block, design.n_blocks, design.z, disp, RIDGE, MIN_MU, BETA_TOL, MAXIT, rob, use_max,
            ~replaceable, cooks_cut, flags)
        refitted = np.zeros(y.shape[0], dtype=bool)
        new_zero = np.zeros(y.shape[0], dtype=bool)
        if do_replace:
            out_genes = (flags & replaceable[None, :]).any(axis=1)
            if out_genes.any():
                refitted, new_zero = _refit_outliers(y, sf, design, out_genes, flags & replaceable[None, :], trend,
                                                     prior_var, var_log, linear, rows, use_max, replaceable, cooks_cut,
                                                     coef, se, conv, disp_gene, disp, base_mean, maxc)
                maxc = np.where(refitted, maxc_nr, maxc)
    G_nz = int(nz.sum())
    log.debug("nbglm: %d genes, %d samples, %d blocks + %d columns; %d refitted for Cook's outliers",
              G_nz, n, design.n_blocks, design.z.shape[1], int(refitted.sum()))

    def full(a, fill=np.nan, dtype=float):
        out = np.full((G, *a.shape[1:]), fill, dtype=dtype)
        out[nz] = a
        return out

    return NBGLMFit(design=design, genes=genes, samples=samples, size_factors=sf,
                    base_mean=np.where(nz, full(base_mean), 0.0), disp_gene=full(disp_gene),
                    disp_trend=full(trend_vals), dispersion=full(disp), coef=full(coef), se=full(se),
                    converged=full(conv, False, bool), max_cooks=full(maxc), cooks_argmax=full(argc, 0, np.int64),
                    refitted=full(refitted, False, bool), new_all_zero=full(new_zero, False, bool), trend=trend,
                    prior_var=prior_var, cooks_cutoff=cooks_cut, nonzero=nz, counts=y_all)


def _refit_outliers(y, sf, design, out_genes, out_flags, trend, prior_var, var_log, linear, rows, use_max, replaceable,
                    cooks_cut, coef, se, conv, disp_gene, disp, base_mean, maxc):
    """Replace outlier counts by the trimmed mean (trim 0.2) of normalised counts x size factor
    (truncated to integers, as DESeq2) and refit those genes with the same trend and prior."""
    k = _kernels()
    idx = np.flatnonzero(out_genes)
    sub = y[idx].copy()
    normed = sub / sf[None, :]
    tm = _trimmed_mean(normed, 0.2, axis=1)
    repl = np.floor(tm[:, None] * sf[None, :])
    fl = out_flags[idx]
    sub[fl] = repl[fl]
    zero = sub.sum(axis=1) == 0
    refitted = np.zeros(y.shape[0], dtype=bool)
    new_zero = np.zeros(y.shape[0], dtype=bool)
    new_zero[idx[zero]] = True
    idx, sub = idx[~zero], np.ascontiguousarray(sub[~zero])
    if idx.size == 0:
        return refitted, new_zero
    dg, mu, _ = _dispersions(sub, sf, design, linear=linear)
    bm = (sub / sf[None, :]).mean(axis=1)
    tv = trend(bm)
    d = _map_dispersions(sub, mu, design, tv, prior_var, dg, var_log)
    rob = robust_moments_disp(sub / sf[None, :], rows)
    c2, s2, cv2, _, _, _ = k.k_fit_beta(sub, sf, design.block, design.n_blocks, design.z, d, RIDGE, MIN_MU, BETA_TOL,
                                        MAXIT, rob, use_max, ~replaceable, cooks_cut, np.zeros((0, 0), dtype=np.bool_))
    coef[idx], se[idx], conv[idx], disp_gene[idx], disp[idx], base_mean[idx] = c2, s2, cv2, dg, d, bm
    refitted[idx] = True
    return refitted, new_zero


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------

def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN kept, excluded from the count; R ``p.adjust``)."""
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    v = p[ok]
    o = np.argsort(v)[::-1]
    adj = np.minimum.accumulate(v[o] * m / np.arange(m, 0, -1))
    res = np.empty(m)
    res[o] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


def _lowess(x: np.ndarray, y: np.ndarray, f: float = 0.2, iters: int = 3) -> np.ndarray:
    """R's ``lowess(x, y, f, iter)`` (clowess) for sorted ``x``: local linear fits over the
    ``int(f n)`` nearest points with tricube weights, then ``iters`` robustness passes with bisquare
    weights (6 x median absolute residual). ``delta`` (0.01 x range) only skips points closer than
    that, which evenly spaced filter quantiles are not."""
    n = len(x)
    ns = max(min(int(f * n + 1e-7), n), 2)
    ys = np.zeros(n)
    rw = np.ones(n)
    rng_x = x[-1] - x[0]
    for it in range(iters + 1):
        nleft, nright = 0, ns - 1
        for i in range(n):
            while nright < n - 1 and x[i] - x[nleft] > x[nright + 1] - x[i]:
                nleft += 1
                nright += 1
            h = max(x[i] - x[nleft], x[nright] - x[i])
            h9, h1 = 0.999 * h, 0.001 * h
            j = np.arange(nleft, n)
            r = np.abs(x[j] - x[i])
            j, r = j[(r <= h9) | (j <= nright)], r[(r <= h9) | (j <= nright)]
            w = np.where(r <= h1, 1.0, np.where(r <= h9, (1 - (r / h) ** 3) ** 3 if h > 0 else 1.0, 0.0)) * rw[j]
            sw = w.sum()
            if sw <= 0:
                ys[i] = y[i]
                continue
            w = w / sw
            if h > 0:
                a = np.sum(w * x[j])
                b = x[i] - a
                c = np.sum(w * (x[j] - a) ** 2)
                if math.sqrt(c) > 0.001 * rng_x:
                    w = w * (b / c * (x[j] - a) + 1.0)
            ys[i] = np.sum(w * y[j])
        if it == iters:
            break
        res = np.abs(y - ys)
        srt = np.sort(res)
        m1 = n // 2
        cmad = 3 * (srt[m1 - 1] + srt[m1]) if n % 2 == 0 else 6 * srt[m1]
        if cmad < 1e-7 * np.mean(np.abs(y)):
            break
        rw = np.where(res <= 0.001 * cmad, 1.0, np.where(res <= 0.999 * cmad, (1 - (res / cmad) ** 2) ** 2, 0.0))
    return ys


def independent_filter(base_mean: np.ndarray, pvalue: np.ndarray, alpha: float) -> np.ndarray:
    """DESeq2's independent filtering on the mean of normalised counts; returns padj."""
    lower = float(np.mean(base_mean == 0))
    upper = 0.95 if lower < 0.95 else 1.0
    theta = np.linspace(lower, upper, 50)
    cutoffs = np.quantile(base_mean, theta)
    padj = np.full((len(theta), len(pvalue)), np.nan)
    for i, c in enumerate(cutoffs):
        use = (base_mean >= c) & ~np.isnan(pvalue)
        if use.any():
            padj[i, use] = bh_adjust(pvalue[use])
    num_rej = np.nansum(padj < alpha, axis=1).astype(float)
    if num_rej.max() <= 10:
        j = 0
    else:
        fit_ = _lowess(theta, num_rej, f=1 / 5)
        residual = num_rej[num_rej > 0] - fit_[num_rej > 0]
        thresh = fit_.max() - np.sqrt(np.mean(residual**2))
        j = int(np.flatnonzero(num_rej > thresh)[0]) if np.any(num_rej > thresh) else 0
    return padj[j]


def _shrink_prior_var(lfc: np.ndarray, se: np.ndarray, min_var: float = 1e-6, max_var: float = 400.0) -> float:
    from scipy.optimize import brentq

    keep = np.isfinite(lfc) & np.isfinite(se)
    s, d = lfc[keep] ** 2, se[keep] ** 2

    def objective(a):
        c = 1 / (2 * (a + d) ** 2)
        return ((s - d) * c).sum() / c.sum() - a

    if objective(min_var) < 0:
        return min_var
    if objective(max_var) > 0:
        return max_var
    return float(brentq(objective, min_var, max_var))


def results(fit_: NBGLMFit, coefficient: str, *, alpha: float = 0.05, cooks_filter: bool = True,
            independent_filtering: bool = True, lfc_shrink: bool = True, two_group: bool = False,
            threads: int = 1) -> pd.DataFrame:
    """Wald test of one Z column (DESeq2 ``results()``), optionally with its shrunken LFC.

    Parameters
    ----------
    fit_ : NBGLMFit
    coefficient : str
        A column of ``fit_.design.z_columns``.
    alpha : float
        Target FDR of independent filtering (default: 0.05).
    cooks_filter, independent_filtering : bool
        (default: True).
    lfc_shrink : bool
        Add ``log2FoldChange_shrunk`` (Cauchy prior as pydeseq2 ``lfc_shrink``) (default: True).
    two_group : bool
        The design is one two-level factor: a gene keeps its p-value when >= 3 samples have
        counts above its Cook's outlier count (DESeq2 applies this only to such designs).
    threads : int
        Numba threads (default: 1).

    Returns
    -------
    pandas.DataFrame
        Indexed by gene: baseMean, log2FoldChange, lfcSE, stat, pvalue, padj, log2FoldChange_shrunk.
    """
    from scipy.special import ndtr

    from cfrna._numba import thread_limit

    d = fit_.design
    if coefficient not in d.z_columns:
        raise ConfigError(f"coefficient '{coefficient}' is not in the design",
                          hint=f"design columns: {', '.join(d.z_columns)}")
    j = d.z_columns.index(coefficient)
    k = d.n_blocks + j
    lfc = fit_.coef[:, k]
    se = fit_.se[:, j]
    with np.errstate(invalid="ignore", divide="ignore"):
        stat = lfc / se
    pval = 2 * ndtr(-np.abs(stat))
    nz0 = fit_.new_all_zero
    se, stat, pval = np.where(nz0, 0.0, se), np.where(nz0, 0.0, stat), np.where(nz0, 1.0, pval)
    n, p = d.n_samples, d.n_coef
    if cooks_filter and n > p:
        out = np.nan_to_num(fit_.max_cooks, nan=-np.inf) > fit_.cooks_cutoff
        if two_group and out.any():
            idx = np.flatnonzero(out)
            y = fit_.counts[idx]
            oc = y[np.arange(len(idx)), fit_.cooks_argmax[idx]]
            keep = (y > oc[:, None]).sum(axis=1) >= 3
            out[idx[keep]] = False
        pval = np.where(out, np.nan, pval)
    padj = independent_filter(fit_.base_mean, pval, alpha) if independent_filtering else bh_adjust(pval)
    res = pd.DataFrame({"baseMean": fit_.base_mean, "log2FoldChange": lfc / math.log(2), "lfcSE": se / math.log(2),
                        "stat": stat, "pvalue": pval, "padj": padj}, index=fit_.genes)
    res["log2FoldChange_shrunk"] = np.nan
    if lfc_shrink:
        nz = fit_.nonzero & np.isfinite(lfc) & np.isfinite(fit_.dispersion)
        scale = min(math.sqrt(_shrink_prior_var(lfc[nz], fit_.se[nz, j])), 1.0)
        start = fit_.coef[nz].copy()
        start[:, k] = 0.0
        with thread_limit(threads):
            sh, _ = _kernels().k_shrink(np.ascontiguousarray(fit_.counts[nz]), np.log(fit_.size_factors), d.block,
                                        d.n_blocks, d.z, fit_.dispersion[nz], start, k, 15.0**2, scale**2, 200, 1e-12)
        shr = np.full(len(lfc), np.nan)
        shr[nz] = sh / math.log(2)
        res["log2FoldChange_shrunk"] = shr
    res.index.name = "gene_id"
    return res


def vst(counts: np.ndarray, design: BlockDesign, sf: np.ndarray, *, nsub: int | None = None,
        threads: int = 1) -> np.ndarray:
    """DESeq2 ``varianceStabilizingTransformation(dds, blind = FALSE)`` after ``DESeq()`` when
    ``design`` is the model (pass an intercept-only design for blind): gene-wise dispersions of
    all non-zero genes and their parametric trend, then the closed-form transform of that trend
    (or of the mean dispersion). With ``nsub``, the trend is fitted on ``nsub`` genes with mean
    normalised count > 5 evenly spaced by mean, as R's ``vst()`` (faster; on airway 0.55 log2
    units from R's reference instead of 0.09). Genes x samples in, genes x samples out."""
    from cfrna._numba import thread_limit

    y = np.asarray(counts, dtype=float)
    normed = y / sf[None, :]
    bm = normed.mean(axis=1)
    sel = np.flatnonzero(bm > 5)
    if nsub is not None and sel.size >= nsub:
        o = sel[np.argsort(bm[sel], kind="stable")]
        pick = o[np.round(np.linspace(0, len(o) - 1, nsub)).astype(int)]
    else:
        pick = np.flatnonzero(bm > 0)
    sub = np.ascontiguousarray(y[pick])
    linear = len(np.unique(design.rows())) == design.n_coef
    with thread_limit(threads):
        dg, _, _ = _dispersions(sub, sf, design, linear=linear)
    trend = fit_trend(bm[pick], dg)
    if trend.kind == "parametric":
        a0, a1 = trend.a0, trend.a1
        return np.log2((1 + a1 + 2 * a0 * normed + 2 * np.sqrt(a0 * normed * (1 + a1 + a0 * normed))) / (4 * a0))
    a = trend.a0
    return (2 * np.arcsinh(np.sqrt(a * normed)) - np.log(a) - np.log(4)) / np.log(2)


def is_two_group(formula: str, metadata: pd.DataFrame) -> bool:
    """True when the formula has one variable, a factor with two levels (DESeq2's Cook's heuristic)."""
    import formulaic

    names = [str(v) for v in formulaic.Formula(formula).required_variables]
    if len(names) != 1 or names[0] not in metadata.columns:
        return False
    col = metadata[names[0]]
    if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
        return False
    return int(col.astype(str).nunique()) == 2


def nbinom_deseq(counts: pd.DataFrame, metadata: pd.DataFrame, formula: str, coefficient: str, *,
                 threads: int = 1, alpha: float = 0.05, lfc_shrink: bool = True, cooks: bool = True,
                 independent_filter: bool = True, absorb: str | None | bool = "auto", where: str = ""
                 ) -> tuple[pd.DataFrame, NBGLMFit]:
    """DESeq2 from counts to the results table of one coefficient (``DESeq()`` + ``results()``).

    Parameters
    ----------
    counts : pandas.DataFrame
        Genes x samples (the samples of ``metadata``, any order).
    metadata, formula, coefficient :
        As :func:`cfrna.de.deseq.deseq_fit`.
    absorb : "auto", str, None
        See :func:`build_design` (default: ``"auto"``).
    where : str
        Location for error messages (``file:line`` of the contrast).

    Returns
    -------
    (pandas.DataFrame, NBGLMFit)
    """
    design = build_design(formula, metadata, absorb=absorb, keep=coefficient)
    check_design(design, where=where)
    if coefficient not in design.z_columns:
        raise ConfigError(f"coefficient '{coefficient}' is not in the design matrix of {formula!r}",
                          where=where or None, hint=f"design columns: {', '.join(design.z_columns)}")
    y = counts[metadata.index]
    f = fit(y, design, threads=threads, refit_cooks=cooks)
    res = results(f, coefficient, alpha=alpha, cooks_filter=cooks, independent_filtering=independent_filter,
                  lfc_shrink=lfc_shrink, two_group=is_two_group(formula, metadata), threads=threads)
    return res, f


__all__ = ["BlockDesign", "DispersionTrend", "NBGLMFit", "bh_adjust", "build_design", "check_design", "fit",
           "fit_trend", "independent_filter", "is_two_group", "nbinom_deseq", "results", "robust_moments_disp",
           "size_factors", "vst"]
