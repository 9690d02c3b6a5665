"""Linear models for RNA-seq with precision weights and a random block effect (limma-style).

A reimplementation, in numpy/scipy/numba, of the published methods behind R limma's
``voomWithQualityWeights`` -> ``duplicateCorrelation(block=)`` -> ``lmFit(block=, correlation=)``
-> ``eBayes(robust=TRUE)`` -> ``topTable``:

- voom: Law, Chen, Shi & Smyth (2014) Genome Biology 15:R29;
- sample quality weights: Liu, Holik, Su, ... & Ritchie (2015) Nucleic Acids Research 43:e97;
- consensus within-block correlation: Smyth, Michaud & Scott (2005) Bioinformatics 21:2067 (per-gene
  REML of a random block intercept, averaged on the atanh scale with 15 % trimming);
- empirical Bayes moderation: Smyth (2004) SAGMB 3:3; robust hyperparameters: Phipson, Lee,
  Majewski, Alexander & Smyth (2016) Annals of Applied Statistics 10:946.

Defaults follow limma 3.54 (lowess span 0.5, prior.n = 10, trim = 0.15, correlation clamped to
[1/(1 - max block size) + 0.01, 0.99], winsor.tail.p = (0.05, 0.1), proportion = 0.01,
stdev.coef.lim = (0.1, 4)). No limma code is used; agreement with R limma is tested in
``tests/test_de_limma.py``. cfrna is MIT-licensed; pylimma (GPL-3.0) is deliberately not used.

Public functions take genes x samples numpy arrays and a samples x p design matrix.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats
from scipy.optimize import brentq

from cfrna.de import _limma_kernels as K
from cfrna.errors import ConfigError

log = logging.getLogger(__name__)

#: gene-by-gene quality weights cost O(genes x samples^3); above this many samples they are skipped
QUALITY_WEIGHTS_MAX_SAMPLES = 300


class CorrelationWarning(UserWarning):
    """The consensus within-block correlation is unreliable (REML not converged / at a bound / few genes)."""


@dataclass
class VoomResult:
    """voom output: log-CPM ``E`` and precision ``weights`` (genes x samples), library sizes, sample weights."""

    E: np.ndarray
    weights: np.ndarray
    lib_size: np.ndarray
    sample_weights: np.ndarray | None = None


@dataclass
class LinearFit:
    """``lm_fit`` output (the MArrayLM slots used downstream)."""

    coefficients: np.ndarray
    stdev_unscaled: np.ndarray
    sigma: np.ndarray
    df_residual: np.ndarray
    amean: np.ndarray
    design: np.ndarray
    correlation: float = 0.0
    # filled by ebayes
    df_prior: np.ndarray | float | None = None
    s2_prior: float | np.ndarray | None = None
    s2_post: np.ndarray | None = None
    t: np.ndarray | None = None
    df_total: np.ndarray | None = None
    p_value: np.ndarray | None = None
    lods: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class CorrelationResult:
    """``duplicate_correlation`` output."""

    consensus: float
    atanh_correlations: np.ndarray
    n_estimated: int
    n_at_bound: int
    warning: str = ""


# ----------------------------------------------------------------------------------------------- helpers

def _as_design(design: np.ndarray | None, n: int) -> np.ndarray:
    if design is None:
        return np.ones((n, 1))
    x = np.asarray(design, dtype=float)
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(f"design has {x.shape[0] if x.ndim else 0} rows for {n} samples")
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError("design matrix is not of full column rank")
    return x


def _block_index(block, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples ordered by block and block start offsets (one block per sample when ``block`` is None)."""
    if block is None:
        return np.arange(n, dtype=np.int64), np.arange(n + 1, dtype=np.int64)
    codes, _ = pd.factorize(pd.Series(np.asarray(block)), sort=False)
    if len(codes) != n:
        raise ValueError(f"block has {len(codes)} entries for {n} samples")
    order = np.argsort(codes, kind="stable").astype(np.int64)
    counts = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return order, starts


def _lm_ols(E: np.ndarray, x: np.ndarray, sample_weights: np.ndarray | None = None):
    """Least squares of every gene on the same design (optionally the same weights for every gene)."""
    n, p = x.shape
    if sample_weights is not None:
        sw = np.sqrt(sample_weights)
        xw = x * sw[:, None]
        ew = E * sw[None, :]
    else:
        xw, ew = x, E
    q, r = np.linalg.qr(xw)
    coef = np.linalg.solve(r, q.T @ ew.T).T  # genes x p
    resid = ew - coef @ xw.T
    df = n - p
    sigma = np.sqrt(np.einsum("ij,ij->i", resid, resid) / df) if df > 0 else np.full(E.shape[0], np.nan)
    rinv = np.linalg.inv(r)
    sdu = np.sqrt(np.sum(rinv**2, axis=1))
    return coef, np.broadcast_to(sdu, coef.shape).copy(), sigma


def _threads(threads: int | None) -> int:
    import numba

    return max(1, min(int(threads or numba.get_num_threads()), numba.config.NUMBA_NUM_THREADS))


def _chunked(kernel, E: np.ndarray, W: np.ndarray, *args, threads: int | None = None):
    """Run a serial nogil kernel over gene chunks in threads; concatenate its outputs."""
    from concurrent.futures import ThreadPoolExecutor

    g = E.shape[0]
    nt = _threads(threads)
    if nt == 1 or g < 2000:
        return kernel(E, W, *args)
    bounds = np.linspace(0, g, 4 * nt + 1).astype(int)
    with ThreadPoolExecutor(nt) as ex:
        parts = list(ex.map(lambda ab: kernel(E[ab[0]:ab[1]], W[ab[0]:ab[1]], *args),
                            zip(bounds[:-1], bounds[1:], strict=True)))
    return tuple(np.concatenate([pt[k] for pt in parts]) for k in range(len(parts[0])))


