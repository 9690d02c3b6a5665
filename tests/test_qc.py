"""Unit tests of cfrna.qc on small per-sample files written here (valid per docs/architecture.md)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfrna.cli import main
from cfrna.errors import ConfigError, EmptyResultError, InputFormatError
from cfrna.qc import DEFAULTS, evaluate, gdna_estimate, load_thresholds, ng80, qc_samples
from cfrna.qc.filters import robust_z
from cfrna.qc.metrics import (
    GeneSets,
    effective_intergenic_length,
    infer_sex,
    read_counts,
    read_json,
    read_summary,
    sex_check,
)
from cfrna.reference import read_gtf
from tests.conftest import require_module


def require_multiqc() -> None:
    """The multiqc module: skip locally without it, fail under CI=true."""
    require_module("multiqc")


GENERIC = [f"G{i:02d}" for i in range(40)]
SPECIAL = [("RNA45SN1", "chr1", "rRNA"), ("MT-CO1", "chrM", "protein_coding"), ("HBB", "chr2", "protein_coding"),
           ("HBA1", "chr2", "protein_coding"), ("ALAS2", "chr2", "protein_coding"),
           ("PPBP", "chr2", "protein_coding"), ("XIST", "chr2", "lncRNA"), ("RPS4Y1", "chrY", "protein_coding")]


def write_gtf(path: Path) -> Path:
    lines = []
    pos = {"chr1": 1000, "chr2": 1000, "chrM": 100, "chrY": 1000}
    genes = [(g, "chr1", "protein_coding") for g in GENERIC] + SPECIAL
    for i, (name, chrom, bt) in enumerate(genes):
        s = pos[chrom]
        strand = "+" if i % 2 == 0 else "-"
        for k in range(2):  # two exons of 100 bp, 300 bp intron
            a = s + k * 400
            attrs = (f'gene_id "ENSG{i:04d}"; transcript_id "T{i:04d}"; gene_name "{name}"; '
                     f'gene_biotype "{bt}"; exon_number "{k + 1}";')
            lines.append("\t".join([chrom, "sim", "exon", str(a), str(a + 99), ".", strand, ".", attrs]))
        pos[chrom] = s + 2000
    path.write_text("\n".join(lines) + "\n")
    return path


def _gene_ids(gtf: Path) -> list[str]:
    return read_gtf(gtf).gene_ids


def write_sample(root: Path, sample: str, gene_ids: list[str], *, seed: int, hb: float = 0.0, gdna: float = 0.02,
                 rrna: float = 0.01, bias: float = 0.1, stranded: str = "reverse", reads: int = 20000,
                 skip: tuple[str, ...] = ()) -> None:
    """Write trim/align/counts files for one sample, with planted hemoglobin, gDNA and rRNA fractions."""
    rng = np.random.default_rng(seed)
    (root / "counts").mkdir(parents=True, exist_ok=True)
    (root / "alignment").mkdir(parents=True, exist_ok=True)
    (root / "trimmed").mkdir(parents=True, exist_ok=True)
    n = len(gene_ids)
    base = rng.lognormal(0, 1.0, n)
    base[gene_ids.index("ENSG0040")] = 0  # rRNA handled below
    base[gene_ids.index("ENSG0047")] = 0  # chrY gene: female samples
    base[gene_ids.index("ENSG0042")] = 0
    base[gene_ids.index("ENSG0043")] = 0
    base = base / base.sum()
    rna = int(reads * (1 - gdna))
    g = reads - rna
    exonic_rna = int(rna * 0.8)
    rrna_reads = int(reads * rrna)
    hb_reads = int(exonic_rna * hb)
    gene_counts = rng.multinomial(exonic_rna - rrna_reads - hb_reads, base)
    gene_counts[gene_ids.index("ENSG0040")] += rrna_reads
    gene_counts[gene_ids.index("ENSG0042")] += hb_reads // 2
    gene_counts[gene_ids.index("ENSG0043")] += hb_reads - hb_reads // 2
    # gDNA: 10% exonic, 40% intronic, 50% intergenic, half antisense in genic space
    g_ex, g_in = int(g * 0.1), int(g * 0.4)
    g_ig = g - g_ex - g_in
    stats = {
        "sample": sample, "strandedness": stranded, "paired": False, "primary_mapped": reads,
        "unique": reads - 100, "exonic_sense": exonic_rna + g_ex // 2, "exonic_antisense": g_ex - g_ex // 2,
        "intronic_sense": (rna - exonic_rna) + g_in // 2, "intronic_antisense": g_in - g_in // 2,
        "intergenic": g_ig, "spliced": int(exonic_rna * 0.3), "mito": int(gene_counts[gene_ids.index("ENSG0041")]),
        "duplicates": int(reads * 0.1), "three_prime_bias": bias, "genes_detected": int((gene_counts > 0).sum()),
    }
    if stranded == "unstranded":
        stats["exonic_sense"] += stats.pop("exonic_antisense")
        stats["intronic_sense"] += stats.pop("intronic_antisense")
        stats["exonic_antisense"] = stats["intronic_antisense"] = 0
    if "counts" not in skip:
        pd.DataFrame({"gene_id": gene_ids, "count": gene_counts}).to_csv(
            root / "counts" / f"{sample}.counts.tsv", sep="\t", index=False)
    assigned = int(gene_counts.sum())
    (root / "counts" / f"{sample}.counts.tsv.summary").write_text(
        f"Status\t{sample}.bam\nAssigned\t{assigned}\nUnassigned_Unmapped\t50\n"
        f"Unassigned_MultiMapping\t100\nUnassigned_NoFeatures\t{reads - assigned - 200}\nUnassigned_Ambiguity\t50\n")
    if "stats" not in skip:
        (root / "counts" / f"{sample}.counts.tsv.stats.json").write_text(json.dumps(stats))
    align = {"sample": sample, "aligner": "mappy", "reads": reads + 50, "mapped": reads, "unique": reads - 100,
             "multi": 100, "unmapped": 50, "mapping_rate": reads / (reads + 50),
             "unique_fraction": (reads - 100) / (reads + 50), "multi_fraction": 100 / (reads + 50),
             "spliced_fraction": 0.25, "soft_clipped_fraction": 0.01, "mismatch_rate": 0.005,
             "insert_size_median": None,
             "strandedness": {"declared": stranded, "inferred": stranded, "forward_fraction": 0.0 if stranded == "reverse" else 0.5,
                              "reverse_fraction": 1.0 if stranded == "reverse" else 0.5, "undetermined_fraction": 0.0,
                              "reads_used": 1000, "used": stranded, "agrees": True}}
    if "align" not in skip:
        (root / "alignment" / f"{sample}.align.json").write_text(json.dumps(align))
    trim = {"sample": sample, "reads_in": reads + 200, "reads_out": reads + 50, "bases_in": 100 * reads,
            "bases_out": 95 * reads, "reads_with_adapter": 300, "too_short": 150, "mean_length_after": 95.0,
            "mean_quality": 35.2, "gc_fraction": 0.45, "duplication_fraction": 0.12, "paired": False}
    if "trim" not in skip:
        (root / "trimmed" / f"{sample}.trim.json").write_text(json.dumps(trim))


def write_sheet(path: Path, samples: list[str], *, sex: dict[str, str] | None = None) -> Path:
    head = "sample,patient_id,visit_month,arm,flare,fastq_1,fastq_2,strandedness" + (",sex" if sex else "")
    rows = [head]
    for i, s in enumerate(samples):
        row = f"{s},P{i // 2},{3 * (i % 2)},steroid_tapering,no_flare,fq/{s}.fastq.gz,,reverse"
        if sex:
            row += f",{sex.get(s, '')}"
        rows.append(row)
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def cohort(tmp_path):
    """10 clean samples + one hemolyzed, one gDNA-contaminated and one degraded sample."""
    gtf = write_gtf(tmp_path / "genes.gtf")
    ids = _gene_ids(gtf)
    samples = [f"S{i:02d}" for i in range(10)] + ["HEMO", "GDNA", "DEGR"]
    for i, s in enumerate(samples[:10]):
        write_sample(tmp_path, s, ids, seed=i, gdna=0.02 + 0.005 * (i % 3), hb=0.002 + 0.0005 * (i % 4))
    write_sample(tmp_path, "HEMO", ids, seed=20, hb=0.4)
    write_sample(tmp_path, "GDNA", ids, seed=21, gdna=0.5)
    write_sample(tmp_path, "DEGR", ids, seed=22, bias=0.55)
    sheet = write_sheet(tmp_path / "samplesheet.csv", samples, sex=dict.fromkeys(samples, "F"))
    return tmp_path, sheet, gtf, samples


def _run(root: Path, sheet: Path, gtf: Path, **kw) -> pd.DataFrame:
    return qc_samples(sheet, gtf, root / "counts", root / "alignment", root / "trimmed", root / "qc",
                  multiqc_report=kw.pop("multiqc_report", False), **kw)


def test_cohort_decisions(cohort):
    root, sheet, gtf, samples = cohort
    summary = _run(root, sheet, gtf)
    assert list(summary.index) == samples
    st = summary["status"]
    assert (st[[f"S{i:02d}" for i in range(10)]] != "fail").all(), summary.loc[st == "fail", "reasons"]
    assert st["HEMO"] == "fail" and "hemoglobin_fraction" in summary.at["HEMO", "reasons"]
    assert st["GDNA"] == "fail" and "gdna_fraction" in summary.at["GDNA", "reasons"]
    assert "intron_exon_ratio" in summary.at["GDNA", "reasons"] or summary.at["GDNA", "intron_exon_ratio"] < 2.8
    assert st["DEGR"] == "fail" and "three_prime_bias=0.55 >= 0.4 (QUAKE" in summary.at["DEGR", "reasons"]
    assert summary.loc[["HEMO", "GDNA", "DEGR"], "excluded"].all()
    assert not summary.loc[[f"S{i:02d}" for i in range(10)], "excluded"].any()
    # gDNA recovered from the planted 50% (strand rule: intergenic + 2 x antisense)
    assert summary.at["GDNA", "gdna_fraction"] == pytest.approx(0.5, abs=0.01)
    assert summary.at["S00", "gdna_fraction"] == pytest.approx(0.02, abs=0.005)
    assert summary.at["S00", "rrna_fraction"] == pytest.approx(0.01, abs=0.002)
    assert summary.at["S00", "sex_inferred"] == "female" or summary.at["S00", "sex_inferred"] == "unknown"
    # files
    tsv = pd.read_csv(root / "qc" / "qc_summary.tsv", sep="\t")
    assert tsv.columns[0] == "sample" and list(tsv.columns[-3:]) == ["status", "reasons", "excluded"]
    assert "intron_exon_ratio_status" in tsv.columns and "gdna_fraction_status" in tsv.columns
    qc = json.loads((root / "qc" / "GDNA.qc.json").read_text())
    for key in ("reads_in", "reads_after_trim", "mapping_rate", "unique_fraction", "multi_fraction",
                "exonic_fraction", "intronic_fraction", "intergenic_fraction", "intron_exon_ratio",
                "spliced_fraction", "rrna_fraction", "mito_fraction", "three_prime_bias", "ng80", "genes_detected",
                "duplication_fraction", "strandedness_inferred", "strand_forward_fraction", "gdna_fraction",
                "hemoglobin_fraction", "erythroid_score", "platelet_score", "sex_check", "status", "reasons"):
        assert key in qc, key
    assert qc["status"] == "fail" and qc["excluded"] is True
    assert any(r.startswith("fail: gdna_fraction=") for r in qc["reasons"])
    mq = (root / "qc" / "multiqc" / "cfrna_qc_mqc.tsv").read_text()
    assert "# section_name: 'cfRNA QC passport'" in mq and "\nGDNA\t" in mq
    assert "Assigned" in (root / "qc" / "multiqc" / "cfrna_assignment_mqc.tsv").read_text()


def test_keep_failed_and_mad_k(cohort):
    root, sheet, gtf, _ = cohort
    summary = _run(root, sheet, gtf, keep_failed=True, mad_k=50)
    assert summary.at["HEMO", "status"] == "fail"  # absolute rule still fires
    assert not summary["excluded"].any()


def test_missing_per_sample_file_fails_sample_and_run_continues(cohort):
    root, sheet, gtf, _ = cohort
    (root / "alignment" / "S03.align.json").unlink()
    (root / "counts" / "S04.counts.tsv").unlink()
    summary = _run(root, sheet, gtf)
    assert summary.at["S03", "status"] == "fail" and "missing" in summary.at["S03", "reasons"]
    assert "S03.align.json" in summary.at["S03", "reasons"]
    assert summary.at["S04", "status"] == "fail" and "S04.counts.tsv" in summary.at["S04", "reasons"]
    assert summary.at["S05", "status"] != "fail"
    assert json.loads((root / "qc" / "S04.qc.json").read_text())["excluded"] is True


def test_missing_counts_dir_is_error(cohort, tmp_path):
    root, sheet, gtf, _ = cohort
    with pytest.raises(ConfigError, match="counts folder not found"):
        qc_samples(sheet, gtf, tmp_path / "nope", root / "alignment", root / "trimmed", tmp_path / "qc")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmptyResultError, match="no <sample>.counts.tsv"):
        qc_samples(sheet, gtf, empty, None, None, tmp_path / "qc")


def test_malformed_json_is_error(cohort):
    root, sheet, gtf, _ = cohort
    (root / "counts" / "S01.counts.tsv.stats.json").write_text('{"sample": "S01", "primary_mapped": ')
    with pytest.raises(InputFormatError, match=r"S01.counts.tsv.stats.json:1: malformed JSON"):
        _run(root, sheet, gtf)
    (root / "counts" / "S01.counts.tsv.stats.json").write_text('{"sample": "S01"}')
    with pytest.raises(InputFormatError, match="missing key"):
        _run(root, sheet, gtf)
    (root / "counts" / "S01.counts.tsv.stats.json").write_text('[1, 2]')
    with pytest.raises(InputFormatError, match="expected a JSON object"):
        _run(root, sheet, gtf)


def test_bad_counts_and_summary_files(tmp_path):
    """QC's readers (non-numeric counts and duplicate ids: tests/test_tables.py, same reader)."""
    p = tmp_path / "c.tsv"
    p.write_text("A\t-3\n")
    with pytest.raises(InputFormatError, match="invalid count"):
        read_counts(p)
    p.write_text("A\t3\nB\t0\n")
    assert read_counts(p).tolist() == [3, 0]
    s = tmp_path / "c.tsv.summary"
    s.write_text("Status\tx.bam\nUnassigned_NoFeatures\t3\n")
    with pytest.raises(InputFormatError, match="no 'Assigned' row"):
        read_summary(s)
    j = tmp_path / "x.json"
    j.write_bytes(b"\xff\xfe")
    with pytest.raises(InputFormatError, match="not UTF-8"):
        read_json(j)


