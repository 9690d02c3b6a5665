"""The curated gene sets as published: old BloodGen3 symbols mapped, labels and citations in SOURCES.md."""

from __future__ import annotations

from cfrna._resources import asset_path
from cfrna.de.deseq import SENSITIVITY_SIGNATURES
from cfrna.signatures.gmt import ALIASES, GeneSet, map_gene_sets, read_gmt, resolve_symbol

#: BloodGen3 M12.15 and M15.127 as published (Drinchai/BloodGen3Module R/sysdata.rda, Module_listGen3),
#: probe-only identifiers (Hs.*) left out
M12_15 = ["ABCB9", "CCNB2", "CD38", "CDC20", "CDCA5", "IGJ", "IGLL3", "KIAA0101", "LOC649923", "LOC652775",
          "MGC29506", "TNFRSF17", "TOP2A", "TXNDC5", "TYMS", "UBE2C", "UHRF1"]
M15_127 = ["CMPK2", "IFI27", "IFIT1", "IFITM3", "LAMP3", "LOC26010", "OAS1", "OAS2", "OASL", "OTOF", "SERPING1",
           "TRIM6"]


def _sets() -> dict[str, GeneSet]:
    return {s.name: s for s in read_gmt(asset_path("genesets", "cfrna_lupus.gmt"))}


def test_old_bloodgen3_symbols_are_mapped_in_the_gmt() -> None:
    sets = _sets()
    assert "MZB1" in sets["BloodGen3_M12.15_Plasma_cells"].genes
    assert "SPATS2L" in sets["BloodGen3_M15.127_IFN"].genes
    for name, published in (("BloodGen3_M12.15_Plasma_cells", M12_15), ("BloodGen3_M15.127_IFN", M15_127)):
        # every published symbol with a current gene is in the set, under its current symbol
        current = {ALIASES.get(g, g) for g in published if not g.startswith("LOC") or g in ALIASES}
        assert set(sets[name].genes) == current, name
    all_genes = {g for s in sets.values() for g in s.genes}
    assert not all_genes & set(ALIASES), "the curated file uses current symbols only"


def test_alias_table_maps_both_ways() -> None:
    assert ALIASES["MGC29506"] == "MZB1" and ALIASES["LOC26010"] == "SPATS2L"
    assert resolve_symbol("MGC29506", {"MZB1"}) == "MZB1"
    assert resolve_symbol("MZB1", {"MGC29506"}) == "MGC29506"  # an old annotation still matches the new list
    raw = GeneSet("M12.15", "bloodgen3", "published", tuple(M12_15))
    mapped, cov = map_gene_sets([raw], {"MZB1", "JCHAIN", "PCLAF", "CD38"})
    assert mapped["M12.15"] == ["CD38", "JCHAIN", "PCLAF", "MZB1"] and cov[0]["aliased"] == 3


def test_sources_cite_muse_label_m82_and_flag_yao() -> None:
    text = asset_path("genesets", "SOURCES.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `IFN_4gene_TULIP`"))
    assert "MUSE" in row and "Arthritis Rheumatol 2017" in row and "TULIP" in row
    yao = next(line for line in text.splitlines() if line.startswith("| `IFN_21gene_Yao2009`"))
    assert "not verified against the primary table" in yao.lower()
    m82 = next(line for line in text.splitlines() if line.startswith("| `BloodGen3_M8.2_Platelet`"))
    assert '"Prostanoids"' in m82 and "platelet" in m82
    # the DE sensitivity covariate is this set, and the GMT says its published label
    assert SENSITIVITY_SIGNATURES["platelet"] == "BloodGen3_M8.2_Platelet"
    assert "Prostanoids" in _sets()["BloodGen3_M8.2_Platelet"].description
    assert "MUSE" in _sets()["IFN_4gene_TULIP"].description
