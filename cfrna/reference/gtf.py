"""Parse a GTF into a gene table and a feature (exon) table, with featureCounts' rules.

Features of type ``feature_type`` (default ``exon``, featureCounts ``-t``) are grouped into
meta-features by the attribute ``attribute`` (default ``gene_id``, featureCounts ``-g``). Genes are
kept in the order of their first feature in the file, as featureCounts writes them.
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cfrna.errors import InputFormatError
from cfrna.reference.layout import MITO_NAMES, merge_intervals

__all__ = ["MITO_NAMES", "Annotation", "merge_intervals", "read_gtf"]

_ATTR_RE = re.compile(r'\s*([A-Za-z0-9_.\-]+)\s+(?:"([^"]*)"|([^;"\s]+))\s*;?')

#: attributes copied into the gene table when present (first value seen per gene)
GENE_ATTRIBUTES = ("gene_name", "gene_biotype", "gene_type")



@dataclass
class Annotation:
    """Genes (meta-features) and their features, in GTF order.

    ``genes`` columns: gene_id, gene_name, gene_biotype, chrom, start, end (1-based, inclusive,
    span of the gene's features), strand, length (bp covered by the union of its features),
    n_features. ``features`` columns: chrom, start, end (1-based inclusive), strand, gene_idx
    (row of ``genes``), exon_number (or -1), transcript_id.
    """

    genes: pd.DataFrame
    features: pd.DataFrame
    path: str = ""
    feature_type: str = "exon"
    attribute: str = "gene_id"
    chromosomes: list[str] = field(default_factory=list)

    @property
    def gene_ids(self) -> list[str]:
        return self.genes["gene_id"].tolist()

    def symbol_map(self) -> dict[str, str]:
        """gene_id -> gene_name (gene_id itself where no name is annotated)."""
        return dict(zip(self.genes["gene_id"], self.genes["gene_name"], strict=True))

    def mito_mask(self) -> np.ndarray:
        return self.genes["chrom"].isin(MITO_NAMES).to_numpy()

    def biotype_mask(self, *biotypes: str) -> np.ndarray:
        bt = self.genes["gene_biotype"].str.lower()
        return bt.isin([b.lower() for b in biotypes]).to_numpy()


def _open_text(path: str | os.PathLike):
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline=None)
    return open(path, encoding="utf-8", errors="replace", newline=None)


_VALUE_RE = re.compile(r'\s+(?:"([^"]*)"|([^;"\s]+))')


def attribute_value(text: str, key: str) -> str | None:
    """The first value of attribute ``key`` in a GTF attribute column, or None.

    Same result as ``parse_attributes(text).get(key)`` for well-formed columns, without tokenising
    the other attributes (a GENCODE exon line carries about 20): parsing 1.6M exon lines is a few
    regex searches per line instead of a dict of every attribute.
    """
    n = len(key)
    i = text.find(key)
    while i >= 0:  # str.find skips to candidates; the regex only checks the value after the key
        if i == 0 or text[i - 1] in "; \t":
            m = _VALUE_RE.match(text, i + n)
            if m is not None:
                v = m.group(1)
                return v if v is not None else m.group(2)
        i = text.find(key, i + 1)
    return None


def parse_attributes(text: str) -> dict[str, str]:
    """Parse a GTF attribute column (``key "value"; key value;``) into a dict (first value wins)."""
    out: dict[str, str] = {}
    for m in _ATTR_RE.finditer(text):
        key = m.group(1)
        if key not in out:
            out[key] = m.group(2) if m.group(2) is not None else m.group(3)
    return out


def read_gtf(
    path: str | os.PathLike,
    *,
    feature_type: str = "exon",
    attribute: str = "gene_id",
) -> Annotation:
    """Read a GTF (plain or gzip) into an :class:`Annotation`.

    Raises :class:`InputFormatError` naming ``file:line`` for a line that is not GTF, a feature
    without the grouping attribute, or a file with no feature of ``feature_type``.
    """
    path = str(path)
    gene_index: dict[str, int] = {}
    gene_rows: list[dict] = []
    f_chrom: list[str] = []
    f_start: list[int] = []
    f_end: list[int] = []
    f_strand: list[str] = []
    f_gene: list[int] = []
    f_exon_no: list[int] = []
    f_tx: list[str] = []
    chrom_order: dict[str, None] = {}
    gene_level: dict[str, dict[str, str]] = {}
    try:
        fh = _open_text(path)
    except OSError as exc:
        raise InputFormatError(f"cannot read GTF: {exc.strerror}", where=path, hint="check the --gtf path") from exc
    with fh:
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip() or line.startswith("#"):
                    continue
                cols = line.rstrip("\r\n").split("\t", 8)
                if len(cols) != 9 or "\t" in cols[8]:
                    if len(cols) == 9:  # more than 9 columns
                        cols = line.rstrip("\r\n").split("\t")
                    if lineno == 1 or (len(cols) < 9 and not line.startswith("track")):
                        raise InputFormatError(
                            f"expected 9 tab-separated GTF columns, found {len(cols)}",
                            where=f"{path}:{lineno}",
                            hint="is this a GTF file?",
                        )
                    continue
                ftype = cols[2]
                if ftype == "gene" and feature_type != "gene":
                    gid = attribute_value(cols[8], attribute)
                    if gid is not None and gid not in gene_level:
                        gene_level[gid] = {a: attribute_value(cols[8], a) for a in GENE_ATTRIBUTES}
                    continue
                if ftype != feature_type:
                    continue
                try:
                    start = int(cols[3])
                    end = int(cols[4])
                except ValueError:
                    raise InputFormatError(
                        f"start/end are not integers ({cols[3]!r}, {cols[4]!r})", where=f"{path}:{lineno}"
                    ) from None
                if start < 1 or end < start:
                    raise InputFormatError(f"invalid interval {start}-{end}", where=f"{path}:{lineno}",
                                           hint="GTF coordinates are 1-based with start <= end")
                strand = cols[6]
                if strand not in ("+", "-", "."):
                    raise InputFormatError(f"invalid strand {strand!r}", where=f"{path}:{lineno}")
                text = cols[8]
                gid = attribute_value(text, attribute)
                if not gid:
                    raise InputFormatError(
                        f"{feature_type} feature has no '{attribute}' attribute", where=f"{path}:{lineno}",
                        hint=f"add {attribute} or choose another attribute with -g",
                    )
                chrom = cols[0]
                chrom_order.setdefault(chrom, None)
                gi = gene_index.get(gid)
                if gi is None:
                    gi = len(gene_rows)
                    gene_index[gid] = gi
                    gene_rows.append({"gene_id": gid, **{a: attribute_value(text, a) for a in GENE_ATTRIBUTES}})
                else:
                    row = gene_rows[gi]
                    for a in GENE_ATTRIBUTES:
                        if row[a] is None:
                            row[a] = attribute_value(text, a)
                f_chrom.append(chrom)
                f_start.append(start)
                f_end.append(end)
                f_strand.append(strand)
                f_gene.append(gi)
                en = attribute_value(text, "exon_number")
                f_exon_no.append(int(en) if en is not None and en.isdigit() else -1)
                f_tx.append(attribute_value(text, "transcript_id") or "")
        except (EOFError, gzip.BadGzipFile, OSError, UnicodeDecodeError) as exc:
            raise InputFormatError(f"GTF is truncated or corrupt ({exc})", where=path) from exc
    if not gene_rows:
        raise InputFormatError(
            f"no '{feature_type}' features found", where=path,
            hint="check the file is a GTF and the feature type (-t)",
        )
    features = pd.DataFrame(
        {
            "chrom": pd.Categorical(f_chrom, categories=list(chrom_order)),
            "start": np.asarray(f_start, dtype=np.int64),
            "end": np.asarray(f_end, dtype=np.int64),
            "strand": np.asarray(f_strand),
            "gene_idx": np.asarray(f_gene, dtype=np.int32),
            "exon_number": np.asarray(f_exon_no, dtype=np.int32),
            "transcript_id": np.asarray(f_tx, dtype=object),
        }
    )
    n_chrom = features.groupby("gene_idx", sort=True, observed=True)["chrom"].nunique()
    if (n_chrom > 1).any():
        gi = int(n_chrom.index[np.argmax(n_chrom.to_numpy() > 1)])
        chroms = features.loc[features["gene_idx"] == gi, "chrom"].astype(str).unique()
        raise InputFormatError(
            f"{attribute} {gene_rows[gi]['gene_id']!r} has {feature_type} features on several sequences "
            f"({', '.join(chroms[:3])})", where=path,
            hint="gene ids must be unique per gene: fix the GTF or give each copy its own id")
    genes = pd.DataFrame(gene_rows)
    for gid, row in zip(genes["gene_id"], gene_rows, strict=True):
        g = gene_level.get(gid)
        if g:
            for a in GENE_ATTRIBUTES:
                if row[a] is None and g.get(a) is not None:
                    row[a] = g[a]
    genes = pd.DataFrame(gene_rows)
    genes["gene_biotype"] = genes["gene_biotype"].fillna(genes["gene_type"]).fillna("unknown")
    genes["gene_name"] = genes["gene_name"].fillna(genes["gene_id"])
    genes = genes.drop(columns=["gene_type"])
    grp = features.groupby("gene_idx", sort=True)
    first = grp.first()
    genes["chrom"] = first["chrom"].astype(str).to_numpy()
    genes["start"] = grp["start"].min().to_numpy()
    genes["end"] = grp["end"].max().to_numpy()
    genes["strand"] = first["strand"].to_numpy()
    genes["length"] = _union_lengths(features)
    genes["n_features"] = grp.size().to_numpy()
    return Annotation(genes=genes, features=features, path=path, feature_type=feature_type,
                      attribute=attribute, chromosomes=list(chrom_order))


def _union_lengths(features: pd.DataFrame) -> np.ndarray:
    """Per gene, the number of bases covered by the union of its features (featureCounts' Length)."""
    g_all = features["gene_idx"].to_numpy()
    _, g, s, e = merge_intervals(features["chrom"].cat.codes.to_numpy().astype(np.int64), g_all.astype(np.int64),
                                 features["start"].to_numpy(), features["end"].to_numpy())
    n_genes = int(g_all.max()) + 1 if len(g_all) else 0
    return np.bincount(g, weights=e - s + 1, minlength=n_genes).astype(np.int64)