@pytest.mark.parametrize(
    ("content", "suffix", "match"),
    [
        ("mad_k: -1\n", ".yml", "mad_k must be > 0|must be a number >= 0"),
        ("bogus: 1\n", ".yml", "unknown thresholds key 'bogus'"),
        ("rules:\n  not_a_metric: {fail_at_or_above: 1}\n", ".yml", "unknown metric 'not_a_metric'"),
        ("rules:\n  rrna_fraction: {fail_above: 1}\n", ".yml", "unknown setting"),
        ("rules:\n  rrna_fraction: {fail_at_or_above: high}\n", ".yml", "must be a number"),
        ("rules: [1]\n", ".yml", "'rules' must map"),
        ("- 1\n- 2\n", ".yml", "must hold a mapping"),
        ("a: [1\n", ".yaml", "malformed YAML"),
        ('{"mad_k": ', ".json", "malformed JSON"),
        ("ng80_min: lots\n", ".yml", "ng80_min must be 'auto'"),
        ("tuni_level: maybe\n", ".yml", "tuni_level must be off, warn or fail"),
    ],
)
def test_invalid_thresholds_file(tmp_path, content, suffix, match):
    p = tmp_path / f"t{suffix}"
    p.write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_thresholds(p)


def test_thresholds_file_overrides(cohort, tmp_path):
    root, sheet, gtf, _ = cohort
    t = tmp_path / "t.json"
    t.write_text(json.dumps({"rules": {"three_prime_bias": {"fail_at_or_above": 0.9, "outlier": "off"},
                                       "hemoglobin_fraction": None}}))
    cfg = load_thresholds(t)
    assert cfg["rules"]["three_prime_bias"]["fail_at_or_above"] == 0.9
    assert "hemoglobin_fraction" not in cfg["rules"]
    assert DEFAULTS["rules"]["three_prime_bias"]["fail_at_or_above"] == 0.4  # defaults untouched
    summary = _run(root, sheet, gtf, thresholds=t)
    assert summary.at["DEGR", "status"] != "fail"
    assert "hemoglobin_fraction" not in summary.at["HEMO", "reasons"]


