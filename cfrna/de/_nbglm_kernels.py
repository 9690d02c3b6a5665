"""Numba kernels of the negative-binomial GLM engine (:mod:`cfrna.de.nbglm`).

The design is ``X = [one-hot block | Z]``: ``blk[i]`` is the block (level of the absorbed factor) of
sample ``i`` (``nb`` blocks; ``nb == 0`` means no block and ``blk`` is ignored) and ``Z`` holds the
``q`` other columns. For weights ``w``::

    X'WX = [[D, B], [B', C]],  D = diag(sum_{i in b} w_i),  B[b] = sum_{i in b} w_i z_i,  C = Z'WZ

and every per-gene quantity goes through the q x q Schur complement ``S = C - B'D^-1 B``:

- solve ``[[D, B], [B', C]] [g; b] = [r; s]``: ``S b = s - B'D^-1 r``, ``g = D^-1 (r - B b)``;
- ``log det X'WX = sum log D + log det S``;
- ``(X'WX)^-1`` restricted to Z is ``S^-1`` (Wald standard errors);
- hat diagonal ``h_i = w_i (1/D_b(i) + u_i' S^-1 u_i)`` with ``u_i = z_i - B[b(i)] / D_b(i)``.

Cost per gene is O(n q^2 + nb q^2 + q^3): linear in the number of blocks. The public kernels loop
over genes with ``prange``; everything inside is serial and allocation-light.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from cfrna._dense_kernels import (
    BRENT_STATE,
    BRENT_X,
    brent_next,
    brent_start,
    brent_update,
    chol_inplace,
    chol_solve,
)
from cfrna._numba import njit

LARGE_BETA = 30.0  # |coefficient| (natural log) beyond which IRLS is taken as diverging (DESeq2: large = 30)


# ----------------------------------------------------------------------------------------------
# small dense linear algebra (q x q, q is small)
# ----------------------------------------------------------------------------------------------

@njit
def _normal_eq(w, blk, nb, Z, lam, D, B, C):
    """Fill D (nb), B (nb x q), C (q x q) of X'WX + lam*I from weights ``w``."""
    n, q = Z.shape
    for b in range(nb):
        D[b] = lam
        for j in range(q):
            B[b, j] = 0.0
    for j in range(q):
        for k in range(q):
            C[j, k] = lam if j == k else 0.0
    for i in range(n):
        wi = w[i]
        if nb > 0:
            b = blk[i]
            D[b] += wi
            for j in range(q):
                B[b, j] += wi * Z[i, j]
        for j in range(q):
            wz = wi * Z[i, j]
            for k in range(j + 1):
                C[j, k] += wz * Z[i, k]
    for j in range(q):
        for k in range(j):
            C[k, j] = C[j, k]


@njit
def _schur_chol(D, B, C, nb, L):
    """L = cholesky(C - B'D^-1 B) (lower). Returns False when not positive definite."""
    q = C.shape[0]
    for j in range(q):
        for k in range(j + 1):
            s = C[j, k]
            for b in range(nb):
                s -= B[b, j] * B[b, k] / D[b]
            L[j, k] = s
    if not chol_inplace(L, q):
        return False
    for j in range(q):
        for k in range(j + 1, q):
            L[j, k] = 0.0
    return True


@njit
def _chol_solve(L, v, out):
    chol_solve(L, v, L.shape[0], out)


@njit
def _chol_inv(L, Sinv):
    q = L.shape[0]
    e = np.zeros(q)
    col = np.zeros(q)
    for j in range(q):
        for i in range(q):
            e[i] = 0.0
        e[j] = 1.0
        _chol_solve(L, e, col)
        for i in range(q):
            Sinv[i, j] = col[i]


@njit
def _logdet(D, nb, L):
    s = 0.0
    for b in range(nb):
        s += math.log(D[b])
    for j in range(L.shape[0]):
        s += 2.0 * math.log(L[j, j])
    return s


