"""Count-level simulated cohorts as files, for the DE tests."""

from __future__ import annotations

from pathlib import Path


def write_cohort(out: Path, *, n_samples: int = 24, n_genes: int = 2000, seed: int = 1,
                 contrasts: str | None = None) -> dict[str, Path]:
    """A count-level simulated cohort as files: counts.tsv, samplesheet.csv, annotation.tsv, contrasts.csv."""
    from cfrna.simulate import simulate_counts

    out.mkdir(parents=True, exist_ok=True)
    counts, samples, truth = simulate_counts(n_samples=n_samples, n_genes=n_genes, seed=seed)
    sheet = samples.drop(columns=["planted_bad"]).copy()
    sheet.insert(5, "fastq_1", [f"fastq/{s}.fastq.gz" for s in sheet.index])
    sheet.insert(6, "fastq_2", "")
    sheet.reset_index().to_csv(out / "samplesheet.csv", index=False)
    counts.to_csv(out / "counts.tsv", sep="\t")
    truth[["gene_id", "gene_name"]].to_csv(out / "annotation.tsv", sep="\t", index=False)
    (out / "contrasts.csv").write_text(contrasts or "id,variable,reference,target,blocking,formula\n"
                                                   "flare_vs_no_flare,flare,no_flare,flare,patient_id,\n")
    truth.to_csv(out / "truth.tsv", sep="\t", index=False)
    return {k: out / f for k, f in (("counts", "counts.tsv"), ("samplesheet", "samplesheet.csv"),
                                     ("annotation", "annotation.tsv"), ("contrasts", "contrasts.csv"),
                                     ("truth", "truth.tsv"))}