def test_cli_qc(cohort, capsys):
    root, sheet, gtf, _ = cohort
    rc = main(["qc", "--samplesheet", str(sheet), "--gtf", str(gtf), "--counts-dir", str(root / "counts"),
               "--align-dir", str(root / "alignment"), "--trim-dir", str(root / "trimmed"),
               "--outdir", str(root / "qc"), "--no-multiqc"])
    assert rc == 0
    assert "3 fail" in capsys.readouterr().out
    bad = root / "bad.yml"
    bad.write_text("bogus: 1\n")
    rc = main(["qc", "--samplesheet", str(sheet), "--gtf", str(gtf), "--counts-dir", str(root / "counts"),
               "--outdir", str(root / "qc"), "--thresholds", str(bad)])
    assert rc == 2
    assert "unknown thresholds key 'bogus'" in capsys.readouterr().err


def test_sex_check(cohort):
    root, sheet, gtf, samples = cohort
    ids = _gene_ids(gtf)
    # make S02 male by expression: move XIST reads to RPS4Y1
    c = pd.read_csv(root / "counts" / "S02.counts.tsv", sep="\t")
    xi, yi = ids.index("ENSG0046"), ids.index("ENSG0047")
    c.loc[yi, "count"], c.loc[xi, "count"] = 500, 0
    c.to_csv(root / "counts" / "S02.counts.tsv", sep="\t", index=False)
    c = pd.read_csv(root / "counts" / "S05.counts.tsv", sep="\t")
    c.loc[xi, "count"] = 400
    c.to_csv(root / "counts" / "S05.counts.tsv", sep="\t", index=False)
    summary = _run(root, sheet, gtf)
    assert summary.at["S02", "sex_inferred"] == "male"
    assert summary.at["S02", "sex_check"] == "mismatch"
    assert "sex_check: declared female but XIST/chrY says male" in summary.at["S02", "reasons"]
    assert summary.at["S05", "sex_check"] == "match"
    assert infer_sex(0, 3) == "unknown" and infer_sex(50, 50) == "ambiguous"
    assert sex_check("male", None) == "not_declared" and sex_check("unknown", "male") == "undetermined"


