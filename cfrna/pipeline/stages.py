"""The stage contract and the registry of the workflow's stages.

Every stage has one function of the same shape, at the same place::

    cfrna/<package>/stage.py::run_<stage>(*, <named inputs>, outdir, settings) -> StageResult

keyword-only; ``settings`` is the stage's frozen ``<Stage>Settings`` dataclass (defaults = the CLI's
defaults) and ``outdir`` the folder the stage writes into (the stage's folder of the output tree,
:mod:`cfrna.pipeline.layout`). The CLI subcommand parses arguments and calls it; ``cfrna run`` calls
it; the Nextflow module calls the CLI through its ``bin/`` shim.

:data:`STAGES` lists the stages in run order with their function, CLI subcommand, Nextflow module,
inputs and outputs; :func:`stage_table` renders it as the table of docs/architecture.md
(``tests/test_stages.py`` checks that the page is current and that every entry exists).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cfrna.pipeline.layout import OutputLayout

__all__ = ["OUTPUT_OVERRIDES", "STAGES", "TABLE_BEGIN", "TABLE_END", "Stage", "StageResult", "get_stage",
           "settings_from", "stage_table"]


@dataclass
class StageResult:
    """What a stage function returns.

    Attributes
    ----------
    stage
        The stage name (a key of :data:`STAGES`).
    outputs
        The files (and folders) written, by name (``{"bam": Path(...), ...}``).
    summary
        The stage's statistics (the JSON a CLI prints, e.g. the trim or align stats).
    warnings
        One line per warning the stage raised about the data (also logged).
    data
        The stage's in-memory product for a caller in the same process (an AnnData, the parsed
        samplesheet...), or None; never serialised.
    """

    stage: str
    outputs: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    data: Any = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (paths as strings)."""
        return {"stage": self.stage, "outputs": {k: str(v) for k, v in self.outputs.items()},
                "summary": self.summary, "warnings": list(self.warnings)}


S = TypeVar("S")


def settings_from(cls: type[S], source: Mapping[str, Any] | object | None = None, **overrides: Any) -> S:
    """Build the settings dataclass ``cls`` from ``source`` (a mapping or an argparse namespace).

    Only ``cls``'s fields are taken (other keys are ignored, a missing key keeps the default), so a
    new option needs a field and an argument of the same name and nothing else. ``overrides`` win.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    if source is not None:
        items = source.items() if isinstance(source, Mapping) else vars(source).items()
        values = {k: v for k, v in items if k in names}
    unknown = set(overrides) - names
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
    values.update(overrides)
    return cls(**values)


@dataclass(frozen=True)
class Stage:
    """One registered stage.

    ``function`` is ``"module:attribute"``; ``module`` the Nextflow module folder (None when the stage
    has no process of its own); ``inputs`` the function's keyword inputs (beside ``outdir`` and
    ``settings``); ``outputs`` :class:`OutputLayout` accessors (``"bam(sample)"``, ``"qc_summary"``)
    or, for files outside the tree, a literal text in angle brackets.
    """

    name: str
    function: str
    cli: str
    module: str | None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def load(self) -> Callable[..., StageResult]:
        """Import and return the stage function."""
        mod, _, attr = self.function.partition(":")
        return getattr(importlib.import_module(mod), attr)

    def output_paths(self, layout: OutputLayout, **ids: str) -> list[Path | str]:
        """The outputs as paths of ``layout`` (``ids`` gives ``sample``/``contrast``; default placeholders)."""
        return [_resolve(spec, layout, ids) for spec in self.outputs]

    def signature(self) -> str:
        """``run_x(*, a, b, outdir, settings) -> StageResult`` as declared (from the function itself)."""
        fn = self.load()
        sig = inspect.signature(fn)
        params = []
        for p in sig.parameters.values():
            params.append(p.name if p.default is inspect.Parameter.empty else f"{p.name}=…")
        return f"{fn.__name__}(*, {', '.join(params)})"


_SPEC = re.compile(r"^(?P<name>[a-z_0-9]+)(?:\((?P<arg>[a-z_]+)\))?$")


def _resolve(spec: str, layout: OutputLayout, ids: Mapping[str, str]) -> Path | str:
    if spec.startswith("<"):
        return spec
    m = _SPEC.match(spec)
    if m is None:
        raise ValueError(f"bad output spec {spec!r}")
    attr = getattr(layout, m["name"])
    if m["arg"]:
        return attr(ids.get(m["arg"], f"<{m['arg']}>"))
    return attr


#: the stages in run order
STAGES: tuple[Stage, ...] = (
    Stage("validate", "cfrna.pipeline.stage:run_validate", "validate", "workflow/modules/local/validate",
          ("samplesheet", "contrasts", "gtf", "fasta"), ("validated_samplesheet",)),
    Stage("index", "cfrna.align.stage:run_index", "index", "workflow/modules/local/index",
          ("fasta", "gtf"), ("<index cache>/<aligner>-<hash>/",)),
    Stage("trim", "cfrna.trim.stage:run_trim", "trim", "workflow/modules/local/trim",
          ("sample", "fastq_1", "fastq_2"),
          ("trimmed_fastq(sample)", "trim_json(sample)")),
    Stage("align", "cfrna.align.stage:run_align", "align", "workflow/modules/local/align",
          ("sample", "fastq_1", "fastq_2", "fasta", "gtf", "index", "strandedness"),
          ("bam(sample)", "bai(sample)", "align_json(sample)")),
    Stage("count", "cfrna.count.stage:run_count", "count", "workflow/modules/local/count",
          ("bam", "gtf", "sample", "paired", "strandedness", "align_json"),
          ("counts(sample)", "counts_summary(sample)", "counts_stats(sample)", "counts_dedup(sample)")),
    Stage("qc", "cfrna.qc.stage:run_qc", "qc", "workflow/modules/local/qc",
          ("samplesheet", "gtf", "counts_dir", "align_dir", "trim_dir"),
          ("qc_json(sample)", "qc_summary", "qc_thresholds", "multiqc_dir", "complexity_curves")),
    Stage("matrix", "cfrna.matrix.stage:run_matrix", "matrix", "workflow/modules/local/matrix",
          ("samplesheet", "gtf", "counts_dir", "qc_summary", "sample_errors"),
          ("gene_counts", "gene_annotation", "samples_table", "gene_counts_dedup", "h5ad")),
    Stage("de", "cfrna.de.stage:run_de", "de", "workflow/modules/local/de",
          ("counts", "samplesheet", "contrasts", "samples_table", "gtf", "annotation", "h5ad"),
          ("deseq2_table(contrast)", "sensitivity_table(contrast)", "design", "normalized_counts", "vst",
           "size_factors", "h5ad")),
    Stage("pathways", "cfrna.pathways.stage:run_pathways", "pathways", "workflow/modules/local/pathways",
          ("de_dir", "gtf", "gene_sets", "samplesheet", "samples_table", "h5ad"),
          ("gsea_table(contrast)", "signature_scores", "signature_association", "gene_set_coverage", "h5ad")),
    Stage("report", "cfrna.report.stage:run_report", "report", "workflow/modules/local/report",
          ("h5ad", "qc_summary", "params_json", "software_versions", "input_checksums"), ("report_html",)),
    Stage("provenance", "cfrna.pipeline.stage:run_provenance", "provenance", "workflow/modules/local/provenance",
          ("samplesheet", "fasta", "gtf", "contrasts", "gene_sets", "params"),
          ("params_json", "software_versions", "input_checksums")),
)

#: keyword parameters of a stage function that name an output file instead of the layout's (CLI options
#: such as ``cfrna count --out``); neither inputs nor ``outdir``/``settings``
OUTPUT_OVERRIDES: dict[str, tuple[str, ...]] = {"validate": ("normalized",), "count": ("out", "dedup_out"),
                                                 "de": ("h5ad_out",), "pathways": ("h5ad_out",), "report": ("h5ad_out",)}

_BY_NAME = {s.name: s for s in STAGES}


def get_stage(name: str) -> Stage:
    """The registered stage called ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r} (one of {', '.join(_BY_NAME)})") from None


