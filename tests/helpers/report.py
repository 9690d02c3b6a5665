"""Build a small, realistic cfrna results tree (per docs/architecture.md) for the report tests.

Counts are negative-binomial draws; a few planted genes (IFI27, RSAD2, ISG15 up, HBB down) differ
between flare groups; DE statistics come from a Welch t-test on log2 normalized counts with BH
adjustment (not DESeq2: the report only needs well-formed tables with a known answer).
The same builder, with large sizes, feeds benchmarks/report.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

PLANTED_UP = ("IFI27", "RSAD2", "ISG15")


def require_vendor() -> None:
    """Skip (fail under CI=true) when scripts/vendor_js.sh has not vendored the report libraries."""
    import os

    import pytest

    from cfrna.errors import ToolMissingError
    from cfrna.report.html import vendor_dir

    try:
        vendor_dir()
    except ToolMissingError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true: {exc}")
        pytest.skip(str(exc))
PLANTED_DOWN = ("HBB",)


def _bh(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    ok = np.isfinite(p)
    out = np.full_like(p, np.nan)
    q = p[ok]
    n = q.size
    if n == 0:
        return out
    order = np.argsort(q)
    ranked = q[order] * n / np.arange(1, n + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    res = np.empty(n)
    res[order] = np.minimum(ranked, 1.0)
    out[ok] = res
    return out


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy import stats

    t, p = stats.ttest_ind(b, a, axis=1, equal_var=False)
    return np.asarray(t), np.asarray(p)


def build_results(
    out: Path,
    *,
    n_genes: int = 300,
    n_patients: int = 6,
    n_visits: int = 2,
    n_contrasts: int = 2,
    seed: int = 7,
    with_de: bool = True,
    with_pathways: bool = True,
    with_info: bool = True,
    n_failed: int = 1,
    n_de: int = 0,
) -> Path:
    """Write ``out/{qc,matrix,de,pathways,pipeline_info}`` and return ``out`` (``n_de``: extra DE genes)."""
    rng = np.random.default_rng(seed)
    out = Path(out)
    for d in ("qc", "matrix", "de", "pathways", "pipeline_info"):
        (out / d).mkdir(parents=True, exist_ok=True)

    gene_ids = [f"ENSG{i:011d}" for i in range(n_genes)]
    symbols = [f"GENE{i}" for i in range(n_genes)]
    planted = PLANTED_UP + PLANTED_DOWN
    for k, s in enumerate(planted):
        symbols[10 + k] = s
    samples, patients, visits, flares, arms = [], [], [], [], []
    for p in range(n_patients):
        for v in range(n_visits):
            samples.append(f"P{p:03d}_V{v}")
            patients.append(f"P{p:03d}")
            visits.append(v * 6)
            flares.append("flare" if p % 2 == 0 else "no_flare")
            arms.append("steroid_tapering" if p % 3 else "steroid_maintenance")
    n = len(samples)
    flare = np.array([f == "flare" for f in flares])

    mu = np.exp(rng.normal(3.0, 1.8, n_genes))[:, None] * np.ones((1, n))
    for k, s in enumerate(planted):
        mu[10 + k, flare] *= 8.0 if s in PLANTED_UP else 0.125
    if n_de:  # extra DE genes (two-fold up or down) for realistic plots at scale
        extra = rng.choice(np.arange(20, n_genes), size=min(n_de, n_genes - 20), replace=False)
        mu[np.ix_(extra, flare)] *= rng.choice([0.5, 2.0], size=(extra.size, 1))
    size = 20.0
    counts = rng.negative_binomial(size, size / (size + mu)).astype(np.int64)
    sf = counts.sum(axis=0) / np.exp(np.mean(np.log(counts.sum(axis=0))))
    norm = counts / sf
    vst = np.log2(norm + 1.0)

    pd.DataFrame(counts, index=pd.Index(gene_ids, name="gene_id"), columns=samples).to_csv(
        out / "matrix" / "gene_counts.tsv", sep="\t"
    )
    pd.DataFrame({"gene_id": gene_ids, "gene_name": symbols, "gene_biotype": "protein_coding"}).to_csv(
        out / "matrix" / "gene_annotation.tsv", sep="\t", index=False
    )

    status = ["pass"] * n
    reasons = [""] * n
    for k in range(n_failed):
        status[-1 - k] = "fail"
        reasons[-1 - k] = "mapping_rate<0.5 (literature);gdna_fraction>0.3"
    if n > 3:
        status[1] = "warn"
        reasons[1] = "mito_fraction cohort outlier (>3 MAD)"
    mapping = rng.uniform(0.7, 0.95, n)
    qc = pd.DataFrame(
        {
            "sample": samples,
            "reads_in": rng.integers(15000, 25000, n),
            "mapping_rate": mapping.round(4),
            "mito_fraction": rng.uniform(0.01, 0.2, n).round(4),
            "mapping_rate_status": ["fail" if s == "fail" else "pass" for s in status],
            "status": status,
            "reasons": reasons,
            "excluded": [s == "fail" for s in status],
        }
    )
    qc.to_csv(out / "qc" / "qc_summary.tsv", sep="\t", index=False)
    for row in qc.to_dict("records"):
        rec = {k: v for k, v in row.items() if k not in ("reasons", "excluded")}
        rec["reasons"] = [r for r in row["reasons"].split(";") if r]
        (out / "qc" / f"{row['sample']}.qc.json").write_text(json.dumps(rec, default=str))
    meta = pd.DataFrame(
        {
            "sample": samples,
            "patient_id": patients,
            "visit_month": visits,
            "arm": arms,
            "flare": flares,
            "mapping_rate": mapping.round(4),
            "qc_status": status,
            "qc_reasons": reasons,
            "excluded": [s == "fail" for s in status],
        }
    )
    meta.to_csv(out / "matrix" / "samples.tsv", sep="\t", index=False)

    if with_de:
        kept = [i for i in range(n) if status[i] != "fail"]
        ks = [samples[i] for i in kept]
        idx = pd.Index(gene_ids, name="gene_id")
        pd.DataFrame(norm[:, kept].round(3), index=idx, columns=ks).to_csv(out / "de" / "normalized_counts.tsv", sep="\t")
        pd.DataFrame(vst[:, kept].round(4), index=idx, columns=ks).to_csv(out / "de" / "vst.tsv", sep="\t")
        failed = [samples[i] for i in range(n) if status[i] == "fail"]
        design_rows = []
        for c in range(n_contrasts):
            a = vst[:, kept][:, ~flare[kept]]
            b = vst[:, kept][:, flare[kept]]
            if c > 0:  # a second contrast: visit 6 vs 0 (null)
                v = np.array([visits[i] for i in kept])
                a, b = vst[:, kept][:, v == 0], vst[:, kept][:, v > 0]
            lfc = b.mean(axis=1) - a.mean(axis=1)
            stat, p = _welch(a, b)
            p = np.where(np.isfinite(p), p, np.nan)
            padj = _bh(p)
            cid = "flare_vs_no_flare" if c == 0 else f"visit_{c}"
            if c == 0:
                var, ref, tgt = "flare", "no_flare", "flare"
                groups = {lv: [s for s, f in zip(ks, [flares[i] for i in kept], strict=True) if f == lv] for lv in (ref, tgt)}
            else:
                var, ref, tgt = "visit_month", "0", "6"
                groups = {lv: [s for s, v in zip(ks, [visits[i] for i in kept], strict=True) if str(v) == lv] for lv in (ref, tgt)}
            design_rows.append({
                "contrast": cid, "variable": var, "reference": ref, "target": tgt, "formula": f"~ {var}",
                "n_reference": len(groups[ref]), "n_target": len(groups[tgt]),
                "reference_samples": ";".join(groups[ref]), "target_samples": ";".join(groups[tgt]),
                "excluded_samples": ";".join(failed), "not_used_samples": "", "genes_tested": n_genes,
                "sensitivity": "ok" if c else "adjusted design not fittable: contrast 'x': design '~ a + b' has 9 "
                "coefficients for 9 samples (no residual degrees of freedom)",
            })
            de = pd.DataFrame(
                {
                    "gene_id": gene_ids,
                    "gene_name": symbols,
                    "baseMean": norm[:, kept].mean(axis=1),
                    "log2FoldChange": lfc,
                    "lfcSE": np.abs(lfc / np.where(stat == 0, 1, stat)),
                    "stat": stat,
                    "pvalue": p,
                    "padj": padj,
                    "log2FoldChange_shrunk": lfc * 0.8,
                }
            ).sort_values(["padj", "pvalue"], na_position="last", kind="stable")
            de.to_csv(out / "de" / f"{cid}.deseq2.tsv", sep="\t", index=False)
            if with_pathways:
                gsea = pd.DataFrame(
                    {
                        "gene_set": ["IFN_4GENE", "ERYTHROID_M9_2", "RANDOM_SET"],
                        "source": ["lupus_signatures", "bloodgen3", "test"],
                        "size": [4, 12, 20],
                        "es": [0.9, -0.7, 0.1],
                        "nes": [2.1, -1.8, 0.3],
                        "pvalue": [0.0, 0.004, 0.8],
                        "fdr": [0.003, 0.006, 0.8],
                        "leading_edge": ["IFI27;RSAD2;ISG15", "HBB", "GENE50;GENE51"],
                    }
                )
                gsea.to_csv(out / "pathways" / f"{cid}.gsea.tsv", sep="\t", index=False)
        pd.DataFrame(design_rows).to_csv(out / "de" / "design.tsv", sep="\t", index=False)
        if with_pathways:
            ifn = vst[[10, 11, 12], :].mean(axis=0)
            ery = vst[13, :]
            pd.DataFrame({"sample": samples, "IFN": ifn.round(3), "erythroid": ery.round(3)}).to_csv(
                out / "pathways" / "signature_scores.tsv", sep="\t", index=False
            )
            pd.DataFrame(
                {"signature": ["IFN", "erythroid"], "variable": ["flare", "flare"], "estimate": [2.5, -2.0],
                 "pvalue": [0.001, 0.01], "fdr": [0.002, 0.01]}
            ).to_csv(out / "pathways" / "signature_association.tsv", sep="\t", index=False)
    if with_info:
        info = out / "pipeline_info"
        (info / "params.json").write_text(json.dumps({"aligner": "mappy", "threads": 2, "min_mapq": 10}))
        (info / "software_versions.yml").write_text('cfrna: "0.1.0"\nCFRNA_COUNT:\n  featureCounts: "2.0.6"\n')
        pd.DataFrame({"file": ["samplesheet.csv", "genes.gtf"], "bytes": [1407, 1_670_000],
                      "sha256": ["ab" * 32, "cd" * 32]}).to_csv(
            info / "input_checksums.tsv", sep="\t", index=False
        )
    return out