def test_ng80_and_robust_z():
    assert ng80(np.array([100, 0, 0])) == 1
    assert ng80(np.array([10, 10, 10, 10, 10])) == 4
    assert ng80(np.array([50, 30, 20])) == 2
    assert ng80(np.zeros(4)) == 0
    z, med, scale = robust_z(pd.Series([1.0, 1.0, 1.0, 1.0, 5.0]), floor=0.5)
    assert med == 1.0 and scale == 0.5 and z.iloc[-1] == pytest.approx(8.0)


def test_gdna_estimate_rules():
    stats = {"primary_mapped": 1000, "exonic_sense": 700, "exonic_antisense": 10, "intronic_sense": 150,
             "intronic_antisense": 40, "intergenic": 100}
    g, method = gdna_estimate(stats, stranded=True)
    assert method == "strand" and g == pytest.approx((100 + 2 * 10 + 2 * 40) / 1000)
    # a strand error of 1% of the sense reads is not gDNA
    g2, _ = gdna_estimate(stats, stranded=True, strand_error=0.01)
    assert g2 < g
    assert gdna_estimate({"primary_mapped": 0}, stranded=True) == (None, "none")
    # unstranded: intergenic density scaled to the genome
    spans = {"chr1": np.array([[1000, 3000]])}
    g3, m3 = gdna_estimate({"primary_mapped": 1000, "intergenic": 50}, stranded=False,
                           chrom_lengths={"chr1": 10000}, spans=spans, read_length=1)
    assert m3 == "intergenic_density" and g3 == pytest.approx(50 * 10000 / 8000 / 1000)
    assert gdna_estimate({"primary_mapped": 1000, "intergenic": 50}, stranded=False) == (None, "none")
    assert effective_intergenic_length(spans, {"chr1": 10000, "chr2": 500}, 101) == (900 + 6900 + 400)


