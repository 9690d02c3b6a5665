"""`cfrna provenance` writes the same pipeline_info files as `cfrna run`."""

from __future__ import annotations

import gzip
import json

from cfrna.cli import main


def test_provenance_cli(tmp_path):
    with gzip.open(tmp_path / "a.fastq.gz", "wt") as fh:
        fh.write("@r\nACGT\n+\nIIII\n")
    (tmp_path / "sheet.csv").write_text(
        "sample,patient_id,visit_month,arm,flare,fastq_1,fastq_2,strandedness\n"
        "S1,P1,0,steroid_tapering,flare,a.fastq.gz,,reverse\n")
    (tmp_path / "g.fa").write_text(">chr1\nACGT\n")
    (tmp_path / "g.gtf").write_text('chr1\ts\texon\t1\t4\t.\t+\t.\tgene_id "G";\n')
    (tmp_path / "p.json").write_text(json.dumps({"aligner": "mappy", "outdir": "results"}))
    out = tmp_path / "info"
    rc = main(["provenance", "--samplesheet", str(tmp_path / "sheet.csv"), "--fasta", str(tmp_path / "g.fa"),
               "--gtf", str(tmp_path / "g.gtf"), "--params-json", str(tmp_path / "p.json"), "--outdir", str(out)])
    assert rc == 0
    params = json.loads((out / "params.json").read_text())
    assert params["params"] == {"aligner": "mappy", "outdir": "results"}
    sums = (out / "input_checksums.tsv").read_text()
    assert "a.fastq.gz" in sums and str(tmp_path) not in sums
    assert "numba" in (out / "software_versions.yml").read_text()
    (tmp_path / "bad.json").write_text("{")
    rc = main(["provenance", "--samplesheet", str(tmp_path / "sheet.csv"), "--fasta", str(tmp_path / "g.fa"),
               "--gtf", str(tmp_path / "g.gtf"), "--params-json", str(tmp_path / "bad.json"), "--outdir", str(out)])
    assert rc == 2
