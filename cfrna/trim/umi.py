"""UMI extraction into the read name, with the conventions of ``umi_tools extract`` (string method).

A pattern is a string of ``N`` (a UMI base) and ``X`` (a base that stays in the read), laid over
the 5' end of the read (or its 3' end with ``three_prime``), as ``--bc-pattern`` /
``--bc-pattern2`` of umi_tools:

* the ``N`` bases, read 1's then read 2's, are joined into the UMI and removed from both the
  sequence and the qualities; the ``X`` bases stay (5': in front of the rest of the read; 3': after it);
* the UMI is appended to the read id (first word of the header) with ``sep`` (default ``_``);
  the comment after the first space is kept: ``@id_UMI comment``. Both mates get the same name.

Kits (examples): SMARTer Stranded Total RNA-Seq Pico v3 has an 8-nt UMI at the start of read 2
followed by 3 nt of the template-switching linker to drop (``pattern2="NNNNNNNNXXX"`` keeps them;
trim them with the adapter step); QIAseq miRNA / UPX kits carry the UMI after the adapter (not a
fixed-position pattern, so not handled here); libraries demultiplexed with the UMI already in the
read name (bcl2fastq/BCL Convert ``…:UMI`` or umi_tools ``…_UMI``) need no extraction:
:func:`umi_from_name` reads it with the matching ``sep``.

Errors (one line, naming the file and record): a pattern longer than the read, a UMI with ``N``,
and, for UMIs declared to be in the names, a name without one.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path

import dnaio

from cfrna.errors import ConfigError, InputFormatError
from cfrna.io.atomic import atomic_path
from cfrna.io.fastq import iter_pairs, read_id

__all__ = ["parse_pattern", "split_umi", "extract_umis", "umi_from_name", "check_names_have_umis",
           "name_umi_stats", "UmiSpec", "KIT_PRESETS", "resolve_umi"]

_UMI_RE = re.compile(r"^[ACGTN]+$")


@dataclass(frozen=True)
class UmiSpec:
    """Where a library's UMIs are: a pattern on read ``read`` (then ``clip`` more bases of that read are
    cut after extraction), or already at the end of the read names (``in_name``, ``id<sep>UMI``)."""

    pattern: str | None = None
    read: int = 1
    clip: int = 0
    in_name: bool = False
    sep: str = "_"
    kit: str | None = None

    @property
    def has_umis(self) -> bool:
        return self.pattern is not None or self.in_name


#: kit presets accepted wherever a UMI pattern is (``--umi-pattern``, the sheet's ``umi_pattern``):
#: name -> (pattern, read, bases clipped after the pattern). SMARTer Stranded Total RNA-Seq Kit v3 -
#: Pico Input: read 2 starts with the 8-nt UMI, then 3 nt of UMI linker and 3 nt from the template
#: switch, all non-templated (the nf-core/rnaseq preset discards the 6 nt after the UMI, too).
KIT_PRESETS: dict[str, tuple[str, int, int]] = {
    "takara-pico-v3": ("NNNNNNNN", 2, 6),
}


def resolve_umi(pattern: str | None, read: int | str | None = None, *, in_name: bool = False, sep: str = "_",
                paired: bool = True, where: str = "--umi-pattern") -> UmiSpec:
    """The :class:`UmiSpec` of a pattern or kit preset name (``read`` None: the preset's, else 1).

    Raises :class:`ConfigError` (naming ``where``) for an invalid pattern, a read other than 1/2, read 2
    for single-end data, both a pattern and ``in_name``, or a separator with white space.
    """
    if not sep or any(ch.isspace() for ch in sep):
        raise ConfigError(f"UMI separator {sep!r} is empty or has white space", where=where,
                          hint="use _ (umi_tools) or : (bcl-convert, fastp)")
    kit = None
    clip = 0
    p = (pattern or "").strip()
    if p.lower() in KIT_PRESETS:
        kit = p.lower()
        p, kit_read, clip = KIT_PRESETS[kit]
        read = kit_read if read in (None, "") else read
    elif p and not set(p.upper()) <= set("NXC"):
        raise ConfigError(f"UMI pattern {pattern!r} is neither a umi_tools pattern (N: UMI base, X: kept base) nor a "
                          "kit preset", where=where,
                          hint=f"write it like NNNNNNNN or NNNNNNNNXXX, or name a preset: {', '.join(KIT_PRESETS)}")
    p = parse_pattern(p or None, where=where)
    if read in (None, ""):
        read = 1
    try:
        r = int(str(read).strip())
    except ValueError:
        r = 0
    if r not in (1, 2):
        raise ConfigError(f"UMI read {read!r} must be 1 or 2", where=where, hint="the read whose 5' end holds the UMI")
    if p is not None and r == 2 and not paired:
        raise ConfigError("the UMI is on read 2 but the sample is single-end", where=where,
                          hint="use read 1 for single-end libraries, or give fastq_2")
    if p is not None and in_name:
        raise ConfigError("both a UMI pattern and UMIs already in the read names", where=where,
                          hint="give a pattern for UMIs in the sequence, or umi_in_name for UMIs in the names, not both")
    return UmiSpec(pattern=p, read=r, clip=clip, in_name=bool(in_name), sep=sep, kit=kit)


def parse_pattern(pattern: str | None, *, where: str = "--umi-pattern") -> str | None:
    """Validate a umi_tools string pattern (``N`` UMI base, ``X`` kept base); None passes through."""
    if pattern is None or pattern == "":
        return None
    p = pattern.upper()
    bad = sorted(set(p) - set("NX"))
    if "C" in bad:
        raise ConfigError(f"UMI pattern {pattern!r} has cell-barcode bases (C)", where=where,
                          hint="bulk cfRNA libraries have no cell barcodes: use N for UMI bases and X for kept bases")
    if bad:
        raise ConfigError(f"UMI pattern {pattern!r} has characters other than N and X: {''.join(bad)}", where=where,
                          hint="write the pattern as umi_tools --bc-pattern does, e.g. NNNNNNNN or NNNNNNNNXXX")
    if "N" not in p:
        raise ConfigError(f"UMI pattern {pattern!r} has no UMI base (N)", where=where,
                          hint="mark the UMI positions with N, e.g. NNNNNNNN")
    return p


def split_umi(seq: str, qual: str, pattern: str, *, three_prime: bool = False) -> tuple[str, str, str]:
    """``(umi, sequence, qualities)`` of one read under ``pattern``; the read must be at least as long."""
    n = len(pattern)
    if len(seq) < n:
        raise ValueError(f"{len(seq)} nt, shorter than the UMI pattern ({n} nt)")
    if three_prime:
        head_s, head_q, tail_s, tail_q = seq[len(seq) - n:], qual[len(seq) - n:], seq[:len(seq) - n], qual[:len(seq) - n]
    else:
        head_s, head_q, tail_s, tail_q = seq[:n], qual[:n], seq[n:], qual[n:]
    umi = "".join(b for b, c in zip(head_s, pattern, strict=True) if c == "N")
    keep_s = "".join(b for b, c in zip(head_s, pattern, strict=True) if c == "X")
    keep_q = "".join(b for b, c in zip(head_q, pattern, strict=True) if c == "X")
    if three_prime:
        return umi, tail_s + keep_s, tail_q + keep_q
    return umi, keep_s + tail_s, keep_q + tail_q


def _rename(name: str, umi: str, sep: str) -> str:
    parts = name.split(" ", 1)
    parts[0] = f"{read_id(parts[0])}{sep}{umi}"  # a /1 or /2 suffix would stop the mates' ids from matching
    return " ".join(parts)


def extract_umis(fq1: str | os.PathLike, fq2: str | os.PathLike | None, out1: str | os.PathLike,
                 out2: str | os.PathLike | None = None, *, pattern: str | None = None, pattern2: str | None = None,
                 three_prime: bool = False, sep: str = "_") -> dict:
    """Move the UMI bases of each read (pair) into its name, as ``umi_tools extract`` does.

    Parameters
    ----------
    fq1, fq2
        Input FASTQ (gzip or plain); ``fq2`` None for single-end.
    out1, out2
        Output FASTQ (gzip when the name ends in ``.gz``); ``out2`` is required with ``fq2``.
    pattern, pattern2
        umi_tools string patterns for read 1 and read 2 (at least one).
    three_prime
        Lay the patterns over the 3' end (umi_tools ``--3prime``).
    sep
        Separator between read id and UMI (umi_tools ``--umi-separator``; default ``_``).

    Returns
    -------
    dict
        ``{"reads": n, "umi_length": k, "distinct_umis": m}`` (``reads`` counts pairs for pairs).

    Raises
    ------
    ConfigError
        No or an invalid pattern; ``pattern2``/``out2`` without read 2.
    InputFormatError
        A read shorter than its pattern, or a UMI with N (file and record named).
    """
    pattern = parse_pattern(pattern, where="--umi-pattern")
    pattern2 = parse_pattern(pattern2, where="--umi-pattern2")
    if pattern is None and pattern2 is None:
        raise ConfigError("no UMI pattern given", where="--umi-pattern",
                          hint="give --umi-pattern (read 1) and/or --umi-pattern2 (read 2), e.g. NNNNNNNN")
    if fq2 is None and (pattern2 is not None or out2 is not None):
        raise ConfigError("a read-2 UMI pattern or output was given for single-end reads", where="--umi-pattern2",
                          hint="use --umi-pattern for single-end reads")
    if fq2 is not None and out2 is None:
        raise ConfigError("paired reads need a second output file", where="extract_umis(out2)")
    if not sep or any(ch.isspace() for ch in sep):
        raise ConfigError(f"UMI separator {sep!r} is empty or has white space", where="--umi-separator",
                          hint="use _ (umi_tools) or : (bcl2fastq)")
    n = 0
    umis: set[str] = set()
    umi_len = 0
    with contextlib.ExitStack() as stack:
        w1 = _writer(stack, out1)
        w2 = _writer(stack, out2) if out2 is not None else None
        for r1, r2 in iter_pairs(fq1, fq2):
            n += 1
            umi = ""
            s1, q1 = r1[1], r1[2]
            if pattern is not None:
                u, s1, q1 = _split_or_raise(r1, pattern, three_prime, fq1, n)
                umi += u
            s2 = q2 = None
            if r2 is not None:
                s2, q2 = r2[1], r2[2]
                if pattern2 is not None:
                    u, s2, q2 = _split_or_raise(r2, pattern2, three_prime, fq2, n)
                    umi += u
            if "N" in umi:
                src = fq1 if pattern is not None and "N" in umi[:pattern.count("N")] else fq2
                raise InputFormatError(f"record {n} ({read_id(r1[0])}): UMI {umi} contains N", where=str(src),
                                       hint="remove reads whose UMI has N before extraction, or re-demultiplex")
            umi_len = len(umi)
            umis.add(umi)
            w1.write(dnaio.SequenceRecord(_rename(r1[0], umi, sep), s1, q1))
            if w2 is not None and r2 is not None:
                w2.write(dnaio.SequenceRecord(_rename(r2[0], umi, sep), s2, q2))
    return {"reads": n, "umi_length": umi_len, "distinct_umis": len(umis)}


def _writer(stack: contextlib.ExitStack, out):
    """A dnaio FASTQ writer onto a temporary file that replaces ``out`` when the stack closes cleanly
    (gzip, level 1, when ``out`` ends in ``.gz``)."""
    tmp = stack.enter_context(atomic_path(out))
    raw = stack.enter_context(open(tmp, "wb"))  # noqa: SIM115 (closed by the stack)
    fh = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1)) if str(out).endswith(".gz") \
        else raw
    w = dnaio.open(fh, mode="w", fileformat="fastq")
    stack.callback(w.close)
    return w


def _split_or_raise(rec, pattern, three_prime, path, n):
    try:
        return split_umi(rec[1], rec[2], pattern, three_prime=three_prime)
    except ValueError as exc:
        raise InputFormatError(f"record {n} ({read_id(rec[0])}) is {exc}", where=str(path),
                               hint="check the UMI pattern against the kit's read structure") from None


def umi_from_name(name: str, *, sep: str = "_") -> str | None:
    """The UMI at the end of a read id (``id<sep>UMI``, umi_tools ``--extract-umi-method read_id``); None if absent."""
    rid = name.split(None, 1)[0] if name else ""
    if sep not in rid:
        return None
    umi = rid.rsplit(sep, 1)[1]
    return umi if _UMI_RE.match(umi) else None


def check_names_have_umis(path: str | os.PathLike, *, sep: str = "_", n: int = 1000) -> int:
    """Check that the first ``n`` reads of ``path`` carry a UMI in their name; returns the UMI length.

    Raises :class:`InputFormatError` naming the file and the first record without one, or with a
    UMI whose length differs from the first one's.
    """
    length = None
    for k, (rec, _) in enumerate(iter_pairs(path, None), start=1):
        if k > n:
            break
        umi = umi_from_name(rec[0], sep=sep)
        if umi is None:
            raise InputFormatError(f"record {k} ({rec[0].split(None, 1)[0]}) has no UMI at the end of its name "
                                   f"(expected id{sep}UMI)", where=str(Path(path)),
                                   hint="extract the UMIs with a pattern, or give the separator the names use")
        if length is None:
            length = len(umi)
        elif len(umi) != length:
            raise InputFormatError(f"record {k}: UMI {umi} is {len(umi)} nt, record 1's is {length} nt",
                                   where=str(Path(path)), hint="UMIs of one library have one length")
    if length is None:
        raise InputFormatError("no reads", where=str(Path(path)), hint="check the FASTQ")
    return length


def name_umi_stats(path: str | os.PathLike, *, sep: str = "_") -> tuple[int, int, int]:
    """``(reads, umi_length, distinct_umis)`` of the UMIs at the end of every read name of ``path``.

    Raises :class:`InputFormatError` naming the file and the first record without a UMI (or with one
    of another length than record 1's).
    """
    length = None
    umis: set[str] = set()
    k = 0
    for k, (rec, _) in enumerate(iter_pairs(path, None), start=1):
        umi = umi_from_name(rec[0], sep=sep)
        if umi is None:
            raise InputFormatError(f"record {k} ({rec[0].split(None, 1)[0]}) has no UMI at the end of its name "
                                   f"(expected id{sep}UMI)", where=str(Path(path)),
                                   hint="declare umi_in_name only for reads named with their UMI, give the "
                                        "separator they use (--umi-separator), or extract the UMI with a pattern")
        if length is None:
            length = len(umi)
        elif len(umi) != length:
            raise InputFormatError(f"record {k}: UMI {umi} is {len(umi)} nt, record 1's is {length} nt",
                                   where=str(Path(path)), hint="UMIs of one library have one length")
        if "N" in umi:
            raise InputFormatError(f"record {k} ({rec[0].split(None, 1)[0]}): UMI {umi} contains N",
                                   where=str(Path(path)), hint="remove reads whose UMI has N, or re-demultiplex")
        umis.add(umi)
    return k, length or 0, len(umis)


def sample_umi(sample, *, pattern: str | None = None, read: int | None = None, in_name: bool = False,
               sep: str = "_") -> UmiSpec:
    """The UMI set-up of one samplesheet sample: its ``umi_pattern``/``umi_read``/``umi_in_name`` cells,
    each one given overriding the run-wide value passed here (``cfrna run --umi-pattern`` ...).

    A sheet pattern ``none`` says the sample has no UMIs whatever the run-wide values; a sheet pattern
    turns off a run-wide ``in_name``, and ``umi_in_name=true`` a run-wide pattern.
    """
    where = f"sample {sample.sample}"
    s_pat, s_read, s_in = getattr(sample, "umi_pattern", None), getattr(sample, "umi_read", None), \
        getattr(sample, "umi_in_name", None)
    if s_pat == "none":
        return UmiSpec(sep=sep)
    if s_pat is not None:
        pat, nm = s_pat, False
    elif s_in is not None:
        pat, nm = (None, True) if s_in else (pattern, False)
    else:
        pat, nm = pattern, bool(in_name)
    return resolve_umi(pat, s_read if s_read is not None else read, in_name=nm, sep=sep,
                       paired=sample.fastq_2 is not None or not sample.fastq_1, where=where)

def sample_has_umis(sample, **run_defaults) -> bool:
    """True when the sample's reads carry UMIs (a pattern to extract, or UMIs in the names), taking the
    run-wide ``pattern``/``read``/``in_name``/``sep`` of :func:`sample_umi` into account."""
    return sample_umi(sample, **run_defaults).has_umis