@njit
def _block_solve(D, B, L, nb, r, s, g, beta, tmp):
    """Solve [[D, B], [B', C]] [g; beta] = [r; s] given L = chol(S)."""
    q = L.shape[0]
    for j in range(q):
        t = s[j]
        for b in range(nb):
            t -= B[b, j] * r[b] / D[b]
        tmp[j] = t
    _chol_solve(L, tmp, beta)
    for b in range(nb):
        t = r[b]
        for j in range(q):
            t -= B[b, j] * beta[j]
        g[b] = t / D[b]


@njit
def _wls(y, w, blk, nb, Z, lam, g, beta, D, B, C, L, r, s, tmp):
    """Weighted least squares of y on X (weights w); False when singular."""
    n, q = Z.shape
    _normal_eq(w, blk, nb, Z, lam, D, B, C)
    if not _schur_chol(D, B, C, nb, L):
        return False
    for b in range(nb):
        r[b] = 0.0
    for j in range(q):
        s[j] = 0.0
    for i in range(n):
        wy = w[i] * y[i]
        if nb > 0:
            r[blk[i]] += wy
        for j in range(q):
            s[j] += wy * Z[i, j]
    _block_solve(D, B, L, nb, r, s, g, beta, tmp)
    return True


@njit
def _eta(i, blk, nb, Z, g, beta):
    e = g[blk[i]] if nb > 0 else 0.0
    for j in range(Z.shape[1]):
        e += Z[i, j] * beta[j]
    return e


@njit
def _leverage(i, blk, nb, Z, D, B, Sinv, u):
    """x_i' (X'WX)^-1 x_i."""
    q = Z.shape[1]
    base = 0.0
    if nb > 0:
        b = blk[i]
        base = 1.0 / D[b]
        for j in range(q):
            u[j] = Z[i, j] - B[b, j] / D[b]
    else:
        for j in range(q):
            u[j] = Z[i, j]
    quad = 0.0
    for j in range(q):
        t = 0.0
        for k in range(q):
            t += Sinv[j, k] * u[k]
        quad += u[j] * t
    return base + quad


# ----------------------------------------------------------------------------------------------
# negative-binomial likelihood
# ----------------------------------------------------------------------------------------------

@njit
def _nb_ll(y, mu, alpha):
    """NB log-likelihood without the lgamma(y + 1) terms.

    ``lgamma(y + r) - lgamma(r)`` (r = 1/alpha) uses a series when r >> y (near-Poisson), where the
    difference of two huge lgamma values would lose precision."""
    r = 1.0 / alpha
    lgr = math.lgamma(r)
    s = 0.0
    for i in range(y.shape[0]):
        m = mu[i]
        t = math.log1p(alpha * m)
        s -= r * t
        yi = y[i]
        if yi > 0.0:
            if r > 1e5 * (yi + 1.0):
                s += yi * math.log(r) + yi * (yi - 1.0) / (2.0 * r) - (yi - 1.0) * yi * (2.0 * yi - 1.0) / (12.0 * r * r)
            else:
                s += math.lgamma(yi + r) - lgr
            s += yi * (math.log(alpha * m) - t)
    return s


@njit
def _lfact(y):
    s = 0.0
    for i in range(y.shape[0]):
        s += math.lgamma(y[i] + 1.0)
    return s


@njit
def _disp_objective(la, y, mu, blk, nb, Z, use_cr, use_prior, prior_mean, prior_var, w, D, B, C, L):
    """-(CR-adjusted log-likelihood [+ log prior]) at log dispersion ``la``."""
    alpha = math.exp(la)
    val = -_nb_ll(y, mu, alpha)
    if use_cr:
        for i in range(y.shape[0]):
            w[i] = mu[i] / (1.0 + alpha * mu[i])
        _normal_eq(w, blk, nb, Z, 0.0, D, B, C)
        if _schur_chol(D, B, C, nb, L):
            val += 0.5 * _logdet(D, nb, L)
        else:
            val = np.inf
    if use_prior:
        val += (la - prior_mean) ** 2 / (2.0 * prior_var)
    return val


