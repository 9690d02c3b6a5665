"""Small dense linear algebra and a bounded 1-D minimiser for per-gene kernels (``@njit``, serial, allocation-free).

Used inside the DE engines' per-gene loops (:mod:`cfrna.de._nbglm_kernels`,
:mod:`cfrna.de._limma_kernels`), where the matrices are p x p with p small and a LAPACK call per
gene would cost more than the arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from cfrna._numba import njit


@njit
def chol_inplace(a, p):
    """Lower Cholesky factor of the leading p x p SPD block of ``a``, in place (the lower triangle is
    read and written; the strict upper triangle is left as it was). False if not positive definite."""
    for j in range(p):
        s = a[j, j]
        for k in range(j):
            s -= a[j, k] * a[j, k]
        if not s > 0.0:
            return False
        d = math.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, p):
            s = a[i, j]
            for k in range(j):
                s -= a[i, k] * a[j, k]
            a[i, j] = s / d
    return True


@njit
def chol_solve(L, b, p, out):
    """Solve ``(L L') out = b`` for the leading p x p lower factor ``L``."""
    for i in range(p):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * out[k]
        out[i] = s / L[i, i]
    for i in range(p - 1, -1, -1):
        s = out[i]
        for k in range(i + 1, p):
            s -= L[k, i] * out[k]
        out[i] = s / L[i, i]


# Brent's bounded minimisation (Brent 1973; as scipy.optimize.fminbound), by reverse communication:
# numba kernels cannot take the objective as an argument cheaply, so the caller evaluates it.
#
#     st = np.empty(BRENT_STATE)
#     brent_start(st, a, b, x0, f(x0))
#     for _ in range(maxit):
#         u = brent_next(st, rtol, atol)
#         if u != u:  # NaN: converged, the minimum is st[BRENT_X]
#             break
#         brent_update(st, u, f(u))
BRENT_STATE = 10
BRENT_X = 2
_A, _B, _X, _W, _V, _FX, _FW, _FV, _D, _E = range(10)
_CGOLD = 0.3819660112501051


@njit
def brent_start(st, a, b, x, fx):
    """Start on the bracket [a, b] at ``x`` (objective ``fx``)."""
    st[_A] = a
    st[_B] = b
    st[_X] = x
    st[_W] = x
    st[_V] = x
    st[_FX] = fx
    st[_FW] = fx
    st[_FV] = fx
    st[_D] = 0.0
    st[_E] = 0.0


@njit
def brent_next(st, rtol, atol):
    """The next point to evaluate (tolerance ``rtol * |x| + atol``), or NaN when converged."""
    a = st[_A]
    b = st[_B]
    x = st[_X]
    w = st[_W]
    v = st[_V]
    fx = st[_FX]
    fw = st[_FW]
    fv = st[_FV]
    d = st[_D]
    e = st[_E]
    xm = 0.5 * (a + b)
    tol1 = rtol * abs(x) + atol
    tol2 = 2.0 * tol1
    if abs(x - xm) <= tol2 - 0.5 * (b - a):
        return np.nan
    golden_step = True
    if abs(e) > tol1:  # try a parabola through x, w, v
        r = (x - w) * (fx - fv)
        q = (x - v) * (fx - fw)
        pp = (x - v) * q - (x - w) * r
        q = 2.0 * (q - r)
        if q > 0.0:
            pp = -pp
        q = abs(q)
        etemp = e
        e = d
        if abs(pp) < abs(0.5 * q * etemp) and pp > q * (a - x) and pp < q * (b - x):
            d = pp / q
            u = x + d
            if (u - a) < tol2 or (b - u) < tol2:
                d = tol1 if xm >= x else -tol1
            golden_step = False
    if golden_step:
        e = (a - x) if x >= xm else (b - x)
        d = _CGOLD * e
    st[_D] = d
    st[_E] = e
    return x + d if abs(d) >= tol1 else x + (tol1 if d > 0 else -tol1)


@njit
def brent_update(st, u, fu):
    """Take the objective ``fu`` at the point ``u`` given by :func:`brent_next`."""
    x = st[_X]
    if fu <= st[_FX]:
        if u >= x:
            st[_A] = x
        else:
            st[_B] = x
        st[_V] = st[_W]
        st[_FV] = st[_FW]
        st[_W] = x
        st[_FW] = st[_FX]
        st[_X] = u
        st[_FX] = fu
    else:
        if u < x:
            st[_A] = u
        else:
            st[_B] = u
        if fu <= st[_FW] or st[_W] == x:
            st[_V] = st[_W]
            st[_FV] = st[_FW]
            st[_W] = u
            st[_FW] = fu
        elif fu <= st[_FV] or st[_V] == x or st[_V] == st[_W]:
            st[_V] = u
            st[_FV] = fu