def _trimmed_mean(x: np.ndarray, trim: float) -> float:
    """R's ``mean(x, trim=)``."""
    x = np.sort(x[np.isfinite(x)])
    n = len(x)
    if n == 0:
        return float("nan")
    if trim >= 0.5:
        return float(np.median(x))
    lo = int(math.floor(n * trim))
    return float(x[lo:n - lo].mean()) if n - 2 * lo > 0 else float(np.median(x))


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN kept)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    pv = p[ok]
    m = len(pv)
    if m == 0:
        return out
    o = np.argsort(pv)[::-1]
    ranks = np.arange(m, 0, -1)
    adj = np.minimum.accumulate(pv[o] * m / ranks)
    res = np.empty(m)
    res[o] = np.minimum(adj, 1.0)
    out[ok] = res
    return out


# ----------------------------------------------------------------------------------------------- voom

def voom(counts: np.ndarray, design: np.ndarray | None = None, *, lib_size: np.ndarray | None = None,
         weights: np.ndarray | None = None, span: float = 0.5) -> VoomResult:
    """Log-CPM values and observation-level precision weights from the mean-variance trend (Law et al. 2014).

    Parameters
    ----------
    counts : numpy.ndarray
        Genes x samples raw counts.
    design : numpy.ndarray, optional
        Samples x p full-rank design (default: intercept only).
    lib_size : numpy.ndarray, optional
        Library sizes (default: column sums).
    weights : numpy.ndarray, optional
        Sample weights (length n) used in the trend fit (the second voom pass of
        :func:`voom_quality_weights`).
    span : float
        lowess span of the trend of sqrt(residual SD) on mean log-count (default: 0.5).

    Returns
    -------
    VoomResult
    """
    counts = np.asarray(counts, dtype=float)
    g, n = counts.shape
    if g < 2:
        raise ValueError("voom needs at least two genes to fit a mean-variance trend")
    if np.isnan(counts).any() or (counts < 0).any():
        raise ValueError("counts must be non-negative and complete")
    x = _as_design(design, n)
    lib = counts.sum(axis=0) if lib_size is None else np.asarray(lib_size, dtype=float)
    E = np.log2((counts + 0.5) / (lib + 1.0)[None, :] * 1e6)
    sw = None if weights is None else np.asarray(weights, dtype=float)
    if sw is not None and sw.ndim != 1:
        raise ValueError("voom weights must be one weight per sample")
    coef, _, sigma = _lm_ols(E, x, sw)
    amean = E.mean(axis=1)
    if n - x.shape[1] < 1:
        log.warning("voom: the design has no residual degrees of freedom; weights set to 1")
        return VoomResult(E=E, weights=np.ones_like(E), lib_size=lib)
    sx = amean + np.mean(np.log2(lib + 1.0)) - math.log2(1e6)
    sy = np.sqrt(sigma)
    keep = counts.sum(axis=1) > 0
    sx, sy = sx[keep], sy[keep]
    o = np.argsort(sx, kind="stable")
    xs, ysrt = sx[o], sy[o]
    fitted = K.lowess(xs, ysrt, float(span), 3, 0.01 * float(xs[-1] - xs[0]))
    # approxfun(ties = mean, rule = 2): collapse tied x by the mean fitted value
    ux, inv = np.unique(xs, return_inverse=True)
    uy = np.bincount(inv, weights=fitted) / np.bincount(inv)
    # fitted log2-count = fitted log2-CPM + log2(library size + 1) - log2(1e6)
    fitted_logcount = coef @ x.T
    fitted_logcount += (np.log2(lib + 1.0) - math.log2(1e6))[None, :]
    w = np.interp(fitted_logcount, ux, uy)
    w **= -4
    return VoomResult(E=E, weights=w, lib_size=lib)


def array_weights(E: np.ndarray, design: np.ndarray | None = None, *, weights: np.ndarray | None = None,
                  prior_n: float = 10.0) -> np.ndarray:
    """Sample quality weights by the gene-by-gene algorithm (Liu et al. 2015).

    Parameters
    ----------
    E : numpy.ndarray
        Genes x samples log-expression.
    design : numpy.ndarray, optional
        Samples x p design (default: intercept).
    weights : numpy.ndarray, optional
        Genes x samples prior (voom) weights.
    prior_n : float
        Prior observations squeezing the weights towards 1 (default: 10).

    Returns
    -------
    numpy.ndarray
        One weight per sample (geometric mean 1).
    """
    E = np.asarray(E, dtype=float)
    g, n = E.shape
    x = _as_design(design, n)
    if g < 2 or n - x.shape[1] < 2:
        return np.ones(n)
    w = np.ones_like(E) if weights is None else np.ascontiguousarray(weights, dtype=float)
    if not np.isfinite(E).all():
        raise ValueError("array_weights: expression values must be finite")
    from threadpoolctl import threadpool_limits

    # one small Cholesky per gene: a multi-threaded BLAS spins its threads for nothing (27x the CPU time)
    with threadpool_limits(limits=1):
        return K.array_weights_gbg(np.ascontiguousarray(E), w, np.ascontiguousarray(x), float(prior_n))


