"""The self-prediction chapter's theorem declarations (theory.self_prediction.THEOREMS) against the rows that
analysis.self_prediction.bound_checks writes: each bound recomputed from its terms, each assumption's number and
where it flips, references never judged as bounds, and the one-seed convention."""
import math

import numpy as np
import pandas as pd
import pytest

from analysis import bounds
from analysis import self_prediction as sp
from theory import self_prediction as th
from theory.theorems import index
from theory.verdict import BOUND_VERDICTS, REFERENCE_VERDICTS, UNDETERMINED

THEOREMS = index(th.THEOREMS)
SIGMA2, TRIVIAL, D1, D2, K = 0.2, 0.6, 12, 8, 3
CHERNOFF_RATE = (1 - math.log(2)) / 2


def _rows(eps2=0.04, beta=0.5, seeds=2, ns=(10, 50, 500), chernoff=True, n_latent=K):
    """A rows frame as experiments/self_prediction/run.py stores it (the layout of
    tests/analysis/test_analysis_self_prediction.py), with every representation the chapter checks."""
    base = {"cell": "c0", "family": "approx_ci", "k": K, "d1": D1, "d2": D2, "m": 1, "alpha": 0.1,
            "nuisance_scale": 1.0, "n1": 500, "studies": "approx_ci+sample_complexity", "n_fixed": 50,
            "target_fraction": 0.2}
    out = []

    def add(rep, seed, n, metric, value):
        out.append({**base, "representation": rep, "seed": seed, "n": n, "metric": metric, "value": value})

    for metric, value in {"sigma2": SIGMA2, "sigma2_se": 0.003, "eps_ci2": eps2, "eps_ci2_se": 0.001 * (eps2 > 0),
                          "beta": beta, "trivial": TRIVIAL, "n_latent": n_latent, "r": n_latent - 1}.items():
        add("data", -1, 0, metric, value)
    p = {"psi_star": K - 1, "psi_star_full": D2, "raw": D1, "linear": K - 1, "linear_full": D2}
    for rep in p:
        for seed in range(seeds):
            add(rep, seed, 0, "p", p[rep])
            add(rep, seed, 0, "e_apx", 0.1 + 0.01 * seed if rep == "raw" else 0.02 + 0.01 * seed)
            if rep.startswith("linear"):
                add(rep, seed, 0, "eps_pre2", [0.01, 0.04, 0.0025][seed % 3])
            if rep == "psi_star" and chernoff:
                for metric, value in {"sigma2_eff": 0.1 + 0.2 * seed, "sigma2_eff_se": 0.01,
                                      "leverage_max": 2.0 + 0.5 * seed}.items():
                    add(rep, seed, 0, metric, value)
            for n in ns:
                add(rep, seed, n, "er", 0.5 / n * (1 + 0.1 * seed) + 0.001 * seed)
    return pd.DataFrame(out)


CASES = {"approx": {}, "exact": {"eps2": 0.0}, "beta0": {"beta": 0.0}, "three_seeds": {"seeds": 3},
         "one_seed": {"seeds": 1}, "rank_short": {"n_latent": D2 + 1}}


@pytest.fixture(scope="module", params=list(CASES))
def checks(request):
    return sp.bound_checks(_rows(**CASES[request.param]))


# ------------------------------------------------------------------ (a) every bound from its terms

def test_every_row_names_a_declared_theorem_and_carries_its_terms(checks):
    assert checks["theorem"].notna().all() and set(checks["theorem"]) <= set(THEOREMS)
    for tid, rows in checks.groupby("theorem"):
        t = THEOREMS[tid]
        for col in t.terms + t.trivial.terms + tuple(a for x in t.assumptions for a in x.terms):
            assert col in rows.columns and rows[col].notna().all(), (tid, col)
        # one (bound, form) maps to one theorem
    assert (checks.groupby(["bound", "form"])["theorem"].nunique() == 1).all()


def test_bound_from_reproduces_bound_value(checks):
    for tid, rows in checks.groupby("theorem"):
        got, want = THEOREMS[tid].bound_from(rows), rows["bound_value"].to_numpy(dtype=float)
        assert np.array_equal(np.isinf(got), np.isinf(want)), tid
        fin = np.isfinite(want)
        np.testing.assert_allclose(got[fin], want[fin], rtol=1e-12, atol=0, err_msg=tid)
        np.testing.assert_array_equal(THEOREMS[tid].trivial_from(rows), rows["trivial"].to_numpy())


