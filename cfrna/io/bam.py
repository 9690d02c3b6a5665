"""Streaming BAM reader: raw BGZF blocks -> libdeflate -> BAM records decoded by a numba kernel.

The file is split into chunks of whole BGZF blocks (:func:`iter_raw_chunks`, framing only); each
chunk is decompressed with libdeflate (:func:`inflate_chunk`, CRC32 checked, without the GIL)
and its records decoded by a numba kernel (:func:`decode_records`, no GIL). A record may span two
chunks: the unfinished tail of chunk *k* is put in front of chunk *k+1* (decoding is fast next to
inflating, so this hand-over costs little and the rest runs in parallel).
:func:`stream_records` runs chunks across threads with an ordered stage for order-dependent work;
:func:`iter_record_batches` is the one-thread iterator. Memory is bounded by the chunk size and
the number of chunks in flight, not by the number of reads.

Every byte is untrusted: the decoder checks each length against the buffer, and a corrupt or
truncated file raises :class:`~cfrna.errors.InputFormatError` (never reads out of bounds).
"""

from __future__ import annotations

import logging
import os
import queue
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cfrna._malloc import bound_for_streaming
from cfrna._threads import Cancelled, run_ordered
from cfrna.errors import InputFormatError
from cfrna.io._bam_kernels import DECODE_ERRORS, decode_records
from cfrna.io.bgzf import RESERVE, RawChunk, inflate_chunk, iter_raw_chunks

log = logging.getLogger(__name__)


bound_for_streaming()  # fixed mmap threshold, 2 arenas: RSS stays flat while streaming (cfrna._malloc)

_BGZF_MAGIC = b"\x1f\x8b\x08\x04"

@dataclass
class BamHeader:
    """The BAM header: SAM text and the reference sequences (names, lengths) in tid order."""

    text: str
    references: list[str]
    lengths: list[int]
    sort_order: str = "unknown"
    group_order: str = ""
    extra: dict = field(default_factory=dict)
    data_offset: int = 0


class Records:
    """A batch of decoded records as parallel numpy arrays (views valid until the next batch).

    ``flag``, ``tid``, ``pos`` (0-based leftmost), ``mapq``, ``nh`` and ``hi`` (-1 when the NH / HI tag is absent),
    ``mtid``, ``mpos``, ``qhash`` (64-bit FNV-1a of the read name), ``has_n`` (CIGAR has N),
    ``blk_off``/``nblk`` index ``blk_start``/``blk_end`` (aligned blocks, 1-based inclusive; M/=/X
    extend a block, D and N end it, as featureCounts does).
    """

    def __init__(self, capacity: int, blk_capacity: int):
        self.flag = np.zeros(capacity, np.int32)
        self.tid = np.zeros(capacity, np.int32)
        self.pos = np.zeros(capacity, np.int32)
        self.mapq = np.zeros(capacity, np.int32)
        self.nh = np.zeros(capacity, np.int32)
        self.hi = np.zeros(capacity, np.int32)
        self.mtid = np.zeros(capacity, np.int32)
        self.mpos = np.zeros(capacity, np.int32)
        self.qhash = np.zeros(capacity, np.uint64)
        self.has_n = np.zeros(capacity, np.int8)
        self.blk_off = np.zeros(capacity, np.int64)
        self.nblk = np.zeros(capacity, np.int32)
        self.blk_start = np.zeros(blk_capacity, np.int32)
        self.blk_end = np.zeros(blk_capacity, np.int32)
        self.n = 0
        self.nb = 0  # aligned blocks used

    @property
    def capacity(self) -> int:
        return len(self.flag)


def _corrupt(path: str, offset: int, code: int) -> InputFormatError:
    return InputFormatError(
        f"corrupt BAM record at uncompressed offset {offset}: {DECODE_ERRORS.get(int(code), 'invalid record')}",
        where=path, hint="the BAM is corrupt; re-create it with the aligner or samtools",
    )


