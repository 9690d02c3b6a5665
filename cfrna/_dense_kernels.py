"""Small dense linear algebra for per-gene kernels (``@njit``, serial, allocation-free).

Used inside the DE engines' per-gene loops (:mod:`cfrna.de._nbglm_kernels`,
:mod:`cfrna.de._limma_kernels`), where the matrices are p x p with p small and a LAPACK call per
gene would cost more than the arithmetic.
"""

from __future__ import annotations

import math

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
