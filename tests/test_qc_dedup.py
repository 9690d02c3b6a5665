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
from cfrna.qc import run_qc
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
    return run_qc(sheet, gtf, root / "counts", root / "alignment", root / "trimmed", root / "qc",
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
