"""``cfrna run``: the whole workflow in-process, with the output tree of the Nextflow pipeline.

Order: check every parameter and input -> lock the output folder -> sweep what a killed run left ->
index -> per sample (trim -> align -> count, each sample in its own worker process so a crash loses
only that sample) -> manifest, retire stale outputs -> qc -> matrix -> de -> pathways -> report.
A sample whose stage fails is recorded with its reason and excluded; the run goes on and says so.

What a run produces is defined by this run's inputs: ``pipeline_info/manifest.json`` lists the samples
(ok and failed) and contrasts of this run; outputs of samples or contrasts that are not part of it (an
older run into the same folder) are moved to ``obsolete/`` with a log line before the cohort stages
run, so no stage can pick them up (docs/usage.md, "Reruns").
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import multiprocessing as mp
import os
import shutil
import socket
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cfrna.config import ALIGNERS, DE_COUNTS, DEDUP_RUN_MODES
from cfrna.errors import CfrnaError, ConfigError, EmptyResultError, InputFormatError, ToolMissingError
from cfrna.io.atomic import write_json, write_table
from cfrna.pipeline.cache import StepCache
from cfrna.pipeline.layout import (
    CONTRAST_SUFFIXES,
    FOLDERS,
    LOCK_NAME,  # noqa: F401 (the lock file's name, as this module's)
    SAMPLE_FILES,
    SAMPLE_SUFFIXES,
    OutputLayout,
)

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
    junction_scoring: bool = False  # mappy: minimap2 --junc-bed on top of the annotated jumps
    qc_thresholds: str | None = None
    progress: bool = True
    title: str | None = None  # report title (recorded in params.json; cfrna.report.data.default_title)
    #: duplicate marking in the counting pass: auto = directional for samples with UMIs, else position
    dedup: str = "auto"
    #: the counts DE tests: auto = deduplicated when every sample has UMIs, else raw (docs/parameters.md)
    de_counts: str = "auto"
    #: run-wide UMI set-up (docs/usage.md "UMIs and low-input kits"); a sample's UMI columns override it
    umi_pattern: str | None = None
    umi_read: int | None = None
    umi_in_name: bool = False
    umi_separator: str = "_"

    def params(self) -> dict:
        """Parameters as recorded in ``pipeline_info/params.json``: file names, not machine paths."""
        d = asdict(self)
        d.pop("progress")
        for key in ("samplesheet", "fasta", "gtf", "outdir", "contrasts", "index_dir", "qc_thresholds"):
            if d[key]:
                d[key] = Path(d[key]).name
        d["gene_sets"] = [Path(g).name for g in d["gene_sets"]]
        return d


# ----------------------------------------------------------------------------- checks before any work

#: temporary names a killed run can leave: atomic writes (``.<name>.XXXX.tmp``), the aligner's work
#: folder (``.<sample>.align.XXXX``) and the BAM sort folder (``.<sample>.bam.sort.XXXX``)
_TEMP_MARKERS = (".align.", ".sort.")


def preflight(opts: RunOptions):
    """Check every run parameter and input before any sample work; one line per problem.

    Returns the parsed samplesheet and the contrast ids (empty without ``--contrasts``). A path that
    does not exist is a configuration error (exit 2); a file that exists but cannot be read or parsed
    is a data error (exit 1).
    """
    from cfrna.pipeline.stage import run_validate

    out = Path(opts.outdir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--outdir {opts.outdir}: File exists and is not a folder",
                          hint="give a folder path (it is created if missing)")
    if not isinstance(opts.threads, int) or opts.threads < 1:
        raise ConfigError(f"--threads must be an integer >= 1, got {opts.threads}")
    if opts.jobs is not None and (not isinstance(opts.jobs, int) or opts.jobs < 1):
        raise ConfigError(f"--jobs must be an integer >= 1, got {opts.jobs}",
                          hint="leave it out for min(threads, samples)")
    if not isinstance(opts.min_mapq, int) or not 0 <= opts.min_mapq <= 255:
        raise ConfigError(f"--min-mapq must be between 0 and 255 (the BAM MAPQ range), got {opts.min_mapq}")
    if opts.aligner not in ALIGNERS:
        raise ConfigError(f"unknown aligner {opts.aligner!r}", where="--aligner", hint=f"use {' or '.join(ALIGNERS)}")
    if opts.aligner == "star" and shutil.which("STAR") is None:
        raise ToolMissingError("--aligner star needs STAR on the PATH", hint="install STAR or use --aligner mappy")
    if opts.index_dir and Path(opts.index_dir).exists() and not Path(opts.index_dir).is_dir():
        raise ConfigError(f"--index-dir {opts.index_dir}: File exists and is not a folder")
    for flag, f in (("--samplesheet", opts.samplesheet), ("--fasta", opts.fasta), ("--gtf", opts.gtf),
                    ("--contrasts", opts.contrasts), ("--qc-thresholds", opts.qc_thresholds),
                    *(("--gene-sets", g) for g in opts.gene_sets)):
        if f:
            _check_input_file(flag, f)
    from cfrna.qc.filters import load_thresholds

    load_thresholds(opts.qc_thresholds)
    from cfrna.signatures.gmt import default_gmt_paths, read_gmt

    gmts = [Path(g) for g in opts.gene_sets] if opts.gene_sets else default_gmt_paths()
    if not gmts:
        raise ToolMissingError("no gene-set files in assets/genesets", hint="reinstall cfrna or give --gene-sets")
    for g in gmts:
        if not read_gmt(g):
            raise InputFormatError("gene-set file has no gene sets", where=str(g), hint="check --gene-sets")
    _check_report_assets()
    checked = run_validate(samplesheet=opts.samplesheet, contrasts=opts.contrasts, gtf=opts.gtf,
                           fasta=opts.fasta).data
    contrast_ids: list[str] = []
    for cid, sizes in checked.contrasts:
        log.info("contrast %s: %s", cid, ", ".join(f"{k}={v}" for k, v in sizes.items()))
        contrast_ids.append(cid)
    check_umi_options(opts, checked.sheet.samples)
    check_dedup_options(opts, checked.sheet.samples)
    return checked.sheet, contrast_ids


# ----------------------------------------------------------------------------- duplicates and UMIs
DEDUP_CHOICES = DEDUP_RUN_MODES
DE_COUNTS_CHOICES = DE_COUNTS


def _sample_umi(opts: RunOptions, sample):
    """The sample's UMI set-up (:class:`cfrna.trim.umi.UmiSpec`): its UMI columns over the run-wide options."""
    from cfrna.trim.umi import sample_umi

    return sample_umi(sample, pattern=opts.umi_pattern, read=opts.umi_read, in_name=opts.umi_in_name,
                      sep=opts.umi_separator)


