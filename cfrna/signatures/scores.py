"""Per-sample signature scores and their association with a contrast.

- :func:`zscore_scores`: mean of per-gene z-scores of log expression over the set's genes (a simple,
  rank-free score robust to set size; used for every signature and the DE sensitivity covariates).
- :func:`singscore`: singscore-style rank score (Foroutan 2018): mean rank of the set's genes within
  the sample, centred and scaled to [-0.5, 0.5].
- :func:`median_fold_change_score`: the IFN score of Rice et al. 2013: for each gene, the fold change
  of the sample over the mean of the baseline samples (here the non-flare samples), then the median
  over the genes.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def zscore_scores(expr: pd.DataFrame, gene_sets: dict[str, list[str]], *, min_genes: int = 3) -> pd.DataFrame:
    """Mean z-score per set.

    Parameters
    ----------
    expr : pandas.DataFrame
        Genes x samples on a log scale (vst, or log2 normalised + 1), indexed by symbol; duplicate
        symbols are averaged.
    gene_sets : dict
        Set name -> symbols.
    min_genes : int
        Sets with fewer non-constant genes present get NaN (default: 3).

    Returns
    -------
    pandas.DataFrame
        Samples x sets.
    """
    e = expr.groupby(level=0).mean() if expr.index.has_duplicates else expr
    sd = e.std(axis=1, ddof=1)
    z = e.sub(e.mean(axis=1), axis=0).div(sd.where(sd > 0), axis=0)
    out = {}
    for name, genes in gene_sets.items():
        present = [g for g in dict.fromkeys(genes) if g in z.index and np.isfinite(sd.get(g, np.nan)) and sd[g] > 0]
        if len(present) < min_genes:
            log.info("signature %s: %d gene(s) present (< %d); score is NaN", name, len(present), min_genes)
            out[name] = pd.Series(np.nan, index=e.columns)
        else:
            out[name] = z.loc[present].mean(axis=0)
    return pd.DataFrame(out, index=e.columns)


def singscore(expr: pd.DataFrame, gene_sets: dict[str, list[str]], *, min_genes: int = 3) -> pd.DataFrame:
    """singscore-style unidirectional score: centred mean rank of the set within each sample.

    Ranks are computed within each sample (ties averaged) over all genes of ``expr``; the score is
    ``mean_rank / n_genes - (n_set + 1) / (2 n_genes)``, i.e. 0 for a set of random genes, up to
    about +0.5 for the most expressed genes (Foroutan et al. 2018, without their dispersion term).
    """
    e = expr.groupby(level=0).mean() if expr.index.has_duplicates else expr
    ranks = e.rank(axis=0, method="average")
    n = len(e)
    out = {}
    for name, genes in gene_sets.items():
        present = [g for g in dict.fromkeys(genes) if g in ranks.index]
        if len(present) < min_genes:
            out[name] = pd.Series(np.nan, index=e.columns)
            continue
        k = len(present)
        out[name] = ranks.loc[present].mean(axis=0) / n - (k + 1) / (2 * n)
    return pd.DataFrame(out, index=e.columns)


def median_fold_change_score(normalized: pd.DataFrame, genes: list[str], baseline: list[str], *,
                             pseudocount: float = 1.0, min_genes: int = 3) -> pd.Series:
    """Rice 2013 interferon score: median over genes of the fold change vs the baseline mean.

    Parameters
    ----------
    normalized : pandas.DataFrame
        Normalised counts, genes (symbols) x samples.
    genes : list of str
        Signature genes (the 6-gene IFN score: IFI27, IFI44L, IFIT1, ISG15, RSAD2, SIGLEC1).
    baseline : list of str
        Reference samples (non-flare); their score is about 1.
    pseudocount : float
        Added to counts before the ratio (default: 1).

    Returns
    -------
    pandas.Series
        Score per sample (linear fold change; Rice et al. call > 2.466 positive against healthy
        controls — here the baseline is the cohort's non-flare samples, so the cut-off does not
        transfer).
    """
    e = normalized.groupby(level=0).mean() if normalized.index.has_duplicates else normalized
    present = [g for g in dict.fromkeys(genes) if g in e.index]
    if len(present) < min_genes or len(baseline) == 0:
        return pd.Series(np.nan, index=e.columns)
    x = e.loc[present] + pseudocount
    ref = x[baseline].mean(axis=1)
    return x.div(ref, axis=0).median(axis=0)


def association(scores: pd.DataFrame, groups: pd.Series, *, reference: str, target: str) -> pd.DataFrame:
    """Score difference between two groups with a Mann-Whitney U test (two-sided) and BH FDR.

    Parameters
    ----------
    scores : pandas.DataFrame
        Samples x signatures.
    groups : pandas.Series
        Group label per sample (other labels and NaN ignored).

    Returns
    -------
    pandas.DataFrame
        ``signature, n_reference, n_target, mean_reference, mean_target, difference, statistic,
        pvalue, fdr`` (difference = mean target - mean reference).
    """
    from scipy.stats import mannwhitneyu

    g = groups.reindex(scores.index)
    rows = []
    for sig in scores.columns:
        a = scores.loc[g == reference, sig].dropna()
        b = scores.loc[g == target, sig].dropna()
        if len(a) < 2 or len(b) < 2:
            stat, p = np.nan, np.nan
        else:
            res = mannwhitneyu(b, a, alternative="two-sided")
            stat, p = float(res.statistic), float(res.pvalue)
        rows.append({"signature": sig, "n_reference": len(a), "n_target": len(b),
                     "mean_reference": a.mean() if len(a) else np.nan, "mean_target": b.mean() if len(b) else np.nan,
                     "difference": (b.mean() - a.mean()) if len(a) and len(b) else np.nan,
                     "statistic": stat, "pvalue": p})
    df = pd.DataFrame(rows)
    df["fdr"] = bh_adjust(df["pvalue"].to_numpy()) if len(df) else []
    return df


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN kept as NaN)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return out
    q = p[ok]
    order = np.argsort(q)
    n = len(q)
    adj = q[order] * n / np.arange(1, n + 1)
    adj = np.minimum.accumulate(adj[::-1])[::-1]
    res = np.empty(n)
    res[order] = np.minimum(adj, 1.0)
    out[ok] = res
    return out
