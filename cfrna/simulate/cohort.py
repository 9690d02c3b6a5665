"""``simulate_cohort``: write the synthetic CSTAR008-like plasma cfRNA cohort and its truth."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from cfrna import __version__, config
from cfrna.errors import ConfigError
from cfrna.io.atomic import write_json, write_table, write_text
from cfrna.simulate import duplicates as dup
from cfrna.simulate.genome import BASES, build_genome, write_fasta, write_gtf
from cfrna.simulate.longitudinal import (
    DEFAULT_VISITS,
    LONG_SHEET_COLUMNS,
    LongitudinalSpec,
    contrast_truth,
    gene_truth_table,
    longitudinal_design,
    longitudinal_expression,
    longitudinal_genes,
    simulate_longitudinal_counts,
    trial_contrasts,
)
from cfrna.simulate.model import (
    DE_FRACTION,
    HEMOLYSIS_FOLD,
    expression_matrix,
    gene_catalog,
    library_params,
    make_design,
    simulate_counts,
)
from cfrna.simulate.reads import (
    SOURCES,
    SUBSTITUTION_RATE,
    Fragments,
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

STRANDEDNESS = config.STRANDEDNESS
SHEET_COLUMNS = ("sample", "patient_id", "visit_month", "arm", "flare", "fastq_1", "fastq_2", "strandedness",
                 "batch", "second_randomization", "steroid_dose_mg", "egfr", "sex", "months_to_flare",
                 "flare_window", "flare_patient")
READ_NAME_FORMAT = "<sample>:<n>:<source>:<gene_id|->:<chrom>:<start>-<end>:<strand>"


def _check_args(outdir, *, n_samples, reads_per_sample, seed, read_length, strandedness, n_genes,
                fastq_dir: bool = True) -> Path:
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
        if fastq_dir:
            (out / "fastq").mkdir(exist_ok=True)
        (out / "truth").mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {out}: {exc.strerror}", where="--outdir",
                          hint="choose a writable --outdir") from exc
    for d in (out, *([out / "fastq"] if fastq_dir else []), out / "truth"):
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
    n_patients: int | None = None,
    visits: tuple[int, ...] = DEFAULT_VISITS,
    icc: float = 0.5,
    flare_fraction: float = 0.4,
    effect_scale: float = 1.0,
    counts_only: bool = False,
    duplicates: dup.DuplicateSpec | None = None,
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
    n_patients
        Longitudinal cohort (:mod:`cfrna.simulate.longitudinal`): this many patients, each seen at
        every month of ``visits``, with a patient random intercept of intra-class correlation
        ``icc``, ``flare_fraction`` of the patients flaring once, planted within-patient,
        pre-flare, between-patient, arm and arm x flare genes, and the trial contrasts. Replaces
        ``n_samples`` (``n_patients * len(visits)`` samples). Default None: the cross-sectional
        design of ``n_samples`` samples.
    visits, icc, flare_fraction, effect_scale
        Visit months (default: 0, 3, 6, 12, 18), intra-class correlation (default: 0.5),
        fraction of flaring patients (default: 0.4) and multiplier of every planted log2 fold change
        (default: 1.0) of the longitudinal cohort.
    counts_only
        Write a counts matrix (``gene_counts.tsv``, ``reads_per_sample`` counted fragments per
        sample on average), ``gene_annotation.tsv``, a metadata-only samplesheet (no FASTQ columns),
        the contrasts and the truth, without genome, GTF or FASTQ: fast input for ``cfrna de``.
    duplicates
        PCR duplicates and UMIs of a low-input library (:mod:`cfrna.simulate.duplicates`): a finite
        molecule pool per sample read with replacement, UMIs in read 1, read 2 or the read name,
        truth in ``truth/duplicates.tsv`` and ``truth/gene_counts_unique.tsv``. Default None (off):
        the output is byte-identical to a simulator without the option.

    Returns
    -------
    dict
        Paths written: ``genome``, ``fai``, ``gtf``, ``samplesheet``, ``contrasts`` (None when the
        cohort is too small for any contrast, i.e. fewer than 4 samples), ``truth`` (folder),
        ``fastq`` (dict sample -> list of paths) and ``outdir``; with ``counts_only``, ``counts``
        and ``annotation`` instead of genome, GTF and FASTQ.
    """
    if n_patients is not None:
        spec = LongitudinalSpec(n_patients=n_patients, visits=tuple(visits), icc=icc,
                                flare_fraction=flare_fraction, effect_scale=effect_scale).check()
        n_samples = int(n_patients) * len(spec.visits)
    else:
        spec = None
    dspec = duplicates if duplicates is not None and duplicates.active else None
    if dspec is not None:
        if counts_only:
            raise ConfigError("duplicates and UMIs need reads, not --counts-only", where="simulate",
                              hint="drop --counts-only, or drop --molecules/--pcr-duplicates/--umi-length")
        dspec = dspec.check(reads_per_sample=int(reads_per_sample), paired=paired, read_length=int(read_length))
    if counts_only:
        return _simulate_count_cohort(outdir, spec=spec, n_samples=n_samples, depth=reads_per_sample, seed=seed,
                                      n_genes=n_genes)
    out = _check_args(outdir, n_samples=n_samples, reads_per_sample=reads_per_sample, seed=seed,
                      read_length=read_length, strandedness=strandedness, n_genes=n_genes)
    ss = np.random.SeedSequence(seed)
    r_genes, r_genome, r_design, r_lib, r_expr = (np.random.default_rng(s) for s in ss.spawn(5))
    sample_seeds = ss.spawn(n_samples)
    if spec is None:
        catalog = gene_catalog(int(n_genes), r_genes)
        model = build_genome(catalog, r_genome)
        design = make_design(int(n_samples), r_design)
    else:
        catalog = longitudinal_genes(int(n_genes), spec, r_genes, np.random.default_rng(ss.spawn(1)[0]))
        model = build_genome(catalog, r_genome)
        design = longitudinal_design(spec, r_design)
    libs = {s: library_params(b, r_lib) for s, b in zip(design.index, design["planted_bad"], strict=True)}
    hemo = np.array([libs[s].hemolysis for s in design.index])
    if spec is None:
        share = expression_matrix(model.genes, design, hemo, r_expr)
    else:
        share = longitudinal_expression(model.genes, design, hemo, r_expr)
    space = build_space(model)
    pos_labels = space_labels(space, model, exon_labels(model), stranded=strandedness != "unstranded")
    log.info("simulate: genome %d bp on %d chromosomes, %d genes; %d samples x %d %s", int(model.lengths.sum()),
             len(model.chroms), len(model.genes), n_samples, reads_per_sample, "read pairs" if paired else "reads")

    fastq: dict[str, list[Path]] = {}
    mature = np.zeros((len(model.genes), n_samples), dtype=np.int64)
    pre = np.zeros_like(mature)
    assignable = np.zeros_like(mature)
    truth_rows = []
    dup_rows: list[dict] = []
    unique = np.zeros_like(mature) if dspec is not None else None
    for j, sample in enumerate(design.index):
        rng = np.random.default_rng(sample_seeds[j])
        lib = libs[sample]
        if dspec is None:
            frags, per_gene = sample_fragments(space, model, share[:, j], lib, int(reads_per_sample), rng)
        else:
            drng = np.random.default_rng(sample_seeds[j].spawn(1)[0])
            frags, per_gene, mol, drow = _duplicated_fragments(space, model, share[:, j], lib, int(reads_per_sample),
                                                               rng, drng, dspec)
            dup_rows.append({"sample": sample, **drow})
            unique[:, j] = _unique_per_gene(frags, mol, len(model.genes))
        reads = make_reads(space, frags, read_length=int(read_length), strandedness=strandedness, paired=paired,
                           rng=rng)
        assignable[:, j] = assignable_counts(pos_labels, frags, reads["r1_antisense"], len(model.genes),
                                             read_length=int(read_length), paired=paired)
        names = read_names(sample, space, model, frags)
        if dspec is not None:
            names = _add_umis(names, reads, mol, dspec, dup_rows[-1], drng, paired=paired)
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
    if dspec is not None:
        write_table(truth / "duplicates.tsv", pd.DataFrame(dup_rows), float_format="%.6f")
        write_table(truth / "gene_counts_unique.tsv",
                    pd.DataFrame(unique, columns=samples).assign(gene_id=gid)[["gene_id", *samples]])
    write_text(truth / "planted_gene_sets.gmt", _gmt(g))
    contrasts = _contrasts(design) if spec is None else trial_contrasts(design)
    contrasts_path = _write_contrasts(out, contrasts)
    if spec is not None:
        _write_longitudinal_truth(truth, g, contrasts, design)
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
    if spec is not None:
        params.update(_longitudinal_params(spec, design))
    if dspec is not None:
        params.update(_duplicate_params(dspec))
    write_json(truth / "params.json", params)
    sheet = design.reset_index()
    sheet["fastq_1"] = [f"fastq/{s}_R1.fastq.gz" for s in samples]
    sheet["fastq_2"] = [f"fastq/{s}_R2.fastq.gz" if paired else "" for s in samples]
    columns = list(SHEET_COLUMNS if spec is None else LONG_SHEET_COLUMNS)
    if dspec is not None and dspec.umi_length:
        # the UMI set-up per sample, as cfrna trim / cfrna run read it (docs/usage.md, "UMIs and low-input kits")
        if dspec.umi_location == "name":
            sheet["umi_in_name"] = "true"
            columns.append("umi_in_name")
        else:
            sheet["umi_pattern"] = "N" * dspec.umi_length
            sheet["umi_read"] = 2 if dspec.umi_location == "read2" else 1
            columns += ["umi_pattern", "umi_read"]
    write_table(out / "samplesheet.csv", sheet[columns])
    return {"outdir": out, "genome": out / "genome.fa", "fai": out / "genome.fa.fai", "gtf": out / "genes.gtf",
            "samplesheet": out / "samplesheet.csv", "contrasts": contrasts_path, "truth": truth,
            "fastq": fastq}


