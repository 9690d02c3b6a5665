"""Report data extraction, HTML assembly and CLI (no browser: see test_report_browser.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfrna.cli import main
from cfrna.errors import InputFormatError, ToolMissingError
from cfrna.matrix.pca import pca
from cfrna.report import html as rhtml
from cfrna.report import report_folder
from cfrna.report.data import collect, decode, plot_subset
from tests.helpers.report import PLANTED_DOWN, PLANTED_UP, build_results, require_vendor


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return build_results(tmp_path_factory.mktemp("res"))


@pytest.fixture(autouse=True)
def _vendored(request) -> None:
    if request.node.name != "test_vendor_missing_is_a_clear_error":
        require_vendor()


def _payload_from_html(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="cfrna-data">(.*?)</script>', text, re.S)
    assert m, "payload script missing"
    return json.loads(m.group(1))


def test_collect_de_columns_match_tables(results: Path) -> None:
    d = collect(results)
    assert [c["id"] for c in d["contrasts"]] == ["flare_vs_no_flare", "visit_1"]
    c = d["contrasts"][0]
    de = pd.read_csv(results / "de" / "flare_vs_no_flare.deseq2.tsv", sep="\t")
    assert c["g"] is None  # rows cover genes 0..n-1 in gene order: no index column embedded
    g = np.arange(c["n"])
    de = de.set_index("gene_id").loc[d["genes"]["id"]].reset_index()  # stored in gene order
    np.testing.assert_allclose(decode(c["padj"]), de["padj"], rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(decode(c["lfc_shrunk"]), de["log2FoldChange_shrunk"], atol=5e-4 + 1e-9)
    np.testing.assert_allclose(decode(c["lfc"]), de["log2FoldChange"], atol=5e-4 + 1e-9)
    np.testing.assert_allclose(decode(c["baseMean"]), de["baseMean"], rtol=1e-6)
    # planted genes are significant and named
    names = [d["genes"]["name"][i] for i in g]
    sig = {n for n, p in zip(names, de["padj"], strict=True) if p < 0.05}
    assert set(PLANTED_UP) <= sig
    assert c["n_sig"] == int((de["padj"] < 0.05).sum())
    # the plotted subset contains every significant gene
    plot = set(decode(c["plot"]).tolist())
    assert {i for i, p in enumerate(de["padj"]) if p < 0.1} <= plot


def test_collect_expression_is_bounded_and_quantized(results: Path) -> None:
    d = collect(results, expr_top_n=20, expr_max_genes=30)
    e = d["expr"]
    g = decode(e["g"])
    n_s = len(e["samples"])
    assert 0 < len(g) <= 30
    names = [d["genes"]["name"][i] for i in g]
    assert set(PLANTED_UP + PLANTED_DOWN) <= set(names[:10])  # significant genes come first
    norm = pd.read_csv(results / "de" / "normalized_counts.tsv", sep="\t", index_col=0)
    vals = decode(e["values"]).reshape(len(g), n_s) / e["scale"]
    k = names.index("IFI27")
    expect = np.log2(norm.loc[d["genes"]["id"][g[k]], e["samples"]].to_numpy() + 1)
    assert np.max(np.abs(vals[k] - expect)) <= 0.05 + 1e-9


def test_collect_qc_samples_provenance(results: Path) -> None:
    d = collect(results, title="T")
    assert d["meta"]["title"] == "T"
    assert d["excluded"] == ["P005_V1"]
    cols = d["qc"]["columns"]
    assert cols[:4] == ["sample", "status", "reasons", "excluded"]
    statuses = [r[1] for r in d["qc"]["rows"]]
    assert statuses.count("fail") == 1 and statuses.count("warn") == 1
    assert {"patient_id", "visit_month", "flare"} <= set(d["samples"]["columns"])
    assert d["provenance"]["params"]["aligner"] == "mappy"
    assert d["provenance"]["software_versions"]["CFRNA_COUNT"]["featureCounts"] == "2.0.6"
    assert len(d["provenance"]["checksums"]["rows"]) == 2
    assert set(d["pathways"]) == {"flare_vs_no_flare", "visit_1"}
    assert d["signatures"]["scores"]["columns"] == ["sample", "IFN", "erythroid"]
    assert d["notes"] == []


def test_contrast_order_follows_design(tmp_path: Path) -> None:
    res = build_results(tmp_path / "r", n_contrasts=2)
    pd.DataFrame(
        {"contrast": ["visit_1", "flare_vs_no_flare"], "formula": ["~ v", "~ flare"],
         "reference_samples": ["a;b", "c;d"]}
    ).to_csv(res / "de" / "design.tsv", sep="\t", index=False)
    d = collect(res)
    assert [c["id"] for c in d["contrasts"]] == ["visit_1", "flare_vs_no_flare"]
    assert d["design"]["columns"] == ["contrast", "formula"]  # long sample lists stay in the TSV


def test_encodings_keep_tiny_pvalues_nan_and_subsets(tmp_path: Path) -> None:
    from cfrna.report.data import i16_milli, nlog10

    p = np.array([1e-250, 1e-40, 0.049999, 1.0, np.nan])
    back = decode(nlog10(p))
    np.testing.assert_allclose(back[:4], p[:4], rtol=1e-5)
    assert np.isnan(back[4])
    lfc = decode(i16_milli([1.23456, -40.0, np.nan, 0.0]))
    np.testing.assert_allclose(lfc[[0, 1, 3]], [1.235, -32.767, 0.0])
    assert np.isnan(lfc[2])
    # a DE table covering a subset of genes in another order keeps an explicit gene index
    res = build_results(tmp_path / "r", n_contrasts=1)
    de_path = res / "de" / "flare_vs_no_flare.deseq2.tsv"
    de = pd.read_csv(de_path, sep="\t").iloc[::-2]
    de.to_csv(de_path, sep="\t", index=False)
    d = collect(res)
    c = d["contrasts"][0]
    ids = [d["genes"]["id"][i] for i in decode(c["g"])]
    assert sorted(ids) == sorted(de["gene_id"]) and c["n"] == len(de)
    got = dict(zip(ids, decode(c["padj"]), strict=True))
    for gid, pv in zip(de["gene_id"], de["padj"], strict=True):
        assert (np.isnan(pv) and np.isnan(got[gid])) or abs(got[gid] - pv) <= 1e-5 * pv


def test_pca_separates_planted_groups() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (600, 10))
    x[:50, 5:] += 3.0  # 50 genes separate samples 0-4 from 5-9
    out = pca(pd.DataFrame(x, columns=[f"s{i}" for i in range(10)]), n_top=500)
    assert out is not None and out["n_genes"] == 500
    pc1 = np.array(out["pc1"])
    assert np.all(np.sign(pc1[:5]) == np.sign(pc1[0])) and np.all(np.sign(pc1[5:]) == -np.sign(pc1[0]))
    assert out["explained"][0] > 0.8
    assert pca(pd.DataFrame(x[:, :2])) is None  # fewer than 3 samples


def test_plot_subset_thins_background_keeps_significant() -> None:
    rng = np.random.default_rng(1)
    n = 60_000
    lfc = rng.normal(0, 0.5, n)
    padj = rng.uniform(0, 1, n)
    padj[:300] = 1e-5
    padj[300:400] = np.nan
    bm = rng.lognormal(3, 2, n)
    idx = plot_subset(lfc, padj, bm, sig_padj=0.1, max_sig=4000, bins=120)
    assert set(range(300)) <= set(idx.tolist())
    assert len(idx) < 15_000
    capped = plot_subset(lfc, padj, bm, sig_padj=0.1, max_sig=100, bins=10)
    assert len(set(capped.tolist()) & set(range(300))) >= 100


def test_report_html_is_self_contained(results: Path) -> None:
    out = report_folder(results, title="Trial </script><b>x</b>", anndata=False)
    assert out == results / "report" / "index.html"
    text = out.read_text(encoding="utf-8")
    assert not re.search(r'src\s*=\s*["\']?(https?:)?//', text, re.I)
    assert not re.search(r'<link[^>]+href\s*=\s*["\']?(https?:)?//', text, re.I)
    assert not re.search(r"<(img|iframe|link)\b[^>]*(src|href)\s*=", text, re.I)
    assert "@import" not in text.split("<script", 1)[0]
    assert "connect-src 'none'" in text
    # title is escaped in HTML and the payload cannot end its script element
    assert "Trial &lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in text
    payload = _payload_from_html(out)
    assert payload["meta"]["title"] == "Trial </script><b>x</b>"
    assert text.count("<script") == text.count("</script>") == 3 + 2  # + contrast 2 and expression blocks
    assert 'id="cfrna-expr" data-parts="1"' in text
    assert (out.stat().st_mode & 0o044) == 0o044  # readable by others: it is meant to be shared


def test_missing_required_files_are_named(tmp_path: Path) -> None:
    res = build_results(tmp_path / "a", with_de=False, with_pathways=False, with_info=False)
    (res / "qc" / "qc_summary.tsv").unlink()
    with pytest.raises(InputFormatError, match=r"qc_summary\.tsv.*required QC summary is missing.*cfrna qc"):
        collect(res)
    res = build_results(tmp_path / "b", with_de=False, with_pathways=False, with_info=False)
    (res / "matrix" / "gene_counts.tsv").unlink()
    with pytest.raises(InputFormatError, match=r"gene_counts\.tsv.*missing"):
        collect(res)
    with pytest.raises(InputFormatError, match="results folder not found"):
        collect(tmp_path / "nope")


def test_malformed_inputs_are_errors(tmp_path: Path) -> None:
    res = build_results(tmp_path / "r", n_contrasts=1)
    de = res / "de" / "flare_vs_no_flare.deseq2.tsv"
    pd.read_csv(de, sep="\t").drop(columns=["padj"]).to_csv(de, sep="\t", index=False)
    with pytest.raises(InputFormatError, match=r"flare_vs_no_flare\.deseq2\.tsv.*lacks column\(s\) padj"):
        collect(res)
    res = build_results(tmp_path / "s", n_contrasts=1)
    (res / "pipeline_info" / "params.json").write_text("{not json")
    with pytest.raises(InputFormatError, match=r"params\.json.*not valid JSON"):
        collect(res)
    res = build_results(tmp_path / "v", n_contrasts=1)
    norm = res / "de" / "normalized_counts.tsv"
    lines = norm.read_text().splitlines()
    cells = lines[1].split("\t")
    lines[1] = "\t".join([cells[0], "abc", *cells[2:]])
    norm.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFormatError, match=r"normalized_counts\.tsv.*non-numeric"):
        collect(res)
    res = build_results(tmp_path / "t", n_contrasts=1)
    (res / "qc" / "qc_summary.tsv").write_text("sample\tstatus\n")
    with pytest.raises(InputFormatError, match="no samples"):
        collect(res)
    res = build_results(tmp_path / "u", n_contrasts=1)
    (res / "qc" / "qc_summary.tsv").write_text("sample\tmapping_rate\nA\t0.9\n")
    with pytest.raises(InputFormatError, match="lacks column.*status"):
        collect(res)


def test_optional_pieces_absent_degrade_with_notes(tmp_path: Path) -> None:
    res = build_results(tmp_path / "r", with_de=False, with_pathways=False, with_info=False)
    (res / "matrix" / "gene_annotation.tsv").unlink()
    d = collect(res)
    assert d["contrasts"] == [] and d["expr"] is None and d["pca"] is None and d["pathways"] == {}
    notes = " ".join(d["notes"])
    for word in ("No differential expression", "normalized_counts", "vst", "pipeline_info", "gene_annotation"):
        assert word in notes
    assert report_folder(res, anndata=False).is_file()


def test_vendor_missing_is_a_clear_error(results: Path, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(rhtml, "VENDOR", tmp_path / "empty")
    with pytest.raises(ToolMissingError, match="run scripts/vendor_js.sh"):
        report_folder(results, anndata=False)


def test_cli_report(results: Path, tmp_path: Path, capsys) -> None:
    assert main(["report", "--results", str(results), "--title", "CLI", "--no-anndata"]) == 0
    assert capsys.readouterr().out.strip() == str(results / "report" / "index.html")
    assert _payload_from_html(results / "report" / "index.html")["meta"]["title"] == "CLI"
    assert main(["report", "--results", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cfrna report: error:") and "results folder not found" in err
    assert main(["report"]) == 2


# ------------------------------------------------------------------ this run's contrasts and samples only
def _add_stale(res: Path) -> None:
    """Tables an older run into the same folder left behind: a removed contrast `old` and a stale sample."""
    shutil.copy(res / "de" / "flare_vs_no_flare.deseq2.tsv", res / "de" / "old.deseq2.tsv")
    shutil.copy(res / "pathways" / "flare_vs_no_flare.gsea.tsv", res / "pathways" / "old.gsea.tsv")


def test_stale_tables_are_not_this_runs(tmp_path: Path) -> None:
    res = build_results(tmp_path / "r")
    _add_stale(res)
    qc = pd.read_csv(res / "qc" / "qc_summary.tsv", sep="\t")
    stale_qc = qc.iloc[[0]].assign(sample="GONE_V0", status="pass")
    pd.concat([qc, stale_qc]).to_csv(res / "qc" / "qc_summary.tsv", sep="\t", index=False)
    d = collect(res)
    assert [c["id"] for c in d["contrasts"]] == ["flare_vs_no_flare", "visit_1"]
    assert list(d["pathways"]) == ["flare_vs_no_flare", "visit_1"]
    assert "GONE_V0" not in [r[0] for r in d["qc"]["rows"]]
    assert d["meta"]["n_samples"] == 12
    assert any("GONE_V0" in n and "samples.tsv" in n for n in d["notes"])
    text = report_folder(res, anndata=False).read_text(encoding="utf-8")
    assert '"id":"old"' not in text and '"old":{' not in text  # neither a DE nor a GSEA block
    assert text.count('id="cfrna-contrast-') == 1  # the second declared contrast only


def test_contrasts_come_from_design_tsv(tmp_path: Path) -> None:
    res = build_results(tmp_path / "r")
    design = pd.read_csv(res / "de" / "design.tsv", sep="\t")
    design.iloc[[0]].to_csv(res / "de" / "design.tsv", sep="\t", index=False)  # visit_1 not in this run
    d = collect(res)
    assert [c["id"] for c in d["contrasts"]] == ["flare_vs_no_flare"] and list(d["pathways"]) == ["flare_vs_no_flare"]
    (res / "de" / "flare_vs_no_flare.deseq2.tsv").unlink()
    with pytest.raises(InputFormatError, match=r"flare_vs_no_flare\.deseq2\.tsv.*listed in de/design\.tsv.*cfrna de"):
        collect(res)
    (res / "de" / "design.tsv").unlink()
    d = collect(res)
    assert d["contrasts"] == [] and any("design.tsv absent" in n for n in d["notes"])


def test_contrast_design_top_genes_and_design_table(results: Path) -> None:
    d = collect(results)
    c = d["contrasts"][0]
    assert c["design"]["target"] == "flare" and c["design"]["reference"] == "no_flare"
    assert c["design"]["excluded"] == ["P005_V1"] and c["design"]["n_target"] == 6
    names = d["genes"]["name"]
    assert {names[g] for g, _, _ in c["top"]["up"]} >= set(PLANTED_UP)
    assert names[c["top"]["down"][0][0]] == "HBB"
    assert all(lfc > 0 for _, lfc, _ in c["top"]["up"]) and all(lfc < 0 for _, lfc, _ in c["top"]["down"])
    padjs = [p for _, _, p in c["top"]["up"]]
    assert padjs == sorted(padjs)
    cols = d["design"]["columns"]
    assert "excluded" in cols and not any(col.endswith("_samples") for col in cols)
    row = dict(zip(cols, d["design"]["rows"][0], strict=True))
    assert row["excluded"] == "P005_V1" and row["sensitivity"] == "adjusted design not fittable"
    assert d["meta"]["gsea_permutations"] == 1000
    # a design.tsv of an older version (`id (reason)` cells) still gives ids only
    from cfrna.report.data import _sample_ids

    assert _sample_ids("s09 (warn: a; fail: b=0.4 (x > 3));s10 (fail: hemolysis)") == ["s09", "s10"]
    assert _sample_ids("s01;s02") == ["s01", "s02"] and _sample_ids(float("nan")) == []


def test_default_title_names_the_run_not_the_folder(tmp_path: Path) -> None:
    from cfrna.report.data import default_title

    res = build_results(tmp_path / "some_folder_name")
    assert "some_folder_name" not in collect(res)["meta"]["title"]
    samples = pd.DataFrame({"sample": ["a", "b"], "trial": ["BLISS-SLE", "BLISS-SLE"]})
    assert default_title(None, samples) == "BLISS-SLE — cfrna report"
    assert default_title({"params": {"title": "Lupus flare cohort", "samplesheet": "s.csv"}}, samples) == "Lupus flare cohort"
    assert default_title({"params": {"samplesheet": "lupus_2024.csv"}}, samples[["sample"]]) == "cfrna report — lupus_2024.csv"
    assert default_title({"params": {"input": "/data/sheet_v2.csv"}}, samples[["sample"]]) == "cfrna report — sheet_v2.csv"
    assert default_title(None, samples[["sample"]]) == "cfrna report"


# ------------------------------------------------------------------ a real `cfrna run` (shared)
@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_real_run_qc_reasons_once_and_ids_elsewhere(pipeline_run: Path) -> None:
    """QC reasons are printed once (the QC stage); design.tsv and the report list sample ids only."""
    qc = pd.read_csv(pipeline_run / "qc" / "qc_summary.tsv", sep="\t", dtype={"sample": str})
    failed = qc[qc["status"] == "fail"]
    assert len(failed) >= 1
    log = (pipeline_run / "pipeline_info" / "cfrna.log").read_text(encoding="utf-8")
    for reasons in failed["reasons"]:
        assert log.count(reasons) == 1, reasons
    assert max(len(line) for line in log.splitlines() if "excluded by QC" in line) < 300
    design = pd.read_csv(pipeline_run / "de" / "design.tsv", sep="\t", dtype=str).fillna("")
    for cell in design["excluded_samples"]:
        assert set(cell.split(";")) <= set(failed["sample"]), cell  # ids, no reason text
    d = collect(pipeline_run)
    assert [c["id"] for c in d["contrasts"]] == design["contrast"].tolist()
    assert all(set(c["design"]["excluded"]) <= set(failed["sample"]) for c in d["contrasts"])
    assert len(json.dumps(d["design"])) < 3000


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_real_run_stale_contrast_not_in_report_or_h5ad(pipeline_run: Path, tmp_path: Path) -> None:
    import anndata as ad

    res = tmp_path / "results"
    shutil.copytree(pipeline_run, res, ignore=shutil.ignore_patterns("trimmed", "alignment", "counts"))
    first = pd.read_csv(res / "de" / "design.tsv", sep="\t", dtype=str)["contrast"].iloc[0]
    shutil.copy(res / "de" / f"{first}.deseq2.tsv", res / "de" / "old.deseq2.tsv")
    shutil.copy(res / "pathways" / f"{first}.gsea.tsv", res / "pathways" / "old.gsea.tsv")
    out = report_folder(res, anndata=True)
    payload = _payload_from_html(out)
    ids = [c["id"] for c in payload["contrasts"]]
    assert "old" not in ids and "old" not in payload["pathways"] and first in ids
    a = ad.read_h5ad(res / "matrix" / "cfrna.h5ad")
    assert "old" not in a.uns["de"] and "old" not in a.uns["gsea"] and "de_old" not in a.varm
    assert set(a.uns["de"]) == set(ids)
    samples = pd.read_csv(res / "matrix" / "samples.tsv", sep="\t", dtype={"sample": str})["sample"]
    assert set(a.obs_names) <= set(samples)


def test_run_title_is_recorded_and_used(tmp_path: Path) -> None:
    import argparse

    from cfrna.pipeline._cli import add_run_arguments, options_from_args

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    args = parser.parse_args(["--samplesheet", "s.csv", "--fasta", "g.fa", "--gtf", "g.gtf", "--outdir", "o",
                              "--title", "Lupus flare cohort, interim"])
    res = build_results(tmp_path / "r")
    params = {"cfrna_version": "0.1.0", "params": options_from_args(args).params()}
    (res / "pipeline_info" / "params.json").write_text(json.dumps(params))
    assert collect(res)["meta"]["title"] == "Lupus flare cohort, interim"
    assert collect(res, title="Given")["meta"]["title"] == "Given"  # cfrna report --title wins
