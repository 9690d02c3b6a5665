"""The run's ``.h5ad`` as a scanpy user reads it: dicts and tables in ``uns``, ``gene_symbols`` ready,
integer visit months, and only this run's samples and contrasts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfrna.matrix.anndata_io import build_anndata, unique_gene_names, write_anndata
from tests.helpers.report import build_results


def _with_annotation(res: Path) -> Path:
    """The report fixture plus what `cfrna matrix` writes for the AnnData (duplicate and missing symbols)."""
    ann = pd.read_csv(res / "matrix" / "gene_annotation.tsv", sep="\t")
    ann.loc[20, "gene_name"] = ann.loc[21, "gene_name"]  # a symbol shared by two gene ids
    ann.loc[22, "gene_name"] = np.nan  # a gene without a symbol
    ann.to_csv(res / "matrix" / "gene_annotation.tsv", sep="\t", index=False)
    return res


@pytest.fixture(scope="module")
def h5ad(tmp_path_factory) -> Path:
    res = _with_annotation(build_results(tmp_path_factory.mktemp("h5ad") / "r"))
    shutil.copy(res / "de" / "flare_vs_no_flare.deseq2.tsv", res / "de" / "old.deseq2.tsv")
    shutil.copy(res / "pathways" / "flare_vs_no_flare.gsea.tsv", res / "pathways" / "old.gsea.tsv")
    (res / "pipeline_info" / "params.json").write_text(json.dumps(
        {"cfrna_version": "0.1.0", "params": {"threads": 2, "contrasts": None, "gene_sets": ["a.gmt", "b.gmt"]}}))
    return write_anndata(res)


def test_uns_holds_dicts_and_tables(h5ad: Path) -> None:
    import anndata as ad

    a = ad.read_h5ad(h5ad)
    prov = a.uns["provenance"]
    assert isinstance(prov["params"], dict) and prov["params"]["params"]["threads"] == 2
    assert list(prov["params"]["params"]["gene_sets"]) == ["a.gmt", "b.gmt"]
    assert prov["params"]["params"]["contrasts"] == ""  # JSON null as an empty string (h5ad has no None)
    assert isinstance(prov["software_versions"], dict)
    assert prov["software_versions"]["CFRNA_COUNT"]["featureCounts"] == "2.0.6"
    assert isinstance(prov["input_checksums"], pd.DataFrame) and list(prov["input_checksums"]["file"]) == [
        "samplesheet.csv", "genes.gtf"]
    for key in ("de_design", "qc_summary", "signature_association"):
        assert isinstance(a.uns[key], pd.DataFrame), key
    assert all(isinstance(v, pd.DataFrame) for v in a.uns["de"].values())


def test_only_this_runs_contrasts(h5ad: Path) -> None:
    import anndata as ad

    a = ad.read_h5ad(h5ad)
    assert set(a.uns["de"]) == set(a.uns["gsea"]) == {"flare_vs_no_flare", "visit_1"}
    assert sorted(a.varm) == ["de_flare_vs_no_flare", "de_visit_1"]


def test_visit_month_is_integer(h5ad: Path, tmp_path: Path) -> None:
    import anndata as ad

    a = ad.read_h5ad(h5ad)
    assert pd.api.types.is_integer_dtype(a.obs["visit_month"])
    assert sorted(set(a.obs["visit_month"])) == [0, 6]
    res = build_results(tmp_path / "frac")
    s = pd.read_csv(res / "matrix" / "samples.tsv", sep="\t")
    s["visit_month"] = s["visit_month"].astype(float)
    s.loc[0, "visit_month"] = 6.5  # allowed by the samplesheet schema: stays a float
    s.loc[1, "visit_month"] = np.nan
    s.to_csv(res / "matrix" / "samples.tsv", sep="\t", index=False)
    assert build_anndata(res).obs["visit_month"].dtype == np.float64
    s.loc[0, "visit_month"] = 6.0
    s.to_csv(res / "matrix" / "samples.tsv", sep="\t", index=False)
    vm = build_anndata(res).obs["visit_month"]
    assert str(vm.dtype) == "Int64" and vm.isna().sum() == 1


def test_gene_symbols_for_scanpy(h5ad: Path) -> None:
    import anndata as ad
    import matplotlib

    matplotlib.use("Agg")
    import scanpy as sc

    a = ad.read_h5ad(h5ad)
    names = a.var["gene_name"]
    assert names.is_unique and (names != "").all()
    assert names.iloc[22] == a.var_names[22]  # no symbol: the gene id
    assert names.iloc[20] == "GENE21" and names.iloc[21] == "GENE21-1"  # second occurrence suffixed
    assert a.var["gene_name_gtf"].iloc[21] == "GENE21"  # the GTF's own name is kept
    a.obs["flare"] = a.obs["flare"].astype("category")
    axes = sc.pl.dotplot(a, ["IFI27", "HBB", "GENE21-1"], groupby="flare", gene_symbols="gene_name", show=False)
    assert axes
    df = sc.get.obs_df(a, ["IFI27"], gene_symbols="gene_name")
    g = a.var_names[list(names).index("IFI27")]
    np.testing.assert_allclose(df["IFI27"].to_numpy(), a[:, g].X.ravel())


def test_unique_gene_names() -> None:
    ids = pd.Index(["g1", "g2", "g3", "g4", "g5"])
    got = unique_gene_names(ids, pd.Series(["A", "A", None, "", "A"]))
    assert got.tolist() == ["A", "A-1", "g3", "g4", "A-2"]


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_real_run_h5ad_with_scanpy(pipeline_run: Path) -> None:
    """The h5ad that `cfrna run` wrote, read with anndata and plotted with scanpy by gene symbol."""
    import anndata as ad
    import matplotlib

    matplotlib.use("Agg")
    import scanpy as sc

    a = ad.read_h5ad(pipeline_run / "matrix" / "cfrna.h5ad")
    design = pd.read_csv(pipeline_run / "de" / "design.tsv", sep="\t", dtype=str)
    assert set(a.uns["de"]) == set(design["contrast"])
    assert isinstance(a.uns["provenance"]["params"], dict)
    assert str(a.obs["visit_month"].dtype) == "Int64"  # samples.tsv holds 0.0, 12.0: whole months
    a.obs["flare"] = a.obs["flare"].astype("category")
    assert sc.pl.matrixplot(a, ["IFI27", "RSAD2"], groupby="flare", gene_symbols="gene_name", show=False)
