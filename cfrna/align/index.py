"""Aligner indexes, built once and cached by content hash.

``build_index(fasta, gtf, cache_dir, aligner=..)`` returns ``cache_dir/<aligner>-<hash>/`` where
``hash`` covers the FASTA bytes, the GTF bytes (junctions), the aligner name and version and the
build parameters. The index is built in a temporary folder next to it and renamed into place, and
``manifest.json`` is written last: a folder with a manifest is complete and is reused, never
rebuilt.

Contents: ``manifest.json``, ``contigs.tsv`` (name, length) and

- mappy: ``genome.mmi`` (preset ``splice:sr``) and ``junctions.bed`` (BED12, one line per
  annotated multi-exon transcript; loaded into the index at alignment time, see
  :mod:`cfrna.align.mappy_runner`);
- STAR: ``star/`` (``STAR --runMode genomeGenerate`` with ``--sjdbGTFfile``).
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from cfrna._malloc import default_mmap_threshold
from cfrna.config import ALIGNERS
from cfrna.errors import CfrnaError, ConfigError, InputFormatError, ToolMissingError
from cfrna.io.atomic import write_json

log = logging.getLogger(__name__)

#: bump when the index layout changes (part of the hash)
INDEX_FORMAT = 1
MAPPY_PRESET = "splice:sr"


def _open_maybe_gz(path: str | os.PathLike):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_fasta_lengths(path: str | os.PathLike) -> list[tuple[str, int]]:
    """Sequence names (first word of each header) and lengths of a FASTA (plain or gzip).

    Raises
    ------
    InputFormatError
        Not FASTA (first line is not a ``>`` header, or sequence lines hold non-letters), no
        sequence, duplicate names, or a truncated gzip.
    """
    path = str(path)
    out: list[tuple[str, int]] = []
    seen: set[str] = set()
    name: str | None = None
    length = 0
    checked = 0
    try:
        fh = _open_maybe_gz(path)
    except OSError as exc:
        raise InputFormatError(f"cannot read FASTA: {exc.strerror}", where=path, hint="check the --fasta path") from exc
    with fh:
        try:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip(b"\r\n")
                if line.startswith(b">"):
                    if name is not None:
                        out.append((name, length))
                    words = line[1:].split()
                    if not words:
                        raise InputFormatError("FASTA header without a name", where=f"{path}:{lineno}")
                    name = words[0].decode("utf-8", "replace")
                    if name in seen:
                        raise InputFormatError(f"duplicate sequence name {name!r}", where=f"{path}:{lineno}",
                                               hint="sequence names must be unique")
                    seen.add(name)
                    length = 0
                    continue
                if not line.strip():
                    continue
                if name is None:
                    raise InputFormatError("not a FASTA file: the first line is not a '>' header",
                                           where=f"{path}:{lineno}", hint="give the genome FASTA with --fasta")
                if checked < 2000:
                    checked += 1
                    if not line.strip().replace(b"-", b"").replace(b"*", b"").isalpha():
                        raise InputFormatError("not a FASTA sequence line (non-letter characters)",
                                               where=f"{path}:{lineno}", hint="give the genome FASTA with --fasta")
                length += len(line.strip())
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            raise InputFormatError(f"FASTA is truncated or corrupt ({exc})", where=path) from exc
    if name is not None:
        out.append((name, length))
    if not out or sum(n for _, n in out) == 0:
        raise InputFormatError("FASTA has no sequence", where=path, hint="give the genome FASTA with --fasta")
    return out


def check_gtf_chromosomes(gtf_chroms: list[str], contigs: list[str], *, gtf: str, fasta: str) -> None:
    """Raise when no GTF chromosome is a FASTA sequence; warn when only some are."""
    names = set(contigs)
    missing = [c for c in gtf_chroms if c not in names]
    if len(missing) == len(gtf_chroms):
        raise InputFormatError(
            f"no GTF chromosome matches a FASTA sequence name (GTF: {', '.join(gtf_chroms[:3])}; "
            f"FASTA: {', '.join(contigs[:3])})", where=gtf,
            hint="use a GTF and FASTA of the same assembly and naming (e.g. 'chr1' vs '1')",
        )
    if missing:
        log.warning("%s: %d GTF chromosome(s) not in %s (e.g. %s); their genes get no reads",
                    gtf, len(missing), fasta, ", ".join(missing[:3]))


def write_junction_bed(annotation, path: str | os.PathLike) -> int:
    """Write annotated transcripts with two or more exons as BED12 (minimap2 ``--junc-bed`` format).

    Returns the number of transcripts written.
    """
    f = annotation.features
    f = f[f["transcript_id"] != ""]
    lines = []
    for (chrom, tx), grp in f.groupby(["chrom", "transcript_id"], sort=False, observed=True):
        if len(grp) < 2:
            continue
        starts = (grp["start"].to_numpy() - 1).tolist()
        ends = grp["end"].to_numpy().tolist()
        blocks = sorted(zip(starts, ends, strict=True))
        st, en = blocks[0][0], max(e for _, e in blocks)
        strand = grp["strand"].iloc[0]
        sizes = ",".join(str(e - s) for s, e in blocks)
        offs = ",".join(str(s - st) for s, _ in blocks)
        lines.append(f"{chrom}\t{st}\t{en}\t{tx}\t1000\t{strand}\t{st}\t{en}\t0\t{len(blocks)}\t{sizes},\t{offs},\n")
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(lines)
    return len(lines)


def aligner_version(aligner: str) -> str:
    """Version string of the aligner (part of the cache key)."""
    if aligner == "mappy":
        import mappy

        return f"mappy-{mappy.__version__}"
    if aligner == "star":
        star = shutil.which("STAR")
        if star is None:
            raise ToolMissingError("STAR is not installed", where="--aligner star",
                                   hint="install rna-star (apt) / star (conda) or use --aligner mappy")
        out = subprocess.run([star, "--version"], capture_output=True, text=True, check=False)
        return f"STAR-{out.stdout.strip() or out.stderr.strip()}"
    raise ConfigError(f"unknown aligner {aligner!r}", where="--aligner", hint=f"choose one of {', '.join(ALIGNERS)}")


def _hash_file(h, path: str | os.PathLike) -> None:
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


def index_key(fasta: str | os.PathLike, gtf: str | os.PathLike | None, aligner: str, params: dict) -> str:
    """Content hash of FASTA (+GTF) + aligner version + parameters (16 hex digits)."""
    h = hashlib.sha256()
    h.update(json.dumps({"format": INDEX_FORMAT, "aligner": aligner_version(aligner), "params": params},
                        sort_keys=True).encode())
    h.update(b"\0fasta\0")
    _hash_file(h, fasta)
    if gtf is not None:
        h.update(b"\0gtf\0")
        _hash_file(h, gtf)
    return h.hexdigest()[:16]


def load_manifest(index_dir: str | os.PathLike) -> dict | None:
    """The manifest of a complete index folder, or None."""
    p = Path(index_dir) / "manifest.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def star_sa_index_nbases(genome_length: int) -> int:
    """STAR's recommended ``--genomeSAindexNbases``: min(14, log2(genome)/2 - 1), at least 4."""
    return max(4, min(14, int(math.log2(max(genome_length, 2)) / 2 - 1)))


