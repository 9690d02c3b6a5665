"""One gene-matrix reader: cfrna tables, real featureCounts output, nf-core/rnaseq merged tables; `cfrna de` on them."""

from __future__ import annotations

import gzip
import subprocess

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfrna.cli import main
from cfrna.errors import CfrnaError, InputFormatError
from cfrna.io.tables import check_matrix_samples, matrix_samples, read_gene_matrix, sample_from_bam
from tests.conftest import require_shared, require_tool

META_HEADER = "sample,patient_id,visit_month,arm,flare"


@pytest.mark.parametrize(("column", "sample"), [
    ("/data/run1/s01.bam", "s01"), ("s01.sorted.bam", "s01"), ("x/s01.Aligned.sortedByCoord.out.bam", "s01"),
    ("s01.markdup.sorted.bam", "s01"), ("s01", "s01"), ("s.01.bam", "s.01"), (".sorted.bam", ".sorted"),
])
def test_sample_from_bam(column, sample):
    assert sample_from_bam(column) == sample


@pytest.fixture(scope="module")
def featurecounts_table(tmp_path_factory):
    """featureCounts 2.x run on four subsamples of a real yeast RNA-seq SAM, BAMs named as aligners name them."""
    fc = require_tool("featureCounts")
    samtools = require_tool("samtools")
    sam = require_shared("htseq_yeast_count", "yeast_RNASeq_excerpt_withNH.sam.gz")
    gtf = require_shared("htseq_yeast_count", "Saccharomyces_cerevisiae.SGD1.01.56.gtf.gz")
    d = tmp_path_factory.mktemp("fc")
    plain = d / "reads.sam"
    plain.write_bytes(gzip.decompress(sam.read_bytes()))
    names = {"y1": "a/y1.bam", "y2": "b/y2.sorted.bam", "y3": "c/y3.Aligned.sortedByCoord.out.bam",
             "y4": "d/y4.markdup.sorted.bam"}
    for i, rel in enumerate(names.values()):
        (d / rel).parent.mkdir()
        subprocess.run([samtools, "view", "-b", "-s", f"{7 + i}.6", "-o", str(d / rel), str(plain)], check=True)
    out = d / "counts.txt"
    subprocess.run([fc, "-a", str(gtf), "-o", str(out), *[str(d / r) for r in names.values()]], check=True,
                   capture_output=True)
    return out, names


def test_featurecounts_matrix_as_it_comes(featurecounts_table):
    out, names = featurecounts_table
    raw = pd.read_csv(out, sep="\t", comment="#", index_col=0)
    df = read_gene_matrix(out)
    assert df.attrs["layout"] == "featurecounts"
    assert list(df.columns) == list(names)
    assert df.index.name == "gene_id" and len(df) == len(raw)
    for sid, rel in names.items():
        col = next(c for c in raw.columns if c.endswith(rel))
        assert (df[sid].to_numpy() == raw[col].to_numpy()).all()
    assert df.dtypes.unique().tolist() == [np.dtype(np.int64)]
    assert df.to_numpy().sum() > 1000
    assert matrix_samples(out) == list(names)


def test_de_on_featurecounts_with_metadata_only_sheet(featurecounts_table, tmp_path, capsys):
    out, names = featurecounts_table
    sheet = tmp_path / "meta.csv"
    sheet.write_text(META_HEADER + "\n" + "".join(
        f"{sid},P{i},0,steroid_tapering,{'flare' if i >= 2 else 'no_flare'}\n" for i, sid in enumerate(names)))
    contrasts = tmp_path / "c.csv"
    contrasts.write_text("id,variable,reference,target,blocking,formula\nflare,flare,no_flare,flare,,\n")
    assert main(["validate", "--samplesheet", str(sheet), "--metadata-only"]) == 0
    rc = main(["de", "--counts", str(out), "--samplesheet", str(sheet), "--contrasts", str(contrasts),
               "--outdir", str(tmp_path / "de"), "--no-sensitivity"])
    assert rc == 0, capsys.readouterr().err
    res = pd.read_csv(tmp_path / "de" / "flare.deseq2.tsv", sep="\t")
    assert len(res) > 50 and res["pvalue"].notna().any()
    design = pd.read_csv(tmp_path / "de" / "design.tsv", sep="\t")
    assert set(design["target_samples"].iloc[0].split(";")) == {"y3", "y4"}