def _write_contrasts(out: Path, contrasts: pd.DataFrame) -> Path | None:
    path = out / "contrasts.csv"
    if len(contrasts):
        write_table(path, contrasts)
        return path
    path.unlink(missing_ok=True)  # no estimable contrast: no file (a header-only file is invalid input)
    return None


def _longitudinal_params(spec: LongitudinalSpec, design: pd.DataFrame) -> dict:
    fp = design.drop_duplicates("patient_id")
    return {
        "design": "longitudinal", "n_patients": int(spec.n_patients), "visits": [int(v) for v in spec.visits],
        "icc": float(spec.icc), "flare_fraction": float(spec.flare_fraction), "preflare_days": int(spec.preflare_days),
        "dispersion_scale": float(spec.dispersion_scale), "effect_scale": float(spec.effect_scale),
        "n_flaring_patients": int((fp["flare_patient"] == "yes").sum()),
        "flare_windows": {k: int(v) for k, v in design["flare_window"].value_counts().sort_index().items()},
        "icc_definition": ("var(patient intercept) / (var(patient intercept) + var(within-patient biological "
                           "noise)) of the natural-log expression, the same for every gene; Poisson sampling "
                           "noise of reads/counts not included (truth/longitudinal_genes.tsv: sigma_patient, "
                           "sigma_within)"),
        "longitudinal_notes": ("log2fc_flare applies at the flare visit; log2fc_preflare at pre_flare visits; "
                               "log2fc_flare_patient at every visit of a flaring patient; log2fc_arm at every visit "
                               "of the steroid_tapering arm; log2fc_arm_flare at the flare visit of tapering-arm "
                               "patients. truth/contrast_truth.tsv: per trial contrast, the planted genes it is "
                               "meant to find and the null genes (no planted effect of any kind)."),
    }


