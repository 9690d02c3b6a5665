"""benchmarks/human_scale.py: the data are GENCODE-tiled and seeded; ``--quick`` runs every stage (STAR
excluded) and its counts equal featureCounts (per gene and per category) on its SE and PE BAMs at 1 and 2
threads. ``--quick`` is meant for CI: under 3 minutes of wall on 2 cores."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import human_scale as hs
from tests.conftest import require_shared, require_tool

ROOT = Path(__file__).resolve().parents[1]


def test_copy_ids_unique_and_gencode_shaped():
    assert hs._copy_id("ENSG00000282458.1", 0) == "ENSG00000282458.1"
    assert hs._copy_id("ENSG00000282458.1", 7) == "ENSG07000282458.1"
    assert hs._copy_id("OTTHUMT00000471217.2", 21) == "OTTHUMT21000471217.2"
    assert hs._copy_id("35692", 3) == "35692_c3"  # tRNAscan ids have no ENS form


def test_tiled_annotation_keeps_structures_with_unique_ids(tmp_path):
    require_shared("encode_chr19", hs.GENCODE_CHR19.name)
    scale = hs.Scale("t", copies=2, window=2_000_000, se_reads=0, pe_pairs=0, count_se=0, count_pe=0)
    gtf = tmp_path / "g.gtf"
    info = hs.make_annotation(scale, gtf)
    lines = [ln.split("\t") for ln in gtf.read_text().splitlines() if not ln.startswith("#")]
    by_chrom = {c: [ln for ln in lines if ln[0] == c] for c in ("chr1", "chr2")}
    assert len(by_chrom["chr1"]) == len(by_chrom["chr2"]) == info["lines"] // 2
    # same coordinates, strands, feature types and biotypes in both copies
    assert [ln[2:8] for ln in by_chrom["chr1"]] == [ln[2:8] for ln in by_chrom["chr2"]]
    gid = re.compile(r'gene_id "([^"]+)"')
    ids = {c: {gid.search(ln[8]).group(1) for ln in rows} for c, rows in by_chrom.items()}
    assert ids["chr1"] and not ids["chr1"] & ids["chr2"]
    assert info["genes"] == len(ids["chr1"]) * 2
    assert max(int(ln[4]) for ln in lines) <= 2_000_000


def test_contig_has_repeats_at_the_requested_fractions():
    rng = np.random.default_rng(1)
    cons = [rng.integers(0, 4, size=L, dtype=np.uint8) for _n, L, *_ in hs.REPEAT_FAMILIES]
    genes = [("G1", 100_000, 120_000, "+", "protein_coding")]
    tx = {"T1": [(100_000, 100_300), (110_000, 110_500), (119_000, 120_000)]}
    seq, stats = hs.make_contig(2_000_000, genes, tx, {"G1": ["T1"]}, cons, None, np.random.default_rng(2))
    assert seq.dtype == np.uint8 and len(seq) == 2_000_000 and seq.max() == 4
    for name, _L, frac, *_ in hs.REPEAT_FAMILIES:
        assert stats[name]["bp"] / 2e6 == pytest.approx(frac, rel=0.25), name
    assert stats["processed_pseudogenes"]["copies"] == 0  # one gene: int(0.35) copies
    assert 0.02 < stats["segmental_duplications"]["bp"] / 2e6 < 0.2
    # GT-AG at the annotated introns of a + strand gene
    assert seq[100_300:100_302].tolist() == [2, 3] and seq[109_998:110_000].tolist() == [0, 2]
    # the same seed gives the same contig
    again, _ = hs.make_contig(2_000_000, genes, tx, {"G1": ["T1"]}, cons, None, np.random.default_rng(2))
    assert np.array_equal(seq, again)


def test_refuses_an_old_minimap2(tmp_path):
    fake = tmp_path / "minimap2"
    fake.write_text("#!/bin/sh\necho 2.24-r1122\n")
    fake.chmod(0o755)
    with pytest.raises(SystemExit) as exc:
        hs.main(["--quick", "--minimap2", str(fake)])
    assert exc.value.code == 2
    fake.write_text("#!/bin/sh\necho 2.30-r1299-dirty\n")  # has splice:sr (2.29+)
    assert hs.minimap2_version(str(fake)) == "2.30-r1299-dirty"
    assert hs.minimap2_version(str(tmp_path / "missing")) is None


def test_rejects_a_bad_read_number():
    with pytest.raises(SystemExit) as exc:
        hs.main(["--quick", "--align-reads", "1"])
    assert exc.value.code == 2


@pytest.mark.slow
def test_quick_run_counts_equal_featurecounts(tmp_path):
    require_shared("encode_chr19", hs.GENCODE_CHR19.name)
    for tool in ("featureCounts", "samtools"):
        require_tool(tool)
    out = tmp_path / "quick.json"
    env = {**os.environ, "CFRNA_BENCH_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "human_scale.py"), "--quick", "--json", str(out)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["counts_identical"] is True
    for lib in ("count_se", "count_pe"):
        assert res[lib]["records"] >= 40_000
        for t in ("T1", "T2"):
            cell = res[lib][t]
            assert cell["identical_genes"] and cell["identical_categories"], (lib, t, cell)
            assert cell["assigned"] > 0
    ann = res["annotation"]
    assert ann["count_sample1"]["layout_from_cache"] is False
    assert ann["count_sample2"]["layout_from_cache"] is True
    assert {"read_gtf_pandas", "count_layout_cold", "count_layout_cached"} <= set(ann)
    assert set(res["index"]) == {"mappy"}  # no STAR in --quick
    for lib in ("align_se", "align_pe"):
        assert set(res[lib]) == {"reads", "mappy_T2"}
        assert res[lib]["mappy_T2"]["mapping_rate"] > 0.8, lib
    assert {"trim_se", "trim_pe", "align_se", "count_pe", "qc_cohort"} <= set(res["per_sample"])
    genome = res["data"]["genome"]
    assert genome["bp"] == 3 * 4_000_000
    assert 0.3 < sum(v["genome_fraction"] for v in genome["placed"].values()) < 0.6
    src = res["data"]["reads_se"]["source_fraction"]
    assert src["mrna"] > 0.6 and src["pre"] > 0.05 and src["gdna"] > 0.01