def test_evaluate_outlier_rules_fire_with_named_rule():
    df = pd.DataFrame({"hemoglobin_fraction": [0.01, 0.011, 0.012, 0.009, 0.010, 0.04, 0.15]},
                      index=list("abcdefg"))
    cfg = load_thresholds(overrides={"rules": {"hemoglobin_fraction": {"warn_at_or_above": 0.5,
                                                                        "fail_at_or_above": 0.9}}})
    out = evaluate(df, cfg, n_genes=100)
    assert out.at["a", "hemoglobin_fraction_status"] == "pass"
    assert out.at["f", "hemoglobin_fraction_status"] == "warn"  # z = 6 > 4
    assert out.at["g", "hemoglobin_fraction_status"] == "fail"  # z = 28 > 12
    assert any("cohort outlier (robust z=" in r for r in out.at["g", "reasons"])
    # too small a cohort: no outlier rule
    small = evaluate(df.iloc[[0, 1, 6]], cfg, n_genes=100)
    assert small.at["g", "hemoglobin_fraction_status"] == "pass"


def test_geneset_masks(tmp_path):
    ann = read_gtf(write_gtf(tmp_path / "g.gtf"))
    gs = GeneSets.from_annotation(ann)
    names = ann.genes["gene_name"].to_numpy()
    assert names[gs.rrna].tolist() == ["RNA45SN1"]
    assert names[gs.mito].tolist() == ["MT-CO1"]
    assert names[gs.hemoglobin].tolist() == ["HBB", "HBA1"]
    assert names[gs.chry].tolist() == ["RPS4Y1"]
    assert math.isclose(gs.erythroid.sum(), 1) and math.isclose(gs.platelet.sum(), 1)