def sample_umi_settings(opts: RunOptions, sample) -> dict:
    """The UMI options of ``cfrna trim`` for one sample (its UMI columns over the run-wide ones); {} without UMIs."""
    u = _sample_umi(opts, sample)
    if u.pattern is not None:
        return {"umi_pattern": u.kit or u.pattern, "umi_read": u.read, "umi_separator": u.sep}
    if u.in_name:
        return {"umi_in_name": True, "umi_separator": u.sep}
    return {}


def check_umi_options(opts: RunOptions, samples) -> None:
    """The run-wide UMI options, and each sample's UMI set-up against its reads (ConfigError naming it)."""
    from cfrna.trim.umi import resolve_umi

    resolve_umi(opts.umi_pattern, opts.umi_read, in_name=opts.umi_in_name, sep=opts.umi_separator,
                where="--umi-pattern")
    for s in samples:
        umi = sample_umi_settings(opts, s)
        if "umi_pattern" in umi and opts.skip_trim:
            raise ConfigError(f"sample {s.sample}: its UMI ({umi['umi_pattern']}) is extracted in the trim stage, "
                              "but --skip-trim was given", where="--skip-trim",
                              hint="drop --skip-trim, or extract the UMIs beforehand and declare umi_in_name")


def sample_has_umis(opts: RunOptions, sample) -> bool:
    """Whether the sample's reads carry UMIs (its UMI columns, else the run-wide UMI options)."""
    return _sample_umi(opts, sample).has_umis


def sample_dedup(opts: RunOptions, sample) -> str:
    """The ``cfrna count --dedup`` method of one sample: ``--dedup``, with ``auto`` resolved."""
    if opts.dedup != "auto":
        return opts.dedup
    return "directional" if sample_has_umis(opts, sample) else "position"


def de_counts_kind(opts: RunOptions, samples) -> str:
    """``raw`` or ``dedup``: the counts DE tests.

    ``auto`` is ``dedup`` when every sample has UMIs (their duplicates are PCR copies) and ``raw``
    otherwise: without UMIs most position duplicates of highly expressed genes are distinct molecules
    that start at the same base (Parekh et al. 2016, Sci Rep 6:25533; Klepikova et al. 2017, PeerJ
    5:e3091), so removing them compresses the dynamic range instead of removing PCR bias.
    """
    if opts.de_counts != "auto":
        return opts.de_counts
    if opts.dedup == "none" or not samples:
        return "raw"
    # a sample's method is position only when --dedup says so (auto picks directional for UMIs)
    return "dedup" if opts.dedup != "position" and all(sample_has_umis(opts, s) for s in samples) else "raw"


