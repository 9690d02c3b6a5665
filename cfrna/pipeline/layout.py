"""The output tree: every path that ``cfrna run`` and the Nextflow pipeline write under ``--outdir``.

One object, :class:`OutputLayout`, names every folder and file of the tree described in DESIGN.md
("Output tree") and docs/output.md. Nothing else in the package spells these names: stages, the
runners, the report and the AnnData builder ask the layout. The Nextflow modules take their
``publishDir`` folders from ``params.layout`` in ``conf/layout.config``, which
``tests/test_layout_paths.py`` checks against :data:`FOLDERS`.

>>> lay = OutputLayout("results")
>>> lay.bam("s01").as_posix()
'results/alignment/s01.bam'
>>> lay.deseq2_table("flare_vs_no_flare").as_posix()
'results/de/flare_vs_no_flare.deseq2.tsv'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CONTRAST_SUFFIXES", "COUNTS_SIDECARS", "FOLDERS", "LOCK_NAME", "SAMPLE_FILES", "SAMPLE_SUFFIXES",
           "OutputLayout", "counts_sidecar"]

#: folder of each part of the tree, relative to ``--outdir`` (stage -> folder)
FOLDERS: dict[str, str] = {
    "trim": "trimmed",
    "align": "alignment",
    "count": "counts",
    "qc": "qc",
    "matrix": "matrix",
    "de": "de",
    "pathways": "pathways",
    "report": "report",
    "pipeline_info": "pipeline_info",
    "obsolete": "obsolete",
}

#: what ``cfrna count --out X`` writes beside ``X``: the assignment summary and the QC tallies
COUNTS_SIDECARS = {"summary": ".summary", "stats": ".stats.json"}

#: per-sample file names: key -> (stage folder key, suffix after the sample id)
SAMPLE_FILES: dict[str, tuple[str, str]] = {
    "trim_1": ("trim", "_1.trimmed.fastq.gz"),
    "trim_2": ("trim", "_2.trimmed.fastq.gz"),
    "trim_json": ("trim", ".trim.json"),
    "bam": ("align", ".bam"),
    "bai": ("align", ".bam.bai"),
    "align_json": ("align", ".align.json"),
    "counts": ("count", ".counts.tsv"),
    "summary": ("count", ".counts.tsv" + COUNTS_SIDECARS["summary"]),
    "stats": ("count", ".counts.tsv" + COUNTS_SIDECARS["stats"]),
    "counts_dedup": ("count", ".counts.dedup.tsv"),
    "qc_json": ("qc", ".qc.json"),
}

#: suffixes of the per-sample files of trimmed/, alignment/ and counts/, longest first (what an
#: output belongs to is read from its name; ``qc/<sample>.qc.json`` is handled on its own)
SAMPLE_SUFFIXES: tuple[str, ...] = tuple(sorted(
    {suffix for folder, suffix in SAMPLE_FILES.values() if folder in ("trim", "align", "count")},
    key=len, reverse=True))

#: per-contrast file suffixes in de/ and pathways/ (folder key -> suffixes)
CONTRAST_SUFFIXES: dict[str, tuple[str, ...]] = {
    "de": (".deseq2.tsv", ".sensitivity.tsv"),
    "pathways": (".gsea.tsv",),
}

#: the lock file of a running ``cfrna run`` (in the output folder itself)
LOCK_NAME = ".cfrna.lock"


def counts_sidecar(counts: str | os.PathLike, kind: str) -> Path:
    """The ``summary`` or ``stats`` file written beside a counts table (``X.summary``, ``X.stats.json``)."""
    return Path(str(counts) + COUNTS_SIDECARS[kind])


class OutputLayout:
    """Every path of the output tree under ``outdir`` (a folder; nothing is created or checked).

    Folder properties end in ``_dir``; per-sample paths are methods taking the sample id, per-contrast
    paths methods taking the contrast id. ``OutputLayout(".")`` gives the relative names a Nextflow
    task writes into its work folder.
    """

    __slots__ = ("_dirs", "root")

    def __init__(self, outdir: str | os.PathLike):
        self.root = Path(outdir)
        self._dirs: dict[str, Path] = {}

    @classmethod
    def in_stage_folder(cls, stage: str, folder: str | os.PathLike) -> OutputLayout:
        """A layout whose ``stage`` folder is ``folder``: the file names a stage writes when called with
        the folder of its own outputs (``cfrna trim --outdir O/trimmed``, or ``.`` in a Nextflow task).

        Paths of other stages are not defined by it (they raise :class:`KeyError`).
        """
        if stage not in FOLDERS:
            raise KeyError(f"unknown stage folder {stage!r} (one of {', '.join(FOLDERS)})")
        lay = cls(Path(folder) / "..")
        lay._dirs = {stage: Path(folder)}
        return lay

    def __repr__(self) -> str:
        if self._dirs:
            (stage, folder), = self._dirs.items()
            return f"OutputLayout.in_stage_folder({stage!r}, {str(folder)!r})"
        return f"OutputLayout({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OutputLayout) and (other.root, other._dirs) == (self.root, self._dirs)

    def __hash__(self) -> int:
        return hash((self.root, tuple(self._dirs.items())))

    # ------------------------------------------------------------------ folders
    def folder(self, stage: str) -> Path:
        """The folder of a stage or part of the tree (a key of :data:`FOLDERS`)."""
        if self._dirs:
            if stage not in self._dirs:
                raise KeyError(f"{self!r} only knows the {next(iter(self._dirs))!r} folder, not {stage!r}")
            return self._dirs[stage]
        return self.root / FOLDERS[stage]

    @property
    def trimmed_dir(self) -> Path:
        return self.folder("trim")

    @property
    def alignment_dir(self) -> Path:
        return self.folder("align")

    @property
    def counts_dir(self) -> Path:
        return self.folder("count")

    @property
    def qc_dir(self) -> Path:
        return self.folder("qc")

    @property
    def matrix_dir(self) -> Path:
        return self.folder("matrix")

    @property
    def de_dir(self) -> Path:
        return self.folder("de")

    @property
    def pathways_dir(self) -> Path:
        return self.folder("pathways")

    @property
    def report_dir(self) -> Path:
        return self.folder("report")

    @property
    def info_dir(self) -> Path:
        """``pipeline_info/``."""
        return self.folder("pipeline_info")

    @property
    def obsolete_dir(self) -> Path:
        return self.folder("obsolete")

    @property
    def lock(self) -> Path:
        return self.root / LOCK_NAME

    # ------------------------------------------------------------------ per sample
    def sample_file(self, key: str, sample: str) -> Path:
        """A per-sample file by its key in :data:`SAMPLE_FILES` (``bam``, ``counts``, …)."""
        stage, suffix = SAMPLE_FILES[key]
        return self.folder(stage) / f"{sample}{suffix}"

    def sample_files(self, sample: str) -> dict[str, Path]:
        """Every per-sample file of ``sample`` (trim, align, count and QC outputs) by key."""
        return {key: self.sample_file(key, sample) for key in SAMPLE_FILES}

    def trimmed_fastq(self, sample: str, mate: int = 1) -> Path:
        if mate not in (1, 2):
            raise ValueError(f"mate must be 1 or 2, got {mate!r}")
        return self.sample_file(f"trim_{mate}", sample)

    def trim_json(self, sample: str) -> Path:
        return self.sample_file("trim_json", sample)

    def bam(self, sample: str) -> Path:
        return self.sample_file("bam", sample)

    def bai(self, sample: str) -> Path:
        return self.sample_file("bai", sample)

    def align_json(self, sample: str) -> Path:
        return self.sample_file("align_json", sample)

    def counts(self, sample: str) -> Path:
        return self.sample_file("counts", sample)

    def counts_summary(self, sample: str) -> Path:
        return self.sample_file("summary", sample)

    def counts_stats(self, sample: str) -> Path:
        return self.sample_file("stats", sample)

    def counts_dedup(self, sample: str) -> Path:
        """Deduplicated counts of ``cfrna count --dedup`` (``--dedup-out``)."""
        return self.sample_file("counts_dedup", sample)

    def qc_json(self, sample: str) -> Path:
        return self.sample_file("qc_json", sample)

    def sample_log(self, sample: str) -> Path:
        return self.info_dir / "logs" / f"{sample}.log"

    # ------------------------------------------------------------------ cohort: qc and matrix
    @property
    def qc_summary(self) -> Path:
        return self.qc_dir / "qc_summary.tsv"

    @property
    def qc_thresholds(self) -> Path:
        return self.qc_dir / "qc_thresholds.json"

    @property
    def multiqc_dir(self) -> Path:
        return self.qc_dir / "multiqc"

    @property
    def complexity_curves(self) -> Path:
        """``qc/complexity_curves.tsv``: library-complexity curves, when counting deduplicated."""
        return self.qc_dir / "complexity_curves.tsv"

    @property
    def gene_counts(self) -> Path:
        return self.matrix_dir / "gene_counts.tsv"

    @property
    def gene_counts_dedup(self) -> Path:
        """``matrix/gene_counts_dedup.tsv``: the deduplicated counts, when counting deduplicated."""
        return self.matrix_dir / "gene_counts_dedup.tsv"

    @property
    def gene_annotation(self) -> Path:
        return self.matrix_dir / "gene_annotation.tsv"

    @property
    def samples_table(self) -> Path:
        """``matrix/samples.tsv``: sheet metadata + QC, one row per sample of the run."""
        return self.matrix_dir / "samples.tsv"

    @property
    def h5ad(self) -> Path:
        return self.matrix_dir / "cfrna.h5ad"

    # ------------------------------------------------------------------ cohort: de and pathways
    def deseq2_table(self, contrast: str) -> Path:
        return self.de_dir / f"{contrast}.deseq2.tsv"

    def sensitivity_table(self, contrast: str) -> Path:
        return self.de_dir / f"{contrast}.sensitivity.tsv"

    @property
    def design(self) -> Path:
        """``de/design.tsv``: the list of the run's contrasts."""
        return self.de_dir / "design.tsv"

    @property
    def normalized_counts(self) -> Path:
        return self.de_dir / "normalized_counts.tsv"

    @property
    def vst(self) -> Path:
        return self.de_dir / "vst.tsv"

    @property
    def size_factors(self) -> Path:
        return self.de_dir / "size_factors.tsv"

    def gsea_table(self, contrast: str) -> Path:
        return self.pathways_dir / f"{contrast}.gsea.tsv"

    @property
    def signature_scores(self) -> Path:
        return self.pathways_dir / "signature_scores.tsv"

    @property
    def signature_association(self) -> Path:
        return self.pathways_dir / "signature_association.tsv"

    @property
    def gene_set_coverage(self) -> Path:
        return self.pathways_dir / "gene_set_coverage.tsv"

    def contrast_of(self, path: str | os.PathLike) -> str | None:
        """The contrast id of a per-contrast file name in de/ or pathways/ (None for other files)."""
        name = Path(path).name
        for suffixes in CONTRAST_SUFFIXES.values():
            for s in suffixes:
                if name.endswith(s) and len(name) > len(s):
                    return name[: -len(s)]
        return None

    # ------------------------------------------------------------------ report
    @property
    def report_html(self) -> Path:
        return self.report_dir / "index.html"

    # ------------------------------------------------------------------ pipeline_info
    @property
    def validated_samplesheet(self) -> Path:
        """``pipeline_info/samplesheet.valid.csv``: the sheet with absolute FASTQ paths (Nextflow)."""
        return self.info_dir / "samplesheet.valid.csv"

    @property
    def params_json(self) -> Path:
        return self.info_dir / "params.json"

    @property
    def software_versions(self) -> Path:
        return self.info_dir / "software_versions.yml"

    @property
    def input_checksums(self) -> Path:
        return self.info_dir / "input_checksums.tsv"

    @property
    def execution_trace(self) -> Path:
        return self.info_dir / "execution_trace.tsv"

    @property
    def sample_errors(self) -> Path:
        return self.info_dir / "sample_errors.tsv"

    @property
    def manifest(self) -> Path:
        return self.info_dir / "manifest.json"

    @property
    def run_log(self) -> Path:
        """``pipeline_info/cfrna.log``."""
        return self.info_dir / "cfrna.log"

    @property
    def logs_dir(self) -> Path:
        return self.info_dir / "logs"

    @property
    def stamps_dir(self) -> Path:
        """``pipeline_info/.stamps``: step stamps for ``--resume``."""
        return self.info_dir / ".stamps"

    @property
    def results_dir(self) -> Path:
        """``pipeline_info/.results``: per-sample worker results of a running ``cfrna run``."""
        return self.info_dir / ".results"

    def obsolete(self, path: str | os.PathLike) -> Path:
        """Where an output of the tree goes when it is retired (same relative path under ``obsolete/``)."""
        return self.obsolete_dir / Path(path).relative_to(self.root)