def test_multiqc_report(cohort):
    require_module("multiqc")
    root, sheet, gtf, _ = cohort
    _run(root, sheet, gtf, multiqc_report=True)
    html = root / "qc" / "multiqc" / "multiqc_report.html"
    assert html.is_file()
    text = html.read_text(errors="replace")
    assert "cfRNA QC passport" in text and "cfrna_assignment" in text
    assert not (root / "qc" / "multiqc" / ".multiqc_tmp").exists()


def test_degradation_needs_two_concordant_signals():
    n = 8
    df = pd.DataFrame({
        "three_prime_bias": [0.01] * n, "spliced_exonic_fraction": [0.2] * n, "adapter_fraction": [0.04] * n,
    }, index=[f"s{i}" for i in range(n)])
    df.loc["s0", ["three_prime_bias", "spliced_exonic_fraction"]] = [0.2, 0.05]  # two signals
    df.loc["s1", "adapter_fraction"] = 0.3  # one signal only
    cfg = load_thresholds()
    out = evaluate(df, cfg, n_genes=1000)
    assert out.at["s0", "degradation_status"] == "fail"
    assert any(r.startswith("fail: degradation: 2 of 3 signals") for r in out.at["s0", "reasons"])
    assert out.at["s1", "degradation_status"] == "pass" and out.at["s1", "status"] == "warn"
    assert out.at["s2", "status"] == "pass"
    off = evaluate(df, load_thresholds(overrides={"degradation_level": "off"}), n_genes=1000)
    assert off.at["s0", "status"] == "warn"
    with pytest.raises(ConfigError, match="degradation_signals must map"):
        load_thresholds(overrides={"degradation_signals": {"three_prime_bias": "up"}})


