"""Atomic output: write to a temporary name in the same folder, then rename.

A reader (or a resumed run) never sees a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cfrna.errors import CfrnaError


def _default_mode() -> int:
    """The usual mode of a new file: 0666 minus the process umask."""
    um = os.umask(0)
    os.umask(um)
    return 0o666 & ~um


def _tmp_path(path: Path, mode: int | None = None) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600 files: give results the usual permissions (0666 minus umask) or ``mode``
    os.chmod(name, _default_mode() if mode is None else mode)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    ``mode``: permission bits of the result (default: 0666 minus the umask, as ``open`` would give).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path, mode)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)  # the writer may have replaced the file (e.g. h5py): set it again
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == 28:  # ENOSPC
            raise CfrnaError(f"no space left on device while writing {path}", hint="free disk space and rerun with --resume") from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", *, file_mode: int | None = None,
                **kwargs: Any) -> Iterator[Any]:
    """Open a temporary file for writing; it replaces ``path`` when the block exits cleanly.

    ``file_mode``: the result's permission bits (default: 0666 minus the umask).
    """
    with atomic_path(path, mode=file_mode) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


@contextlib.contextmanager
def _text_out(path: str | os.PathLike, *, file_mode: int | None, newline: str) -> Iterator[Any]:
    """Atomic UTF-8 text output; gzip-compressed when the name ends in ``.gz`` (no name or time stamp in
    the gzip header, so equal content gives equal bytes)."""
    if not str(path).endswith(".gz"):
        with atomic_open(path, "w", encoding="utf-8", newline=newline, file_mode=file_mode) as fh:
            yield fh
        return
    import gzip
    import io

    with atomic_open(path, "wb", file_mode=file_mode) as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            io.TextIOWrapper(gz, encoding="utf-8", newline=newline) as fh:
        yield fh


def write_text(path: str | os.PathLike, text: str, *, file_mode: int | None = None) -> None:
    """Write UTF-8 text atomically (gzipped if the name ends in ``.gz``)."""
    with _text_out(path, file_mode=file_mode, newline="\n") as fh:
        fh.write(text)


def write_json(path: str | os.PathLike, obj: Any, *, file_mode: int | None = None) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n", file_mode=file_mode)


def write_table(path: str | os.PathLike, df, *, index: bool = False, float_format: str | None = None,
                file_mode: int | None = None) -> None:
    """Write a pandas DataFrame as TSV (CSV if the name ends in .csv, gzipped if it ends in .gz), atomically."""
    sep = "," if str(path).removesuffix(".gz").endswith(".csv") else "\t"
    with _text_out(path, file_mode=file_mode, newline="") as fh:
        df.to_csv(fh, sep=sep, index=index, float_format=float_format, lineterminator="\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