def _write_longitudinal_truth(truth: Path, genes: pd.DataFrame, contrasts: pd.DataFrame,
                              design: pd.DataFrame) -> None:
    write_table(truth / "longitudinal_genes.tsv", gene_truth_table(genes), float_format="%.4f")
    write_table(truth / "contrast_truth.tsv", contrast_truth(genes, contrasts), float_format="%.4f")
    write_table(truth / "visits.tsv", design.reset_index()[["sample", "patient_id", "visit_month", "arm", "flare",
                                                            "days_to_flare", "flare_window", "flare_patient",
                                                            "planted_bad"]])


def _simulate_count_cohort(outdir, *, spec: LongitudinalSpec | None, n_samples: int, depth: int, seed: int,
                           n_genes: int) -> dict:
    """The count-level cohort of ``simulate_cohort(counts_only=True)``."""
    out = _check_args(outdir, n_samples=n_samples, reads_per_sample=depth, seed=seed, read_length=75,
                      strandedness="reverse", n_genes=n_genes, fastq_dir=False)
    if spec is None:
        counts, design, g = simulate_counts(n_samples=int(n_samples), n_genes=int(n_genes), seed=seed,
                                            depth=float(depth))
        contrasts = _contrasts(design)
    else:
        counts, design, g = simulate_longitudinal_counts(
            n_patients=spec.n_patients, visits=spec.visits, icc=spec.icc, flare_fraction=spec.flare_fraction,
            effect_scale=spec.effect_scale, n_genes=int(n_genes), seed=seed, depth=float(depth))
        contrasts = trial_contrasts(design)
    log.info("simulate: count-level cohort, %d genes x %d samples (%s), mean %d counted fragments per sample",
             counts.shape[0], counts.shape[1], "longitudinal" if spec is not None else "cross-sectional", depth)
    truth = out / "truth"
    write_table(out / "gene_counts.tsv", counts.reset_index())
    write_table(out / "gene_annotation.tsv", g[["gene_id", "gene_name"]].assign(biotype=g["biotype"]))
    if spec is None:
        write_table(truth / "genes.tsv", g, float_format="%.4f")
        write_table(truth / "de_genes.tsv", g[g["is_de"]][["gene_id", "gene_name", "log2fc", "module"]],
                    float_format="%.4f")
    else:
        _write_longitudinal_truth(truth, g, contrasts, design)
        write_table(truth / "de_genes.tsv", g[g["log2fc_flare"] != 0.0][["gene_id", "gene_name", "log2fc_flare",
                                                                          "module"]].rename(
            columns={"log2fc_flare": "log2fc"}), float_format="%.4f")
    params = {"cfrna_version": __version__, "seed": int(seed), "n_samples": int(len(design)), "counts_only": True,
              "mean_counted_fragments": int(depth), "n_genes": int(n_genes),
              "notes": ("gene_counts.tsv: Poisson counts of the expression model (mRNA, chrM and rRNA genes). "
                        "No bad sample is planted at count level: there is no QC stage to exclude it, so it "
                        "would only blur the DE truth.")}
    if spec is not None:
        params.update(_longitudinal_params(spec, design))
    write_json(truth / "params.json", params)
    contrasts_path = _write_contrasts(out, contrasts)
    cols = [c for c in (SHEET_COLUMNS if spec is None else LONG_SHEET_COLUMNS) if c not in ("fastq_1", "fastq_2")]
    write_table(out / "samplesheet.csv", design.reset_index()[cols])
    return {"outdir": out, "counts": out / "gene_counts.tsv", "annotation": out / "gene_annotation.tsv",
            "samplesheet": out / "samplesheet.csv", "contrasts": contrasts_path, "truth": truth}


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