def voom_quality_weights(counts: np.ndarray, design: np.ndarray | None = None, *,
                         lib_size: np.ndarray | None = None, span: float = 0.5) -> VoomResult:
    """voom with sample quality weights (limma ``voomWithQualityWeights``).

    voom -> sample weights -> voom again with the sample weights in the trend fit -> sample weights
    again; the returned observation weights are the voom weights times the sample weights.
    """
    v = voom(counts, design, lib_size=lib_size, span=span)
    aw = array_weights(v.E, design, weights=v.weights)
    v = voom(counts, design, lib_size=lib_size, weights=aw, span=span)
    aw = array_weights(v.E, design, weights=v.weights)
    v.weights = v.weights * aw[None, :]
    v.sample_weights = aw
    return v


# ----------------------------------------------------------------------------------------------- correlation

def duplicate_correlation(E: np.ndarray, design: np.ndarray | None, block, *, weights: np.ndarray | None = None,
                          trim: float = 0.15, tol: float = 1e-6, maxit: int = 200,
                          threads: int | None = None) -> CorrelationResult:
    """Consensus correlation of samples within a block (Smyth et al. 2005; limma ``duplicateCorrelation``).

    For each gene the correlation of a random block intercept is estimated by REML (the model of
    statmod's ``mixedModel2Fit``: whitened values ``sqrt(w) y`` with covariance
    ``s2 ((1 - rho) I + rho ZZ')``). The estimates are clamped to
    [1/(1 - max block size) + 0.01, 0.99] and averaged on the atanh scale with ``trim`` trimming.

    Parameters
    ----------
    E, weights : numpy.ndarray
        Genes x samples log-expression and precision weights (voom).
    design : numpy.ndarray
        Samples x p fixed-effect design.
    block : array-like
        Block label per sample (patient).
    trim : float
        Trimmed fraction of each tail in the atanh mean (default: 0.15).
    threads : int, optional
        Threads over gene chunks (default: numba's thread count).

    Returns
    -------
    CorrelationResult
        ``consensus`` is 0 with a :class:`CorrelationWarning` message when no gene is estimable or
        the blocks are all of size one.

    Notes
    -----
    limma caps statmod's Fisher scoring at 20 iterations; here each gene's 1-D profiled REML
    likelihood is minimised by Brent's method to ``tol`` (default 1e-6), so a gene whose scoring
    would stop early can differ slightly. Genes whose optimum lies on the search bound are counted
    in ``n_at_bound``.
    """
    E = np.ascontiguousarray(E, dtype=float)
    g, n = E.shape
    x = _as_design(design, n)
    p = x.shape[1]
    order, starts = _block_index(block, n)
    sizes = np.diff(starts)
    nblocks = len(sizes)
    maxsize = int(sizes.max())
    if maxsize == 1:
        msg = "blocks all of size 1: within-block correlation set to 0"
        return CorrelationResult(0.0, np.zeros(g), 0, 0, msg)
    # a block already encoded in the design (e.g. patient also a fixed effect)
    zb = np.zeros((n, nblocks))
    codes = np.empty(n, dtype=np.int64)
    for b in range(nblocks):
        codes[order[starts[b]:starts[b + 1]]] = b
    zb[np.arange(n), codes] = 1.0
    q, _ = np.linalg.qr(x, mode="complete")
    if np.abs(q[:, p:].T @ zb[:, 1:]).max() < 1e-8:
        msg = "block factor already encoded in the design: within-block correlation set to 0"
        return CorrelationResult(0.0, np.zeros(g), 0, 0, msg)
    if not (n > p + 2 and 1 < nblocks < n - 1):
        msg = f"too few samples/blocks for REML ({n} samples, {nblocks} blocks, {p} coefficients)"
        return CorrelationResult(0.0, np.full(g, np.nan), 0, 0, msg)
    w = np.ones_like(E) if weights is None else np.ascontiguousarray(weights, dtype=float)
    rhomin = 1.0 / (1.0 - maxsize) + 0.01
    lo = 1.0 / (1.0 - maxsize) + 1e-6
    hi = 1.0 - 1e-6
    rho, status = _chunked(K.reml_correlation, E, w, np.ascontiguousarray(x), order, starts, lo, hi, float(tol),
                           int(maxit), threads=threads)
    ok = np.isfinite(rho)
    n_est = int(ok.sum())
    n_bound = int((status == 1).sum())
    rho = np.where(ok, np.clip(rho, rhomin, 0.99), np.nan)
    arho = np.arctanh(rho)
    msgs = []
    if n_est == 0:
        return CorrelationResult(0.0, arho, 0, n_bound,
                                 "REML did not give a correlation for any gene: within-block correlation set to 0")
    consensus = math.tanh(_trimmed_mean(arho, trim))
    if n_est < 0.5 * g:
        msgs.append(f"REML estimable for only {n_est} of {g} genes")
    if n_bound > 0.5 * n_est:
        msgs.append(f"REML optimum at a bound of the correlation range for {n_bound} of {n_est} genes")
    if consensus >= 0.99 - 1e-9 or consensus <= rhomin + 1e-9:
        msgs.append(f"consensus correlation {consensus:.3f} is at a bound of the allowed range")
    return CorrelationResult(consensus, arho, n_est, n_bound, "; ".join(msgs))


# ----------------------------------------------------------------------------------------------- lmFit

