"""Streaming BAM reader: raw BGZF blocks -> libdeflate -> BAM records decoded by a numba kernel.

The file is read in raw chunks; each BGZF block is decompressed with ``deflate.deflate_decompress``
(libdeflate releases the GIL, so ``threads > 1`` decompresses batches of blocks in a thread pool
ahead of the consumer) and its CRC32 checked. Decompressed bytes are handed out in chunks of about
``chunk_bytes``; a record may span two chunks, so :func:`iter_record_batches` carries the unparsed
tail over to the next chunk. Memory is bounded by the chunk size, not by the number of reads.

Every byte is untrusted: the decoder checks each length against the buffer, and a corrupt or
truncated file raises :class:`~cfrna.errors.InputFormatError` (never reads out of bounds).
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import deflate
import numpy as np

from cfrna._numba import njit
from cfrna.errors import InputFormatError

log = logging.getLogger(__name__)


def _bound_malloc() -> None:
    """glibc: fixed mmap threshold (1 MiB) and at most 2 arenas, so RSS stays flat while streaming.

    Without this, glibc's dynamic mmap threshold and per-thread arenas let the transient chunk
    buffers of the decompression threads fragment the heap and RSS creeps up with file size.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc
        pass


if not os.environ.get("CFRNA_NO_MALLOPT"):
    _bound_malloc()

_BGZF_MAGIC = b"\x1f\x8b\x08\x04"
_EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

#: decoder error codes (kernel return value) -> message
DECODE_ERRORS = {
    1: "record length is negative or too small",
    2: "read name length is zero or runs past the record",
    3: "CIGAR runs past the record",
    4: "invalid CIGAR operation",
    5: "sequence/quality lengths run past the record",
    6: "auxiliary tag runs past the record",
    7: "invalid auxiliary tag type",
    8: "reference id out of range",
    9: "alignment position is negative for a mapped read",
    10: "alignment extends past 2^31 bases",
}


@dataclass
class BamHeader:
    """The BAM header: SAM text and the reference sequences (names, lengths) in tid order."""

    text: str
    references: list[str]
    lengths: list[int]
    sort_order: str = "unknown"
    group_order: str = ""
    extra: dict = field(default_factory=dict)


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

    @property
    def capacity(self) -> int:
        return len(self.flag)


# ----------------------------------------------------------------------------------- numba kernel


@njit
def _u32(buf, i):
    return np.uint32(buf[i]) | (np.uint32(buf[i + 1]) << 8) | (np.uint32(buf[i + 2]) << 16) | (np.uint32(buf[i + 3]) << 24)


@njit
def _i32(buf, i):
    v = np.int64(_u32(buf, i))
    if v >= 2147483648:
        v -= 4294967296
    return v


