"""GTF reader: featureCounts grouping rules and one-line errors for broken annotations."""

from __future__ import annotations

import gzip

import pytest

from cfrna.errors import InputFormatError
from cfrna.reference import read_gtf

LINES = [
    'chr1\tsrc\tgene\t100\t900\t.\t+\t.\tgene_id "G1"; gene_name "IFI27"; gene_type "protein_coding";',
    'chr1\tsrc\texon\t100\t200\t.\t+\t.\tgene_id "G1"; transcript_id "T1"; exon_number "1";',
    'chr1\tsrc\texon\t150\t300\t.\t+\t.\tgene_id "G1"; transcript_id "T2"; exon_number 1;',
    'chr1\tsrc\texon\t800\t900\t.\t+\t.\tgene_id "G1"; transcript_id "T1"; exon_number "2";',
    'chr2\tsrc\texon\t10\t50\t.\t-\t.\tgene_id "G2"; gene_name "RNA5-8SN5"; gene_biotype "rRNA";',
    'chrM\tsrc\texon\t1\t30\t.\t+\t.\tgene_id "G3";',
]


def write(tmp_path, lines, name="a.gtf"):
    p = tmp_path / name
    p.write_text("#!genome-build test\n" + "\n".join(lines) + "\n")
    return p


def test_parse(tmp_path):
    a = read_gtf(write(tmp_path, LINES))
    g = a.genes.set_index("gene_id")
    assert list(g.index) == ["G1", "G2", "G3"]
    assert g.loc["G1", "gene_name"] == "IFI27" and g.loc["G1", "gene_biotype"] == "protein_coding"
    assert g.loc["G1", "length"] == 201 + 101  # union of 100-300 and 800-900
    assert (g.loc["G1", "start"], g.loc["G1", "end"]) == (100, 900)
    assert g.loc["G3", "gene_name"] == "G3" and g.loc["G3", "gene_biotype"] == "unknown"
    assert a.mito_mask().tolist() == [False, False, True]
    assert a.biotype_mask("rRNA").tolist() == [False, True, False]
    assert a.features["exon_number"].tolist() == [1, 1, 2, -1, -1]


def test_unsorted_equals_sorted_and_gzip(tmp_path):
    a = read_gtf(write(tmp_path, LINES))
    shuffled = [LINES[0], LINES[3], LINES[5], LINES[1], LINES[4], LINES[2]]
    b = read_gtf(write(tmp_path, shuffled, "b.gtf"))
    assert sorted(a.genes["gene_id"]) == sorted(b.genes["gene_id"])
    assert a.genes.set_index("gene_id")["length"].to_dict() == b.genes.set_index("gene_id")["length"].to_dict()
    gz = tmp_path / "c.gtf.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("\n".join(LINES) + "\n")
    assert read_gtf(gz).genes["gene_id"].tolist() == ["G1", "G2", "G3"]


def test_feature_type_and_attribute(tmp_path):
    a = read_gtf(write(tmp_path, LINES[:4]), attribute="transcript_id")
    assert a.genes["gene_id"].tolist() == ["T1", "T2"]
    assert a.genes["n_features"].tolist() == [2, 1]
    b = read_gtf(write(tmp_path, LINES), feature_type="gene")
    assert b.genes["gene_id"].tolist() == ["G1"]


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ([LINES[1].replace('gene_id "G1"; ', "")], r"a.gtf:2: exon feature has no 'gene_id' attribute"),
        ([LINES[1].replace("\t100\t", "\tx\t")], r"a.gtf:2: start/end are not integers"),
        ([LINES[1].replace("\t100\t200", "\t300\t200")], "invalid interval"),
        ([LINES[1].replace("\t+\t", "\t*\t")], "invalid strand"),
        (["chr1 src exon 1 2 . + . gene_id x"], "expected 9 tab-separated GTF columns"),
        ([LINES[0]], "no 'exon' features found"),
        ([LINES[1], LINES[1].replace("chr1", "chr7")], "has exon features on several sequences"),
    ],
)
def test_bad_gtf(tmp_path, lines, match):
    with pytest.raises(InputFormatError, match=match) as ei:
        read_gtf(write(tmp_path, lines))
    assert "\n" not in ei.value.one_line()


def test_not_a_gtf(tmp_path):
    p = tmp_path / "x.gtf"
    p.write_bytes(b">chr1\nACGT\n")
    with pytest.raises(InputFormatError, match="expected 9 tab-separated"):
        read_gtf(p)
    p.write_bytes(gzip.compress(b"chr1\tsrc\texon\t1\t10\t.\t+\t.\tgene_id \"G\";\n")[:20])
    with pytest.raises(InputFormatError, match="truncated or corrupt"):
        read_gtf(p)


@pytest.mark.parametrize(("text", "key", "value"), [
    ('gene_id "G1"; transcript_id "T1"; exon_number 3;', "exon_number", "3"),  # unquoted value
    ('gene_id "G1"; transcript_id "T1";', "gene_name", None),  # absent
    ('havana_gene "OTT1"; gene_id "G2";', "gene", None),  # a key's tail is not the key
    ('xgene_id "A"; gene_id "B";', "gene_id", "B"),
    ('gene_id "A"; gene_id "B";', "gene_id", "A"),  # first value wins
    ('gene_id   "A B";', "gene_id", "A B"),
    ('tag "gene_id"; gene_id "C";', "gene_id", "C"),  # a value that spells a key
])
def test_attribute_value_agrees_with_the_full_parse(text, key, value):
    from cfrna.reference.gtf import attribute_value, parse_attributes

    assert attribute_value(text, key) == value
    assert parse_attributes(text).get(key) == value


def test_more_than_nine_columns_is_skipped_after_line_one(tmp_path):
    extra = 'chr1\tsrc\texon\t1\t5\t.\t+\t.\tgene_id "GX";\textra'
    ann = read_gtf(write(tmp_path, [*LINES, extra]))
    assert "GX" not in ann.gene_ids
    first = tmp_path / "b.gtf"
    first.write_text("\n".join([extra, *LINES]) + "\n")
    with pytest.raises(InputFormatError, match=r"b\.gtf:1: expected 9 tab-separated GTF columns, found 10"):
        read_gtf(first)
