"""The feature layout: what counting needs from a GTF, as plain arrays, cached by content.

:func:`load_layout` parses the GTF once (:func:`cfrna.reference.gtf.read_gtf`) and keeps the
result in ``<cache>/<hash>.npz``, keyed by the GTF's bytes and the feature type / attribute.
Counting 220 samples against one annotation then parses it once, and a count run that finds its
layout in the cache starts without pandas. The cache is optional: when the folder cannot be
written the layout is simply not kept. This module does not import pandas.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MITO_NAMES = frozenset({"chrM", "MT", "M", "chrMT", "Mito", "mitochondrion_genome"})

#: bump when the layout's content or its derivation from the GTF changes
LAYOUT_VERSION = 1


@dataclass
class FeatureLayout:
    """Genes and their features in GTF order (``gene`` = row of ``gene_ids``).

    ``f_chrom`` indexes ``chroms``; ``f_start``/``f_end`` are 1-based inclusive; ``f_strand`` is
    0 ``.``, 1 ``+``, 2 ``-``; ``gene_strand`` is +1/-1/0 from each gene's first feature.
    """

    path: str
    gene_ids: list[str]
    chroms: list[str]
    f_chrom: np.ndarray
    f_start: np.ndarray
    f_end: np.ndarray
    f_gene: np.ndarray
    f_strand: np.ndarray
    gene_strand: np.ndarray

    @property
    def n_genes(self) -> int:
        return len(self.gene_ids)


def layout_from_annotation(annotation) -> FeatureLayout:
    """The layout of a parsed :class:`~cfrna.reference.gtf.Annotation`."""
    feats = annotation.features
    strand = feats["strand"].to_numpy()
    f_strand = np.where(strand == "+", 1, np.where(strand == "-", 2, 0)).astype(np.int8)
    gs = annotation.genes["strand"].to_numpy()
    gene_strand = np.where(gs == "+", 1, np.where(gs == "-", -1, 0)).astype(np.int8)
    return FeatureLayout(
        path=str(annotation.path), gene_ids=annotation.genes["gene_id"].tolist(),
        chroms=[str(c) for c in feats["chrom"].cat.categories],
        f_chrom=feats["chrom"].cat.codes.to_numpy().astype(np.int32),
        f_start=feats["start"].to_numpy(np.int64), f_end=feats["end"].to_numpy(np.int64),
        f_gene=feats["gene_idx"].to_numpy(np.int64), f_strand=f_strand, gene_strand=gene_strand,
    )


def default_cache_dir() -> Path | None:
    """``$CFRNA_ANNOTATION_CACHE`` (``off`` disables it), else ``$XDG_CACHE_HOME/cfrna/annotation``."""
    env = os.environ.get("CFRNA_ANNOTATION_CACHE")
    if env:
        return None if env.lower() in ("off", "0", "none", "false") else Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))) / "cfrna" / "annotation"


def _key(gtf: str, feature_type: str, attribute: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(gtf, "rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    h.update(f"\0{feature_type}\0{attribute}\0{LAYOUT_VERSION}".encode())
    return h.hexdigest()


def _stat_memo(gtf: str, cache: Path, feature_type: str, attribute: str) -> tuple[Path, int] | None:
    """Where the content key of this very file (real path, size, mtime_ns, inode) is remembered; its mtime."""
    try:
        st = Path(gtf).stat()
    except OSError:
        return None
    ident = f"{Path(gtf).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{st.st_dev}"
    ident += f"\0{feature_type}\0{attribute}\0{LAYOUT_VERSION}"
    return cache / "by-stat" / f"{hashlib.blake2b(ident.encode(), digest_size=16).hexdigest()}.key", st.st_mtime_ns


def _content_key(gtf: str, cache: Path, feature_type: str, attribute: str) -> str:
    """The content key of ``gtf``, without reading the file again when this same file was hashed before.

    Hashing a 1.6 GB GENCODE GTF takes 2-3 s per sample; an unchanged file (same real path, size,
    mtime in ns and inode) reuses the key it got the first time. As git does for its index, the
    remembered key is only trusted when it was written more than 2 s after the file's last change,
    so a same-size rewrite within a coarse mtime tick is hashed again.
    """
    stat = _stat_memo(gtf, cache, feature_type, attribute)
    memo = stat[0] if stat is not None else None
    if stat is not None:
        try:
            key = memo.read_text().strip()
            settled = memo.stat().st_mtime_ns - stat[1] > 2_000_000_000
            if settled and len(key) == 32 and (cache / f"{key}.npz").is_file():
                return key
        except OSError:
            pass
    key = _key(gtf, feature_type, attribute)
    if memo is not None:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=memo.parent)
            with os.fdopen(fd, "w") as fh:
                fh.write(key + "\n")
            os.replace(tmp, memo)
        except OSError as exc:
            log.debug("annotation cache %s not writable (%s)", cache, exc)
    return key


def _save(layout: FeatureLayout, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp.npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, gene_ids=np.asarray(layout.gene_ids, dtype=str), chroms=np.asarray(layout.chroms, dtype=str),
                     f_chrom=layout.f_chrom, f_start=layout.f_start, f_end=layout.f_end, f_gene=layout.f_gene,
                     f_strand=layout.f_strand, gene_strand=layout.gene_strand)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path, gtf: str) -> FeatureLayout:
    with np.load(path, allow_pickle=False) as z:
        return FeatureLayout(path=gtf, gene_ids=z["gene_ids"].tolist(), chroms=z["chroms"].tolist(),
                             f_chrom=z["f_chrom"], f_start=z["f_start"], f_end=z["f_end"], f_gene=z["f_gene"],
                             f_strand=z["f_strand"], gene_strand=z["gene_strand"])


def load_layout(gtf: str | os.PathLike, *, feature_type: str = "exon", attribute: str = "gene_id",
                cache_dir: str | os.PathLike | None = "default") -> FeatureLayout:
    """The feature layout of ``gtf``, from the cache when this GTF content was seen before.

    ``cache_dir=None`` parses without caching. Parsing errors are those of
    :func:`cfrna.reference.gtf.read_gtf` (a GTF is only cached after it parsed cleanly).
    """
    gtf = str(gtf)
    cache = default_cache_dir() if cache_dir == "default" else (Path(cache_dir) if cache_dir else None)
    entry = None
    if cache is not None and Path(gtf).is_file():
        entry = cache / f"{_content_key(gtf, cache, feature_type, attribute)}.npz"
        if entry.is_file():
            try:
                layout = _load(entry, gtf)
                log.info("%s: %d genes, %d features from the annotation cache (%s)", gtf, layout.n_genes,
                         len(layout.f_start), entry)
                return layout
            except (OSError, ValueError, KeyError) as exc:  # damaged entry: parse again and replace it
                log.debug("annotation cache entry %s unreadable (%s); re-parsing", entry, exc)
    from cfrna.reference.gtf import read_gtf

    layout = layout_from_annotation(read_gtf(gtf, feature_type=feature_type, attribute=attribute))
    if entry is not None:
        try:
            _save(layout, entry)
            log.info("%s: %d genes, %d features parsed and cached (%s)", gtf, layout.n_genes, len(layout.f_start),
                     entry)
        except OSError as exc:
            log.debug("annotation cache %s not writable (%s); not caching", cache, exc)
    return layout


def merge_intervals(tid: np.ndarray, gidx: np.ndarray, start: np.ndarray, end: np.ndarray):
    """Union of each gene's features per sequence, touching intervals merged.

    Returns arrays ``(tid, gene, start, end)`` of the merged blocks, sorted by sequence, gene, start.
    """
    if len(tid) == 0:
        z = np.zeros(0, np.int64)
        return z, z, z, z
    order = np.lexsort((start, gidx, tid))
    t, g, s, e = tid[order], gidx[order], start[order], end[order]
    # a new block starts where the sequence or gene changes or the interval does not touch the
    # running end of the block (running maximum of ends within each sequence/gene group)
    new_group = np.r_[True, (t[1:] != t[:-1]) | (g[1:] != g[:-1])]
    group_id = np.cumsum(new_group) - 1
    # running max of `end` within a group: offset each group so that maxima never cross groups
    big = np.int64(e.max() - s.min() + 2) if len(e) else np.int64(1)
    run_end = np.maximum.accumulate(e + group_id * big) - group_id * big
    starts_block = new_group.copy()
    starts_block[1:] |= s[1:] > run_end[:-1] + 1
    first = np.flatnonzero(starts_block)
    out_e = np.maximum.reduceat(e, first)
    return t[first].astype(np.int64), g[first].astype(np.int64), s[first].astype(np.int64), out_e.astype(np.int64)
