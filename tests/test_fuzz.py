"""Fuzzing the readers of untrusted files: GTF, FASTQ, samplesheet and the numba BAM decoder.

Every mutated input must give a result or one of the project's errors (a one-line message),
never another exception, an interpreter crash or an out-of-bounds read.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import textwrap

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfrna.errors import CfrnaError

GTF = (
    b'chr1\tsrc\tgene\t100\t900\t.\t+\t.\tgene_id "G1"; gene_name "IFI27";\n'
    b'chr1\tsrc\texon\t100\t200\t.\t+\t.\tgene_id "G1"; transcript_id "T1"; exon_number "1";\n'
    b'chr1\tsrc\texon\t800\t900\t.\t+\t.\tgene_id "G1"; transcript_id "T1"; exon_number "2";\n'
    b'chr2\tsrc\texon\t10\t50\t.\t-\t.\tgene_id "G2"; gene_name "HBB"; gene_biotype "protein_coding";\n'
)

FASTQ = b"@r1 1:N:0\nACGTACGTAC\n+\nIIIIIIIIII\n@r2\nGGGTTTAAAC\n+\n##########\n"

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    b = bytearray(data)
    for pos, val in edits:
        if b:
            b[pos % len(b)] = val
    if cut is not None and b:
        b = b[: cut % (len(b) + 1)]
    return bytes(b)


edits_st = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=12)
cut_st = st.one_of(st.none(), st.integers(0, 10_000))


@FUZZ
@given(edits=edits_st, cut=cut_st, gz=st.booleans())
def test_gtf_reader_fuzz(tmp_path, edits, cut, gz):
    from cfrna.reference import read_gtf

    data = mutate(GTF, edits, cut)
    p = tmp_path / "f.gtf"
    p.write_bytes(gzip.compress(data)[: max(10, len(data))] if gz and cut else gzip.compress(data) if gz else data)
    try:
        ann = read_gtf(p)
    except CfrnaError as exc:
        assert "\n" not in exc.one_line()
    else:
        assert len(ann.genes) >= 1 and (ann.genes["end"] >= ann.genes["start"]).all()


@FUZZ
@given(edits=edits_st, cut=cut_st, gz=st.booleans())
def test_fastq_reader_fuzz(tmp_path, edits, cut, gz):
    from cfrna.io.fastq import iter_fastq

    data = mutate(FASTQ, edits, cut)
    p = tmp_path / ("f.fastq.gz" if gz else "f.fastq")
    p.write_bytes(gzip.compress(data) if gz else data)
    try:
        recs = list(iter_fastq(p))
    except CfrnaError as exc:
        assert "\n" not in exc.one_line()
    else:
        assert all(len(s) == len(q) for _, s, q in recs)


@FUZZ
@given(text=st.text(max_size=400))
def test_samplesheet_reader_fuzz(tmp_path, text):
    from cfrna.io.samplesheet import read_samplesheet

    p = tmp_path / "s.csv"
    p.write_text("sample,patient_id,visit_month,arm,flare,fastq_1,fastq_2,strandedness\n" + text)
    try:
        read_samplesheet(p)
    except CfrnaError as exc:
        assert "\n" not in exc.one_line()


def test_bam_decoder_fuzz_in_a_child_process(tmp_path):
    """Many mutated BAMs counted in a child process: a segfault would show as a negative exit code."""
    import pysam

    hdr = {"HD": {"VN": "1.6", "SO": "coordinate"}, "SQ": [{"SN": "chr1", "LN": 5000}, {"SN": "chr2", "LN": 5000}]}
    bam = tmp_path / "ok.bam"
    with pysam.AlignmentFile(str(bam), "wb", header=hdr) as out:
        for i in range(400):
            a = pysam.AlignedSegment(out.header)
            a.query_name = f"r{i}"
            a.reference_id = i % 2
            a.reference_start = 50 + 7 * i
            a.cigarstring = "20M100N30M" if i % 3 == 0 else "50M"
            a.query_sequence = "A" * 50
            a.query_qualities = pysam.qualitystring_to_array("I" * 50)
            a.flag = 16 if i % 2 else 0
            a.mapping_quality = 60
            a.set_tag("NH", 1 + (i % 5 == 0))
            out.write(a)
    (tmp_path / "g.gtf").write_bytes(GTF)
    script = textwrap.dedent(f"""
        import gzip, random
        from pathlib import Path
        from cfrna.count import count_reads
        from cfrna.errors import CfrnaError
        raw = gzip.decompress(Path({str(bam)!r}).read_bytes())
        rng = random.Random(7)
        ok = err = 0
        for k in range(150):
            data = bytearray(raw)
            for _ in range(rng.randint(1, 30)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            if k % 4 == 0:
                data = data[: rng.randrange(len(data))]
            p = Path({str(tmp_path)!r}) / "fz.bam"
            # every fifth file is plain gzip (not BGZF): must be rejected as not a BAM
            p.write_bytes(gzip.compress(bytes(data), mtime=0) if k % 5 == 0 else _w(bytes(data)))
            try:
                count_reads(p, {str(tmp_path / 'g.gtf')!r}, Path({str(tmp_path)!r}) / "o.tsv",
                          strandedness="unstranded", paired=False)
                ok += 1
            except CfrnaError as exc:
                assert "\\n" not in exc.one_line()
                err += 1
        print(ok, err)
    """)
    helper = textwrap.dedent("""
        import zlib, struct
        def _w(data):
            out = bytearray()
            for i in range(0, max(1, len(data)), 60000):
                chunk = data[i:i + 60000]
                c = zlib.compressobj(6, zlib.DEFLATED, -15)
                comp = c.compress(chunk) + c.flush()
                bsize = len(comp) + 25
                out += struct.pack("<4BI2BH2BHH", 31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, bsize)
                out += comp + struct.pack("<II", zlib.crc32(chunk) & 0xffffffff, len(chunk))
            return bytes(out + bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000"))
    """)
    proc = subprocess.run([sys.executable, "-c", helper + script], capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    ok, err = map(int, proc.stdout.split())
    assert ok + err == 150 and err > 0
