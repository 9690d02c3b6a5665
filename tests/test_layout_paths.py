"""The output tree has one definition (cfrna/pipeline/layout.py): the package, ``cfrna run`` and the Nextflow
modules take their paths from it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cfrna.pipeline.layout import COUNTS_SIDECARS, FOLDERS, SAMPLE_FILES, OutputLayout

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cfrna"
LAYOUT = PACKAGE / "pipeline" / "layout.py"


def _tree_names() -> set[str]:
    """Every file name (or per-sample/per-contrast suffix) of the tree, from the layout itself."""
    lay = OutputLayout("O")
    names = {suffix for _, suffix in SAMPLE_FILES.values()}
    names |= set(COUNTS_SIDECARS.values()) - {".summary"}  # ".summary" alone is too generic to grep for
    for attr in dir(OutputLayout):
        if attr.startswith("_") or attr in ("root", "folder", "in_stage_folder"):
            continue
        value = getattr(lay, attr)
        if isinstance(value, Path) and not attr.endswith("_dir") and attr not in ("lock",):
            names.add(value.name)
    for fn, arg in ((lay.deseq2_table, "c"), (lay.sensitivity_table, "c"), (lay.gsea_table, "c")):
        names.add(fn(arg).name.removeprefix(arg))
    names.add(lay.lock.name)
    return names


#: names too generic to scan for: any BAM and its index (the aligner's work files, BAM readers)
GENERIC = {".bam", ".bam.bai"}
#: (file, name) pairs that are not the output tree: the index cache folder has its own manifest.json
NOT_THE_TREE = {("cfrna/align/index.py", "manifest.json")}


def test_tree_names_are_the_documented_ones():
    names = _tree_names()
    for expected in ("_1.trimmed.fastq.gz", ".trim.json", ".bam", ".bam.bai", ".align.json", ".counts.tsv",
                     ".counts.tsv.summary", ".counts.tsv.stats.json", ".qc.json", "qc_summary.tsv",
                     "qc_thresholds.json", "gene_counts.tsv", "gene_annotation.tsv", "samples.tsv", "cfrna.h5ad",
                     ".deseq2.tsv", ".sensitivity.tsv", "design.tsv", "normalized_counts.tsv", "vst.tsv",
                     "size_factors.tsv", ".gsea.tsv", "signature_scores.tsv", "signature_association.tsv",
                     "gene_set_coverage.tsv", "index.html", "params.json", "software_versions.yml",
                     "input_checksums.tsv", "execution_trace.tsv", "sample_errors.tsv", "manifest.json",
                     "cfrna.log", ".cfrna.lock"):
        assert expected in names, expected
    # docs/output.md lists the same tree
    doc = (ROOT / "docs" / "output.md").read_text(encoding="utf-8")
    lay = OutputLayout("O")
    for p in (lay.trim_json("x"), lay.align_json("x"), lay.counts_stats("x"), lay.qc_json("x"), lay.qc_summary,
              lay.gene_counts, lay.samples_table, lay.h5ad, lay.gsea_table("x"), lay.signature_scores,
              lay.report_html, lay.params_json, lay.software_versions, lay.input_checksums, lay.execution_trace,
              lay.sample_errors):
        rel = p.relative_to("O").as_posix().replace("/x", "/<sample>") if "x" in p.name.split(".")[0] else \
            p.relative_to("O").as_posix()
        rel = rel.replace("pathways/<sample>", "pathways/<contrast>")
        assert rel in doc, f"docs/output.md does not list {rel}"


def test_in_stage_folder_gives_the_same_names():
    full = OutputLayout("/r")
    for stage in ("trim", "align", "count", "qc"):
        own = OutputLayout.in_stage_folder(stage, "/elsewhere")
        for key, (st, _) in SAMPLE_FILES.items():
            if st == stage:
                assert own.sample_file(key, "s").name == full.sample_file(key, "s").name
                assert own.sample_file(key, "s").parent == Path("/elsewhere")
    with pytest.raises(KeyError):
        OutputLayout.in_stage_folder("trim", "/x").bam("s")
    with pytest.raises(KeyError):
        OutputLayout.in_stage_folder("nope", "/x")
    assert OutputLayout("/r").obsolete(Path("/r/de/a.deseq2.tsv")) == Path("/r/obsolete/de/a.deseq2.tsv")
    assert full.contrast_of("a_vs_b.gsea.tsv") == "a_vs_b" and full.contrast_of("design.tsv") is None
    with pytest.raises(ValueError):
        full.trimmed_fastq("s", 3)


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _help_nodes(tree: ast.AST) -> set[int]:
    """String constants that are documentation or messages: ``help=``/``hint=``/``where=`` texts."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in ("help", "description", "epilog", "hint"):
            for sub in ast.walk(node.value):
                ids.add(id(sub))
    return ids


