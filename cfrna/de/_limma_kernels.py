"""Compiled kernels of the limma-style path (:mod:`cfrna.de.limma`). ``@njit`` only, no policy.

- :func:`lowess` — Cleveland's (1979) robust locally weighted regression, the algorithm of R's
  ``lowess`` (tricube weights, local linear fit, ``delta`` skipping with linear interpolation,
  bisquare robustness iterations on 6 x the median absolute residual).
- :func:`block_stats` / :func:`gls_fit` / :func:`reml_correlation` — weighted regression with an
  exchangeable within-block correlation. In whitened coordinates (rows scaled by the square root
  of the observation weight) the covariance of a block of size ``n_j`` is
  ``s2 * ((1 - rho) I + rho 11')``, whose inverse is ``(I - c_j 11') / (1 - rho)`` with
  ``c_j = rho / (1 - rho + rho n_j)``. All sums over samples therefore reduce to per-block sums,
  so a gene costs O(n p^2) whatever the number of blocks (no n x n Cholesky factor).
- :func:`array_weights_gbg` — the gene-by-gene update of sample quality weights (Liu et al. 2015).

The per-gene kernels are serial and cached (``nogil``); :mod:`cfrna.de.limma` runs them on gene
chunks in threads.
"""

from __future__ import annotations

import math

import numpy as np

from cfrna._dense_kernels import BRENT_STATE, BRENT_X, brent_next, brent_start, brent_update
from cfrna._dense_kernels import chol_inplace as _chol_inplace
from cfrna._dense_kernels import chol_solve as _chol_solve
from cfrna._numba import njit


@njit
def _lowest(x, y, n, xs, nleft, nright, w, userw, rw):
    """Local weighted linear fit at ``xs`` over x[nleft..nright] (ties to the right included)."""
    rng = x[n - 1] - x[0]
    h = max(xs - x[nleft], x[nright] - xs)
    h9 = 0.999 * h
    h1 = 0.001 * h
    a = 0.0
    j = nleft
    while j < n:
        w[j] = 0.0
        r = abs(x[j] - xs)
        if r <= h9:
            if r <= h1:
                w[j] = 1.0
            else:
                q = r / h
                q = 1.0 - q * q * q
                w[j] = q * q * q
            if userw:
                w[j] *= rw[j]
            a += w[j]
        elif x[j] > xs:
            break
        j += 1
    nrt = j - 1
    if a <= 0.0:
        return 0.0, False
    for j in range(nleft, nrt + 1):
        w[j] /= a
    if h > 0.0:
        a = 0.0
        for j in range(nleft, nrt + 1):
            a += w[j] * x[j]
        b = xs - a
        c = 0.0
        for j in range(nleft, nrt + 1):
            c += w[j] * (x[j] - a) * (x[j] - a)
        if math.sqrt(c) > 0.001 * rng:
            b /= c
            for j in range(nleft, nrt + 1):
                w[j] *= b * (x[j] - a) + 1.0
    ys = 0.0
    for j in range(nleft, nrt + 1):
        ys += w[j] * y[j]
    return ys, True


@njit
def lowess(x, y, f, nsteps, delta):
    """Smoothed values at sorted ``x`` (R ``lowess(x, y, f, iter=nsteps, delta)`` on sorted input)."""
    n = x.shape[0]
    ys = np.empty(n)
    if n < 2:
        ys[:] = y
        return ys
    rw = np.ones(n)
    res = np.zeros(n)
    w = np.zeros(n)
    ns = max(2, min(n, int(f * n + 1e-7)))
    it = 1
    while it <= nsteps + 1:
        nleft = 0
        nright = ns - 1
        last = -1
        i = 0
        while True:
            if nright < n - 1:
                d1 = x[i] - x[nleft]
                d2 = x[nright + 1] - x[i]
                if d1 > d2:
                    nleft += 1
                    nright += 1
                    continue
            val, ok = _lowest(x, y, n, x[i], nleft, nright, w, it > 1, rw)
            ys[i] = val if ok else y[i]
            if last < i - 1:
                denom = x[i] - x[last]
                for j in range(last + 1, i):
                    alpha = (x[j] - x[last]) / denom
                    ys[j] = alpha * ys[i] + (1.0 - alpha) * ys[last]
            last = i
            cut = x[last] + delta
            i = last + 1
            while i < n:
                if x[i] > cut:
                    break
                if x[i] == x[last]:
                    ys[i] = ys[last]
                    last = i
                i += 1
            i = max(last + 1, i - 1)
            if last >= n - 1:
                break
        sc = 0.0
        for k in range(n):
            res[k] = y[k] - ys[k]
            sc += abs(res[k])
        sc /= n
        if it > nsteps:
            break
        cmad = 6.0 * np.median(np.abs(res))
        if cmad < 1e-7 * sc:
            break
        c9 = 0.999 * cmad
        c1 = 0.001 * cmad
        for k in range(n):
            r = abs(res[k])
            if r <= c1:
                rw[k] = 1.0
            elif r <= c9:
                q = r / cmad
                q = 1.0 - q * q
                rw[k] = q * q
            else:
                rw[k] = 0.0
        it += 1
    return ys


