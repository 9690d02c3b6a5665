"""``cfrna simulate`` PCR duplicates and UMIs: default bytes unchanged, placement of UMIs, truth, errors."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cfrna.cli import main
from cfrna.errors import ConfigError
from cfrna.simulate import simulate_cohort
from cfrna.simulate.duplicates import DuplicateSpec, pool_for_fraction

_COMP = str.maketrans("ACGT", "TGCA")


def _fastq(path):
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    return [(lines[i][1:], lines[i + 1], lines[i + 3]) for i in range(0, len(lines), 4)]


def _content_digest(folder: Path) -> str:
    """sha256 over every file's decompressed content (params.json without the version)."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            b = p.read_bytes()
            if p.suffix == ".gz":
                b = gzip.decompress(b)
            if p.name == "params.json":
                o = json.loads(b)
                o.pop("cfrna_version")
                b = json.dumps(o, sort_keys=True).encode()
            h.update(str(p.relative_to(folder)).encode())
            h.update(b)
    return h.hexdigest()


@pytest.mark.parametrize("paired, digest", [
    (True, "202c813d27b91bed6d7b30a2c592ee35d919bb20785f2b5f2de914df5f1159ff"),
    (False, "229d6d023912da7db50086ba33e6930e77f6314921290a01ffba4f7622095a7d"),
])
def test_default_output_unchanged(tmp_path, paired, digest):
    """Without the new options the cohort is the one of the simulator before duplicates existed
    (digest recorded from that version); an all-off DuplicateSpec is the same."""
    simulate_cohort(tmp_path / "a", n_samples=3, reads_per_sample=300, paired=paired, n_genes=240, seed=7)
    assert _content_digest(tmp_path / "a") == digest
    simulate_cohort(tmp_path / "b", n_samples=3, reads_per_sample=300, paired=paired, n_genes=240, seed=7,
                    duplicates=DuplicateSpec())
    assert _content_digest(tmp_path / "b") == digest


@pytest.fixture(scope="module")
def umi_pe(tmp_path_factory):
    out = tmp_path_factory.mktemp("umi_pe")
    simulate_cohort(out, n_samples=2, reads_per_sample=1500, paired=True, n_genes=240, seed=3, read_length=60,
                    duplicates=DuplicateSpec(molecules=800, umi_length=8, umi_error_rate=0.01))
    return out


def test_umi_at_start_of_read2(umi_pe):
    """Pico v3 style: read 2 = 8-nt UMI + the first 52 bases of the mate; same UMI for a molecule's
    copies up to the planted errors; read 1 untouched by the UMI."""
    truth = pd.read_csv(umi_pe / "truth" / "duplicates.tsv", sep="\t").set_index("sample")
    params = json.loads((umi_pe / "truth" / "params.json").read_text())
    assert params["duplicates"]["umi_location"] == "read2" and params["duplicates"]["umi_pattern"] == "NNNNNNNN"
    assert params["read_name_format"].endswith(":<strand>:<molecule>")
    for sample, row in truth.iterrows():
        r1 = _fastq(umi_pe / "fastq" / f"{sample}_R1.fastq.gz")
        r2 = _fastq(umi_pe / "fastq" / f"{sample}_R2.fastq.gz")
        assert [a[0] for a in r1] == [b[0] for b in r2]
        assert all(len(s) == 60 == len(q) for _, s, q in r1 + r2)
        by_mol: dict[str, list[str]] = {}
        for name, seq, _ in r2:
            by_mol.setdefault(name.rsplit(":", 1)[1], []).append(seq[:8])
        assert len(by_mol) == row["unique_fragments"]
        # most copies share the UMI exactly; mismatches stay within the planted error budget
        diff = sum(sum(a != b for a, b in zip(u[0], v, strict=True)) for u in by_mol.values() for v in u[1:])
        n_copies = sum(len(u) - 1 for u in by_mol.values())
        assert diff <= 2 * 8 * 0.01 * 2 * n_copies + 5
        assert diff > 0
        assert row["umi_errors"] > 0
        # duplicate reads of one molecule carry the same mate bases after the UMI (up to read errors)
        same = [u for u in by_mol.values() if len(u) > 1]
        assert same
    # the samplesheet declares the UMIs the way cfrna trim / cfrna run read them
    from cfrna.io.samplesheet import read_samplesheet
    from cfrna.trim.umi import sample_umi

    sheet = read_samplesheet(umi_pe / "samplesheet.csv", check_files=False)
    assert {(u.pattern, u.read) for u in map(sample_umi, sheet.samples)} == {("NNNNNNNN", 2)}


