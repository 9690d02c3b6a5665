"""cfrna index: content-hash cache, reuse without rebuild, FASTA/GTF validation, junction BED, STAR."""

from __future__ import annotations

import pytest

from cfrna.align import index as index_mod
from cfrna.align.index import (
    build_index,
    load_manifest,
    read_fasta_lengths,
    resolve_index,
    star_sa_index_nbases,
)
from cfrna.cli import main
from cfrna.errors import ConfigError, InputFormatError
from tests.conftest import require_tool
from tests.helpers.genome import toy_genome


def test_fasta_lengths_and_validation(tmp_path):
    fa, _, seq = toy_genome(tmp_path)
    assert read_fasta_lengths(fa) == [("chrA", 6000), ("chrB", 3000)]
    bad = tmp_path / "bad.fa"
    bad.write_text("ACGT\n>x\nACGT\n")
    with pytest.raises(InputFormatError, match="not a FASTA"):
        read_fasta_lengths(bad)
    dup = tmp_path / "dup.fa"
    dup.write_text(">x\nACGT\n>x\nACGT\n")
    with pytest.raises(InputFormatError, match="duplicate"):
        read_fasta_lengths(dup)
    txt = tmp_path / "t.fa"
    txt.write_text(">x\n1\t2\t3\n")
    with pytest.raises(InputFormatError, match="non-letter"):
        read_fasta_lengths(txt)


def test_cache_reuse_never_rebuilds(tmp_path, monkeypatch):
    fa, gtf, _ = toy_genome(tmp_path)
    cache = tmp_path / "cache"
    d1 = build_index(fa, gtf, cache)
    man = load_manifest(d1)
    assert d1.parent == cache and d1.name.startswith("mappy-") and man["key"] in d1.name
    assert (d1 / "genome.mmi").is_file() and (d1 / "contigs.tsv").is_file()
    assert man["junction_transcripts"] == 2  # t1 (3 exons) and t2 (2 exons); t3 has one exon
    bed = (d1 / "junctions.bed").read_text().splitlines()
    assert bed[0].split("\t")[:6] == ["chrA", "1000", "2600", "t1", "1000", "+"]
    assert bed[0].split("\t")[9:] == ["3", "200,200,200,", "0,600,1400,"]
    mtime = (d1 / "manifest.json").stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("index rebuilt")

    monkeypatch.setattr(index_mod, "_build_mappy", boom)
    d2 = build_index(fa, gtf, cache)
    assert d2 == d1 and (d1 / "manifest.json").stat().st_mtime_ns == mtime
    assert resolve_index(d1, fa, gtf, aligner="mappy") == d1  # an index folder is used as is
    assert resolve_index(cache, fa, gtf, aligner="mappy") == d1  # a cache folder is searched
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temp folders left
    # another GTF gives another key (junctions are part of the index)
    gtf2 = tmp_path / "g2.gtf"
    gtf2.write_text(gtf.read_text().replace("t3", "t4"))
    monkeypatch.undo()
    d3 = build_index(fa, gtf2, cache)
    assert d3 != d1
    with pytest.raises(ConfigError, match="mappy index"):
        resolve_index(d1, fa, gtf, aligner="star")


def test_gtf_chromosomes_must_match(tmp_path, caplog):
    fa, gtf, _ = toy_genome(tmp_path)
    wrong = tmp_path / "wrong.gtf"
    wrong.write_text(gtf.read_text().replace("chrA", "1").replace("chrB", "2"))
    with pytest.raises(InputFormatError) as ei:
        build_index(fa, wrong, tmp_path / "c")
    msg = ei.value.one_line()
    assert "GTF: 1, 2" in msg and "FASTA: chrA, chrB" in msg and "wrong.gtf" in msg
    partial = tmp_path / "partial.gtf"
    partial.write_text(gtf.read_text().replace("chrB", "chrZ"))
    build_index(fa, partial, tmp_path / "c")
    assert any("chrZ" in r.getMessage() for r in caplog.records)


def test_cli_index_and_errors(tmp_path, capsys):
    fa, gtf, _ = toy_genome(tmp_path)
    rc = main(["-q", "index", "--fasta", str(fa), "--gtf", str(gtf), "--aligner", "mappy", "--outdir", str(tmp_path)])
    out = capsys.readouterr().out.strip()
    assert rc == 0 and load_manifest(out)["aligner"] == "mappy"
    rc = main(["-q", "index", "--fasta", str(gtf), "--aligner", "mappy", "--outdir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1 and "not a FASTA" in err[0]


def test_star_sa_index_nbases():
    assert star_sa_index_nbases(3_100_000_000) == 14
    assert star_sa_index_nbases(12_000_000) == 10
    assert star_sa_index_nbases(171_001) == 7
    assert star_sa_index_nbases(100) == 4


def test_star_index_cached(tmp_path, monkeypatch):
    require_tool("STAR")
    fa, gtf, _ = toy_genome(tmp_path)
    d = build_index(fa, gtf, tmp_path / "c", aligner="star", sjdb_overhang=49)
    man = load_manifest(d)
    assert man["sjdbOverhang"] == 49 and man["genomeSAindexNbases"] == star_sa_index_nbases(9000)
    assert (d / "star" / "SA").is_file() and (d / "star" / "sjdbList.out.tab").is_file()
    assert not (d / "_work").exists()
    monkeypatch.setattr(index_mod, "_build_star", lambda *a, **k: pytest.fail("STAR index rebuilt"))
    assert build_index(fa, gtf, tmp_path / "c", aligner="star", sjdb_overhang=49) == d
    assert d.is_dir()


def test_mmap_threshold_pinned_and_annotation_freed_before_mappy_builds(tmp_path, monkeypatch):
    """minimap2 builds its tables with glibc's mmap threshold fixed at its default (else the heap keeps
    ~50% more at gigabase scale, docs/benchmarks.md) and after the junction BED is written from the GTF."""
    import contextlib

    import mappy

    fa, gtf, _ = toy_genome(tmp_path)
    events = []
    real_aligner = mappy.Aligner

    @contextlib.contextmanager
    def threshold():
        events.append("pin")
        yield
        events.append("unpin")

    def aligner(*a, **k):
        events.append("bed" if any((tmp_path / "cache").glob(".mappy-*/junctions.bed")) else "no-bed")
        return real_aligner(*a, **k)

    monkeypatch.setattr(index_mod, "default_mmap_threshold", threshold)
    monkeypatch.setattr(mappy, "Aligner", aligner)
    d = build_index(fa, gtf, tmp_path / "cache")
    assert events == ["pin", "bed", "unpin"]
    assert load_manifest(d)["junction_transcripts"] == 2
