"""Flagged duplicates: cfrna count against Picard MarkDuplicates + featureCounts ``--ignoreDup``.

A simulated cohort sample gets PCR-like copies of a share of its read pairs (new names, same
sequence), is aligned with HISAT2 (paired and single-end), and Picard (Debian ``picard-tools``)
marks the duplicates. On those BAMs:

* ``ignore_dup=True`` equals ``featureCounts --ignoreDup`` per gene and per summary category;
* the deduplicated counts written beside the raw ones in the same pass (``dedup_out``) equal
  ``featureCounts --ignoreDup``'s, and the raw ones plain featureCounts';
* ``duplicates_flagged`` equals Picard's duplicate count (pairs + unpaired reads) in its metrics,
  but for the few templates whose primary and secondary records share featureCounts' pairing key;
* ``dedup="position"`` (the engine's own marking, which ignores the 0x400 flags) marks the records
  Picard flags and its deduplicated counts are ``featureCounts --ignoreDup``'s, but for those templates.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from cfrna.count import count_reads
from tests.conftest import require_tool
from tests.helpers.fastq import read_fastq as _fastq
from tests.helpers.fastq import write_fastq as _write_fastq
from tests.helpers.featurecounts import featurecounts
from tests.test_dedup_engine import flagged_records, marked_records

STRANDS = ["unstranded", "forward", "reverse"]
DUP_SHARE = 0.3


def _with_copies(r1, r2, seed):
    """Append copies of a share of the pairs (PCR duplicates): same bases, new names, other qualities."""
    rng = random.Random(seed)
    o1, o2 = list(r1), list(r2)
    for a, b in zip(r1, r2, strict=True):
        if rng.random() < DUP_SHARE:
            for _ in range(rng.choice([1, 1, 2])):
                name = f"@dup{len(o1)}_{a[0][1:].split()[0]}"
                q = "".join(rng.choice("5?I") for _ in a[3])
                o1.append([name, a[1], "+", q[:len(a[1])]])
                o2.append([name, b[1], "+", "".join(rng.choice("5?I") for _ in b[3])])
    order = list(range(len(o1)))
    rng.shuffle(order)
    return [o1[i] for i in order], [o2[i] for i in order]


def _mixed_templates(bam):
    """Names whose primary and secondary records share a pairing key (name, HI, both positions)."""
    import pysam

    keys = {}
    mixed = set()
    with pysam.AlignmentFile(str(bam)) as fh:
        for r in fh:
            fl = r.flag
            own = (-1, 0) if fl & 4 else (r.reference_id, r.reference_start)
            mate = (-1, 0) if fl & 8 else (r.next_reference_id, r.next_reference_start)
            k = (r.query_name, r.get_tag("HI") if r.has_tag("HI") else None, *(own + mate if fl & 64 else mate + own))
            kinds = keys.setdefault(k, set())
            kinds.add(bool(fl & 0x900))
            if len(kinds) == 2:
                mixed.add(r.query_name)
    return mixed


def _picard_metrics(path):
    lines = Path(path).read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith("LIBRARY\t"))
    return dict(zip(lines[i].split("\t"), lines[i + 1].split("\t"), strict=False))


@pytest.fixture(scope="module")
def marked(sim_cohort_pe, tmp_path_factory):
    """Picard-marked HISAT2 BAMs (PE and SE) of a sample with planted duplicates, and Picard's metrics."""
    hisat2 = require_tool("hisat2")
    require_tool("hisat2-build")
    samtools = require_tool("samtools")
    picard = require_tool("PicardCommandLine")
    require_tool("featureCounts")
    d = tmp_path_factory.mktemp("dedup")
    fq = sorted((sim_cohort_pe / "fastq").glob("*_R1.fastq.gz"))[1]
    r1, r2 = _with_copies(_fastq(fq), _fastq(Path(str(fq).replace("_R1.", "_R2."))), seed=4)
    _write_fastq(d / "r1.fq", r1)
    _write_fastq(d / "r2.fq", r2)
    subprocess.run(["hisat2-build", "-q", "-p", "1", str(sim_cohort_pe / "genome.fa"), str(d / "idx")], check=True,
                   capture_output=True)
    out = {}
    for name, reads in (("pe", ["-1", str(d / "r1.fq"), "-2", str(d / "r2.fq")]), ("se", ["-U", str(d / "r1.fq")])):
        sam = d / f"{name}.sam"
        subprocess.run([hisat2, "-p", "2", "-x", str(d / "idx"), *reads, "-S", str(sam)], check=True,
                       capture_output=True)
        bam = d / f"{name}.bam"
        subprocess.run([samtools, "sort", "-o", str(bam), str(sam)], check=True, capture_output=True)
        md = d / f"{name}.md.bam"
        subprocess.run([picard, "MarkDuplicates", f"I={bam}", f"O={md}", f"M={d / name}.metrics.txt",
                        "VALIDATION_STRINGENCY=SILENT", "QUIET=true"], check=True, capture_output=True)
        out[name] = (md, _picard_metrics(d / f"{name}.metrics.txt"))
    return out, sim_cohort_pe / "genes.gtf"


