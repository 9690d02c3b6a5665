"""FASTQ reading with validation (dnaio); every format problem becomes a one-line InputFormatError.

The helpers here are shared by ``cfrna trim`` (validation pass and read-level QC) and the mappy
aligner: :func:`iter_batches` gives Python records, :func:`iter_fastq_chunks` gives raw chunks of
FASTQ text with a numba-parsed record table (the native aligner's input; no Python object a read).
Problems are reported with the file and the record number: truncated gzip, sequence/quality length mismatch, not FASTQ (or FASTA without
qualities), an empty file, and for pairs R1/R2 with different read counts or read names.
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import dnaio
import numpy as np

from cfrna.errors import InputFormatError

log = logging.getLogger(__name__)

#: a FASTQ record as plain strings: (name, sequence, qualities)
Record = tuple[str, str, str]

_FIX = "check the file is a complete, uncompressed or gzip FASTQ"


def _open_error(path: str, exc: OSError) -> InputFormatError:
    return InputFormatError(f"cannot open FASTQ: {exc.strerror or exc}", where=path, hint="check the path")


_MATE_HINT = "the mate files must list the same reads in the same order"


def _count_mismatch(short, other, n: int) -> InputFormatError:
    """R1/R2 of different lengths: ``short`` ends after record ``n``."""
    return InputFormatError(f"R1 and R2 have different read counts: {short} ends at record {n} but {other} continues",
                            where=str(short), hint=_MATE_HINT)


def _name_mismatch(path1, path2, n: int, id1: str, id2: str) -> InputFormatError:
    return InputFormatError(f"mate names differ at record {n}: {id1!r} in {path1} vs {id2!r}",
                            where=str(path2), hint=_MATE_HINT)


class EmptyFastqError(InputFormatError):
    """A FASTQ file without any read."""


def read_id(name: str) -> str:
    """The read id used to match mates: first word of the header, without a ``/1`` or ``/2`` suffix."""
    rid = name.split(None, 1)[0] if name else name
    if len(rid) > 2 and rid[-2] == "/" and rid[-1] in "12":
        rid = rid[:-2]
    return rid


def _wrap_error(path: str, exc: BaseException, n_done: int) -> InputFormatError:
    """Translate a dnaio/gzip/zlib error into a one-line :class:`InputFormatError`."""
    if isinstance(exc, dnaio.FileFormatError):
        line = getattr(exc, "line", None)
        rec = (line // 4 + 1) if isinstance(line, int) else n_done + 1
        msg = str(exc).split(": ", 1)[-1].split("\n", 1)[0]
        return InputFormatError(f"not valid FASTQ at record {rec}: {msg}", where=path, hint=_FIX)
    if isinstance(exc, dnaio.UnknownFileFormat):
        return InputFormatError("not a FASTQ file (unknown format)", where=path, hint=_FIX)
    if isinstance(exc, (EOFError, gzip.BadGzipFile, zlib.error)):
        # decompression runs ahead of parsing in blocks: no record number can be blamed (a checksum
        # error is found only after the last record)
        what = "gzip checksum at the end of the file is wrong" if "CRC" in str(exc) else "gzip data is truncated or corrupt"
        return InputFormatError(
            f"{what} ({exc})", where=path,
            hint="re-download or re-copy the file (gzip -t tests it)",
        )
    return InputFormatError(f"cannot read FASTQ ({exc})", where=path, hint=_FIX)


def iter_fastq(path: str | os.PathLike) -> Iterator[Record]:
    """Yield ``(name, sequence, qualities)`` for every record of a FASTQ (plain or gzip).

    Raises
    ------
    InputFormatError
        The file is empty, not FASTQ (FASTA has no qualities), truncated, or a record is malformed;
        the message names the file and the record number.
    """
    path = str(path)
    n = 0
    try:
        with dnaio.open(path, mode="r") as reader:
            if not isinstance(reader, dnaio.FastqReader):
                raise InputFormatError("not a FASTQ file (looks like FASTA: no qualities)", where=path,
                                       hint="cfrna needs FASTQ reads with base qualities")
            for rec in reader:
                n += 1
                yield rec.name, rec.sequence, rec.qualities
    except InputFormatError:
        raise
    except (dnaio.FileFormatError, dnaio.UnknownFileFormat, EOFError, OSError, zlib.error, ValueError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise _open_error(path, exc) from exc
        raise _wrap_error(path, exc, n) from exc
    if n == 0:
        raise EmptyFastqError("FASTQ file is empty (no reads)", where=path,
                               hint="check the sample's fastq path or drop the sample")


def iter_pairs(path1: str | os.PathLike, path2: str | os.PathLike | None) -> Iterator[tuple[Record, Record | None]]:
    """Yield ``(record1, record2)`` (``record2`` is None for single-end), checking that mates match.

    Raises :class:`InputFormatError` when R1 and R2 have different read counts or a pair's read ids
    differ (``/1``, ``/2`` suffixes and comments ignored), naming both files and the record number.
    """
    if path2 is None:
        for rec in iter_fastq(path1):
            yield rec, None
        return
    it1, it2 = iter_fastq(path1), iter_fastq(path2)
    n = 0
    while True:
        r1 = next(it1, None)
        r2 = next(it2, None)
        if r1 is None and r2 is None:
            return
        n += 1
        if r1 is None or r2 is None:
            short, other = (path1, path2) if r1 is None else (path2, path1)
            raise _count_mismatch(short, other, n - 1)
        if read_id(r1[0]) != read_id(r2[0]):
            raise _name_mismatch(path1, path2, n, read_id(r1[0]), read_id(r2[0]))
        yield r1, r2


def iter_batches(
    path1: str | os.PathLike, path2: str | os.PathLike | None, *, batch_size: int = 4096
) -> Iterator[list[tuple[Record, Record | None]]]:
    """Validated records (or pairs) in lists of ``batch_size``."""
    batch: list[tuple[Record, Record | None]] = []
    for pair in iter_pairs(path1, path2):
        batch.append(pair)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class FastqChunk:
    """Consecutive FASTQ records as raw bytes and a record table (see :mod:`cfrna.io._fastq_kernels`).

    ``rec2``/``buf2`` hold the mates (same number of rows) or are None for single-end.
    """

    buf1: np.ndarray
    rec1: np.ndarray
    buf2: np.ndarray | None
    rec2: np.ndarray | None
    n: int


class _ChunkSide:
    """One FASTQ file read in growing windows; unparsed bytes carry over to the next window."""

    def __init__(self, path: str, chunk_bytes: int):
        from xopen import xopen

        self.path = path
        self.size = max(int(chunk_bytes), 1 << 12)
        self.carry = np.zeros(0, np.uint8)
        self.eof = False
        try:
            self.fh = xopen(path, "rb", threads=0)
        except OSError as exc:
            raise _open_error(path, exc) from exc

    def close(self) -> None:
        self.fh.close()

    def fill(self, done: int) -> tuple[np.ndarray, int]:
        c = len(self.carry)
        buf = np.empty(c + self.size, np.uint8)  # a new buffer: chunks in flight keep theirs
        buf[:c] = self.carry
        view = memoryview(buf)[c:]
        got = 0
        try:
            while got < self.size and not self.eof:
                k = self.fh.readinto(view[got:])
                if not k:
                    self.eof = True
                got += k or 0
        except (EOFError, OSError, zlib.error, ValueError) as exc:
            raise _wrap_error(self.path, exc, done) from exc
        return buf, c + got

    def parse(self, buf: np.ndarray, n: int, done: int) -> tuple[np.ndarray, int]:
        from cfrna.io._fastq_kernels import FASTQ_ERRORS, N_RCOL, parse_fastq

        rec = np.empty((max(256, n // 96), N_RCOL), np.int64)  # more records than fit wait for the next chunk
        k, consumed, err, erec = parse_fastq(buf, n, self.eof, rec)
        if err:
            raise InputFormatError(f"not valid FASTQ at record {done + int(erec) + 1}: {FASTQ_ERRORS[int(err)]}",
                                   where=self.path, hint=_FIX)
        if self.eof and k < rec.shape[0] and consumed < n and bytes(buf[consumed:n]).strip():
            raise InputFormatError(f"not valid FASTQ at record {done + int(k) + 1}: {FASTQ_ERRORS[4]}",
                                   where=self.path, hint="the file is truncated; re-download or re-copy it")
        if k == 0 and not self.eof:
            self.size *= 2  # a record longer than the window
        return rec[:k], int(k)

    def keep(self, buf: np.ndarray, rec: np.ndarray, k: int, n: int) -> None:
        from cfrna.io._fastq_kernels import R_END

        start = int(rec[k - 1, R_END]) if k else 0
        self.carry = buf[start:n].copy()

    @property
    def exhausted(self) -> bool:
        return self.eof and not bytes(self.carry).strip()


def iter_fastq_chunks(path1: str | os.PathLike, path2: str | os.PathLike | None = None, *,
                      chunk_bytes: int = 1 << 20) -> Iterator[FastqChunk]:
    """Validated FASTQ records (or pairs) in chunks of about ``chunk_bytes`` of text each.

    Same checks and messages as :func:`iter_pairs` (file and record named): malformed records,
    truncated or corrupt files, R1/R2 with different read counts or read ids, an empty file.
    Parsing runs in a numba kernel without the GIL; decompression (gzip) in the file object.
    """
    from cfrna.io._fastq_kernels import R_ID_END, R_NAME, first_id_mismatch

    p1 = str(path1)
    p2 = None if path2 is None else str(path2)
    sides = [_ChunkSide(p1, chunk_bytes)]
    try:
        if p2 is not None:
            sides.append(_ChunkSide(p2, chunk_bytes))
        done = 0
        while True:
            parsed = []
            for side in sides:
                buf, n = side.fill(done)
                rec, k = side.parse(buf, n, done)
                parsed.append((buf, rec, k, n))
            k = min(p[2] for p in parsed)
            if k == 0 and len(sides) == 2:
                ends = [side.eof and p[2] == 0 for side, p in zip(sides, parsed, strict=True)]
                if ends[0] != ends[1]:
                    short, other = (p1, p2) if ends[0] else (p2, p1)
                    raise _count_mismatch(short, other, done)
            for side, (buf, rec, _k, n) in zip(sides, parsed, strict=True):
                side.keep(buf, rec, k, n)
            if k == 0:
                if all(side.exhausted for side in sides):
                    break
                continue
            (b1, r1, _, _), *rest = parsed
            b2 = r2 = None
            if rest:
                b2, r2 = rest[0][0], rest[0][1][:k]
                j = int(first_id_mismatch(b1, r1, b2, r2, k))
                if j >= 0:
                    id1 = bytes(b1[r1[j, R_NAME]:r1[j, R_ID_END]]).decode("utf-8", "replace")
                    id2 = bytes(b2[r2[j, R_NAME]:r2[j, R_ID_END]]).decode("utf-8", "replace")
                    raise _name_mismatch(p1, p2, done + j + 1, id1, id2)
            yield FastqChunk(b1, r1[:k], b2, r2, k)
            done += k
    finally:
        for side in sides:
            side.close()
    if done == 0:
        raise EmptyFastqError("FASTQ file is empty (no reads)", where=p1,
                              hint="check the sample's fastq path or drop the sample")


@dataclass
class ReadStats:
    """Read-level tallies over a FASTQ (pairs: both mates' bases, one read pair per template).

    ``duplication_fraction`` uses the first ``dup_window`` templates: the fraction of them whose
    exact sequence (both mates for pairs) was already seen.
    """

    paired: bool = False
    reads: int = 0
    bases: int = 0
    qual_sum: int = 0
    gc: int = 0
    acgt: int = 0
    dup_window: int = 100_000
    _seen: set = field(default_factory=set, repr=False)
    _dups: int = 0
    _window: int = 0
    phred_offset: int = 33

    def add_batch(self, batch: list[tuple[Record, Record | None]]) -> None:
        seqs: list[str] = []
        quals: list[str] = []
        for r1, r2 in batch:
            seqs.append(r1[1])
            quals.append(r1[2])
            key = r1[1]
            if r2 is not None:
                seqs.append(r2[1])
                quals.append(r2[2])
                key = key + "|" + r2[1]
            if self._window < self.dup_window:
                self._window += 1
                if key in self._seen:
                    self._dups += 1
                else:
                    self._seen.add(key)
        self.reads += len(batch)
        s = "".join(seqs).upper().encode("ascii", "replace")
        q = "".join(quals).encode("ascii", "replace")
        self.bases += len(s)
        if s:
            counts = np.bincount(np.frombuffer(s, dtype=np.uint8), minlength=256)
            g_c = int(counts[ord("G")] + counts[ord("C")])
            self.gc += g_c
            self.acgt += g_c + int(counts[ord("A")] + counts[ord("T")])
            self.qual_sum += int(np.frombuffer(q, dtype=np.uint8).sum(dtype=np.int64)) - self.phred_offset * len(q)
        if self._window >= self.dup_window:
            self._seen.clear()

    @property
    def mean_length(self) -> float:
        per = 2 if self.paired else 1
        return self.bases / (self.reads * per) if self.reads else 0.0

    @property
    def mean_quality(self) -> float:
        return self.qual_sum / self.bases if self.bases else 0.0

    @property
    def gc_fraction(self) -> float:
        return self.gc / self.acgt if self.acgt else 0.0

    @property
    def duplication_fraction(self) -> float:
        return self._dups / self._window if self._window else 0.0


def fastq_stats(path1: str | os.PathLike, path2: str | os.PathLike | None = None, *,
                allow_empty: bool = False) -> ReadStats:
    """Validate a FASTQ (or pair) completely and return its :class:`ReadStats`.

    ``allow_empty`` accepts a file without reads (e.g. trimming removed every read).
    """
    st = ReadStats(paired=path2 is not None)
    try:
        for batch in iter_batches(path1, path2, batch_size=8192):
            st.add_batch(batch)
    except EmptyFastqError:
        if allow_empty:
            return st
        raise
    return st


def quick_check(path1: str | os.PathLike, path2: str | os.PathLike | None = None, *, n: int = 1000) -> int:
    """Validate the first ``n`` records (pairs) only: catches empty, non-FASTQ and unpaired inputs early.

    Returns the number of records checked.
    """
    k = 0
    for _ in iter_pairs(path1, path2):
        k += 1
        if k >= n:
            break
    return k