# ------------------------------------------------------------------------------------ duplicates and UMIs
def _duplicated_fragments(space, model, share: np.ndarray, lib, n_reads: int, rng: np.random.Generator,
                          drng: np.random.Generator, dspec: dup.DuplicateSpec):
    """Reads drawn with replacement from a finite molecule pool (see :mod:`cfrna.simulate.duplicates`).

    Returns the read-level fragments, per-gene read counts (``mature``, ``pre``), the molecule of
    every read and the sample's truth row.
    """
    n_mol = dup.sample_pool(dspec, n_reads, drng)
    pool, _ = sample_fragments(space, model, share, lib, n_mol, rng)
    mol, p = dup.amplify(n_mol, n_reads, dspec.amplification_cv, drng)
    frags = Fragments(start=pool.start[mol], length=pool.length[mol], source=pool.source[mol], gene=pool.gene[mol],
                      minus=pool.minus[mol])
    n_genes = len(model.genes)
    genic = frags.gene >= 0
    pre = genic & (frags.source == SOURCES.index("pre"))
    per_gene = {"mature": np.bincount(frags.gene[genic & ~pre], minlength=n_genes).astype(np.int64),
                "pre": np.bincount(frags.gene[pre], minlength=n_genes).astype(np.int64)}
    seen = int(len(np.unique(mol)))
    e1, e2 = dup.expected_unique(p, n_reads), dup.expected_unique(p, 2 * n_reads)
    row = {"reads": n_reads, "molecules": n_mol, "amplification_cv": dspec.amplification_cv,
           "unique_fragments": seen, "duplicate_fraction": 1.0 - seen / n_reads,
           "expected_unique": e1, "expected_duplicate_fraction": 1.0 - e1 / n_reads,
           "expected_unique_2x": e2, "expected_duplicate_fraction_2x": 1.0 - e2 / (2 * n_reads),
           "umi_length": dspec.umi_length, "umi_location": dspec.umi_location if dspec.umi_length else "",
           "umi_error_rate": dspec.umi_error_rate if dspec.umi_length else 0.0, "umi_errors": 0}
    return frags, per_gene, mol, row


