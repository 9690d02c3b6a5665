"""Library complexity from a duplicate histogram: the complexity curve and its extrapolation.

The input is the histogram the counting engine writes in ``<ID>.counts.tsv.stats.json`` under
``dedup.histogram``: ``[[k, n_k], ...]``, ``n_k`` molecules (position or position+UMI groups)
observed ``k`` times. With ``N = sum k n_k`` fragments and ``U = sum n_k`` unique ones:

* **Interpolation** (depth ``m <= N``) is exact: drawing ``m`` of the ``N`` fragments without
  replacement misses a molecule seen ``k`` times with the hypergeometric probability
  ``C(N-k, m) / C(N, m)``, so ``E[U(m)] = sum_k n_k (1 - C(N-k, m) / C(N, m))`` (rarefaction;
  Heck, van Belle & Simberloff 1975, Ecology 56:1459; ``preseq c_curve`` samples the same curve).
* **Extrapolation** to ``(1 + t) N`` fragments:

  - ``t <= 1`` (up to twice the depth, the ``complexity_2x`` of the QC passport): the Good–Toulmin
    estimator ``U(t) = U + sum_k (-1)^(k+1) t^k n_k`` (Good & Toulmin 1956, Biometrika 43:45). Under
    Poisson sampling of any mixture of molecule abundances it is unbiased and, for ``t <= 1``, its
    error is bounded (Orlitsky, Suresh & Wu 2016, PNAS 113:13283), so no smoothing is needed there.
    Its alternating series diverges beyond ``t = 1``; that is where Efron & Thisted (1976,
    Biometrika 63:435) smooth it and preseq (Daley & Smith 2013, Nat Methods 10:325) replaces it by
    rational-function (continued-fraction) approximations.
  - ``t > 1``: a zero-truncated negative binomial (ZTNB) fitted to the histogram by maximum
    likelihood, the parametric baseline of Daley & Smith 2013: molecule copy numbers are Poisson
    with gamma-distributed means (PCR efficiency varying between molecules), the unobserved zero
    class follows from the fit, and ``E[U((1+t)N)] = M (1 - P_0((1+t) mu))`` with
    ``M = U / (1 - P_0(mu))``. It is exact for gamma-mixed Poisson sampling and tends to
    overestimate far beyond the data for heavier-tailed libraries (Daley & Smith 2013), so the
    curve of :func:`complexity_curve` stops at ``max_fold`` (default 2x).

* **Saturation** is the Good–Turing sample coverage ``1 - n_1 / N`` (Good 1953, Biometrika 40:237):
  the estimated probability that one more fragment is a copy of a molecule already seen; a library
  near 1 gains almost nothing from deeper sequencing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from cfrna.errors import InputFormatError

__all__ = [
    "parse_histogram", "histogram_from_copies", "totals", "interpolate", "good_toulmin", "fit_ztnb",
    "ztnb_unique", "extrapolate", "saturation", "complexity_curve", "complexity_metrics",
]


def parse_histogram(obj: Any, *, where: str = "dedup.histogram") -> np.ndarray:
    """Validate ``[[k, n_k], ...]`` (k >= 1, n_k >= 0 integers) into an int64 array (rows sorted by k).

    Repeated ``k`` are summed; rows with ``n_k == 0`` are dropped. A bad entry raises
    :class:`InputFormatError` naming ``where`` and the entry.
    """
    if not isinstance(obj, (list, tuple, np.ndarray)):
        raise InputFormatError(f"{where} must be a list of [k, n_k] pairs, found {type(obj).__name__}",
                               where=where, hint="rerun cfrna count with --dedup")
    rows: dict[int, int] = {}
    for i, row in enumerate(obj):
        try:
            k, n = row
            kf, nf = float(k), float(n)
        except (TypeError, ValueError):
            raise InputFormatError(f"entry {i} of {where} is not a [k, n_k] pair: {row!r}", where=where,
                                   hint="rerun cfrna count with --dedup") from None
        if not (math.isfinite(kf) and math.isfinite(nf)) or kf != int(kf) or nf != int(nf) or kf < 1 or nf < 0:
            raise InputFormatError(f"entry {i} of {where} must hold integers k >= 1 and n_k >= 0: {row!r}",
                                   where=where, hint="rerun cfrna count with --dedup")
        if nf > 0:
            rows[int(kf)] = rows.get(int(kf), 0) + int(nf)
    if not rows:
        return np.zeros((0, 2), dtype=np.int64)
    ks = sorted(rows)
    return np.array([[k, rows[k]] for k in ks], dtype=np.int64)


def histogram_from_copies(copies: Iterable[int] | np.ndarray) -> np.ndarray:
    """The duplicate histogram of per-molecule copy numbers (zeros ignored)."""
    c = np.asarray(copies, dtype=np.int64)
    c = c[c > 0]
    if not len(c):
        return np.zeros((0, 2), dtype=np.int64)
    n = np.bincount(c)
    k = np.flatnonzero(n)
    return np.stack([k, n[k]], axis=1).astype(np.int64)


def _hist(h: Any) -> np.ndarray:
    if isinstance(h, np.ndarray) and h.dtype == np.int64 and h.ndim == 2 and h.shape[1] == 2:
        return h
    return parse_histogram(h)


def totals(hist: Any) -> tuple[int, int]:
    """``(N, U)``: fragments and unique molecules of a histogram."""
    h = _hist(hist)
    return int((h[:, 0] * h[:, 1]).sum()), int(h[:, 1].sum())


def interpolate(hist: Any, depths: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """Expected unique molecules at each depth ``m`` (0 <= m <= N), exact hypergeometric rarefaction.

    Non-integer depths are interpolated linearly between the neighbouring integers.
    """
    h = _hist(hist)
    N, _U = totals(h)
    m = np.atleast_1d(np.asarray(depths, dtype=float))
    if np.any(m < 0) or np.any(m > N + 1e-9):
        raise ValueError(f"interpolation depths must lie in [0, {N}]")
    lo = np.floor(m).astype(np.int64)
    hi = np.minimum(lo + 1, N)
    frac = m - lo
    return (1 - frac) * _rarefy(h, N, lo) + frac * _rarefy(h, N, hi)


def _rarefy(h: np.ndarray, N: int, m: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    k = h[:, 0].astype(float)[None, :]
    n = h[:, 1].astype(float)[None, :]
    mm = m.astype(float)[:, None]
    # log C(N-k, m) - log C(N, m) = lgamma(N-k+1) - lgamma(N-k-m+1) - lgamma(N+1) + lgamma(N-m+1)
    ok = (N - k) >= mm
    a = np.where(ok, N - k - mm + 1, 1.0)
    log_miss = gammaln(N - k + 1) - gammaln(a) - gammaln(N + 1.0) + gammaln(N - mm + 1)
    miss = np.where(ok, np.exp(np.minimum(log_miss, 0.0)), 0.0)
    return (n * (1.0 - miss)).sum(axis=1)


def good_toulmin(hist: Any, t: float) -> float:
    """Good–Toulmin expected unique molecules at ``(1 + t) N`` fragments, ``0 <= t <= 1``."""
    if not 0 <= t <= 1:
        raise ValueError(f"Good–Toulmin is used for 0 <= t <= 1 only (t={t})")
    h = _hist(hist)
    _N, U = totals(h)
    k = h[:, 0]
    sign = np.where(k % 2 == 1, 1.0, -1.0)
    # t**k underflows harmlessly for t < 1; for t == 1 every term is +-n_k
    gain = float((sign * np.power(float(t), k.astype(float)) * h[:, 1]).sum())
    return U + max(gain, 0.0)


def fit_ztnb(hist: Any) -> tuple[float, float]:
    """Maximum-likelihood zero-truncated negative binomial ``(mu, size)`` of the copy numbers.

    ``P(k) = NB(k; mu, size) / (1 - NB(0; mu, size))`` for ``k >= 1``; ``size -> inf`` is Poisson
    (returned as ``size = 1e8`` when the likelihood keeps rising).
    """
    from scipy.optimize import minimize
    from scipy.special import gammaln

    h = _hist(hist)
    k = h[:, 0].astype(float)
    n = h[:, 1].astype(float)
    if n.sum() == 0:
        raise ValueError("empty histogram")
    mean_obs = float((k * n).sum() / n.sum())

    def nll(p: np.ndarray) -> float:
        mu, r = math.exp(p[0]), math.exp(p[1])
        log_p0 = -r * math.log1p(mu / r)
        logp = (gammaln(k + r) - gammaln(r) - gammaln(k + 1) + r * math.log(r / (r + mu))
                + k * math.log(mu / (r + mu)))
        trunc = math.log(-math.expm1(log_p0)) if log_p0 < 0 else -math.inf
        return -float((n * (logp - trunc)).sum())

    best = None
    for r0 in (0.3, 1.0, 5.0, 50.0):
        x0 = np.array([math.log(max(mean_obs - 0.9, 0.05)), math.log(r0)])
        res = minimize(nll, x0, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
        if best is None or res.fun < best.fun:
            best = res
    mu, r = math.exp(best.x[0]), min(math.exp(best.x[1]), 1e8)
    return mu, r


def ztnb_unique(hist: Any, fold: float, *, fit: tuple[float, float] | None = None) -> float:
    """ZTNB expected unique molecules at ``fold`` x the observed fragments (``fold > 0``)."""
    h = _hist(hist)
    _N, U = totals(h)
    mu, r = fit or fit_ztnb(h)

    def p_seen(m: float) -> float:
        return -math.expm1(-r * math.log1p(m / r))

    return U / p_seen(mu) * p_seen(fold * mu)


def extrapolate(hist: Any, fold: float) -> float:
    """Expected unique molecules at ``fold`` x the observed depth (``fold >= 1``).

    Good–Toulmin for ``fold <= 2`` (model-free, unbiased), ZTNB beyond (see the module docstring).
    """
    if fold < 1:
        raise ValueError(f"extrapolate needs fold >= 1 (use interpolate below the observed depth), got {fold}")
    if fold <= 2:
        return good_toulmin(hist, fold - 1.0)
    return ztnb_unique(hist, fold)


def saturation(hist: Any) -> float | None:
    """Good–Turing sample coverage ``1 - n_1 / N``; None for an empty histogram."""
    h = _hist(hist)
    N, _U = totals(h)
    if N == 0:
        return None
    n1 = int(h[h[:, 0] == 1, 1].sum())
    return 1.0 - n1 / N


def complexity_curve(hist: Any, *, points: int = 20, max_fold: float = 2.0) -> list[dict[str, float | str]]:
    """The complexity curve: ``[{"fragments", "unique", "kind"}]``, interpolated up to the observed
    depth (``kind`` ``observed`` at the last of those points) and extrapolated to ``max_fold`` x.
    """
    h = _hist(hist)
    N, U = totals(h)
    if N == 0:
        return []
    n_in = max(2, int(round(points / max_fold)))
    depths = np.linspace(0, N, n_in + 1)[1:]
    uniq = interpolate(h, depths)
    out: list[dict[str, float | str]] = [{"fragments": 0.0, "unique": 0.0, "kind": "interpolated"}]
    out += [{"fragments": float(d), "unique": float(u), "kind": "interpolated"} for d, u in zip(depths, uniq,
                                                                                              strict=True)]
    out[-1] = {"fragments": float(N), "unique": float(U), "kind": "observed"}
    n_out = max(1, points - n_in)
    for f in np.linspace(1, max_fold, n_out + 1)[1:]:
        out.append({"fragments": float(f * N), "unique": float(extrapolate(h, float(f))), "kind": "extrapolated"})
    return out


def complexity_metrics(hist: Any) -> dict[str, float | int | None]:
    """``unique_fragments``, ``duplication_fraction``, ``complexity_2x``, ``saturation`` of a histogram."""
    h = _hist(hist)
    N, U = totals(h)
    if N == 0:
        return {"fragments_dedup_input": 0, "unique_fragments": 0, "duplication_fraction": None,
                "complexity_2x": None, "saturation": None}
    return {"fragments_dedup_input": N, "unique_fragments": U, "duplication_fraction": 1.0 - U / N,
            "complexity_2x": float(extrapolate(h, 2.0)), "saturation": saturation(h)}