@njit
def _fit_disp(y, mu, blk, nb, Z, lo, hi, use_cr, use_prior, prior_mean, prior_var, x0, xtol):
    """Minimise the dispersion objective over log alpha in [lo, hi]: bracket the minimum downhill
    from ``x0`` (steps doubling from 0.5), then Brent's method inside the bracket.

    Returns (log alpha, converged)."""
    n = y.shape[0]
    q = Z.shape[1]
    w = np.empty(n)
    D = np.empty(max(nb, 1))
    B = np.empty((max(nb, 1), q))
    C = np.empty((q, q))
    L = np.empty((q, q))
    x0 = min(max(x0, lo), hi)
    f0 = _disp_objective(x0, y, mu, blk, nb, Z, use_cr, use_prior, prior_mean, prior_var, w, D, B, C, L)
    step = 0.5
    xr = min(x0 + step, hi)
    fr = _disp_objective(xr, y, mu, blk, nb, Z, use_cr, use_prior, prior_mean, prior_var, w, D, B, C, L)
    xl = max(x0 - step, lo)
    fl = _disp_objective(xl, y, mu, blk, nb, Z, use_cr, use_prior, prior_mean, prior_var, w, D, B, C, L)
    if max(abs(fr - f0), abs(fl - f0)) < 1e-6 * (abs(f0) + 1.0):
        # flat at the start (e.g. near-Poisson genes at the lower bound): DESeq2's gradient line
        # search stops there too
        return x0, True
    if fr < f0 and fr <= fl:
        direction = 1.0
        xb, fb, xprev = xr, fr, x0
    elif fl < f0:
        direction = -1.0
        xb, fb, xprev = xl, fl, x0
    else:
        direction = 0.0
        xb, fb, xprev = x0, f0, x0
    a = lo
    b = hi
    if direction == 0.0:
        a = max(x0 - step, lo)
        b = min(x0 + step, hi)
    else:
        while True:  # expand downhill until the objective rises or the bound is reached
            step *= 2.0
            xn = min(max(xb + direction * step, lo), hi)
            if xn == xb:
                break
            fn = _disp_objective(xn, y, mu, blk, nb, Z, use_cr, use_prior, prior_mean, prior_var, w, D, B, C, L)
            if fn >= fb:
                if direction > 0:
                    a, b = xprev, xn
                else:
                    a, b = xn, xprev
                break
            xprev, xb, fb = xb, xn, fn
        if xn == xb:
            if direction > 0:
                a, b = xprev, hi
            else:
                a, b = lo, xprev
    # Brent's method (golden section + parabolic interpolation), as in scipy.optimize.fminbound
    st = np.empty(BRENT_STATE)
    brent_start(st, a, b, xb, fb)
    for _ in range(200):
        u = brent_next(st, xtol, 1e-10)
        if u != u:
            return st[BRENT_X], True
        brent_update(st, u, _disp_objective(u, y, mu, blk, nb, Z, use_cr, use_prior, prior_mean, prior_var,
                                            w, D, B, C, L))
    return st[BRENT_X], False


@njit
def _wls_scratch(nb, q):
    """Work arrays of one gene's weighted least squares (:func:`_wls`): D, B, C, L, r, s, tmp."""
    nbb = max(nb, 1)
    return (np.empty(nbb), np.empty((nbb, q)), np.empty((q, q)), np.empty((q, q)), np.empty(nbb), np.empty(q),
            np.empty(q))


# ----------------------------------------------------------------------------------------------
# IRLS for one gene
# ----------------------------------------------------------------------------------------------