def test_unstranded_gdna_estimate_is_capped_at_warn():
    df = pd.DataFrame({"gdna_fraction": [0.9, 0.9], "gdna_method": ["intergenic_density", "strand"]},
                      index=["u", "s"])
    out = evaluate(df, load_thresholds(), n_genes=1000)
    assert out.at["u", "gdna_fraction_status"] == "warn"
    assert "capped at warn" in out.at["u", "reasons"][0]
    assert out.at["s", "gdna_fraction_status"] == "fail"


def test_unstranded_cohort_uses_bam_header(cohort, tmp_path):
    """Unstranded libraries: gDNA from intergenic density, genome size from the BAM header."""
    import pysam
    root, sheet, gtf, samples = cohort
    ids = _gene_ids(gtf)
    write_sample(root, "S00", ids, seed=0, stranded="unstranded")
    header = {"HD": {"VN": "1.6", "SO": "coordinate"},
              "SQ": [{"SN": "chr1", "LN": 200000}, {"SN": "chr2", "LN": 50000}, {"SN": "chrM", "LN": 16569},
                     {"SN": "chrY", "LN": 10000}]}
    with pysam.AlignmentFile(str(root / "alignment" / "S00.bam"), "wb", header=header):
        pass
    summary = _run(root, sheet, gtf)
    assert summary.at["S00", "gdna_method"] == "intergenic_density"
    assert 0 < summary.at["S00", "gdna_fraction"] <= 1
    assert summary.at["S00", "antisense_fraction"] is None or pd.isna(summary.at["S00", "antisense_fraction"])


def test_bad_sex_value_is_config_error(cohort):
    root, _sheet, gtf, samples = cohort
    sheet = write_sheet(root / "sheet_badsex.csv", samples, sex={"S01": "unknown-ish"})
    with pytest.raises(ConfigError, match="column 'sex': unknown value 'unknown-ish' for sample S01"):
        _run(root, sheet, gtf)


def test_multiqc_missing_is_logged_not_error(cohort, monkeypatch, caplog):
    import cfrna.qc.multiqc as mqc

    root, sheet, gtf, _ = cohort
    monkeypatch.setattr(mqc, "multiqc_available", lambda: False)
    with caplog.at_level("INFO", logger="cfrna.qc.multiqc"):
        _run(root, sheet, gtf, multiqc_report=True)
    assert "MultiQC report skipped" in caplog.text
    assert (root / "qc" / "multiqc" / "cfrna_qc_mqc.tsv").is_file()
    assert not (root / "qc" / "multiqc" / "multiqc_report.html").exists()