@pytest.mark.parametrize("layout", ["pe", "se"])
@pytest.mark.parametrize("strand", [0, 2])
def test_ignore_dup_vs_featurecounts(marked, tmp_path, layout, strand):
    bams, gtf = marked
    bam, metrics = bams[layout]
    paired = layout == "pe"
    assert int(metrics["READ_PAIR_DUPLICATES" if paired else "UNPAIRED_READ_DUPLICATES"]) > 100  # planted ones found
    fc_raw, fc_raw_summary = featurecounts(bam, gtf, tmp_path, strand=strand, paired=paired, flags=[])
    fc_dd, fc_dd_summary = featurecounts(bam, gtf, tmp_path, strand=strand, paired=paired, flags=["--ignoreDup"])
    assert fc_dd_summary["Unassigned_Duplicate"] > 0
    for threads in (1, 2):
        res = count_reads(bam, gtf, tmp_path / "i.tsv", strandedness=STRANDS[strand], paired=paired, ignore_dup=True,
                        threads=threads, chunk_bytes=1 << 16)
        assert res["summary"] == fc_dd_summary
        assert (tmp_path / "i.tsv").read_text().splitlines()[1:] == fc_dd
        res = count_reads(bam, gtf, tmp_path / "r.tsv", strandedness=STRANDS[strand], paired=paired,
                        dedup_out=tmp_path / "r.dedup.tsv", threads=threads, chunk_bytes=1 << 16)
        assert res["summary"] == fc_raw_summary
        assert (tmp_path / "r.tsv").read_text().splitlines()[1:] == fc_raw
        assert (tmp_path / "r.dedup.tsv").read_text().splitlines()[1:] == fc_dd


@pytest.mark.parametrize("layout", ["pe", "se"])
def test_duplicates_flagged_equals_picard(marked, tmp_path, layout):
    bams, gtf = marked
    bam, metrics = bams[layout]
    paired = layout == "pe"
    res = count_reads(bam, gtf, tmp_path / "c.tsv", strandedness="reverse", paired=paired)
    st = res["stats"]
    # HISAT2 writes secondary pairs at the primary pair's positions without HI; featureCounts'
    # pairing key (and so cfrna's) then pairs a primary mate with a secondary one, and such a
    # fragment is not a primary one. Picard counts by template: allow for those templates only.
    mixed = _mixed_templates(bam) if paired else set()
    dups = int(metrics["READ_PAIR_DUPLICATES"]) + int(metrics["UNPAIRED_READ_DUPLICATES"])
    examined = int(metrics["READ_PAIRS_EXAMINED"]) + int(metrics["UNPAIRED_READS_EXAMINED"])
    assert dups - len(mixed) <= st["duplicates_flagged"] <= dups
    assert examined - len(mixed) <= st["primary_mapped"] <= examined
    assert len(mixed) < 0.01 * examined
    # the planted copies are most of what Picard finds
    frac = st["duplicates_flagged"] / st["primary_mapped"]
    planted = DUP_SHARE * 4 / 3 / (1 + DUP_SHARE * 4 / 3)
    assert abs(frac - planted) < 0.05, (frac, planted)