def check_dedup_options(opts: RunOptions, samples) -> None:
    """``--dedup``/``--de-counts`` values, and UMI methods only for samples with UMIs (ConfigError)."""
    if opts.dedup not in DEDUP_CHOICES:
        raise ConfigError(f"--dedup {opts.dedup!r} unknown", hint=f"use one of {', '.join(DEDUP_CHOICES)}")
    if opts.de_counts not in DE_COUNTS_CHOICES:
        raise ConfigError(f"--de-counts {opts.de_counts!r} unknown", hint=f"use one of {', '.join(DE_COUNTS_CHOICES)}")
    if opts.de_counts == "dedup" and opts.dedup == "none":
        raise ConfigError("--de-counts dedup needs deduplicated counts, but --dedup is none",
                          hint="use --dedup auto (or position/directional/unique), or --de-counts raw")
    if opts.dedup in ("directional", "unique"):
        for s in samples:
            if not sample_has_umis(opts, s):
                raise ConfigError(f"--dedup {opts.dedup} needs UMIs, but sample {s.sample} has none",
                                  hint="declare them (samplesheet umi_pattern/umi_in_name, or --umi-pattern), "
                                       "or use --dedup auto/position")


def _check_input_file(flag: str, f: str) -> None:
    p = Path(f)
    if not p.exists():
        raise ConfigError(f"{flag} {f}: file not found", hint="check the path")
    if p.is_dir():
        raise ConfigError(f"{flag} {f}: is a folder, not a file", hint="check the path")
    if not os.access(p, os.R_OK):
        raise InputFormatError(f"{flag} {f}: file not readable", hint="check the file's permissions")


def _check_report_assets() -> None:
    """The report's template and vendored libraries, and the samplesheet schema, are installed."""
    from cfrna._resources import asset_path
    from cfrna.report.html import TEMPLATES, vendor_dir

    vendor_dir()
    if not (TEMPLATES / "report.html").is_file():
        raise ToolMissingError("report template missing", where=str(TEMPLATES / "report.html"),
                               hint="reinstall cfrna (the package is incomplete)")
    try:
        asset_path("schema_input.json")
    except FileNotFoundError as exc:
        raise ToolMissingError(str(exc), hint="reinstall cfrna (the package is incomplete)") from None