@njit
def _pen_dev(y, mu, alpha, lfact, g, beta, nb, lam):
    dev = -2.0 * (_nb_ll(y, mu, alpha) - lfact)
    pen = 0.0
    for b in range(nb):
        pen += g[b] * g[b]
    for j in range(beta.shape[0]):
        pen += beta[j] * beta[j]
    return dev, dev + lam * pen


@njit
def _irls(y, sf, blk, nb, Z, alpha, lam, min_mu, tol, maxit, g, beta, mu):
    """DESeq2's IRLS (fitBeta): start from least squares on log(y/s + 0.1), ridge ``lam``, stop when
    |dev - dev_old| / (|dev| + 0.1) < tol (after >= 2 iterations); mu clipped at ``min_mu``.

    A step leaving |coef| <= 30 or not converging in ``maxit`` switches to a damped, bounded
    Fisher-scoring line search on the penalised deviance (DESeq2 uses L-BFGS-B with bounds there).
    Fills g, beta, mu (clipped). Returns (converged, iterations)."""
    n, q = Z.shape
    nbb = max(nb, 1)
    D, B, C, L, r, s, tmp = _wls_scratch(nb, q)
    w = np.empty(n)
    z = np.empty(n)
    g_new = np.zeros(nbb)
    b_new = np.empty(q)
    for i in range(n):
        w[i] = 1.0
        z[i] = math.log(y[i] / sf[i] + 0.1)
    if not _wls(z, w, blk, nb, Z, lam, g, beta, D, B, C, L, r, s, tmp):
        return False, 0
    for i in range(n):
        mu[i] = max(sf[i] * math.exp(_eta(i, blk, nb, Z, g, beta)), min_mu)
    lfact = _lfact(y)
    dev = 0.0
    converged = False
    it = 0
    for t in range(maxit):
        it = t + 1
        for i in range(n):
            w[i] = mu[i] / (1.0 + alpha * mu[i])
            z[i] = math.log(mu[i] / sf[i]) + (y[i] - mu[i]) / mu[i]
        if not _wls(z, w, blk, nb, Z, lam, g_new, b_new, D, B, C, L, r, s, tmp):
            break  # diverged: bounded line search below
        big = False
        for b in range(nb):
            if abs(g_new[b]) > LARGE_BETA:
                big = True
        for j in range(q):
            if abs(b_new[j]) > LARGE_BETA:
                big = True
        if big:
            break  # diverged: bounded line search below
        for b in range(nb):
            g[b] = g_new[b]
        for j in range(q):
            beta[j] = b_new[j]
        for i in range(n):
            mu[i] = max(sf[i] * math.exp(_eta(i, blk, nb, Z, g, beta)), min_mu)
        dev_old = dev
        dev = -2.0 * (_nb_ll(y, mu, alpha) - lfact)
        conv = abs(dev - dev_old) / (abs(dev) + 0.1)
        if math.isnan(conv):
            break  # diverged: bounded line search below
        if t > 0 and conv < tol:
            converged = True
            break
    if converged:
        return True, it
    # bounded damped Fisher scoring from the last accepted coefficients
    for b in range(nb):
        g[b] = min(max(g[b], -LARGE_BETA), LARGE_BETA)
    for j in range(q):
        beta[j] = min(max(beta[j], -LARGE_BETA), LARGE_BETA)
    for i in range(n):
        mu[i] = max(sf[i] * math.exp(_eta(i, blk, nb, Z, g, beta)), min_mu)
    _, pdev = _pen_dev(y, mu, alpha, lfact, g, beta, nb, lam)
    mu_try = np.empty(n)
    g_try = np.zeros(nbb)
    b_try = np.empty(q)
    for _ in range(maxit):
        it += 1
        for i in range(n):
            w[i] = mu[i] / (1.0 + alpha * mu[i])
            z[i] = math.log(mu[i] / sf[i]) + (y[i] - mu[i]) / mu[i]
        if not _wls(z, w, blk, nb, Z, lam, g_new, b_new, D, B, C, L, r, s, tmp):
            break
        step = 1.0
        accepted = False
        new_pdev = pdev
        while step > 1e-6:
            for b in range(nb):
                g_try[b] = min(max(g[b] + step * (g_new[b] - g[b]), -LARGE_BETA), LARGE_BETA)
            for j in range(q):
                b_try[j] = min(max(beta[j] + step * (b_new[j] - beta[j]), -LARGE_BETA), LARGE_BETA)
            for i in range(n):
                mu_try[i] = max(sf[i] * math.exp(_eta(i, blk, nb, Z, g_try, b_try)), min_mu)
            _, new_pdev = _pen_dev(y, mu_try, alpha, lfact, g_try, b_try, nb, lam)
            if new_pdev <= pdev:
                accepted = True
                break
            step *= 0.5
        if not accepted:
            break
        for b in range(nb):
            g[b] = g_try[b]
        for j in range(q):
            beta[j] = b_try[j]
        for i in range(n):
            mu[i] = mu_try[i]
        rel = abs(new_pdev - pdev) / (abs(new_pdev) + 0.1)
        pdev = new_pdev
        if rel < tol:
            break
    return False, it


