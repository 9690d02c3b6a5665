"""Per-sample cfRNA QC metrics from the files the trim, align and count stages already wrote.

No extra pass over the BAM: every metric comes from ``<ID>.trim.json``, ``<ID>.align.json``,
``<ID>.counts.tsv`` (+ ``.summary`` and ``.stats.json``) and the GTF. Only the BAM *header* is read
(reference lengths) for the genome-territory correction of the unstranded gDNA estimate.
Definitions and sources are in ``docs/qc.md``.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cfrna.errors import InputFormatError
from cfrna.io import tables
from cfrna.reference.gtf import Annotation

log = logging.getLogger(__name__)

#: nuclear rRNA biotypes (QUAKE measures the 45S locus; Mt_rRNA is part of the mito fraction instead)
RRNA_BIOTYPES = ("rRNA", "rRNA_pseudogene")
#: hemoglobin genes (adult, fetal and embryonic chains)
HEMOGLOBIN_GENES = ("HBB", "HBA1", "HBA2", "HBD", "HBG1", "HBG2", "HBM", "HBQ1")
#: BloodGen3 M9.2 erythroid module (Altman 2021), with current HGNC symbols added for renamed genes
ERYTHROID_GENES = (
    "MARCH8", "MARCHF8", "ALAS2", "BCL2L1", "BPGM", "CA1", "EPB42", "FAM46C", "TENT5C", "FECH", "GMPR",
    "GPR146", "GYPB", "GYPE", "KRT1", "NFIX", "OSBP2", "PLEK2", "SELENBP1", "SLC14A1", "SLC4A1", "SNCA",
    "TMCC2", "TMOD1", "TNS1", "TRIM10", "TUBB2A", "XK",
)
#: BloodGen3 M8.2 platelet-like module (Altman 2021) plus PF4, the canonical platelet transcript
PLATELET_GENES = (
    "ABCC3", "ALOX12", "CALD1", "CMTM5", "ESAM", "F13A1", "GNG11", "GP9", "ITGA2B", "ITGB3", "JAM3",
    "MPL", "MYL9", "NRGN", "PDE5A", "PPBP", "PROS1", "PTGS1", "TREML1", "TSPAN9", "VWF", "PF4",
)
#: male-specific chrY genes used for the sex check (with XIST for female)
CHRY_GENES = ("RPS4Y1", "DDX3Y", "KDM5D", "UTY", "EIF1AY", "ZFY", "USP9Y")
Y_NAMES = frozenset({"chrY", "Y"})

TRIM_KEYS = ("reads_in", "reads_out")
ALIGN_KEYS = ("reads", "mapped", "mapping_rate", "unique_fraction", "multi_fraction")
STATS_KEYS = (
    "primary_mapped", "exonic_sense", "exonic_antisense", "intronic_sense", "intronic_antisense",
    "intergenic", "spliced", "mito", "three_prime_bias",
)

#: keys of the engine's ``dedup`` block in ``<ID>.counts.tsv.stats.json`` (``cfrna count --dedup``)
DEDUP_KEYS = ("method", "fragments", "duplicates", "unique", "histogram")
DEDUP_CATEGORIES = ("exonic_sense", "exonic_antisense", "intronic_sense", "intronic_antisense", "intergenic",
                    "spliced", "mito")

#: the metrics written to qc.json / qc_summary.tsv, in this order
METRICS = (
    "reads_in", "reads_after_trim", "trim_retained_fraction", "adapter_fraction", "mean_length_after",
    "mean_quality", "gc_fraction", "read_duplication_fraction",
    "mapping_rate", "unique_fraction", "multi_fraction", "reads_assigned", "assigned_fraction",
    "exonic_fraction", "intronic_fraction", "intergenic_fraction", "intron_exon_ratio", "spliced_fraction",
    "spliced_exonic_fraction",
    "rrna_fraction", "mito_fraction", "three_prime_bias", "ng80", "genes_detected", "duplication_fraction",
    "duplication_method", "unique_fragments", "complexity_2x", "saturation",
    "reads_assigned_dedup", "exonic_fraction_dedup", "intronic_fraction_dedup", "intergenic_fraction_dedup",
    "intron_exon_ratio_dedup", "spliced_exonic_fraction_dedup", "mito_fraction_dedup",
    "strandedness_declared", "strandedness_inferred", "strandedness_used", "strand_forward_fraction",
    "strand_reverse_fraction", "strand_undetermined_fraction", "antisense_fraction",
    "gdna_fraction", "gdna_method",
    "hemoglobin_fraction", "erythroid_fraction", "erythroid_score", "platelet_fraction", "platelet_score",
    "xist_cpm", "chry_cpm", "sex_inferred", "sex_declared", "sex_check",
)


# ----------------------------------------------------------------------------------------- readers
#: per-sample JSON and counts files are read by the one table module (errors name file:line)
read_json = tables.read_json
read_counts = tables.read_sample_counts


def read_summary(path: str | os.PathLike) -> dict[str, float]:
    """Read a featureCounts-style ``.summary`` (``Status<TAB>value``) into {category: count}."""
    path = Path(path)
    out: dict[str, float] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            cols = line.rstrip("\r\n").split("\t")
            if lineno == 1 and cols[0] == "Status":
                continue
            if len(cols) < 2:
                raise InputFormatError("expected Status<TAB>count", where=f"{path}:{lineno}",
                                       hint="rerun cfrna count")
            try:
                out[cols[0]] = float(sum(float(c) for c in cols[1:]))
            except ValueError:
                raise InputFormatError(f"count is not a number in {line.strip()!r}", where=f"{path}:{lineno}",
                                       hint="rerun cfrna count") from None
    if "Assigned" not in out:
        raise InputFormatError("no 'Assigned' row", where=str(path), hint="expected a featureCounts .summary file")
    return out


# ----------------------------------------------------------------------------------------- gene sets
@dataclass
class GeneSets:
    """Boolean masks over the GTF genes (featureCounts order) used by the QC metrics."""

    gene_ids: pd.Index
    rrna: np.ndarray
    mito: np.ndarray
    hemoglobin: np.ndarray
    erythroid: np.ndarray
    platelet: np.ndarray
    chry: np.ndarray
    xist: np.ndarray
    #: (chrom, start, end) 0-based half-open merged gene spans, for genome territories
    gene_spans: dict[str, np.ndarray]

    @classmethod
    def from_annotation(cls, ann: Annotation, *, rrna_biotypes: tuple[str, ...] = RRNA_BIOTYPES) -> GeneSets:
        g = ann.genes
        names = g["gene_name"].astype(str).str.upper()
        mito = ann.mito_mask()
        rrna = ann.biotype_mask(*rrna_biotypes) & ~mito
        chry = names.isin(CHRY_GENES).to_numpy() | g["chrom"].isin(Y_NAMES).to_numpy()
        spans: dict[str, np.ndarray] = {}
        for chrom, sub in g.groupby("chrom", sort=False, observed=True):
            iv = np.stack([sub["start"].to_numpy() - 1, sub["end"].to_numpy()], axis=1)
            iv = iv[np.argsort(iv[:, 0], kind="stable")]
            spans[str(chrom)] = _merge(iv)
        return cls(
            gene_ids=pd.Index(g["gene_id"]), rrna=rrna, mito=mito,
            hemoglobin=names.isin(HEMOGLOBIN_GENES).to_numpy(),
            erythroid=names.isin(ERYTHROID_GENES).to_numpy(),
            platelet=names.isin(PLATELET_GENES).to_numpy(),
            chry=chry, xist=(names == "XIST").to_numpy(), gene_spans=spans,
        )


def _merge(iv: np.ndarray) -> np.ndarray:
    """Merge sorted half-open intervals (n x 2)."""
    out: list[list[int]] = []
    for s, e in iv.tolist():
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def effective_intergenic_length(spans: dict[str, np.ndarray], chrom_lengths: dict[str, int], read_length: float) -> float:
    """Number of start positions where a read of ``read_length`` overlaps no gene span.

    A gDNA fragment counts as intergenic only when it touches no gene, so each intergenic gap of
    ``g`` bp offers ``max(0, g - L + 1)`` start positions.
    """
    L = max(1, int(round(read_length)))
    total = 0.0
    for chrom, clen in chrom_lengths.items():
        iv = spans.get(chrom)
        if iv is None or len(iv) == 0:
            total += max(0, clen - L + 1)
            continue
        bounds = np.concatenate([[0], iv.ravel(), [clen]]).reshape(-1, 2)  # gaps: [prev_end, next_start]
        gaps = np.clip(bounds[:, 1] - bounds[:, 0], 0, None)
        total += float(np.clip(gaps - L + 1, 0, None).sum())
    return total


def bam_chrom_lengths(bam: str | os.PathLike) -> dict[str, int] | None:
    """Reference lengths from a BAM header (header only), or None when unreadable."""
    try:
        import pysam

        with pysam.AlignmentFile(str(bam), "rb", check_sq=False) as fh:
            return dict(zip(fh.references, fh.lengths, strict=True))
    except (OSError, ValueError, ImportError) as exc:
        log.debug("cannot read BAM header %s: %s", bam, exc)
        return None


# ----------------------------------------------------------------------------------------- metrics
def _frac(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or not math.isfinite(float(num)) or not den or float(den) <= 0:
        return None
    return float(num) / float(den)


def read_classes(tallies: dict[str, Any], *, suffix: str = "") -> tuple[float, float, dict[str, float | None]]:
    """Exonic, intronic and intergenic fractions and the intron/exon ratio of a counting pass's tallies.

    Returns the exonic and intronic totals (sense + antisense) and the four metrics, named with ``suffix``
    (``"_dedup"`` for the deduplicated fragments)."""
    ex = float(tallies["exonic_sense"]) + float(tallies["exonic_antisense"])
    it = float(tallies["intronic_sense"]) + float(tallies["intronic_antisense"])
    ig = float(tallies["intergenic"])
    tot = ex + it + ig
    return ex, it, {
        f"exonic_fraction{suffix}": _frac(ex, tot),
        f"intronic_fraction{suffix}": _frac(it, tot),
        f"intergenic_fraction{suffix}": _frac(ig, tot),
        f"intron_exon_ratio{suffix}": it / (ex + 1e-4),
    }


def ng80(counts: np.ndarray, *, fraction: float = 0.8) -> int:
    """Smallest number of top genes holding ``fraction`` of all counts (Tuñí 2025 ``ng80.R``); 0 when empty."""
    c = np.sort(np.asarray(counts, dtype=float))[::-1]
    total = c.sum()
    if total <= 0:
        return 0
    return int(np.searchsorted(np.cumsum(c), fraction * total - 1e-9 * total) + 1)


def gdna_estimate(
    stats: dict[str, Any],
    *,
    stranded: bool,
    strand_error: float = 0.0,
    chrom_lengths: dict[str, int] | None = None,
    spans: dict[str, np.ndarray] | None = None,
    read_length: float | None = None,
) -> tuple[float | None, str]:
    """Estimate the fraction of mapped reads that come from genomic DNA.

    Stranded libraries: RNA reads lie on the gene's sense strand (up to a known strand error ``e``
    of the protocol, default 0: the aligner's strandedness inference cannot provide it because its
    antisense share already contains the gDNA reads), while
    gDNA reads fall on both strands equally. In each genic class (exonic, intronic) with sense
    ``S`` and antisense ``A`` reads, ``A = g/2 + e*R`` and ``S = g/2 + (1-e)*R``, so
    ``g = 2 * (A - e*S) / (1 - 2e)``. Intergenic reads are all gDNA. The estimate is
    ``(g_exonic + g_intronic + intergenic) / primary_mapped`` (method ``strand``).

    Unstranded libraries: gDNA density is taken from intergenic reads per intergenic start position
    and scaled to the whole genome (method ``intergenic_density``; needs the BAM header and reads
    RNA transcribed outside annotated genes as gDNA, so it is an upper bound).
    """
    total = float(stats.get("primary_mapped") or 0)
    if total <= 0:
        return None, "none"
    ig = float(stats.get("intergenic") or 0)
    if stranded:
        e = min(max(float(strand_error or 0.0), 0.0), 0.45)
        g = ig
        for cls in ("exonic", "intronic"):
            s = float(stats.get(f"{cls}_sense") or 0)
            a = float(stats.get(f"{cls}_antisense") or 0)
            g += max(0.0, 2.0 * (a - e * s) / (1.0 - 2.0 * e))
        return min(1.0, g / total), "strand"
    if chrom_lengths and spans is not None and read_length:
        eff = effective_intergenic_length(spans, chrom_lengths, read_length)
        genome = float(sum(max(0, c - int(read_length) + 1) for c in chrom_lengths.values()))
        if eff > 0:
            return min(1.0, ig * genome / eff / total), "intergenic_density"
    return None, "none"


def _module_score(cpm: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean log2(CPM + 1) of the module genes present in the annotation."""
    if not mask.any():
        return None
    return float(np.log2(cpm[mask] + 1.0).mean())


