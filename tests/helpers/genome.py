"""A toy genome (two random contigs) and its GTF for the index and alignment tests."""

from __future__ import annotations

import random


def toy_genome(tmp_path, *, seed: int = 7):
    """Write toy.fa (chrA 6 kb, chrB 3 kb) and toy.gtf (3 genes) into ``tmp_path``; returns (fasta, gtf, sequences)."""
    rng = random.Random(seed)
    seq = {c: "".join(rng.choice("ACGT") for _ in range(n)) for c, n in (("chrA", 6000), ("chrB", 3000))}
    fa = tmp_path / "toy.fa"
    fa.write_text("".join(f">{c} description\n" + "\n".join(s[i:i + 60] for i in range(0, len(s), 60)) + "\n"
                          for c, s in seq.items()))
    gtf = tmp_path / "toy.gtf"
    rows = [("chrA", 1001, 1200, "+", "g1", "t1"), ("chrA", 1601, 1800, "+", "g1", "t1"),
            ("chrA", 2401, 2600, "+", "g1", "t1"), ("chrB", 501, 700, "-", "g2", "t2"),
            ("chrB", 1101, 1300, "-", "g2", "t2"), ("chrB", 2001, 2100, "-", "g3", "t3")]
    gtf.write_text("".join(f'{c}\ttest\texon\t{s}\t{e}\t.\t{st}\t.\tgene_id "{g}"; transcript_id "{t}";\n'
                           for c, s, e, st, g, t in rows))
    return fa, gtf, seq
