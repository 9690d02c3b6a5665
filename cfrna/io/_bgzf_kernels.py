"""numba kernels of the BGZF reader (:mod:`cfrna.io.bgzf`): block framing and libdeflate called without the GIL.

libdeflate's C functions are taken from the ``deflate`` extension module and registered with
numba under private names; :data:`NATIVE` is False when they cannot be found (another build of
``deflate``, ``CFRNA_PYTHON_INFLATE=1``, or ``NUMBA_DISABLE_JIT=1``), and then :mod:`cfrna.io.bgzf`
inflates block by block through the package's Python API.
"""

from __future__ import annotations

import ctypes
import os

import deflate
import numba
import numpy as np

from cfrna._numba import njit


def _native_symbols() -> dict[str, int] | None:
    """Addresses of libdeflate's functions in the ``deflate`` extension, registered for numba."""
    if os.environ.get("CFRNA_PYTHON_INFLATE") or numba.config.DISABLE_JIT:  # external calls need compiling
        return None
    try:
        import llvmlite.binding as llb

        lib = ctypes.CDLL(deflate._deflate.__file__)
        names = ("libdeflate_alloc_decompressor", "libdeflate_free_decompressor",
                 "libdeflate_deflate_decompress", "libdeflate_crc32")
        addrs = {n: ctypes.cast(getattr(lib, n), ctypes.c_void_p).value for n in names}
        for n, a in addrs.items():
            llb.add_symbol("cfrna_" + n, a)  # private names: nothing global is changed
        return addrs
    except (AttributeError, OSError, ImportError):
        return None


NATIVE = _native_symbols() is not None
_inflate_native = None  # replaced below when the symbols were found
if NATIVE:
    from numba import types

    _alloc = types.ExternalFunction("cfrna_libdeflate_alloc_decompressor", types.uintp())
    _free = types.ExternalFunction("cfrna_libdeflate_free_decompressor", types.void(types.uintp))
    _inflate = types.ExternalFunction(
        "cfrna_libdeflate_deflate_decompress",
        types.intc(types.uintp, types.uintp, types.uintp, types.uintp, types.uintp, types.uintp),
    )
    _crc32 = types.ExternalFunction("cfrna_libdeflate_crc32", types.uint32(types.uint32, types.uintp, types.uintp))

    @njit(_nrt=False)
    def _inflate_native(raw, ps, pe, crc, isz, out, o0):
        """Inflate blocks into ``out[o0:]``: ``(bytes, failed block or -1, 0 | 1 inflate | 2 CRC | 3 memory)``.

        The caller guarantees ``o0 + isz.sum() <= out.size`` and ``pe <= raw.size``; libdeflate
        writes at most ``isz[b]`` bytes per block and fails unless it gets exactly that many.
        """
        d = _alloc()
        if d == 0:
            return 0, 0, 3
        o = o0
        src = raw.ctypes.data
        dst = out.ctypes.data
        for b in range(ps.shape[0]):
            if isz[b] == 0:
                continue
            if _inflate(d, src + ps[b], pe[b] - ps[b], dst + o, isz[b], 0) != 0:
                _free(d)
                return o - o0, b, 1
            if _crc32(np.uint32(0), dst + o, isz[b]) != crc[b]:
                _free(d)
                return o - o0, b, 2
            o += isz[b]
        _free(d)
        return o - o0, -1, 0


@njit
def _u32(buf, i):
    return np.uint32(buf[i]) | (np.uint32(buf[i + 1]) << 8) | (np.uint32(buf[i + 2]) << 16) | \
        (np.uint32(buf[i + 3]) << 24)


@njit
def frame_blocks(raw, n, bstart, ps, pe, crc, isz):
    """Parse the complete BGZF blocks of ``raw[:n]``: ``(count, next_offset, error, error_offset)``.

    Per block: its start, payload start/end, CRC32 and uncompressed size. An incomplete block at
    the end is left for the next read (``next_offset``); ``error`` is a key of :data:`FRAME_ERRORS`.
    """
    i = 0
    k = 0
    while i + 18 <= n:
        if raw[i] != 31 or raw[i + 1] != 139 or raw[i + 2] != 8 or raw[i + 3] != 4:
            return k, i, 1, i
        xlen = np.int64(raw[i + 10]) | (np.int64(raw[i + 11]) << 8)
        xend = i + 12 + xlen
        if xend > n:
            break
        j = i + 12
        bsize = -1
        while j + 4 <= xend:
            slen = np.int64(raw[j + 2]) | (np.int64(raw[j + 3]) << 8)
            if raw[j] == 66 and raw[j + 1] == 67 and slen == 2 and j + 6 <= xend:
                bsize = np.int64(raw[j + 4]) | (np.int64(raw[j + 5]) << 8)
            j += 4 + slen
        if bsize < 0:
            return k, i, 2, i
        total = bsize + 1
        if total < 12 + xlen + 8:
            return k, i, 3, i
        if i + total > n:
            break
        size = np.int64(_u32(raw, i + total - 4))
        if size > 65536:
            return k, i, 4, i
        bstart[k] = i
        ps[k] = xend
        pe[k] = i + total - 8
        crc[k] = _u32(raw, i + total - 8)
        isz[k] = size
        k += 1
        i += total
    return k, i, 0, 0
