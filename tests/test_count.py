"""cfrna.count: numba kernels vs the naive reference, threads, CLI, bad inputs and a decoder fuzz."""

from __future__ import annotations

import gzip
import json
import logging
import random
import struct
import sys
from pathlib import Path

import deflate
import numpy as np
import pandas as pd
import pysam
import pytest

from cfrna.cli import main
from cfrna.count import SUMMARY_CATEGORIES, count_reads
from cfrna.errors import ConfigError, EmptyResultError, InputFormatError
from cfrna.io.bam import iter_record_batches
from tests.helpers.bam import make_synthetic
from tests.helpers.naive_count import naive_count

STRANDS = ["unstranded", "forward", "reverse"]
OPTION_SETS = [
    {},
    {"min_mapq": 10, "primary_only": True},
    {"multi_mapping": True, "fraction": True},
    {"allow_multi_overlap": True},
    {"multi_mapping": True, "allow_multi_overlap": True, "fraction": True, "min_mapq": 3},
]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("count_synth")
    out = {}
    for paired, sort in [(False, "coordinate"), (False, "none"), (True, "coordinate"), (True, "name")]:
        out[(paired, sort)] = make_synthetic(d, paired=paired, n=1200, seed=11, sort=sort)
    return out


def _read_counts(path) -> pd.Series:
    return pd.read_csv(path, sep="\t", index_col=0, dtype={"count": str})["count"]


@pytest.mark.parametrize("paired,sort", [(False, "coordinate"), (False, "none"), (True, "coordinate"),
                                         (True, "name")])
@pytest.mark.parametrize("strand", [0, 1, 2])
def test_kernels_match_naive(synth, tmp_path, paired, sort, strand):
    bam, gtf = synth[(paired, sort)]
    for opts in OPTION_SETS:
        counts, summary, stats = naive_count(bam, gtf, strandedness=strand, paired=paired, **opts)
        res = count_reads(bam, gtf, tmp_path / "c.tsv", strandedness=STRANDS[strand], paired=paired, **opts)
        got = _read_counts(tmp_path / "c.tsv").astype(float)
        want = pd.Series(counts)
        assert list(got.index) == list(want.index), "genes in GTF order"
        np.testing.assert_allclose(got.to_numpy(), want.round(2).to_numpy(), atol=0.006, err_msg=str(opts))
        assert res["summary"] == summary, opts
        for k, v in stats.items():
            assert res["stats"][k] == v, (k, opts)


def test_outputs_and_stats_json(synth, tmp_path):
    bam, gtf = synth[(True, "coordinate")]
    res = count_reads(bam, gtf, tmp_path / "s.counts.tsv", strandedness="reverse", paired=True, sample="s1")
    lines = (tmp_path / "s.counts.tsv").read_text().splitlines()
    assert lines[0] == "gene_id\tcount"
    assert all(ln.split("\t")[1].isdigit() for ln in lines[1:]), "integer counts without --fraction"
    summ = (tmp_path / "s.counts.tsv.summary").read_text().splitlines()
    assert summ[0].startswith("Status\t")
    assert [ln.split("\t")[0] for ln in summ[1:]] == list(SUMMARY_CATEGORIES)
    stats = json.loads((tmp_path / "s.counts.tsv.stats.json").read_text())
    assert stats == res["stats"]
    assert stats["sample"] == "s1" and stats["paired"] is True and stats["strandedness"] == "reverse"
    parts = ["exonic_sense", "exonic_antisense", "intronic_sense", "intronic_antisense", "intergenic"]
    assert sum(stats[k] for k in parts) == stats["unique"] <= stats["primary_mapped"]
    assert stats["duplicates"] > 0 and stats["mito"] > 0 and stats["spliced"] > 0
    assert 0 <= stats["three_prime_bias"] <= 1
    assert stats["genes_detected"] == sum(int(ln.split("\t")[1]) > 0 for ln in lines[1:])


