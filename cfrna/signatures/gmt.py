"""GMT gene-set files: reading, the curated project sets, and symbol alias mapping.

Old HGNC symbols are common in published lists (BloodGen3, BTM 2013). ``ALIASES`` maps the old
symbols met in the lupus/blood signatures to current HGNC symbols; :func:`map_gene_sets` uses it in
both directions, so a list with ``IL8`` matches a GTF with ``CXCL8`` and vice versa.
"""

from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cfrna.errors import InputFormatError

log = logging.getLogger(__name__)

#: old symbol -> current HGNC symbol (documented in docs/de.md and assets/genesets/SOURCES.md)
ALIASES: dict[str, str] = {
    "IGJ": "JCHAIN", "ELA2": "ELANE", "DDX58": "RIGI", "KIAA0101": "PCLAF", "IL8": "CXCL8",
    "DNAPTP6": "SPATS2L", "MARCH8": "MARCHF8", "FAM46C": "TENT5C", "C1orf106": "INAVA",
    "GPR44": "PTGDR2", "IL8RA": "CXCR1", "IL8RB": "CXCR2", "HIST1H4C": "H4C3", "CD97": "ADGRE5",
    "EMR1": "ADGRE1", "EMR2": "ADGRE2", "FAM129A": "NIBAN1",
    "SEPT5": "SEPTIN5", "MARCH1": "MARCHF1", "KIAA1598": "SHTN1", "C19orf59": "MCEMP1",
    "H2AFZ": "H2AZ1", "WISP3": "CCN6", "CYR61": "CCN1",
    "CTGF": "CCN2", "NOV": "CCN3", "HIST1H1C": "H1-2", "GLTSCR2": "NOP53", "ZNF259": "ZPR1",
    "FAM46A": "TENT5A", "C10orf54": "VSIR", "TMEM173": "STING1", "MB21D1": "CGAS",
    # clone and locus placeholders of the BloodGen3 lists: MGC29506 is a synonym of MZB1 (NCBI Gene 51237),
    # LOC26010 the placeholder of NCBI Gene 26010 = SPATS2L (HGNC previous symbol DNAPTP6)
    "MGC29506": "MZB1", "LOC26010": "SPATS2L",
}
_REVERSE: dict[str, str] = {new: old for old, new in ALIASES.items() if new != old}


@dataclass(frozen=True)
class GeneSet:
    """One gene set: name, file-stem source, description and symbols (file order, no duplicates)."""

    name: str
    source: str
    description: str
    genes: tuple[str, ...]


def read_gmt(path: str | os.PathLike) -> list[GeneSet]:
    """Read a GMT file (``name<TAB>description<TAB>gene...``; ``.gz`` accepted).

    Raises
    ------
    InputFormatError
        Unreadable file, a line with fewer than 3 fields, a duplicate set name, or no set at all.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    source = path.name.removesuffix(".gz").removesuffix(".gmt")
    sets: list[GeneSet] = []
    seen: dict[str, int] = {}
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\r\n")
                if not line.strip() or line.startswith("#"):
                    continue
                fields = line.split("\t")
                genes = [g.strip() for g in fields[2:] if g.strip()]
                if len(fields) < 3 or not fields[0].strip() or not genes:
                    raise InputFormatError("a GMT line needs a name, a description and at least one gene, "
                                           "tab-separated", where=f"{path}:{lineno}")
                name = fields[0].strip()
                if name in seen:
                    raise InputFormatError(f"duplicate gene set name '{name}' (first on line {seen[name]})",
                                           where=f"{path}:{lineno}")
                seen[name] = lineno
                sets.append(GeneSet(name, source, fields[1].strip(), tuple(dict.fromkeys(genes))))
    except UnicodeDecodeError:
        raise InputFormatError("not a text GMT file", where=str(path)) from None
    except (OSError, EOFError) as exc:
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            raise
        raise InputFormatError(f"cannot read GMT: {exc}", where=str(path)) from None
    if not sets:
        raise InputFormatError("GMT file has no gene set", where=str(path), hint="one set per line: name, description, genes")
    return sets


def default_gmt_paths() -> list[Path]:
    """The curated project gene sets shipped in ``assets/genesets/`` (all ``*.gmt`` there)."""
    from cfrna._resources import asset_path

    return sorted(asset_path("genesets").glob("*.gmt"))


def curated_gene_sets() -> dict[str, list[str]]:
    """Name -> symbols of ``assets/genesets/cfrna_lupus.gmt``."""
    from cfrna._resources import asset_path

    return {s.name: list(s.genes) for s in read_gmt(asset_path("genesets", "cfrna_lupus.gmt"))}


def resolve_symbol(symbol: str, universe: set[str]) -> str | None:
    """``symbol`` as present in ``universe``, trying the alias table both ways; None if absent."""
    if symbol in universe:
        return symbol
    for cand in (ALIASES.get(symbol), _REVERSE.get(symbol), symbol.upper()):
        if cand and cand in universe:
            return cand
    return None


def map_gene_sets(sets: list[GeneSet], universe: set[str]) -> tuple[dict[str, list[str]], list[dict]]:
    """Map every set onto the symbols present in ``universe``.

    Returns
    -------
    (dict, list of dict)
        Set name -> mapped symbols (present genes only), and one coverage record per set:
        ``gene_set, source, size_in_file, size_mapped, aliased``.
    """
    mapped: dict[str, list[str]] = {}
    coverage: list[dict] = []
    for s in sets:
        genes: list[str] = []
        aliased = 0
        for g in s.genes:
            r = resolve_symbol(g, universe)
            if r is not None and r not in genes:
                genes.append(r)
                aliased += r != g
        mapped[s.name] = genes
        coverage.append({"gene_set": s.name, "source": s.source, "size_in_file": len(s.genes),
                         "size_mapped": len(genes), "aliased": aliased})
    return mapped, coverage
