"""The DESeq2 engine with an absorbed block (cfrna.de.nbglm) against a dense reference and R DESeq2."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar
from scipy.stats import f as f_dist
from scipy.stats import nbinom, pearsonr, spearmanr

from cfrna.de import nbglm
from cfrna.de.deseq import deseq_fit
from cfrna.errors import ConfigError
from tests.conftest import require_tool


def simulate_cohort(n_pat: int = 40, n_vis: int = 3, n_genes: int = 5000, seed: int = 1, frac_de: float = 0.1):
    """NB counts with a patient random intercept and a within-patient flare effect on ``frac_de`` genes."""
    rng = np.random.default_rng(seed)
    n = n_pat * n_vis
    pat = np.repeat([f"P{i:03d}" for i in range(n_pat)], n_vis)
    flare = np.array(["no_flare"] * n, dtype=object)
    for i in range(n_pat):
        k = rng.integers(0, n_vis + 1)  # patients with 0..n_vis flare visits; 1-2 are informative
        if 0 < k < n_vis:
            flare[i * n_vis + rng.choice(n_vis, k, replace=False)] = "flare"
    base = np.exp(rng.normal(np.log(80), 1.5, n_genes))
    disp = (0.05 + 1 / base) * np.exp(rng.normal(0, 0.4, n_genes))
    sf = np.exp(rng.normal(0, 0.25, n))
    pat_eff = rng.normal(0, 0.5, (n_genes, n_pat))
    lfc = np.zeros(n_genes)
    de = rng.choice(n_genes, int(n_genes * frac_de), replace=False)
    lfc[de] = rng.uniform(0.4, 1.5, len(de)) * rng.choice([-1, 1], len(de))
    pidx = np.repeat(np.arange(n_pat), n_vis)
    mu = base[:, None] * sf[None, :] * np.exp(pat_eff[:, pidx] + math.log(2) * lfc[:, None]
                                              * (flare == "flare")[None, :])
    shape = 1 / disp[:, None]
    counts = rng.poisson(rng.gamma(shape, mu / shape))
    samples = [f"S{i:04d}" for i in range(n)]
    c = pd.DataFrame(counts, index=[f"G{i:05d}" for i in range(n_genes)], columns=samples)
    meta = pd.DataFrame({"patient_id": pd.Categorical(pat),
                         "flare": pd.Categorical(flare, categories=["no_flare", "flare"])}, index=samples)
    return c[c.sum(axis=1) > 0], meta, lfc


# ------------------------------------------------------------------------------------------------
# dense reference: plain numpy NB-GLM on the full formulaic design (intercept + treatment coding)
# ------------------------------------------------------------------------------------------------

def _ll(y, mu, alpha):
    return nbinom.logpmf(y, 1 / alpha, 1 / (1 + alpha * mu)).sum()


def dense_irls(y, sf, x, alpha, lam=1e-6, tol=1e-8, maxit=100):
    q, r = np.linalg.qr(x)
    beta = np.linalg.solve(r, q.T @ np.log(y / sf + 0.1))
    mu = np.maximum(sf * np.exp(x @ beta), 0.5)
    dev = 0.0
    for t in range(maxit):
        w = mu / (1 + alpha * mu)
        z = np.log(mu / sf) + (y - mu) / mu
        beta = np.linalg.solve((x.T * w) @ x + lam * np.eye(x.shape[1]), x.T @ (w * z))
        mu = np.maximum(sf * np.exp(x @ beta), 0.5)
        dev_old, dev = dev, -2 * _ll(y, mu, alpha)
        if t > 0 and abs(dev - dev_old) / (abs(dev) + 0.1) < tol:
            break
    w = mu / (1 + alpha * mu)
    cov = np.linalg.inv((x.T * w) @ x + lam * np.eye(x.shape[1]))
    hat = w * np.einsum("ij,jk,ik->i", x, cov, x)
    return beta, np.sqrt(np.diag(cov)), mu, hat


def dense_disp(y, mu, x, lo=1e-8, hi=10.0):
    def obj(la):
        a = math.exp(la)
        w = mu / (1 + a * mu)
        return -_ll(y, mu, a) + 0.5 * np.linalg.slogdet((x.T * w) @ x)[1]

    grid = np.linspace(math.log(lo), math.log(hi), 60)
    k = int(np.argmin([obj(g) for g in grid]))
    res = minimize_scalar(obj, bounds=(grid[max(k - 1, 0)], grid[min(k + 1, 59)]), method="bounded",
                          options={"xatol": 1e-9})
    return math.exp(res.x)


@pytest.fixture(scope="module")
def small():
    counts, meta, _ = simulate_cohort(n_pat=8, n_vis=3, n_genes=40, seed=7)
    return counts, meta


@pytest.mark.parametrize("absorb", ["auto", None])
def test_kernels_match_dense_reference(small, absorb):
    counts, meta = small
    formula = "~ patient_id + flare"
    design = nbglm.build_design(formula, meta, absorb=absorb)
    assert (design.n_blocks == 8) == (absorb == "auto")
    assert design.n_coef == 9 + 1 - 1  # intercept + 7 patient columns + flare == 8 blocks + flare
    import formulaic

    x = np.asarray(formulaic.model_matrix(formula, meta), dtype=float)
    y = np.ascontiguousarray(counts.to_numpy(dtype=float))
    sf = nbglm.size_factors(y)
    k = nbglm._kernels()
    rng = np.random.default_rng(3)
    alpha = np.exp(rng.normal(np.log(0.1), 0.5, len(y)))
    n = y.shape[1]
    p = x.shape[1]
    rob = np.full(len(y), 0.1)
    allv = np.ones(n, dtype=bool)
    coef, se, conv, maxc, _, argc = k.k_fit_beta(y, sf, design.block, design.n_blocks, design.z, alpha, 1e-6, 0.5,
                                                 1e-8, 100, rob, allv, allv, 1.0, np.zeros((0, 0), dtype=np.bool_))
    j = design.z_columns.index("flare[T.flare]")
    assert conv.all()
    for g in range(len(y)):
        beta, sd, mu, hat = dense_irls(y[g], sf, x, alpha[g])
        np.testing.assert_allclose(coef[g, design.n_blocks + j], beta[-1], rtol=1e-4, atol=1e-5)  # IRLS tolerance
        np.testing.assert_allclose(se[g, j], sd[-1], rtol=1e-4)
        m = sf * np.exp(x @ beta)
        cooks = (y[g] - m) ** 2 / (m + 0.1 * m**2) / p * hat / (1 - hat) ** 2
        np.testing.assert_allclose(maxc[g], cooks.max(), rtol=1e-4)
        assert argc[g] == int(np.argmax(cooks))
        # gene-wise dispersion (Cox-Reid) at the same fitted means
        mu_k = np.ascontiguousarray(np.maximum(mu, 0.5)[None, :])
        d, _ = k.k_fit_disp(np.ascontiguousarray(y[g][None, :]), mu_k, design.block, design.n_blocks, design.z,
                            math.log(1e-8), math.log(10.0), False, np.zeros(1), 1.0, np.log([0.1]), 1e-9)
        np.testing.assert_allclose(d[0], dense_disp(y[g], mu_k[0], x), rtol=1e-4, atol=1e-6)


def test_fit_matches_dense_pipeline(small):
    """Whole fit, block vs no block: same dispersions, LFCs and SEs (the block is a re-parametrisation)."""
    counts, meta = small
    a = nbglm.nbinom_deseq(counts, meta, "~ patient_id + flare", "flare[T.flare]", absorb="auto")[0]
    b = nbglm.nbinom_deseq(counts, meta, "~ patient_id + flare", "flare[T.flare]", absorb=None)[0]
    for col in ("log2FoldChange", "lfcSE", "pvalue"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(a["log2FoldChange_shrunk"], b["log2FoldChange_shrunk"], rtol=2e-2, atol=2e-3)


def test_size_factors_and_bh():
    y = np.array([[10, 20, 30], [5, 10, 15], [0, 1, 2], [8, 8, 8]], dtype=float)
    sf = nbglm.size_factors(y)
    logm = np.log(y[[0, 1, 3]]).mean(axis=1)
    np.testing.assert_allclose(sf, np.exp(np.median(np.log(y[[0, 1, 3]]) - logm[:, None], axis=0)))
    p = np.array([0.01, np.nan, 0.04, 0.03, 0.5])
    from scipy.stats import false_discovery_control

    exp = false_discovery_control(p[~np.isnan(p)], method="bh")
    np.testing.assert_allclose(nbglm.bh_adjust(p)[~np.isnan(p)], exp)
    assert np.isnan(nbglm.bh_adjust(p)[1])


def test_block_confounded_with_tested_variable_is_a_config_error():
    meta = pd.DataFrame({"patient_id": pd.Categorical(np.repeat(["a", "b", "c", "d"], 3)),
                         "arm": pd.Categorical(np.repeat(["x", "y", "x", "y"], 3))},
                        index=[f"s{i}" for i in range(12)])
    counts = pd.DataFrame(np.random.default_rng(0).poisson(20, (30, 12)), columns=meta.index)
    with pytest.raises(ConfigError) as ei:
        deseq_fit(counts, meta, "~ patient_id + arm", "arm[T.y]")
    msg = str(ei.value)
    assert "\n" not in msg and "arm[T.y]" in msg and "patient_id" in msg


def test_unknown_coefficient_is_a_config_error(small):
    counts, meta = small
    with pytest.raises(ConfigError, match="flare\\[T.nope\\]"):
        deseq_fit(counts, meta, "~ patient_id + flare", "flare[T.nope]")


def test_cooks_replacement_and_filtering():
    """>= 7 replicates per cell: an extreme count is replaced and the gene refitted (DESeq2 rule)."""
    rng = np.random.default_rng(5)
    n = 16
    meta = pd.DataFrame({"cond": pd.Categorical(["A"] * 8 + ["B"] * 8)}, index=[f"s{i}" for i in range(n)])
    counts = rng.negative_binomial(10, 10 / (10 + 100), (300, n))
    counts[0, 3] = 20000  # outlier
    counts = pd.DataFrame(counts, columns=meta.index)
    res, fit = nbglm.nbinom_deseq(counts, meta, "~ cond", "cond[T.B]")
    assert fit.refitted[0] and fit.refitted.sum() < 10
    assert abs(res["log2FoldChange"].iloc[0]) < 1  # the outlier no longer drives the LFC
    # 3-6 replicates: no replacement, the p-value is filtered instead
    sub = counts.iloc[:, [0, 1, 2, 3, 4, 8, 9, 10, 11, 12]]
    res2, fit2 = nbglm.nbinom_deseq(sub, meta.loc[sub.columns], "~ cond", "cond[T.B]")
    assert not fit2.refitted.any()
    assert np.isnan(res2["pvalue"].iloc[0])
    assert fit2.cooks_cutoff == pytest.approx(f_dist.ppf(0.99, 2, 8))


R_BLOCKED = r"""
suppressPackageStartupMessages(library(DESeq2))
args <- commandArgs(trailingOnly = TRUE)
counts <- as.matrix(read.delim(args[1], row.names = 1, check.names = FALSE))
cd <- read.delim(args[2], row.names = 1)
cd$patient_id <- factor(cd$patient_id)
cd$flare <- factor(cd$flare, levels = c("no_flare", "flare"))
dds <- DESeqDataSetFromMatrix(counts, cd, ~ patient_id + flare)
dds <- DESeq(dds, quiet = TRUE)
res <- results(dds, name = "flare_flare_vs_no_flare", alpha = 0.05)
out <- data.frame(gene_id = rownames(res), log2FoldChange = res$log2FoldChange, pvalue = res$pvalue, padj = res$padj)
write.table(out, args[3], sep = "\t", quote = FALSE, row.names = FALSE)
"""


@pytest.mark.slow
def test_blocked_design_matches_r_deseq2(tmp_path):
    rscript = require_tool("Rscript")
    counts, meta, _ = simulate_cohort()
    counts.to_csv(tmp_path / "counts.tsv", sep="\t", index_label="gene_id")
    meta.to_csv(tmp_path / "coldata.tsv", sep="\t", index_label="sample")
    (tmp_path / "blocked.R").write_text(R_BLOCKED)
    subprocess.run([rscript, str(tmp_path / "blocked.R"), str(tmp_path / "counts.tsv"), str(tmp_path / "coldata.tsv"),
                    str(tmp_path / "r.tsv")], check=True, capture_output=True)
    ref = pd.read_csv(tmp_path / "r.tsv", sep="\t", index_col=0)
    res, _ = deseq_fit(counts, meta, "~ patient_id + flare", "flare[T.flare]", threads=2)
    j = res.join(ref, rsuffix="_R").dropna(subset=["log2FoldChange", "log2FoldChange_R", "pvalue", "pvalue_R"])
    a, b = set(res.index[res["padj"] < 0.05]), set(ref.index[ref["padj"] < 0.05])
    m = {"pearson": pearsonr(j["log2FoldChange"], j["log2FoldChange_R"])[0],
         "spearman": spearmanr(j["pvalue"], j["pvalue_R"])[0], "jaccard": len(a & b) / len(a | b), "n": len(j)}
    assert m["n"] > 4500 and len(b) > 100, m
    assert m["pearson"] >= 0.999 and m["spearman"] >= 0.99 and m["jaccard"] >= 0.95, m
