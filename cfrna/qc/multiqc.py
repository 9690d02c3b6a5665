"""MultiQC custom content (``*_mqc.tsv``) for the cfRNA QC table and the read assignment, and the report.

The custom-content files carry their own section name, description and column formats in
``#`` header lines (MultiQC's YAML-in-comments format), so MultiQC needs no extra configuration;
``assets/multiqc_config.yml`` only orders the sections and names the report.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from cfrna.io.atomic import write_text

log = logging.getLogger(__name__)

#: columns of the MultiQC QC table: metric -> (title, description, format, scale, min, max)
TABLE_COLUMNS: dict[str, tuple[str, str, str, str, float | None, float | None]] = {
    "status": ("QC", "overall QC status (pass/warn/fail)", "{}", "", None, None),
    "reads_in": ("Reads in", "reads (pairs) before trimming", "{:,.0f}", "Blues", 0, None),
    "reads_after_trim": ("Reads trimmed", "reads (pairs) after trimming", "{:,.0f}", "Blues", 0, None),
    "mapping_rate": ("Mapped", "fraction of reads mapped", "{:,.1%}", "RdYlGn", 0, 1),
    "unique_fraction": ("Unique", "fraction of reads mapped uniquely", "{:,.1%}", "RdYlGn", 0, 1),
    "reads_assigned": ("Assigned", "reads assigned to genes", "{:,.0f}", "Greens", 0, None),
    "exonic_fraction": ("Exonic", "exonic / (exonic + intronic + intergenic) reads", "{:,.1%}", "RdYlGn", 0, 1),
    "intronic_fraction": ("Intronic", "intronic reads fraction", "{:,.1%}", "OrRd", 0, 1),
    "intergenic_fraction": ("Intergenic", "intergenic reads fraction", "{:,.1%}", "OrRd", 0, 1),
    "intron_exon_ratio": ("Intron/exon", "intronic / (exonic + 1e-4); QUAKE fail >= 2.8", "{:,.2f}", "OrRd", 0, None),
    "spliced_fraction": ("Spliced", "fraction of mapped reads that are spliced", "{:,.1%}", "RdYlGn", 0, 1),
    "gdna_fraction": ("gDNA", "estimated genomic DNA fraction of mapped reads", "{:,.1%}", "OrRd", 0, 1),
    "rrna_fraction": ("rRNA", "rRNA reads / mapped reads; QUAKE fail >= 0.2", "{:,.1%}", "OrRd", 0, 1),
    "mito_fraction": ("Mito", "mitochondrial reads / mapped reads", "{:,.1%}", "OrRd", 0, 1),
    "three_prime_bias": ("3' bias", "fraction of detected genes with all reads in the 3'-most exon; QUAKE fail >= 0.4",
                         "{:,.2f}", "OrRd", 0, 1),
    "ng80": ("NG80", "fewest genes holding 80% of the counts", "{:,.0f}", "Greens", 0, None),
    "genes_detected": ("Genes", "genes with at least one read", "{:,.0f}", "Greens", 0, None),
    "duplication_fraction": ("Dup", "duplicate fraction of counted fragments (method in duplication_method)",
                             "{:,.1%}", "OrRd", 0, 1),
    "unique_fragments": ("Unique frags", "fragments left after deduplication", "{:,.0f}", "Greens", 0, None),
    "complexity_2x": ("Unique at 2x", "unique fragments expected at twice the depth (Good-Toulmin)", "{:,.0f}",
                      "Greens", 0, None),
    "saturation": ("Saturation", "Good-Turing coverage 1 - singletons/fragments: chance the next read is a "
                   "duplicate", "{:,.1%}", "OrRd", 0, 1),
    "intron_exon_ratio_dedup": ("Intron/exon dedup", "intron/exon ratio of deduplicated fragments", "{:,.2f}",
                                "OrRd", 0, None),
    "exonic_fraction_dedup": ("Exonic dedup", "exonic fraction of deduplicated fragments", "{:,.1%}", "RdYlGn", 0, 1),
    "hemoglobin_fraction": ("Hb", "hemoglobin gene reads / assigned reads (hemolysis)", "{:,.2%}", "OrRd", 0, None),
    "erythroid_score": ("Erythroid", "mean log2(CPM+1) of BloodGen3 M9.2", "{:,.2f}", "Reds", None, None),
    "platelet_score": ("Platelet", "mean log2(CPM+1) of BloodGen3 M8.2", "{:,.2f}", "Purples", None, None),
    "strandedness_inferred": ("Strand", "inferred library strandedness", "{}", "", None, None),
    "sex_check": ("Sex", "declared vs XIST/chrY sex", "{}", "", None, None),
}

ASSIGNMENT_ORDER = ("Assigned", "Unassigned_Ambiguity", "Unassigned_NoFeatures", "Unassigned_MultiMapping",
                    "Unassigned_MappingQuality", "Unassigned_Unmapped", "Unassigned_Secondary")


def _yaml_scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("'", "''")
    return f"'{s}'"


def _column_header(c: str, indent: str, *, title_prefix: str = "", namespace: bool = False) -> list[str]:
    """The MultiQC header lines of one QC column (title, description, format, scale, min, max)."""
    title, desc, fmt, scale, lo, hi = TABLE_COLUMNS[c]
    lines = [f"{indent}title: {_yaml_scalar(title_prefix + title)}"]
    if namespace:
        lines.append(f"{indent}namespace: 'cfRNA'")
    lines.append(f"{indent}description: {_yaml_scalar(desc)}")
    if fmt != "{}":
        lines.append(f"{indent}format: {_yaml_scalar(fmt)}")
    lines.append(f"{indent}scale: {_yaml_scalar(scale)}" if scale else f"{indent}scale: false")
    if lo is not None:
        lines.append(f"{indent}min: {lo}")
    if hi is not None:
        lines.append(f"{indent}max: {hi}")
    return lines


def _write_custom_table(lines: list[str], summary: pd.DataFrame, cols: list[str], path: str | os.PathLike) -> Path:
    """Header lines, then one tab-separated row per sample (missing values empty)."""
    lines = [*lines, "\t".join(["Sample", *cols])]
    for sample, row in summary.iterrows():
        vals = ["" if row[c] is None or (isinstance(row[c], float) and pd.isna(row[c])) else str(row[c])
                for c in cols]
        lines.append("\t".join([str(sample), *vals]))
    write_text(path, "\n".join(lines) + "\n")
    return Path(path)


def write_qc_table(summary: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write the cfRNA QC table as MultiQC custom content (table plot with column formats)."""
    cols = [c for c in TABLE_COLUMNS if c in summary.columns]
    lines = [
        "# id: 'cfrna_qc'",
        "# section_name: 'cfRNA QC passport'",
        "# description: 'Per-sample cfRNA QC metrics from cfrna qc: mapping, exonic/intronic/intergenic, "
        "intron/exon ratio (gDNA), strand-aware gDNA estimate, rRNA, mitochondria, 3'' bias (degradation), NG80, "
        "hemoglobin (hemolysis), erythroid/platelet scores and the pass/warn/fail decision. "
        "Rules and reasons are in qc_summary.tsv; definitions in docs/qc.md.'",
        "# plot_type: 'table'",
        "# pconfig:",
        "#     id: 'cfrna_qc_table'",
        "#     title: 'cfRNA QC'",
        "#     namespace: 'cfRNA'",
        "# headers:",
    ]
    for c in cols:
        lines += [f"#     {c}:", *_column_header(c, "#         ")]
    return _write_custom_table(lines, summary, cols, path)


