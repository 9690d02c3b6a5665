"""``simulate_cohort``: write the synthetic CSTAR008-like plasma cfRNA cohort and its truth."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cfrna import __version__
from cfrna.errors import ConfigError
from cfrna.io.atomic import write_json, write_table, write_text
from cfrna.simulate.genome import build_genome, write_fasta, write_gtf
from cfrna.simulate.model import (
    DE_FRACTION,
    HEMOLYSIS_FOLD,
    expression_matrix,
    gene_catalog,
    library_params,
    make_design,
)
from cfrna.simulate.reads import (
    SOURCES,
    SUBSTITUTION_RATE,
    assignable_counts,
    build_space,
    exon_labels,
    make_reads,
    read_names,
    sample_fragments,
    space_labels,
    write_fastq,
)

log = logging.getLogger(__name__)

STRANDEDNESS = ("reverse", "forward", "unstranded")
SHEET_COLUMNS = ("sample", "patient_id", "visit_month", "arm", "flare", "fastq_1", "fastq_2", "strandedness",
                 "batch", "second_randomization", "steroid_dose_mg", "egfr", "sex", "months_to_flare",
                 "flare_window", "flare_patient")
READ_NAME_FORMAT = "<sample>:<n>:<source>:<gene_id|->:<chrom>:<start>-<end>:<strand>"


def _check_args(outdir, *, n_samples, reads_per_sample, seed, read_length, strandedness, n_genes) -> Path:
    """Validate the arguments (ConfigError naming the option) and create the output folders."""
    where = "simulate"
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ConfigError(f"--samples {n_samples}: a cohort needs at least 2 samples", where=where,
                          hint="use --samples 2 or more (default 12)")
    if n_samples > 999:
        raise ConfigError(f"--samples {n_samples} is more than 999", where=where, hint="use at most 999 samples")
    if not isinstance(reads_per_sample, (int, np.integer)) or reads_per_sample < 100:
        raise ConfigError(f"--reads-per-sample {reads_per_sample} is below 100", where=where,
                          hint="use at least 100 reads per sample (default 20000)")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"--seed {seed} must be a non-negative integer", where=where)
    if not isinstance(read_length, (int, np.integer)) or not 30 <= read_length <= 300:
        raise ConfigError(f"read_length={read_length} outside 30..300", where=where)
    if strandedness not in STRANDEDNESS:
        raise ConfigError(f"strandedness {strandedness!r} unknown", where=where, hint=f"use one of {', '.join(STRANDEDNESS)}")
    if not isinstance(n_genes, (int, np.integer)):
        raise ConfigError(f"n_genes={n_genes!r} must be an integer", where=where)
    out = Path(outdir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "fastq").mkdir(exist_ok=True)
        (out / "truth").mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {out}: {exc.strerror}", where="--outdir",
                          hint="choose a writable --outdir") from exc
    for d in (out, out / "fastq", out / "truth"):
        if not os.access(d, os.W_OK | os.X_OK):
            raise ConfigError(f"output folder {d} is not writable", where="--outdir", hint="choose a writable --outdir")
    return out


def simulate_cohort(
    outdir: str | os.PathLike,
    *,
    n_samples: int = 12,
    reads_per_sample: int = 20000,
    paired: bool = False,
    seed: int = 1,
    read_length: int = 75,
    strandedness: str = "reverse",
    n_genes: int = 600,
) -> dict:
    """Write a synthetic plasma cfRNA trial cohort (FASTQ, genome, GTF, sheets) and its truth.

    Parameters
    ----------
    outdir
        Output folder (created). Files are written atomically; ``samplesheet.csv`` last.
    n_samples
        Number of samples (default: 12; at least 2).
    reads_per_sample
        Reads (read pairs when ``paired``) per sample (default: 20000).
    paired
        Write ``_R1``/``_R2`` pairs instead of single-end reads (default: False).
    seed
        Random seed; the output is byte-identical for identical arguments (default: 1).
    read_length
        Read length in bases (default: 75).
    strandedness
        Library type: ``reverse`` (dUTP, default), ``forward`` or ``unstranded``.
    n_genes
        Genes in the annotation, including the named signature, rRNA and chrM genes (default: 600).

    Returns
    -------
    dict
        Paths written: ``genome``, ``fai``, ``gtf``, ``samplesheet``, ``contrasts`` (None when the
        cohort is too small for any contrast, i.e. fewer than 4 samples), ``truth`` (folder),
        ``fastq`` (dict sample -> list of paths) and ``outdir``.
    """
    out = _check_args(outdir, n_samples=n_samples, reads_per_sample=reads_per_sample, seed=seed,
                      read_length=read_length, strandedness=strandedness, n_genes=n_genes)
    ss = np.random.SeedSequence(seed)
    r_genes, r_genome, r_design, r_lib, r_expr = (np.random.default_rng(s) for s in ss.spawn(5))
    sample_seeds = ss.spawn(n_samples)
    catalog = gene_catalog(int(n_genes), r_genes)
    model = build_genome(catalog, r_genome)
    design = make_design(int(n_samples), r_design)
    libs = {s: library_params(b, r_lib) for s, b in zip(design.index, design["planted_bad"], strict=True)}
    hemo = np.array([libs[s].hemolysis for s in design.index])
    share = expression_matrix(model.genes, design, hemo, r_expr)
    space = build_space(model)
    pos_labels = space_labels(space, model, exon_labels(model), stranded=strandedness != "unstranded")
    log.info("simulate: genome %d bp on %d chromosomes, %d genes; %d samples x %d %s", int(model.lengths.sum()),
             len(model.chroms), len(model.genes), n_samples, reads_per_sample, "read pairs" if paired else "reads")

    fastq: dict[str, list[Path]] = {}
    mature = np.zeros((len(model.genes), n_samples), dtype=np.int64)
    pre = np.zeros_like(mature)
    assignable = np.zeros_like(mature)
    truth_rows = []
    for j, sample in enumerate(design.index):
        rng = np.random.default_rng(sample_seeds[j])
        lib = libs[sample]
        frags, per_gene = sample_fragments(space, model, share[:, j], lib, int(reads_per_sample), rng)
        reads = make_reads(space, frags, read_length=int(read_length), strandedness=strandedness, paired=paired,
                           rng=rng)
        assignable[:, j] = assignable_counts(pos_labels, frags, reads["r1_antisense"], len(model.genes),
                                             read_length=int(read_length), paired=paired)
        names = read_names(sample, space, model, frags)
        paths = [out / "fastq" / f"{sample}_R1.fastq.gz"]
        write_fastq(paths[0], names, reads["r1"][0], reads["r1"][1])
        if paired:
            paths.append(out / "fastq" / f"{sample}_R2.fastq.gz")
            write_fastq(paths[1], names, reads["r2"][0], reads["r2"][1])
        fastq[sample] = paths
        mature[:, j] = per_gene["mature"]
        pre[:, j] = per_gene["pre"]
        n_by_src = np.bincount(frags.source, minlength=len(SOURCES))
        total = float(len(frags.start))
        truth_rows.append({
            "sample": sample, "patient_id": design.at[sample, "patient_id"], "flare": design.at[sample, "flare"],
            "planted_bad": design.at[sample, "planted_bad"],
            **{f"{s}_fraction": n_by_src[i] / total for i, s in enumerate(SOURCES)},
            **{f"{s}_reads": int(n_by_src[i]) for i, s in enumerate(SOURCES)},
            "gdna_fraction_target": lib.gdna_fraction, "rrna_fraction_target": lib.rrna_fraction,
            "mito_fraction_target": lib.mito_fraction, "pre_mrna_fraction_target": lib.pre_mrna_fraction,
            "hemolysis": lib.hemolysis, "hemolysis_fold": HEMOLYSIS_FOLD if lib.hemolysis else 1.0,
            "degradation": lib.degradation, "fragment_mean": lib.fragment_mean, "fragment_sd": lib.fragment_sd,
            "library_strandedness": strandedness, "sheet_strandedness": design.at[sample, "strandedness"],
            "reads": int(total), "paired": paired, "adapter_readthrough": reads["readthrough"],
            "substitutions_r1": reads["r1"][2],
        })

    write_fasta(model, out / "genome.fa")
    write_gtf(model, out / "genes.gtf")
    truth = out / "truth"
    samples = list(design.index)
    gid = model.genes["gene_id"]
    write_table(truth / "gene_counts.tsv", pd.DataFrame(mature + pre, columns=samples).assign(gene_id=gid)[["gene_id", *samples]])
    write_table(truth / "gene_counts_mature.tsv", pd.DataFrame(mature, columns=samples).assign(gene_id=gid)[["gene_id", *samples]])
    write_table(truth / "gene_counts_assignable.tsv",
                pd.DataFrame(assignable, columns=samples).assign(gene_id=gid)[["gene_id", *samples]])
    g = model.genes
    de = g[g["is_de"]][["gene_id", "gene_name", "log2fc", "module"]]
    write_table(truth / "de_genes.tsv", de, float_format="%.4f")
    gene_table = g[["gene_id", "gene_name", "biotype", "module", "source", "chrom", "start", "end", "strand",
                    "overlap", "multi_copy", "base", "log2fc", "is_de", "in_planted_set", "erythroid", "sex_specific"]].copy()
    gene_table["start"] += 1
    gene_table["n_transcripts"] = np.bincount(model.transcripts["gene_idx"], minlength=len(g))
    write_table(truth / "genes.tsv", gene_table, float_format="%.4f")
    write_table(truth / "samples.tsv", pd.DataFrame(truth_rows), float_format="%.5f")
    write_text(truth / "planted_gene_sets.gmt", _gmt(g))
    contrasts = _contrasts(design)
    contrasts_path: Path | None = out / "contrasts.csv"
    if len(contrasts):
        write_table(contrasts_path, contrasts)
    else:  # no estimable contrast: no file (a header-only file is invalid input for `cfrna run`)
        contrasts_path.unlink(missing_ok=True)
        contrasts_path = None
    params = {
        "cfrna_version": __version__, "seed": int(seed), "n_samples": int(n_samples),
        "reads_per_sample": int(reads_per_sample), "paired": bool(paired), "read_length": int(read_length),
        "strandedness": strandedness, "n_genes": int(n_genes), "de_fraction_target": DE_FRACTION,
        "n_de_genes": int(g["is_de"].sum()), "substitution_rate": SUBSTITUTION_RATE,
        "hemolysis_fold": HEMOLYSIS_FOLD, "genome_bp": int(model.lengths.sum()),
        "chromosomes": dict(zip(model.chroms, model.lengths.tolist(), strict=True)),
        "read_name_format": READ_NAME_FORMAT,
        "sheet_strandedness_auto": [s for s in samples if design.at[s, "strandedness"] == "auto"],
        "planted_bad": {k: s for s, k in design["planted_bad"].items() if k != "none"},
        "notes": ("gene_counts.tsv = fragments from each gene's mature transcripts (mRNA, chrM, rRNA) + "
                  "pre-mRNA (introns included); gene_counts_mature.tsv = mature transcripts only; gDNA reads are "
                  "not in either. gene_counts_assignable.tsv = what an exact featureCounts-style counter (-t exon, "
                  "-g gene_id, library strand, no multi-overlap) assigns from the TRUE read placements, all "
                  "sources included, multi-mapping not modelled (RNA5S copies read higher there). log2fc applies to samples with flare == flare. No arm or batch effect is planted; XIST (F) and "
                  "RPS4Y1/DDX3Y (M) follow patient sex, so an unblocked contrast between groups of unequal sex "
                  "mix finds them."),
    }
    write_json(truth / "params.json", params)
    sheet = design.reset_index()
    sheet["fastq_1"] = [f"fastq/{s}_R1.fastq.gz" for s in samples]
    sheet["fastq_2"] = [f"fastq/{s}_R2.fastq.gz" if paired else "" for s in samples]
    write_table(out / "samplesheet.csv", sheet[list(SHEET_COLUMNS)])
    return {"outdir": out, "genome": out / "genome.fa", "fai": out / "genome.fa.fai", "gtf": out / "genes.gtf",
            "samplesheet": out / "samplesheet.csv", "contrasts": contrasts_path, "truth": truth,
            "fastq": fastq}


def _gmt(genes: pd.DataFrame) -> str:
    ifn = genes.loc[genes["in_planted_set"], "gene_name"].tolist()
    pb = genes.loc[genes["module"] == "plasmablast", "gene_name"].tolist()
    lines = [
        "\t".join(["PLANTED_IFN_FLARE_UP", "planted: type I interferon module, up at flare", *ifn]),
        "\t".join(["PLANTED_PLASMABLAST_FLARE_UP", "planted: plasmablast genes, moderately up at flare", *pb]),
    ]
    return "\n".join(lines) + "\n"


def _contrasts(design: pd.DataFrame) -> pd.DataFrame:
    """The flare (paired on patient) and arm contrasts, kept only when each group has >= 2 samples."""
    rows = []
    n_flare = int((design["flare"] == "flare").sum())
    n_no = int((design["flare"] == "no_flare").sum())
    if n_flare >= 2 and n_no >= 2:
        rows.append({"id": "flare_vs_no_flare", "variable": "flare", "reference": "no_flare", "target": "flare",
                     "blocking": "patient_id", "formula": ""})
    n_tap = int((design["arm"] == "steroid_tapering").sum())
    n_main = int((design["arm"] == "steroid_maintenance").sum())
    if n_tap >= 2 and n_main >= 2:
        rows.append({"id": "arm", "variable": "arm", "reference": "steroid_maintenance", "target": "steroid_tapering",
                     "blocking": "", "formula": ""})
    if not rows:
        log.warning("simulate: %d samples are too few for any contrast (>= 2 samples per group); no contrasts.csv "
                    "written", len(design))
    return pd.DataFrame(rows, columns=["id", "variable", "reference", "target", "blocking", "formula"])