@njit
def _gene_block_sums(y, w, x, order, starts, sxx, sxy, ax, ay):
    """Per-gene sufficient statistics: totals sxx = X'WX, sxy = X'Wy, syy; per-block a_j = sum sqrt(w) x."""
    p = x.shape[1]
    m = starts.shape[0] - 1
    syy = 0.0
    sxx[:, :] = 0.0
    sxy[:] = 0.0
    for b in range(m):
        ay[b] = 0.0
        for k in range(p):
            ax[b, k] = 0.0
        for t in range(starts[b], starts[b + 1]):
            i = order[t]
            wi = w[i]
            sw = math.sqrt(wi)
            yi = y[i]
            ay[b] += sw * yi
            syy += wi * yi * yi
            for k in range(p):
                xk = x[i, k]
                ax[b, k] += sw * xk
                sxy[k] += wi * xk * yi
                for jj in range(k + 1):
                    sxx[k, jj] += wi * xk * x[i, jj]
    for k in range(p):
        for jj in range(k + 1, p):
            sxx[k, jj] = sxx[jj, k]
    return syy


@njit
def _block_sizes(starts):
    """Samples per block (blocks b at order[starts[b]:starts[b+1]])."""
    sizes = np.empty(starts.shape[0] - 1)
    for b in range(sizes.shape[0]):
        sizes[b] = starts[b + 1] - starts[b]
    return sizes


@njit
def _gene_scratch(p, m):
    """Work arrays of the per-gene loops, allocated once per call: every one is fully rewritten per
    gene before it is read (sums zeroed by _gene_block_sums, A/b/L copied, beta solved)."""
    return (np.empty((p, p)), np.empty(p), np.empty((m, p)), np.empty(m), np.empty((p, p)), np.empty(p),
            np.empty((p, p)), np.empty(p))


@njit
def _gls_quantities(rho, sxx, sxy, syy, ax, ay, sizes, A, bvec, L, beta):
    """For correlation rho: A = X'C^-1X (times 1-rho), b, RSS (times 1-rho), log|C|; beta in ``beta``.

    Returns (rss, logdet_C, logdet_A, ok); rss and A are for the scaled inverse (1 - rho) C^-1.
    """
    p = sxx.shape[0]
    m = sizes.shape[0]
    yy = syy
    for k in range(p):
        bvec[k] = sxy[k]
        for jj in range(p):
            A[k, jj] = sxx[k, jj]
    logdet_c = 0.0
    if rho != 0.0:
        for j in range(m):
            nj = sizes[j]
            den = 1.0 - rho + rho * nj
            logdet_c += (nj - 1.0) * math.log(1.0 - rho) + math.log(den)
            c = rho / den
            yy -= c * ay[j] * ay[j]
            for k in range(p):
                bvec[k] -= c * ax[j, k] * ay[j]
                for jj in range(p):
                    A[k, jj] -= c * ax[j, k] * ax[j, jj]
    for k in range(p):
        for jj in range(p):
            L[k, jj] = A[k, jj]
    if not _chol_inplace(L, p):
        return np.nan, np.nan, np.nan, False
    _chol_solve(L, bvec, p, beta)
    rss = yy
    for k in range(p):
        rss -= beta[k] * bvec[k]
    logdet_a = 0.0
    for k in range(p):
        logdet_a += 2.0 * math.log(L[k, k])
    return rss, logdet_c, logdet_a, True


