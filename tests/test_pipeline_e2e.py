"""End to end: simulated FASTQ -> `cfrna run` -> checked against the planted truth."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cfrna.cli import main

pytestmark = pytest.mark.slow

CONTRAST = "flare_vs_no_flare"


@pytest.fixture(scope="session")
def e2e(sim_cohort, pipeline_run, pipeline_run_args, tmp_path_factory) -> dict:
    """The session's one ``cfrna run`` of ``sim_cohort`` (conftest ``pipeline_run``), and ``cfrna pathways`` on
    its DE tables with the simulator's planted gene sets (the run itself uses the bundled ones)."""
    planted = tmp_path_factory.mktemp("e2e_planted") / "pathways"
    assert main(["pathways", "--de-dir", str(pipeline_run / "de"), "--gtf", str(sim_cohort / "genes.gtf"),
                 "--gene-sets", str(sim_cohort / "truth" / "planted_gene_sets.gmt"),
                 "--samplesheet", str(sim_cohort / "samplesheet.csv"),
                 "--samples", str(pipeline_run / "matrix" / "samples.tsv"), "--threads", "2",
                 "--outdir", str(planted)]) == 0
    return {"out": pipeline_run, "cohort": sim_cohort, "args": pipeline_run_args, "planted": planted}


def test_output_tree(e2e):
    out = e2e["out"]
    sheet = pd.read_csv(e2e["cohort"] / "samplesheet.csv")
    for s in sheet["sample"]:
        for f in (f"trimmed/{s}.trim.json", f"alignment/{s}.bam", f"alignment/{s}.bam.bai",
                  f"alignment/{s}.align.json", f"counts/{s}.counts.tsv", f"counts/{s}.counts.tsv.summary",
                  f"qc/{s}.qc.json"):
            assert (out / f).is_file(), f
    for f in ("qc/qc_summary.tsv", "matrix/gene_counts.tsv", "matrix/cfrna.h5ad", f"de/{CONTRAST}.deseq2.tsv",
              f"pathways/{CONTRAST}.gsea.tsv", "pathways/signature_scores.tsv", "report/index.html",
              "pipeline_info/params.json", "pipeline_info/software_versions.yml",
              "pipeline_info/input_checksums.tsv", "pipeline_info/execution_trace.tsv"):
        assert (out / f).is_file(), f
    assert not list(out.rglob("*.tmp")), "temporary files left behind"
    de = pd.read_csv(out / "de" / f"{CONTRAST}.deseq2.tsv", sep="\t")
    assert list(de.columns) == ["gene_id", "gene_name", "baseMean", "log2FoldChange", "lfcSE", "stat", "pvalue",
                                "padj", "log2FoldChange_shrunk"]


def test_counts_close_to_truth(e2e):
    out, cohort = e2e["out"], e2e["cohort"]
    truth = pd.read_csv(cohort / "truth" / "gene_counts_assignable.tsv", sep="\t", index_col=0)
    genes = pd.read_csv(cohort / "truth" / "genes.tsv", sep="\t", index_col=0)
    counts = pd.read_csv(out / "matrix" / "gene_counts.tsv", sep="\t", index_col=0)
    # uniquely placed: no overlapping gene, not a multi-copy rRNA gene
    simple = genes.index[genes["overlap"].isna() & ~genes["multi_copy"].astype(bool)]
    for s in counts.columns:
        t = truth.loc[simple, s]
        c = counts.loc[simple, s]
        keep = t >= 20
        assert keep.sum() > 20
        rel = (c[keep] - t[keep]).abs() / t[keep]
        assert np.median(rel) < 0.02, (s, float(np.median(rel)))
        assert np.corrcoef(np.log1p(c[keep]), np.log1p(t[keep]))[0, 1] > 0.95


def test_planted_de_recovered(e2e):
    out, cohort = e2e["out"], e2e["cohort"]
    de = pd.read_csv(out / "de" / f"{CONTRAST}.deseq2.tsv", sep="\t")
    planted = set(pd.read_csv(cohort / "truth" / "de_genes.tsv", sep="\t")["gene_id"])
    called = set(de.loc[de["padj"] < 0.05, "gene_id"])
    recall = len(called & planted) / len(planted)
    fdp = len(called - planted) / max(1, len(called))
    assert recall >= 0.8, recall
    assert fdp <= 0.2, fdp


def test_planted_ifn_set_ranked_first_or_second(e2e):
    gsea = pd.read_csv(e2e["planted"] / f"{CONTRAST}.gsea.tsv", sep="\t")
    up = gsea[gsea["nes"] > 0].reset_index(drop=True)
    rank = up.index[up["gene_set"] == "PLANTED_IFN_FLARE_UP"]
    assert len(rank) == 1 and rank[0] <= 1, gsea.head()


def test_planted_bad_samples_flagged(e2e):
    out, cohort = e2e["out"], e2e["cohort"]
    truth = pd.read_csv(cohort / "truth" / "samples.tsv", sep="\t", index_col=0)
    qc = pd.read_csv(out / "qc" / "qc_summary.tsv", sep="\t", index_col=0)
    bad = truth.index[truth["planted_bad"] != "none"]
    good = truth.index[truth["planted_bad"] == "none"]
    assert len(bad) == 3
    assert (qc.loc[bad, "status"] == "fail").all(), qc.loc[bad, ["status", "reasons"]]
    assert (qc.loc[good, "status"] != "fail").all(), qc.loc[good, ["status", "reasons"]]
    design = pd.read_csv(out / "de" / "design.tsv", sep="\t")
    text = design.to_csv()
    for s in bad:
        assert s in text, f"excluded sample {s} not recorded in design.tsv"


def test_anndata_has_everything(e2e):
    import anndata as ad

    a = ad.read_h5ad(e2e["out"] / "matrix" / "cfrna.h5ad")
    assert {"counts", "normalized", "vst"} <= set(a.layers)
    assert {"qc_status", "excluded", "flare", "patient_id"} <= set(a.obs.columns)
    assert CONTRAST in a.uns["de"] and CONTRAST in a.uns["gsea"]
    assert "signature_scores" in a.obsm
    assert "params" in a.uns["provenance"]


def test_provenance_has_no_machine_paths(e2e):
    sums = (e2e["out"] / "pipeline_info" / "input_checksums.tsv").read_text()
    assert str(e2e["cohort"]) not in sums
    trace = pd.read_csv(e2e["out"] / "pipeline_info" / "execution_trace.tsv", sep="\t")
    assert set(trace["status"]) <= {"COMPLETED", "CACHED"}


def test_resume_recomputes_nothing(e2e):
    """Resumes the shared run in place: every step is cached, so its outputs stay as they are."""
    out = e2e["out"]
    before = {p: p.stat().st_mtime_ns for p in (out / "counts").iterdir()}
    assert main([*e2e["args"], "--resume"]) == 0
    trace = pd.read_csv(out / "pipeline_info" / "execution_trace.tsv", sep="\t")
    work = trace[trace["step"].isin(["trim", "align", "count", "qc", "matrix", "de", "pathways"])]
    assert (work["status"] == "CACHED").all(), work[work["status"] != "CACHED"]
    assert {p: p.stat().st_mtime_ns for p in (out / "counts").iterdir()} == before
    json.loads((out / "pipeline_info" / "params.json").read_text())
