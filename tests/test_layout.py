"""cfrna.reference.layout: the cached feature layout used by counting, and the interval union."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cfrna.reference import read_gtf
from cfrna.reference.layout import layout_from_annotation, load_layout, merge_intervals

GTF = (
    'c1\tt\texon\t100\t300\t.\t+\t.\tgene_id "A"; transcript_id "a1";\n'
    'c1\tt\texon\t250\t400\t.\t+\t.\tgene_id "A"; transcript_id "a2";\n'
    'c2\tt\texon\t10\t50\t.\t-\t.\tgene_id "B"; transcript_id "b1";\n'
    'c1\tt\texon\t500\t600\t.\t.\t.\tgene_id "C"; transcript_id "c1";\n'
)


def _same(a, b):
    assert a.gene_ids == b.gene_ids and a.chroms == b.chroms
    for f in ("f_chrom", "f_start", "f_end", "f_gene", "f_strand", "gene_strand"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))


def test_layout_matches_annotation_and_is_cached(tmp_path):
    gtf = tmp_path / "g.gtf"
    gtf.write_text(GTF)
    cache = tmp_path / "cache"
    first = load_layout(gtf, cache_dir=cache)
    _same(first, layout_from_annotation(read_gtf(gtf)))
    assert first.gene_ids == ["A", "B", "C"] and first.gene_strand.tolist() == [1, -1, 0]
    assert first.f_strand.tolist() == [1, 1, 2, 0]
    entries = list(cache.glob("*.npz"))
    assert len(entries) == 1
    _same(load_layout(gtf, cache_dir=cache), first)  # from the cache
    # another feature type / attribute or other content: another entry
    gtf.write_text(GTF.replace('"C"', '"D"'))
    assert load_layout(gtf, cache_dir=cache).gene_ids == ["A", "B", "D"]
    assert len(list(cache.glob("*.npz"))) == 2


def test_damaged_or_unwritable_cache(tmp_path):
    gtf = tmp_path / "g.gtf"
    gtf.write_text(GTF)
    cache = tmp_path / "cache"
    ref = load_layout(gtf, cache_dir=cache)
    entry = next(cache.glob("*.npz"))
    entry.write_bytes(b"not an npz")
    _same(load_layout(gtf, cache_dir=cache), ref)  # re-parsed and replaced
    _same(load_layout(gtf, cache_dir=cache), ref)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _same(load_layout(gtf, cache_dir=blocker / "sub"), ref)  # cannot be created: not cached, still works
    _same(load_layout(gtf, cache_dir=None), ref)


def test_bad_gtf_is_not_cached(tmp_path):
    from cfrna.errors import InputFormatError

    gtf = tmp_path / "g.gtf"
    gtf.write_text("c1\tt\texon\t300\t100\t.\t+\t.\tgene_id \"A\";\n")
    with pytest.raises(InputFormatError, match="invalid interval"):
        load_layout(gtf, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.npz")) if (tmp_path / "cache").exists() else True


def test_count_with_cached_layout_needs_no_pandas(tmp_path):
    """A count whose annotation is in the cache starts without importing pandas (start-up time)."""
    import pysam

    gtf = tmp_path / "g.gtf"
    gtf.write_text(GTF)
    bam = tmp_path / "r.bam"
    hdr = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "c1", "LN": 2000}, {"SN": "c2", "LN": 100}]}
    with pysam.AlignmentFile(str(bam), "wb", header=hdr) as out:
        for i, pos in enumerate((120, 260, 520)):
            a = pysam.AlignedSegment(out.header)
            a.query_name, a.flag, a.reference_id, a.reference_start = f"r{i}", 0, 0, pos
            a.mapping_quality, a.cigarstring = 60, "30M"
            a.query_sequence, a.query_qualities = "A" * 30, pysam.qualitystring_to_array("I" * 30)
            out.write(a)
    env = dict(os.environ, CFRNA_ANNOTATION_CACHE=str(tmp_path / "cache"))
    code = (
        "import sys, json; from cfrna.cli import main; "
        f"rc = main(['-q', 'count', '--bam', {str(bam)!r}, '--gtf', {str(gtf)!r}, '--out', {str(tmp_path / 'c.tsv')!r},"
        " '--strandedness', 'unstranded']); print(json.dumps([rc, 'pandas' in sys.modules]))"
    )
    runs = [json.loads(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1]) for _ in range(2)]
    assert runs[0] == [0, True], "first run parses the GTF"
    assert runs[1] == [0, False], "second run reads the cached layout"
    assert Path(tmp_path / "c.tsv").read_text().splitlines()[1:] == ["A\t2", "B\t0", "C\t1"]


def _merge_slow(t, g, s, e):
    out = []
    for key in sorted(set(zip(t.tolist(), g.tolist(), strict=True))):
        iv = sorted((a, b) for tt, gg, a, b in zip(t, g, s, e, strict=True) if (tt, gg) == key)
        cur = list(iv[0])
        for a, b in iv[1:]:
            if a <= cur[1] + 1:
                cur[1] = max(cur[1], b)
            else:
                out.append((*key, *cur))
                cur = [a, b]
        out.append((*key, *cur))
    return out


def test_merge_intervals_matches_slow_reference():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        t, g = rng.integers(0, 3, n), rng.integers(0, 6, n)
        s = rng.integers(1, 500, n)
        e = s + rng.integers(0, 80, n)
        got = list(zip(*(x.tolist() for x in merge_intervals(t, g, s, e)), strict=True))
        assert got == _merge_slow(t, g, s, e)
    assert all(len(x) == 0 for x in merge_intervals(*(np.zeros(0, np.int64),) * 4))


def test_cache_use_is_logged(tmp_path, caplog):
    import logging

    gtf = tmp_path / "g.gtf"
    gtf.write_text(GTF)
    with caplog.at_level(logging.INFO, logger="cfrna"):
        load_layout(gtf, cache_dir=tmp_path / "cache")
        assert "parsed and cached" in caplog.text and "from the annotation cache" not in caplog.text
        caplog.clear()
        load_layout(gtf, cache_dir=tmp_path / "cache")
    assert "3 genes, 4 features from the annotation cache" in caplog.text


def test_unchanged_file_is_not_hashed_again(tmp_path, monkeypatch):
    from cfrna.reference import layout as L

    gtf = tmp_path / "g.gtf"
    gtf.write_text(GTF)
    cache = tmp_path / "cache"
    # a file changed just before it was hashed is hashed again next time (coarse mtime ticks)
    first = load_layout(gtf, cache_dir=cache)
    with monkeypatch.context() as m:
        m.setattr(L, "_key", lambda *a, **k: (_ for _ in ()).throw(AssertionError("hashed again")))
        with pytest.raises(AssertionError, match="hashed again"):
            load_layout(gtf, cache_dir=cache)
    old = gtf.stat().st_mtime - 60
    os.utime(gtf, (old, old))  # an annotation last changed a minute ago
    first = load_layout(gtf, cache_dir=cache)
    link = tmp_path / "staged.gtf"  # a Nextflow task stages the same file as a symlink
    link.symlink_to(gtf)

    def no_hash(*a, **k):
        raise AssertionError("hashed again")

    monkeypatch.setattr(L, "_key", no_hash)
    _same(load_layout(gtf, cache_dir=cache), first)
    _same(load_layout(link, cache_dir=cache), first)
    monkeypatch.undo()
    # new content (other size and mtime): hashed and parsed again, never the stale entry
    gtf.write_text(GTF.replace('"C"', '"Z"'))
    assert load_layout(gtf, cache_dir=cache).gene_ids == ["A", "B", "Z"]
    assert len(list(cache.glob("*.npz"))) == 2
