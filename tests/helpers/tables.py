"""Comparing result tables of two runs (cfrna run, Nextflow, a module harness)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def assert_tables_equal(a: Path, b: Path, *, rtol: float = 1e-6) -> None:
    """Byte-identical, or the same table with numerically equal numbers."""
    if a.read_bytes() == b.read_bytes():
        return
    da = pd.read_csv(a, sep="\t")
    db = pd.read_csv(b, sep="\t")
    assert list(da.columns) == list(db.columns), f"{a.name}: columns differ"
    assert da.shape == db.shape, f"{a.name}: shape {da.shape} vs {db.shape}"
    for col in da.columns:
        if pd.api.types.is_numeric_dtype(da[col]) and pd.api.types.is_numeric_dtype(db[col]):
            np.testing.assert_allclose(da[col].to_numpy(float), db[col].to_numpy(float), rtol=rtol, atol=1e-9,
                                       equal_nan=True, err_msg=f"{a.name}:{col}")
        else:
            assert da[col].astype(str).tolist() == db[col].astype(str).tolist(), f"{a.name}:{col} differs"