def _path_literals(path: Path) -> list[tuple[int, str]]:
    """Path-like string constants (no spaces) that spell a name of the output tree, with their line.

    Sentences (log lines, error messages) are not paths and are not listed; a folder name is
    listed when it is joined with ``/`` (``out / "counts"``).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstring_nodes(tree) | _help_nodes(tree)
    names = _tree_names() - GENERIC
    folders = set(FOLDERS.values()) | {"multiqc", "logs", ".stamps", ".results"}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                if isinstance(side, ast.Constant) and side.value in folders:
                    found.append((side.lineno, side.value))
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
                and " " not in node.value and any(node.value.endswith(n) or node.value == n for n in names)):
            found.append((node.lineno, node.value))
    return found


def test_no_package_module_spells_the_tree():
    offenders = []
    for f in sorted(PACKAGE.rglob("*.py")):
        if f == LAYOUT or "simulate" in f.parts:  # the simulator writes its own cohort tree, not a run's
            continue
        rel = f.relative_to(ROOT).as_posix()
        for line, text in _path_literals(f):
            if (rel, text) not in NOT_THE_TREE:
                offenders.append(f"{rel}:{line}: {text!r}")
    assert not offenders, "take these paths from cfrna.pipeline.layout.OutputLayout:\n" + "\n".join(offenders)


def test_the_scan_finds_a_literal(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('"""Writes O/matrix/gene_counts.tsv."""\nfrom pathlib import Path\n'
                 'def f(out, sid):\n    a = Path(out) / "counts" / f"{sid}.counts.tsv"\n'
                 '    log = f"wrote {sid} counts"\n    return out / "gene_counts.tsv", a, log\n')
    assert _path_literals(f) == [(4, "counts"), (4, ".counts.tsv"), (6, "gene_counts.tsv")] or \
        sorted(_path_literals(f)) == sorted([(4, "counts"), (4, ".counts.tsv"), (6, "gene_counts.tsv")])


# ----------------------------------------------------------------------------- Nextflow


def _nf_layout_map() -> dict[str, str]:
    text = (ROOT / "conf" / "layout.config").read_text(encoding="utf-8")
    block = re.search(r"layout\s*=\s*\[(.*?)\]", text, re.S)
    assert block, "conf/layout.config: params.layout = [ ... ] not found"
    return dict(re.findall(r"(\w+)\s*:\s*'([^']*)'", block.group(1)))


def test_nextflow_layout_map_equals_the_python_layout():
    assert _nf_layout_map() == FOLDERS


def _nf_files() -> list[Path]:
    """Where the modules' publishDirs live: conf/ and workflow/ (nextflow.config holds Nextflow's own reports)."""
    files = [*sorted((ROOT / "conf").rglob("*.config")), *sorted((ROOT / "workflow").rglob("*.nf")),
             *sorted((ROOT / "workflow").rglob("*.config"))]
    return [f for f in files if f.is_file() and f.name != "layout.config"]


def test_publish_dirs_take_folders_from_the_layout_map():
    """Every publishDir under --outdir names its folder through params.layout, never a literal."""
    offenders = []
    folders = set(FOLDERS.values())
    for f in _nf_files():
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            for m in re.finditer(r"\$\{params\.outdir\}/([A-Za-z_]+)", line):
                if m.group(1) in folders:
                    offenders.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not offenders, "use ${params.layout.<stage>} instead of a folder literal:\n" + "\n".join(offenders)
    used = set()
    for f in _nf_files():
        used |= set(re.findall(r"params\.layout\.(\w+)", f.read_text(encoding="utf-8")))
    assert used, "no publishDir uses params.layout"
    assert used <= set(FOLDERS), f"params.layout keys not in the layout: {used - set(FOLDERS)}"
