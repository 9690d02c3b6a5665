"""cfrna align: mappy and STAR on simulated and real reads; BAM contract, mate fields, NH, stats."""

from __future__ import annotations

import gzip
import json
import logging
import random
import subprocess

import pysam
import pytest

from cfrna.align import align_reads
from cfrna.align.index import build_index
from cfrna.cli import main
from cfrna.errors import ConfigError, InputFormatError
from tests.conftest import require_shared, require_tool
from tests.helpers.genome import toy_genome

ALIGN_KEYS = {"sample", "aligner", "reads", "mapped", "unique", "multi", "unmapped", "mapping_rate",
              "unique_fraction", "multi_fraction", "spliced_fraction", "soft_clipped_fraction", "mismatch_rate",
              "insert_size_median", "strandedness"}
STRAND_KEYS = {"declared", "inferred", "forward_fraction", "reverse_fraction", "undetermined_fraction", "reads_used",
               "used", "agrees"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("index_cache")


def _fastq_count(path) -> int:
    with gzip.open(path, "rt") as fh:
        return sum(1 for _ in fh) // 4


def _truth_hit(rec) -> bool:
    """Simulated read names carry the fragment: <sample>:<n>:<source>:<gene>:<chrom>:<start>-<end>:<strand>."""
    f = rec.query_name.split(":")
    s, e = (int(x) for x in f[5].split("-"))
    return rec.reference_name == f[4] and rec.reference_start < e and rec.reference_end > s - 1


def check_bam_contract(bam, n_templates: int, *, paired: bool) -> list:
    """Sorted + indexed, every read once as primary, NH/HI on mapped records; returns primary records."""
    assert (bam.parent / (bam.name + ".bai")).is_file()
    prim = []
    with pysam.AlignmentFile(str(bam)) as fh:
        assert fh.header["HD"]["SO"] == "coordinate"
        assert fh.check_index()
        last = (-1, -1)
        for r in fh.fetch(until_eof=True):
            key = (r.reference_id if r.reference_id >= 0 else 1 << 30, r.reference_start)
            assert key >= last, "BAM not coordinate-sorted"
            last = key
            if not r.is_unmapped:
                assert r.has_tag("NH") and r.has_tag("HI") and r.has_tag("NM")
                assert r.get_tag("HI") <= r.get_tag("NH")
            if not r.is_secondary and not r.is_supplementary:
                prim.append(r)
    assert len(prim) == n_templates * (2 if paired else 1)
    return prim


@pytest.fixture(scope="module")
def se_run(sim_cohort, tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("align_se")
    fq = sim_cohort / "fastq" / "s01_R1.fastq.gz"
    res = align_reads("s01", fq, None, sim_cohort / "genome.fa", sim_cohort / "genes.gtf", out, aligner="mappy",
                    index=cache, threads=2, strandedness="reverse")
    return res, out, fq


def test_mappy_single_end_sim(se_run, sim_cohort):
    res, out, fq = se_run
    n = _fastq_count(fq)
    assert set(res) >= ALIGN_KEYS and set(res["strandedness"]) == STRAND_KEYS
    assert json.loads((out / "s01.align.json").read_text()) == res
    assert res["reads"] == n and res["mapped"] + res["unmapped"] == n
    assert res["mapping_rate"] > 0.97 and res["unique"] + res["multi"] == res["mapped"]
    assert res["insert_size_median"] is None and 0 <= res["mismatch_rate"] < 0.02
    prim = check_bam_contract(out / "s01.bam", n, paired=False)
    mapped = [r for r in prim if not r.is_unmapped]
    assert sum(_truth_hit(r) for r in mapped) / len(mapped) > 0.98
    # annotated junctions (GTF) are used: the spliced fraction is close to STAR's (about 0.20 here)
    assert res["spliced_fraction"] > 0.15
    st = res["strandedness"]
    assert st["inferred"] == "reverse" and st["used"] == "reverse" and st["agrees"] is True
    truth = json.loads((sim_cohort / "truth" / "params.json").read_text())
    assert truth["strandedness"] == "reverse"


def test_junctions_raise_spliced_fraction(se_run, sim_cohort, tmp_path, cache):
    res, _, fq = se_run
    plain = align_reads("s01", fq, None, sim_cohort / "genome.fa", sim_cohort / "genes.gtf", tmp_path,
                      index=cache, junctions=False)
    assert plain["spliced_fraction"] < res["spliced_fraction"] - 0.03
    assert plain["soft_clipped_fraction"] > res["soft_clipped_fraction"]


def test_seq_cigar_consistent_with_reference(se_run, sim_cohort):
    """samtools calmd recomputes NM from SEQ/CIGAR/reference: it must agree with our NM tags."""
    require_tool("samtools")
    _, out, _ = se_run
    proc = subprocess.run(["samtools", "calmd", str(out / "s01.bam"), str(sim_cohort / "genome.fa")],
                          capture_output=True, text=True, check=True)
    diffs = proc.stderr.count("different NM")
    n = sum(1 for ln in proc.stdout.splitlines() if not ln.startswith("@"))
    assert diffs <= 0.001 * n


def test_mappy_paired_end_sim(sim_cohort_pe, tmp_path, cache):
    f1 = sim_cohort_pe / "fastq" / "s01_R1.fastq.gz"
    f2 = sim_cohort_pe / "fastq" / "s01_R2.fastq.gz"
    res = align_reads("p1", f1, f2, sim_cohort_pe / "genome.fa", sim_cohort_pe / "genes.gtf", tmp_path,
                    index=cache, threads=2)
    n = _fastq_count(f1)
    assert res["reads"] == n and res["mapping_rate"] > 0.97 and res["insert_size_median"] > 50
    assert res["strandedness"]["inferred"] == "reverse" and res["strandedness"]["used"] == "reverse"
    prim = check_bam_contract(tmp_path / "p1.bam", n, paired=True)
    by_name: dict[str, dict[int, pysam.AlignedSegment]] = {}
    for r in prim:
        assert r.is_paired
        by_name.setdefault(r.query_name, {})[1 if r.is_read1 else 2] = r
    assert len(by_name) == n and all(len(v) == 2 for v in by_name.values())
    proper = 0
    for m in by_name.values():
        a, b = m[1], m[2]
        for x, y in ((a, b), (b, a)):
            assert x.mate_is_unmapped == y.is_unmapped
            if not y.is_unmapped:
                assert x.next_reference_id == y.reference_id and x.next_reference_start == y.reference_start
                assert x.mate_is_reverse == y.is_reverse
        if a.is_proper_pair:
            proper += 1
            assert b.is_proper_pair and a.is_reverse != b.is_reverse
            assert a.template_length == -b.template_length != 0
    assert proper / n > 0.95
    # mate identity: read 1 is the sequence of R1 (simulated reverse library: read 1 antisense)
    with gzip.open(f1, "rt") as fh:
        r1 = {ln.split(None, 1)[0][1:].removesuffix("/1"): next(fh).strip() for ln in fh if ln.startswith("@")}
    for name, m in list(by_name.items())[:500]:
        a = m[1]
        seq = a.get_forward_sequence()
        assert seq == r1[name]


@pytest.mark.slow
def test_star_agrees_with_mappy_sim(se_run, sim_cohort, tmp_path, cache):
    require_tool("STAR")
    res_m, _, fq = se_run
    res_s = align_reads("s01", fq, None, sim_cohort / "genome.fa", sim_cohort / "genes.gtf", tmp_path,
                      aligner="star", index=cache, threads=2)
    assert set(res_s) >= ALIGN_KEYS
    check_bam_contract(tmp_path / "s01.bam", res_s["reads"], paired=False)
    assert abs(res_s["mapping_rate"] - res_m["mapping_rate"]) < 0.05
    assert abs(res_s["spliced_fraction"] - res_m["spliced_fraction"]) < 0.05
    assert res_s["strandedness"]["inferred"] == res_m["strandedness"]["inferred"] == "reverse"


REAL = {
    # dataset: (folder, R1, R2, FASTA, GTF or None, templates)
    "chicken": ("rnaseq_nf_ggal", "ggal_gut_1.fq.gz", "ggal_gut_2.fq.gz",
                "ggal_1_48850000_49020000.Ggal71.500bpflank.fa", "ggal_1_48850000_49020000.bed.gff", 2937),
    "yeast70": ("nfcore_rnaseq", "SRR6357070_1.fastq.gz", "SRR6357070_2.fastq.gz", "genome_chrI.fa.gz", None, 100),
    "yeast71": ("nfcore_rnaseq", "SRR6357071_1.fastq.gz", "SRR6357071_2.fastq.gz", "genome_chrI.fa.gz", None, 100),
}


@pytest.mark.parametrize("dataset", sorted(REAL))
def test_real_reads_both_aligners(tmp_path, cache, dataset):
    """Real reads, trimmed as in the workflow, aligned by mappy and STAR: mapping rates within 5 points."""
    from cfrna.trim import trim_reads

    folder, r1, r2, fa, gtf, n_in = REAL[dataset]
    d = require_shared(folder)
    tr = trim_reads(dataset, d / r1, d / r2, tmp_path / "trimmed")
    assert tr["reads_in"] == n_in
    f1, f2 = (tmp_path / "trimmed" / f"{dataset}_{i}.trimmed.fastq.gz" for i in (1, 2))
    res = {}
    for aligner in ("mappy", "star"):
        if aligner == "star":
            require_tool("STAR")
        res[aligner] = align_reads(dataset, f1, f2, d / fa, d / gtf if gtf else None, tmp_path / aligner,
                                 aligner=aligner, index=cache, threads=2)
        check_bam_contract(tmp_path / aligner / f"{dataset}.bam", tr["reads_out"], paired=True)
        assert res[aligner]["reads"] == tr["reads_out"] and res[aligner]["insert_size_median"] > 50
        assert res[aligner]["mapping_rate"] > 0.85
    m, s = res["mappy"], res["star"]
    assert abs(m["mapping_rate"] - s["mapping_rate"]) < 0.05
    if gtf:
        assert abs(m["spliced_fraction"] - s["spliced_fraction"]) < 0.05
        assert m["strandedness"]["inferred"] == s["strandedness"]["inferred"] == "unstranded"
        assert min(m["strandedness"]["reads_used"], s["strandedness"]["reads_used"]) > 2000
    else:  # no annotation: nothing to infer strandedness from
        assert m["strandedness"]["inferred"] == s["strandedness"]["inferred"] == "undetermined"


def _toy_repeat(tmp_path):
    """Two contigs sharing an identical 400 bp block: reads inside it align twice (NH=2)."""
    rng = random.Random(3)

    def rnd(n):
        return "".join(rng.choice("ACGT") for _ in range(n))

    rep = rnd(400)
    a, b = rnd(2000) + rep + rnd(2000), rnd(1500) + rep + rnd(1500)
    fa = tmp_path / "rep.fa"
    fa.write_text(f">c1\n{a}\n>c2\n{b}\n")
    return fa, a, b, rep, rnd


def _write_fq(path, recs):
    path.write_bytes(gzip.compress("".join(f"@{n}\n{s}\n+\n{'I' * len(s)}\n" for n, s in recs).encode()))
    return path


def _rc(s):
    return s.translate(str.maketrans("ACGT", "TGCA"))[::-1]


def test_multimappers_get_nh_and_secondaries(tmp_path):
    fa, a, _, rep, rnd = _toy_repeat(tmp_path)
    recs = [(f"rep{i}", rep[50 + 20 * i: 150 + 20 * i]) for i in range(5)]
    recs += [(f"uni{i}", a[300 + 50 * i: 400 + 50 * i]) for i in range(5)]
    recs += [("junk", rnd(100))]
    fq = _write_fq(tmp_path / "r.fq.gz", recs)
    res = align_reads("m", fq, None, fa, None, tmp_path / "o", index=tmp_path / "c", strandedness="unstranded")
    assert res["reads"] == 11 and res["unmapped"] == 1 and res["multi"] == 5 and res["unique"] == 5
    recs_by = {}
    with pysam.AlignmentFile(str(tmp_path / "o" / "m.bam")) as fh:
        for r in fh:
            recs_by.setdefault(r.query_name, []).append(r)
    for i in range(5):
        rr = recs_by[f"rep{i}"]
        assert len(rr) == 2 and {r.get_tag("NH") for r in rr} == {2} and sorted(r.get_tag("HI") for r in rr) == [1, 2]
        assert sum(r.is_secondary for r in rr) == 1 and {r.reference_name for r in rr} == {"c1", "c2"}
        assert all(r.mapping_quality <= 1 for r in rr)
        uni = recs_by[f"uni{i}"]
        assert len(uni) == 1 and uni[0].get_tag("NH") == 1
    assert recs_by["junk"][0].is_unmapped and recs_by["junk"][0].flag == 4


def test_mate_identity_when_one_mate_is_unmapped(tmp_path):
    fa, a, _, _, rnd = _toy_repeat(tmp_path)
    r1, r2 = [], []
    for i in range(6):
        frag = a[500 + 100 * i: 750 + 100 * i]
        m1, m2 = frag[:100], _rc(frag)[:100]
        if i % 2:
            m1 = rnd(100)  # only mate 2 maps
        else:
            m2 = rnd(100)  # only mate 1 maps
        r1.append((f"p{i}/1", m1))
        r2.append((f"p{i}/2", m2))
    f1, f2 = _write_fq(tmp_path / "1.fq.gz", r1), _write_fq(tmp_path / "2.fq.gz", r2)
    res = align_reads("h", f1, f2, fa, None, tmp_path / "o", index=tmp_path / "c", strandedness="unstranded")
    assert res["reads"] == 6 and res["mapped"] == 6
    with pysam.AlignmentFile(str(tmp_path / "o" / "h.bam")) as fh:
        recs = [r for r in fh if not r.is_secondary and not r.is_supplementary]
    assert len(recs) == 12
    for r in recs:
        i = int(r.query_name[1:])
        should_map = (r.is_read1 and i % 2 == 0) or (r.is_read2 and i % 2 == 1)
        assert r.is_unmapped != should_map, r.query_name
        expected = dict(r1)[f"p{i}/1"] if r.is_read1 else dict(r2)[f"p{i}/2"]
        assert r.get_forward_sequence() == expected
        if r.is_unmapped:  # placed at its mate's position
            assert r.reference_name == "c1" and r.next_reference_start == r.reference_start
        else:
            assert r.mate_is_unmapped and not r.is_proper_pair


def test_declared_strandedness_disagreement_warns(se_run, sim_cohort, tmp_path, cache, caplog):
    _, _, fq = se_run
    with caplog.at_level(logging.WARNING, logger="cfrna"):
        res = align_reads("s01", fq, None, sim_cohort / "genome.fa", sim_cohort / "genes.gtf", tmp_path,
                        index=cache, strandedness="forward")
    st = res["strandedness"]
    assert st["declared"] == "forward" and st["inferred"] == "reverse" and st["used"] == "forward"
    assert st["agrees"] is False
    assert any("disagrees" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_cli_align_and_errors(tmp_path, capsys):
    fa, gtf, seq = toy_genome(tmp_path)
    reads = [(f"r{i}", seq["chrA"][1000 + 10 * i: 1080 + 10 * i]) for i in range(10)]
    fq = _write_fq(tmp_path / "r.fq.gz", reads)
    idx = build_index(fa, gtf, tmp_path / "c")
    rc = main(["-q", "align", "--fasta", str(fa), "--gtf", str(gtf), "--fastq-1", str(fq), "--sample", "t",
               "--index", str(idx), "--outdir", str(tmp_path / "o")])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["reads"] == 10 and out["mapped"] == 10
    assert (tmp_path / "o" / "t.bam.bai").is_file()
    bad = tmp_path / "bad.fq"
    bad.write_text("@x\nACGT\n+\nII\n")
    rc = main(["-q", "align", "--fasta", str(fa), "--fastq-1", str(bad), "--sample", "b", "--index", str(idx),
               "--outdir", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "bad.fq" in err[0] and "record 1" in err[0]
    assert not (tmp_path / "o" / "b.bam").exists()
    with pytest.raises(ConfigError):
        align_reads("t", fq, None, fa, gtf, tmp_path / "o", aligner="bwa")
    with pytest.raises(ConfigError):
        align_reads("t", fq, None, fa, gtf, tmp_path / "o", index=idx, strandedness="sense")
    with pytest.raises(InputFormatError, match="not found"):
        align_reads("t", tmp_path / "missing.fq", None, fa, gtf, tmp_path / "o", index=idx)


def test_empty_input_and_empty_reads(tmp_path):
    from cfrna.errors import EmptyResultError

    fa, gtf, seq = toy_genome(tmp_path)
    idx = build_index(fa, gtf, tmp_path / "c")
    empty = tmp_path / "empty.fq.gz"
    empty.write_bytes(gzip.compress(b""))
    with pytest.raises(EmptyResultError, match="empty"):
        align_reads("e", empty, None, fa, gtf, tmp_path / "o", index=idx)
    # a zero-length read is kept as unmapped with SEQ/QUAL '*'
    fq = tmp_path / "z.fq"
    fq.write_text(f"@z\n\n+\n\n@ok\n{seq['chrA'][1000:1080]}\n+\n{'I' * 80}\n")
    res = align_reads("z", fq, None, fa, gtf, tmp_path / "o", index=idx)
    assert res["reads"] == 2 and res["mapped"] == 1
    with pysam.AlignmentFile(str(tmp_path / "o" / "z.bam")) as fh:
        z = [r for r in fh if r.query_name == "z"]
    assert len(z) == 1 and z[0].is_unmapped and z[0].query_sequence is None


def test_star_rejects_bad_fastq_before_running(tmp_path):
    fa, gtf, _ = toy_genome(tmp_path)
    bad = tmp_path / "bad.fq"
    bad.write_text(">not fastq\nACGT\n")
    with pytest.raises(InputFormatError, match="not valid FASTQ at record 1"):
        align_reads("b", bad, None, fa, gtf, tmp_path / "o", aligner="star", index=tmp_path / "c")
    assert not (tmp_path / "c").exists()  # failed before building any index


def test_star_two_pass_on_spliced_reads(tmp_path, capsys):
    require_tool("STAR")
    fa, gtf, seq = toy_genome(tmp_path)
    a = seq["chrA"]
    tx = a[1000:1200] + a[1600:1800] + a[2400:2600]  # t1's exons (GTF 1-based 1001-1200, 1601-1800, 2401-2600)
    reads = [(f"s{i}", tx[20 * i: 20 * i + 80]) for i in range(26)]
    fq = _write_fq(tmp_path / "s.fq.gz", reads)
    rc = main(["-q", "align", "--fasta", str(fa), "--gtf", str(gtf), "--fastq-1", str(fq), "--sample", "t2",
               "--aligner", "star", "--star-two-pass", "--index", str(tmp_path / "c"), "--outdir", str(tmp_path / "o")])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["aligner"] == "star" and res["reads"] == 26 and res["mapping_rate"] > 0.9
    assert res["spliced_fraction"] == pytest.approx(6 / 26, abs=1e-4)  # reads 7-9 and 17-19 cross a junction
    prim = check_bam_contract(tmp_path / "o" / "t2.bam", 26, paired=False)
    assert any("N" in (r.cigarstring or "") for r in prim)


def test_mappy_annotated_junctions_rescue_short_overhangs(tmp_path):
    """Reads crossing t1's junctions with overhangs down to 10 nt: all spliced only with the GTF's junctions."""
    fa, gtf, seq = toy_genome(tmp_path)
    a = seq["chrA"]
    tx = a[1000:1200] + a[1600:1800] + a[2400:2600]
    fq = _write_fq(tmp_path / "s.fq.gz", [(f"s{i}", tx[10 * i: 10 * i + 80]) for i in range(52)])
    crossing = 14 / 52  # reads 13-19 and 33-39
    with_j = align_reads("j", fq, None, fa, gtf, tmp_path / "j", index=tmp_path / "c")
    without = align_reads("n", fq, None, fa, gtf, tmp_path / "n", index=tmp_path / "c", junctions=False)
    assert with_j["mapping_rate"] == without["mapping_rate"] == 1.0
    assert with_j["spliced_fraction"] == pytest.approx(crossing, abs=1e-4)
    assert with_j["soft_clipped_fraction"] == 0.0
    assert without["spliced_fraction"] < crossing and without["soft_clipped_fraction"] > 0
    assert with_j["annotated_junctions"] == "jumps" and without["annotated_junctions"] == "none"


def test_mappy_junction_scoring_option(tmp_path, capsys):
    """cfrna align --junction-scoring: the junctions also score splice sites (minimap2 --junc-bed); recorded."""
    fa, gtf, seq = toy_genome(tmp_path)
    a = seq["chrA"]
    tx = a[1000:1200] + a[1600:1800] + a[2400:2600]
    fq = _write_fq(tmp_path / "s.fq.gz", [(f"s{i}", tx[10 * i: 10 * i + 80]) for i in range(52)])
    rc = main(["-q", "align", "--fasta", str(fa), "--gtf", str(gtf), "--fastq-1", str(fq), "--sample", "sc",
               "--junction-scoring", "--index", str(tmp_path / "c"), "--outdir", str(tmp_path / "o")])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and res["annotated_junctions"] == "jumps+scoring"
    assert res["spliced_fraction"] == pytest.approx(14 / 52, abs=1e-4) and res["soft_clipped_fraction"] == 0.0


class _FakeLib:
    """Stands in for mappy's extension module: records the junction loaders called."""

    def __init__(self, jump: bool):
        self.calls: list[str] = []
        self.mm_idx_bed_read = self._fn("bed_read")
        if jump:
            self.mm_idx_jjump_read = self._fn("jjump_read")

    def _fn(self, name):
        calls = self.calls

        class Fn:
            argtypes = restype = None

            def __call__(self, *args):
                calls.append(name)
                return 0
        return Fn()


@pytest.mark.parametrize("scoring, jump, expected", [
    (False, True, ["jjump_read"]),                 # default: annotated jumps only (minimap2 -j)
    (True, True, ["bed_read", "jjump_read"]),      # --junction-scoring: -j and --junc-bed
    (False, False, ["bed_read"]),                  # a build without the jump loader: scoring, or nothing is used
])
def test_load_junctions_calls(monkeypatch, tmp_path, scoring, jump, expected):
    from cfrna.align import mappy_runner

    lib = _FakeLib(jump)
    monkeypatch.setattr(mappy_runner.ctypes, "CDLL", lambda path: lib)
    monkeypatch.setattr(mappy_runner, "index_pointer", lambda al: 1234)
    assert mappy_runner.load_junctions(object(), tmp_path / "j.bed", scoring=scoring) is True
    assert lib.calls == expected
