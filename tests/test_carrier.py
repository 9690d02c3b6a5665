"""The AnnData carrier through the cohort stages: matrix creates ``cfrna.h5ad``, DE and pathways add to
it, the report reads it (and the QC summary and provenance files) and nothing else of the tree."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfrna.cli import main
from cfrna.errors import ConfigError, InputFormatError
from cfrna.io.tables import read_expression
from cfrna.matrix.anndata_io import build_anndata, drop_results, read_carrier, write_carrier
from tests.helpers.report import require_vendor

CONTRAST = "flare_vs_no_flare"


def _cohort(d: Path) -> dict[str, Path]:
    """12 simulated samples x 300 genes as per-sample count files, a GTF, a sheet, a QC summary (s12 fails)."""
    from cfrna.simulate import simulate_counts

    counts, samples, truth = simulate_counts(n_samples=12, n_genes=300, seed=5)
    d.mkdir(parents=True, exist_ok=True)
    gtf = d / "genes.gtf"
    lines = []
    for i, (g, name) in enumerate(zip(truth["gene_id"], truth["gene_name"], strict=True)):
        start = 1 + i * 1000
        attrs = f'gene_id "{g}"; transcript_id "T{i}"; gene_name "{name}"; gene_biotype "protein_coding";'
        lines.append(f"chr1\tsim\texon\t{start}\t{start + 499}\t.\t+\t.\t{attrs}")
    gtf.write_text("\n".join(lines) + "\n")
    sheet = samples.drop(columns=["planted_bad"]).copy()
    sheet.insert(5, "fastq_1", [f"fastq/{s}.fastq.gz" for s in sheet.index])
    sheet.insert(6, "fastq_2", "")
    sheet["strandedness"] = "reverse"
    sheet.reset_index().to_csv(d / "samplesheet.csv", index=False)
    cdir = d / "results" / "counts"
    cdir.mkdir(parents=True)
    for s in counts.columns:
        counts[[s]].rename(columns={s: "count"}).to_csv(cdir / f"{s}.counts.tsv", sep="\t")
    qc = d / "results" / "qc"
    qc.mkdir()
    status = ["pass"] * 11 + ["fail"]
    pd.DataFrame({"sample": counts.columns, "mapping_rate": 0.9, "status": status,
                  "reasons": ["" if s == "pass" else "mapping_rate<0.5" for s in status],
                  "excluded": [s == "fail" for s in status]}).to_csv(qc / "qc_summary.tsv", sep="\t", index=False)
    (d / "contrasts.csv").write_text("id,variable,reference,target\nflare_vs_no_flare,flare,no_flare,flare\n")
    info = d / "results" / "pipeline_info"
    info.mkdir()
    (info / "params.json").write_text(json.dumps({"cfrna_version": "0.2.0", "params": {"title": "Carrier cohort"}}))
    (info / "software_versions.yml").write_text("cfrna:\n  samtools: 1.10\n  cfrna: '0.2.0'\n")
    return {"dir": d, "res": d / "results", "gtf": gtf, "sheet": d / "samplesheet.csv", "counts": counts,
            "contrasts": d / "contrasts.csv"}


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    """matrix -> de -> pathways stage functions, each adding to the one h5ad."""
    from cfrna.de.stage import DeSettings, run_de
    from cfrna.matrix.stage import run_matrix
    from cfrna.pathways.stage import PathwaysSettings, run_pathways

    c = _cohort(tmp_path_factory.mktemp("carrier"))
    res = c["res"]
    m = run_matrix(samplesheet=c["sheet"], gtf=c["gtf"], counts_dir=res / "counts", qc_summary=res / "qc" / "qc_summary.tsv",
                   outdir=res / "matrix")
    h5ad = m.outputs["h5ad"]
    c["after_matrix"] = read_carrier(h5ad)
    de = run_de(counts=m.outputs["gene_counts"], samplesheet=c["sheet"], contrasts=c["contrasts"],
                samples_table=m.outputs["samples_table"], gtf=c["gtf"], h5ad=h5ad, outdir=res / "de",
                settings=DeSettings(sensitivity=False))
    c["after_de"] = read_carrier(h5ad)
    pw = run_pathways(de_dir=res / "de", gtf=c["gtf"], samplesheet=c["sheet"], samples_table=m.outputs["samples_table"],
                      h5ad=h5ad, outdir=res / "pathways", settings=PathwaysSettings(permutations=50))
    c.update(matrix=m, de=de, pathways=pw, h5ad=h5ad)
    return c


def test_matrix_creates_the_carrier(chain) -> None:
    a = chain["after_matrix"]
    assert chain["matrix"].outputs["h5ad"] == chain["res"] / "matrix" / "cfrna.h5ad"
    counts = chain["counts"]
    assert list(a.obs_names) == list(counts.columns) and list(a.var_names) == list(counts.index)
    np.testing.assert_array_equal(a.layers["counts"], counts.T.to_numpy())
    assert a.obs.loc["s12", "qc_status"] == "fail" and bool(a.obs.loc["s12", "excluded"])
    assert not bool(a.obs.loc["s01", "excluded"])
    assert a.var.loc[counts.index[0], "gene_name"] == "IFI27"
    assert isinstance(a.uns["samples"], pd.DataFrame) and isinstance(a.uns["qc_summary"], pd.DataFrame)
    assert "de" not in a.uns and not a.varm and "normalized" not in a.layers
    assert chain["matrix"].summary == {"n_genes": 300, "n_samples": 12, "n_excluded": 1}


def test_de_adds_layers_tables_design_and_pca(chain) -> None:
    a, res = chain["after_de"], chain["res"]
    norm = read_expression(res / "de" / "normalized_counts.tsv")
    layer = pd.DataFrame(a.layers["normalized"], index=a.obs_names, columns=a.var_names)
    np.testing.assert_array_equal(layer.loc[norm.columns, norm.index].to_numpy(), norm.T.to_numpy())
    assert np.isnan(layer.loc["s12"]).all()  # excluded by QC: not in the DE tables
    assert "vst" in a.layers and set(a.uns["de"]) == {CONTRAST} and list(a.varm) == [f"de_{CONTRAST}"]
    table = pd.read_csv(res / "de" / f"{CONTRAST}.deseq2.tsv", sep="\t")
    np.testing.assert_allclose(a.uns["de"][CONTRAST]["padj"].to_numpy(dtype=float), table["padj"], equal_nan=True)
    assert list(a.uns["de_design"]["contrast"]) == [CONTRAST]
    sf = pd.read_csv(res / "de" / "size_factors.tsv", sep="\t", index_col=0)["size_factor"]
    np.testing.assert_allclose(a.obs.loc[sf.index, "size_factor"], sf)
    assert len(a.uns["pca"]["pc1"]) == 11 and a.uns["pca"]["n_genes"] > 1
    assert chain["de"].outputs["h5ad"] == chain["h5ad"]


def test_pathways_adds_gsea_and_scores(chain) -> None:
    a = read_carrier(chain["h5ad"])
    res = chain["res"]
    gsea = pd.read_csv(res / "pathways" / f"{CONTRAST}.gsea.tsv", sep="\t")
    assert list(a.uns["gsea"][CONTRAST]["gene_set"]) == list(gsea["gene_set"])
    scores = pd.read_csv(res / "pathways" / "signature_scores.tsv", sep="\t", index_col=0)
    got = pd.DataFrame(a.obsm["signature_scores"]).loc[scores.index, scores.columns]
    np.testing.assert_allclose(got.to_numpy(dtype=float), scores.to_numpy(dtype=float), rtol=1e-6, equal_nan=True)
    assert isinstance(a.uns["signature_association"], pd.DataFrame)
    # what the stages added equals what is built from the tables they wrote (the Nextflow path)
    b = build_anndata(res)
    for name in ("counts", "normalized", "vst"):
        np.testing.assert_array_equal(a.layers[name], b.layers[name])
    pd.testing.assert_frame_equal(a.uns["de"][CONTRAST], b.uns["de"][CONTRAST], check_dtype=False)
    pd.testing.assert_series_equal(a.obs["size_factor"], b.obs["size_factor"])
    assert a.uns["pca"]["pc1"].tolist() == list(b.uns["pca"]["pc1"])


def test_report_reads_declared_inputs_only(chain, tmp_path: Path) -> None:
    """The report of the h5ad + QC summary + provenance files, with de/ and pathways/ gone."""
    require_vendor()
    from cfrna.report.stage import run_report

    res = tmp_path / "copy"
    shutil.copytree(chain["res"], res, ignore=shutil.ignore_patterns("de", "pathways", "counts"))
    out = run_report(h5ad=res / "matrix" / "cfrna.h5ad", qc_summary=res / "qc" / "qc_summary.tsv",
                     params_json=res / "pipeline_info" / "params.json",
                     software_versions=res / "pipeline_info" / "software_versions.yml", outdir=res / "report")
    html = out.outputs["report_html"].read_text(encoding="utf-8")
    payload = json.loads(re.search(r'<script type="application/json" id="cfrna-data">(.*?)</script>', html, re.S)[1])
    assert [c["id"] for c in payload["contrasts"]] == [CONTRAST]
    assert payload["pca"] is not None and payload["pathways"][CONTRAST]["rows"]
    assert payload["meta"]["title"] == "Carrier cohort"
    assert payload["provenance"]["software_versions"]["cfrna"]["samtools"] == "1.10"  # text, not the number 1.1
    assert out.summary["contrasts"] == [CONTRAST]
    a = read_carrier(res / "matrix" / "cfrna.h5ad")
    assert a.uns["provenance"]["params"]["params"]["title"] == "Carrier cohort"
    assert "input_checksums" not in a.uns["provenance"]  # not given: not invented


def test_report_cli_declared_inputs(chain, tmp_path: Path, capsys) -> None:
    require_vendor()
    res = chain["res"]
    h5ad = tmp_path / "cfrna.h5ad"
    shutil.copy(chain["h5ad"], h5ad)
    rc = main(["report", "--h5ad", str(h5ad), "--qc-summary", str(res / "qc" / "qc_summary.tsv"),
               "--outdir", str(tmp_path / "report"), "--no-anndata", "--title", "T"])
    assert rc == 0 and capsys.readouterr().out.strip() == str(tmp_path / "report" / "index.html")
    assert "provenance" not in read_carrier(h5ad).uns or not read_carrier(h5ad).uns["provenance"]
    assert main(["report", "--h5ad", str(h5ad)]) == 2
    assert "--qc-summary and --outdir" in capsys.readouterr().err
    assert main(["report", "--h5ad", str(tmp_path / "none.h5ad"), "--qc-summary", str(res / "qc" / "qc_summary.tsv"),
                 "--outdir", str(tmp_path / "r2")]) == 2
    assert "none.h5ad" in capsys.readouterr().err


def test_carrier_errors_and_stale_results(chain, tmp_path: Path) -> None:
    from cfrna.de.stage import run_de

    with pytest.raises(ConfigError, match=r"missing\.h5ad.*AnnData is missing.*cfrna matrix"):
        read_carrier(tmp_path / "missing.h5ad")
    bad = tmp_path / "bad.h5ad"
    bad.write_text("not hdf5")
    with pytest.raises(InputFormatError, match=r"bad\.h5ad.*not a readable h5ad"):
        read_carrier(bad)
    with pytest.raises(ConfigError, match="alpha must be between 0 and 1"):
        run_de(counts=chain["res"] / "matrix" / "gene_counts.tsv", samplesheet=chain["sheet"],
               contrasts=chain["contrasts"], outdir=tmp_path / "de", settings=_de_settings(alpha=2.0))
    a = read_carrier(chain["h5ad"])
    assert drop_results(a)
    assert "de" not in a.uns and not list(a.varm) and "gsea" not in a.uns and "signature_scores" not in a.obsm
    assert "counts" in a.layers and not drop_results(a)


def _de_settings(**kw):
    from cfrna.de.stage import DeSettings

    return DeSettings(**kw)


def test_de_and_pathways_write_to_h5ad_out(chain, tmp_path: Path) -> None:
    """--h5ad-out (a Nextflow task cannot rewrite a staged input): the input carrier is left as it was."""

    res = chain["res"]
    src = tmp_path / "in" / "cfrna.h5ad"
    src.parent.mkdir()
    write_carrier(chain["after_matrix"], src)
    before = src.read_bytes()
    out = tmp_path / "cfrna.h5ad"
    assert main(["de", "--counts", str(res / "matrix" / "gene_counts.tsv"), "--samplesheet", str(chain["sheet"]),
                 "--contrasts", str(chain["contrasts"]), "--samples", str(res / "matrix" / "samples.tsv"),
                 "--gtf", str(chain["gtf"]), "--no-sensitivity", "--outdir", str(tmp_path / "de"),
                 "--h5ad", str(src), "--h5ad-out", str(out)]) == 0
    assert src.read_bytes() == before
    assert "de" not in read_carrier(src).uns
    a = read_carrier(out)
    assert list(a.uns["de"]) == [CONTRAST] and f"de_{CONTRAST}" in a.varm and "vst" in a.layers
    np.testing.assert_allclose(a.layers["vst"], chain["after_de"].layers["vst"])
    de_out = out.read_bytes()
    out2 = tmp_path / "pw" / "cfrna.h5ad"
    assert main(["pathways", "--de-dir", str(tmp_path / "de"), "--gtf", str(chain["gtf"]),
                 "--samplesheet", str(chain["sheet"]), "--samples", str(res / "matrix" / "samples.tsv"),
                 "--permutations", "50", "--outdir", str(tmp_path / "pathways"),
                 "--h5ad", str(out), "--h5ad-out", str(out2)]) == 0
    assert out.read_bytes() == de_out
    b = read_carrier(out2)
    assert CONTRAST in b.uns["gsea"] and "signature_scores" in b.obsm and list(b.uns["de"]) == [CONTRAST]


def test_h5ad_out_bad_paths(chain, tmp_path: Path, capsys) -> None:
    from cfrna.de.stage import run_de
    from cfrna.pathways.stage import run_pathways

    res = chain["res"]
    de_args = ["de", "--counts", str(res / "matrix" / "gene_counts.tsv"), "--samplesheet", str(chain["sheet"]),
               "--contrasts", str(chain["contrasts"]), "--outdir", str(tmp_path / "de")]
    # a folder as --h5ad-out: refused before any fit, naming it
    (tmp_path / "adir").mkdir()
    assert main([*de_args, "--h5ad", str(chain["h5ad"]), "--h5ad-out", str(tmp_path / "adir")]) == 2
    err = capsys.readouterr().err
    assert "adir" in err and "--h5ad-out is a folder" in err
    assert not (tmp_path / "de").exists()
    # --h5ad-out without --h5ad
    with pytest.raises(ConfigError, match="--h5ad-out needs --h5ad"):
        run_pathways(de_dir=res / "de", gtf=chain["gtf"], h5ad_out=tmp_path / "x.h5ad", outdir=tmp_path / "pw")
    # a missing input carrier: one line naming it; nothing written to --h5ad-out
    with pytest.raises(ConfigError, match=r"none\.h5ad.*AnnData is missing"):
        run_de(counts=res / "matrix" / "gene_counts.tsv", samplesheet=chain["sheet"], contrasts=chain["contrasts"],
               h5ad=tmp_path / "none.h5ad", h5ad_out=tmp_path / "o.h5ad", outdir=tmp_path / "de2",
               settings=_de_settings(sensitivity=False))
    assert not (tmp_path / "o.h5ad").exists()


def test_report_h5ad_out_leaves_the_input(chain, tmp_path: Path, capsys) -> None:
    require_vendor()
    res = chain["res"]
    src = tmp_path / "in" / "cfrna.h5ad"
    src.parent.mkdir()
    shutil.copy(chain["h5ad"], src)
    before = src.read_bytes()
    out = tmp_path / "cfrna.h5ad"
    assert main(["report", "--h5ad", str(src), "--h5ad-out", str(out), "--qc-summary", str(res / "qc" / "qc_summary.tsv"),
                 "--params", str(res / "pipeline_info" / "params.json"), "--outdir", str(tmp_path / "report")]) == 0
    assert src.read_bytes() == before
    a = read_carrier(out)
    assert a.uns["provenance"]["params"]["params"]["title"] == "Carrier cohort" and CONTRAST in a.uns["gsea"]
    capsys.readouterr()
    assert main(["report", "--results", str(res), "--h5ad-out", str(out)]) == 2
    assert "either --results or --h5ad" in capsys.readouterr().err