def lm_fit(E: np.ndarray, design: np.ndarray | None = None, *, weights: np.ndarray | None = None, block=None,
           correlation: float = 0.0, threads: int | None = None) -> LinearFit:
    """Gene-wise linear models: OLS, WLS (``weights``), or GLS with a within-block ``correlation``.

    Parameters
    ----------
    E : numpy.ndarray
        Genes x samples log-expression.
    design : numpy.ndarray, optional
        Samples x p full-rank design (default: intercept).
    weights : numpy.ndarray, optional
        Genes x samples precision weights (or one per sample).
    block : array-like, optional
        Block label per sample; with ``correlation`` gives limma's ``lmFit(block=, correlation=)``.
    correlation : float
        Within-block correlation (default: 0).
    threads : int, optional
        Threads over gene chunks (default: numba's thread count).

    Returns
    -------
    LinearFit
        coefficients, stdev_unscaled (genes x p), sigma, df_residual, amean (row means of E).
    """
    E = np.ascontiguousarray(E, dtype=float)
    g, n = E.shape
    x = _as_design(design, n)
    if abs(correlation) >= 1:
        raise ValueError("correlation is 1 or -1: the model is degenerate")
    amean = E.mean(axis=1)
    df = np.full(g, float(n - x.shape[1]))
    if block is None or correlation == 0:
        if weights is None:
            coef, sdu, sigma = _lm_ols(E, x)
            return LinearFit(coef, sdu, sigma, df, amean, x, 0.0)
        block = None
    w = np.asarray(weights, dtype=float) if weights is not None else np.ones_like(E)
    if w.ndim == 1:
        w = np.broadcast_to(w, E.shape)
    w = np.ascontiguousarray(w)
    if (w <= 0).any() or not np.isfinite(w).all():
        raise ValueError("weights must be positive and finite")
    order, starts = _block_index(block, n)
    coef, sdu, sigma = _chunked(K.gls_fit, E, w, np.ascontiguousarray(x), order, starts, float(correlation),
                                threads=threads)
    return LinearFit(coef, sdu, sigma, df, amean, x, float(correlation if block is not None else 0.0))


# ----------------------------------------------------------------------------------------------- eBayes

def trigamma_inverse(x: np.ndarray) -> np.ndarray:
    """Solve trigamma(y) = x by Newton's method (Smyth 2004)."""
    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.full_like(x, np.nan)
    big = x > 1e7
    small = x < 1e-6
    mid = (~big) & (~small) & (x >= 0)
    y[big] = 1.0 / np.sqrt(x[big])
    y[small & (x >= 0)] = 1.0 / x[small & (x >= 0)]
    if mid.any():
        xm = x[mid]
        ym = 0.5 + 1.0 / xm
        for _ in range(50):
            tri = special.polygamma(1, ym)
            dif = tri * (1.0 - tri / xm) / special.polygamma(2, ym)
            ym = ym + dif
            if np.max(-dif / ym) < 1e-8:
                break
        y[mid] = ym
    return y


def _natural_spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """A basis of the natural cubic splines with the given knots (boundary knots included; ESL 5.2.1).

    Spans the same space as R's ``splines::ns(x, knots = interior, Boundary.knots = range,
    intercept = TRUE)``, so least-squares fitted values are identical.
    """
    lo, hi = knots[0], knots[-1]
    scale = (hi - lo) or 1.0
    u = (x - lo) / scale
    k = (knots - lo) / scale
    K = len(k)

    def d(j):
        return (np.maximum(u - k[j], 0) ** 3 - np.maximum(u - k[K - 1], 0) ** 3) / (k[K - 1] - k[j])

    cols = [np.ones_like(u), u] + [d(j) - d(K - 2) for j in range(K - 2)]
    return np.column_stack(cols)


