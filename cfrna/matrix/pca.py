"""PCA of the samples on their most variable vst genes (the report's sample map, ``uns["pca"]`` of the AnnData)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def pca(vst: pd.DataFrame, *, n_top: int = 500) -> dict[str, Any] | None:
    """PCA of the ``n_top`` most variable genes of a gene x sample vst matrix (centred, SVD).

    Genes with a missing value are left out. Returns ``{"samples", "pc1", "pc2", "explained",
    "n_genes"}`` (scores rounded to 3 decimals, the largest-|score| sample positive on each axis so
    re-runs give the same picture), or None with fewer than 3 samples or no variable genes.
    """
    x = vst.to_numpy(dtype=float)
    x = x[np.all(np.isfinite(x), axis=1)]
    if x.shape[1] < 3 or x.shape[0] < 2:
        return None
    var = x.var(axis=1)
    top = np.argsort(var, kind="stable")[::-1][: min(n_top, x.shape[0])]
    m = x[top].T  # samples x genes
    m = m - m.mean(axis=0)
    u, s, _ = np.linalg.svd(m, full_matrices=False)
    if s.size < 2 or s[0] == 0:
        return None
    scores = u[:, :2] * s[:2]
    explained = s**2 / np.sum(s**2)
    for k in range(2):
        if scores[np.argmax(np.abs(scores[:, k])), k] < 0:
            scores[:, k] *= -1
    return {
        "samples": [str(c) for c in vst.columns],
        "pc1": [round(float(v), 3) for v in scores[:, 0]],
        "pc2": [round(float(v), 3) for v in scores[:, 1]],
        "explained": [round(float(explained[0]), 4), round(float(explained[1]), 4)],
        "n_genes": int(top.size),
    }


__all__ = ["pca"]
