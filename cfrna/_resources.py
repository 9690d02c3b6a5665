"""Locate files shipped in ``assets/`` (a source checkout) or ``cfrna/_assets`` (an installed wheel)."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def asset_path(*parts: str) -> Path:
    """Path of an asset, e.g. ``asset_path("genesets", "cfrna_lupus.gmt")``."""
    for root in (_PKG.parent / "assets", _PKG / "_assets"):
        p = root.joinpath(*parts)
        if p.exists():
            return p
    raise FileNotFoundError(f"asset not found: {'/'.join(parts)} (looked in {_PKG.parent / 'assets'} and "
                            f"{_PKG / '_assets'}; reinstall cfrna or run from a complete source checkout)")


def project_root() -> Path | None:
    """The source checkout (with main.nf), or None for an installed wheel."""
    root = _PKG.parent
    return root if (root / "main.nf").exists() else None
