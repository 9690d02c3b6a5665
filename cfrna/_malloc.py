"""glibc allocator settings, in one place (``CFRNA_NO_MALLOPT=1`` leaves the allocator alone).

Two workloads want different settings:

* **streaming** (BAM decoding, :mod:`cfrna.io.bam`): a fixed mmap threshold of 1 MiB and at most 2
  arenas, so that the transient chunk buffers of the decompression threads do not fragment the heap
  and RSS stays flat with file size;
* **building a minimap2 index** (:func:`cfrna.align.index.build_index`): the threshold at glibc's
  default of 128 KiB. glibc raises a dynamic threshold to the size of every mmap'd block that is
  freed (Python's 1 MiB reads of the FASTA raise it to 1 MiB), and minimap2's mid-sized index
  buffers then come from a heap that keeps what it frees: ``cfrna index`` of a 1.29 Gb genome peaked
  at 13.5 GB against 8.6 GB for the minimap2 CLI (docs/benchmarks.md, *Human scale*).

Setting the threshold explicitly also turns glibc's adjustment off. Elsewhere (macOS, musl) nothing
is changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
STREAMING_MMAP_THRESHOLD = 1 << 20
DEFAULT_MMAP_THRESHOLD = 128 * 1024  # glibc's own default

_streaming = False  # bound_for_streaming() took effect: restore its threshold after an index build


def _mallopt(param: int, value: int) -> bool:
    if os.environ.get("CFRNA_NO_MALLOPT"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(param, value))
    except (OSError, AttributeError):  # not glibc
        return False


def bound_for_streaming() -> bool:
    """The streaming settings (1 MiB mmap threshold, 2 arenas); False where they could not be set."""
    global _streaming
    _streaming = _mallopt(M_MMAP_THRESHOLD, STREAMING_MMAP_THRESHOLD)
    _mallopt(M_ARENA_MAX, 2)
    return _streaming


@contextlib.contextmanager
def default_mmap_threshold():
    """glibc's default mmap threshold, fixed, inside the block (for minimap2's index build); the
    streaming threshold again afterwards when it was set before (``cfrna run`` counts in the same
    process)."""
    _mallopt(M_MMAP_THRESHOLD, DEFAULT_MMAP_THRESHOLD)
    try:
        yield
    finally:
        if _streaming:
            _mallopt(M_MMAP_THRESHOLD, STREAMING_MMAP_THRESHOLD)