# ----------------------------------------------------------------------------------------------
# gene-parallel kernels
# ----------------------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def k_linear_mu(Y, sf, blk, nb, Z, min_mu, mu_out):
    """mu = s * (least-squares fit of the normalised counts), clipped at ``min_mu`` (DESeq2
    linearModelMuNormalized); also returns the rough dispersion estimate (roughDispEstimate)."""
    G, n = Y.shape
    q = Z.shape[1]
    p = nb + q
    rough = np.empty(G)
    for gi in prange(G):
        nbb = max(nb, 1)
        D, B, C, L, r, s, tmp = _wls_scratch(nb, q)
        g = np.zeros(nbb)
        beta = np.empty(q)
        w = np.ones(n)
        yn = np.empty(n)
        for i in range(n):
            yn[i] = Y[gi, i] / sf[i]
        _wls(yn, w, blk, nb, Z, 0.0, g, beta, D, B, C, L, r, s, tmp)
        acc = 0.0
        for i in range(n):
            f = _eta(i, blk, nb, Z, g, beta)
            mu_out[gi, i] = max(f * sf[i], min_mu)
            m = max(f, 1.0)
            acc += ((yn[i] - m) ** 2 - m) / (m * m)
        rough[gi] = max(acc / (n - p), 0.0)
    return rough


@njit(parallel=True, cache=True)
def k_irls_mu(Y, sf, blk, nb, Z, alpha, lam, min_mu, tol, maxit, mu_out):
    """Fitted means (clipped at ``min_mu``) of the NB GLM at fixed dispersions ``alpha``."""
    G, n = Y.shape
    q = Z.shape[1]
    conv = np.zeros(G, dtype=np.bool_)
    for gi in prange(G):
        g = np.zeros(max(nb, 1))
        beta = np.zeros(q)
        mu = np.empty(n)
        c, _ = _irls(Y[gi], sf, blk, nb, Z, alpha[gi], lam, min_mu, tol, maxit, g, beta, mu)
        conv[gi] = c
        for i in range(n):
            mu_out[gi, i] = mu[i]
    return conv


@njit(parallel=True, cache=True)
def k_fit_disp(Y, MU, blk, nb, Z, lo, hi, use_prior, prior_mean, prior_var, start, xtol):
    """Per-gene dispersion: Cox-Reid adjusted profile likelihood (+ normal prior on log alpha
    centred at ``prior_mean`` with variance ``prior_var`` when ``use_prior``), searched from the
    log dispersion ``start``."""
    G = Y.shape[0]
    out = np.empty(G)
    conv = np.zeros(G, dtype=np.bool_)
    for gi in prange(G):
        pm = prior_mean[gi] if use_prior else 0.0
        la, c = _fit_disp(Y[gi], MU[gi], blk, nb, Z, lo, hi, True, use_prior, pm, prior_var, start[gi], xtol)
        out[gi] = math.exp(la)
        conv[gi] = c
    return out, conv