def test_truth_counts_consistent(umi_pe):
    truth = pd.read_csv(umi_pe / "truth" / "duplicates.tsv", sep="\t").set_index("sample")
    reads_gene = pd.read_csv(umi_pe / "truth" / "gene_counts.tsv", sep="\t").set_index("gene_id")
    uniq_gene = pd.read_csv(umi_pe / "truth" / "gene_counts_unique.tsv", sep="\t").set_index("gene_id")
    samples = pd.read_csv(umi_pe / "truth" / "samples.tsv", sep="\t").set_index("sample")
    for s in truth.index:
        assert (uniq_gene[s] <= reads_gene[s]).all()
        assert uniq_gene[s].sum() < reads_gene[s].sum()
        gdna = samples.at[s, "gdna_reads"]
        assert reads_gene[s].sum() + gdna == truth.at[s, "reads"]
        assert uniq_gene[s].sum() <= truth.at[s, "unique_fragments"]
        assert truth.at[s, "molecules"] >= truth.at[s, "unique_fragments"]
        assert 0 < truth.at[s, "duplicate_fraction"] < 1


def test_pool_for_fraction_hits_the_target():
    from cfrna.simulate.duplicates import expected_unique

    rng = np.random.default_rng(0)
    for f, cv in ((0.2, 0.0), (0.5, 0.5), (0.8, 1.0)):
        m = pool_for_fraction(f, 10000, cv)
        w = rng.gamma(1 / cv**2, cv**2, m) if cv else np.ones(m)
        assert 1 - expected_unique(w / w.sum(), 10000) / 10000 == pytest.approx(f, abs=0.02)


def test_umi_in_name_single_end(tmp_path):
    simulate_cohort(tmp_path, n_samples=2, reads_per_sample=400, n_genes=240, seed=1,
                    duplicates=DuplicateSpec(molecules=300, umi_length=6, umi_location="name"))
    from cfrna.trim.umi import check_names_have_umis

    assert check_names_have_umis(tmp_path / "fastq" / "s01_R1.fastq.gz") == 6
    assert json.loads((tmp_path / "truth" / "params.json").read_text())["duplicates"]["umi_pattern"] is None
    from cfrna.io.samplesheet import read_samplesheet
    from cfrna.trim.umi import sample_umi

    sheet = read_samplesheet(tmp_path / "samplesheet.csv", check_files=False)
    assert all(sample_umi(s).in_name and sample_umi(s).has_umis for s in sheet.samples)


@pytest.mark.parametrize("kw, word", [
    ({"molecules": 100, "pcr_duplicates": 0.2}, "both given"),
    ({"molecules": 5}, "below 10"),
    ({"pcr_duplicates": 0.99}, "outside"),
    ({"amplification_cv": -1.0, "molecules": 100}, "amplification-cv"),
    ({"umi_length": 8}, "needs --molecules"),
    ({"umi_length": 30, "molecules": 100}, "umi-length"),
    ({"umi_length": 8, "molecules": 100, "umi_location": "read2"}, "needs --paired"),
    ({"umi_length": 8, "molecules": 100, "umi_error_rate": 0.5}, "umi-error-rate"),
    ({"umi_length": 8, "molecules": 100, "umi_location": "r9"}, "unknown"),
])
def test_bad_options(tmp_path, kw, word):
    with pytest.raises(ConfigError, match=word):
        simulate_cohort(tmp_path, n_samples=2, reads_per_sample=200, n_genes=240, duplicates=DuplicateSpec(**kw))


def test_cli(tmp_path, capsys):
    rc = main(["simulate", "--outdir", str(tmp_path / "o"), "--samples", "2", "--reads-per-sample", "300",
               "--genes", "240", "--pcr-duplicates", "0.3", "--umi-length", "8", "--paired"])
    assert rc == 0
    assert "duplicates:" in capsys.readouterr().out
    assert (tmp_path / "o" / "truth" / "duplicates.tsv").exists()
    rc = main(["simulate", "--outdir", str(tmp_path / "p"), "--samples", "2", "--molecules", "50",
               "--pcr-duplicates", "0.3"])
    assert rc == 2
    assert "both given" in capsys.readouterr().err
    rc = main(["simulate", "--outdir", str(tmp_path / "q"), "--counts-only", "--molecules", "50"])
    assert rc == 2
