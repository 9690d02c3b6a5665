"""Blood-cell sensitivity analysis shared by both DE engines.

A contrast is refitted with the blood-cell signature scores added to its fixed formula; the table
says, for each gene significant in the primary fit, whether it stays significant.
"""

from __future__ import annotations

import pandas as pd

from cfrna.de.contrasts import DesignSummary, _check_rank, _design_matrix
from cfrna.errors import ConfigError


def adjusted_design(summary: DesignSummary, covars: pd.DataFrame) -> tuple[pd.DataFrame, str, pd.DataFrame]:
    """Metadata, fixed formula and design matrix of ``summary`` with the ``covars`` columns added.

    Raises :class:`~cfrna.errors.ConfigError` when there is no covariate or the adjusted design is
    not fittable (rank-deficient, too few samples).
    """
    c = summary.contrast
    if covars.shape[1] == 0:
        raise ConfigError("no blood-cell signature could be scored")
    meta = summary.metadata.join(covars.loc[summary.metadata.index])
    formula = summary.formula + " + " + " + ".join(covars.columns)
    dm = _design_matrix(formula, meta, where=c.where, cid=c.id)
    _check_rank(dm, list(meta.columns), c, formula)
    return meta, formula, dm


def not_fittable(exc: ConfigError, covars: pd.DataFrame) -> str:
    """The status line of a sensitivity refit that could not be made."""
    if covars.shape[1] == 0:
        return exc.message
    return f"adjusted design not fittable: {exc.message}"


def sensitivity_table(primary: pd.DataFrame, lfc_adjusted: pd.Series, padj_adjusted: pd.Series,
                      covars: pd.DataFrame, *, alpha: float) -> pd.DataFrame:
    """Genes significant in ``primary`` with their adjusted log2FC and padj (indexed by gene id)."""
    sig = primary[primary["padj"] < alpha]
    out = pd.DataFrame({
        "gene_id": sig.index,
        "log2FoldChange": sig["log2FoldChange"].to_numpy(),
        "padj": sig["padj"].to_numpy(),
        "log2FoldChange_adjusted": lfc_adjusted.reindex(sig.index).to_numpy(),
        "padj_adjusted": padj_adjusted.reindex(sig.index).to_numpy(),
    })
    out["still_significant"] = out["padj_adjusted"] < alpha
    out["covariates"] = ";".join(covars.columns)
    return out
