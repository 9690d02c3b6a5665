"""The native mappy path: numba FASTQ chunks and minimap2 called from numba, against the Python path.

The Python path (mappy's ``Aligner.map`` + Python SAM formatting) is the reference: for the same
reads both must write the same SAM bytes, at any thread count.
"""

from __future__ import annotations

import gzip
import logging
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfrna.align import mappy_native
from cfrna.align.index import build_index
from cfrna.align.mappy_runner import align_to_sam
from cfrna.errors import CfrnaError, InputFormatError
from cfrna.io.fastq import EmptyFastqError, iter_fastq_chunks, iter_pairs, read_id


def _records(path1, path2=None, **kw):
    """(id, seq, qual[, seq2, qual2]) of every record, from the chunk reader."""
    out = []
    for c in iter_fastq_chunks(path1, path2, **kw):
        for j in range(c.n):
            r = c.rec1[j]
            one = (bytes(c.buf1[r[0]:r[1]]).decode("latin-1"), bytes(c.buf1[r[2]:r[2] + r[3]]).decode("latin-1"),
                   bytes(c.buf1[r[4]:r[4] + r[3]]).decode("latin-1"))
            if c.buf2 is not None:
                r2 = c.rec2[j]
                one += (bytes(c.buf2[r2[2]:r2[2] + r2[3]]).decode(), bytes(c.buf2[r2[4]:r2[4] + r2[3]]).decode())
            out.append(one)
    return out


def _outcome(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except CfrnaError as exc:
        assert "\n" not in exc.one_line()
        return "error"


def _reference(path1, path2=None):
    out = []
    for r1, r2 in iter_pairs(path1, path2):
        one = (read_id(r1[0]), r1[1], r1[2])
        if r2 is not None:
            one += (r2[1], r2[2])
        out.append(one)
    return out


record_st = st.tuples(
    st.text("abcXYZ019_:.-", min_size=1, max_size=12),           # read id
    st.sampled_from(["", " 1:N:0:ACGT", "\tcomment", "/1", "/2"]),  # header tail
    st.text("ACGTN", max_size=40),                                  # sequence
    st.booleans(),                                                  # repeat the name after '+'
)


def _write(path, recs, *, crlf=False, final_newline=True, gz=False):
    nl = "\r\n" if crlf else "\n"
    text = "".join(f"@{i}{t}{nl}{s}{nl}+{i + t if rep else ''}{nl}{'I' * len(s)}{nl}" for i, t, s, rep in recs)
    if not final_newline:
        text = text[:-len(nl)]
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recs=st.lists(record_st, min_size=1, max_size=30), crlf=st.booleans(), final=st.booleans(),
       gz=st.booleans(), chunk=st.sampled_from([16, 100, 1 << 20]))
def test_chunks_equal_dnaio_records(tmp_path, recs, crlf, final, gz, chunk):
    p = tmp_path / ("r.fq.gz" if gz else "r.fq")
    _write(p, recs, crlf=crlf, final_newline=final, gz=gz)
    assert _outcome(_records, p, chunk_bytes=chunk) == _outcome(_reference, p)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recs=st.lists(record_st, min_size=1, max_size=30), chunk=st.sampled_from([16, 200, 1 << 20]))
def test_paired_chunks_equal_dnaio_records(tmp_path, recs, chunk):
    p1, p2 = tmp_path / "a_R1.fq", tmp_path / "a_R2.fq"
    _write(p1, recs)
    _write(p2, [(i, t.replace("/1", "/2"), s[::-1], rep) for i, t, s, rep in recs])
    assert _outcome(_records, p1, p2, chunk_bytes=chunk) == _outcome(_reference, p1, p2) != "error"


FASTQ = b"@r1\nACGT\n+\nIIII\n@r2\nGGCC\n+\nIIII\n@r3\nTTAA\n+r3\nIIII\n"


@pytest.mark.parametrize(("data", "message"), [
    (FASTQ.replace(b"@r2", b"r2"), "not valid FASTQ at record 2: expected '@'"),
    (FASTQ.replace(b"GGCC\n+\n", b"GGCC\n-\n"), "not valid FASTQ at record 2: expected a '+' line"),
    (FASTQ.replace(b"TTAA\n+r3\nIIII", b"TTAA\n+r3\nIII"), "not valid FASTQ at record 3: sequence and quality"),
    (FASTQ.replace(b"+r3", b"+r4"), "not valid FASTQ at record 3: the '+' line names another read"),
    (FASTQ[:-9], "not valid FASTQ at record 3: file ends inside a record"),
    (FASTQ[:-1] + b"\n\n@r4\nA\n", "not valid FASTQ at record 4"),
])
def test_chunk_reader_errors_name_file_and_record(tmp_path, data, message):
    p = tmp_path / "bad.fq"
    p.write_bytes(data)
    for chunk in (16, 1 << 20):
        with pytest.raises(InputFormatError) as ei:
            _records(p, chunk_bytes=chunk)
        assert message in ei.value.one_line() and "bad.fq" in ei.value.one_line()
        assert "\n" not in ei.value.one_line()


