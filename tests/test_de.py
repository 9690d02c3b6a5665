"""Differential expression: gene filters, counts input, fit_contrasts outputs, QC exclusion, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cfrna.cli import main
from cfrna.de import fit_contrasts
from cfrna.de.deseq import RESULT_COLUMNS, filter_genes, read_counts
from cfrna.errors import ConfigError, InputFormatError
from tests.helpers.de import write_cohort


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """16 samples x 400 genes; DE run once (no sensitivity) and reused."""
    d = tmp_path_factory.mktemp("de_small")
    files = write_cohort(d, n_samples=16, n_genes=400, seed=5)
    res = fit_contrasts(files["counts"], files["samplesheet"], files["contrasts"], d / "de", annotation=files["annotation"],
                 sensitivity=False)
    return files, d / "de", res


# ---- filters and inputs -------------------------------------------------------------------------

def test_filter_genes_methods():
    counts = pd.DataFrame({"a": [0, 5, 1, 100, 3], "b": [0, 4, 1, 120, 0], "c": [0, 0, 1, 90, 0], "d": [0, 1, 1, 80, 0]},
                          index=["zero", "low", "flat", "high", "one_sample"])
    assert list(filter_genes(counts, method="none").index) == ["low", "flat", "high", "one_sample"]
    assert list(filter_genes(counts).index) == ["low", "high"]  # total >= 10
    # CPM > 0.5 in > 75% of samples: needs all 4 samples here; "flat" passes (1 count in ~100-count libraries)
    assert list(filter_genes(counts, method="cpm").index) == ["flat", "high"]
    with pytest.raises(ConfigError, match="unknown gene filter"):
        filter_genes(counts, method="tpm")


@pytest.mark.parametrize(("text", "pattern"), [
    ("gene_id\ta\tb\ng1\t1.5\t2\n", r"non-integer counts in sample column 'a'"),
    ("gene_id\ta\tb\ng1\t-1\t2\n", r"negative counts"),
    ("gene_id\ta\tb\ng1\tx\t2\n", r"non-numeric values"),
    ("gene_id\ta\tb\ng1\t1\t2\ng1\t3\t4\n", r"duplicate gene id 'g1'"),
    ("gene_id\ta\tb\ng1\t\t2\n", r"missing values in sample column 'a'"),
])
def test_read_counts_bad_input(tmp_path, text, pattern):
    p = tmp_path / "c.tsv"
    p.write_text(text)
    with pytest.raises(InputFormatError, match=pattern):
        read_counts(p)


def test_read_counts_csv_gz(tmp_path):
    import gzip

    p = tmp_path / "c.csv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("gene_id,a,b\ng1,1,2\ng2,0,7\n")
    df = read_counts(p)
    assert df.loc["g2", "b"] == 7 and df.dtypes.iloc[0] == np.int64


# ---- fit_contrasts outputs ---------------------------------------------------------------------------

def test_run_de_writes_tables(small):
    files, de_dir, res = small
    for name in ("flare_vs_no_flare.deseq2.tsv", "normalized_counts.tsv", "vst.tsv", "size_factors.tsv", "design.tsv"):
        assert (de_dir / name).is_file(), name
    t = pd.read_csv(de_dir / "flare_vs_no_flare.deseq2.tsv", sep="\t")
    assert list(t.columns) == RESULT_COLUMNS
    assert t["gene_name"].str.startswith("ENSG").sum() == 0  # names from the annotation
    padj = t["padj"].to_numpy()
    ok = ~np.isnan(padj)
    assert np.all(np.diff(padj[ok]) >= 0) and not ok[ok.sum():].any()  # sorted by padj, NaN last
    assert t["log2FoldChange_shrunk"].abs().sum() <= t["log2FoldChange"].abs().sum()  # shrinkage shrinks
    sf = pd.read_csv(de_dir / "size_factors.tsv", sep="\t")
    assert list(sf.columns) == ["sample", "size_factor"] and len(sf) == 16
    assert np.exp(np.log(sf["size_factor"]).mean()) == pytest.approx(1, abs=0.2)
    vst = pd.read_csv(de_dir / "vst.tsv", sep="\t", index_col=0)
    norm = pd.read_csv(de_dir / "normalized_counts.tsv", sep="\t", index_col=0)
    assert vst.shape == norm.shape and list(vst.columns) == list(sf["sample"])
    assert np.corrcoef(vst.to_numpy().ravel(), np.log2(norm.to_numpy() + 1).ravel())[0, 1] > 0.95
    design = pd.read_csv(de_dir / "design.tsv", sep="\t")
    row = design.iloc[0]
    assert row["formula"] == "~ patient_id + flare" and row["coefficient"] == "flare[T.flare]"
    assert row["n_reference"] + row["n_target"] == 16
    assert res["contrasts"]["flare_vs_no_flare"]["n_significant"] == int((t["padj"] < 0.05).sum())


def test_qc_excluded_samples_dropped_and_recorded(small, tmp_path):
    files, _, _ = small
    sheet = pd.read_csv(files["samplesheet"])
    st = sheet[["sample"]].copy()
    st["excluded"] = False
    st["qc_reasons"] = ""
    victim = sheet.loc[sheet["flare"] == "flare", "sample"].iloc[0]
    st.loc[st["sample"] == victim, ["excluded", "qc_reasons"]] = [True, "mapping_rate fail"]
    st.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    fit_contrasts(files["counts"], files["samplesheet"], files["contrasts"], tmp_path / "de", samples_table=tmp_path / "samples.tsv",
           sensitivity=False, lfc_shrink=False)
    design = pd.read_csv(tmp_path / "de" / "design.tsv", sep="\t")
    assert design.loc[0, "excluded_samples"] == victim  # ids only: the reasons are in qc_summary.tsv
    assert victim not in design.loc[0, "target_samples"].split(";")
    sf = pd.read_csv(tmp_path / "de" / "size_factors.tsv", sep="\t")
    assert victim not in set(sf["sample"])
    # --keep-failed keeps it
    fit_contrasts(files["counts"], files["samplesheet"], files["contrasts"], tmp_path / "de2", samples_table=tmp_path / "samples.tsv",
           keep_failed=True, sensitivity=False, lfc_shrink=False)
    design2 = pd.read_csv(tmp_path / "de2" / "design.tsv", sep="\t")
    assert victim in design2.loc[0, "target_samples"].split(";")


def test_empty_group_after_qc_exclusion(small, tmp_path):
    files, _, _ = small
    sheet = pd.read_csv(files["samplesheet"])
    st = sheet[["sample"]].copy()
    st["excluded"] = sheet["flare"] == "flare"
    st["qc_reasons"] = np.where(st["excluded"], "gdna_fraction fail", "")
    st.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    with pytest.raises(ConfigError, match=r"contrast 'flare_vs_no_flare': group flare=flare has 0 sample\(s\) after "
                                          r"QC exclusion \(excluded: s"):
        fit_contrasts(files["counts"], files["samplesheet"], files["contrasts"], tmp_path / "de",
               samples_table=tmp_path / "samples.tsv")
    assert not (tmp_path / "de" / "design.tsv").exists()  # nothing written before the checks


def test_all_zero_genes_are_filtered_not_errors(tmp_path):
    files = write_cohort(tmp_path, n_samples=12, n_genes=300, seed=3)
    c = pd.read_csv(files["counts"], sep="\t", index_col=0)
    c.iloc[:5] = 0
    c.to_csv(files["counts"], sep="\t")
    fit_contrasts(files["counts"], files["samplesheet"], files["contrasts"], tmp_path / "de", sensitivity=False,
           lfc_shrink=False, min_count_filter="none")
    t = pd.read_csv(tmp_path / "de" / "flare_vs_no_flare.deseq2.tsv", sep="\t")
    assert not set(c.index[:5]) & set(t["gene_id"])
    assert (t["gene_name"] == t["gene_id"]).all()  # no annotation: names are ids


def test_sample_missing_from_counts_is_skipped(small, tmp_path):
    files, _, _ = small
    c = pd.read_csv(files["counts"], sep="\t", index_col=0)
    gone = c.columns[0]
    c.drop(columns=[gone]).to_csv(tmp_path / "counts.tsv", sep="\t")
    fit_contrasts(tmp_path / "counts.tsv", files["samplesheet"], files["contrasts"], tmp_path / "de", sensitivity=False,
           lfc_shrink=False)
    design = pd.read_csv(tmp_path / "de" / "design.tsv", sep="\t")
    assert gone in design.loc[0, "excluded_samples"].split(";")


def test_cli_de_and_errors(small, tmp_path, capsys):
    files, _, _ = small
    rc = main(["de", "--counts", str(files["counts"]), "--samplesheet", str(files["samplesheet"]),
               "--contrasts", str(files["contrasts"]), "--outdir", str(tmp_path / "de"), "--no-sensitivity",
               "--filter", "cpm", "--annotation", str(files["annotation"])])
    out = capsys.readouterr().out
    assert rc == 0 and out.startswith("flare_vs_no_flare\tno_flare n=")
    assert pd.read_csv(tmp_path / "de" / "design.tsv", sep="\t").loc[0, "gene_filter"] == "cpm"
    bad = tmp_path / "bad.csv"
    bad.write_text("id,variable,reference,target,blocking,formula\nx,flare,no_flare,flare,flare_window,\n")
    rc = main(["de", "--counts", str(files["counts"]), "--samplesheet", str(files["samplesheet"]),
               "--contrasts", str(bad), "--outdir", str(tmp_path / "de3")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0
    assert "bad.csv:2: contrast 'x'" in err and "flare is confounded with flare_window" in err


def test_sensitivity_table(tmp_path):
    files = write_cohort(tmp_path, n_samples=16, n_genes=400, seed=7)
    fit_contrasts(files["counts"], files["samplesheet"], files["contrasts"], tmp_path / "de", annotation=files["annotation"],
           lfc_shrink=False)
    s = pd.read_csv(tmp_path / "de" / "flare_vs_no_flare.sensitivity.tsv", sep="\t")
    assert list(s.columns) == ["gene_id", "gene_name", "log2FoldChange", "padj", "log2FoldChange_adjusted",
                               "padj_adjusted", "still_significant", "covariates"]
    assert (s["padj"] < 0.05).all() and len(s) > 10
    assert s["covariates"].iloc[0] == "score_erythroid;score_platelet;score_neutrophil"
    truth = pd.read_csv(files["truth"], sep="\t").set_index("gene_name")
    ifn = s[s["gene_name"].isin(truth.index[truth["module"] == "interferon"])]
    assert ifn["still_significant"].mean() > 0.8  # the planted flare effect is not a blood-cell shift
    design = pd.read_csv(tmp_path / "de" / "design.tsv", sep="\t")
    assert design.loc[0, "sensitivity"] == "ok"