def test_sense_antisense_for_reverse_library(tmp_path):
    """A reverse-stranded read 1 on the opposite strand of a + gene is library-sense."""
    gtf = tmp_path / "g.gtf"
    gtf.write_text('c1\tt\texon\t100\t300\t.\t+\t.\tgene_id "A";\nc1\tt\texon\t600\t700\t.\t+\t.\tgene_id "A";\n')
    bam = tmp_path / "r.bam"
    hdr = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "c1", "LN": 2000}]}
    with pysam.AlignmentFile(str(bam), "wb", header=hdr) as out:
        for name, flag, pos in [("minus_exon", 16, 120), ("plus_exon", 0, 130), ("minus_intron", 16, 400),
                                ("plus_far", 0, 1500)]:
            a = pysam.AlignedSegment(out.header)
            a.query_name, a.flag, a.reference_id, a.reference_start = name, flag, 0, pos
            a.mapping_quality, a.cigarstring = 60, "30M"
            a.query_sequence, a.query_qualities = "A" * 30, pysam.qualitystring_to_array("I" * 30)
            out.write(a)
    st = count_reads(bam, gtf, tmp_path / "c.tsv", strandedness="reverse", paired=False)["stats"]
    assert (st["exonic_sense"], st["exonic_antisense"], st["intronic_sense"], st["intergenic"]) == (1, 1, 1, 1)
    st = count_reads(bam, gtf, tmp_path / "c.tsv", strandedness="forward", paired=False)["stats"]
    assert (st["exonic_sense"], st["exonic_antisense"], st["intronic_antisense"]) == (1, 1, 1)
    st = count_reads(bam, gtf, tmp_path / "c.tsv", strandedness="unstranded", paired=False)["stats"]
    assert (st["exonic_sense"], st["exonic_antisense"], st["intronic_sense"]) == (2, 0, 1)


@pytest.mark.parametrize("paired", [False, True])
def test_threads_identical(synth, tmp_path, paired):
    bam, gtf = synth[(paired, "coordinate")]
    a = count_reads(bam, gtf, tmp_path / "t1.tsv", strandedness="unstranded", paired=paired, threads=1)
    b = count_reads(bam, gtf, tmp_path / "t2.tsv", strandedness="unstranded", paired=paired, threads=2)
    assert (tmp_path / "t1.tsv").read_text() == (tmp_path / "t2.tsv").read_text()
    assert a["summary"] == b["summary"] and a["stats"] == b["stats"]


def test_small_chunks_and_table_growth(synth, tmp_path, monkeypatch):
    """Records spanning chunk edges and a growing pending-mate table give the same numbers."""
    from cfrna.count import counter
    from cfrna.reference import read_gtf

    bam, gtf = synth[(True, "name")]
    ann = read_gtf(gtf)
    big = counter.count_bam(bam, ann, strandedness=0, paired=True)
    small = counter.count_bam(bam, ann, strandedness=0, paired=True, chunk_bytes=1 << 12)
    np.testing.assert_array_equal(big["state"].counts, small["state"].counts)
    np.testing.assert_array_equal(big["state"].summary, small["state"].summary)
    bam_c, _ = synth[(True, "coordinate")]
    # coordinate order: mates wait in the pending table; start it tiny so that it must grow
    monkeypatch.setattr(counter, "_INITIAL_TABLE", 4)
    grown = counter.count_bam(bam_c, ann, strandedness=0, paired=True, chunk_bytes=1 << 12)
    assert len(grown["state"].t_state) > 4
    monkeypatch.undo()
    ref = counter.count_bam(bam_c, ann, strandedness=0, paired=True)
    np.testing.assert_array_equal(grown["state"].counts, ref["state"].counts)
    np.testing.assert_array_equal(grown["state"].acc, ref["state"].acc)