def _nfcore_table(tmp_path, name="salmon.merged.gene_counts.tsv", n_genes=1500):
    """pasilla's real counts in nf-core/rnaseq's merged layout, with salmon-like fractional estimates."""
    counts = pd.read_csv(require_shared("de_reference", "pasilla_gene_counts.tsv.gz"), sep="\t", index_col=0)
    counts = counts.iloc[:n_genes]
    rng = np.random.default_rng(4)
    frac = rng.uniform(-0.45, 0.45, counts.shape) * (counts.to_numpy() > 0)
    est = counts + frac
    table = est.copy()
    table.insert(0, "gene_name", [f"sym{i}" for i in range(len(table))])
    path = tmp_path / name
    table.reset_index().to_csv(path, sep="\t", index=False, float_format="%.3f")
    return path, counts


def test_nfcore_merged_gene_counts_rounded(tmp_path):
    path, counts = _nfcore_table(tmp_path)
    df = read_gene_matrix(path)
    assert df.attrs["layout"] == "nfcore"
    assert list(df.columns) == list(counts.columns)
    assert (df.to_numpy() == counts.to_numpy()).all() and df.dtypes.iloc[0] == np.int64
    assert df.attrs["gene_names"].iloc[1] == "sym1"
    # half-way values round to even, as R's round()
    p = tmp_path / "s1.gene_counts.tsv"
    p.write_text("gene_id\tgene_name\tA\tB\ng1\tX\t0.5\t1.5\ng2\tY\t2.5\t3.2\n")
    assert read_gene_matrix(p).to_numpy().tolist() == [[0, 2], [2, 3]]


def test_de_on_nfcore_table_with_metadata_only_sheet(tmp_path, capsys):
    path, counts = _nfcore_table(tmp_path)
    ann = pd.read_csv(require_shared("de_reference", "pasilla_sample_annotation.csv"))
    sheet = tmp_path / "meta.csv"
    rows = []
    for i, sid in enumerate(counts.columns):
        condition = "treated" if sid.startswith("treated") else "untreated"
        rows.append(f"{sid},P{i},0,steroid_tapering,,{condition}\n")
    assert len(ann) == len(rows)
    sheet.write_text(META_HEADER + ",condition\n" + "".join(rows))
    contrasts = tmp_path / "c.csv"
    contrasts.write_text("id,variable,reference,target,blocking,formula\ntreat,condition,untreated,treated,,\n")
    rc = main(["de", "--counts", str(path), "--samplesheet", str(sheet), "--contrasts", str(contrasts),
               "--outdir", str(tmp_path / "de"), "--no-sensitivity"])
    assert rc == 0, capsys.readouterr().err
    res = pd.read_csv(tmp_path / "de" / "treat.deseq2.tsv", sep="\t")
    assert len(res) > 500 and (res["padj"] < 0.1).sum() > 5


def test_tpm_table_refused(tmp_path):
    p = tmp_path / "salmon.merged.gene_tpm.tsv"
    p.write_text("gene_id\tgene_name\tA\tB\ng1\tX\t0.5\t1.5\n")
    with pytest.raises(InputFormatError, match="TPM"):
        read_gene_matrix(p)


@pytest.mark.parametrize(("text", "match"), [
    ("", "empty"),
    ("gene_id\n", "no sample columns"),
    ("gene_id\tA\tA\ng1\t1\t2\n", "duplicate sample column"),
    ("gene_id\tA\ng1\tx\n", r"non-numeric values in sample column\(s\) A \(first: 'x' on line 2\)"),
    ("# featureCounts\nGeneid\tChr\tStart\tEnd\tStrand\tLength\t/a/s1.bam\t/b/s1.sorted.bam\ng\tI\t1\t9\t+\t9\t1\t2\n",
     "both map to sample 's1'"),
])
def test_bad_tables(tmp_path, text, match):
    p = tmp_path / "c.tsv"
    p.write_text(text)
    with pytest.raises(InputFormatError, match=match):
        read_gene_matrix(p)


