"""Contrasts file parsing and design validation (one test per bad input)."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from cfrna.de.contrasts import Contrast, check_contrast, read_contrasts
from cfrna.errors import ConfigError

HEADER = "id,variable,reference,target,blocking,formula\n"


def _samples(n_patients: int = 4) -> pd.DataFrame:
    """Paired trial-like metadata: each patient has a no_flare and a flare visit."""
    rows = []
    for p in range(n_patients):
        arm = "steroid_tapering" if p % 2 == 0 else "steroid_maintenance"
        for v, fl in ((0, "no_flare"), (3, "flare")):
            rows.append({"sample": f"P{p}_{v}", "patient_id": f"P{p}", "visit_month": float(v), "arm": arm,
                         "flare": fl, "batch": "B1" if fl == "no_flare" else "B2", "batch2": f"b{p % 2}",
                         "steroid_dose_mg": 10.0 - v + p, "days_to_flare": 90 - 30 * v})
    return pd.DataFrame(rows).set_index("sample")


def _write(tmp_path, body: str, header: str = HEADER):
    p = tmp_path / "contrasts.csv"
    p.write_text(header + body)
    return p


def _one(tmp_path, body: str, header: str = HEADER) -> Contrast:
    return read_contrasts(_write(tmp_path, body, header))[0]


# ---- reading ---------------------------------------------------------------------------------

def test_read_contrasts_fields(tmp_path):
    cs = read_contrasts(_write(tmp_path, "flare,flare,no_flare,flare,patient_id;arm,\n"
                                         "# a comment line\n\n"
                                         "inter,flare,no_flare,flare,,arm * flare\n"))
    assert [c.id for c in cs] == ["flare", "inter"]
    assert cs[0].blocking == ("patient_id", "arm") and cs[0].formula is None
    assert cs[0].where.endswith("contrasts.csv:2")
    assert cs[1].formula == "~ arm * flare" and cs[1].line == 5


def test_read_contrasts_with_samples_validates(tmp_path):
    p = _write(tmp_path, "f,flare,no_flare,flare,patient_id,\nbad,flare,no_flare,flared,,\n")
    with pytest.raises(ConfigError, match=r"contrasts.csv:3: contrast 'bad': target level 'flared'"):
        read_contrasts(p, _samples())


@pytest.mark.parametrize(("header", "body", "pattern"), [
    ("id,variable,reference\n", "a,flare,no_flare\n", r":1: missing required column\(s\): target"),
    ("id,variable,reference,target,colour\n", "a,flare,no_flare,flare,red\n", r":1: unknown column\(s\): colour"),
    (HEADER, "a,flare,no_flare,flare,,\na,arm,x,y,,\n", r":3: duplicate contrast id 'a' \(first on line 2\)"),
    (HEADER, "a b,flare,no_flare,flare,,\n", r":2: contrast id 'a b' has characters"),
    (HEADER, "a,,no_flare,flare,,\n", r":2: column 'variable' is empty"),
    (HEADER, "a,flare,flare,flare,,\n", r":2: contrast 'a': reference and target are both 'flare'"),
    (HEADER, "a,flare,no_flare,flare\n", r":2: row has 4 fields but the header has 6"),
    (HEADER, "", r"contrasts file has a header but no contrasts"),
    ("", "", r"contrasts file is empty"),
])
def test_read_contrasts_bad_file(tmp_path, header, body, pattern):
    with pytest.raises(ConfigError, match=pattern) as ei:
        read_contrasts(_write(tmp_path, body, header))
    assert "\n" not in ei.value.one_line()
    assert ei.value.exit_code == 2


def test_read_contrasts_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read contrasts file"):
        read_contrasts(tmp_path / "nope.csv")


# ---- design checks ---------------------------------------------------------------------------

def test_check_contrast_paired_summary(tmp_path):
    s = check_contrast(_one(tmp_path, "f,flare,no_flare,flare,patient_id,\n"), _samples())
    assert s.formula == "~ patient_id + flare" and s.coefficient == "flare[T.flare]"
    assert s.groups == {"no_flare": 4, "flare": 4}
    assert list(s.metadata["flare"].cat.categories) == ["no_flare", "flare"]  # reference level first
    assert "f: flare n=4 vs no_flare n=4" in s.describe()


def test_reference_level_is_the_base_even_when_sorted_after_target(tmp_path):
    s = check_contrast(_one(tmp_path, "f,flare,flare,no_flare,,\n"), _samples())
    assert s.coefficient == "flare[T.no_flare]"
    assert list(s.metadata["flare"].cat.categories) == ["flare", "no_flare"]


def test_unknown_variable_column(tmp_path):
    with pytest.raises(ConfigError, match=r"contrasts.csv:2: contrast 'f': unknown variable column 'flair' "
                                          r"\(available columns: .*flare"):
        check_contrast(_one(tmp_path, "f,flair,no_flare,flare,,\n"), _samples())


def test_unknown_blocking_column(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown blocking column 'patient'"):
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,patient,\n"), _samples())


def test_unknown_level(tmp_path):
    with pytest.raises(ConfigError, match=r"reference level 'none' not found in column 'flare' \(levels present: "
                                          r"flare, no_flare\)"):
        check_contrast(_one(tmp_path, "f,flare,none,flare,,\n"), _samples())


def test_fewer_than_two_samples_per_group(tmp_path):
    df = _samples()
    df.loc[["P1_3", "P2_3", "P3_3"], "flare"] = "no_flare"
    with pytest.raises(ConfigError, match=r"group flare=flare has 1 sample\(s\); at least 2 are needed"):
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,,\n"), df)


def test_confounded_with_batch_names_columns(tmp_path):
    with pytest.raises(ConfigError, match=r"rank-deficient .*flare is confounded with batch") as ei:
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,batch,\n"), _samples())
    assert "dependent columns: " in str(ei.value)


def test_confounded_with_patient_id(tmp_path):
    df = _samples()
    df["flare"] = ["flare" if p in ("P0", "P1") else "no_flare" for p in df["patient_id"]]
    with pytest.raises(ConfigError, match=r"flare is confounded with patient_id"):
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,patient_id,\n"), df)


def test_confounded_covariates_without_the_variable(tmp_path):
    df = _samples()
    df["site"] = df["arm"].map({"steroid_tapering": "S1", "steroid_maintenance": "S2"})
    with pytest.raises(ConfigError, match=r"arm, site are confounded with each other|site, arm are confounded"):
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,arm;site,\n"), df)


def test_invalid_formula(tmp_path):
    with pytest.raises(ConfigError, match=r"contrasts.csv:2: invalid formula '~ arm \+\* flare'"):
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,,arm +* flare\n"), _samples())


def test_formula_unknown_column(tmp_path):
    with pytest.raises(ConfigError, match=r"uses unknown column\(s\) dose"):
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,,~ dose + flare\n"), _samples())


def test_formula_without_variable(tmp_path):
    with pytest.raises(ConfigError, match=r"does not contain the contrast variable 'flare'"):
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,,~ arm\n"), _samples())


def test_missing_value_in_covariate(tmp_path):
    df = _samples()
    df["egfr"] = [90.0] * 7 + [float("nan")]
    with pytest.raises(ConfigError, match=r"design column 'egfr' has missing values for sample\(s\) P3_3"):
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,egfr,\n"), df)


def test_empty_variable_rows_are_dropped_and_logged(tmp_path, caplog):
    df = _samples(5)
    df.loc[["P4_0", "P4_3"], "flare"] = ""
    with caplog.at_level(logging.INFO, logger="cfrna"):
        s = check_contrast(_one(tmp_path, "f,flare,no_flare,flare,,\n"), df)
    assert s.groups == {"no_flare": 4, "flare": 4}
    assert s.dropped == {"P4_0": "empty flare", "P4_3": "empty flare"}
    assert "2 sample(s) with empty 'flare'" in caplog.text


def test_empty_group_after_qc_exclusion_names_samples(tmp_path):
    df = _samples(3)
    excluded = {"P0_3": "mapping_rate<0.5", "P1_3": "gdna"}
    with pytest.raises(ConfigError, match=r"group flare=flare has 1 sample\(s\) after QC exclusion "
                                          r"\(excluded: P0_3, P1_3\).*--keep-failed"):
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,,\n"), df, excluded=excluded)


def test_subset_pre_flare_window(tmp_path):
    header = "id,variable,reference,target,blocking,formula,subset\n"
    c = _one(tmp_path, "pre,visit_month,3.0,0.0,,,days_to_flare >= 0 and arm == 'steroid_tapering'\n", header)
    df = _samples(6)
    df["visit_month"] = df["visit_month"].astype(str)
    s = check_contrast(c, df)
    assert s.groups == {"3.0": 3, "0.0": 3}
    assert all("outside subset" in why for why in s.dropped.values()) and len(s.dropped) == 6


def test_invalid_subset(tmp_path):
    header = "id,variable,reference,target,blocking,formula,subset\n"
    with pytest.raises(ConfigError, match=r"invalid subset 'nonexistent > 3'"):
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,,,nonexistent > 3\n", header), _samples())


def test_interaction_contrast_with_coefficient(tmp_path):
    header = "id,variable,reference,target,blocking,formula,coefficient\n"
    c = _one(tmp_path, "ix,flare,no_flare,flare,,~ arm * flare,"
                       "arm[T.steroid_tapering]:flare[T.flare]\n", header)
    s = check_contrast(c, _samples(4))
    assert s.coefficient == "arm[T.steroid_tapering]:flare[T.flare]"
    assert "arm[T.steroid_tapering]:flare[T.flare]" in s.design_columns


def test_bad_coefficient(tmp_path):
    header = "id,variable,reference,target,blocking,formula,coefficient\n"
    with pytest.raises(ConfigError, match=r"coefficient 'arm:flare' is not a column of the design matrix "
                                          r"\(design columns: Intercept"):
        check_contrast(_one(tmp_path, "ix,flare,no_flare,flare,,~ arm * flare,arm:flare\n", header), _samples())


def test_interaction_with_empty_cell_is_rank_deficient(tmp_path):
    df = _samples(4)
    df = df.drop(index=["P0_3", "P2_3"])  # no flare sample in the tapering arm
    with pytest.raises(ConfigError, match=r"rank-deficient.*are all zero"):
        check_contrast(_one(tmp_path, "ix,flare,no_flare,flare,,~ arm * flare\n"), df)


def test_no_residual_degrees_of_freedom(tmp_path):
    df = _samples(2)
    df["x"] = [1.0, 2.0, 4.0, 8.0]
    with pytest.raises(ConfigError, match=r"no residual degrees of freedom"):
        check_contrast(_one(tmp_path, "f,flare,no_flare,flare,patient_id;x,\n"), df)


def test_continuous_covariate_is_numeric(tmp_path):
    s = check_contrast(_one(tmp_path, "f,flare,no_flare,flare,steroid_dose_mg;batch2,\n"), _samples())
    assert s.metadata["steroid_dose_mg"].dtype == float
    assert "steroid_dose_mg" in s.design_columns


def test_patient_blocking_with_between_patient_factor_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"patient_id, arm are confounded with each other"):
        check_contrast(_one(tmp_path, "ix,flare,no_flare,flare,,~ patient_id + arm * flare\n"), _samples())


def test_pre_flare_window_contrast_on_simulated_sheet(tmp_path):
    """The docs/de.md pre-flare example, through the real samplesheet reader (numeric extras typed)."""
    from cfrna.io.samplesheet import read_samplesheet
    from cfrna.simulate import simulate_counts

    _, samples, _ = simulate_counts(n_samples=24, n_genes=300, seed=1)
    sheet = samples.drop(columns=["planted_bad"]).copy()
    sheet.insert(5, "fastq_1", [f"{s}.fq.gz" for s in sheet.index])
    sheet.insert(6, "fastq_2", "")
    sheet.reset_index().to_csv(tmp_path / "samplesheet.csv", index=False)
    frame = read_samplesheet(tmp_path / "samplesheet.csv", check_files=False).to_frame()
    header = "id,variable,reference,target,blocking,formula,subset,coefficient\n"
    body = ('pre_flare,flare_window,no_flare_patient,pre_flare,,,"flare_window != \'at_flare\' and '
            '(months_to_flare <= 6 or flare_window == \'no_flare_patient\')",\n')
    s = check_contrast(_one(tmp_path, body, header), frame)
    pre = frame[(frame["flare_window"] == "pre_flare") & (frame["months_to_flare"] <= 6)]
    assert s.groups["pre_flare"] == len(pre) >= 2
    assert s.groups["no_flare_patient"] == int((frame["flare_window"] == "no_flare_patient").sum())
    assert not set(s.samples) & set(frame.index[frame["flare_window"] == "at_flare"])


# ---- random intercept and method (limma_voom) -------------------------------------------------

M_HEADER = "id,variable,reference,target,blocking,formula,method\n"


def _trial(n_patients: int = 6) -> pd.DataFrame:
    """Three visits per patient; flare only in the 'flarer' patients; arm between patients."""
    rows = []
    for p in range(n_patients):
        arm = "steroid_tapering" if p % 2 == 0 else "steroid_maintenance"
        flarer = p < n_patients // 2
        for v in range(3):
            rows.append({"sample": f"P{p}_{v}", "patient_id": f"P{p}", "arm": arm,
                         "flare": "flare" if (flarer and v == 2) else "no_flare",
                         "flare_status": "flaring" if flarer else "never_flaring"})
    return pd.DataFrame(rows).set_index("sample")


def test_random_intercept_selects_limma_voom(tmp_path):
    c = _one(tmp_path, 'arm,arm,steroid_maintenance,steroid_tapering,,~ arm + (1 | patient_id),\n', M_HEADER)
    s = check_contrast(c, _trial())
    assert (s.method, s.random_effect, s.formula) == ("limma_voom", "patient_id", "~ arm")
    assert s.full_formula == "~ arm + (1 | patient_id)"
    assert s.design_columns == ["Intercept", "arm[T.steroid_tapering]"]
    assert list(s.metadata["patient_id"][:3]) == ["P0", "P0", "P0"]


@pytest.mark.parametrize(("formula", "fixed", "coef"), [
    ("~ (1|patient_id) + flare_status", "~ flare_status", "flare_status[T.flaring]"),
    ("~ arm * flare + (1 | patient_id)", "~ arm * flare", "arm[T.steroid_tapering]:flare[T.flare]"),
])
def test_between_patient_designs_with_random_patient(tmp_path, formula, fixed, coef):
    var, ref, tgt = (("flare_status", "never_flaring", "flaring") if "flare_status" in formula
                     else ("flare", "no_flare", "flare"))
    header = "id,variable,reference,target,formula,coefficient\n"
    c = _one(tmp_path, f'b,{var},{ref},{tgt},"{formula}",{coef}\n', header)
    s = check_contrast(c, _trial())
    assert (s.method, s.formula, s.coefficient) == ("limma_voom", fixed, coef)


def test_fixed_patient_block_with_between_factor_points_to_random_intercept(tmp_path):
    c = _one(tmp_path, "b,flare_status,never_flaring,flaring,patient_id,,\n", M_HEADER)
    with pytest.raises(ConfigError, match=r"contrasts.csv:2: .*flare_status is confounded with patient_id.*"
                                          r"use a random intercept instead, formula '~ flare_status \+ "
                                          r"\(1 \| patient_id\)'"):
        check_contrast(c, _trial())


def test_method_column_forces_limma_voom_without_random_effect(tmp_path):
    s = check_contrast(_one(tmp_path, "w,flare,no_flare,flare,patient_id,,limma_voom\n", M_HEADER), _trial())
    assert (s.method, s.random_effect, s.formula) == ("limma_voom", None, "~ patient_id + flare")


def test_method_deseq2_default(tmp_path):
    s = check_contrast(_one(tmp_path, "w,flare,no_flare,flare,patient_id,,\n", M_HEADER), _trial())
    assert (s.method, s.random_effect) == ("deseq2", None)


def test_unknown_method(tmp_path):
    with pytest.raises(ConfigError, match=r"contrasts.csv:2: contrast 'w': unknown method 'dream'.*deseq2, limma_voom"):
        _one(tmp_path, "w,flare,no_flare,flare,,,dream\n", M_HEADER)


def test_random_term_with_deseq2_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match=r"contrasts.csv:2: .*\(1 \| patient_id\) needs method limma_voom, not deseq2"):
        _one(tmp_path, "w,flare,no_flare,flare,,~ flare + (1 | patient_id),deseq2\n", M_HEADER)


def test_random_effect_with_one_level_per_sample(tmp_path):
    samples = _trial()
    samples["tube"] = [f"t{i}" for i in range(len(samples))]
    c = _one(tmp_path, "w,flare,no_flare,flare,,~ flare + (1 | tube),\n", M_HEADER)
    with pytest.raises(ConfigError, match=r"contrasts.csv:2: .*\(1 \| tube\) has one level per sample "
                                          r"\(18 levels for 18 samples\)"):
        check_contrast(c, samples)


def test_random_effect_unknown_column(tmp_path):
    c = _one(tmp_path, "w,flare,no_flare,flare,,~ flare + (1 | donor),\n", M_HEADER)
    with pytest.raises(ConfigError, match=r"contrasts.csv:2: .*unknown random-effect column 'donor'"):
        check_contrast(c, _trial())


def test_random_effect_also_fixed(tmp_path):
    c = _one(tmp_path, "w,flare,no_flare,flare,,~ patient_id + flare + (1 | patient_id),\n", M_HEADER)
    with pytest.raises(ConfigError, match=r"'patient_id' is both a fixed effect and the random intercept"):
        check_contrast(c, _trial())


@pytest.mark.parametrize(("formula", "pattern"), [
    ("~ flare + (flare | patient_id)", r"random term '\(flare \| patient_id\)' is not supported"),
    ("~ flare + (1 | patient_id) + (1 | arm)", r"2 random terms"),
    ("~ flare + 1 | patient_id", r"'\|' outside a random term"),
])
def test_unsupported_random_terms(tmp_path, formula, pattern):
    with pytest.raises(ConfigError, match=r"contrasts.csv:2: .*" + pattern):
        _one(tmp_path, f"w,flare,no_flare,flare,,{formula},\n", M_HEADER)


def test_random_effect_missing_value(tmp_path):
    samples = _trial()
    samples.loc["P1_0", "patient_id"] = ""
    c = _one(tmp_path, "w,flare,no_flare,flare,,~ flare + (1 | patient_id),\n", M_HEADER)
    with pytest.raises(ConfigError, match=r"design column 'patient_id' has missing values for sample\(s\) P1_0"):
        check_contrast(c, samples)