#: columns of the MultiQC General Statistics table (a subset of TABLE_COLUMNS)
GENERAL_STATS = ("status", "reads_assigned", "exonic_fraction", "intron_exon_ratio", "duplication_fraction",
                 "unique_fragments", "complexity_2x", "saturation", "intron_exon_ratio_dedup")


def write_general_stats(summary: pd.DataFrame, path: str | os.PathLike) -> Path:
    """The key cfRNA metrics as MultiQC General Statistics columns (custom content ``generalstats``)."""
    cols = [c for c in GENERAL_STATS if c in summary.columns and summary[c].notna().any()]
    lines = [
        "# id: 'cfrna_general'",
        "# plot_type: 'generalstats'",
        "# pconfig:",
    ]
    for c in cols:
        lines += [f"#     - {c}:", *_column_header(c, "#         ", title_prefix="cfRNA ", namespace=True)]
    return _write_custom_table(lines, summary, cols, path)


def write_complexity(curves: dict[str, list[dict[str, Any]] | None], path: str | os.PathLike) -> Path:
    """The library-complexity curves (unique vs all fragments) as a MultiQC line plot (custom content JSON)."""
    import json

    data = {s: {f"{pt['fragments']:.6g}": round(float(pt["unique"]), 3) for pt in c} for s, c in curves.items() if c}
    doc = {
        "id": "cfrna_complexity",
        "section_name": "cfRNA library complexity",
        "description": ("Unique fragments against sequenced fragments after deduplication (cfrna count --dedup): "
                        "exact interpolation (hypergeometric rarefaction of the duplicate histogram) up to the "
                        "observed depth, Good-Toulmin extrapolation to twice the depth. A curve that flattens "
                        "means deeper sequencing of that library adds mostly duplicates. See docs/qc.md."),
        "plot_type": "linegraph",
        "pconfig": {"id": "cfrna_complexity_plot", "title": "cfrna: library complexity",
                    "xlab": "Fragments sequenced", "ylab": "Unique fragments", "xmin": 0, "ymin": 0},
        "data": data,
    }
    write_text(path, json.dumps(doc, indent=1) + "\n")
    return Path(path)


