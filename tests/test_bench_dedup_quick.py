"""benchmarks/dedup.py --quick: the UMI-tagged BAM with planted duplicates is made from the simulator's
transcript model, every tool runs, and cfrna's deduplicated counts equal the peers' gene by gene:
``--dedup position`` = Picard MarkDuplicates + featureCounts --ignoreDup, ``--dedup directional`` =
umi_tools dedup --method directional + featureCounts (single-end and paired-end)."""

from __future__ import annotations

import json

import pysam
import pytest

from benchmarks import dedup as bd
from tests.conftest import require_tool


def test_data_spliced_reverse_stranded_with_umis_and_duplicates(tmp_path):
    require_tool("samtools")
    bam, gtf, info = bd.make_data(tmp_path, reads=4000, paired=True, n_genes=300, seed=3)
    assert 0.4 < info["duplicate_fraction"] < 0.6 and info["records"] == 4000
    names, spliced, umis = set(), 0, set()
    strand_of = {}
    for ln in gtf.read_text().splitlines():
        f = ln.split("\t")
        if len(f) > 8 and f[2] == "exon":
            strand_of.setdefault(f[0], []).append((int(f[3]), int(f[4]), f[6]))
    with pysam.AlignmentFile(str(bam)) as fh:
        assert fh.header["HD"]["SO"] == "coordinate"
        n = 0
        for r in fh:
            n += 1
            names.add(r.query_name)
            umis.add(r.query_name.rsplit("_", 1)[1])
            spliced += "N" in r.cigarstring
            assert r.get_tag("MC") and r.is_paired and r.is_proper_pair
    assert n == 4000 and len(names) == 2000  # both mates of every pair, unique names
    assert spliced > 100 and all(len(u) == 8 and set(u) <= set("ACGT") for u in umis)
    # cached: a second call returns the same files without rewriting them
    mtime = bam.stat().st_mtime_ns
    assert bd.make_data(tmp_path, reads=4000, paired=True, n_genes=300, seed=3)[0].stat().st_mtime_ns == mtime


@pytest.mark.parametrize("paired", [False, True], ids=["se", "pe"])
def test_quick_counts_equal_peers(tmp_path, paired):
    for t in ("samtools", "featureCounts", "PicardCommandLine"):
        require_tool(t)
    if bd.tool("umi_tools") is None:
        require_tool("umi_tools")
    if not bd.cfrna_has_dedup():
        pytest.fail("cfrna count has no --dedup")
    out = tmp_path / "r.json"
    argv = ["--quick", "--workdir", str(tmp_path), "--json", str(out)] + (["--paired"] if paired else [])
    assert bd.main(argv) == 0
    res = json.loads(out.read_text())
    assert set(res["compare"]) == set(bd.PEERS)
    for mode, c in res["compare"].items():
        assert c["genes_differing"] == 0, (mode, c)
        assert c["total"] == c["peer_total"] > 0
    # deduplication removed about the planted duplicate fraction (position: also distinct molecules
    # that happen to share a position; directional keeps those apart by their UMIs)
    plain = res["results"]["featureCounts (no dedup)"]["counted"]
    pos = res["results"]["cfrna count --dedup position"]["counted"]
    umi = res["results"]["cfrna count --dedup directional"]["counted"]
    assert 0.4 < 1 - umi / plain < 0.6 and pos < umi