@njit(parallel=True, cache=True)
def k_fit_beta(Y, sf, blk, nb, Z, alpha, lam, min_mu, tol, maxit, rob_disp, use_max, not_repl, cooks_cut,
               flag_out):
    """Final fit per gene: coefficients, Wald SEs of the Z columns, Cook's distances.

    Returns (coef [G x (nb+q)], se [G x q], converged [G], max Cook's over ``use_max`` samples,
    the same excluding replaceable samples (``not_repl``), sample index of the largest Cook's
    distance). ``flag_out`` (G x n, or 0 x 0 to skip) gets Cook's > ``cooks_cut``."""
    G, n = Y.shape
    q = Z.shape[1]
    p = nb + q
    coef = np.empty((G, p))
    se = np.empty((G, q))
    conv = np.zeros(G, dtype=np.bool_)
    maxc = np.full(G, np.nan)
    maxc_nr = np.full(G, np.nan)
    argc = np.zeros(G, dtype=np.int64)
    want_flags = flag_out.shape[0] == G
    for gi in prange(G):
        nbb = max(nb, 1)
        g = np.zeros(nbb)
        beta = np.zeros(q)
        mu = np.empty(n)
        y = Y[gi]
        a = alpha[gi]
        c, _ = _irls(y, sf, blk, nb, Z, a, lam, min_mu, tol, maxit, g, beta, mu)
        conv[gi] = c
        for b in range(nb):
            coef[gi, b] = g[b]
        for j in range(q):
            coef[gi, nb + j] = beta[j]
        w = np.empty(n)
        for i in range(n):
            w[i] = mu[i] / (1.0 + a * mu[i])
        D = np.empty(nbb)
        B = np.empty((nbb, q))
        C = np.empty((q, q))
        L = np.empty((q, q))
        Sinv = np.empty((q, q))
        u = np.empty(q)
        _normal_eq(w, blk, nb, Z, lam, D, B, C)
        if not _schur_chol(D, B, C, nb, L):
            for j in range(q):
                se[gi, j] = np.nan
            continue
        _chol_inv(L, Sinv)
        for j in range(q):
            se[gi, j] = math.sqrt(Sinv[j, j])
        best = -1.0
        best_i = 0
        m_use = -1.0
        m_nr = -1.0
        rd = rob_disp[gi]
        for i in range(n):
            h = w[i] * _leverage(i, blk, nb, Z, D, B, Sinv, u)
            m = sf[i] * math.exp(_eta(i, blk, nb, Z, g, beta))  # unclipped mu (as DESeq2)
            cd = (y[i] - m) ** 2 / (m + rd * m * m) / p * h / ((1.0 - h) ** 2)
            if cd > best:
                best = cd
                best_i = i
            if use_max[i]:
                if cd > m_use:
                    m_use = cd
                if not_repl[i] and cd > m_nr:
                    m_nr = cd
            if want_flags:
                flag_out[gi, i] = cd > cooks_cut
        argc[gi] = best_i
        if m_use >= 0.0:
            maxc[gi] = m_use
        if m_nr >= 0.0:
            maxc_nr[gi] = m_nr
    return coef, se, conv, maxc, maxc_nr, argc