def write_assignment(assignments: dict[str, dict[str, float]], path: str | os.PathLike) -> Path:
    """Write the featureCounts-style assignment categories as a MultiQC stacked bar plot."""
    cats: list[str] = [c for c in ASSIGNMENT_ORDER if any(c in a for a in assignments.values())]
    for a in assignments.values():
        for c, v in a.items():
            if c not in cats and v:
                cats.append(c)
    lines = [
        "# id: 'cfrna_assignment'",
        "# section_name: 'cfRNA read assignment'",
        "# description: 'Reads (fragments for pairs) per featureCounts assignment category from cfrna count.'",
        "# plot_type: 'bargraph'",
        "# pconfig:",
        "#     id: 'cfrna_assignment_plot'",
        "#     title: 'cfrna count: assignment'",
        "#     ylab: 'Reads'",
        "\t".join(["Sample", *cats]),
    ]
    for sample, a in assignments.items():
        lines.append("\t".join([sample, *(f"{a.get(c, 0):.0f}" for c in cats)]))
    write_text(path, "\n".join(lines) + "\n")
    return Path(path)


def multiqc_available() -> bool:
    return importlib.util.find_spec("multiqc") is not None


def run_multiqc(mqc_dir: str | os.PathLike, *, config: str | os.PathLike | None = None,
                timeout: float = 600) -> Path | None:
    """Build ``multiqc_report.html`` in ``mqc_dir`` from its custom-content files; None when multiqc is absent.

    MultiQC runs in a subprocess (``python -m multiqc``) so its logging and global state stay out
    of this process; its output is written to a temporary folder and moved into place.
    """
    mqc_dir = Path(mqc_dir)
    if not multiqc_available():
        log.info("multiqc is not installed: MultiQC report skipped (the *_mqc.tsv files are written)")
        return None
    out = mqc_dir / "multiqc_report.html"
    tmp = mqc_dir / ".multiqc_tmp"
    cmd = [sys.executable, "-m", "multiqc", str(mqc_dir), "--outdir", str(tmp), "--force", "--no-data-dir",
           "--filename", "multiqc_report.html", "--quiet", "--no-ansi"]
    cmd += ["--ignore", str(tmp)]
    if config is not None:
        cmd += ["--config", str(config)]
    env = dict(os.environ, MPLBACKEND="Agg")
    log.info("running MultiQC on %s", mqc_dir)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        log.warning("MultiQC timed out after %.0f s: report skipped", timeout)
        return None
    produced = tmp / "multiqc_report.html"
    if proc.returncode != 0 or not produced.exists():
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        log.warning("MultiQC failed (exit %s): %s", proc.returncode, " | ".join(tail))
        _rmtree(tmp)
        return None
    produced.replace(out)
    _rmtree(tmp)
    return out


def _rmtree(p: Path) -> None:
    import shutil

    shutil.rmtree(p, ignore_errors=True)