def _assemble(out: np.ndarray, n: int, carry: np.ndarray, skip: int) -> tuple[np.ndarray, int]:
    """The chunk's data as a uint8 array starting at a record boundary: the previous chunk's
    unfinished record (``carry``) is put in front, or ``skip`` bytes (the header) are dropped.

    Returns ``(array, skip left for the next chunk)``.
    """
    if skip:
        take = min(skip, n)
        return out[RESERVE + take:RESERVE + n], skip - take
    if len(carry) <= RESERVE:
        out[RESERVE - len(carry):RESERVE] = carry
        return out[RESERVE - len(carry):RESERVE + n], 0
    # a record longer than RESERVE is still being assembled (rare): copy
    return np.concatenate([carry, out[RESERVE:RESERVE + n]]), 0


_NO_CARRY = np.zeros(0, np.uint8)


class Slot:
    """Per-task working memory of :func:`stream_records`: the inflate buffer and a :class:`Records`."""

    def __init__(self, chunk_bytes: int):
        self.out = np.empty(RESERVE + max(int(chunk_bytes), 1 << 16), np.uint8)
        self.records = Records(1 << 14, 1 << 16)

    def grow(self) -> None:
        """Double the record arrays, keeping the records decoded so far."""
        old = self.records
        new = Records(2 * old.capacity, 2 * len(old.blk_start))
        for name in ("flag", "tid", "pos", "mapq", "nh", "hi", "mtid", "mpos", "qhash", "has_n", "blk_off", "nblk"):
            getattr(new, name)[:old.n] = getattr(old, name)[:old.n]
        new.blk_start[:old.nb] = old.blk_start[:old.nb]
        new.blk_end[:old.nb] = old.blk_end[:old.nb]
        new.n, new.nb = old.n, old.nb
        self.records = new


def _decode_chunk(arr: np.ndarray, slot: Slot, n_ref: int, hash_names: bool, path: str, base: int) -> int:
    """Decode every complete record of ``arr`` into ``slot.records`` (grown as needed); returns the
    bytes consumed (the rest is the start of a record that continues in the next chunk)."""
    rec = slot.records
    done = 0
    while True:
        got, consumed, err, eoff = decode_records(
            arr[done:], n_ref, rec.flag[rec.n:], rec.tid[rec.n:], rec.pos[rec.n:], rec.mapq[rec.n:], rec.nh[rec.n:],
            rec.hi[rec.n:], rec.mtid[rec.n:], rec.mpos[rec.n:], rec.qhash[rec.n:], rec.has_n[rec.n:],
            rec.blk_off[rec.n:], rec.nblk[rec.n:], rec.blk_start[rec.nb:], rec.blk_end[rec.nb:], hash_names)
        if err:
            raise _corrupt(path, base + done + int(eoff), err)
        if got:
            last = rec.n + int(got) - 1
            rec.blk_off[rec.n:last + 1] += rec.nb
            rec.nb = int(rec.blk_off[last] + rec.nblk[last])
            rec.n += int(got)
        done += int(consumed)
        rest = arr.shape[0] - done
        if rest < 4 or int(arr[done:done + 4].view(np.int32)[0]) + 4 > rest:
            return done  # what is left is an unfinished record (or nothing)
        slot.grow()  # out of record or block capacity: more room, then go on
        rec = slot.records


class _Handoff:
    """Hand-over of record boundaries between chunk tasks: chunk k starts with chunk k-1's unfinished record."""

    def __init__(self, skip: int):
        self.cv = threading.Condition()
        self.carry = {-1: (_NO_CARRY, skip, 0)}  # chunk -> (unfinished record, header bytes to skip, stream offset)
        self.failed = False

    def wait_carry(self, k: int):
        with self.cv:
            while k - 1 not in self.carry and not self.failed:
                self.cv.wait()
            if self.failed:
                raise Cancelled
            return self.carry.pop(k - 1)

    def put_carry(self, k: int, value) -> None:
        with self.cv:
            self.carry[k] = value
            self.cv.notify_all()

    def fail(self) -> None:
        with self.cv:
            self.failed = True
            self.cv.notify_all()