def test_dedup_counts_without_flags_equal_raw(tmp_path):
    """No record flagged: the deduplicated counts are the raw counts and nothing is Unassigned_Duplicate."""
    from tests.helpers.bam import make_flag_zoo

    bam, gtf = make_flag_zoo(tmp_path, n=400, seed=2, dup_rate=0.0)
    res = count_reads(bam, gtf, tmp_path / "c.tsv", strandedness="reverse", paired=True, ignore_dup=True,
                    dedup_out=tmp_path / "d.tsv")
    assert res["summary"]["Unassigned_Duplicate"] == 0
    assert res["stats"]["duplicates_flagged"] == 0
    assert (tmp_path / "c.tsv").read_text() == (tmp_path / "d.tsv").read_text()


def test_cli_ignore_dup_and_dedup_out(tmp_path, capsys):
    """``cfrna count --ignore-dup --dedup-out``: flagged duplicates unassigned, the dedup table written."""
    from cfrna.cli import main
    from tests.helpers.bam import make_flag_zoo

    bam, gtf = make_flag_zoo(tmp_path, n=400, seed=3, dup_rate=0.2)
    out, dd = tmp_path / "c.tsv", tmp_path / "c.dedup.tsv"
    assert main(["count", "--bam", str(bam), "--gtf", str(gtf), "--out", str(out), "-s", "reverse", "--paired",
                 "--dedup-out", str(dd)]) == 0
    raw = out.read_text()
    assert main(["count", "--bam", str(bam), "--gtf", str(gtf), "--out", str(out), "-s", "reverse", "--paired",
                 "--ignore-dup"]) == 0
    summary = dict(ln.split("\t") for ln in Path(str(out) + ".summary").read_text().splitlines()[1:])
    assert int(summary["Unassigned_Duplicate"]) > 0
    assert dd.read_text() == out.read_text() != raw
    capsys.readouterr()


@pytest.mark.parametrize("layout", ["pe", "se"])
def test_dedup_position_equals_picard(marked, tmp_path, layout):
    """Planted PCR copies (same bases, other qualities: score ties and wins): the records cfrna's
    position mode marks are Picard's; the deduplicated counts are featureCounts --ignoreDup's."""
    bams, gtf = marked
    bam, _ = bams[layout]
    paired = layout == "pe"
    # a template whose primary mate pairs with a secondary record under featureCounts' key makes two
    # fragments that mix primary and secondary records; cfrna keeps those unmarked (Picard pairs the
    # primaries by name)
    mixed = _mixed_templates(bam) if paired else set()
    mine, dd = marked_records(bam, gtf, paired=paired)
    picard = flagged_records(bam)
    assert len(picard) > 200
    assert {m for m in mine if m[1] not in mixed} == {m for m in picard if m[1] not in mixed}
    assert len(mine ^ picard) <= 2 * len(mixed)
    fc_dd, fc_summary = featurecounts(bam, gtf, tmp_path, strand=2, paired=paired, flags=["--ignoreDup"])
    res = count_reads(bam, gtf, tmp_path / "c.tsv", strandedness="reverse", paired=paired, dedup="position",
                      dedup_out=tmp_path / "d.tsv", chunk_bytes=1 << 16)
    assert (tmp_path / "d.tsv").read_text().splitlines()[1:] == fc_dd
    summary = res["stats"]["dedup"]["summary"]
    assert summary["Assigned"] == fc_summary["Assigned"]
    assert summary["Unassigned_Duplicate"] == 0
    differ = {k for k in summary if summary[k] != fc_summary[k]} - {"Unassigned_Duplicate"}
    assert differ <= {"Unassigned_MultiMapping"}
    assert abs(summary["Unassigned_MultiMapping"] - fc_summary["Unassigned_MultiMapping"]) <= 2 * len(mixed)
