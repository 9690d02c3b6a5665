"""Pathways: GMT reading, alias mapping, GSEA on planted sets, signature scores and association."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cfrna._resources import asset_path
from cfrna.cli import main
from cfrna.errors import ConfigError, InputFormatError
from cfrna.pathways import ALIASES, map_gene_sets, read_gmt, score_pathways
from cfrna.pathways.gsea import GSEA_COLUMNS, ranking
from cfrna.signatures.gmt import GeneSet, resolve_symbol
from cfrna.signatures.scores import association, bh_adjust, median_fold_change_score, singscore, zscore_scores
from tests.conftest import require_shared
from tests.helpers.de import write_cohort


@pytest.fixture(scope="module")
def de_run(tmp_path_factory):
    """DE on a simulated 24-sample cohort (paired flare contrast), run once for the module."""
    from cfrna.de import fit_contrasts

    d = tmp_path_factory.mktemp("pw")
    files = write_cohort(d, n_samples=24, n_genes=1000, seed=11,
                         contrasts="id,variable,reference,target,blocking,formula\nflare,flare,no_flare,flare,patient_id,\n")
    fit_contrasts(files["counts"], files["samplesheet"], files["contrasts"], d / "de", annotation=files["annotation"],
                  sensitivity=False)
    return d, pd.read_csv(files["truth"], sep="\t")


# ---- GMT and aliases -------------------------------------------------------------------------

def test_curated_gmt_is_complete():
    sets = {s.name: s for s in read_gmt(asset_path("genesets", "cfrna_lupus.gmt"))}
    for name in ("IFN_4gene_TULIP", "IFN_6gene_Rice2013", "IFN_21gene_Yao2009", "BloodGen3_M8.3_Type1_IFN",
                 "BloodGen3_M15.127_IFN", "BloodGen3_M10.1_IFN", "BloodGen3_M12.15_Plasma_cells",
                 "BloodGen3_M10.4_Neutrophil_activation", "BloodGen3_M9.2_Erythroid", "BloodGen3_M8.2_Platelet",
                 "Hemoglobin", "Kidney_podocyte"):
        assert name in sets, name
    assert len(sets["IFN_4gene_TULIP"].genes) == 4 and len(sets["IFN_21gene_Yao2009"].genes) == 21
    assert set(sets["IFN_6gene_Rice2013"].genes) == {"IFI27", "IFI44L", "IFIT1", "ISG15", "RSAD2", "SIGLEC1"}
    old = set(ALIASES)  # the curated file uses current HGNC symbols only
    assert not {g for s in sets.values() for g in s.genes} & old
    assert (asset_path("genesets", "SOURCES.md")).read_text().count("Altman") >= 1


@pytest.mark.parametrize(("text", "pattern"), [
    ("setA\tdesc\n", r"x.gmt:1: a GMT line needs a name"),
    ("setA\tdesc\tG1\nsetA\tdesc\tG2\n", r"x.gmt:2: duplicate gene set name 'setA'"),
    ("# only a comment\n", r"GMT file has no gene set"),
])
def test_read_gmt_bad(tmp_path, text, pattern):
    p = tmp_path / "x.gmt"
    p.write_text(text)
    with pytest.raises(InputFormatError, match=pattern):
        read_gmt(p)


def test_alias_mapping_both_ways():
    assert resolve_symbol("IL8", {"CXCL8"}) == "CXCL8"
    assert resolve_symbol("CXCL8", {"IL8"}) == "IL8"
    assert resolve_symbol("IGJ", {"JCHAIN", "X"}) == "JCHAIN"
    assert resolve_symbol("ELA2", {"ELANE"}) == "ELANE" and resolve_symbol("DDX58", {"RIGI"}) == "RIGI"
    assert resolve_symbol("KIAA0101", {"PCLAF"}) == "PCLAF"
    assert resolve_symbol("NOPE", {"X"}) is None
    mapped, cov = map_gene_sets([GeneSet("m", "btm", "", ("IL8", "IGJ", "MISSING", "CD38"))],
                                {"CXCL8", "JCHAIN", "CD38"})
    assert mapped["m"] == ["CXCL8", "JCHAIN", "CD38"]
    assert cov[0] == {"gene_set": "m", "source": "btm", "size_in_file": 4, "size_mapped": 3, "aliased": 2}


def test_btm_old_symbols_map():
    sets = read_gmt(require_shared("genesets", "btm_li2014.gmt"))
    universe = {"CXCL8", "JCHAIN", "ELANE"}
    mapped, _ = map_gene_sets(sets, universe)
    found = {g for v in mapped.values() for g in v}
    assert {"CXCL8"} <= found  # BTM 2013 lists say IL8


# ---- scores ----------------------------------------------------------------------------------

def test_scores_small_example():
    expr = pd.DataFrame({"s1": [1.0, 1.0, 5.0, 3.0], "s2": [3.0, 3.0, 5.0, 3.0], "s3": [2.0, 2.0, 5.0, 3.0]},
                        index=["A", "B", "C", "D"])
    z = zscore_scores(expr, {"ab": ["A", "B"], "c": ["C"]}, min_genes=2)
    np.testing.assert_allclose(z["ab"], [-1.0, 1.0, 0.0])
    assert z["c"].isna().all()  # one gene < min_genes
    s = singscore(expr, {"ab": ["A", "B"]}, min_genes=2)
    assert s.loc["s2", "ab"] > s.loc["s1", "ab"]
    norm = pd.DataFrame({"b1": [9.0, 19.0], "b2": [9.0, 19.0], "x": [39.0, 79.0]}, index=["I1", "I2"])
    fc = median_fold_change_score(norm, ["I1", "I2"], ["b1", "b2"], min_genes=2)
    np.testing.assert_allclose(fc.to_numpy(), [1.0, 1.0, 4.0])


def test_bh_adjust_matches_definition():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.2])
    q = bh_adjust(p)
    np.testing.assert_allclose(q[[0, 1, 2, 4]], [0.04, 0.16 / 3, 0.16 / 3, 0.2])  # p*n/rank, then cummin from the top
    assert np.isnan(q[3])


def test_association_direction():
    scores = pd.DataFrame({"sig": [0.0, 0.1, 0.2, 1.0, 1.1, 1.2]}, index=list("abcdef"))
    groups = pd.Series(["no", "no", "no", "yes", "yes", "yes"], index=list("abcdef"))
    a = association(scores, groups, reference="no", target="yes")
    assert a.loc[0, "difference"] == pytest.approx(1.0) and a.loc[0, "pvalue"] < 0.11


# ---- score_pathways ----------------------------------------------------------------------------

def test_run_pathways_planted_ifn_top(de_run, tmp_path):
    d, truth = de_run
    res = score_pathways(d / "de", None, tmp_path / "pw", samplesheet=d / "samplesheet.csv", permutations=200, seed=3)
    g = pd.read_csv(tmp_path / "pw" / "flare.gsea.tsv", sep="\t")
    assert list(g.columns) == GSEA_COLUMNS
    assert np.all(np.diff(g["fdr"].to_numpy()) >= 0)
    top = g.iloc[0]
    # the planted interferon module (truth in_planted_set) is found: an IFN set ranks first, positive NES
    assert "IFN" in top["gene_set"] and top["nes"] > 0 and top["fdr"] < 0.05
    planted = set(truth.loc[truth["in_planted_set"], "gene_name"])
    assert len(set(top["leading_edge"].split(";")) & planted) >= 3
    scores = pd.read_csv(res["signature_scores"], sep="\t", index_col=0)
    assert "IFN_score_Rice2013_median_fc" in scores.columns and "BloodGen3_M8.3_Type1_IFN" in scores.columns
    assert len(scores) == 24
    assoc = pd.read_csv(tmp_path / "pw" / "signature_association.tsv", sep="\t")
    ifn = assoc[(assoc["contrast"] == "flare") & (assoc["signature"] == "IFN_6gene_Rice2013")].iloc[0]
    assert ifn["difference"] > 0 and ifn["pvalue"] < 0.01
    rice = assoc[assoc["signature"] == "IFN_score_Rice2013_median_fc"].iloc[0]
    assert rice["mean_reference"] == pytest.approx(1.0, abs=0.3) and rice["mean_target"] > 2
    cov = pd.read_csv(tmp_path / "pw" / "gene_set_coverage.tsv", sep="\t")
    assert {"gene_set", "source", "size_in_file", "size_mapped", "aliased", "status"} <= set(cov.columns)


def test_run_pathways_several_gmts_and_rank_by_lfc(de_run, tmp_path):
    d, _ = de_run
    hallmark = require_shared("genesets", "h.all.v6.2.symbols.gmt")
    mini = tmp_path / "mini.gmt"
    mini.write_text("planted_ifn\tx\tIFI27\tIFI44L\tRSAD2\tISG15\tIFIT1\tMX1\n")
    rc = main(["pathways", "--de-dir", str(d / "de"), "--gene-sets", str(hallmark), str(mini), "--outdir",
               str(tmp_path / "pw"), "--rank-by", "lfc_shrunk", "--permutations", "100"])
    assert rc == 0
    g = pd.read_csv(tmp_path / "pw" / "flare.gsea.tsv", sep="\t")
    assert set(g["source"]) <= {"h.all.v6.2.symbols", "mini"} and "mini" in set(g["source"])
    assert g.loc[g["gene_set"] == "planted_ifn", "nes"].iloc[0] > 0


def test_gmt_without_any_present_gene_is_an_error(de_run, tmp_path, capsys):
    d, _ = de_run
    mouse = tmp_path / "mouse.gmt"
    mouse.write_text("Ifn\tmouse\tIfi27l2a\tIfit1bl1\tRsad2x\n")
    with pytest.raises(InputFormatError, match=r"mouse.gmt: no gene of the 1 gene sets is present in the data"):
        score_pathways(d / "de", None, tmp_path / "pw", gene_sets=[mouse], permutations=10)
    rc = main(["pathways", "--de-dir", str(d / "de"), "--gene-sets", str(mouse), "--outdir", str(tmp_path / "pw")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err and "mouse.gmt" in err


def test_missing_de_dir_tables(tmp_path):
    with pytest.raises(ConfigError, match=r"no <contrast>.deseq2.tsv files"):
        score_pathways(tmp_path, None, tmp_path / "pw")


def test_ranking_dedups_symbols_and_rejects_bad_metric():
    de = pd.DataFrame({"gene_id": ["g1", "g2", "g3"], "stat": [1.0, -5.0, np.nan],
                       "log2FoldChange_shrunk": [0.1, 0.2, 0.3]})
    r = ranking(de, pd.Series({"g1": "A", "g2": "A", "g3": "B"}))
    assert r.to_dict() == {"A": -5.0}
    with pytest.raises(ConfigError, match="unknown --rank-by"):
        ranking(de, pd.Series(dtype=object), rank_by="pvalue")