def _unique_per_gene(frags: Fragments, mol: np.ndarray, n_genes: int) -> np.ndarray:
    """Distinct molecules seen per gene (mature + pre-mRNA): what exact deduplication would count."""
    _, first = np.unique(mol, return_index=True)
    g = frags.gene[first]
    return np.bincount(g[g >= 0], minlength=n_genes).astype(np.int64)


def _add_umis(names: list[bytes], reads: dict, mol: np.ndarray, dspec: dup.DuplicateSpec, row: dict,
              drng: np.random.Generator, *, paired: bool) -> list[bytes]:
    """Append the molecule number to every name and put the (error-carrying) UMI where the kit does."""
    names = [b"%s:%d" % (nm, m + 1) for nm, m in zip(names, mol.tolist(), strict=True)]
    if not dspec.umi_length:
        return names
    true = dup.umis(int(mol.max()) + 1, dspec.umi_length, drng)
    seen, n_err = dup.observed_umis(true, mol, dspec.umi_error_rate, drng)
    row["umi_errors"] = n_err
    if dspec.umi_location == "name":
        codes = BASES[seen]
        return [b"%s_%s" % (nm, codes[k].tobytes()) for k, nm in enumerate(names)]
    key = "r2" if dspec.umi_location == "read2" else "r1"
    bases, quals, n_sub = reads[key]
    b, q = dup.put_umi_in_read(bases, quals, seen, drng)
    reads[key] = (b, q, n_sub)
    return names


def _duplicate_params(dspec: dup.DuplicateSpec) -> dict:
    out = {
        "duplicates": {"molecules": dspec.molecules, "pcr_duplicates": dspec.pcr_duplicates,
                       "amplification_cv": dspec.amplification_cv, "pool_spread_sdlog": dup.POOL_SPREAD,
                       "umi_length": dspec.umi_length,
                       "umi_location": dspec.umi_location if dspec.umi_length else None,
                       "umi_error_rate": dspec.umi_error_rate if dspec.umi_length else None,
                       "umi_pattern": "N" * dspec.umi_length if dspec.umi_length and dspec.umi_location != "name"
                       else None,
                       "notes": ("each sample's library is a pool of `molecules` fragments (truth/duplicates.tsv) "
                                 "read with replacement with gamma(1/cv^2, cv^2) amplification weights; "
                                 "expected_unique(_2x) = sum_i 1-(1-p_i)^D at D = reads (2 x reads), exact for "
                                 "that model. Read names end with ':<molecule>' (1-based, per sample) and, with "
                                 "--umi-location name, '_<UMI>'. UMIs in a read are its first umi_length bases "
                                 "(pattern umi_pattern on that read), with substitutions at umi_error_rate per base "
                                 "before the read's own errors. truth/gene_counts_unique.tsv: distinct molecules "
                                 "per gene (mature + pre-mRNA) = what exact deduplication counts.")},
    }
    out["read_name_format"] = READ_NAME_FORMAT + ":<molecule>" + (
        "_<UMI>" if dspec.umi_length and dspec.umi_location == "name" else "")
    return out
