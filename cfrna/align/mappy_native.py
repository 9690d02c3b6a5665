"""The native mappy path: minimap2 called from numba kernels, a batch of reads per call.

mappy's Python API builds a Python object for every hit and holds the GIL for everything but
``mm_map`` itself, so it does not scale past one thread. Here the reads stay raw FASTQ text
(:func:`cfrna.io.fastq.iter_fastq_chunks`), and one numba call per chunk
(:mod:`cfrna.align._mm_kernels`) maps every read with minimap2's ``mm_map`` / ``mm_map_frag``
(exported by the mappy extension module) and writes the SAM lines, all without the GIL.

The index is still opened by mappy (``mappy.Aligner``: same ``.mmi``, same junction loading);
the mapping options are built the way mappy builds them (``mm_set_opt`` with the preset, then
``MM_F_CIGAR``, then ``mm_mapopt_update``). Before first use, :func:`open_native` maps a few reads
cut from the reference with both paths and compares the SAM lines: if the struct layout of this
mappy build differs, the native path is not used (the Python path is, with a warning).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading

import numpy as np

log = logging.getLogger(__name__)

_MM_F_CIGAR = 0x004
_OPT_BYTES = 4096  # more than sizeof(mm_idxopt_t) and sizeof(mm_mapopt_t) of minimap2 2.2x


def index_pointer(aligner) -> int:
    """The ``mm_idx_t *`` of a ``mappy.Aligner``, checked against its k, w and sequence count (0: not found).

    The Cython ``Aligner`` object stores the pointer right after the Python object header.
    """
    ptr = ctypes.c_void_p.from_address(id(aligner) + 2 * ctypes.sizeof(ctypes.c_void_p)).value
    if not ptr:
        return 0
    b, w, k, _flag, n_seq = (ctypes.c_int32 * 5).from_address(ptr)
    if (w, k, n_seq) != (aligner.w, aligner.k, aligner.n_seq) or not 0 < b <= 32:
        return 0
    return int(ptr)


def _lib():
    import mappy

    return ctypes.CDLL(mappy.__file__)


class NativeMapper:
    """minimap2 mapping through the numba kernels, on the index of an open ``mappy.Aligner``.

    Keep the Aligner alive while the mapper is used (it owns the index). One thread buffer
    (:meth:`thread_buffer`) per thread.
    """

    def __init__(self, aligner, preset: str, *, max_fragment: int, contigs: list[tuple[str, int]]):
        mi = index_pointer(aligner)
        if not mi:
            raise RuntimeError("unexpected mappy object layout")
        lib = _lib()
        self._lib = lib
        self._aligner = aligner
        self.mi = mi
        self.max_fragment = int(max_fragment)
        self.lengths = dict(contigs)  # the index folder's contigs.tsv: no sequence fetched to learn a length
        self._iopt = np.zeros(_OPT_BYTES, np.uint8)
        self._mopt = np.zeros(_OPT_BYTES, np.uint8)
        lib.mm_set_opt.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p]
        lib.mm_set_opt.restype = ctypes.c_int
        lib.mm_mapopt_update.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.mm_mapopt_update.restype = None
        lib.mm_tbuf_init.argtypes = []
        lib.mm_tbuf_init.restype = ctypes.c_void_p
        lib.mm_tbuf_destroy.argtypes = [ctypes.c_void_p]
        lib.mm_tbuf_destroy.restype = None
        lib.mm_set_opt(None, self._iopt.ctypes.data, self._mopt.ctypes.data)
        if lib.mm_set_opt(preset.encode(), self._iopt.ctypes.data, self._mopt.ctypes.data) != 0:
            raise RuntimeError(f"minimap2 does not know the preset {preset!r}")
        flag = self._mopt[:8].view(np.int64)
        flag[0] |= _MM_F_CIGAR  # as mappy: always compute the alignment
        lib.mm_mapopt_update(self._mopt.ctypes.data, mi)
        self.opt = int(self._mopt.ctypes.data)
        names = [n.encode() for n in aligner.seq_names]
        self.names = np.frombuffer(b"".join(names) or b"\0", np.uint8).copy()
        self.name_off = np.zeros(len(names) + 1, np.int64)
        self.name_off[1:] = np.cumsum([len(n) for n in names])

    def thread_buffer(self) -> int:
        tb = self._lib.mm_tbuf_init()
        if not tb:
            raise MemoryError("minimap2 could not allocate a thread buffer")
        return int(tb)

    def free_thread_buffer(self, tb: int) -> None:
        self._lib.mm_tbuf_destroy(tb)

    def map_chunk(self, tb: int, chunk) -> memoryview:
        """SAM lines (bytes) of one :class:`cfrna.io.fastq.FastqChunk`."""
        from cfrna.align._mm_kernels import map_pe_batch, map_se_batch

        est = int(chunk.buf1.shape[0] * (1.5 if chunk.buf2 is None else 3.0)) + (1 << 16)
        out = np.empty(est, np.uint8)
        if chunk.buf2 is None:
            out, n = map_se_batch(self.mi, tb, self.opt, chunk.buf1, chunk.rec1, chunk.n, self.names,
                                  self.name_off, out)
        else:
            out, n = map_pe_batch(self.mi, tb, self.opt, chunk.buf1, chunk.rec1, chunk.buf2, chunk.rec2,
                                  chunk.n, self.names, self.name_off, out, self.max_fragment)
        return memoryview(out)[:n]


def _probe_reads(aligner, lengths: dict[str, int], n: int = 24, length: int = 75) -> list[tuple[str, str]]:
    """Reads cut from the reference (both strands, a mismatch, junk): ``(name, sequence)``.

    Only ``length``-long windows are fetched from the index (a whole human chromosome is not).
    """
    from cfrna.align.mappy_runner import _rc

    rng = np.random.default_rng(7)
    out = []
    names = [c for c in aligner.seq_names if lengths.get(c, 0) > 4 * length]
    for i in range(n if names else 0):
        ctg = names[i % len(names)]
        st = int(rng.integers(0, lengths[ctg] - 3 * length))
        s = aligner.seq(ctg, st, st + length) or ""
        if i % 3 == 1:
            s = _rc(s)
        if i % 4 == 2 and s:
            j = length // 2
            s = s[:j] + ("A" if s[j] != "A" else "C") + s[j + 1:]
        out.append((f"probe{i}", s))
    out.append(("probe_junk", "".join(rng.choice(list("ACGT"), length))))
    return out


def _self_check(mapper: NativeMapper, aligner) -> bool:
    """Same SAM lines from the native and the Python path on probe reads (SE and pairs)?"""
    import mappy

    from cfrna.align.mappy_runner import _map_batch, _rc
    from cfrna.io.fastq import iter_fastq_chunks

    probes = _probe_reads(aligner, mapper.lengths)
    if len(probes) < 2:
        return True  # nothing to cut reads from: tiny reference; the kernels are tested in the suite
    qual = "I" * 200
    se = [((name, s, qual[:len(s)]), None) for name, s in probes]
    pe = [((a[0], a[1], qual[:len(a[1])]), (a[0], _rc(b[1]), qual[:len(b[1])]))
          for a, b in zip(probes[0::2], probes[1::2], strict=False)]
    tb_py = mappy.ThreadBuffer()
    tb = mapper.thread_buffer()
    try:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="cfrna-probe-") as tmp:
            f1, f2, f3 = (os.path.join(tmp, f"p{i}.fq") for i in range(3))
            with open(f1, "w") as a:
                a.writelines(f"@{r[0]}\n{r[1]}\n+\n{r[2]}\n" for r, _ in se)
            with open(f2, "w") as a, open(f3, "w") as b:
                for r1, r2 in pe:
                    a.write(f"@{r1[0]}\n{r1[1]}\n+\n{r1[2]}\n")
                    b.write(f"@{r2[0]}\n{r2[1]}\n+\n{r2[2]}\n")
            got_se = b"".join(bytes(mapper.map_chunk(tb, c)) for c in iter_fastq_chunks(f1)).decode()
            got_pe = b"".join(bytes(mapper.map_chunk(tb, c)) for c in iter_fastq_chunks(f2, f3)).decode()
        want_se = _map_batch(aligner, tb_py, se)
        want_pe = _map_batch(aligner, tb_py, pe)
    finally:
        mapper.free_thread_buffer(tb)
    if got_se != want_se or got_pe != want_pe:
        log.debug("native mappy self-check differs:\n%s\n--\n%s", got_se + got_pe, want_se + want_pe)
        return False
    return True


_checked: dict[tuple, bool] = {}
_lock = threading.Lock()


def open_native(aligner, preset: str, *, max_fragment: int,
                contigs: list[tuple[str, int]]) -> NativeMapper | None:
    """A :class:`NativeMapper` for ``aligner``, or None (with a warning) when it cannot be used.

    ``CFRNA_MAPPY_PYTHON=1`` chooses the Python path.
    """
    if os.environ.get("CFRNA_MAPPY_PYTHON"):
        return None
    from cfrna.align import _mm_kernels

    if not _mm_kernels.NATIVE:
        log.warning("native mappy path not available (symbols not found); using mappy's Python API")
        return None
    try:
        mapper = NativeMapper(aligner, preset, max_fragment=max_fragment, contigs=contigs)
    except (RuntimeError, OSError, AttributeError) as exc:
        log.warning("native mappy path not available (%s); using mappy's Python API", exc)
        return None
    import mappy

    from cfrna._numba import no_blas_probe

    key = (mappy.__version__, preset, tuple(aligner.seq_names[:3]), aligner.n_seq)
    with _lock, no_blas_probe():  # the first kernel load; these kernels use no BLAS
        if key not in _checked:
            _checked[key] = _self_check(mapper, aligner)
    if not _checked[key]:
        log.warning("native mappy path disabled: its output differs from mappy's Python API on probe "
                    "reads (mappy %s); using the Python API", mappy.__version__)
        return None
    return mapper
