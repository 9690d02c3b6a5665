"""``cfrna run``: the whole workflow in-process, with the output tree of the Nextflow pipeline.

Order: validate -> index -> per sample (trim -> align -> count, each sample in its own worker
process so a crash loses only that sample) -> qc -> matrix -> de -> pathways -> report.
A sample whose stage fails is recorded with its reason and excluded; the run goes on and says so.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cfrna.errors import CfrnaError, ConfigError, EmptyResultError
from cfrna.io.atomic import write_json, write_table
from cfrna.pipeline import provenance
from cfrna.pipeline.cache import StepCache

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """Everything `cfrna run` needs; mirrors the Nextflow params (docs/parameters.md)."""

    samplesheet: str
    fasta: str
    gtf: str
    outdir: str
    contrasts: str | None = None
    aligner: str = "mappy"
    gene_sets: list[str] = field(default_factory=list)
    threads: int = 1
    jobs: int | None = None
    resume: bool = False
    keep_failed: bool = False
    index_dir: str | None = None
    skip_trim: bool = False
    min_mapq: int = 0
    star_two_pass: bool = False
    qc_thresholds: str | None = None
    progress: bool = True

    def params(self) -> dict:
        """Parameters as recorded in ``pipeline_info/params.json``: file names, not machine paths."""
        d = asdict(self)
        d.pop("progress")
        for key in ("samplesheet", "fasta", "gtf", "outdir", "contrasts", "index_dir", "qc_thresholds"):
            if d[key]:
                d[key] = Path(d[key]).name
        d["gene_sets"] = [Path(g).name for g in d["gene_sets"]]
        return d


# ----------------------------------------------------------------------------- per-sample work


def _paths(outdir: Path, sid: str) -> dict[str, Path]:
    return {
        "trim_json": outdir / "trimmed" / f"{sid}.trim.json",
        "trim_1": outdir / "trimmed" / f"{sid}_1.trimmed.fastq.gz",
        "trim_2": outdir / "trimmed" / f"{sid}_2.trimmed.fastq.gz",
        "bam": outdir / "alignment" / f"{sid}.bam",
        "bai": outdir / "alignment" / f"{sid}.bam.bai",
        "align_json": outdir / "alignment" / f"{sid}.align.json",
        "counts": outdir / "counts" / f"{sid}.counts.tsv",
        "summary": outdir / "counts" / f"{sid}.counts.tsv.summary",
        "stats": outdir / "counts" / f"{sid}.counts.tsv.stats.json",
    }


def process_sample(opts: RunOptions, sample, index_path: str | None, threads: int,
                   cache: StepCache) -> list[dict]:
    """trim -> align -> count for one sample; returns trace records. Raises on failure."""
    from cfrna.align import run_align
    from cfrna.count import run_count, strandedness_from
    from cfrna.trim import run_trim

    out = Path(opts.outdir)
    p = _paths(out, sample.sample)
    trace = []

    def step(name: str, inputs: list, params: dict, outputs: list, fn) -> None:
        cache.run_step(name, sample.sample, inputs, params, outputs, fn, trace)

    if opts.skip_trim:
        r1, r2 = sample.fastq_1, sample.fastq_2
    else:
        outs = [p["trim_json"], p["trim_1"]] + ([p["trim_2"]] if sample.paired else [])
        step("trim", [sample.fastq_1, sample.fastq_2], {"paired": sample.paired}, outs,
             lambda: run_trim(sample.sample, sample.fastq_1, sample.fastq_2, out / "trimmed", threads=threads))
        r1, r2 = str(p["trim_1"]), (str(p["trim_2"]) if sample.paired else None)

    step("align", [r1, r2, opts.fasta, opts.gtf],
         {"aligner": opts.aligner, "index": index_path, "strandedness": sample.strandedness,
          "two_pass": opts.star_two_pass},
         [p["bam"], p["bai"], p["align_json"]],
         lambda: run_align(sample.sample, r1, r2, opts.fasta, opts.gtf, out / "alignment",
                           aligner=opts.aligner, index=index_path, threads=threads,
                           strandedness=sample.strandedness, two_pass=opts.star_two_pass))

    strand = strandedness_from(str(p["align_json"]))
    step("count", [p["bam"], opts.gtf], {"strandedness": strand, "paired": sample.paired,
                                         "min_mapq": opts.min_mapq},
         [p["counts"], p["summary"], p["stats"]],
         lambda: run_count(str(p["bam"]), opts.gtf, str(p["counts"]), strandedness=strand,
                           paired=sample.paired, threads=threads, min_mapq=opts.min_mapq,
                           sample=sample.sample))
    return trace


def _worker(opts: RunOptions, sample, index_path, threads: int, result_path: str) -> None:
    """Worker-process entry: run one sample, write its result JSON (ok or error)."""
    log_path = Path(opts.outdir) / "pipeline_info" / "logs" / f"{sample.sample}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("cfrna")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
    cache = StepCache(opts.outdir, enabled=True)
    # fault injection for the reliability tests: CFRNA_FAULT_INJECT=kill:<sample> kills this worker
    # the way the kernel's OOM killer would, before it writes anything
    if os.environ.get("CFRNA_FAULT_INJECT") == f"kill:{sample.sample}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    try:
        trace = process_sample(opts, sample, index_path, threads, cache)
        write_json(result_path, {"ok": True, "trace": trace})
    except CfrnaError as exc:
        root.error("sample %s failed: %s", sample.sample, exc.one_line())
        write_json(result_path, {"ok": False, "error": exc.one_line()})
    except Exception as exc:  # a bug or an unexpected library error: record it for this sample only
        root.error("sample %s failed:\n%s", sample.sample, traceback.format_exc())
        write_json(result_path, {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"})


def _run_samples(opts: RunOptions, samples, index_path, progress) -> tuple[list[dict], dict[str, str]]:
    """Run samples in worker processes, at most ``jobs`` at once; return trace and errors."""
    n = len(samples)
    jobs = opts.jobs or max(1, min(opts.threads, n))
    threads_each = max(1, opts.threads // jobs)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["cfrna.trim", "cfrna.align", "cfrna.count"])
    res_dir = Path(opts.outdir) / "pipeline_info" / ".results"
    res_dir.mkdir(parents=True, exist_ok=True)
    pending = list(samples)
    running: dict[str, tuple[mp.Process, Path]] = {}
    trace: list[dict] = []
    errors: dict[str, str] = {}
    task = progress.add_task("samples (trim, align, count)", total=n) if progress else None
    try:
        while pending or running:
            while pending and len(running) < jobs:
                s = pending.pop(0)
                rp = res_dir / f"{s.sample}.json"
                rp.unlink(missing_ok=True)
                proc = ctx.Process(target=_worker, args=(opts, s, index_path, threads_each, str(rp)),
                                   name=f"cfrna-{s.sample}")
                proc.start()
                running[s.sample] = (proc, rp)
            time.sleep(0.05)
            for sid, (proc, rp) in list(running.items()):
                if proc.is_alive():
                    continue
                proc.join()
                del running[sid]
                if rp.exists():
                    import json

                    rec = json.loads(rp.read_text())
                    if rec["ok"]:
                        trace.extend(rec["trace"])
                    else:
                        errors[sid] = rec["error"]
                else:
                    errors[sid] = f"worker process died (exit code {proc.exitcode})"
                if sid in errors:
                    log.warning("sample %s failed: %s", sid, errors[sid])
                    trace.append({"step": "sample", "sample": sid, "status": "FAILED", "seconds": 0.0})
                if progress:
                    progress.advance(task)
    finally:
        for proc, _ in running.values():
            proc.kill()
    return trace, errors


# ----------------------------------------------------------------------------- cohort steps


def run_pipeline(opts: RunOptions) -> dict:
    """Run every stage; returns a summary dict (paths, failed samples, trace)."""
    from cfrna.io._validate_cli import check_reference, contrast_counts
    from cfrna.io.samplesheet import read_samplesheet

    out = Path(opts.outdir)
    out.mkdir(parents=True, exist_ok=True)
    info = out / "pipeline_info"
    info.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(info / "cfrna.log", mode="a")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("cfrna").addHandler(file_handler)
    t_start = time.time()
    try:
        # 1. validate everything before any work
        if opts.aligner not in ("mappy", "star"):
            raise ConfigError(f"unknown aligner {opts.aligner!r}", hint="use mappy or star")
        sheet = read_samplesheet(opts.samplesheet)
        check_reference(opts.gtf, opts.fasta)
        if opts.contrasts:
            for cid, sizes in contrast_counts(sheet, opts.contrasts):
                log.info("contrast %s: %s", cid, ", ".join(f"{k}={v}" for k, v in sizes.items()))
        for gs in opts.gene_sets:
            if not Path(gs).is_file():
                raise ConfigError(f"gene set file not found: {gs}", hint="check --gene-sets")
        provenance.write_params(info / "params.json", opts.params())
        provenance.write_checksums(info / "input_checksums.tsv", opts, sheet)
        cache = StepCache(out, enabled=opts.resume)
        if not opts.resume:
            # a fresh run: forget stamps of an earlier run in the same folder
            import shutil

            shutil.rmtree(info / ".stamps", ignore_errors=True)

        with _progress(opts.progress) as progress:
            trace: list[dict] = []

            def cohort_step(name: str, inputs: list, params: dict, outputs: list, fn) -> None:
                def with_progress() -> None:
                    task = progress.add_task(name, total=1) if progress else None
                    fn()
                    if progress:
                        progress.advance(task)

                cache.run_step(name, "", inputs, params, outputs, with_progress, trace)

            # 2. index (content-addressed cache, shared across runs)
            from cfrna.align import build_index

            index_root = Path(opts.index_dir) if opts.index_dir else default_index_dir()
            t0 = time.time()
            index_path = str(build_index(opts.fasta, opts.gtf, index_root, aligner=opts.aligner,
                                         threads=opts.threads))
            trace.append({"step": "index", "sample": "", "status": "COMPLETED",
                          "seconds": round(time.time() - t0, 3)})

            # 3. per sample
            # workers always honour stamps; without --resume the stamps were cleared above
            sample_trace, errors = _run_samples(opts, sheet.samples, index_path, progress)
            trace.extend(sample_trace)
            ok = [s for s in sheet.samples if s.sample not in errors]
            if not ok:
                raise EmptyResultError("every sample failed: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
            write_table(info / "sample_errors.tsv",
                        _frame([{"sample": k, "error": v} for k, v in errors.items()], ["sample", "error"]))

            # 4. QC
            from cfrna.qc import run_qc

            qc_dir = out / "qc"
            sample_outputs = [f for s in ok for f in (_paths(out, s.sample)["stats"], _paths(out, s.sample)["align_json"])]
            cohort_step("qc", [opts.samplesheet, opts.gtf, opts.qc_thresholds, *sample_outputs],
                        {"keep_failed": opts.keep_failed, "errors": errors},
                        [qc_dir / "qc_summary.tsv"],
                        lambda: run_qc(opts.samplesheet, opts.gtf, out / "counts", out / "alignment",
                                       out / "trimmed", qc_dir, thresholds=opts.qc_thresholds,
                                       keep_failed=opts.keep_failed))

            # 5. matrix
            from cfrna.matrix import run_matrix

            mdir = out / "matrix"
            count_files = [_paths(out, s.sample)["counts"] for s in ok]
            cohort_step("matrix", [opts.samplesheet, opts.gtf, qc_dir / "qc_summary.tsv", *count_files],
                        {"errors": errors}, [mdir / "gene_counts.tsv", mdir / "samples.tsv"],
                        lambda: run_matrix(opts.samplesheet, opts.gtf, out / "counts", mdir,
                                           qc_summary=qc_dir / "qc_summary.tsv", sample_errors=errors))

            # 6. DE and pathways
            if opts.contrasts:
                from cfrna.de import run_de
                from cfrna.pathways import run_pathways

                de_dir = out / "de"
                cohort_step("de", [mdir / "gene_counts.tsv", mdir / "samples.tsv", opts.contrasts, opts.gtf],
                            {"keep_failed": opts.keep_failed}, [de_dir / "design.tsv"],
                            lambda: run_de(mdir / "gene_counts.tsv", opts.samplesheet, opts.contrasts, de_dir,
                                           samples_table=mdir / "samples.tsv", keep_failed=opts.keep_failed,
                                           threads=opts.threads, gtf=opts.gtf))
                pw_dir = out / "pathways"
                cohort_step("pathways", [de_dir / "design.tsv", *opts.gene_sets], {"gene_sets": opts.gene_sets},
                            [pw_dir / "signature_scores.tsv"],
                            lambda: run_pathways(de_dir, opts.gtf, pw_dir, gene_sets=opts.gene_sets or None,
                                                 samplesheet=opts.samplesheet,
                                                 samples_table=mdir / "samples.tsv", threads=opts.threads))

            # 7. provenance, then report and the AnnData (they embed it)
            provenance.write_versions(info / "software_versions.yml", aligner=opts.aligner)
            from cfrna.report import run_report

            trace.append({"step": "report", "sample": "", "status": "COMPLETED", "seconds": 0.0})
            t0 = time.time()
            run_report(out)
            trace[-1]["seconds"] = round(time.time() - t0, 3)
            provenance.write_trace(info / "execution_trace.tsv", trace)
    finally:
        logging.getLogger("cfrna").removeHandler(file_handler)
        file_handler.close()
    elapsed = time.time() - t_start
    if errors:
        log.warning("%d of %d samples failed and were excluded: %s", len(errors), len(sheet.samples),
                    "; ".join(f"{k}: {v}" for k, v in errors.items()))
    log.info("done in %.1f s: %s", elapsed, out / "report" / "index.html")
    return {"report": str(out / "report" / "index.html"), "failed": errors, "trace": trace,
            "seconds": elapsed}


def default_index_dir() -> Path:
    env = os.environ.get("CFRNA_INDEX_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    return Path(base) / "cfrna" / "index"


def _frame(rows: list[dict], columns: list[str]):
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


class _NullProgress:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _progress(enabled: bool):
    if not enabled:
        return _NullProgress()
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=False)