def stream_records(path: str | os.PathLike, header: BamHeader, *, parallel, ordered, threads: int = 1,
                   chunk_bytes: int = 1 << 22, hash_names: bool = True, make_slot=None) -> int:
    """Decode every record of ``path`` chunk by chunk, across ``threads`` threads; returns the record count.

    Each chunk goes through: inflate (libdeflate, no GIL) -> the unfinished record of the previous
    chunk put in front -> decode (numba, no GIL; its own unfinished tail handed to the next chunk) ->
    ``parallel(slot, records)`` (any order, concurrently) -> ``ordered(slot, records)`` (one chunk
    at a time, in file order). So per-chunk work runs in parallel and only order-dependent work
    (pairing mates, duplicates, sort order) is serial. At most ``threads + 1`` chunks are in
    memory. ``make_slot(chunk_bytes)`` makes the per-task working memory (default :class:`Slot`).
    Scheduling is :func:`cfrna._threads.run_ordered`.

    Raises the error of the earliest failing chunk: :class:`InputFormatError` for a corrupt or
    truncated file, or what ``parallel``/``ordered`` raise.
    """
    path = str(path)
    threads = max(1, int(threads))
    n_ref = len(header.references)
    hand = _Handoff(header.data_offset)
    n_slots = threads + 1 if threads > 1 else 1
    slots: queue.SimpleQueue = queue.SimpleQueue()
    for _ in range(n_slots):
        slots.put((make_slot or Slot)(chunk_bytes))
    total = [0]
    n_chunks = [0]

    def chunks() -> Iterator[RawChunk]:
        for chunk in iter_raw_chunks(path, chunk_bytes=chunk_bytes):
            n_chunks[0] += 1
            yield chunk

    def work(chunk: RawChunk):
        k = chunk.index
        slot = slots.get()  # never waits: at most n_slots chunks are between here and emit()
        try:
            n = inflate_chunk(chunk, slot.out, path)
            chunk.release()
            carry, skip, offset = hand.wait_carry(k)
            arr, skip = _assemble(slot.out, n, carry, skip)
            base = offset - len(carry)  # stream offset of arr[0]
            slot.data = arr  # the decoded bytes (record i of slot.records is the i-th record here)
            slot.records.n = slot.records.nb = 0
            try:
                end = _decode_chunk(arr, slot, n_ref, hash_names, path, base)
            except BaseException:
                hand.put_carry(k, (_NO_CARRY, 0, 0))
                raise
            hand.put_carry(k, (arr[end:].copy(), skip, base + arr.shape[0]))
            if slot.records.n:
                parallel(slot, slot.records)
        except BaseException:
            slots.put(slot)
            raise
        return slot

    def emit(slot) -> None:
        try:
            rec = slot.records
            if rec.n:
                ordered(slot, rec)
                total[0] += rec.n
        finally:
            slots.put(slot)

    run_ordered(chunks(), lambda: (work, None), emit, threads=threads, window=n_slots, on_stop=hand.fail,
                name="cfrna-bam")
    carry, skip, _ = hand.carry.get(n_chunks[0] - 1, (_NO_CARRY, header.data_offset, 0))
    if skip:
        raise InputFormatError("BAM header is truncated", where=path, hint="the BAM is truncated; re-create it")
    if len(carry):
        raise InputFormatError(f"BAM ends inside a record ({len(carry)} trailing bytes)", where=path,
                               hint="the BAM is truncated; re-create or re-download it")
    return total[0]


