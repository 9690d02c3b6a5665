"""Library complexity (cfrna.qc.complexity) against exact enumeration and the simulator's truth."""

from __future__ import annotations

import gzip
import itertools
import math

import numpy as np
import pandas as pd
import pytest

from cfrna.errors import InputFormatError
from cfrna.qc import complexity as cx
from cfrna.simulate import simulate_cohort
from cfrna.simulate.duplicates import DuplicateSpec, expected_unique


def _names(path):
    with gzip.open(path, "rt") as fh:
        return [line[1:].rstrip("\n") for k, line in enumerate(fh) if k % 4 == 0]


@pytest.fixture(scope="module")
def dup_cohort(tmp_path_factory):
    """Single-end, 4 samples, UMIs in the read names without errors (exact molecule keys)."""
    out = tmp_path_factory.mktemp("dups")
    simulate_cohort(out, n_samples=4, reads_per_sample=3000, n_genes=300, seed=11,
                    duplicates=DuplicateSpec(pcr_duplicates=0.35, amplification_cv=0.5, umi_length=10,
                                             umi_error_rate=0.0, umi_location="name"))
    return out


def _hist_of_keys(keys):
    return cx.histogram_from_copies(np.unique(np.asarray(keys, dtype=object), return_counts=True)[1])


def test_interpolation_equals_enumeration():
    copies = [3, 1, 2, 1, 4]
    reads = [i for i, c in enumerate(copies) for _ in range(c)]
    h = cx.histogram_from_copies(copies)
    N = len(reads)
    assert cx.totals(h) == (N, 5)
    for m in range(N + 1):
        subsets = list(itertools.combinations(reads_idx := range(N), m))
        exact = np.mean([len({reads[i] for i in s}) for s in subsets]) if m else 0.0
        assert cx.interpolate(h, m)[0] == pytest.approx(exact, abs=1e-9), m
        del reads_idx
    assert cx.interpolate(h, [N])[0] == pytest.approx(5)
    with pytest.raises(ValueError, match="lie in"):
        cx.interpolate(h, N + 1)


def test_good_toulmin_and_ztnb_on_the_sampling_model():
    """Poisson-gamma copy numbers: both estimators land on the exact 2x truth."""
    rng = np.random.default_rng(2)
    for n_mol, n_reads, cv in ((20000, 20000, 0.5), (4000, 20000, 1.0), (60000, 20000, 0.3)):
        w = rng.gamma(1 / cv**2, cv**2, n_mol)
        p = w / w.sum()
        copies = np.bincount(rng.choice(n_mol, size=n_reads, p=p), minlength=n_mol)
        h = cx.histogram_from_copies(copies)
        truth = expected_unique(p, 2 * n_reads)
        assert cx.extrapolate(h, 2.0) == pytest.approx(truth, rel=0.03)
        assert cx.ztnb_unique(h, 2.0) == pytest.approx(truth, rel=0.03)
        assert cx.extrapolate(h, 4.0) == pytest.approx(expected_unique(p, 4 * n_reads), rel=0.05)
        # the curve rises, bends and meets the observed point
        curve = cx.complexity_curve(h, points=10)
        u = [c["unique"] for c in curve]
        assert all(b >= a for a, b in itertools.pairwise(u))
        obs = [c for c in curve if c["kind"] == "observed"]
        assert obs == [{"fragments": float(n_reads), "unique": float((copies > 0).sum()), "kind": "observed"}]
        assert curve[-1]["fragments"] == pytest.approx(2 * n_reads)


def test_saturation_and_metrics():
    h = cx.parse_histogram([[1, 10], [2, 5], [3, 0], [2, 5]])
    assert h.tolist() == [[1, 10], [2, 10]]
    assert cx.saturation(h) == pytest.approx(1 - 10 / 30)
    m = cx.complexity_metrics(h)
    assert m["unique_fragments"] == 20
    assert m["duplication_fraction"] == pytest.approx(1 - 20 / 30)
    assert m["complexity_2x"] == pytest.approx(20 + 10 - 10)
    # a library of singletons: nothing saturated, 2x depth doubles the unique fragments
    s = cx.complexity_metrics([[1, 100]])
    assert s["saturation"] == 0.0 and s["complexity_2x"] == 200 and s["duplication_fraction"] == 0.0
    assert cx.complexity_metrics([])["complexity_2x"] is None


@pytest.mark.parametrize("bad, word", [("x", "list"), ([[0, 3]], "integers"), ([[1, -1]], "integers"),
                                        ([[1.5, 2]], "integers"), ([[1]], "pair"), ([["a", 1]], "pair")])
def test_bad_histograms(bad, word):
    with pytest.raises(InputFormatError, match=word):
        cx.parse_histogram(bad, where="s1.counts.tsv.stats.json: dedup.histogram")


def test_simulated_truth_recovered(dup_cohort):
    """Position + UMI keys of the FASTQ recover the planted duplicate fraction (+-0.02) and the 2x
    extrapolation lies within 10% of the exact expected unique fragments."""
    truth = pd.read_csv(dup_cohort / "truth" / "duplicates.tsv", sep="\t").set_index("sample")
    assert (truth["reads"] == 3000).all() and truth["molecules"].nunique() == len(truth)
    for sample, row in truth.iterrows():
        names = _names(dup_cohort / "fastq" / f"{sample}_R1.fastq.gz")
        assert len(names) == row["reads"]
        # <sample>:<n>:<source>:<gene>:<chrom>:<start>-<end>:<strand>:<molecule>_<UMI>
        parts = [n.rsplit("_", 1) for n in names]
        assert all(len(u) == 10 and set(u) <= set("ACGT") for _, u in parts)
        pos_umi = [(":".join(a.split(":")[4:7]), u) for a, u in parts]
        molecule = [a.split(":")[7] for a, _ in parts]
        h_mol = _hist_of_keys(molecule)
        h = cx.histogram_from_copies(pd.Series(pos_umi).value_counts().to_numpy())
        assert cx.totals(h_mol)[1] == row["unique_fragments"]
        m = cx.complexity_metrics(h)
        assert abs(m["duplication_fraction"] - row["expected_duplicate_fraction"]) <= 0.02, sample
        assert abs(m["duplication_fraction"] - row["duplicate_fraction"]) <= 0.005, sample
        assert m["complexity_2x"] == pytest.approx(row["expected_unique_2x"], rel=0.10), sample
        assert cx.ztnb_unique(h, 2.0) == pytest.approx(row["expected_unique_2x"], rel=0.10), sample
    # the duplicate fraction rises with depth and differs between samples (pool sizes differ)
    assert (truth["expected_duplicate_fraction_2x"] > truth["expected_duplicate_fraction"]).all()
    assert truth["expected_duplicate_fraction"].max() - truth["expected_duplicate_fraction"].min() > 0.01
    assert math.isclose(truth["expected_duplicate_fraction"].median(), 0.35, abs_tol=0.1)