def fit_f_dist(x: np.ndarray, df1: np.ndarray | float, *,
               covariate: np.ndarray | None = None) -> tuple[float | np.ndarray, float]:
    """Moment estimates of the scaled F distribution of sample variances (limma ``fitFDist``).

    With ``covariate`` (e.g. the average log-expression: limma's ``trend=TRUE``) the log-scale
    prior mean is a natural cubic spline in the covariate (limma's ``ns`` with 1-4 df by the number
    of genes, interior knots at covariate quantiles) and the scale is one value per gene.

    Returns (scale s0^2, prior df d0).
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    df1 = np.broadcast_to(np.asarray(df1, dtype=float), x.shape)
    ok = np.isfinite(df1) & (df1 > 1e-15) & np.isfinite(x) & (x > -1e-15)
    cov_all = None if covariate is None else np.asarray(covariate, dtype=float)
    x, df1 = x[ok], df1[ok]
    nok = len(x)
    if nok == 0:
        return float("nan"), float("nan")
    if nok == 1:
        return float(x[0]), 0.0
    basis = None
    if cov_all is not None:
        cov = cov_all[ok]
        splinedf = min(1 + (nok >= 3) + (nok >= 6) + (nok >= 30), len(np.unique(cov)))
        if splinedf < 2:
            s20, df2 = fit_f_dist(x, df1)
            return np.full(n, s20), df2
        knots = np.quantile(cov, np.linspace(0, 1, splinedf))
        basis = _natural_spline_basis(cov, knots)
    x = np.maximum(x, 0)
    m = np.median(x)
    if m == 0:
        warnings.warn("more than half of residual variances are exactly zero: eBayes unreliable", stacklevel=2)
        m = 1.0
    x = np.maximum(x, 1e-5 * m)
    z = np.log(x)
    e = z - special.digamma(df1 / 2) + np.log(df1 / 2)
    if basis is None:
        emean = e.mean()
        evar = np.sum((e - emean) ** 2) / (nok - 1)
    else:
        coef, *_ = np.linalg.lstsq(basis, e, rcond=None)
        rank = np.linalg.matrix_rank(basis)
        evar = float(np.sum((e - basis @ coef) ** 2) / (nok - rank))
        emean = np.full(n, np.nan)
        emean[ok] = basis @ coef
        if not ok.all():
            emean[~ok] = _natural_spline_basis(cov_all[~ok], knots) @ coef
    evar -= np.mean(special.polygamma(1, df1 / 2))
    if evar > 0:
        df2 = 2 * float(trigamma_inverse(evar)[0])
        s20 = np.exp(emean + special.digamma(df2 / 2) - math.log(df2 / 2))
    else:
        df2 = math.inf
        s20 = float(np.mean(x)) if basis is None else np.exp(emean)
    return (float(s20) if basis is None else s20), df2


_GQ_NODES, _GQ_WEIGHTS = np.polynomial.legendre.leggauss(128)
_GQ_NODES = (_GQ_NODES + 1) / 2
_GQ_WEIGHTS = _GQ_WEIGHTS / 2


def _winsorized_moments(df1: float, df2: float, tail: np.ndarray) -> tuple[float, float]:
    """Mean and variance of the winsorized log-F(df1, df2) distribution (Gauss-Legendre on a link scale)."""
    fq = stats.f.ppf([tail[0], 1 - tail[1]], df1, df2) if np.isfinite(df2) else \
        stats.chi2.ppf([tail[0], 1 - tail[1]], df1) / df1
    zq = np.log(fq)
    q = fq / (1 + fq)
    nodes = q[0] + (q[1] - q[0]) * _GQ_NODES
    fnodes = nodes / (1 - nodes)
    znodes = np.log(fnodes)
    dens = (stats.f.pdf(fnodes, df1, df2) if np.isfinite(df2) else df1 * stats.chi2.pdf(fnodes * df1, df1))
    f = dens / (1 - nodes) ** 2
    q21 = q[1] - q[0]
    m = q21 * np.sum(_GQ_WEIGHTS * f * znodes) + np.sum(zq * tail)
    v = q21 * np.sum(_GQ_WEIGHTS * f * (znodes - m) ** 2) + np.sum((zq - m) ** 2 * tail)
    return float(m), float(v)


def fit_f_dist_robustly(x: np.ndarray, df1: float, *, winsor_tail_p: tuple[float, float] = (0.05, 0.1)) -> dict:
    """Robust estimation of the F-distribution hyperparameters (Phipson et al. 2016; limma ``fitFDistRobustly``).

    ``df1`` is one residual df for every gene (this path fits the same design to every gene).
    Returns ``{"scale", "df2", "df2_shrunk"}`` with a per-gene prior df shrunk for outlier variances.
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    ok = np.isfinite(x)
    if not ok.all():
        fit = fit_f_dist_robustly(x[ok], df1, winsor_tail_p=winsor_tail_p)
        shr = np.full(n, fit["df2"])
        shr[ok] = fit["df2_shrunk"]
        return {"scale": fit["scale"], "df2": fit["df2"], "df2_shrunk": shr}
    if n < 3:
        s, d = fit_f_dist(x, df1)
        return {"scale": s, "df2": d, "df2_shrunk": np.full(n, d)}
    m = np.median(x)
    if m <= 0:
        raise ValueError("variances are mostly <= 0")
    x = np.where(x < m * 1e-12, m * 1e-12, x)
    s_nr, d_nr = fit_f_dist(x, df1)
    tail = np.array(winsor_tail_p, dtype=float)
    if np.all(tail < 1 / n):
        return {"scale": s_nr, "df2": d_nr, "df2_shrunk": np.full(n, d_nr)}
    z = np.log(x)
    ztrend = _trimmed_mean(z, tail[1])
    zresid = z - ztrend
    zrq = np.quantile(zresid, [tail[0], 1 - tail[1]])
    zwins = np.clip(zresid, zrq[0], zrq[1])
    zwmean = zwins.mean()
    zwvar = np.mean((zwins - zwmean) ** 2) * n / (n - 1)

    mom_inf = _winsorized_moments(df1, math.inf, tail)
    funval_inf = math.log(zwvar / mom_inf[1])
    if funval_inf <= 0:
        df2 = math.inf
        ztc = ztrend + zwmean - mom_inf[0]
        s20 = math.exp(ztc)
        fstat = np.exp(z - ztc)
        tailp = stats.chi2.sf(fstat * df1, df1)
        r = stats.rankdata(fstat)
        emp = (n - r + 0.5) / n
        pno = np.minimum(tailp / emp, 1)
        df2s = np.full(n, df2)
        o_ = pno < 1
        if o_.any():
            df2s[o_] = pno[o_] * n * df1
            o = np.argsort(tailp, kind="stable")
            df2s[o] = np.maximum.accumulate(df2s[o])
        return {"scale": s20, "df2": df2, "df2_shrunk": df2s}

    def fun(xl: float) -> float:
        d2 = xl / (1 - xl)
        return math.log(zwvar / _winsorized_moments(df1, d2, tail)[1])

    if not np.isfinite(d_nr):
        return {"scale": s_nr, "df2": d_nr, "df2_shrunk": np.full(n, d_nr)}
    rbx = d_nr / (1 + d_nr)
    funval_low = fun(rbx)
    if funval_low >= 0:
        df2 = d_nr
    else:
        root = brentq(fun, rbx, 1 - 1e-12, xtol=1e-8)
        df2 = root / (1 - root)
    mom = _winsorized_moments(df1, df2, tail)
    ztc = ztrend + zwmean - mom[0]
    s20 = math.exp(ztc)
    fstat = np.exp(z - ztc)
    log_tailp = stats.f.logsf(fstat, df1, df2)
    r = stats.rankdata(fstat)
    log_emp = np.log(n - r + 0.5) - math.log(n)
    log_pno = np.minimum(log_tailp - log_emp, 0)
    pno = np.exp(log_pno)
    pout = -np.expm1(log_pno)
    if (log_pno < 0).any():
        min_ltp = log_tailp.min()
        if min_ltp == -np.inf:
            df2s = pno * df2
        else:
            df2_out = math.log(0.5) / min_ltp * df2
            new_ltp = stats.f.logsf(fstat.max(), df1, df2_out)
            df2_out = math.log(0.5) / new_ltp * df2_out
            df2s = pno * df2 + pout * df2_out
        o = np.argsort(log_tailp, kind="stable")
        ordered = df2s[o]
        cm = np.cumsum(ordered) / np.arange(1, n + 1)
        imin = int(np.argmin(cm))
        ordered[: imin + 1] = cm[imin]
        df2s = np.empty(n)
        df2s[o] = np.maximum.accumulate(ordered)
    else:
        df2s = np.full(n, df2)
    return {"scale": s20, "df2": df2, "df2_shrunk": df2s}


