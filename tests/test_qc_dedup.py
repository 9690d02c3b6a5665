"""QC passport on deduplicated fragments: duplication, complexity, ``*_dedup`` classes, MultiQC sections.

The per-sample files follow docs/architecture.md; the ``dedup`` block of ``<ID>.counts.tsv.stats.json``
is the one ``cfrna count --dedup`` writes (method, fragments, duplicates, unique, histogram, summary,
categories), here drawn from the sampling model of the simulator (a finite molecule pool read with
replacement), so the truth of every number is known.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfrna.errors import InputFormatError
from cfrna.qc import complexity as cx
from cfrna.qc import qc_samples
from cfrna.qc.metrics import DEDUP_CATEGORIES, duplication_metrics
from cfrna.simulate.duplicates import expected_unique
from tests.test_qc import _gene_ids, require_multiqc, write_gtf, write_sample, write_sheet
from tests.test_report_browser import page  # noqa: F401 (fixture)


def dedup_block(n_reads: int, n_mol: int, seed: int, *, intronic_keep: float = 0.9) -> tuple[dict, float]:
    """A dedup block from the pool model, and the exact expected unique fragments at 2x depth."""
    rng = np.random.default_rng(seed)
    w = rng.gamma(4.0, 0.25, n_mol)
    p = w / w.sum()
    copies = np.bincount(rng.choice(n_mol, size=n_reads, p=p), minlength=n_mol)
    h = cx.histogram_from_copies(copies)
    uniq = int((copies > 0).sum())
    ex = int(uniq * 0.6)
    it = int(uniq * 0.3 * intronic_keep)
    cats = {"exonic_sense": ex - 10, "exonic_antisense": 10, "intronic_sense": it - 5, "intronic_antisense": 5,
            "intergenic": uniq - ex - it, "spliced": ex // 4, "mito": uniq // 50}
    block = {"method": "directional", "fragments": n_reads, "duplicates": n_reads - uniq, "unique": uniq,
             "histogram": h.tolist(),
             "summary": {"Assigned": int(ex * 0.9), "Unassigned_NoFeatures": uniq - int(ex * 0.9)},
             "categories": cats}
    return block, expected_unique(p, 2 * n_reads)


@pytest.fixture
def dd_cohort(tmp_path):
    gtf = write_gtf(tmp_path / "genes.gtf")
    ids = _gene_ids(gtf)
    samples = [f"S{i:02d}" for i in range(7)] + ["LOWC"]
    truth = {}
    for i, s in enumerate(samples):
        write_sample(tmp_path, s, ids, seed=i)
        path = tmp_path / "counts" / f"{s}.counts.tsv.stats.json"
        stats = json.loads(path.read_text())
        n_mol = 600 if s == "LOWC" else 16000 + 1000 * i
        block, e2 = dedup_block(20000, n_mol, seed=100 + i)
        stats["dedup"] = block
        stats["duplicates_flagged"] = 0
        path.write_text(json.dumps(stats))
        truth[s] = (block, e2)
    sheet = write_sheet(tmp_path / "samplesheet.csv", samples)
    return tmp_path, sheet, gtf, samples, truth


def _run(root, sheet, gtf, **kw):
    return qc_samples(sheet, gtf, root / "counts", root / "alignment", root / "trimmed", root / "qc",
                  multiqc_report=kw.pop("multiqc_report", False), **kw)


def test_passport_dedup_metrics(dd_cohort):
    root, sheet, gtf, samples, truth = dd_cohort
    summary = _run(root, sheet, gtf)
    for s in samples:
        block, e2 = truth[s]
        row = summary.loc[s]
        assert row["duplication_method"] == "directional"
        assert row["duplication_fraction"] == pytest.approx(block["duplicates"] / block["fragments"])
        assert row["unique_fragments"] == block["unique"]
        assert row["complexity_2x"] == pytest.approx(e2, rel=0.05)
        n1 = dict(map(tuple, block["histogram"])).get(1, 0)
        assert row["saturation"] == pytest.approx(1 - n1 / block["fragments"])
        c = block["categories"]
        ex = c["exonic_sense"] + c["exonic_antisense"]
        it = c["intronic_sense"] + c["intronic_antisense"]
        assert row["intron_exon_ratio_dedup"] == pytest.approx(it / (ex + 1e-4))
        assert row["exonic_fraction_dedup"] == pytest.approx(ex / (ex + it + c["intergenic"]))
        assert row["spliced_exonic_fraction_dedup"] == pytest.approx(c["spliced"] / ex)
        assert row["mito_fraction_dedup"] == pytest.approx(c["mito"] / block["unique"])
        assert row["reads_assigned_dedup"] == block["summary"]["Assigned"]
        # intron/exon before dedup (the raw tally) is a different number from the deduplicated one
        assert row["intron_exon_ratio"] != pytest.approx(row["intron_exon_ratio_dedup"], rel=0.01)
        rec = json.loads((root / "qc" / f"{s}.qc.json").read_text())
        assert rec["complexity_2x"] == pytest.approx(row["complexity_2x"])
        curve = rec["complexity_curve"]
        assert [p for p in curve if p["kind"] == "observed"] == [
            {"fragments": float(block["fragments"]), "unique": float(block["unique"]), "kind": "observed"}]
        assert curve[-1]["fragments"] == pytest.approx(2 * block["fragments"])
        assert curve[-1]["unique"] == pytest.approx(row["complexity_2x"])
    # the low-complexity library stands out (cohort outlier rule on duplication_fraction)
    assert summary.at["LOWC", "duplication_fraction_status"] in ("warn", "fail")
    assert "duplication_fraction" in summary.at["LOWC", "reasons"]
    assert summary.at["S01", "duplication_fraction_status"] == "pass"
    tsv = pd.read_csv(root / "qc" / "qc_summary.tsv", sep="\t")
    assert {"unique_fragments", "complexity_2x", "saturation", "intron_exon_ratio_dedup"} <= set(tsv.columns)
    curves = pd.read_csv(root / "qc" / "complexity_curves.tsv", sep="\t")
    assert set(curves["sample"]) == set(samples) and set(curves["kind"]) == {"interpolated", "observed",
                                                                              "extrapolated"}


def test_multiqc_files(dd_cohort):
    root, sheet, gtf, samples, _ = dd_cohort
    _run(root, sheet, gtf)
    mdir = root / "qc" / "multiqc"
    doc = json.loads((mdir / "cfrna_complexity_mqc.json").read_text())
    assert doc["plot_type"] == "linegraph" and set(doc["data"]) == set(samples)
    gs = (mdir / "cfrna_general_stats_mqc.tsv").read_text()
    assert "plot_type: 'generalstats'" in gs and "complexity_2x" in gs
    table = (mdir / "cfrna_qc_mqc.tsv").read_text()
    assert "saturation" in table and "intron_exon_ratio_dedup" in table


def test_multiqc_report_has_complexity_and_general_stats(dd_cohort):
    require_multiqc()
    root, sheet, gtf, _, _ = dd_cohort
    _run(root, sheet, gtf, multiqc_report=True)
    text = (root / "qc" / "multiqc" / "multiqc_report.html").read_text(errors="replace")
    assert "cfRNA library complexity" in text and "cfrna_complexity_plot" in text
    assert "general_stats_table" in text and "cfRNA Unique at 2x" in text


def test_fallbacks_without_dedup_block():
    base = {"primary_mapped": 1000, "duplicates": 100}
    m = duplication_metrics({**base, "duplicates_flagged": 250})
    assert m == {"duplication_fraction": 0.25, "duplication_method": "flagged", "unique_fragments": 750}
    m = duplication_metrics({**base, "duplicates_flagged": 0})
    assert m == {"duplication_fraction": 0.1, "duplication_method": "position_tally", "unique_fragments": 900}
    assert duplication_metrics({"primary_mapped": 1000, "duplicates": None}) == {}


def test_no_curve_files_without_dedup(tmp_path):
    gtf = write_gtf(tmp_path / "genes.gtf")
    ids = _gene_ids(gtf)
    for i, s in enumerate(["A", "B"]):
        write_sample(tmp_path, s, ids, seed=i)
    sheet = write_sheet(tmp_path / "samplesheet.csv", ["A", "B"])
    (tmp_path / "qc" / "multiqc").mkdir(parents=True)
    (tmp_path / "qc" / "multiqc" / "cfrna_complexity_mqc.json").write_text("{}")  # stale, from an earlier run
    summary = _run(tmp_path, sheet, gtf)
    assert summary["duplication_method"].tolist() == ["position_tally"] * 2
    assert summary["complexity_2x"].isna().all()
    assert not (tmp_path / "qc" / "multiqc" / "cfrna_complexity_mqc.json").exists()
    assert not (tmp_path / "qc" / "complexity_curves.tsv").exists()
    assert json.loads((tmp_path / "qc" / "A.qc.json").read_text())["complexity_curve"] is None


@pytest.mark.parametrize("mutate, word", [
    (lambda b: b.pop("histogram"), "lacks key"),
    (lambda b: b.update(unique=b["unique"] + 1), "disagree"),
    (lambda b: b.update(histogram=[[0, 5]]), "integers"),
    (lambda b: b.update(histogram=[[1, 5]]), "sums to"),
    (lambda b: b.update(fragments="many"), "integers"),
])
def test_bad_dedup_block_names_the_file(dd_cohort, mutate, word):
    root, sheet, gtf, _, _ = dd_cohort
    path = root / "counts" / "S03.counts.tsv.stats.json"
    stats = json.loads(path.read_text())
    mutate(stats["dedup"])
    path.write_text(json.dumps(stats))
    with pytest.raises(InputFormatError, match=word) as exc:
        _run(root, sheet, gtf)
    assert "S03.counts.tsv.stats.json" in str(exc.value)


def test_dedup_categories_contract():
    assert DEDUP_CATEGORIES == ("exonic_sense", "exonic_antisense", "intronic_sense", "intronic_antisense",
                                "intergenic", "spliced", "mito")


def test_report_payload_carries_complexity_curves(tmp_path):
    """The report's QC tab draws qc/complexity_curves.tsv (this run's samples only) when it exists."""
    from cfrna.report.data import collect
    from tests.helpers.report import build_results, require_vendor

    require_vendor()
    res = build_results(tmp_path / "res")
    assert collect(res)["complexity"] is None
    qc = pd.read_csv(res / "qc" / "qc_summary.tsv", sep="\t")
    block, _ = dedup_block(5000, 3000, seed=1)
    rows = [{"sample": s, **pt} for s in [*qc["sample"][:3], "OLD_RUN"] for pt in cx.complexity_curve(block["histogram"])]
    pd.DataFrame(rows).to_csv(res / "qc" / "complexity_curves.tsv", sep="\t", index=False)
    d = collect(res)
    c = pd.DataFrame(d["complexity"]["rows"], columns=d["complexity"]["columns"])
    assert list(dict.fromkeys(c["sample"])) == list(qc["sample"][:3])
    assert set(c["kind"]) == {"interpolated", "observed", "extrapolated"}
    obs = c[c["kind"] == "observed"]
    assert (obs["unique"] == block["unique"]).all()
    (res / "qc" / "complexity_curves.tsv").write_text("sample\tfragments\n")
    with pytest.raises(InputFormatError, match="complexity_curves.tsv"):
        collect(res)


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_report_qc_tab_draws_complexity(tmp_path, page):  # noqa: F811 (the browser fixture)
    from cfrna.report import report_folder
    from tests.helpers.report import build_results, require_vendor

    require_vendor()
    res = build_results(tmp_path / "res")
    qc = pd.read_csv(res / "qc" / "qc_summary.tsv", sep="\t")
    block, _ = dedup_block(5000, 3000, seed=1)
    rows = [{"sample": s, **pt} for s in qc["sample"][:3] for pt in cx.complexity_curve(block["histogram"])]
    pd.DataFrame(rows).to_csv(res / "qc" / "complexity_curves.tsv", sep="\t", index=False)
    html = report_folder(res, title="complexity", anndata=False)
    page.goto(Path(html).resolve().as_uri())
    page.click('[data-tab="qc"]')
    page.wait_for_selector("#qc-complexity.js-plotly-plot")
    assert page.locator("#qc-complexity-box").is_visible()
    assert page.evaluate("document.getElementById('qc-complexity').data.length") == 6  # solid + dotted per sample
    assert page.errors == []  # type: ignore[attr-defined]


@pytest.mark.slow
def test_engine_dedup_recovers_planted_duplicates(tmp_path):
    """Simulated UMI library -> mappy -> cfrna count --dedup directional -> QC passport numbers vs the truth:
    duplicate fraction within 0.02 of the planted one, unique at 2x within 10% of the exact expectation."""
    from cfrna.align import align_reads
    from cfrna.align.index import build_index
    from cfrna.count import count_reads
    from cfrna.io.samplesheet import read_samplesheet
    from cfrna.qc.metrics import complexity_curve_of
    from cfrna.simulate import simulate_cohort
    from cfrna.simulate.duplicates import DuplicateSpec

    cohort = tmp_path / "sim"
    simulate_cohort(cohort, n_samples=2, reads_per_sample=3000, n_genes=240, seed=4,
                    duplicates=DuplicateSpec(pcr_duplicates=0.4, umi_length=8, umi_location="name"))
    truth = pd.read_csv(cohort / "truth" / "duplicates.tsv", sep="\t").set_index("sample")
    sheet = read_samplesheet(cohort / "samplesheet.csv")
    idx = build_index(cohort / "genome.fa", cohort / "genes.gtf", tmp_path / "index", aligner="mappy", threads=2)
    for s in sheet.samples:
        al = align_reads(s.sample, s.fastq_1, None, cohort / "genome.fa", cohort / "genes.gtf", tmp_path / "aln",
                         "mappy", idx, 2, s.strandedness)
        out = tmp_path / "counts" / f"{s.sample}.counts.tsv"
        count_reads(tmp_path / "aln" / f"{s.sample}.bam", cohort / "genes.gtf", out,
                  strandedness=al["strandedness"]["used"], paired=False, threads=2, dedup="directional",
                  dedup_out=tmp_path / "counts" / f"{s.sample}.counts.dedup.tsv")
        stats = json.loads(Path(f"{out}.stats.json").read_text())
        m = duplication_metrics(stats)
        row = truth.loc[s.sample]
        assert m["duplication_method"] == "directional"
        assert abs(m["duplication_fraction"] - row["expected_duplicate_fraction"]) <= 0.02, (m, row.to_dict())
        assert m["complexity_2x"] == pytest.approx(row["expected_unique_2x"], rel=0.10)
        assert m["intron_exon_ratio_dedup"] is not None and m["reads_assigned_dedup"] > 0
        assert complexity_curve_of(stats)[-1]["unique"] == pytest.approx(m["complexity_2x"])


@pytest.mark.slow
def test_cfrna_run_with_umis_and_duplicates(tmp_path):
    """A tiny simulated cohort with PCR duplicates and UMIs through `cfrna run` (defaults --dedup auto,
    --de-counts auto): directional dedup, deduplicated matrix, DE on it, QC columns, complexity curves."""
    from cfrna.cli import main
    from cfrna.simulate import simulate_cohort
    from cfrna.simulate.duplicates import DuplicateSpec

    cohort = tmp_path / "sim"
    simulate_cohort(cohort, n_samples=6, reads_per_sample=2500, n_genes=240, seed=5,
                    duplicates=DuplicateSpec(pcr_duplicates=0.35, umi_length=8, umi_location="name"))
    out = tmp_path / "results"
    rc = main(["run", "--samplesheet", str(cohort / "samplesheet.csv"), "--fasta", str(cohort / "genome.fa"),
               "--gtf", str(cohort / "genes.gtf"), "--contrasts", str(cohort / "contrasts.csv"), "--outdir", str(out),
               "--threads", "2", "--no-progress", "--index-dir", str(tmp_path / "index")])
    assert rc == 0
    truth = pd.read_csv(cohort / "truth" / "duplicates.tsv", sep="\t").set_index("sample")
    qc = pd.read_csv(out / "qc" / "qc_summary.tsv", sep="\t").set_index("sample")
    assert (qc["duplication_method"] == "directional").all()
    err = (qc["duplication_fraction"] - truth["expected_duplicate_fraction"]).abs()
    assert err.max() <= 0.03, err.to_dict()
    assert qc[["unique_fragments", "complexity_2x", "saturation", "intron_exon_ratio_dedup"]].notna().all().all()
    for s in truth.index:
        assert (out / "counts" / f"{s}.counts.dedup.tsv").is_file()
    raw = pd.read_csv(out / "matrix" / "gene_counts.tsv", sep="\t", index_col=0)
    dd = pd.read_csv(out / "matrix" / "gene_counts_dedup.tsv", sep="\t", index_col=0)
    assert list(dd.columns) == list(raw.columns) and (dd <= raw).all().all() and dd.sum().sum() < raw.sum().sum()
    design = pd.read_csv(out / "de" / "design.tsv", sep="\t")
    assert set(design["counts"]) == {"gene_counts_dedup.tsv"}
    params = json.loads((out / "pipeline_info" / "params.json").read_text())["params"]
    assert params["dedup"] == "auto" and params["de_counts"] == "auto"
    assert set(pd.read_csv(out / "qc" / "complexity_curves.tsv", sep="\t")["sample"]) == set(truth.index)
    assert "complexity_2x" in (out / "qc" / "multiqc" / "cfrna_general_stats_mqc.tsv").read_text()
    html = (out / "report" / "index.html").read_text()
    assert '"complexity":{"columns"' in html.replace(" ", "") and "gene_counts_dedup.tsv" in html


def test_run_dedup_options(tmp_path):
    """--dedup auto resolves per sample; --de-counts auto follows the UMIs; bad combinations are ConfigErrors."""
    from types import SimpleNamespace

    from cfrna.errors import ConfigError
    from cfrna.pipeline.local import RunOptions, check_dedup_options, de_counts_kind, sample_dedup

    def sample(name, **umi):
        return SimpleNamespace(sample=name, fastq_1="a.fq.gz", fastq_2=None, umi_pattern=umi.get("pattern"),
                               umi_read=None, umi_in_name=umi.get("in_name"))

    umi, plain = sample("u", in_name=True), sample("p")
    opts = RunOptions(samplesheet="s", fasta="f", gtf="g", outdir=str(tmp_path))
    assert (sample_dedup(opts, umi), sample_dedup(opts, plain)) == ("directional", "position")
    assert de_counts_kind(opts, [umi]) == "dedup" and de_counts_kind(opts, [umi, plain]) == "raw"
    assert de_counts_kind(RunOptions("s", "f", "g", "o", dedup="position"), [umi]) == "raw"
    assert de_counts_kind(RunOptions("s", "f", "g", "o", dedup="none"), [umi]) == "raw"
    assert de_counts_kind(RunOptions("s", "f", "g", "o", de_counts="dedup"), [plain]) == "dedup"
    check_dedup_options(opts, [umi, plain])
    for kw, word in (({"dedup": "umis"}, "--dedup 'umis' unknown"), ({"de_counts": "both"}, "--de-counts"),
                     ({"dedup": "none", "de_counts": "dedup"}, "needs deduplicated counts"),
                     ({"dedup": "directional"}, "sample p has none")):
        with pytest.raises(ConfigError, match=word):
            check_dedup_options(RunOptions("s", "f", "g", "o", **kw), [umi, plain])


def test_matrix_dedup_counts_all_or_none(tmp_path):
    from cfrna.matrix.merge import merge_dedup_counts

    raw = pd.DataFrame({"a": [5, 3], "b": [2, 0]}, index=pd.Index(["G1", "G2"], name="gene_id"))
    assert merge_dedup_counts(raw, tmp_path) is None
    (tmp_path / "a.counts.dedup.tsv").write_text("gene_id\tcount\nG1\t4\nG2\t3\n")
    with pytest.raises(InputFormatError, match="sample b has no deduplicated counts"):
        merge_dedup_counts(raw, tmp_path)
    (tmp_path / "b.counts.dedup.tsv").write_text("gene_id\tcount\nG1\t3\nG2\t0\n")
    with pytest.raises(InputFormatError, match="exceed the raw counts"):
        merge_dedup_counts(raw, tmp_path)
    (tmp_path / "b.counts.dedup.tsv").write_text("gene_id\tcount\nG1\t1\nG2\t0\n")
    out = merge_dedup_counts(raw, tmp_path)
    assert out.to_dict() == {"a": {"G1": 4, "G2": 3}, "b": {"G1": 1, "G2": 0}}
    (tmp_path / "b.counts.dedup.tsv").write_text("gene_id\tcount\nG2\t0\nG1\t1\n")
    with pytest.raises(InputFormatError, match="gene ids differ"):
        merge_dedup_counts(raw, tmp_path)