@njit
def _reml_objective(rho, df, sxx, sxy, syy, ax, ay, sizes, A, bvec, L, beta):
    """-2 x profiled REML log-likelihood (up to a constant) of the exchangeable correlation rho."""
    rss, ldc, lda, ok = _gls_quantities(rho, sxx, sxy, syy, ax, ay, sizes, A, bvec, L, beta)
    if not ok or not rss > 0.0:
        return np.inf
    p = sxx.shape[0]
    # the quantities are for (1 - rho) C^-1: undo the scaling of X'C^-1X and of the RSS
    lda_true = lda - p * math.log(1.0 - rho)
    rss_true = rss / (1.0 - rho)
    return ldc + lda_true + df * math.log(rss_true)


@njit
def _brent_min(lo, hi, tol, maxit, df, sxx, sxy, syy, ax, ay, sizes, A, bvec, L, beta):
    """Brent's bounded minimisation of the REML objective on [lo, hi] (as in Brent 1973 / fminbound).

    Returns (x, converged)."""
    st = np.empty(BRENT_STATE)
    x = lo + 0.3819660112501051 * (hi - lo)
    brent_start(st, lo, hi, x, _reml_objective(x, df, sxx, sxy, syy, ax, ay, sizes, A, bvec, L, beta))
    for _ in range(maxit):
        u = brent_next(st, 1.4901161193847656e-08, tol / 3.0)
        if u != u:
            return st[BRENT_X], True
        brent_update(st, u, _reml_objective(u, df, sxx, sxy, syy, ax, ay, sizes, A, bvec, L, beta))
    return st[BRENT_X], False


@njit
def reml_correlation(E, W, x, order, starts, lo, hi, tol, maxit):
    """Per-gene REML estimate of the exchangeable within-block correlation.

    Parameters: E, W genes x samples (log-expression, weights), x samples x p design, ``order`` the
    samples sorted by block with block b at order[starts[b]:starts[b+1]]. Returns (rho, status) with
    status 0 = interior optimum, 1 = at a bound of [lo, hi], 2 = not estimable (NaN).
    """
    g_n = E.shape[0]
    n, p = x.shape
    m = starts.shape[0] - 1
    sizes = _block_sizes(starts)
    df = n - p
    rho = np.full(g_n, np.nan)
    status = np.full(g_n, 2, dtype=np.int8)
    sxx, sxy, ax, ay, A, bvec, L, beta = _gene_scratch(p, m)
    for g in range(g_n):
        syy = _gene_block_sums(E[g], W[g], x, order, starts, sxx, sxy, ax, ay)
        r, conv = _brent_min(lo, hi, tol, maxit, df, sxx, sxy, syy, ax, ay, sizes, A, bvec, L, beta)
        f = _reml_objective(r, df, sxx, sxy, syy, ax, ay, sizes, A, bvec, L, beta)
        if not math.isfinite(f):
            continue
        rho[g] = r
        if not conv or r - lo < 10 * tol or hi - r < 10 * tol:
            status[g] = 1
        else:
            status[g] = 0
    return rho, status


@njit
def gls_fit(E, W, x, order, starts, rho):
    """Weighted GLS fit per gene with within-block correlation ``rho`` (0: plain WLS).

    Returns coefficients (genes x p), stdev_unscaled (genes x p) and sigma (genes) with
    sigma^2 = whitened RSS / (n - p), as limma's ``lmFit(..., block=, correlation=, weights=)``.
    """
    g_n = E.shape[0]
    n, p = x.shape
    m = starts.shape[0] - 1
    sizes = _block_sizes(starts)
    coef = np.full((g_n, p), np.nan)
    sdu = np.full((g_n, p), np.nan)
    sigma = np.full(g_n, np.nan)
    df = n - p
    sxx, sxy, ax, ay, A, bvec, L, beta = _gene_scratch(p, m)
    for g in range(g_n):
        syy = _gene_block_sums(E[g], W[g], x, order, starts, sxx, sxy, ax, ay)
        rss, _, _, ok = _gls_quantities(rho, sxx, sxy, syy, ax, ay, sizes, A, bvec, L, beta)
        if not ok:
            continue
        # (X'C^-1X)^-1 = (1 - rho) A^-1 ; RSS_true = rss / (1 - rho)
        e = np.zeros(p)
        col = np.empty(p)
        for k in range(p):
            e[:] = 0.0
            e[k] = 1.0
            _chol_solve(L, e, p, col)
            sdu[g, k] = math.sqrt(col[k] * (1.0 - rho))
            coef[g, k] = beta[k]
        if df > 0:
            sigma[g] = math.sqrt(max(rss / (1.0 - rho), 0.0) / df)
    return coef, sdu, sigma