def squeeze_var(var: np.ndarray, df: float | np.ndarray, *, robust: bool = False,
                covariate: np.ndarray | None = None,
                winsor_tail_p: tuple[float, float] = (0.05, 0.1)) -> dict:
    """Empirical Bayes posterior variances (limma ``squeezeVar``).

    ``covariate`` gives a prior that trends with it (non-robust only: limma's robust trend uses a
    loess fit that is not reimplemented here).

    Returns ``{"df_prior", "var_prior", "var_post"}``.
    """
    var = np.asarray(var, dtype=float)
    dfa = np.broadcast_to(np.asarray(df, dtype=float), var.shape)
    if robust and covariate is not None:
        raise ValueError("robust=True with a variance trend is not supported; use robust=True or trend=True")
    if robust:
        d1 = np.unique(dfa[np.isfinite(dfa)])
        if len(d1) != 1:
            raise ValueError("robust squeeze_var needs one residual df for every gene")
        fit = fit_f_dist_robustly(var, float(d1[0]), winsor_tail_p=winsor_tail_p)
        df_prior = fit["df2_shrunk"]
        scale = fit["scale"]
    else:
        scale, df_prior = fit_f_dist(var, dfa, covariate=covariate)
    df_prior = np.asarray(df_prior, dtype=float)
    if np.isnan(df_prior).any():
        raise ValueError("could not estimate the prior df")
    # posterior: (df var + d0 s0^2) / (df + d0); d0 = inf -> s0^2
    with np.errstate(invalid="ignore"):
        post = np.where(np.isinf(df_prior), scale, (dfa * var + df_prior * scale) / (dfa + df_prior))
    return {"df_prior": df_prior, "var_prior": scale, "var_post": post}


def _tmixture_vector(tstat, sdu, df, proportion, v0_lim):
    ok = np.isfinite(tstat)
    tstat, sdu, df = np.abs(tstat[ok]), sdu[ok], df[ok]
    ng = len(tstat)
    ntarget = int(math.ceil(proportion / 2 * ng))
    if ntarget < 1:
        return float("nan")
    p = max(ntarget / ng, proportion)
    maxdf = df.max()
    i = df < maxdf
    if i.any():
        logp = np.maximum(stats.t.logsf(tstat[i], df[i]), -740.0)
        tstat = tstat.copy()
        tstat[i] = stats.t.isf(np.exp(logp), maxdf)
    o = np.argsort(-tstat, kind="stable")[:ntarget]
    tt = tstat[o]
    v1 = sdu[o] ** 2
    r = np.arange(1, ntarget + 1)
    p0 = 2 * stats.t.sf(tt, maxdf)
    ptarget = ((r - 0.5) / ng - (1 - p) * p0) / p
    v0 = np.zeros(ntarget)
    pos = ptarget > p0
    if pos.any():
        qtarget = stats.t.isf(ptarget[pos] / 2, maxdf)
        v0[pos] = v1[pos] * ((tt[pos] / qtarget) ** 2 - 1)
    v0 = np.clip(v0, v0_lim[0], v0_lim[1])
    return float(np.mean(v0))


