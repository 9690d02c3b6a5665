"""Matrix merge and the AnnData with everything."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfrna.cli import main
from cfrna.errors import EmptyResultError, InputFormatError
from cfrna.matrix import read_counts_table, write_anndata
from cfrna.matrix.stage import run_matrix

GTF = """chr1\tt\tgene\t1\t500\t.\t+\t.\tgene_id "G1"; gene_name "IFI27"; gene_biotype "protein_coding";
chr1\tt\texon\t1\t100\t.\t+\t.\tgene_id "G1"; transcript_id "T1"; gene_name "IFI27"; gene_biotype "protein_coding";
chr1\tt\texon\t400\t500\t.\t+\t.\tgene_id "G1"; transcript_id "T1"; gene_name "IFI27"; gene_biotype "protein_coding";
chr1\tt\texon\t1000\t1200\t.\t-\t.\tgene_id "G2"; transcript_id "T2"; gene_name "HBB"; gene_biotype "protein_coding";
chrM\tt\texon\t1\t300\t.\t+\t.\tgene_id "G3"; transcript_id "T3"; gene_name "MT-CO1"; gene_type "protein_coding";
"""


@pytest.fixture
def run_dir(tmp_path: Path) -> dict:
    (tmp_path / "genes.gtf").write_text(GTF)
    for s in ("S1", "S2", "S3"):
        with gzip.open(tmp_path / f"{s}.fastq.gz", "wt") as fh:
            fh.write("@r\nA\n+\nI\n")
    (tmp_path / "sheet.csv").write_text(
        "sample,patient_id,visit_month,arm,flare,fastq_1,fastq_2,strandedness,egfr\n"
        "S1,P1,0,steroid_tapering,no_flare,S1.fastq.gz,,reverse,90\n"
        "S2,P1,6,steroid_tapering,flare,S2.fastq.gz,,reverse,85.5\n"
        "S3,P2,0,steroid_maintenance,no_flare,S3.fastq.gz,,reverse,70\n"
    )
    res = tmp_path / "results"
    cdir = res / "counts"
    cdir.mkdir(parents=True)
    for i, s in enumerate(("S1", "S2")):
        (cdir / f"{s}.counts.tsv").write_text(f"gene_id\tcount\nG1\t{10 + i}\nG2\t{5 * i}\nG3\t7\n")
    qc = res / "qc"
    qc.mkdir()
    (qc / "qc_summary.tsv").write_text(
        "sample\tmapping_rate\tmapping_rate_status\tstatus\treasons\texcluded\n"
        "S1\t0.9\tpass\tpass\t\tfalse\nS2\t0.2\tfail\tfail\tmapping_rate=0.2 < 0.5\ttrue\n"
    )
    return {"dir": tmp_path, "res": res, "gtf": tmp_path / "genes.gtf", "sheet": tmp_path / "sheet.csv"}


def test_run_matrix_and_anndata(run_dir):
    res = run_dir["res"]
    out = run_matrix(samplesheet=run_dir["sheet"], gtf=run_dir["gtf"], counts_dir=res / "counts", outdir=res / "matrix",
                     qc_summary=res / "qc" / "qc_summary.tsv", sample_errors={"S3": "align: no reads"}).summary
    assert out["n_samples"] == 2 and out["n_genes"] == 3
    counts = read_counts_table(res / "matrix" / "gene_counts.tsv")
    assert list(counts.columns) == ["S1", "S2"]
    assert counts.loc["G1"].tolist() == [10, 11]
    samples = pd.read_csv(res / "matrix" / "samples.tsv", sep="\t", index_col=0)
    # nothing dropped silently: S3 stays in the sample table, excluded, with its reason
    assert samples.loc["S3", "excluded"]
    assert "align: no reads" in samples.loc["S3", "qc_reasons"]
    assert samples.loc["S2", "excluded"] and not samples.loc["S1", "excluded"]
    assert samples.loc["S2", "egfr"] == 85.5

    de = res / "de"
    de.mkdir()
    pd.DataFrame({"gene_id": ["G1", "G2"], "gene_name": ["IFI27", "HBB"], "baseMean": [10.0, 3.0],
                  "log2FoldChange": [1.0, -0.5], "lfcSE": [0.1, 0.2], "stat": [10.0, -2.5],
                  "pvalue": [1e-5, 0.01], "padj": [2e-5, 0.01], "log2FoldChange_shrunk": [0.9, -0.3]}
                 ).to_csv(de / "flare.deseq2.tsv", sep="\t", index=False)
    pd.DataFrame({"contrast": ["flare"]}).to_csv(de / "design.tsv", sep="\t", index=False)  # the run's contrasts
    pd.DataFrame({"gene_id": ["G1", "G2", "G3"], "S1": [1.0, 2.0, 3.0]}).to_csv(de / "vst.tsv", sep="\t", index=False)
    path = write_anndata(res)
    import anndata as ad

    a = ad.read_h5ad(path)
    assert a.shape == (2, 3)
    assert a.layers["counts"][1, 0] == 11
    assert np.isnan(a.layers["vst"][1, 0]) and a.layers["vst"][0, 2] == 3.0
    assert a.var.loc["G2", "gene_name"] == "HBB"
    assert a.obs.loc["S2", "qc_status"] == "fail"
    assert a.varm["de_flare"].loc["G1", "padj"] == pytest.approx(2e-5)
    assert "flare" in a.uns["de"]
    assert not list(res.joinpath("matrix").glob(".*.tmp"))


def test_matrix_errors(run_dir):
    res = run_dir["res"]
    (res / "counts" / "S1.counts.tsv").write_text("gene_id\tcount\nG1\t1\nGX\t2\nG3\t3\n")
    with pytest.raises(InputFormatError, match="gene ids differ from the GTF"):
        run_matrix(samplesheet=run_dir["sheet"], gtf=run_dir["gtf"], counts_dir=res / "counts", outdir=res / "matrix")
    (res / "counts" / "S1.counts.tsv").write_text("gene_id\tcount\nG1\tx\nG2\t2\nG3\t3\n")
    with pytest.raises(InputFormatError, match="S1.counts.tsv:2"):
        run_matrix(samplesheet=run_dir["sheet"], gtf=run_dir["gtf"], counts_dir=res / "counts", outdir=res / "matrix")
    for f in (res / "counts").iterdir():
        f.unlink()
    with pytest.raises(EmptyResultError, match="no sample has counts"):
        run_matrix(samplesheet=run_dir["sheet"], gtf=run_dir["gtf"], counts_dir=res / "counts", outdir=res / "matrix")
    assert not (res / "matrix" / "gene_counts.tsv").exists()


@pytest.mark.parametrize(
    ("text", "match"),
    [("gene_id\n", "no sample columns"), ("gene_id\tA\nG1\tx\n", "non-numeric"),
     ("gene_id\tA\nG1\t1\nG1\t2\n", "duplicate gene id"), ("gene_id\tA\nG1\t-1\n", "negative")],
)
def test_counts_table_errors(tmp_path, text, match):
    p = tmp_path / "c.tsv"
    p.write_text(text)
    with pytest.raises(InputFormatError, match=match):
        read_counts_table(p)


def test_counts_table_formats(tmp_path):
    df = pd.DataFrame({"gene_id": ["G1", "G2"], "A": [1, 2], "B": [3, 4]})
    df.to_csv(tmp_path / "c.csv", index=False)
    df.to_csv(tmp_path / "c.tsv.gz", sep="\t", index=False)
    for f in ("c.csv", "c.tsv.gz"):
        t = read_counts_table(tmp_path / f)
        assert t.loc["G2", "B"] == 4


def test_matrix_cli(run_dir, capsys):
    res = run_dir["res"]
    rc = main(["matrix", "--samplesheet", str(run_dir["sheet"]), "--gtf", str(run_dir["gtf"]),
               "--counts-dir", str(res / "counts"), "--outdir", str(res / "m2")])
    assert rc == 0
    assert "3 genes x 2 samples" in capsys.readouterr().out