def test_every_theorem_is_exercised_and_learned_rows_need_both_pretext_moments():
    checks = sp.bound_checks(_rows(seeds=3))
    assert set(checks["theorem"]) == set(THEOREMS)
    assert set(zip(checks["bound"], checks["form"])) == set(sp.THEOREM_OF)
    learned = checks[checks["bound"] == "learned"].copy()
    eps_pre = np.sqrt([0.01, 0.04, 0.0025])
    assert np.allclose(learned["eps_pre_mean"], eps_pre.mean()) and np.allclose(learned["eps_pre"],
                                                                                np.sqrt(np.mean(eps_pre ** 2)))
    # the seed-averaged bound is not the bound at the RMS eps_pre: dropping the spread would be caught
    pop = learned[learned["form"] == "population"]
    t = THEOREMS["self_prediction.theorem_4_2_population"]
    wrong = pop.assign(eps_pre_mean=pop["eps_pre"])
    assert not np.allclose(t.bound_from(wrong), pop["bound_value"], rtol=1e-6)
    # hand value: 4 mean_s ((eps_CI + e_s) / beta)^2 for the reduced psi
    red = pop[pop["pca"]]
    expect = 4 * np.mean((0.2 + eps_pre) ** 2) / 0.25
    assert np.isclose(red["bound_value"].iloc[0], expect) and np.isclose(t.bound_from(red)[0], expect)


def test_approx_ci_forms_are_reproduced_to_the_bit():
    checks = sp.bound_checks(_rows())
    for tid in ("self_prediction.theorem_4_2_risk", "self_prediction.theorem_4_2_population",
                "self_prediction.ref_gaussian_ols", "self_prediction.ref_gaussian_ols_raw"):
        rows = checks[(checks["theorem"] == tid) & (checks["bound"] != "learned")]
        got, want = THEOREMS[tid].bound_from(rows), rows["bound_value"].to_numpy(dtype=float)
        assert len(rows) and np.array_equal(got, want), tid


# ------------------------------------------------------------------ (b) assumptions report their numbers

def _one(assumption, **cols):
    return assumption.evaluate({k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in cols.items()})


def test_exact_ci_assumption_reports_the_relative_eps_ci2_and_flips_above_rounding():
    value, met = _one(th.EXACT_CI, eps_ci2=[0.0, 1e-19, 3e-18, 0.04], trivial=[0.6, 0.6, 2.0, 0.6])
    np.testing.assert_allclose(value, [0.0, 1e-19, 1.5e-18, 0.04])
    assert met.tolist() == [True, True, False, False]


def test_beta_and_rank_assumptions_flip_at_zero():
    value, met = _one(th.BETA_POSITIVE, beta=[0.5, 0.0])
    assert value.tolist() == [0.5, 0.0] and met.tolist() == [True, False]
    value, met = _one(th.LATENT_RANK, d2=[8, 8, 8], n_latent=[3, 8, 9])
    assert value.tolist() == [5, 0, -1] and met.tolist() == [True, True, False]


def test_design_event_assumption_is_the_matrix_chernoff_probability():
    value, met = _one(th.DESIGN_EVENT, p=[2, 2], n=[500, 50], leverage_max=[2.5, 2.5])
    np.testing.assert_allclose(value, [3 * math.exp(-CHERNOFF_RATE * n / 2.5) for n in (500, 50)], rtol=1e-12)
    assert met.tolist() == [True, False]                 # 1.4e-13 <= 1%, 0.14 > 1%