def ebayes(fit: LinearFit, *, robust: bool = False, trend: bool = False, proportion: float = 0.01,
           stdev_coef_lim: tuple[float, float] = (0.1, 4.0),
           winsor_tail_p: tuple[float, float] = (0.05, 0.1)) -> LinearFit:
    """Moderated t-statistics, p-values and log-odds B (Smyth 2004; robust: Phipson et al. 2016).

    Fills ``df_prior``, ``s2_prior``, ``s2_post``, ``t``, ``df_total``, ``p_value`` and ``lods`` of
    ``fit`` (returned). ``trend=True`` lets the variance prior follow the average log-expression
    (limma ``eBayes(trend=TRUE)``; not with ``robust=True``); the voom path uses no trend.
    """
    if np.nanmax(fit.df_residual) == 0:
        raise ValueError("no residual degrees of freedom")
    sq = squeeze_var(fit.sigma**2, fit.df_residual, robust=robust, winsor_tail_p=winsor_tail_p,
                     covariate=fit.amean if trend else None)
    fit.df_prior, fit.s2_prior, fit.s2_post = sq["df_prior"], sq["var_prior"], sq["var_post"]
    sdu = fit.stdev_unscaled
    fit.t = fit.coefficients / sdu / np.sqrt(fit.s2_post)[:, None]
    df_total = fit.df_residual + fit.df_prior
    df_pooled = np.nansum(fit.df_residual)
    df_total = np.minimum(df_total, df_pooled)
    fit.df_total = df_total
    fit.p_value = 2 * stats.t.sf(np.abs(fit.t), df_total[:, None])
    var_prior_lim = np.array(stdev_coef_lim) ** 2 / np.median(np.atleast_1d(fit.s2_prior))
    ncoef = fit.t.shape[1]
    var_prior = np.array([_tmixture_vector(fit.t[:, j], sdu[:, j], df_total, proportion, var_prior_lim)
                          for j in range(ncoef)])
    if np.isnan(var_prior).any():
        var_prior[np.isnan(var_prior)] = 1 / np.median(np.atleast_1d(fit.s2_prior))
        warnings.warn("estimation of var.prior failed: set to the default value", stacklevel=2)
    r = (sdu**2 + var_prior[None, :]) / sdu**2
    t2 = fit.t**2
    dft = df_total[:, None]
    dfp = np.broadcast_to(np.asarray(fit.df_prior, dtype=float), df_total.shape)[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        kernel = np.where(dfp > 1e6, t2 * (1 - 1 / r) / 2,
                          (1 + dft) / 2 * np.log((t2 + dft) / (t2 / r + dft)))
    fit.lods = math.log(proportion / (1 - proportion)) - np.log(r) / 2 + kernel
    fit.extra["var_prior"] = var_prior
    return fit


def top_table(fit: LinearFit, coef: int, *, genes: pd.Index | None = None) -> pd.DataFrame:
    """One coefficient's results in gene order (limma ``topTable(sort.by="none", number=Inf)``).

    Columns: logFC, AveExpr, t, P.Value, adj.P.Val (BH), B.
    """
    if fit.t is None:
        raise ValueError("run ebayes first")
    df = pd.DataFrame({"logFC": fit.coefficients[:, coef], "AveExpr": fit.amean, "t": fit.t[:, coef],
                       "P.Value": fit.p_value[:, coef], "adj.P.Val": bh_adjust(fit.p_value[:, coef]),
                       "B": fit.lods[:, coef]}, index=genes)
    return df


# ----------------------------------------------------------------------------------------------- pipeline

@dataclass
class VoomLimmaResult:
    """``voom_limma`` output: the topTable of the tested coefficient and what was estimated."""

    table: pd.DataFrame
    correlation: float | None
    correlation_warning: str
    sample_weights: np.ndarray | None
    quality_weights: str
    fit: LinearFit


def voom_limma(counts: pd.DataFrame, design: pd.DataFrame, coefficient: str, *, block=None,
               quality_weights: bool | None = None, correlation: float | None = None,
               robust: bool = True, lib_size: np.ndarray | None = None,
               threads: int | None = None) -> VoomLimmaResult:
    """voom (with quality weights) -> duplicateCorrelation(block) -> GLS lmFit -> eBayes(robust) -> topTable.

    Parameters
    ----------
    counts : pandas.DataFrame
        Genes x samples raw counts (columns in the order of ``design``'s rows).
    design : pandas.DataFrame
        Samples x p fixed-effect design matrix (formulaic column names).
    coefficient : str
        Column of ``design`` to test.
    block : array-like, optional
        Random-intercept grouping per sample (patient); None fits fixed effects only.
    quality_weights : bool, optional
        Use :func:`voom_quality_weights` (default: when there are at most
        :data:`QUALITY_WEIGHTS_MAX_SAMPLES` samples).
    correlation : float, optional
        Use this within-block correlation instead of estimating it (sensitivity refits).
    robust : bool
        Robust empirical Bayes (default: True).
    lib_size : numpy.ndarray, optional
        Effective library sizes (default: column sums, as limma's voom); see
        :func:`effective_library_sizes`.
    threads : int, optional
        Threads for the per-gene REML and GLS fits (default: numba's thread count).

    Returns
    -------
    VoomLimmaResult
        ``table`` indexed by gene with logFC, AveExpr, t, P.Value, adj.P.Val, B, SE.
    """
    x = design.loc[counts.columns].to_numpy(dtype=float)
    cols = list(design.columns)
    if coefficient not in cols:
        raise ValueError(f"coefficient {coefficient!r} not in the design")
    n = x.shape[0]
    y = counts.to_numpy(dtype=float)
    if quality_weights is None:
        quality_weights = n <= QUALITY_WEIGHTS_MAX_SAMPLES
        qw_note = ("yes" if quality_weights else
                   f"no ({n} samples > {QUALITY_WEIGHTS_MAX_SAMPLES}: gene-by-gene sample weights cost O(samples^3) per gene)")
    else:
        qw_note = "yes" if quality_weights else "no"
    if quality_weights:
        v = voom_quality_weights(y, x, lib_size=lib_size)
    else:
        v = voom(y, x, lib_size=lib_size)
    rho: float | None = None
    warn = ""
    if block is not None:
        if correlation is None:
            cr = duplicate_correlation(v.E, x, block, weights=v.weights, threads=threads)
            rho, warn = cr.consensus, cr.warning
            if warn:
                warnings.warn(f"duplicate_correlation: {warn}", CorrelationWarning, stacklevel=2)
        else:
            rho = float(correlation)
    fit = lm_fit(v.E, x, weights=v.weights, block=block, correlation=rho or 0.0, threads=threads)
    fit = ebayes(fit, robust=robust)
    j = cols.index(coefficient)
    tab = top_table(fit, j, genes=counts.index)
    tab["SE"] = fit.stdev_unscaled[:, j] * np.sqrt(fit.s2_post)
    return VoomLimmaResult(tab, rho, warn, v.sample_weights, qw_note, fit)


def effective_library_sizes(counts: np.ndarray) -> np.ndarray:
    """Column sums times median-of-ratios normalisation factors (edgeR's ``lib.size * norm.factors``).

    The factors are DESeq2's size factors (median over genes without zeros of count / gene
    geometric mean) divided by the column sums and scaled to geometric mean 1, so that a few very
    abundant genes (haemoglobin in plasma) do not shift every log-CPM. Falls back to column sums
    when fewer than 10 genes have no zero.
    """
    counts = np.asarray(counts, dtype=float)
    lib = counts.sum(axis=0)
    pos = (counts > 0).all(axis=1)
    if pos.sum() < 10:
        log.info("voom: fewer than 10 genes without zeros; library sizes are column sums")
        return lib
    logc = np.log(counts[pos])
    sf = np.exp(np.median(logc - logc.mean(axis=1, keepdims=True), axis=0))
    nf = sf / lib
    nf /= np.exp(np.mean(np.log(nf)))
    return lib * nf


def limma_contrast(counts: pd.DataFrame, summary, *, base_mean: pd.Series | None = None,
                   threads: int | None = None) -> tuple[pd.DataFrame, dict]:
    """One contrast through :func:`voom_limma`, as a table in the DESeq2 column layout.

    Parameters
    ----------
    counts : pandas.DataFrame
        Genes x samples raw counts of the contrast's samples.
    summary : cfrna.de.contrasts.DesignSummary
        A contrast resolved with ``method == "limma_voom"`` (fixed formula, random effect).
    base_mean : pandas.Series, optional
        Mean normalised count per gene (``baseMean``); default: mean count over the samples.

    Returns
    -------
    (pandas.DataFrame, dict)
        Indexed by gene_id: baseMean, log2FoldChange (logFC), lfcSE (logFC / t), stat (moderated
        t), pvalue, padj (BH), log2FoldChange_shrunk (= logFC: voom log fold changes are not
        shrunk), AveExpr, B. The dict holds ``correlation`` (consensus within-block correlation or
        None), ``correlation_warning`` and ``quality_weights``.

    Library sizes are :func:`effective_library_sizes` (median-of-ratios normalisation, like the
    DESeq2 contrasts), not limma's plain column sums.
    """
    from cfrna.de.contrasts import _design_matrix

    c = summary.contrast
    meta = summary.metadata.loc[counts.columns]
    dm = _design_matrix(summary.formula, meta, where=c.where, cid=c.id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorrelationWarning)  # reported by the caller (log + design.tsv)
        block = None if summary.random_effect is None else meta[summary.random_effect].astype(str).to_numpy()
        r = voom_limma(counts, dm, summary.coefficient, block=block, threads=threads,
                       lib_size=effective_library_sizes(counts.to_numpy()))
    tab = r.table
    bm = counts.mean(axis=1) if base_mean is None else base_mean.reindex(counts.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = tab["logFC"] / tab["t"]
    res = pd.DataFrame({"baseMean": bm.to_numpy(), "log2FoldChange": tab["logFC"].to_numpy(),
                        "lfcSE": se.to_numpy(), "stat": tab["t"].to_numpy(), "pvalue": tab["P.Value"].to_numpy(),
                        "padj": tab["adj.P.Val"].to_numpy(), "log2FoldChange_shrunk": tab["logFC"].to_numpy(),
                        "AveExpr": tab["AveExpr"].to_numpy(), "B": tab["B"].to_numpy()},
                       index=pd.Index(counts.index, name="gene_id"))
    info = {"correlation": r.correlation, "correlation_warning": r.correlation_warning,
            "quality_weights": r.quality_weights}
    return res, info


def limma_sensitivity(counts: pd.DataFrame, summary, primary: pd.DataFrame, covars: pd.DataFrame, *,
                      correlation: float | None, alpha: float,
                      threads: int | None = None) -> tuple[pd.DataFrame | None, str]:
    """Blood-cell-score-adjusted refit of a limma_voom contrast (the DESeq2 sensitivity table's layout).

    The score columns are added to the fixed formula; the within-block correlation of the primary
    fit is reused (not re-estimated). Returns (table or None, status).
    """
    from cfrna.de.sensitivity import adjusted_design, not_fittable

    try:
        meta, _, dm = adjusted_design(summary, covars)
    except ConfigError as exc:
        return None, not_fittable(exc, covars)
    dm = dm.loc[counts.columns]
    block = None if summary.random_effect is None else meta.loc[counts.columns, summary.random_effect].astype(str)
    r = voom_limma(counts, dm, summary.coefficient, block=None if block is None else block.to_numpy(),
                   correlation=correlation if block is not None else None, threads=threads,
                   lib_size=effective_library_sizes(counts.to_numpy()))
    from cfrna.de.sensitivity import sensitivity_table

    out = sensitivity_table(primary, r.table["logFC"], r.table["adj.P.Val"], covars, alpha=alpha)
    return out, "ok (limma_voom, within-patient correlation of the primary fit reused)" if block is not None else "ok"


__all__ = ["CorrelationWarning", "QUALITY_WEIGHTS_MAX_SAMPLES", "array_weights", "bh_adjust",
           "duplicate_correlation", "ebayes", "effective_library_sizes", "limma_contrast", "limma_sensitivity", "fit_f_dist", "fit_f_dist_robustly", "lm_fit", "squeeze_var",
           "top_table", "trigamma_inverse", "voom", "voom_limma", "voom_quality_weights"]
