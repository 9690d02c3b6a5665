"""Tests of ``cfrna simulate``: determinism, file validity, planted truth, strandedness, CLI errors."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest

from cfrna.cli import main
from cfrna.errors import ConfigError
from cfrna.io.samplesheet import read_samplesheet
from cfrna.reference import read_gtf
from cfrna.simulate import simulate_cohort, simulate_counts
from cfrna.simulate.model import ERYTHROID_GENES, IFN_GENES, gene_catalog, make_design
from tests.conftest import require_tool

ADAPTER = "AGATCGGAAGAGC"
_COMP = str.maketrans("ACGTN", "TGCAN")


def revcomp(s: str) -> str:
    return s.translate(_COMP)[::-1]


def read_fastq(path: Path) -> list[tuple[str, str, str]]:
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines()
    assert len(lines) % 4 == 0
    return [(lines[i][1:], lines[i + 1], lines[i + 3]) for i in range(0, len(lines), 4)]


def parse_name(name: str) -> dict:
    sample, n, source, gene, chrom, span, strand = name.split(":")
    start, end = (int(x) for x in span.split("-"))
    return {"sample": sample, "n": int(n), "source": source, "gene": gene, "chrom": chrom, "start": start,
            "end": end, "strand": strand}


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------
# determinism


def test_same_seed_same_bytes_different_seed_different(tmp_path):
    kw = {"n_samples": 3, "reads_per_sample": 400, "paired": True, "n_genes": 300}
    simulate_cohort(tmp_path / "a", seed=5, **kw)
    simulate_cohort(tmp_path / "b", seed=5, **kw)
    simulate_cohort(tmp_path / "c", seed=6, **kw)
    da, db, dc = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert da == db
    assert set(da) == set(dc)
    assert da["fastq/s01_R1.fastq.gz"] != dc["fastq/s01_R1.fastq.gz"]
    assert da["genome.fa"] != dc["genome.fa"]
    assert not list((tmp_path / "a").rglob("*.tmp"))


# ------------------------------------------------------------------------------------------------
# the default cohort (conftest fixture: 12 samples x 20k single-end reads, seed 1)


def test_default_cohort_files_are_valid(sim_cohort):
    d = sim_cohort
    ann = read_gtf(d / "genes.gtf")
    genes = ann.genes
    assert 300 <= len(genes) <= 1000
    names = set(genes["gene_name"])
    for must in ("IFI27", "RSAD2", "ISG15", "HBB", "HBA1", "PPBP", "PF4", "CD38", "JCHAIN", "ELANE", "NPHS1",
                 "XIST", "RPS4Y1", "ACTB", "GAPDH", "MT-CO1", "MT-RNR2", "RNA18SN5", "RNA28SN5", "RNA5-8SN5"):
        assert must in names, must
    assert genes.loc[genes["gene_name"] == "XIST", "chrom"].item() == "chrX"
    assert genes.loc[genes["gene_name"] == "RPS4Y1", "chrom"].item() == "chrY"
    assert ann.mito_mask().sum() == 15
    assert set(genes.loc[ann.mito_mask(), "gene_biotype"]) == {"protein_coding", "Mt_rRNA"}
    assert ann.biotype_mask("rRNA").sum() >= 3
    assert set(genes["strand"]) == {"+", "-"}
    nuclear = genes[(genes["gene_biotype"] != "rRNA") & ~ann.mito_mask()]
    n_exons = ann.features.groupby("transcript_id").size()
    nuclear_tx = ann.features.loc[ann.features["gene_idx"].isin(nuclear.index), "transcript_id"].unique()
    assert n_exons.max() <= 10 and n_exons[nuclear_tx].min() >= 2  # 3-10 exons; an exon-skipping isoform may have 2
    assert (nuclear["n_features"] >= 3).all()
    assert ann.features["transcript_id"].nunique() > len(genes)  # some genes have two isoforms
    gtf_text = (d / "genes.gtf").read_text()
    assert 'gene_type "' in gtf_text and 'gene_biotype "' in gtf_text and "exon_number" in gtf_text
    truth_genes = pd.read_csv(d / "truth" / "genes.tsv", sep="\t")
    assert {"same_strand", "antisense"} <= set(truth_genes["overlap"].dropna())
    # FASTA + fai agree, realistic GC, genome a few Mb
    fa = pysam.FastaFile(str(d / "genome.fa"))
    assert set(fa.references) >= {"chr1", "chr2", "chr3", "chr4", "chr5", "chrX", "chrY", "chrM"}
    assert fa.get_reference_length("chrM") == 16569
    assert 2_000_000 <= sum(fa.lengths) <= 4_500_000
    s = fa.fetch("chr1")
    gc = (s.count("G") + s.count("C")) / len(s)
    assert 0.40 <= gc <= 0.46
    assert set(s) <= set("ACGT")
    # every annotated intron is GT-AG in the gene's orientation
    f = ann.features
    for _tx, ex in list(f.groupby("transcript_id"))[:60]:
        ex = ex.sort_values("start")
        for (e1, s2) in zip(ex["end"].to_numpy()[:-1], ex["start"].to_numpy()[1:], strict=True):
            intron = fa.fetch(str(ex["chrom"].iloc[0]), int(e1), int(s2) - 1)
            if ex["strand"].iloc[0] == "-":
                intron = revcomp(intron)
            assert intron[:2] == "GT" and intron[-2:] == "AG"


def test_default_cohort_design(sim_cohort):
    sheet = read_samplesheet(sim_cohort / "samplesheet.csv")
    meta = sheet.to_frame()
    assert len(meta) == 12
    assert all(s.fastq_2 is None for s in sheet.samples)
    assert set(meta["arm"]) == {"steroid_tapering", "steroid_maintenance"}
    assert (meta["flare"] == "flare").sum() >= 4
    assert meta.groupby("patient_id").size().max() >= 2
    for col in ("batch", "second_randomization", "steroid_dose_mg", "egfr", "sex", "months_to_flare",
                "flare_window", "flare_patient"):
        assert col in meta.columns
    assert (meta.loc[meta["flare"] == "flare", "months_to_flare"] == 0).all()
    assert meta.loc[meta["flare_patient"] == "no", "months_to_flare"].isna().all()
    assert set(meta["strandedness"]) == {"reverse", "auto"}
    # contrasts: flare paired on patient, arm unblocked; both full rank
    con = pd.read_csv(sim_cohort / "contrasts.csv", keep_default_na=False)
    assert list(con.columns) == ["id", "variable", "reference", "target", "blocking", "formula"]
    rows = con.set_index("id")
    assert rows.loc["flare_vs_no_flare", "blocking"] == "patient_id"
    assert rows.loc["arm", "reference"] == "steroid_maintenance"
    X = np.column_stack([pd.get_dummies(meta["patient_id"]).to_numpy(float), (meta["flare"] == "flare").to_numpy(float)])
    assert np.linalg.matrix_rank(X) == X.shape[1]
    X = np.column_stack([np.ones(len(meta)), (meta["arm"] == "steroid_tapering").to_numpy(float)])
    assert np.linalg.matrix_rank(X) == 2
    # planted bad samples: exactly one of each, never a flaring patient's sample
    truth = pd.read_csv(sim_cohort / "truth" / "samples.tsv", sep="\t", index_col="sample")
    bad = truth.loc[truth["planted_bad"] != "none", "planted_bad"]
    assert sorted(bad) == ["degraded", "gdna", "hemolysis"]
    assert (meta.loc[bad.index, "flare_patient"] == "no").all()
    assert (truth["library_strandedness"] == "reverse").all()
    assert truth.loc[meta.index[meta["strandedness"] == "auto"], "sheet_strandedness"].eq("auto").all()


def test_truth_matches_read_names(sim_cohort):
    truth = pd.read_csv(sim_cohort / "truth" / "samples.tsv", sep="\t", index_col="sample")
    counts = pd.read_csv(sim_cohort / "truth" / "gene_counts.tsv", sep="\t", index_col="gene_id")
    for sample in ("s01", truth.index[truth["planted_bad"] == "gdna"][0]):
        reads = read_fastq(sim_cohort / "fastq" / f"{sample}_R1.fastq.gz")
        assert len(reads) == 20000 == truth.at[sample, "reads"]
        info = pd.DataFrame([parse_name(r[0]) for r in reads])
        assert (info["sample"] == sample).all()
        frac = info["source"].value_counts(normalize=True)
        for src in ("gdna", "rrna", "mito"):
            assert frac.get(src, 0.0) == pytest.approx(truth.at[sample, f"{src}_fraction"], abs=1e-9)
        by_gene = info[info["source"] != "gdna"].groupby("gene").size()
        assert by_gene.reindex(counts.index, fill_value=0).to_numpy().tolist() == counts[sample].tolist()
        assert set(info["source"]) <= {"mrna", "pre", "mito", "rrna", "gdna"}
        # gDNA reads come from both genome strands equally
        g = info[info["source"] == "gdna"]
        assert abs((g["strand"] == "+").mean() - 0.5) < 0.1
    gd = truth.loc[truth["planted_bad"] == "gdna", "gdna_fraction"].item()
    assert 0.35 < gd < 0.45
    normal = truth.loc[truth["planted_bad"] == "none"]
    assert (normal["gdna_fraction"] < 0.08).all()
    assert (truth["rrna_fraction"] < 0.2).all() and (truth["rrna_fraction"] > 0.005).all()


def test_planted_biology(sim_cohort):
    d = sim_cohort
    de = pd.read_csv(d / "truth" / "de_genes.tsv", sep="\t")
    genes = pd.read_csv(d / "truth" / "genes.tsv", sep="\t")
    assert 0.05 <= len(de) / len(genes) <= 0.08
    assert (de["log2fc"].abs() >= 1.5).all()
    assert set(IFN_GENES) <= set(de["gene_name"])
    assert (de.loc[de["module"] == "interferon", "log2fc"] >= 2).all()
    gmt = (d / "truth" / "planted_gene_sets.gmt").read_text().splitlines()
    ifn_set = gmt[0].split("\t")
    assert ifn_set[0] == "PLANTED_IFN_FLARE_UP" and set(ifn_set[2:]) == set(IFN_GENES)
    counts = pd.read_csv(d / "truth" / "gene_counts.tsv", sep="\t", index_col="gene_id")
    meta = read_samplesheet(d / "samplesheet.csv").to_frame()
    truth = pd.read_csv(d / "truth" / "samples.tsv", sep="\t", index_col="sample")
    cpm = counts / counts.sum() * 1e6
    sym = genes.set_index("gene_id")["gene_name"]
    ifn = cpm[sym.reindex(cpm.index).isin(IFN_GENES).to_numpy()].sum()
    good = truth.index[truth["planted_bad"] == "none"]
    flare = [s for s in good if meta.at[s, "flare"] == "flare"]
    no = [s for s in good if meta.at[s, "flare"] == "no_flare"]
    assert ifn[flare].min() > 2 * ifn[no].max()
    # signature genes are counted at 20k reads
    assert (counts.loc[sym[sym.isin(IFN_GENES)].index, no].mean(axis=1) >= 5).all()
    ery = cpm[sym.reindex(cpm.index).isin(ERYTHROID_GENES).to_numpy()].sum()
    hemo = truth.index[truth["planted_bad"] == "hemolysis"][0]
    assert ery[hemo] > 5 * ery.drop(hemo).median()
    degraded = truth.index[truth["planted_bad"] == "degraded"][0]
    assert truth.at[degraded, "degradation"] > 5 * truth.loc[good, "degradation"].max()
    assert truth.at[degraded, "adapter_readthrough"] > 5 * truth.loc[good, "adapter_readthrough"].median()


def test_reads_reverse_stranded_with_adapters(sim_cohort):
    fa = pysam.FastaFile(str(sim_cohort / "genome.fa"))
    reads = read_fastq(sim_cohort / "fastq" / "s03_R1.fastq.gz")
    checked = readthrough = 0
    for name, seq, qual in reads[:4000]:
        assert len(seq) == len(qual) == 75
        assert min(qual) >= "!" and max(qual) <= "J"
        t = parse_name(name)
        if t["source"] not in ("pre", "gdna"):
            continue  # contiguous fragments only: the span is the fragment
        frag = fa.fetch(t["chrom"], t["start"] - 1, t["end"])
        mol = frag if t["strand"] == "+" else revcomp(frag)
        expect = revcomp(mol)[:75]  # dUTP: R1 reads the fragment's 3' end, antisense
        mism = sum(a != b for a, b in zip(seq, expect, strict=False))
        assert mism <= 4, (name, seq, expect)
        if len(frag) < 75:
            readthrough += 1
            assert seq[len(frag): len(frag) + len(ADAPTER)].count("N") == 0
            assert sum(a != b for a, b in zip(seq[len(frag):], ADAPTER, strict=False)) <= 2
        checked += 1
    assert checked > 500


def test_reads_align_to_their_truth_locus(sim_cohort):
    import mappy
    aligner = mappy.Aligner(str(sim_cohort / "genome.fa"), preset="splice:sr")
    placed = antisense = spliced = total = 0
    for name, seq, _q in read_fastq(sim_cohort / "fastq" / "s05_R1.fastq.gz")[:2000]:
        t = parse_name(name)
        cut = seq.find(ADAPTER)
        seq = seq if cut < 0 else seq[:cut]
        if len(seq) < 40 or t["source"] == "rrna":
            continue  # rRNA 5S copies are identical (multi-mapping by design)
        total += 1
        hits = list(aligner.map(seq))
        if not hits:
            continue
        h = hits[0]
        if h.ctg == t["chrom"] and t["start"] - 3 <= h.r_st + 1 and h.r_en <= t["end"] + 3:
            placed += 1
        antisense += h.strand == (-1 if t["strand"] == "+" else 1)
        spliced += "N" in h.cigar_str
    assert placed / total > 0.97
    assert antisense / total > 0.97
    assert 0.05 < spliced / total < 0.4


def test_assignable_truth_matches_featurecounts(sim_cohort, tmp_path):
    """truth/gene_counts_assignable.tsv is what featureCounts assigns from mappy alignments."""
    import subprocess

    import mappy
    fc = require_tool("featureCounts")
    aligner = mappy.Aligner(str(sim_cohort / "genome.fa"), preset="splice:sr")
    fa = pysam.FastaFile(str(sim_cohort / "genome.fa"))
    sam = tmp_path / "s01.sam"
    with sam.open("w") as out:
        out.write("@HD\tVN:1.6\n" + "".join(f"@SQ\tSN:{c}\tLN:{n}\n" for c, n in zip(fa.references, fa.lengths,
                                                                                       strict=True)))
        for name, seq, _q in read_fastq(sim_cohort / "fastq" / "s01_R1.fastq.gz"):
            cut = seq.find(ADAPTER)
            seq = seq if cut < 0 else seq[:cut]
            hits = list(aligner.map(seq)) if len(seq) >= 30 else []
            if not hits:
                continue
            h = hits[0]
            clip_l, clip_r = h.q_st, len(seq) - h.q_en
            if h.strand < 0:
                clip_l, clip_r = clip_r, clip_l
            cigar = (f"{clip_l}S" if clip_l else "") + h.cigar_str + (f"{clip_r}S" if clip_r else "")
            s = seq if h.strand > 0 else revcomp(seq)
            out.write(f"{name}\t{16 if h.strand < 0 else 0}\t{h.ctg}\t{h.r_st + 1}\t{h.mapq}\t{cigar}\t*\t0\t0\t"
                      f"{s}\t*\tNH:i:{len(hits)}\n")
    subprocess.run([fc, "-s", "2", "-a", str(sim_cohort / "genes.gtf"), "-o", str(tmp_path / "fc.tsv"), str(sam)],
                   check=True, capture_output=True)
    got = pd.read_csv(tmp_path / "fc.tsv", sep="\t", comment="#", index_col=0).iloc[:, -1]
    truth = pd.read_csv(sim_cohort / "truth" / "gene_counts_assignable.tsv", sep="\t", index_col=0)["s01"]
    mature = pd.read_csv(sim_cohort / "truth" / "gene_counts_mature.tsv", sep="\t", index_col=0)["s01"]
    genes = pd.read_csv(sim_cohort / "truth" / "genes.tsv", sep="\t", index_col=0)
    simple = genes.index[genes["overlap"].isna() & (genes["biotype"] != "rRNA")]
    keep = simple[truth[simple] >= 20]
    rel = (got[keep] - truth[keep]).abs() / truth[keep]
    assert len(keep) > 50 and rel.median() < 0.01 and rel.quantile(0.9) < 0.05
    assert (truth[simple] >= mature[simple]).all()  # pre-mRNA and gDNA add to exon counts
    assert abs(got.sum() - truth.sum()) / truth.sum() < 0.02


def test_paired_cohort(sim_cohort_pe):
    d = sim_cohort_pe
    sheet = read_samplesheet(d / "samplesheet.csv")
    assert len(sheet.samples) == 6 and all(s.paired for s in sheet.samples)
    fa = pysam.FastaFile(str(d / "genome.fa"))
    r1 = read_fastq(d / "fastq" / "s01_R1.fastq.gz")
    r2 = read_fastq(d / "fastq" / "s01_R2.fastq.gz")
    assert len(r1) == len(r2) == 10000
    assert [a[0] for a in r1] == [b[0] for b in r2]
    checked = 0
    for (name, s1, _q1), (_n2, s2, _q2) in zip(r1[:3000], r2[:3000], strict=True):
        t = parse_name(name)
        if t["source"] != "pre" or t["end"] - t["start"] + 1 < 75:
            continue
        frag = fa.fetch(t["chrom"], t["start"] - 1, t["end"])
        mol = frag if t["strand"] == "+" else revcomp(frag)
        assert sum(a != b for a, b in zip(s2, mol[:75], strict=True)) <= 4  # R2 sense, from the 5' end
        assert sum(a != b for a, b in zip(s1, revcomp(mol)[:75], strict=True)) <= 4
        checked += 1
    assert checked > 100
    con = pd.read_csv(d / "contrasts.csv", keep_default_na=False)
    assert set(con["id"]) == {"flare_vs_no_flare", "arm"}


def test_forward_and_unstranded_libraries(tmp_path):
    for lib in ("forward", "unstranded"):
        out = simulate_cohort(tmp_path / lib, n_samples=2, reads_per_sample=600, strandedness=lib, seed=3, n_genes=300)
        fa = pysam.FastaFile(str(out["genome"]))
        sense = anti = 0
        for name, seq, _q in read_fastq(out["fastq"]["s01"][0]):
            t = parse_name(name)
            if t["source"] != "pre" or t["end"] - t["start"] + 1 < 75:
                continue
            mol = fa.fetch(t["chrom"], t["start"] - 1, t["end"])
            mol = mol if t["strand"] == "+" else revcomp(mol)
            if sum(a != b for a, b in zip(seq, mol[:75], strict=True)) <= 4:
                sense += 1
            elif sum(a != b for a, b in zip(seq, revcomp(mol)[:75], strict=True)) <= 4:
                anti += 1
        if lib == "forward":
            assert anti == 0 and sense > 20
        else:
            assert sense > 10 and anti > 10
        truth = pd.read_csv(out["truth"] / "samples.tsv", sep="\t")
        assert (truth["library_strandedness"] == lib).all()


# ------------------------------------------------------------------------------------------------
# design for other cohort sizes


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 24])
def test_design_sizes(n):
    d = make_design(n, np.random.default_rng(0))
    assert len(d) == n and d.index.is_unique
    assert (d["flare"] == "flare").sum() >= 1
    bad = d[d["planted_bad"] != "none"]
    assert (bad["flare_patient"] == "no").all()
    assert bad["planted_bad"].is_unique
    if n >= 12:
        assert len(bad) == 3
    # every flaring patient has a sample at flare and one before it (paired design)
    fp = d[d["flare_patient"] == "yes"].groupby("patient_id")["flare"].agg(set)
    assert all(v == {"flare", "no_flare"} for v in fp)


def test_small_cohorts_contrasts(tmp_path):
    out = simulate_cohort(tmp_path / "four", n_samples=4, reads_per_sample=200, n_genes=250)
    con = pd.read_csv(out["contrasts"], keep_default_na=False)
    assert set(con["id"]) == {"flare_vs_no_flare", "arm"}
    meta = read_samplesheet(out["samplesheet"]).to_frame()
    assert (meta["flare"] == "flare").sum() == 2 and meta["arm"].value_counts().min() >= 2
    # two samples: no estimable contrast, so no contrasts.csv (a stale one is removed)
    (tmp_path / "four" / "fastq").rename(tmp_path / "old_fastq")
    out = simulate_cohort(tmp_path / "four", n_samples=2, reads_per_sample=200, n_genes=250)
    assert out["contrasts"] is None and not (tmp_path / "four" / "contrasts.csv").exists()
    assert len(read_samplesheet(out["samplesheet"]).samples) == 2


# ------------------------------------------------------------------------------------------------
# count-level simulator


def test_simulate_counts_model():
    counts, samples, truth = simulate_counts(seed=4)
    assert counts.shape == (2000, 24)
    assert counts.dtypes.map(lambda t: np.issubdtype(t, np.integer)).all()
    assert (counts.to_numpy() >= 0).all()
    assert list(counts.columns) == list(samples.index)
    assert list(truth["gene_id"]) == list(counts.index)
    for col in ("patient_id", "visit_month", "arm", "flare", "strandedness", "batch", "sex"):
        assert col in samples.columns
    assert 0.05 <= truth["is_de"].mean() <= 0.08
    assert set(truth.loc[truth["in_planted_set"], "gene_name"]) == set(IFN_GENES)
    assert 1.5e6 < counts.sum().median() < 2.7e6
    # the planted log2FC is recovered by a crude paired estimate on the IFN genes
    norm = np.log2(counts / counts.sum() * 1e6 + 1)
    fl = samples.index[samples["flare"] == "flare"]
    base = samples.index[(samples["flare_patient"] == "yes") & (samples["flare"] == "no_flare")]
    est = norm[fl].mean(axis=1) - norm[base].mean(axis=1)
    expressed = (truth["base"] > 20).to_numpy()
    est = est - np.median(est[expressed])  # median normalisation, as DESeq2's size factors
    ifn = truth["in_planted_set"].to_numpy()
    assert est[ifn].median() > 1.5
    assert np.corrcoef(est[ifn], truth.loc[ifn, "log2fc"])[0, 1] > 0.2
    null = ~truth["is_de"].to_numpy() & expressed & (truth["module"] == "filler").to_numpy()
    assert (np.abs(est[null]) > 1).mean() < 0.05
    assert truth.loc[truth["module"] == "tcell", "log2fc"].lt(0).all()
    half = simulate_counts(seed=4, effect_scale=0.5)[2]
    assert np.allclose(half["log2fc"], truth["log2fc"] * 0.5)
    again = simulate_counts(seed=4)[0]
    assert again.equals(counts)
    assert not simulate_counts(seed=5)[0].equals(counts)


def test_simulate_counts_unpaired_every_sample_own_patient():
    counts, samples, _truth = simulate_counts(n_samples=12, n_genes=400, depth=1e5, paired_patients=False)
    assert samples["patient_id"].is_unique
    assert (samples["flare"] == "flare").sum() == 4
    assert counts.shape == (400, 12)


def test_bad_parameters_raise_config_error(tmp_path):
    with pytest.raises(ConfigError):
        simulate_counts(n_genes=50)
    with pytest.raises(ConfigError):
        simulate_counts(depth=0)
    with pytest.raises(ConfigError):
        simulate_counts(effect_scale=-1)
    with pytest.raises(ConfigError):
        simulate_cohort(tmp_path / "x", n_samples=1)
    with pytest.raises(ConfigError):
        simulate_cohort(tmp_path / "x", reads_per_sample=5)
    with pytest.raises(ConfigError):
        simulate_cohort(tmp_path / "x", strandedness="sideways")
    with pytest.raises(ConfigError):
        gene_catalog(10, np.random.default_rng(0))


# ------------------------------------------------------------------------------------------------
# CLI


def test_cli_success_and_errors(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["simulate", "--outdir", str(out), "--samples", "3", "--reads-per-sample", "300", "--seed", "9",
                 "--genes", "300"]) == 0
    assert "samplesheet:" in capsys.readouterr().out
    assert (out / "samplesheet.csv").is_file() and (out / "fastq" / "s03_R1.fastq.gz").is_file()
    assert main(["simulate", "--outdir", str(tmp_path / "one"), "--samples", "1"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "--samples 2" in err and len(err.strip().splitlines()) == 1
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["simulate", "--outdir", str(blocker / "sub"), "--samples", "3"]) == 2
    assert "writable --outdir" in capsys.readouterr().err
    assert main(["simulate", "--outdir", str(tmp_path / "r"), "--reads-per-sample", "10"]) == 2
    assert main(["simulate", "--outdir", str(tmp_path / "s"), "--strandedness", "sideways"]) == 2
    assert main(["simulate", "--outdir", str(tmp_path / "t"), "--samples", "many"]) == 2


# ------------------------------------------------------------------------------------------------
# the longitudinal cohort (cfrna.simulate.longitudinal)


def test_longitudinal_design_visits_flares_windows():
    from cfrna.simulate.longitudinal import LongitudinalSpec, longitudinal_design

    spec = LongitudinalSpec(n_patients=20, visits=(0, 3, 6, 12, 18), flare_fraction=0.4)
    d = longitudinal_design(spec, np.random.default_rng(3))
    assert len(d) == 100 and d.index.is_unique
    per = d.groupby("patient_id")
    assert (per["visit_month"].apply(list) == pd.Series([[0, 3, 6, 12, 18]] * 20, index=per.size().index)).all()
    flaring = d[d["flare_patient"] == "yes"]["patient_id"].unique()
    assert len(flaring) == 8
    # flaring patients split evenly between the arms; arms alternate 1:1
    arm_of = d.drop_duplicates("patient_id").set_index("patient_id")["arm"]
    assert arm_of.value_counts().tolist() == [10, 10]
    assert arm_of[flaring].value_counts().tolist() == [4, 4]
    for p, g in d.groupby("patient_id"):
        at = g[g["flare"] == "flare"]
        if p in flaring:
            assert len(at) == 1 and at["visit_month"].item() > 0
            fm = at["visit_month"].item()
            assert at["days_to_flare"].item() == 0 and at["flare_window"].item() == "at_flare"
            before = g[g["visit_month"] < fm]
            assert (before["days_to_flare"] == ((fm - before["visit_month"]) * 30.44).round()).all()
            pre = g[g["flare_window"] == "pre_flare"]
            assert len(pre) >= 1 and (pre["days_to_flare"] <= spec.preflare_days).all()
            assert (pre["days_to_flare"] > 0).all()
            after = g[g["visit_month"] > fm]
            assert after["days_to_flare"].isna().all() and (after["flare_window"] == "remission").all()
        else:
            assert at.empty and (g["flare_window"] == "no_flare_patient").all() and g["days_to_flare"].isna().all()
            assert g["sex"].nunique() == 1 and g["arm"].nunique() == 1
    # planted bad samples only in never-flaring patients, one each
    bad = d[d["planted_bad"] != "none"]
    assert sorted(bad["planted_bad"]) == ["degraded", "gdna", "hemolysis"]
    assert (bad["flare_patient"] == "no").all()


@pytest.mark.parametrize("icc", [0.2, 0.8])
def test_longitudinal_icc_recovered(icc):
    from cfrna.simulate.longitudinal import estimate_icc, simulate_longitudinal_counts

    counts, samples, genes = simulate_longitudinal_counts(n_patients=30, visits=(0, 3, 6, 12), icc=icc,
                                                          n_genes=1200, seed=7)
    lib = counts.sum(axis=0).to_numpy()
    logx = np.log((counts.to_numpy() + 0.5) / lib)
    null = ((genes["kind"] == "none") & (genes["source"] == "mrna") & (genes["sex_specific"] == "")).to_numpy()
    deep = counts.to_numpy().mean(axis=1) > 1000  # Poisson noise negligible
    est = estimate_icc(logx[null & deep], samples["patient_id"].to_numpy())
    assert (null & deep).sum() > 100
    assert abs(np.median(est) - icc) < 0.08, np.median(est)
    g = genes.set_index("gene_id")
    assert np.allclose(g["sigma_patient"] ** 2 / (g["sigma_patient"] ** 2 + g["sigma_within"] ** 2), icc)


def test_longitudinal_planted_effects_recovered():
    from cfrna.simulate.longitudinal import simulate_longitudinal_counts

    counts, s, genes = simulate_longitudinal_counts(n_patients=40, visits=(0, 3, 6, 12), icc=0.5, n_genes=1500,
                                                    seed=8)
    g = genes.set_index("gene_id")
    x = np.log2((counts + 0.5) / counts.sum(axis=0) * 1e6)
    # within-patient: each flaring patient's flare visit against the mean of its other visits
    fl = s[s["flare_patient"] == "yes"]
    diffs = []
    for _p, v in fl.groupby("patient_id"):
        diffs.append(x[v.index[v["flare"] == "flare"]].mean(axis=1) - x[v.index[v["flare"] != "flare"]].mean(axis=1))
    within = pd.concat(diffs, axis=1).mean(axis=1)
    kinds = {"flare": within,
             "flare_patient": x.loc[:, s["flare_patient"] == "yes"].mean(axis=1)
             - x.loc[:, s["flare_patient"] == "no"].mean(axis=1),
             "arm": x.loc[:, s["arm"] == "steroid_tapering"].mean(axis=1)
             - x.loc[:, s["arm"] == "steroid_maintenance"].mean(axis=1),
             "preflare": x.loc[:, s["flare_window"] == "pre_flare"].mean(axis=1)
             - x.loc[:, s["flare_window"] == "remission"].mean(axis=1)}
    for kind, est in kinds.items():
        planted = g.index[g["kind"] == kind]
        assert len(planted) >= 20, kind
        r = np.corrcoef(est[planted], g.loc[planted, f"log2fc_{kind}"])[0, 1]
        assert r > 0.85, (kind, r)
        assert (np.sign(est[planted]) == np.sign(g.loc[planted, f"log2fc_{kind}"])).mean() > 0.9, kind
    # the kinds are disjoint and the null genes carry no effect
    lfc = g[[c for c in g.columns if c.startswith("log2fc_")]]
    assert ((lfc != 0).sum(axis=1) <= 1).all()
    assert (lfc[g["kind"] == "none"] == 0).all().all()
    assert (g["is_de"] == (g["kind"] != "none")).all()


def test_longitudinal_count_cohort_files(tmp_path):
    from cfrna.de.contrasts import read_contrasts
    from cfrna.io.tables import read_gene_matrix

    kw = {"n_patients": 8, "visits": (0, 3, 6), "counts_only": True, "reads_per_sample": 50000, "n_genes": 400,
          "flare_fraction": 0.5}
    paths = simulate_cohort(tmp_path / "a", seed=2, **kw)
    simulate_cohort(tmp_path / "b", seed=2, **kw)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert not (tmp_path / "a" / "fastq").exists() and not (tmp_path / "a" / "genome.fa").exists()
    counts = read_gene_matrix(paths["counts"])
    sheet = pd.read_csv(paths["samplesheet"])
    assert "fastq_1" not in sheet.columns and "days_to_flare" in sheet.columns
    assert list(counts.columns) == list(sheet["sample"]) and counts.shape == (400, 24)
    contrasts = pd.read_csv(paths["contrasts"])
    assert list(contrasts["id"]) == ["flare_vs_no_flare", "pre_flare_vs_never", "flaring_vs_never", "arm",
                                     "arm_x_flare"]
    assert contrasts.set_index("id").loc["flare_vs_no_flare", "formula"] == "~ patient_id + flare"
    assert (contrasts.set_index("id").drop("flare_vs_no_flare")["formula"].str.contains(r"\(1 \| patient_id\)")).all()
    truth = pd.read_csv(paths["truth"] / "contrast_truth.tsv", sep="\t")
    assert set(truth["contrast"]) == set(contrasts["id"])
    for cid, t in truth.groupby("contrast"):
        assert t["planted"].sum() > 0, cid
        assert not (t["planted"] & t["null"]).any(), cid
    genes = pd.read_csv(paths["truth"] / "longitudinal_genes.tsv", sep="\t")
    assert set(genes["kind"]) == {"none", "flare", "preflare", "flare_patient", "arm", "arm_flare"}
    params = json.loads((paths["truth"] / "params.json").read_text())
    assert params["icc"] == 0.5 and params["visits"] == [0, 3, 6] and params["n_flaring_patients"] == 4
    # the contrasts file parses (design checks with the samplesheet are the DE engines' tests)
    assert [c.id for c in read_contrasts(paths["contrasts"])] == list(contrasts["id"])


def test_longitudinal_read_cohort(tmp_path):
    paths = simulate_cohort(tmp_path, n_patients=4, visits=(0, 6), reads_per_sample=300, n_genes=300, seed=4)
    sheet = read_samplesheet(paths["samplesheet"])  # FASTQ files exist
    df = sheet.to_frame()
    assert len(df) == 8 and df["patient_id"].nunique() == 4
    assert {"days_to_flare", "flare_window", "flare_patient"} <= set(df.columns)
    assert (df["flare"] == "flare").sum() == 2
    for f in ("longitudinal_genes.tsv", "contrast_truth.tsv", "visits.tsv", "gene_counts.tsv", "de_genes.tsv"):
        assert (paths["truth"] / f).is_file(), f
    params = json.loads((paths["truth"] / "params.json").read_text())
    assert params["design"] == "longitudinal" and params["n_patients"] == 4
    assert len(read_fastq(paths["fastq"]["s01"][0])) == 300


def test_longitudinal_bad_parameters(tmp_path):
    from cfrna.simulate.longitudinal import parse_visits, simulate_longitudinal_counts

    for kw in ({"n_patients": 3}, {"icc": 1.0}, {"icc": -0.1}, {"visits": (0,)}, {"visits": (3, 0)},
               {"visits": (0, 3.5)}, {"flare_fraction": 1.0}, {"effect_scale": -1.0}, {"depth": 0},
               {"n_patients": 300, "visits": (0, 3, 6, 12)}):
        with pytest.raises(ConfigError):
            simulate_longitudinal_counts(**kw)
    with pytest.raises(ConfigError, match="--visits"):
        parse_visits("0,three")
    with pytest.raises(ConfigError, match="--patients"):
        simulate_cohort(tmp_path / "x", n_patients=2)


def test_cli_longitudinal_options(tmp_path, capsys):
    out = tmp_path / "long"
    assert main(["simulate", "--outdir", str(out), "--patients", "6", "--visits", "0,3,6", "--icc", "0.3",
                 "--counts-only", "--genes", "400"]) == 0
    printed = capsys.readouterr().out
    assert "counts:" in printed and "genome:" not in printed
    assert json.loads((out / "truth" / "params.json").read_text())["icc"] == 0.3
    for argv, needle in ((["--patients", "6", "--samples", "12"], "--samples and --patients"),
                         (["--icc", "0.3"], "need(s) --patients"),
                         (["--patients", "6", "--icc", "1"], "--icc"),
                         (["--patients", "6", "--visits", "6,0"], "--visits"),
                         (["--patients", "6", "--visits", "0,x"], "--visits"),
                         (["--patients", "2"], "--patients")):
        assert main(["simulate", "--outdir", str(tmp_path / "bad"), *argv]) == 2, argv
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_demo_rejects_both_designs(tmp_path, capsys):
    assert main(["demo", "--outdir", str(tmp_path / "d"), "--samples", "4", "--patients", "4"]) == 2
    assert "--samples" in capsys.readouterr().err


def test_demo_cohort_sized_for_every_table(tmp_path, monkeypatch):
    """``cfrna demo``'s default cohort: every trial contrast is estimable after the planted QC failures
    are excluded, and the headline contrast's design stays fittable with the three blood-cell
    scores added (its sensitivity table; the former 12-sample cohort had 9 coefficients for 9 samples)."""
    import cfrna.pipeline._demo_cli as demo
    from cfrna.de.contrasts import _check_rank, _design_matrix, check_contrast, read_contrasts

    seen = {}

    def fake_run(opts):
        seen["opts"] = opts
        return {"failed": [], "report": str(tmp_path / "report.html")}

    monkeypatch.setattr(demo, "run_pipeline", fake_run)
    assert main(["demo", "--outdir", str(tmp_path / "d"), "--reads-per-sample", "300", "--no-progress"]) == 0
    opts = seen["opts"]
    cohort = tmp_path / "d" / "input"
    assert opts.contrasts == str(cohort / "contrasts.csv")
    samples = read_samplesheet(cohort / "samplesheet.csv").to_frame()
    assert len(samples) == 24 and samples["patient_id"].nunique() == 8
    bad = json.loads((cohort / "truth" / "params.json").read_text())["planted_bad"]
    excluded = {s: f"planted {k}" for k, s in bad.items()}
    assert len(excluded) == 3
    contrasts = read_contrasts(opts.contrasts)
    assert [c.id for c in contrasts] == ["flare_vs_no_flare", "pre_flare_vs_never", "flaring_vs_never", "arm",
                                         "arm_x_flare"]
    summaries = {c.id: check_contrast(c, samples, excluded=excluded) for c in contrasts}
    head = summaries["flare_vs_no_flare"]
    assert head.method == "deseq2" and head.formula == "~ patient_id + flare"
    assert all(summaries[c].method == "limma_voom" and summaries[c].random_effect == "patient_id"
               for c in ("pre_flare_vs_never", "flaring_vs_never", "arm", "arm_x_flare"))
    scores = pd.DataFrame(np.random.default_rng(0).normal(size=(len(head.samples), 3)), index=head.samples,
                          columns=["score_erythroid", "score_platelet", "score_neutrophil"])
    meta = head.metadata.join(scores)
    formula = head.formula + " + " + " + ".join(scores.columns)
    dm = _design_matrix(formula, meta, where="demo", cid=head.contrast.id)
    _check_rank(dm, list(meta.columns), head.contrast, formula)  # raises when not fittable
    assert dm.shape[0] - dm.shape[1] >= 5  # residual degrees of freedom left
    # 10,000 reads per sample: no more reads than the former 12 x 20,000 cohort
    assert len(read_fastq(cohort / "fastq" / "s01_R1.fastq.gz")) == 300