def _build_mappy(fasta: str, junction_transcripts: int | None, tmp: Path, *, threads: int) -> dict:
    """The mappy index of ``fasta`` in ``tmp``; ``tmp/junctions.bed`` is already written when
    ``junction_transcripts`` is not None (the annotation is freed before minimap2 builds its tables)."""
    import mappy

    mmi = tmp / "genome.mmi"
    with default_mmap_threshold():  # else the heap keeps ~50% more at gigabase scale (cfrna._malloc)
        al = mappy.Aligner(str(fasta), preset=MAPPY_PRESET, n_threads=max(1, threads), fn_idx_out=str(mmi))
    if not al or not mmi.is_file():
        raise InputFormatError("mappy could not index the FASTA", where=str(fasta), hint="check the FASTA file")
    info = {"files": {"mmi": "genome.mmi"}}
    if junction_transcripts is not None:
        info["files"]["junctions"] = "junctions.bed"
        info["junction_transcripts"] = junction_transcripts
    return info


def _plain_copy(src: str, dst: Path) -> str:
    """STAR needs uncompressed inputs: decompress ``src`` into ``dst`` when gzipped."""
    with open(src, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if not gz:
        return str(Path(src).resolve())
    with gzip.open(src, "rb") as fi, open(dst, "wb") as fo:
        shutil.copyfileobj(fi, fo, 1 << 20)
    return str(dst)


def _build_star(fasta: str, gtf: str | None, has_transcripts: bool, tmp: Path, *, threads: int,
                genome_length: int, n_contigs: int, sjdb_overhang: int) -> dict:
    star = shutil.which("STAR")
    if star is None:
        raise ToolMissingError("STAR is not installed", where="--aligner star",
                               hint="install rna-star (apt) / star (conda) or use --aligner mappy")
    gdir = tmp / "star"
    gdir.mkdir()
    work = tmp / "_work"
    work.mkdir()
    fa = _plain_copy(fasta, work / "genome.fa")
    sa = star_sa_index_nbases(genome_length)
    chr_bits = max(4, min(18, int(math.log2(max(genome_length // max(n_contigs, 1), 100)))))
    cmd = [star, "--runMode", "genomeGenerate", "--runThreadN", str(max(1, threads)), "--genomeDir", str(gdir),
           "--genomeFastaFiles", fa, "--genomeSAindexNbases", str(sa), "--genomeChrBinNbits", str(chr_bits),
           "--outFileNamePrefix", str(work) + "/", "--outTmpDir", str(work / "tmp")]
    use_gtf = gtf is not None and has_transcripts
    if gtf is not None and not use_gtf:
        log.warning("%s has no transcript_id attributes: STAR index built without annotated junctions", gtf)
    if use_gtf:
        cmd += ["--sjdbGTFfile", _plain_copy(gtf, work / "genes.gtf"), "--sjdbOverhang", str(sjdb_overhang)]
    log.info("building STAR index: %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        logp = work / "Log.out"
        if logp.is_file():
            tail = [ln for ln in logp.read_text(errors="replace").splitlines() if "ERROR" in ln][-2:] or tail
        raise CfrnaError(f"STAR genomeGenerate failed (exit {proc.returncode}): {' | '.join(tail)}",
                         where=str(fasta), hint="check the FASTA/GTF; rerun with --debug")
    shutil.rmtree(work, ignore_errors=True)
    return {"files": {"star": "star"}, "genomeSAindexNbases": sa, "genomeChrBinNbits": chr_bits,
            "sjdbOverhang": sjdb_overhang if use_gtf else None}


def build_index(
    fasta: str | os.PathLike,
    gtf: str | os.PathLike | None,
    cache_dir: str | os.PathLike,
    aligner: str = "mappy",
    threads: int = 1,
    *,
    sjdb_overhang: int = 100,
) -> Path:
    """Build (or reuse) the index of ``fasta`` (+ ``gtf`` junctions) for ``aligner``.

    Parameters
    ----------
    fasta
        Genome FASTA (plain or gzip).
    gtf
        Annotation whose chromosomes must match FASTA names; its junctions go into the index
        (None: no annotation).
    cache_dir
        Folder holding ``<aligner>-<hash>/`` index folders.
    aligner
        ``"mappy"`` (default) or ``"star"``.
    threads
        Threads for building (default: 1).
    sjdb_overhang
        STAR ``--sjdbOverhang`` = read length - 1 (default: 100).

    Returns
    -------
    Path
        The index folder (reused when a complete one with the same key exists).
    """
    if aligner not in ALIGNERS:
        raise ConfigError(f"unknown aligner {aligner!r}", where="--aligner", hint=f"choose one of {', '.join(ALIGNERS)}")
    fasta = str(fasta)
    gtf = str(gtf) if gtf is not None else None
    params: dict = {"preset": MAPPY_PRESET} if aligner == "mappy" else {"sjdbOverhang": sjdb_overhang}
    key = index_key(fasta, gtf, aligner, params)
    cache_dir = Path(cache_dir)
    final = cache_dir / f"{aligner}-{key}"
    if load_manifest(final) is not None:
        log.info("reusing %s index %s", aligner, final)
        return final
    contigs = read_fasta_lengths(fasta)
    annotation = None
    if gtf is not None:
        from cfrna.reference.gtf import read_gtf

        annotation = read_gtf(gtf)
        check_gtf_chromosomes(annotation.chromosomes, [c for c, _ in contigs], gtf=gtf, fasta=fasta)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{aligner}-{key}.", suffix=".tmp", dir=cache_dir))
    try:
        # what the index needs of the annotation is taken first and the parsed tables (~0.8 GB for GENCODE)
        # are freed before the aligner builds its own tables: the peak is the larger of the two, not the sum
        junction_transcripts, has_transcripts = None, False
        if annotation is not None:
            if aligner == "mappy":
                junction_transcripts = write_junction_bed(annotation, tmp / "junctions.bed")
            else:
                has_transcripts = bool((annotation.features["transcript_id"] != "").any())
            annotation = None
            gc.collect()
        genome_length = sum(n for _, n in contigs)
        log.info("building %s index of %s (%d sequences, %d bp)", aligner, fasta, len(contigs), genome_length)
        if aligner == "mappy":
            info = _build_mappy(fasta, junction_transcripts, tmp, threads=threads)
        else:
            info = _build_star(fasta, gtf, has_transcripts, tmp, threads=threads, genome_length=genome_length,
                               n_contigs=len(contigs), sjdb_overhang=sjdb_overhang)
        with open(tmp / "contigs.tsv", "w", encoding="utf-8") as fh:
            fh.writelines(f"{c}\t{n}\n" for c, n in contigs)
        manifest = {"aligner": aligner, "version": aligner_version(aligner), "key": key, "params": params,
                    "fasta": str(Path(fasta).resolve()), "gtf": str(Path(gtf).resolve()) if gtf else None,
                    "genome_length": genome_length, "n_contigs": len(contigs), "format": INDEX_FORMAT, **info}
        write_json(tmp / "manifest.json", manifest)
        tmp.chmod(0o755)
        try:
            tmp.rename(final)
        except OSError:
            if load_manifest(final) is None:  # not a concurrent build that won the race
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("%s index ready: %s", aligner, final)
    return final


def resolve_index(index: str | os.PathLike | None, fasta, gtf, *, aligner: str, threads: int = 1,
                  sjdb_overhang: int = 100) -> Path:
    """An index folder for ``aligner``: ``index`` itself when it is one, else built/reused in it as cache.

    ``index`` None uses ``$CFRNA_INDEX_CACHE`` or ``~/.cache/cfrna/index``.
    """
    if index is not None:
        man = load_manifest(index)
        if man is not None:
            if man.get("aligner") != aligner:
                raise ConfigError(f"index {index} is a {man.get('aligner')} index, not {aligner}", where="--index",
                                  hint="pass the matching --aligner or another index")
            return Path(index)
        cache = Path(index)
    else:
        cache = Path(os.environ.get("CFRNA_INDEX_CACHE", Path.home() / ".cache" / "cfrna" / "index"))
    return build_index(fasta, gtf, cache, aligner=aligner, threads=threads, sjdb_overhang=sjdb_overhang)


def read_contigs(index_dir: str | os.PathLike) -> list[tuple[str, int]]:
    """``contigs.tsv`` of an index folder."""
    out = []
    with open(Path(index_dir) / "contigs.tsv", encoding="utf-8") as fh:
        for line in fh:
            name, n = line.rstrip("\n").split("\t")
            out.append((name, int(n)))
    return out