@njit
def array_weights_gbg(E, W, x, prior_n):
    """Sample quality weights by the gene-by-gene update (limma ``arrayWeights(method="genebygene")``).

    Z2 is the sum-to-zero contrast basis of the samples; log weights are -Z2 gamma. For each gene a
    weighted fit (prior weights W times current sample weights) gives residuals and leverages; the
    information for gamma accumulates over genes (starting at prior_n Z2'Z2) and gamma takes one
    scoring step per gene.
    """
    g_n, n = E.shape
    p = x.shape[1]
    nm = n - 1
    info2 = np.zeros((nm, nm))
    for i in range(nm):
        for j in range(nm):
            info2[i, j] = prior_n
        info2[i, i] += prior_n
    gam = np.zeros(nm)
    aw = np.ones(n)
    wv = np.empty(n)
    sxx = np.empty((p, p))
    sxy = np.empty(p)
    beta = np.empty(p)
    tmp = np.empty(p)
    h1 = np.empty(n)
    d = np.empty(n)
    z = np.empty(n)
    dl = np.empty(nm)
    u = np.empty(nm)
    for g in range(g_n):
        for i in range(n):
            wv[i] = aw[i] * W[g, i]
        sxx[:, :] = 0.0
        sxy[:] = 0.0
        for i in range(n):
            wi = wv[i]
            for k in range(p):
                sxy[k] += wi * x[i, k] * E[g, i]
                for jj in range(k + 1):
                    sxx[k, jj] += wi * x[i, k] * x[i, jj]
        for k in range(p):
            for jj in range(k + 1, p):
                sxx[k, jj] = sxx[jj, k]
        if not _chol_inplace(sxx, p):
            continue
        _chol_solve(sxx, sxy, p, beta)
        rss = 0.0
        for i in range(n):
            f = 0.0
            for k in range(p):
                f += x[i, k] * beta[k]
            r = E[g, i] - f
            d[i] = wv[i] * r * r
            rss += d[i]
            # leverage w_i x_i' (X'WX)^-1 x_i
            for k in range(p):
                sxy[k] = x[i, k]
            _chol_solve(sxx, sxy, p, tmp)
            hv = 0.0
            for k in range(p):
                hv += x[i, k] * tmp[k]
            h1[i] = 1.0 - wv[i] * hv
        s2 = rss / (n - p)
        if s2 < 1e-15:
            continue
        hs = 0.0
        for i in range(n):
            hs += h1[i]
        hl = h1[n - 1]
        # Schur complement of the intercept in Z'diag(h1)Z with Z = [1, Z2]
        zh = np.empty(nm)
        for i in range(nm):
            zh[i] = h1[i] - hl
        for i in range(nm):
            for j in range(nm):
                info2[i, j] += hl - zh[i] * zh[j] / hs
            info2[i, i] += h1[i]
        for i in range(n):
            z[i] = d[i] / s2 - h1[i]
        for i in range(nm):
            dl[i] = z[i] - z[n - 1]
        chol = np.linalg.cholesky(info2)  # info2 is symmetric positive definite
        _chol_solve(chol, dl, nm, u)
        tot = 0.0
        for i in range(nm):
            gam[i] += u[i]
            tot += gam[i]
        for i in range(nm):
            aw[i] = math.exp(-gam[i])
        aw[n - 1] = math.exp(tot)
    return aw