def _parse_header(buf: bytes, path: str) -> tuple[BamHeader, int] | None:
    """Parse the BAM header from the start of ``buf``; None when ``buf`` is too short."""
    if len(buf) < 12:
        return None
    if buf[:4] != b"BAM\x01":
        raise InputFormatError("not a BAM file (missing BAM\\1 magic)", where=path,
                               hint="give a BAM (convert SAM with samtools view -b)")
    (l_text,) = struct.unpack_from("<i", buf, 4)
    if l_text < 0 or l_text > 1 << 30:
        raise InputFormatError("BAM header text length is invalid", where=path, hint="the BAM is corrupt")
    i = 8 + l_text
    if len(buf) < i + 4:
        return None
    text = bytes(buf[8:8 + l_text]).split(b"\0", 1)[0].decode("utf-8", "replace")
    (n_ref,) = struct.unpack_from("<i", buf, i)
    if n_ref < 0 or n_ref > 1 << 24:
        raise InputFormatError("BAM header reference count is invalid", where=path, hint="the BAM is corrupt")
    i += 4
    names, lengths = [], []
    for _ in range(n_ref):
        if len(buf) < i + 4:
            return None
        (l_name,) = struct.unpack_from("<i", buf, i)
        if l_name < 1 or l_name > 1 << 16:
            raise InputFormatError("BAM header reference name is invalid", where=path, hint="the BAM is corrupt")
        if len(buf) < i + 4 + l_name + 4:
            return None
        names.append(bytes(buf[i + 4:i + 4 + l_name - 1]).decode("utf-8", "replace"))
        (ln,) = struct.unpack_from("<i", buf, i + 4 + l_name)
        lengths.append(ln)
        i += 8 + l_name
    so, go = "unknown", ""
    for line in text.splitlines():
        if line.startswith("@HD"):
            for f in line.split("\t")[1:]:
                if f.startswith("SO:"):
                    so = f[3:]
                elif f.startswith("GO:"):
                    go = f[3:]
    return BamHeader(text=text, references=names, lengths=lengths, sort_order=so, group_order=go), i


def read_header(path: str | os.PathLike) -> BamHeader:
    """Read only the header of a BAM (``data_offset``: uncompressed offset of the first record)."""
    path_s = str(path)
    if not Path(path_s).exists():
        raise FileNotFoundError(2, "No such file or directory", path_s)
    with open(path_s, "rb") as fh:
        magic = fh.read(4)
    if not magic:
        raise InputFormatError("BAM is empty (0 bytes)", where=path_s, hint="re-create the BAM")
    if magic != _BGZF_MAGIC:
        raise InputFormatError("not a BAM file (not BGZF-compressed)", where=path_s,
                               hint="give a BAM; convert SAM with samtools view -b")
    buf = bytearray()
    out = np.empty(RESERVE + (1 << 16), np.uint8)
    for chunk in iter_raw_chunks(path_s, chunk_bytes=1 << 16, read_size=1 << 16):
        n = inflate_chunk(chunk, out, path_s)
        buf += out[RESERVE:RESERVE + n].tobytes()
        parsed = _parse_header(buf, path_s)
        if parsed is not None:
            header, header.data_offset = parsed
            return header
    _raise_short(path_s, buf)
    raise AssertionError  # unreachable


def _raise_short(path, buf) -> None:
    if len(buf) == 0:
        raise InputFormatError("BAM is empty (no header)", where=str(path), hint="re-create the BAM")
    raise InputFormatError("BAM header is truncated", where=str(path), hint="the BAM is truncated; re-create it")


def iter_record_batches(path: str | os.PathLike, *, chunk_bytes: int = 1 << 22,
                        ) -> Iterator[tuple[BamHeader, Records]]:
    """Yield ``(header, records)`` per chunk, decoding the whole BAM in one thread (simple consumers, tests).

    ``records`` is reused between batches. Raises :class:`InputFormatError` when the file is not a
    BAM, is corrupt or truncated. :func:`stream_records` is the parallel form.
    """
    path_s = str(Path(path))
    header = read_header(path_s)
    slot = Slot(chunk_bytes)
    carry, skip, offset = _NO_CARRY, header.data_offset, 0
    for chunk in iter_raw_chunks(path_s, chunk_bytes=chunk_bytes):
        n = inflate_chunk(chunk, slot.out, path_s)
        chunk.release()
        arr, skip = _assemble(slot.out, n, carry, skip)
        base = offset - len(carry)
        slot.records.n = slot.records.nb = 0
        end = _decode_chunk(arr, slot, len(header.references), True, path_s, base)
        carry, offset = arr[end:].copy(), base + arr.shape[0]
        rec = slot.records
        if rec.n:
            yield header, rec
    if len(carry):
        raise InputFormatError(f"BAM ends inside a record ({len(carry)} trailing bytes)", where=path_s,
                               hint="the BAM is truncated; re-create or re-download it")