def test_chunk_reader_pair_and_file_errors(tmp_path):
    a, b = tmp_path / "a.fq", tmp_path / "b.fq"
    a.write_bytes(FASTQ)
    b.write_bytes(FASTQ[:32])  # two records
    with pytest.raises(InputFormatError, match="different read counts"):
        _records(a, b, chunk_bytes=16)
    b.write_bytes(FASTQ.replace(b"@r2", b"@rX"))
    with pytest.raises(InputFormatError, match=r"mate names differ at record 2: 'r2'"):
        _records(a, b)
    e = tmp_path / "empty.fq"
    e.write_bytes(b"")
    with pytest.raises(EmptyFastqError):
        _records(e)
    with pytest.raises(InputFormatError, match="cannot open FASTQ"):
        _records(tmp_path / "missing.fq")
    g = tmp_path / "trunc.fq.gz"
    rng = random.Random(3)
    text = "".join(f"@r{i}\n{s}\n+\n{'I' * len(s)}\n"
                   for i, s in enumerate("".join(rng.choices("ACGT", k=60)) for _ in range(3000)))
    data = gzip.compress(text.encode())
    g.write_bytes(data[:len(data) // 2])
    with pytest.raises(InputFormatError, match="truncated or corrupt"):
        _records(g)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 10_000)))
def test_chunk_reader_fuzz_agrees_with_dnaio(tmp_path, edits, cut):
    """Mutated FASTQ: the chunk reader accepts exactly what dnaio accepts, with the same records."""
    b = bytearray(FASTQ)
    for pos, val in edits:
        b[pos % len(b)] = val
    if cut is not None:
        b = b[:cut % (len(b) + 1)]
    p = tmp_path / "f.fq"
    p.write_bytes(bytes(b))
    assert _outcome(_records, p, chunk_bytes=16) == _outcome(_reference, p), bytes(b)


# ---------------------------------------------------------------------------------- alignment


@pytest.fixture(scope="module")
def index(sim_cohort, tmp_path_factory):
    return build_index(sim_cohort / "genome.fa", sim_cohort / "genes.gtf", tmp_path_factory.mktemp("idx"),
                       aligner="mappy")


def _sam(index, tmp_path, f1, f2=None, *, threads=2, native=True, name="out.sam"):
    out = tmp_path / name
    n = align_to_sam(index, f1, f2, out, threads=threads, native=native)
    return n, out.read_bytes()


def test_native_se_equals_python_path(index, sim_cohort, tmp_path, caplog):
    fq = sim_cohort / "fastq" / "s01_R1.fastq.gz"
    with caplog.at_level(logging.INFO, logger="cfrna"):
        n1, native = _sam(index, tmp_path, fq)
    assert "native path" in caplog.text
    n2, python = _sam(index, tmp_path, fq, native=False, name="py.sam")
    assert n1 == n2 == 20000
    assert native == python
    _n, one_thread = _sam(index, tmp_path, fq, threads=1, name="t1.sam")
    assert one_thread == native
    body = [ln for ln in native.decode().splitlines() if not ln.startswith("@")]
    assert len({ln.split("\t", 1)[0] for ln in body}) == 20000
    assert sum(1 for ln in body if "\tNH:i:" in ln and int(ln.split("\t")[1]) & 256) > 0  # secondaries kept


def test_native_pe_equals_python_path(index, sim_cohort_pe, tmp_path):
    f1 = sim_cohort_pe / "fastq" / "s01_R1.fastq.gz"
    f2 = sim_cohort_pe / "fastq" / "s01_R2.fastq.gz"
    n1, native = _sam(index, tmp_path, f1, f2)
    n2, python = _sam(index, tmp_path, f1, f2, native=False, name="py.sam")
    assert n1 == n2 == 10000
    a = native.decode().splitlines()
    b = python.decode().splitlines()
    assert len(a) == len(b)
    # the Python path has to guess which hits belong to which mate; the native path is told
    differ = sum(1 for x, y in zip(a, b, strict=True) if x != y)
    assert differ <= len(a) // 1000, differ


def test_native_path_errors_and_fallback(index, sim_cohort, tmp_path, monkeypatch, caplog):
    fq = sim_cohort / "fastq" / "s01_R1.fastq.gz"
    with gzip.open(fq, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    lines[4 * 15000 + 3] = lines[4 * 15000 + 3][:-1]  # record 15001: quality one base short
    bad = tmp_path / "bad.fastq"
    bad.write_bytes(b"\n".join(lines))
    with pytest.raises(InputFormatError, match="bad.fastq.*record 15001"):
        align_to_sam(index, bad, None, tmp_path / "x.sam", threads=2)
    # the self-check decides: a mismatch means the Python path, with a warning
    monkeypatch.setattr(mappy_native, "_self_check", lambda mapper, al: False)
    monkeypatch.setattr(mappy_native, "_checked", {})
    with caplog.at_level(logging.INFO, logger="cfrna"):
        _n, out = _sam(index, tmp_path, fq, name="fallback.sam")
    assert "native mappy path disabled" in caplog.text and "Python API path" in caplog.text
    monkeypatch.setattr(mappy_native, "_checked", {})
    monkeypatch.setenv("CFRNA_MAPPY_PYTHON", "1")
    assert mappy_native.open_native(object(), "splice:sr", max_fragment=1, contigs=[]) is None
    monkeypatch.delenv("CFRNA_MAPPY_PYTHON")
    monkeypatch.undo()
    _n, native = _sam(index, tmp_path, fq, name="native.sam")
    assert native == out


def test_self_check_passes_on_this_mappy(index):
    from cfrna.align.index import read_contigs
    from cfrna.align.mappy_runner import MAX_FRAGMENT, PRESET, open_aligner

    al = open_aligner(index)
    contigs = read_contigs(index)
    mapper = mappy_native.NativeMapper(al, PRESET, max_fragment=MAX_FRAGMENT, contigs=contigs)
    assert len(mappy_native._probe_reads(al, mapper.lengths)) == 25  # 24 cut from the genome + junk
    assert mappy_native._self_check(mapper, al)
    with pytest.raises(RuntimeError, match="preset"):
        mappy_native.NativeMapper(al, "no-such-preset", max_fragment=MAX_FRAGMENT, contigs=contigs)