@pytest.mark.parametrize("case", list(CASES))
def test_declared_assumptions_give_the_chapter_its_former_verdicts(case):
    """The declared checks decide exactly what the chapter's own check did: exact CI (eps_CI^2 <= 1e-18 max(1,
    trivial) and beta > 0) for the exact_ci forms, Assumption 4.1 (beta > 0 and d2 >= n_latent) for approx_ci and
    learned, nothing for the raw baseline; every declared number is in assumption_checks."""
    kw = {"eps2": 0.04, "beta": 0.5, "n_latent": K, **CASES[case]}
    table = bounds.judge(sp.bound_checks(_rows(**kw)), THEOREMS)
    exact = kw["eps2"] <= 1e-18 * max(1.0, TRIVIAL) and kw["beta"] > 0
    a41 = kw["beta"] > 0 and D2 >= kw["n_latent"]
    expect = np.where(table["bound"] == "exact_ci", exact,
                      np.where(table["bound"] == "raw_baseline", True, a41))
    assert (table["assumption"] == np.where(expect, "met", "not met")).all()
    assert ((table["verdict"] == "assumption not met") == ~expect).all()
    for _, row in table.iterrows():
        for a in THEOREMS[row["theorem"]].assumptions:
            assert f"{a.name} = " in row["assumption_checks"]
    ref = table.loc[table["form"] == "ref_r", "assumption_checks"].iloc[0]
    assert f"eps_CI^2/max(1,trivial) = {kw['eps2']:.6g}: {'met' if kw['eps2'] == 0 else 'not met'}" in ref
    assert f"beta = {kw['beta']:.6g}: {'met' if kw['beta'] > 0 else 'not met'}" in ref


def test_chernoff_rows_exist_only_where_the_design_event_is_likely():
    table = bounds.judge(sp.bound_checks(_rows(eps2=0.0)), THEOREMS)
    ch = table[table["form"] == "chernoff"]
    assert ch["n"].tolist() == [500]                     # n = 10, 50: P(not G) > 1%, not written
    assert "P(lambda_min(S)<1/2) = " in ch["assumption_checks"].iloc[0]
    np.testing.assert_allclose(ch["failure_prob"], 3 * math.exp(-CHERNOFF_RATE * 500 / 2.5))


# ------------------------------------------------------------------ (c) references are never bounds' verdicts

def test_references_read_above_or_below_and_bounds_are_judged():
    rows = _rows(eps2=0.0)
    rows.loc[(rows["metric"] == "er") & (rows["n"] == 500), "value"] = 5.0   # far above every curve at n = 500
    table = bounds.judge(sp.bound_checks(rows), THEOREMS)
    kinds = table["theorem"].map(lambda t: THEOREMS[t].kind)
    assert (table["kind"] == kinds).all()
    refs, bnds = table[table["kind"] == "reference"], table[table["kind"] == "bound"]
    assert set(refs["theorem"]) == {"self_prediction.ref_gaussian_ols", "self_prediction.ref_gaussian_ols_raw",
                                    "self_prediction.theorem_4_2_risk"}
    assert refs["verdict"].isin(REFERENCE_VERDICTS).all() and not refs["verdict"].isin(
        ["holds", "violated", "vacuous"]).any()
    assert (refs.loc[refs["n"] == 500, "verdict"] == "above reference").all()
    assert (refs.loc[refs["n"] == 50, "verdict"] == "below reference").any()
    assert bnds["verdict"].isin(BOUND_VERDICTS).all()
    assert (bnds.loc[bnds["form"] == "chernoff", "verdict"] == "violated").all()


# ------------------------------------------------------------------ (d) one seed: undetermined

def test_a_one_seed_point_is_undetermined():
    table = bounds.judge(sp.bound_checks(_rows(seeds=1)), THEOREMS)
    met = table[table["assumption"] == "met"]
    assert len(met) and met["measured_se"].isna().all()
    assert (met["verdict"] == UNDETERMINED).all()
    assert met["reason"].str.contains("one seed").any()
    # two seeds give a finite SE and judged verdicts
    two = bounds.judge(sp.bound_checks(_rows(seeds=2)), THEOREMS)
    assert np.isfinite(two["measured_se"]).all() and (two["verdict"] != UNDETERMINED).any()


def test_curves_and_theory_monte_carlo_ses_follow_the_one_seed_convention():
    c = sp.curves(_rows(seeds=1))
    assert c["se"].isna().all() and (c["count"] == 1).all()
    c2 = sp.curves(_rows(seeds=2))
    assert np.allclose(c2["se"], c2["std"] / np.sqrt(2))
    assert math.isnan(th.label_noise(np.array([[0.5, 0.5]]))[1])
    m, se = th.label_noise(np.array([[0.5, 0.5], [1.0, 0.0]]))
    assert m == 0.25 and np.isclose(se, 0.25)            # values 0.5, 0: sd 0.354 / sqrt 2


def test_declarations_point_to_their_section_of_the_chapter_doc():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    for t in th.THEOREMS:
        path, anchor = t.doc.split("#")
        assert t.chapter == "self_prediction" and t.paper.startswith("Lee")
        assert f'<a id="{anchor}"></a>' in (root / path).read_text(), t.id