@pytest.mark.parametrize("paired,sort", [(False, "coordinate"), (True, "coordinate"), (True, "name")])
def test_parallel_chunks_identical(synth, tmp_path, paired, sort):
    """Many small chunks across 2 threads (mates split across chunks, pairing in file order) and
    record arrays that must grow mid-chunk give the numbers of one thread and one big chunk."""
    from cfrna.count import counter
    from cfrna.io import bam as bam_mod
    from cfrna.reference import read_gtf

    bam, gtf = synth[(paired, sort)]
    ann = read_gtf(gtf)
    ref = counter.count_bam(bam, ann, strandedness=2, paired=paired)
    orig = bam_mod.Slot.__init__

    def tiny(self, chunk_bytes):  # start with room for 16 records: decode must grow and resume
        orig(self, chunk_bytes)
        self.records = bam_mod.Records(16, 32)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bam_mod.Slot, "__init__", tiny)
        for threads in (1, 2):
            got = counter.count_bam(bam, ann, strandedness=2, paired=paired, threads=threads, chunk_bytes=1 << 12)
            np.testing.assert_array_equal(got["state"].counts, ref["state"].counts)
            np.testing.assert_array_equal(got["state"].acc, ref["state"].acc)
            np.testing.assert_array_equal(got["state"].per_gene, ref["state"].per_gene)
            assert got["records"] == ref["records"]


def test_python_inflate_fallback(synth, tmp_path, monkeypatch):
    """Without the libdeflate symbols the package API inflates: same numbers, same errors."""
    from cfrna.io import bgzf

    bam, gtf = synth[(True, "coordinate")]
    a = count_reads(bam, gtf, tmp_path / "native.tsv", strandedness="reverse", paired=True, threads=2)
    monkeypatch.setattr(bgzf, "NATIVE", False)
    b = count_reads(bam, gtf, tmp_path / "python.tsv", strandedness="reverse", paired=True, threads=2)
    assert (tmp_path / "native.tsv").read_text() == (tmp_path / "python.tsv").read_text()
    assert a["summary"] == b["summary"] and a["stats"] == b["stats"]
    data = bytearray(Path(bam).read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = tmp_path / "bad.bam"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputFormatError, match="CRC|decompress|BGZF"):
        count_reads(bad, gtf, tmp_path / "o.tsv", strandedness="reverse", paired=True)


def test_native_inflate_is_used():
    from cfrna.io import bgzf

    assert bgzf.NATIVE, "libdeflate symbols of the deflate package not found: inflating block by block in Python"


def test_decoder_matches_pysam(synth):
    bam, _ = synth[(True, "coordinate")]
    ref = [(r.flag, r.reference_id, r.reference_start, r.mapping_quality) for r in
           pysam.AlignmentFile(str(bam), "rb").fetch(until_eof=True)]
    got = []
    for _h, rec in iter_record_batches(bam, chunk_bytes=1 << 12):
        got += list(zip(rec.flag[:rec.n].tolist(), rec.tid[:rec.n].tolist(), rec.pos[:rec.n].tolist(),
                        rec.mapq[:rec.n].tolist(), strict=True))
    assert got == ref


def test_cli(synth, tmp_path, capsys):
    bam, gtf = synth[(False, "coordinate")]
    out = tmp_path / "x" / "cli.counts.tsv"
    rc = main(["count", "--bam", str(bam), "--gtf", str(gtf), "--out", str(out), "--strandedness", "forward",
               "-M", "--fraction", "-O", "--threads", "2"])
    assert rc == 0
    assert "assigned" in capsys.readouterr().out
    assert out.exists() and Path(str(out) + ".summary").exists() and Path(str(out) + ".stats.json").exists()
    rc = main(["count", "--bam", str(bam), "--gtf", str(gtf), "--out", str(out), "--strandedness", "sideways"])
    assert rc == 2



