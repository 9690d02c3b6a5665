"""Reference annotation: GTF parsing, gene tables and the cached feature layout used by counting.

``Annotation`` and ``read_gtf`` (pandas) are imported on first use, so that
:mod:`cfrna.reference.layout` can be used without pandas.
"""

from __future__ import annotations

__all__ = ["Annotation", "read_gtf"]


def __getattr__(name: str):
    if name in __all__:
        from cfrna.reference import gtf

        return getattr(gtf, name)
    raise AttributeError(f"module 'cfrna.reference' has no attribute {name!r}")