@njit
def _shrink_obj(y, off, blk, nb, Z, size, coef, k, no_shrink_var, scale2, eta):
    """pydeseq2/apeglm objective: -loglik + N(0, no_shrink_var) on the other coefficients + Cauchy."""
    n = y.shape[0]
    q = Z.shape[1]
    val = 0.0
    ls = math.log(size)
    for i in range(n):
        e = 0.0
        if nb > 0:
            e = coef[blk[i]]
        for j in range(q):
            e += Z[i, j] * coef[nb + j]
        eta[i] = e
        a = e + off[i]
        lae = max(a, ls) + math.log1p(math.exp(-abs(a - ls)))
        val -= y[i] * e - (y[i] + size) * lae
    for j in range(nb + q):
        if j == k:
            val += math.log1p(coef[j] * coef[j] / scale2)
        else:
            val += coef[j] * coef[j] / (2.0 * no_shrink_var)
    return val


@njit(parallel=True, cache=True)
def k_shrink(Y, off, blk, nb, Z, alpha, coef0, k, no_shrink_var, scale2, maxit, tol):
    """MAP of one coefficient under a Cauchy(0, sqrt(scale2)) prior (pydeseq2 ``lfc_shrink``), others
    N(0, no_shrink_var); Newton steps through the block Schur complement with backtracking.

    Returns (shrunk coefficient k [G], converged [G])."""
    G, n = Y.shape
    q = Z.shape[1]
    p = nb + q
    out = np.empty(G)
    conv = np.zeros(G, dtype=np.bool_)
    for gi in prange(G):
        y = Y[gi]
        size = 1.0 / alpha[gi]
        coef = coef0[gi].copy()
        trial = np.empty(p)
        eta = np.empty(n)
        h = np.empty(n)
        resid = np.empty(n)
        nbb = max(nb, 1)
        D, B, C, L, r, s, tmp = _wls_scratch(nb, q)
        dg = np.zeros(nbb)
        db = np.empty(q)
        f = _shrink_obj(y, off, blk, nb, Z, size, coef, k, no_shrink_var, scale2, eta)
        ok = False
        for _ in range(maxit):
            # gradient and (Fisher/observed) Hessian of the objective
            for i in range(n):
                ex = math.exp(eta[i] + off[i])
                resid[i] = y[i] - (y[i] + size) * ex / (size + ex)
                h[i] = (y[i] + size) * size * ex / ((size + ex) ** 2)
            _normal_eq(h, blk, nb, Z, 0.0, D, B, C)
            for b in range(nb):
                r[b] = -coef[b] / no_shrink_var
                D[b] += 1.0 / no_shrink_var
            for j in range(q):
                cj = coef[nb + j]
                if nb + j == k:
                    s[j] = -2.0 * cj / (scale2 + cj * cj)
                    hk = 2.0 * (scale2 - cj * cj) / ((scale2 + cj * cj) ** 2)
                    C[j, j] += max(hk, 0.0)
                else:
                    s[j] = -cj / no_shrink_var
                    C[j, j] += 1.0 / no_shrink_var
            for i in range(n):
                if nb > 0:
                    r[blk[i]] += resid[i]
                for j in range(q):
                    s[j] += resid[i] * Z[i, j]
            if not _schur_chol(D, B, C, nb, L):
                break
            _block_solve(D, B, L, nb, r, s, dg, db, tmp)  # ascent direction of -objective
            step = 1.0
            improved = False
            fn = f
            while step > 1e-10:
                for b in range(nb):
                    trial[b] = coef[b] + step * dg[b]
                for j in range(q):
                    trial[nb + j] = coef[nb + j] + step * db[j]
                fn = _shrink_obj(y, off, blk, nb, Z, size, trial, k, no_shrink_var, scale2, eta)
                if fn <= f:
                    improved = True
                    break
                step *= 0.5
            if not improved:
                _shrink_obj(y, off, blk, nb, Z, size, coef, k, no_shrink_var, scale2, eta)
                ok = True  # no descent possible: at the optimum to machine precision
                break
            for j in range(p):
                coef[j] = trial[j]
            done = abs(f - fn) <= tol * (abs(fn) + 1e-8)
            f = fn
            if done:
                ok = True
                break
        out[gi] = coef[k]
        conv[gi] = ok
    return out, conv