def test_cli_start_up_skips_scipy_linalg(synth, tmp_path):
    """``cfrna count`` keeps numba from importing scipy.linalg; scipy.linalg still imports afterwards."""
    import subprocess

    bam, gtf = synth[(False, "coordinate")]
    code = (
        "import sys\n"
        "from cfrna.cli import main\n"
        f"rc = main(['-q', 'count', '--bam', {str(bam)!r}, '--gtf', {str(gtf)!r}, '--out', {str(tmp_path / 'c.tsv')!r}, "
        "'-s', 'forward'])\n"
        "assert rc == 0\n"
        "assert 'scipy.linalg' not in sys.modules, 'scipy.linalg was imported'\n"
        "import scipy.linalg.cython_blas\n"
        "import numpy as np\n"
        "from numba import njit\n"
        "assert njit(lambda a: np.dot(a, a))(np.ones(3)) == 3.0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------ bad inputs


def _bgzf(data: bytes) -> bytes:
    """Compress ``data`` as BGZF blocks (with the EOF marker)."""
    out = []
    for i in range(0, len(data), 65280):
        chunk = data[i:i + 65280]
        comp = deflate.deflate_compress(chunk, 6)
        bsize = len(comp) + 25
        out.append(b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x00\xff\x06\x00BC\x02\x00" + struct.pack("<H", bsize) + comp
                   + struct.pack("<II", deflate.crc32(chunk), len(chunk)))
    out.append(bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000"))
    return b"".join(out)


@pytest.fixture(scope="module")
def small_bam(synth):
    return synth[(False, "coordinate")]


def test_truncated_bam(small_bam, tmp_path):
    bam, gtf = small_bam
    data = Path(bam).read_bytes()
    for cut in (len(data) // 2, len(data) - 40, 30):
        p = tmp_path / f"trunc{cut}.bam"
        p.write_bytes(data[:cut])
        for threads in (1, 2):
            with pytest.raises(InputFormatError, match="truncated|ends inside"):
                count_reads(p, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False, threads=threads)


def test_corrupt_bytes(small_bam, tmp_path):
    bam, gtf = small_bam
    data = bytearray(Path(bam).read_bytes())
    data[len(data) // 2] ^= 0xFF
    p = tmp_path / "corrupt.bam"
    p.write_bytes(bytes(data))
    for threads in (1, 2):
        with pytest.raises(InputFormatError, match="corrupt|CRC|decompress|BGZF"):
            count_reads(p, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False, threads=threads)


def test_corrupt_record_inside_valid_bgzf(small_bam, tmp_path):
    bam, gtf = small_bam
    raw = bytearray(gzip.decompress(Path(bam).read_bytes()))
    (l_text,) = struct.unpack_from("<i", raw, 4)
    i = 8 + l_text
    (n_ref,) = struct.unpack_from("<i", raw, i)
    i += 4
    for _ in range(n_ref):
        (ln,) = struct.unpack_from("<i", raw, i)
        i += 8 + ln
    raw[i + 4 + 12] = 0xFF  # n_cigar_op of the first record: far past the record
    raw[i + 4 + 13] = 0x7F
    p = tmp_path / "badrec.bam"
    p.write_bytes(_bgzf(bytes(raw)))
    for threads in (1, 2):
        with pytest.raises(InputFormatError, match="corrupt BAM record"):
            count_reads(p, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False, threads=threads)


def test_not_a_bam(small_bam, tmp_path):
    _, gtf = small_bam
    sam = tmp_path / "x.sam"
    sam.write_text("@HD\tVN:1.6\nr1\t4\t*\t0\t0\t*\t*\t0\t0\tA\tI\n")
    with pytest.raises(InputFormatError, match="not a BAM"):
        count_reads(sam, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False)
    gz = tmp_path / "x.gz"
    gz.write_bytes(gzip.compress(b"hello world"))
    with pytest.raises(InputFormatError, match="BGZF|not a BAM"):
        count_reads(gz, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False)
    bgz = tmp_path / "x.bgz"
    bgz.write_bytes(_bgzf(b"hello world, not a BAM at all"))
    with pytest.raises(InputFormatError, match="not a BAM"):
        count_reads(bgz, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False)


def test_empty_bam(small_bam, tmp_path):
    _, gtf = small_bam
    empty = tmp_path / "empty.bam"
    empty.write_bytes(b"")
    with pytest.raises(InputFormatError, match="empty"):
        count_reads(empty, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False)
    header_only = tmp_path / "header_only.bam"
    with pysam.AlignmentFile(str(header_only), "wb", header={"SQ": [{"SN": "chr1", "LN": 100}]}):
        pass
    with pytest.raises(EmptyResultError, match="no alignment records"):
        count_reads(header_only, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False)
    assert not (tmp_path / "o.tsv").exists()


def test_unsorted_but_claims_coordinate(small_bam, tmp_path):
    _, gtf = small_bam
    p = tmp_path / "liar.bam"
    hdr = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "chr1", "LN": 60000}]}
    with pysam.AlignmentFile(str(p), "wb", header=hdr) as out:
        for name, pos in [("a", 500), ("b", 100)]:
            a = pysam.AlignedSegment(out.header)
            a.query_name, a.flag, a.reference_id, a.reference_start = name, 0, 0, pos
            a.cigarstring, a.query_sequence = "10M", "A" * 10
            out.write(a)
    with pytest.raises(InputFormatError, match="out of order"):
        count_reads(p, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False)


def test_reference_mismatch(small_bam, tmp_path, caplog):
    bam, _ = small_bam
    gtf = tmp_path / "other.gtf"
    gtf.write_text('1\tt\texon\t1\t100\t.\t+\t.\tgene_id "X";\n')
    with pytest.raises(InputFormatError, match=r"no chromosome of the GTF \(1\).*BAM \(chr1"):
        count_reads(bam, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False)
    gtf.write_text('chr1\tt\texon\t1\t100\t.\t+\t.\tgene_id "X";\nchrZ\tt\texon\t1\t100\t.\t+\t.\tgene_id "Y";\n')
    with caplog.at_level(logging.WARNING, logger="cfrna"):
        count_reads(bam, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False)
    assert "chrZ" in caplog.text


def test_bad_options_and_layout(synth, tmp_path):
    bam, gtf = synth[(False, "coordinate")]
    with pytest.raises(ConfigError, match="--fraction"):
        count_reads(bam, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False, fraction=True)
    with pytest.raises(ConfigError, match="strandedness"):
        count_reads(bam, gtf, tmp_path / "o.tsv", strandedness="yes", paired=False)
    with pytest.raises(ConfigError, match="min-mapq"):
        count_reads(bam, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False, min_mapq=-1)
    with pytest.raises(ConfigError, match="no paired-end reads"):
        count_reads(bam, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=True)
    pe, _ = synth[(True, "coordinate")]
    with pytest.raises(ConfigError, match="add --paired"):
        count_reads(pe, gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False)
    with pytest.raises(InputFormatError, match="not found"):
        count_reads(tmp_path / "missing.bam", gtf, tmp_path / "o.tsv", strandedness="unstranded", paired=False)


def test_decoder_fuzz(small_bam, tmp_path):
    """Random byte mutations of valid BGZF-wrapped BAM data: an InputFormatError or a result, never a crash."""
    bam, gtf = small_bam
    raw = gzip.decompress(Path(bam).read_bytes())[:60000]
    rng = random.Random(1)
    outcomes = {"ok": 0, "error": 0}
    for k in range(60):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 20)):
            j = rng.randrange(len(data))
            data[j] = rng.randrange(256)
        if k % 3 == 0:
            data = data[: rng.randrange(len(data))]
        p = tmp_path / f"fuzz{k}.bam"
        p.write_bytes(_bgzf(bytes(data)))
        try:
            count_reads(p, gtf, tmp_path / "fz.tsv", strandedness="unstranded", paired=False, threads=1 + k % 2)
            outcomes["ok"] += 1
        except (InputFormatError, EmptyResultError, ConfigError):
            outcomes["error"] += 1
    assert outcomes["error"] > 0