@njit
def decode_records(buf, n_ref, flag, tid, pos, mapq, nh, hi, mtid, mpos, qhash, has_n, blk_off, nblk,
                   blk_start, blk_end):
    """Decode as many complete records of ``buf`` as fit in the output arrays.

    Returns ``(n_records, bytes_consumed, error_code, error_offset)``; an incomplete record at the
    end of ``buf`` is left unconsumed (the caller prepends it to the next chunk). ``error_code`` is
    0 or a key of :data:`DECODE_ERRORS`.
    """
    size = buf.shape[0]
    cap = flag.shape[0]
    bcap = blk_start.shape[0]
    off = 0
    n = 0
    nb_total = 0
    while n < cap:
        if off + 4 > size:
            break
        block_size = _i32(buf, off)
        if block_size < 32:
            return n, off, 1, off
        if off + 4 + block_size > size:
            break
        p = off + 4
        end = p + block_size
        t = _i32(buf, p)
        ps = _i32(buf, p + 4)
        l_read_name = np.int64(buf[p + 8])
        mq = np.int64(buf[p + 9])
        n_cigar = np.int64(buf[p + 12]) | (np.int64(buf[p + 13]) << 8)
        fl = np.int64(buf[p + 14]) | (np.int64(buf[p + 15]) << 8)
        l_seq = _i32(buf, p + 16)
        nt = _i32(buf, p + 20)
        npos = _i32(buf, p + 24)
        if t < -1 or t >= n_ref or nt < -1 or nt >= n_ref:
            return n, off, 8, off
        if l_read_name < 1 or p + 32 + l_read_name > end:
            return n, off, 2, off
        q = p + 32
        h = np.uint64(14695981039346656037)
        for k in range(l_read_name - 1):
            h = (h ^ np.uint64(buf[q + k])) * np.uint64(1099511628211)
        q += l_read_name
        if q + 4 * n_cigar > end:
            return n, off, 3, off
        if l_seq < 0 or q + 4 * n_cigar + (l_seq + 1) // 2 + l_seq > end:
            return n, off, 5, off
        if nb_total + n_cigar + 1 > bcap:
            break  # no room for this record's blocks: stop here, caller continues next call
        unmapped = (fl & 4) != 0 or t < 0
        if not unmapped and ps < 0:
            return n, off, 9, off
        # CIGAR -> aligned blocks (1-based inclusive)
        b0 = nb_total
        ref = ps + 1
        cur_s = -1
        spliced = 0
        for c in range(n_cigar):
            v = _u32(buf, q + 4 * c)
            op = v & np.uint32(15)
            ln = np.int64(v >> np.uint32(4))
            if op == 0 or op == 7 or op == 8:  # M = X
                if cur_s < 0:
                    cur_s = ref
                ref += ln
            elif op == 2 or op == 3:  # D N: end the block, skip reference
                if cur_s >= 0:
                    if not unmapped and ref - 1 >= cur_s:
                        blk_start[nb_total] = cur_s
                        blk_end[nb_total] = ref - 1
                        nb_total += 1
                    cur_s = -1
                if op == 3:
                    spliced = 1
                ref += ln
            elif op == 1 or op == 4 or op == 5 or op == 6:  # I S H P
                pass
            else:
                return n, off, 4, off
        if ref > 2147483647:
            return n, off, 10, off
        if cur_s >= 0 and not unmapped and ref - 1 >= cur_s:
            blk_start[nb_total] = cur_s
            blk_end[nb_total] = ref - 1
            nb_total += 1
        q += 4 * n_cigar + (l_seq + 1) // 2 + l_seq
        # auxiliary tags: find NH
        nh_val = -1
        hi_val = -1
        while q < end:
            if q + 3 > end:
                return n, off, 6, off
            tag0 = buf[q]
            tag1 = buf[q + 1]
            typ = buf[q + 2]
            q += 3
            val = np.int64(0)
            isint = False
            if typ == 65 or typ == 99 or typ == 67:  # A c C
                if q + 1 > end:
                    return n, off, 6, off
                val = np.int64(buf[q])
                if typ == 99 and val >= 128:
                    val -= 256
                isint = typ != 65
                q += 1
            elif typ == 115 or typ == 83:  # s S
                if q + 2 > end:
                    return n, off, 6, off
                val = np.int64(buf[q]) | (np.int64(buf[q + 1]) << 8)
                if typ == 115 and val >= 32768:
                    val -= 65536
                isint = True
                q += 2
            elif typ == 105 or typ == 73 or typ == 102:  # i I f
                if q + 4 > end:
                    return n, off, 6, off
                if typ == 105:
                    val = _i32(buf, q)
                    isint = True
                elif typ == 73:
                    val = np.int64(_u32(buf, q))
                    isint = True
                q += 4
            elif typ == 90 or typ == 72:  # Z H: NUL-terminated
                while q < end and buf[q] != 0:
                    q += 1
                if q >= end:
                    return n, off, 6, off
                q += 1
            elif typ == 66:  # B array
                if q + 5 > end:
                    return n, off, 6, off
                sub = buf[q]
                cnt = np.int64(_u32(buf, q + 1))
                q += 5
                if sub == 99 or sub == 67:
                    w = 1
                elif sub == 115 or sub == 83:
                    w = 2
                elif sub == 105 or sub == 73 or sub == 102:
                    w = 4
                else:
                    return n, off, 7, off
                if cnt > end - q or q + w * cnt > end:
                    return n, off, 6, off
                q += w * cnt
            else:
                return n, off, 7, off
            if isint and tag0 == 78 and tag1 == 72:  # NH
                nh_val = val
            elif isint and tag0 == 72 and tag1 == 73:  # HI
                hi_val = val
        flag[n] = fl
        tid[n] = t
        pos[n] = ps
        mapq[n] = mq
        nh[n] = nh_val
        hi[n] = hi_val
        mtid[n] = nt
        mpos[n] = npos
        qhash[n] = h
        has_n[n] = spliced
        blk_off[n] = b0
        nblk[n] = nb_total - b0
        n += 1
        off = end
    return n, off, 0, off


# ----------------------------------------------------------------------------------- BGZF layer