# ----------------------------------------------------------------------------- the output folder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutdirLock:
    """An exclusive lock on an output folder: ``<outdir>/.cfrna.lock`` with host, pid and start time.

    Taken atomically with ``flock`` on the lock file (the kernel drops it when the holder dies, so a lock
    left by a killed run on this host is taken over, with a warning naming it); released on exit. A
    second run into the same folder gets a one-line :class:`~cfrna.errors.ConfigError` naming the holder.
    A lock file written on another host whose holder cannot be checked is not taken over.
    """

    def __init__(self, outdir: str | os.PathLike):
        self.path = OutputLayout(outdir).lock
        self.fd: int | None = None

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    @staticmethod
    def describe(h: dict) -> str:
        return (f"host {h.get('host', '?')}, pid {h.get('pid', '?')}, "
                f"started {h.get('started', '?')}")

    def acquire(self) -> OutdirLock:
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                raise ConfigError(f"output folder is in use by another cfrna run ({self.describe(self._holder())})",
                                  where=str(self.path.parent),
                                  hint="wait for it to finish or use another --outdir") from None
            try:
                same = os.fstat(fd).st_ino == self.path.stat().st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file between our open and flock: retry
                os.close(fd)
                continue
            old = self._holder()
            if old:
                host = socket.gethostname()
                if old.get("host") != host and old.get("host"):
                    os.close(fd)
                    raise ConfigError(f"output folder is locked by a run on another host ({self.describe(old)})",
                                      where=str(self.path.parent),
                                      hint=f"if that run is dead, delete {self.path}")
                if old.get("pid") not in (None, os.getpid()) and _pid_alive(int(old["pid"])):
                    # the file lock is free but its writer still runs: a file system without flock
                    os.close(fd)
                    raise ConfigError(f"output folder is in use by another cfrna run ({self.describe(old)})",
                                      where=str(self.path.parent),
                                      hint=f"wait for it to finish, or delete {self.path} if it is not a cfrna run")
                log.warning("taking over a stale lock of a run that is no longer running (%s)", self.describe(old))
            me = {"host": socket.gethostname(), "pid": os.getpid(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
            self.fd = fd
            return self
        raise ConfigError("could not lock the output folder (it keeps changing)", where=str(self.path.parent))

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> OutdirLock:
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False


def sweep_temporary(out: Path) -> list[str]:
    """Remove the temporary files and folders a killed run left in ``out``; return their paths.

    Called with the folder locked, so nothing in it is being written. ``obsolete/`` is left alone.
    """
    removed = []
    for root, dirs, files in os.walk(out):
        rel_root = Path(root).relative_to(out)
        if rel_root.parts[:1] == (FOLDERS["obsolete"],):
            dirs[:] = []
            continue
        for name in list(dirs):
            if name.startswith(".") and any(m in name for m in _TEMP_MARKERS):
                shutil.rmtree(Path(root) / name, ignore_errors=True)
                dirs.remove(name)
                removed.append(str(rel_root / name))
        for name in files:
            if name.startswith(".") and (name.endswith(".tmp") or any(m in name for m in _TEMP_MARKERS)):
                (Path(root) / name).unlink(missing_ok=True)
                removed.append(str(rel_root / name))
    shutil.rmtree(OutputLayout(out).results_dir, ignore_errors=True)
    if removed:
        log.warning("removed %d temporary file(s) left by an interrupted run: %s", len(removed),
                    ", ".join(removed[:5]) + (" …" if len(removed) > 5 else ""))
    return removed


#: stages whose outputs are per-sample files named ``<sample><suffix>`` (layout.SAMPLE_SUFFIXES)
_SAMPLE_STAGES = ("trim", "align", "count")


def _owner(name: str, known: list[str]) -> str | None:
    for suffix in SAMPLE_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    for sid in known:  # longest first: other per-sample files named <sample>.<anything>
        if name.startswith((f"{sid}.", f"{sid}_")):
            return sid
    return None


def _move_obsolete(out: Path, files: list[Path], why: str) -> None:
    layout = OutputLayout(out)
    for f in files:
        dest = layout.obsolete(f)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir():
            shutil.rmtree(dest)
        os.replace(f, dest)
    log.warning("%s: %d file(s) moved to obsolete/ (%s)", why, len(files),
                ", ".join(str(f.relative_to(out)) for f in files[:4]) + (" …" if len(files) > 4 else ""))


def retire_samples(out: Path, sheet_ids: list[str], ok: list[str], failed: dict[str, str],
                   previous: list[str]) -> dict[str, list[str]]:
    """Move outputs of samples that are not part of this run's result to ``obsolete/``.

    A sample's trim/align/count outputs stay only if it is in this run's samplesheet and did not fail;
    ``qc/<sample>.qc.json`` stays for every sample of the sheet (QC rewrites them). Returns
    ``{sample: [moved files]}``.
    """
    keep = set(ok)
    in_sheet = set(sheet_ids)
    known = sorted(set(sheet_ids) | set(previous), key=len, reverse=True)
    by_sample: dict[str, list[Path]] = {}
    layout = OutputLayout(out)
    for stage in _SAMPLE_STAGES:
        folder = layout.folder(stage)
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.name.startswith("."):
                continue
            sid = _owner(f.name, known)
            if sid is None or sid in keep:
                continue
            by_sample.setdefault(sid, []).append(f)
    qc = layout.qc_dir
    qc_suffix = SAMPLE_FILES["qc_json"][1]
    if qc.is_dir():
        for f in sorted(qc.glob(f"*{qc_suffix}")):
            sid = f.name.removesuffix(qc_suffix)
            if sid not in in_sheet:
                by_sample.setdefault(sid, []).append(f)
    for sid, files in sorted(by_sample.items()):
        if sid in failed:
            why = f"sample {sid} failed in this run; outputs of an earlier run"
        else:
            why = f"sample {sid} is not in this run's samplesheet"
        _move_obsolete(out, files, why)
    return {sid: [str(f.relative_to(out)) for f in files] for sid, files in by_sample.items()}


def retire_contrasts(out: Path, contrast_ids: list[str]) -> dict[str, list[str]]:
    """Move DE and pathway tables of contrasts that are not in this run's contrasts to ``obsolete/``.

    Without contrasts, the whole ``de/`` and ``pathways/`` folders of an earlier run are retired.
    """
    keep = set(contrast_ids)
    moved: dict[str, list[Path]] = {}
    for stage, suffixes in CONTRAST_SUFFIXES.items():
        folder = OutputLayout(out).folder(stage)
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.name.startswith("."):
                continue
            if not contrast_ids:
                moved.setdefault("", []).append(f)
                continue
            cid = next((f.name[: -len(s)] for s in suffixes if f.name.endswith(s)), None)
            if cid is not None and cid not in keep:
                moved.setdefault(cid, []).append(f)
    for cid, files in sorted(moved.items()):
        why = (f"contrast {cid} is not in this run's contrasts" if cid
               else "this run has no --contrasts; DE and pathway results of an earlier run")
        _move_obsolete(out, files, why)
    return {cid: [str(f.relative_to(out)) for f in files] for cid, files in moved.items()}


def read_manifest(out: Path) -> dict:
    """``pipeline_info/manifest.json`` of the run that last wrote ``out`` ({} when absent)."""
    try:
        return json.loads(OutputLayout(out).manifest.read_text())
    except (OSError, ValueError):
        return {}


def _previous_samples(manifest: dict) -> list[str]:
    s = manifest.get("samples", {})
    return [*s.get("ok", []), *s.get("failed", {})]


# ----------------------------------------------------------------------------- progress


class RunProgress:
    """Progress of a run: rich bars on a terminal, one line per finished step otherwise, or nothing.

    The line mode follows Nextflow's ANSI-off log: ``[align] s03 completed (4/6, 3.2 s)``.
    """

    def __init__(self, mode: str):
        self.mode = mode
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = {}
        self._rich = None
        self._tasks: dict[str, object] = {}

    def __enter__(self) -> RunProgress:
        if self.mode == "rich":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._rich = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self._rich.__enter__()
        return self

    def __exit__(self, *exc) -> bool:
        if self._rich is not None:
            self._rich.__exit__(*exc)
        return False

    def stage(self, name: str, total: int) -> None:
        self.totals[name] = total
        self.done[name] = 0
        if self._rich is not None:
            self._tasks[name] = self._rich.add_task(name, total=total)

    def finished(self, name: str, item: str = "", status: str = "COMPLETED", seconds: float = 0.0) -> None:
        if name not in self.totals:
            return
        self.done[name] += 1
        if self._rich is not None:
            self._rich.advance(self._tasks[name])
        elif self.mode == "lines":
            what = f" {item}" if item else ""
            print(f"[{name}]{what} {status.lower()} ({self.done[name]}/{self.totals[name]}, {seconds:.1f} s)",
                  file=sys.stderr, flush=True)


def progress_mode(enabled: bool) -> str:
    """``rich`` when stderr is a terminal, ``lines`` when not (CI, batch logs), ``off`` when disabled."""
    if not enabled:
        return "off"
    return "rich" if sys.stderr.isatty() else "lines"


# ----------------------------------------------------------------------------- per-sample work


def process_sample(opts: RunOptions, sample, index_path: str | None, threads: int,
                   cache: StepCache, on_step=None) -> list[dict]:
    """trim -> align -> count for one sample (the stage functions); returns trace records. Raises on failure.

    ``on_step(record)`` is called with each step's trace record when the step is done.
    """
    from cfrna.align.stage import AlignSettings, run_align
    from cfrna.count import strandedness_from
    from cfrna.count.stage import CountSettings, run_count
    from cfrna.trim.stage import TrimSettings, run_trim

    layout = OutputLayout(opts.outdir)
    p = layout.sample_files(sample.sample)
    trace = []

    def step(name: str, inputs: list, params: dict, outputs: list, fn) -> None:
        cache.run_step(name, sample.sample, inputs, params, outputs, fn, trace)
        if on_step is not None:
            on_step(trace[-1])

    if opts.skip_trim:
        r1, r2 = sample.fastq_1, sample.fastq_2
    else:
        outs = [p["trim_json"], p["trim_1"]] + ([p["trim_2"]] if sample.paired else [])
        umi = sample_umi_settings(opts, sample)
        step("trim", [sample.fastq_1, sample.fastq_2], {"paired": sample.paired, **umi}, outs,
             lambda: run_trim(sample=sample.sample, fastq_1=sample.fastq_1, fastq_2=sample.fastq_2,
                              outdir=layout.trimmed_dir, settings=TrimSettings(threads=threads, **umi)))
        r1, r2 = str(p["trim_1"]), (str(p["trim_2"]) if sample.paired else None)

    step("align", [r1, r2, opts.fasta, opts.gtf],
         {"aligner": opts.aligner, "index": index_path, "strandedness": sample.strandedness,
          "two_pass": opts.star_two_pass, "junction_scoring": opts.junction_scoring},
         [p["bam"], p["bai"], p["align_json"]],
         lambda: run_align(sample=sample.sample, fastq_1=r1, fastq_2=r2, fasta=opts.fasta, gtf=opts.gtf,
                           index=index_path, strandedness=sample.strandedness, outdir=layout.alignment_dir,
                           settings=AlignSettings(aligner=opts.aligner, threads=threads,
                                                  two_pass=opts.star_two_pass,
                                                  junction_scoring=opts.junction_scoring)))

    strand = strandedness_from(str(p["align_json"]))
    dedup = sample_dedup(opts, sample)
    umi_sep = getattr(opts, "umi_separator", None) or "_"
    dedup_out = layout.counts_dedup(sample.sample) if dedup != "none" else None
    if dedup_out is None:
        layout.counts_dedup(sample.sample).unlink(missing_ok=True)  # an earlier run's, not this one's
    step("count", [p["bam"], opts.gtf], {"strandedness": strand, "paired": sample.paired,
                                         "min_mapq": opts.min_mapq, "dedup": dedup, "umi_sep": umi_sep},
         [p["counts"], p["summary"], p["stats"], *([dedup_out] if dedup_out else [])],
         lambda: run_count(bam=p["bam"], gtf=opts.gtf, sample=sample.sample, paired=sample.paired,
                           strandedness=strand, outdir=layout.counts_dir, dedup_out=dedup_out,
                           settings=CountSettings(threads=threads, min_mapq=opts.min_mapq, dedup=dedup,
                                                  umi_sep=umi_sep)))
    return trace


def _worker(opts: RunOptions, sample, index_path, threads: int, result_path: str, conn=None) -> None:
    """Worker-process entry: run one sample, write its result JSON (ok or error).

    ``conn`` (a pipe's write end) receives each finished step's trace record, for the progress lines.
    """
    log_path = OutputLayout(opts.outdir).sample_log(sample.sample)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("cfrna")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False
    cache = StepCache(opts.outdir, enabled=True)

    def on_step(rec: dict) -> None:
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.send(rec)

    try:
        trace = process_sample(opts, sample, index_path, threads, cache, on_step)
        write_json(result_path, {"ok": True, "trace": trace})
    except CfrnaError as exc:
        root.error("sample %s failed: %s", sample.sample, exc.one_line())
        write_json(result_path, {"ok": False, "error": exc.one_line()})
    except Exception as exc:  # a bug or an unexpected library error: record it for this sample only
        root.error("sample %s failed:\n%s", sample.sample, traceback.format_exc())
        write_json(result_path, {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"})
    finally:
        if conn is not None:
            conn.close()


def _run_samples(opts: RunOptions, samples, index_path, progress: RunProgress
                 ) -> tuple[list[dict], dict[str, str]]:
    """Run samples in worker processes, at most ``jobs`` at once; return trace and errors."""
    n = len(samples)
    if opts.jobs is not None and opts.jobs < 1:  # preflight refuses it; never loop for ever on it
        raise ConfigError(f"--jobs must be >= 1, got {opts.jobs}")
    jobs = min(opts.jobs or max(1, min(opts.threads, n)), n)
    threads_each = max(1, opts.threads // jobs)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["cfrna.trim", "cfrna.align", "cfrna.count"])
    res_dir = OutputLayout(opts.outdir).results_dir
    res_dir.mkdir(parents=True, exist_ok=True)
    pending = list(samples)
    running: dict[str, tuple[mp.Process, Path, object]] = {}
    trace: list[dict] = []
    errors: dict[str, str] = {}
    for stage in ("trim", "align", "count"):
        if not (stage == "trim" and opts.skip_trim):
            progress.stage(stage, n)
    progress.stage("samples", n)

    def drain(conn) -> None:
        with contextlib.suppress(EOFError, OSError):
            while conn.poll():
                rec = conn.recv()
                progress.finished(rec["step"], rec["sample"], rec["status"], rec["seconds"])

    try:
        while pending or running:
            while pending and len(running) < jobs:
                s = pending.pop(0)
                rp = res_dir / f"{s.sample}.json"
                rp.unlink(missing_ok=True)
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_worker, args=(opts, s, index_path, threads_each, str(rp), send),
                                   name=f"cfrna-{s.sample}")
                proc.start()
                send.close()
                running[s.sample] = (proc, rp, recv)
            time.sleep(0.05)
            for sid, (proc, rp, recv) in list(running.items()):
                drain(recv)
                if proc.is_alive():
                    continue
                proc.join()
                drain(recv)
                recv.close()
                del running[sid]
                if rp.exists():
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
                progress.finished("samples", sid, "FAILED" if sid in errors else "COMPLETED",
                                  sum(r["seconds"] for r in trace if r.get("sample") == sid))
    finally:
        for proc, _, _ in running.values():
            proc.kill()
    return trace, errors


# ----------------------------------------------------------------------------- cohort steps


def run_pipeline(opts: RunOptions) -> dict:
    """Run every stage; returns a summary dict (paths, failed samples, contrasts, trace)."""
    # 1. every parameter and input checked before anything is written or any sample work starts
    sheet, contrast_ids = preflight(opts)
    out = Path(opts.outdir)
    out.mkdir(parents=True, exist_ok=True)
    with OutdirLock(out):
        return _run_locked(opts, out, sheet, contrast_ids)


def _run_locked(opts: RunOptions, out: Path, sheet, contrast_ids: list[str]) -> dict:
    from cfrna.pipeline import provenance  # pandas: imported after the parameter checks
    from cfrna.pipeline.stage import ProvenanceSettings, run_provenance

    layout = OutputLayout(out)
    info = layout.info_dir
    info.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(layout.run_log, mode="a")
    file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("cfrna").addHandler(file_handler)
    t_start = time.time()
    errors: dict[str, str] = {}
    try:
        sweep_temporary(out)
        previous = read_manifest(out)
        # pipeline_info: params.json, input_checksums.tsv, software_versions.yml (the report embeds them)
        run_provenance(samplesheet=opts.samplesheet, fasta=opts.fasta, gtf=opts.gtf, contrasts=opts.contrasts,
                       gene_sets=opts.gene_sets, params=opts.params(), outdir=info,
                       settings=ProvenanceSettings(aligner=opts.aligner))
        cache = StepCache(out, enabled=opts.resume)
        if not opts.resume:
            # a fresh run: forget stamps of an earlier run in the same folder
            shutil.rmtree(layout.stamps_dir, ignore_errors=True)

        with RunProgress(progress_mode(opts.progress)) as progress:
            trace: list[dict] = []

            def cohort_step(name: str, inputs: list, params: dict, outputs: list, fn) -> None:
                progress.stage(name, 1)
                cache.run_step(name, "", inputs, params, outputs, fn, trace)
                progress.finished(name, "", trace[-1]["status"], trace[-1]["seconds"])

            # 2. index (content-addressed cache, shared across runs)
            from cfrna.align.stage import IndexSettings, run_index

            index_root = Path(opts.index_dir) if opts.index_dir else default_index_dir()
            t0 = time.time()
            progress.stage("index", 1)
            index_path = str(run_index(fasta=opts.fasta, gtf=opts.gtf, outdir=index_root,
                                       settings=IndexSettings(aligner=opts.aligner, threads=opts.threads))
                             .outputs["index"])
            trace.append({"step": "index", "sample": "", "status": "COMPLETED",
                          "seconds": round(time.time() - t0, 3)})
            progress.finished("index", "", "COMPLETED", trace[-1]["seconds"])

            # 3. per sample
            # workers always honour stamps; without --resume the stamps were cleared above
            sample_trace, errors = _run_samples(opts, sheet.samples, index_path, progress)
            trace.extend(sample_trace)
            ok = [s for s in sheet.samples if s.sample not in errors]
            # the manifest: what this run is made of; outputs of anything else leave the tree
            write_json(layout.manifest, {
                "samples": {"ok": [s.sample for s in ok], "failed": errors},
                "contrasts": contrast_ids,
                "samplesheet": Path(opts.samplesheet).name,
                "contrasts_file": Path(opts.contrasts).name if opts.contrasts else None,
            })
            retire_samples(out, sheet.ids, [s.sample for s in ok], errors, _previous_samples(previous))
            retire_contrasts(out, contrast_ids)
            if not ok:
                raise EmptyResultError("every sample failed: " + "; ".join(f"{k}: {v}" for k, v in errors.items()))
            write_table(layout.sample_errors,
                        _frame([{"sample": k, "error": v} for k, v in errors.items()], ["sample", "error"]))

            # 4. QC (the samplesheet parsed once, in preflight, is passed down to the cohort stages)
            from cfrna.qc.stage import QcSettings, run_qc

            sample_outputs = [f for s in ok for f in (layout.counts_stats(s.sample), layout.align_json(s.sample))]
            cohort_step("qc", [opts.samplesheet, opts.gtf, opts.qc_thresholds, *sample_outputs],
                        {"keep_failed": opts.keep_failed, "errors": errors},
                        [layout.qc_summary],
                        lambda: run_qc(samplesheet=sheet, gtf=opts.gtf, counts_dir=layout.counts_dir,
                                       align_dir=layout.alignment_dir, trim_dir=layout.trimmed_dir,
                                       outdir=layout.qc_dir,
                                       settings=QcSettings(thresholds=opts.qc_thresholds,
                                                           keep_failed=opts.keep_failed)))

            # 5. matrix: the cohort tables and the AnnData carrier (matrix/cfrna.h5ad)
            from cfrna.matrix.stage import run_matrix

            count_files = [layout.counts(s.sample) for s in ok]
            count_files += [f for f in map(layout.counts_dedup, (s.sample for s in ok)) if f.is_file()]
            cohort_step("matrix", [opts.samplesheet, opts.gtf, layout.qc_summary, *count_files],
                        {"errors": errors}, [layout.gene_counts, layout.samples_table, layout.h5ad],
                        lambda: run_matrix(samplesheet=sheet, gtf=opts.gtf, counts_dir=layout.counts_dir,
                                           qc_summary=layout.qc_summary, sample_errors=errors,
                                           outdir=layout.matrix_dir))

            # 6. DE and pathways (each adds its results to the AnnData)
            if opts.contrasts:
                from cfrna.de.stage import DeSettings, run_de
                from cfrna.pathways.stage import PathwaysSettings, run_pathways

                kind = de_counts_kind(opts, ok)
                de_counts = layout.gene_counts_dedup if kind == "dedup" else layout.gene_counts
                if kind == "dedup" and not de_counts.is_file():
                    raise EmptyResultError("DE on deduplicated counts, but the matrix stage wrote none",
                                           where=str(de_counts), hint="use --de-counts raw, or count with --dedup")
                log.info("DE tests the %s counts (%s)", "deduplicated" if kind == "dedup" else "raw", de_counts.name)
                cohort_step("de", [de_counts, layout.samples_table, opts.contrasts, opts.gtf],
                            {"keep_failed": opts.keep_failed, "de_counts": kind}, [layout.design],
                            lambda: run_de(counts=de_counts, samplesheet=sheet, contrasts=opts.contrasts,
                                           samples_table=layout.samples_table, gtf=opts.gtf, h5ad=layout.h5ad,
                                           outdir=layout.de_dir,
                                           settings=DeSettings(keep_failed=opts.keep_failed, threads=opts.threads)))
                cohort_step("pathways", [layout.design, *opts.gene_sets], {"gene_sets": opts.gene_sets},
                            [layout.signature_scores],
                            lambda: run_pathways(de_dir=layout.de_dir, gtf=opts.gtf, gene_sets=opts.gene_sets or None,
                                                 samplesheet=sheet, samples_table=layout.samples_table,
                                                 h5ad=layout.h5ad, outdir=layout.pathways_dir,
                                                 settings=PathwaysSettings(threads=opts.threads)))
            else:
                from cfrna.matrix.anndata_io import drop_results, read_carrier, write_carrier

                carrier = read_carrier(layout.h5ad)  # kept by --resume: no DE of an earlier run in it
                if drop_results(carrier):
                    write_carrier(carrier, layout.h5ad)

            # 7. the report: the AnnData + the QC summary + pipeline_info (recorded in the AnnData)
            from cfrna.report.stage import ReportSettings, run_report

            progress.stage("report", 1)
            trace.append({"step": "report", "sample": "", "status": "COMPLETED", "seconds": 0.0})
            t0 = time.time()
            run_report(h5ad=layout.h5ad, qc_summary=layout.qc_summary, params_json=layout.params_json,
                       software_versions=layout.software_versions, input_checksums=layout.input_checksums,
                       outdir=layout.report_dir, settings=ReportSettings())
            trace[-1]["seconds"] = round(time.time() - t0, 3)
            progress.finished("report", "", "COMPLETED", trace[-1]["seconds"])
            provenance.write_trace(layout.execution_trace, trace)
    finally:
        logging.getLogger("cfrna").removeHandler(file_handler)
        file_handler.close()
    elapsed = time.time() - t_start
    if errors:
        log.warning("%d of %d samples failed and were excluded: %s", len(errors), len(sheet.samples),
                    "; ".join(f"{k}: {v}" for k, v in errors.items()))
    log.info("done in %.1f s: %s", elapsed, layout.report_html)
    return {"report": str(layout.report_html), "failed": errors, "trace": trace,
            "contrasts": contrast_ids, "seconds": elapsed}


def default_index_dir() -> Path:
    env = os.environ.get("CFRNA_INDEX_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    return Path(base) / "cfrna" / "index"


def _frame(rows: list[dict], columns: list[str]):
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)
