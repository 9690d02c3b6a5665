"""The only place that decorates numba kernels: one caching/fastmath policy and a thread limiter.

Serial kernels are compiled with ``cache=True`` (set ``NUMBA_CACHE_DIR`` to a writable folder on
read-only installs); ``parallel=True`` kernels are not cached (as in pynndescent).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

if "NUMBA_CACHE_DIR" not in os.environ:
    # a writable default, set before numba reads its configuration: site-packages may be read-only
    os.environ["NUMBA_CACHE_DIR"] = os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "cfrna", "numba"
    )

import numba


def njit(*args, parallel: bool = False, **kwargs):
    """``numba.njit`` with the project's policy: nogil, cache for serial kernels, no fastmath."""
    opts = {"nogil": True, "cache": not parallel, "parallel": parallel}
    opts.update(kwargs)
    if args and callable(args[0]):
        return numba.njit(**opts)(args[0])
    return numba.njit(*args, **opts)


@contextlib.contextmanager
def thread_limit(n: int | None) -> Iterator[int]:
    """Set numba's thread count to ``n`` (bounded by the pool size) and restore it afterwards."""
    old = numba.get_num_threads()
    if n is None or n <= 0:
        yield old
        return
    n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    try:
        yield n
    finally:
        numba.set_num_threads(old)


@contextlib.contextmanager
def no_blas_probe() -> Iterator[None]:
    """Keep numba's first kernel load in this block from importing ``scipy.linalg`` (about 0.4 s).

    The first time numba loads or compiles a kernel it imports ``scipy.linalg.cython_blas`` only
    to decide whether ``np.correlate``/``np.convolve`` inside kernels may call BLAS (they fall
    back to a plain loop otherwise). For a short command whose kernels use neither (``cfrna
    count``) that import is a third of the start-up. Kernels using ``np.linalg``/``np.dot`` still
    work: they check for BLAS again when they are compiled, after this block.
    """
    key = "scipy.linalg.cython_blas"
    if key in sys.modules or "numba.np.arraymath" in sys.modules:  # too late, or already paid
        yield
        return
    sys.modules[key] = None  # makes ``import scipy.linalg.cython_blas`` raise ImportError
    try:
        yield
    finally:
        if key in sys.modules and sys.modules[key] is None:
            del sys.modules[key]