def _parse_blocks(raw: bytes | bytearray, start: int, path: str, file_offset: int):
    """Split ``raw[start:]`` into complete BGZF blocks: list of (payload_start, payload_end, crc, isize).

    Returns ``(blocks, next_start)``; an incomplete block at the end is left for the next read.
    """
    out = []
    i = start
    n = len(raw)
    while i + 18 <= n:
        if bytes(raw[i:i + 4]) != _BGZF_MAGIC:
            raise InputFormatError(
                f"not a BGZF block at byte {file_offset + i} (bad magic)", where=path,
                hint="the file is not a BAM or is corrupt; re-create it with samtools",
            )
        xlen = raw[i + 10] | (raw[i + 11] << 8)
        # find the BC subfield
        j = i + 12
        bsize = -1
        xend = i + 12 + xlen
        if xend > n:
            break
        while j + 4 <= xend:
            si1, si2 = raw[j], raw[j + 1]
            slen = raw[j + 2] | (raw[j + 3] << 8)
            if si1 == 66 and si2 == 67 and slen == 2 and j + 6 <= xend:
                bsize = raw[j + 4] | (raw[j + 5] << 8)
            j += 4 + slen
        if bsize < 0:
            raise InputFormatError(
                f"BGZF block at byte {file_offset + i} has no BC size field", where=path,
                hint="the file is gzip but not BGZF; re-create it with samtools view -b",
            )
        total = bsize + 1
        if total < 12 + xlen + 8:
            raise InputFormatError(f"BGZF block at byte {file_offset + i} has an invalid size", where=path,
                                   hint="the BAM is corrupt; re-create it")
        if i + total > n:
            break
        crc, isize = struct.unpack_from("<II", raw, i + total - 8)
        if isize > 65536:
            raise InputFormatError(f"BGZF block at byte {file_offset + i} claims {isize} bytes", where=path,
                                   hint="the BAM is corrupt; re-create it")
        out.append((i + 12 + xlen, i + total - 8, crc, isize, file_offset + i))
        i += total
    return out, i


#: bytes kept free at the start of each decompressed chunk, so that the unparsed tail of the
#: previous chunk can be put in front of it without copying the chunk
RESERVE = 1 << 16


def _inflate_batch(raw, blocks, path: str, free: collections.deque | None = None) -> memoryview:
    """Decompress ``blocks`` of ``raw`` into one buffer that starts with :data:`RESERVE` free bytes.

    The buffer is taken from ``free`` (recycled by the caller) when one is large enough, so that
    memory stays flat however many chunks are read.
    """
    total = RESERVE + sum(b[3] for b in blocks)
    out = None
    if free:
        try:
            out = free.pop()
        except IndexError:
            out = None
    if out is None or len(out) < total:
        out = bytearray(max(total, len(out) if out is not None else 0))
    mv = memoryview(raw)
    o = RESERVE
    for ps, pe, crc, isize, foff in blocks:
        if isize == 0:
            continue
        try:
            data = deflate.deflate_decompress(mv[ps:pe], isize)
        except (deflate.DeflateError, ValueError) as exc:
            raise InputFormatError(f"BGZF block at byte {foff} does not decompress ({exc})", where=path,
                                   hint="the BAM is corrupt; re-create it") from None
        if len(data) != isize or deflate.crc32(data) != crc:
            raise InputFormatError(f"BGZF block at byte {foff} fails its CRC check", where=path,
                                   hint="the BAM is corrupt; re-create it")
        out[o:o + isize] = data
        o += isize
    return memoryview(out)[:total]


def iter_bgzf_chunks(path: str | os.PathLike, *, threads: int = 1, raw_chunk: int = 1 << 22,
                     ) -> Iterator[memoryview]:
    """Yield decompressed data of ``path`` in order (each chunk after :data:`RESERVE` free bytes), in chunks of about ``raw_chunk`` compressed bytes.

    With ``threads > 1`` up to ``threads + 1`` chunks are decompressed ahead in a thread pool.
    A yielded chunk is only valid until the next one is requested (its buffer is then recycled).
    Raises :class:`InputFormatError` for bad magic, CRC errors and a file truncated mid-block.
    A missing BGZF EOF marker is logged as a warning (the data may be truncated at a block edge).
    """
    path = str(path)
    fh = open(path, "rb")  # noqa: SIM115 - closed in finally
    pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
    pending: collections.deque = collections.deque()  # (raw buffer, result or future)
    free: collections.deque = collections.deque()  # recycled output buffers
    raw_free: collections.deque = collections.deque()  # recycled input buffers
    saw_eof_marker = False
    try:
        carry = b""
        file_offset = 0
        eof = False
        while True:
            while not eof and (pool is None and not pending or pool is not None and len(pending) < threads + 1):
                raw = raw_free.pop() if raw_free else bytearray(raw_chunk + (1 << 17))
                if len(raw) < len(carry) + raw_chunk:
                    raw = bytearray(len(carry) + raw_chunk)
                raw[:len(carry)] = carry
                n = fh.readinto(memoryview(raw)[len(carry):len(carry) + raw_chunk])
                if not n:
                    eof = True
                    if carry:
                        raise InputFormatError(
                            f"file ends inside a BGZF block (byte {file_offset})", where=path,
                            hint="the BAM is truncated; re-create or re-download it",
                        )
                    break
                region = memoryview(raw)[:len(carry) + n]
                blocks, nxt = _parse_blocks(region, 0, path, file_offset)
                if blocks:
                    saw_eof_marker = blocks[-1][3] == 0
                if pool is None:
                    pending.append((raw, _inflate_batch(region, blocks, path, free)))
                else:
                    pending.append((raw, pool.submit(_inflate_batch, region, blocks, path, free)))
                carry = bytes(region[nxt:])
                file_offset += nxt
            if not pending:
                break
            raw, item = pending.popleft()
            chunk = item if pool is None else item.result()
            raw_free.append(raw)
            yield chunk
            free.append(chunk.obj)  # the consumer is done with it: recycle the buffer
        if not saw_eof_marker:
            log.warning("%s: no BGZF end-of-file marker; the BAM may be truncated", path)
    finally:
        fh.close()
        if pool is not None:
            for _, f in pending:
                f.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


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
    """Read only the header of a BAM."""
    buf = b""
    for chunk in iter_bgzf_chunks(path, raw_chunk=1 << 16):
        buf += bytes(chunk[RESERVE:])
        parsed = _parse_header(buf, str(path))
        if parsed is not None:
            return parsed[0]
    _raise_short(path, buf)
    raise AssertionError  # unreachable