TABLE_BEGIN = "<!-- stage-table:begin (generated by cfrna.pipeline.stages.stage_table; do not edit) -->"
TABLE_END = "<!-- stage-table:end -->"


def _rel(p: Path | str, root: Path) -> str:
    if isinstance(p, str):
        return p
    return "O/" + p.relative_to(root).as_posix()


def stage_table() -> str:
    """The registry as the markdown table of docs/architecture.md (stage → function → CLI → module → in → out)."""
    root = Path("O")
    lay = OutputLayout(root)
    rows = ["| stage | function | CLI | Nextflow module | inputs | outputs |",
            "|---|---|---|---|---|---|"]
    for s in STAGES:
        mod, _, attr = s.function.partition(":")
        path = mod.replace(".", "/") + ".py"
        outs = "<br>".join(f"`{_rel(p, root)}`" for p in s.output_paths(lay))
        nf = f"`{s.module}`" if s.module else "—"
        ins = ", ".join(f"`{i}`" for i in s.inputs)
        rows.append(f"| {s.name} | `{path}::{attr}` | `cfrna {s.cli}` | {nf} | {ins} | {outs} |")
    return "\n".join(rows) + "\n"


def render_into(text: str) -> str:
    """``text`` (docs/architecture.md) with the region between the markers replaced by :func:`stage_table`."""
    begin, end = text.find(TABLE_BEGIN), text.find(TABLE_END)
    if begin < 0 or end < begin:
        raise ValueError("the stage-table markers are missing from the page")
    return text[: begin + len(TABLE_BEGIN)] + "\n\n" + stage_table() + "\n" + text[end:]


def update_doc(path: str | os.PathLike) -> bool:
    """Rewrite the stage table of the page at ``path``; True when it changed."""
    from cfrna.io.atomic import write_text

    p = Path(path)
    old = p.read_text(encoding="utf-8")
    new = render_into(old)
    if new != old:
        write_text(p, new)
    return new != old


if __name__ == "__main__":  # python -m cfrna.pipeline.stages docs/architecture.md
    import sys

    for page in sys.argv[1:] or ["docs/architecture.md"]:
        print(f"{page}: {'updated' if update_doc(page) else 'current'}")
