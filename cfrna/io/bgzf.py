"""BGZF framing and decompression for the BAM reader.

:func:`iter_raw_chunks` reads the file and splits it into chunks of whole BGZF blocks (a numba
kernel parses the framing); :func:`inflate_chunk` decompresses one chunk into a buffer, checking
each block's CRC32. Decompression is libdeflate (the ``deflate`` package): its C functions are
called straight from a numba kernel, so a whole chunk inflates in one call without the GIL and
chunks inflate in parallel. When those symbols cannot be found (another build of ``deflate``),
the same work runs block by block through the package's Python API (slower, same result).
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass

import deflate
import numpy as np

from cfrna.errors import InputFormatError
from cfrna.io._bgzf_kernels import NATIVE, _inflate_native, frame_blocks

log = logging.getLogger(__name__)

#: bytes kept free at the start of each decompressed chunk, so that the unparsed tail of the
#: previous chunk can be put in front of it without copying the chunk
RESERVE = 1 << 16

FRAME_ERRORS = {
    1: ("not a BGZF block (bad magic)", "the file is not a BAM or is corrupt; re-create it with samtools"),
    2: ("BGZF block has no BC size field", "the file is gzip but not BGZF; re-create it with samtools view -b"),
    3: ("BGZF block has an invalid size", "the BAM is corrupt; re-create it"),
    4: ("BGZF block claims more than 65536 bytes", "the BAM is corrupt; re-create it"),
}


@dataclass
class RawChunk:
    """Consecutive complete BGZF blocks, still compressed: offsets into ``raw`` per block.

    ``offset`` is the file offset of ``raw[0]``; ``size`` the decompressed size of the chunk.
    ``mapping`` is the file's memory map when ``raw`` is a view of it (see :meth:`release`).
    """

    index: int
    raw: np.ndarray
    offset: int
    bstart: np.ndarray
    ps: np.ndarray
    pe: np.ndarray
    crc: np.ndarray
    isz: np.ndarray
    size: int
    mapping: mmap.mmap | None = None

    def release(self) -> None:
        """Drop the chunk's pages of the memory map from this process (after inflating it).

        The mapping is read-only and file-backed, so this is always safe: a page still needed
        (shared with the neighbouring chunk) is read back from the page cache. Without it, the
        resident size would grow with the file.
        """
        if self.mapping is None or not len(self.ps):
            return
        lo = (self.offset + int(self.bstart[0])) // mmap.PAGESIZE * mmap.PAGESIZE
        hi = self.offset + int(self.pe[-1]) + 8
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed map, no madvise here
            self.mapping.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def _frame(raw: np.ndarray, n: int, file_offset: int, path: str):
    cap = n // 28 + 1
    bstart, ps, pe, isz = (np.empty(cap, np.int64) for _ in range(4))
    crc = np.empty(cap, np.uint32)
    k, nxt, err, eoff = frame_blocks(raw, n, bstart, ps, pe, crc, isz)
    if err:
        msg, hint = FRAME_ERRORS[int(err)]
        raise InputFormatError(f"{msg} at byte {file_offset + int(eoff)}", where=path, hint=hint)
    return k, int(nxt), bstart, ps, pe, crc, isz


def _windows(path: str, window: int):
    """``(array, file_offset, n, at_eof)`` views of the file; the caller says where the next one starts.

    A memory map when the file can be mapped (no copy, no allocation), else ``readinto`` buffers.
    The generator is sent the file offset at which the next window must start.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        mapping = None
        if size > 0:
            try:
                mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                mapping = None
        if mapping is not None:
            if hasattr(mapping, "madvise"):
                mapping.madvise(mmap.MADV_SEQUENTIAL)
            whole = np.frombuffer(mapping, np.uint8)
            off = end = 0
            while True:
                end = min(size, max(off, end) + window)  # always further than the last window
                off = yield whole[off:end], off, end - off, end == size, mapping
            return
        carry = np.zeros(0, np.uint8)
        file_offset = 0
        while True:
            raw = np.empty(len(carry) + window, np.uint8)  # new buffer: chunks in flight keep theirs
            raw[:len(carry)] = carry
            got = fh.readinto(memoryview(raw)[len(carry):])
            n = len(carry) + got
            nxt = yield raw, file_offset, n, not got, None
            carry = raw[nxt - file_offset:n].copy()
            file_offset = nxt