def _raise_short(path, buf) -> None:
    if len(buf) == 0:
        raise InputFormatError("BAM is empty (no header)", where=str(path), hint="re-create the BAM")
    raise InputFormatError("BAM header is truncated", where=str(path), hint="the BAM is truncated; re-create it")


def iter_record_batches(path: str | os.PathLike, *, threads: int = 1, chunk_bytes: int = 1 << 22,
                        ) -> Iterator[tuple[BamHeader, Records]]:
    """Yield ``(header, records)`` batches decoding the whole BAM; ``records`` is reused between batches.

    Raises :class:`InputFormatError` when the file is not a BAM, is corrupt or truncated (a partial
    record at the end of the data, a length field pointing past a record, an invalid CIGAR op…).
    """
    path_s = str(Path(path))
    if not Path(path_s).exists():
        raise FileNotFoundError(2, "No such file or directory", path_s)
    with open(path_s, "rb") as fh:
        magic = fh.read(4)
    if not magic:
        raise InputFormatError("BAM is empty (0 bytes)", where=path_s, hint="re-create the BAM")
    if magic != _BGZF_MAGIC:
        raise InputFormatError("not a BAM file (not BGZF-compressed)", where=path_s,
                               hint="give a BAM; convert SAM with samtools view -b")
    header: BamHeader | None = None
    cap = max(1024, chunk_bytes // 36 + 1)
    rec = Records(cap, cap * 4)
    tail = b""
    buf_offset = 0
    for chunk in iter_bgzf_chunks(path_s, threads=threads, raw_chunk=max(1 << 16, chunk_bytes // 3)):
        if len(tail) <= RESERVE:
            chunk[RESERVE - len(tail):RESERVE] = tail
            buf = memoryview(chunk)[RESERVE - len(tail):]
        else:  # a record larger than RESERVE is still being assembled
            buf = memoryview(bytes(tail) + bytes(chunk[RESERVE:]))
        start = 0
        if header is None:
            parsed = _parse_header(buf, path_s)
            if parsed is None:
                tail = bytes(buf)
                continue
            header, start = parsed
        arr = np.frombuffer(buf, dtype=np.uint8)[start:]
        n_ref = len(header.references)
        consumed_total = 0
        while True:
            view = arr[consumed_total:]
            n, consumed, err, eoff = decode_records(
                view, n_ref, rec.flag, rec.tid, rec.pos, rec.mapq, rec.nh, rec.hi, rec.mtid, rec.mpos, rec.qhash,
                rec.has_n, rec.blk_off, rec.nblk, rec.blk_start, rec.blk_end)
            if err:
                raise InputFormatError(
                    f"corrupt BAM record at uncompressed offset {buf_offset + start + consumed_total + eoff}: "
                    f"{DECODE_ERRORS.get(int(err), 'invalid record')}", where=path_s,
                    hint="the BAM is corrupt; re-create it with the aligner or samtools",
                )
            rec.n = int(n)
            consumed_total += int(consumed)
            if n == 0:
                break
            yield header, rec
        tail = bytes(arr[consumed_total:])
        buf_offset += start + consumed_total
    if header is None:
        _raise_short(path_s, tail)
    if tail:
        raise InputFormatError(
            f"BAM ends inside a record ({len(tail)} trailing bytes)", where=path_s,
            hint="the BAM is truncated; re-create or re-download it",
        )