def sample_metrics(
    sample: str,
    *,
    trim: dict[str, Any] | None,
    align: dict[str, Any] | None,
    stats: dict[str, Any] | None,
    counts: pd.Series | None,
    summary: dict[str, float] | None,
    genesets: GeneSets,
    declared_strandedness: str | None = None,
    declared_sex: str | None = None,
    chrom_lengths: dict[str, int] | None = None,
    min_sex_reads: int = 10,
    gdna_strand_error: float = 0.0,
    stats_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """All QC metrics of one sample (``None`` where an input is absent). See docs/qc.md for definitions.

    ``stats_path`` only names the stats file in errors about its ``dedup`` block.
    """
    m: dict[str, Any] = dict.fromkeys(METRICS)
    # --- read level (trim)
    if trim:
        m["reads_in"] = trim.get("reads_in")
        m["reads_after_trim"] = trim.get("reads_out")
        m["trim_retained_fraction"] = _frac(trim.get("reads_out"), trim.get("reads_in"))
        m["adapter_fraction"] = _frac(trim.get("reads_with_adapter"), trim.get("reads_in"))
        m["mean_length_after"] = trim.get("mean_length_after")
        m["mean_quality"] = trim.get("mean_quality")
        m["gc_fraction"] = trim.get("gc_fraction")
        m["read_duplication_fraction"] = trim.get("duplication_fraction")
    # --- alignment
    st_used = None
    if align:
        for k in ("mapping_rate", "unique_fraction", "multi_fraction"):
            m[k] = align.get(k)
        st = align.get("strandedness") or {}
        m["strandedness_declared"] = st.get("declared", declared_strandedness)
        m["strandedness_inferred"] = st.get("inferred")
        st_used = st.get("used")
        m["strand_forward_fraction"] = st.get("forward_fraction")
        m["strand_reverse_fraction"] = st.get("reverse_fraction")
        m["strand_undetermined_fraction"] = st.get("undetermined_fraction")
        m["spliced_fraction"] = align.get("spliced_fraction")
    else:
        m["strandedness_declared"] = declared_strandedness
    # --- counting pass tallies
    if stats:
        st_used = stats.get("strandedness") or st_used
        pm = stats.get("primary_mapped")
        ex, it, classes = read_classes(stats)
        m.update(classes)
        if st_used in ("forward", "reverse"):
            m["antisense_fraction"] = _frac(float(stats["exonic_antisense"]) + float(stats["intronic_antisense"]),
                                            ex + it)
        m["spliced_fraction"] = _frac(stats.get("spliced"), pm)
        m["spliced_exonic_fraction"] = _frac(stats.get("spliced"), ex)
        m["mito_fraction"] = _frac(stats.get("mito"), pm)
        m["three_prime_bias"] = stats.get("three_prime_bias")
        m.update(duplication_metrics(stats, where=str(stats_path or f"sample {sample}: counts stats.json")))
        rl = m["mean_length_after"] or (trim or {}).get("mean_length_after")
        g, method = gdna_estimate(
            stats, stranded=st_used in ("forward", "reverse"), strand_error=gdna_strand_error,
            chrom_lengths=chrom_lengths, spans=genesets.gene_spans, read_length=rl,
        )
        m["gdna_fraction"], m["gdna_method"] = g, method
    m["strandedness_used"] = st_used
    # --- assignment summary
    if summary:
        assigned = summary.get("Assigned", 0.0)
        m["reads_assigned"] = int(assigned)
        m["assigned_fraction"] = _frac(assigned, sum(v for k, v in summary.items()
                                                     if k not in ("Unassigned_Unmapped",)))
    # --- gene-level
    if counts is not None:
        c = counts.reindex(genesets.gene_ids)
        if c.isna().all():
            raise InputFormatError(f"sample {sample}: no gene of the GTF in the counts file",
                                   hint="count with the same GTF as given to cfrna qc")
        c = c.fillna(0.0).to_numpy(dtype=float)
        total = c.sum()
        pm = float((stats or {}).get("primary_mapped") or 0) or None
        m["rrna_fraction"] = _frac(c[genesets.rrna].sum(), pm if pm else total)
        if not stats:
            m["mito_fraction"] = _frac(c[genesets.mito].sum(), total)
        m["ng80"] = ng80(c)
        m["genes_detected"] = int((c > 0).sum())
        cpm = c / total * 1e6 if total > 0 else np.zeros_like(c)
        m["hemoglobin_fraction"] = _frac(c[genesets.hemoglobin].sum(), total)
        m["erythroid_fraction"] = _frac(c[genesets.erythroid].sum(), total)
        m["platelet_fraction"] = _frac(c[genesets.platelet].sum(), total)
        m["erythroid_score"] = _module_score(cpm, genesets.erythroid)
        m["platelet_score"] = _module_score(cpm, genesets.platelet)
        xist, y = c[genesets.xist].sum(), c[genesets.chry].sum()
        if genesets.xist.any() or genesets.chry.any():
            m["xist_cpm"] = float(cpm[genesets.xist].sum()) if genesets.xist.any() else None
            m["chry_cpm"] = float(cpm[genesets.chry].sum()) if genesets.chry.any() else None
            m["sex_inferred"] = infer_sex(xist, y, min_reads=min_sex_reads)
    m["sex_declared"] = normalise_sex(declared_sex)
    m["sex_check"] = sex_check(m["sex_inferred"], m["sex_declared"])
    return m


def dedup_block(stats: dict[str, Any] | None, *, where: str = "stats.json") -> dict[str, Any] | None:
    """The validated ``dedup`` block of a counting stats JSON, or None when counting ran without dedup.

    A block that lacks a key, or whose numbers disagree (``unique + duplicates != fragments``),
    raises :class:`InputFormatError` naming ``where``.
    """
    dd = (stats or {}).get("dedup")
    if dd is None:
        return None
    if not isinstance(dd, dict):
        raise InputFormatError("'dedup' must be an object", where=where, hint="rerun cfrna count --dedup")
    missing = [k for k in DEDUP_KEYS if k not in dd]
    if missing:
        raise InputFormatError(f"'dedup' lacks key(s) {', '.join(missing)}", where=where,
                               hint="rerun cfrna count --dedup (docs/architecture.md lists the keys)")
    try:
        frag, dup, uniq = (int(dd[k]) for k in ("fragments", "duplicates", "unique"))
    except (TypeError, ValueError):
        raise InputFormatError("'dedup' fragments/duplicates/unique must be integers", where=where,
                               hint="rerun cfrna count --dedup") from None
    if min(frag, dup, uniq) < 0 or uniq + dup != frag:
        raise InputFormatError(f"'dedup' counts disagree: unique {uniq} + duplicates {dup} != fragments {frag}",
                               where=where, hint="rerun cfrna count --dedup")
    from cfrna.qc.complexity import parse_histogram, totals

    hist = parse_histogram(dd["histogram"], where=f"{where}: dedup.histogram")
    if len(hist) and totals(hist) != (frag, uniq):
        raise InputFormatError(f"'dedup.histogram' sums to {totals(hist)} (fragments, molecules), the block says "
                               f"({frag}, {uniq})", where=where, hint="rerun cfrna count --dedup")
    return {**dd, "fragments": frag, "duplicates": dup, "unique": uniq, "histogram": hist}


def duplication_metrics(stats: dict[str, Any], *, where: str = "stats.json") -> dict[str, Any]:
    """Duplication, complexity and the deduplicated read classes of one sample (see docs/qc.md).

    With the engine's ``dedup`` block: ``duplication_fraction = duplicates / fragments`` of that
    method, ``unique_fragments``, ``complexity_2x`` (unique fragments expected at twice the depth,
    Good–Toulmin), ``saturation`` (Good–Turing coverage) and the ``*_dedup`` read classes (intron/exon
    after deduplication, as Moufarrej et al. 2022). Without it: the duplicates flagged in the BAM
    (``duplicates_flagged``, e.g. Picard), else the engine's position tally (``duplicates``).
    """
    from cfrna.qc.complexity import complexity_metrics

    out: dict[str, Any] = {}
    pm = stats.get("primary_mapped")
    dd = dedup_block(stats, where=where)
    if dd is not None:
        cm = complexity_metrics(dd["histogram"])
        out["duplication_fraction"] = _frac(dd["duplicates"], dd["fragments"])
        out["duplication_method"] = str(dd["method"])
        out["unique_fragments"] = dd["unique"]
        out["complexity_2x"] = cm["complexity_2x"]
        out["saturation"] = cm["saturation"]
        cats = dd.get("categories") or {}
        if all(k in cats for k in DEDUP_CATEGORIES[:5]):
            ex, _, classes = read_classes(cats, suffix="_dedup")
            out.update(classes)
            out["spliced_exonic_fraction_dedup"] = _frac(cats.get("spliced"), ex)
            out["mito_fraction_dedup"] = _frac(cats.get("mito"), dd["fragments"] - dd["duplicates"])
        summ = dd.get("summary") or {}
        if "Assigned" in summ:
            out["reads_assigned_dedup"] = int(summ["Assigned"])
        return out
    flagged = stats.get("duplicates_flagged")
    if flagged:
        out["duplication_fraction"] = _frac(flagged, pm)
        out["duplication_method"] = "flagged"
        out["unique_fragments"] = int(pm - flagged) if pm is not None else None
    elif stats.get("duplicates") is not None:
        out["duplication_fraction"] = _frac(stats.get("duplicates"), pm)
        out["duplication_method"] = "position_tally"
        out["unique_fragments"] = int(pm - stats["duplicates"]) if pm is not None else None
    return out


def complexity_curve_of(stats: dict[str, Any] | None, *, where: str = "stats.json",
                        points: int = 20) -> list[dict[str, Any]] | None:
    """The complexity curve (:func:`cfrna.qc.complexity.complexity_curve`) of a stats JSON with a ``dedup`` block."""
    from cfrna.qc.complexity import complexity_curve

    dd = dedup_block(stats, where=where)
    if dd is None or not len(dd["histogram"]):
        return None
    return complexity_curve(dd["histogram"], points=points)


def infer_sex(xist: float, chry: float, *, min_reads: int = 10) -> str:
    """``female`` / ``male`` from XIST vs chrY reads (>= 80% one side), else ``ambiguous`` / ``unknown``."""
    if xist + chry < min_reads:
        return "unknown"
    fy = chry / (xist + chry)
    if fy >= 0.8:
        return "male"
    if fy <= 0.2:
        return "female"
    return "ambiguous"


_SEX = {"m": "male", "male": "male", "man": "male", "f": "female", "female": "female", "woman": "female"}


def normalise_sex(value: str | None) -> str | None:
    """Map a samplesheet ``sex`` value (M/F/male/female, any case) to ``male``/``female``; None if empty/unknown."""
    if value is None:
        return None
    v = str(value).strip().lower()
    return _SEX.get(v)


def sex_check(inferred: str | None, declared: str | None) -> str:
    """``match``, ``mismatch``, ``undetermined`` (no call from reads) or ``not_declared``."""
    if declared is None:
        return "not_declared"
    if inferred not in ("male", "female"):
        return "undetermined"
    return "match" if inferred == declared else "mismatch"