def test_separator_read_from_header_and_gzip_without_suffix(tmp_path):
    p = tmp_path / "counts.tsv"  # comma-separated despite the name
    p.write_text("gene_id,A,B\ng1,1,2\n")
    assert read_gene_matrix(p).loc["g1", "B"] == 2
    g = tmp_path / "counts.txt"
    g.write_bytes(gzip.compress(b"gene_id\tA\ng1\t4\n"))
    assert read_gene_matrix(g).loc["g1", "A"] == 4


def test_counts_without_any_sheet_sample_named(tmp_path, capsys):
    p = tmp_path / "c.tsv"
    p.write_text("gene_id\tX1\tX2\ng1\t1\t2\n")
    with pytest.raises(InputFormatError, match=r"none of the 2 samplesheet samples \(s1, s2\) is a column"):
        check_matrix_samples(p, ["s1", "s2"])
    sheet = tmp_path / "meta.csv"
    sheet.write_text(META_HEADER + "\ns1,P1,0,steroid_tapering,flare\ns2,P2,0,steroid_tapering,no_flare\n")
    contrasts = tmp_path / "k.csv"
    contrasts.write_text("id,variable,reference,target\nf,flare,no_flare,flare\n")
    rc = main(["de", "--counts", str(p), "--samplesheet", str(sheet), "--contrasts", str(contrasts),
               "--outdir", str(tmp_path / "de")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and "\n" not in err and "is a column of the counts table" in err
    assert "after QC exclusion" not in err


FC_TABLE = (b"# Program:featureCounts v2.0.3; Command:\"featureCounts\" \"-a\" \"g.gtf\" \"-o\" \"x.txt\" \"a.bam\"\n"
            b"Geneid\tChr\tStart\tEnd\tStrand\tLength\t/d/a.bam\t/d/b.sorted.bam\n"
            b"G1\tchr1;chr1\t100;800\t200;900\t+;+\t202\t12\t0\nG2\tchr2\t10\t50\t-\t41\t3\t7\n")
NF_TABLE = b"gene_id\tgene_name\tS1\tS2\nG1\tIFI27\t12.402\t0.000\nG2\tHBB\t3.5\t7.25\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12),
       cut=st.one_of(st.none(), st.integers(0, 10_000)), which=st.booleans(), gz=st.booleans())
def test_gene_matrix_reader_fuzz(tmp_path, edits, cut, which, gz):
    """Every mutated table gives a frame or a one-line project error, never another exception."""
    b = bytearray(FC_TABLE if which else NF_TABLE)
    for pos, val in edits:
        b[pos % len(b)] = val
    if cut is not None:
        b = b[: cut % (len(b) + 1)]
    p = tmp_path / ("t.tsv.gz" if gz else "t.tsv")
    p.write_bytes(gzip.compress(bytes(b)) if gz else bytes(b))
    try:
        df = read_gene_matrix(p)
    except CfrnaError as exc:
        assert "\n" not in exc.one_line()
    else:
        assert df.shape[1] >= 1 and df.index.is_unique


# ------------------------------------------------------------------ the other table readers and the writer
def test_samples_table_and_qc_summary_excluded(tmp_path):
    from cfrna.io.tables import read_qc_summary, read_samples_table

    p = tmp_path / "samples.tsv"
    p.write_text("sample\tflare\texcluded\tqc_reasons\n01\tflare\tTrue\tlow\n02\tno\t\t\n03\tno\tyes\t\n04\tno\t0\t\n")
    st = read_samples_table(p)
    assert list(st.index) == ["01", "02", "03", "04"]  # ids stay text
    assert st["excluded"].tolist() == [True, False, True, False]
    assert st["qc_reasons"].tolist() == ["low", "", "", ""]
    p.write_text("sample\tflare\n01\tflare\n")
    assert read_samples_table(p)["excluded"].tolist() == [False]
    p.write_text("id\tflare\n01\tflare\n")
    with pytest.raises(InputFormatError, match=r"samples\.tsv.*samples table lacks column\(s\) sample.*matrix/samples\.tsv"):
        read_samples_table(p)
    q = tmp_path / "qc_summary.tsv"
    q.write_text("sample\tstatus\texcluded\nA\tfail\ttrue\nB\tpass\tfalse\n")
    assert read_qc_summary(q)["excluded"].tolist() == [True, False]
    q.write_text("sample\tmapping_rate\nA\t0.9\n")
    with pytest.raises(InputFormatError, match="QC summary lacks column.*status"):
        read_qc_summary(q)


def test_expression_sample_counts_json_yaml(tmp_path):
    from cfrna.io.tables import read_expression, read_json, read_sample_counts, read_yaml

    e = tmp_path / "vst.tsv.gz"
    e.write_bytes(gzip.compress(b"gene_id\tA\tB\nG1\t1.5\t2\nG2\t3\t4\n"))  # gzip by content
    df = read_expression(e)
    assert df.dtypes.unique().tolist() == [np.float32] and df.loc["G2", "B"] == 4
    t = tmp_path / "t.tsv"
    t.write_text("sample\tG1\tG2\nA\t1\t2\n")  # sample-major: transposed
    assert read_expression(t, dtype=float).loc["G2", "A"] == 2.0
    t.write_text("gene_id\tA\nG1\tx\n")
    with pytest.raises(InputFormatError, match=r"t\.tsv.*norm has a non-numeric value"):
        read_expression(t, what="norm")
    c = tmp_path / "s1.counts.tsv"
    c.write_text("gene_id\tcount\nG1\t3\nG2\tnope\n")
    with pytest.raises(InputFormatError, match=r"s1\.counts\.tsv:3: count is not a number"):
        read_sample_counts(c)
    c.write_text("gene_id\tcount\nG1\t3\nG1\t4\n")
    with pytest.raises(InputFormatError, match="duplicate gene_id 'G1'"):
        read_sample_counts(c)
    j = tmp_path / "x.json"
    j.write_text('{"a": 1,\n "b": }')
    with pytest.raises(InputFormatError, match=r"x\.json:2: broken JSON"):
        read_json(j, error="broken JSON")
    j.write_text('{"a": 1}')
    with pytest.raises(InputFormatError, match="missing key.*b"):
        read_json(j, required=("a", "b"))
    y = tmp_path / "v.yml"
    y.write_text("cfrna:\n  samtools: 1.10\n  n: 3\n")
    assert read_yaml(y, all_strings=True) == {"cfrna": {"samtools": "1.10", "n": "3"}}
    assert read_yaml(y)["cfrna"]["samtools"] == 1.1
    y.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(InputFormatError, match=r"v\.yml:\d+: software versions is malformed YAML"):
        read_yaml(y, what="software versions")


def test_write_table_gzip_mode_and_csv(tmp_path):
    import stat

    from cfrna.io.tables import write_table

    df = pd.DataFrame({"gene_id": ["G1", "G2"], "A": [1, 2]})
    write_table(tmp_path / "c.tsv.gz", df, file_mode=0o640)
    raw = (tmp_path / "c.tsv.gz").read_bytes()
    assert raw[:2] == b"\x1f\x8b" and gzip.decompress(raw) == b"gene_id\tA\nG1\t1\nG2\t2\n"
    assert stat.S_IMODE((tmp_path / "c.tsv.gz").stat().st_mode) == 0o640
    write_table(tmp_path / "c2.tsv.gz", df)
    assert (tmp_path / "c2.tsv.gz").read_bytes() == raw  # no name or time stamp in the gzip header
    write_table(tmp_path / "c.csv", df)
    assert (tmp_path / "c.csv").read_text() == "gene_id,A\nG1,1\nG2,2\n"
    assert read_gene_matrix(tmp_path / "c.tsv.gz").loc["G2", "A"] == 2
    assert not list(tmp_path.glob(".*.tmp"))