def iter_raw_chunks(path: str | os.PathLike, *, chunk_bytes: int = 1 << 22, read_size: int | None = None,
                    ) -> Iterator[RawChunk]:
    """Split the file into chunks of whole BGZF blocks holding about ``chunk_bytes`` of data each.

    Only the framing is read here (a numba kernel over a memory map of the file, so it is cheap);
    decompression is :func:`inflate_chunk`, so chunks can be inflated in parallel. Raises
    :class:`InputFormatError` for bad framing and a file truncated inside a block; a missing BGZF
    end-of-file marker is logged as a warning.
    """
    path = str(path)
    chunk_bytes = max(int(chunk_bytes), 1 << 16)
    read_size = read_size or max(1 << 16, chunk_bytes // 2)
    index = 0
    saw_eof_marker = False
    win = _windows(path, read_size)
    raw, file_offset, n, at_eof, mapping = next(win)
    while True:
        k, nxt, bstart, ps, pe, crc, isz = _frame(raw, n, file_offset, path)
        if at_eof and nxt < n:
            raise InputFormatError(f"file ends inside a BGZF block (byte {file_offset + nxt})", where=path,
                                   hint="the BAM is truncated; re-create or re-download it")
        if k:
            saw_eof_marker = bool(isz[k - 1] == 0)
        # whole chunks of about chunk_bytes; blocks that do not fill one yet wait for the next
        # window (so that parallel tasks get equal work), except at the end of the file
        ends = np.cumsum(isz[:k])
        lo = 0
        while lo < k:
            base = ends[lo - 1] if lo else 0
            hi = max(lo + 1, int(np.searchsorted(ends, base + chunk_bytes, side="right")))
            if hi == k and not at_eof and ends[k - 1] - base < chunk_bytes:
                break
            sl = slice(lo, hi)
            yield RawChunk(index, raw, file_offset, bstart[sl], ps[sl], pe[sl], crc[sl], isz[sl],
                           int(ends[hi - 1] - base), mapping)
            index += 1
            lo = hi
        if at_eof:
            break
        raw, file_offset, n, at_eof, mapping = win.send(file_offset + (int(bstart[lo]) if lo < k else nxt))
    win.close()
    if not saw_eof_marker:
        log.warning("%s: no BGZF end-of-file marker; the BAM may be truncated", path)


def inflate_chunk(chunk: RawChunk, out: bytearray | np.ndarray, path: str) -> int:
    """Decompress ``chunk`` into ``out[RESERVE:]`` (CRC32 checked); returns the number of bytes."""
    dst = np.frombuffer(out, np.uint8) if not isinstance(out, np.ndarray) else out
    if RESERVE + chunk.size > dst.size:  # pragma: no cover - buffers are sized from chunk_bytes
        raise ValueError("inflate buffer too small")
    if NATIVE:
        n, bad, err = _inflate_native(chunk.raw, chunk.ps, chunk.pe, chunk.crc, chunk.isz, dst, RESERVE)
        if err == 3:
            raise MemoryError("libdeflate could not allocate a decompressor")
        if err:
            _block_error(chunk, int(bad), int(err), path)
        return int(n)
    o = RESERVE
    mv = memoryview(chunk.raw)
    for b in range(len(chunk.ps)):
        size = int(chunk.isz[b])
        if size == 0:
            continue
        try:
            data = deflate.deflate_decompress(mv[int(chunk.ps[b]):int(chunk.pe[b])], size)
        except (deflate.DeflateError, ValueError):
            _block_error(chunk, b, 1, path)
        if len(data) != size or deflate.crc32(data) != int(chunk.crc[b]):
            _block_error(chunk, b, 2, path)
        dst[o:o + size] = np.frombuffer(data, np.uint8)
        o += size
    return o - RESERVE


def _block_error(chunk: RawChunk, b: int, err: int, path: str):
    where = chunk.offset + int(chunk.bstart[b])
    what = "does not decompress" if err == 1 else "fails its CRC check"
    raise InputFormatError(f"BGZF block at byte {where} {what}", where=path, hint="the BAM is corrupt; re-create it")
