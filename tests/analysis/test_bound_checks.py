"""bound_checks turns stored rows into verdict rows whose bound is recomputable from the row's own terms."""
import numpy as np
import pandas as pd

from analysis import bounds
from analysis.contrastive import bound_checks
from theory import contrastive as th
from theory.theorems import index

THEOREMS = index(th.THEOREMS)


def _rows(L_un, L_sup_mu, rho, k=1, extra=None):
    terms = th.collision_terms(rho, k, "logistic")
    metrics = {"tau": th.tau(rho), "tau_k": terms["tau"], "p_distinct": terms["p_distinct"],
               "collision_floor": terms["collision_floor"], "L_un": L_un, "L_un_se": 0.0, "L_un_eq": 1.0,
               "L_un_neq": L_un, "L_sup_mu": L_sup_mu, "L_sup_mu_se": 0.0, "mean_acc": 0.5, **(extra or {})}
    base = {"objective": "logistic", "loss": "logistic", "n_classes": len(rho), "k": k, "block_size": 1,
            "seed": 0, "lr": 0.01, "step": 10, "n_per_class": 0, "cell": "c0"}
    return pd.DataFrame([{**base, "metric": m, "value": v} for m, v in metrics.items()])


def test_population_bound_is_lemma_4_3_and_verdict_follows():
    rho = np.full(4, 0.25)
    ok = bounds.judge(bound_checks(_rows(L_un=0.7, L_sup_mu=0.5, rho=rho)), THEOREMS)
    expect = (0.7 - 0.25) / 0.75
    assert np.isclose(ok["bound_value"].iloc[0], expect)
    assert ok["theorem"].iloc[0] == "contrastive.lemma_4_3" and ok["assumption"].iloc[0] == "met"
    assert ok["verdict"].iloc[0] == "holds" and np.isclose(ok["slack"].iloc[0], expect / 0.5)
    bad = bounds.judge(bound_checks(_rows(L_un=0.7, L_sup_mu=0.9, rho=rho)), THEOREMS)
    assert bad["verdict"].iloc[0] == "violated"
    vac = bounds.judge(bound_checks(_rows(L_un=1.2, L_sup_mu=0.9, rho=rho)), THEOREMS)
    assert vac["verdict"].iloc[0] == "vacuous"  # bound 1.27 >= ell(0) = 1


def test_gen_form_uses_half_gen_m_and_k_negative_terms():
    rho = np.full(10, 0.1)
    rows = _rows(L_un=2.0, L_sup_mu=1.0, rho=rho, k=3,
                 extra={"L_hat_un": 1.9, "Gen_M": 0.4, "Rad_S": 1.0, "R": 1.0, "M": 100, "delta": 0.05})
    checks = bound_checks(rows).set_index("form")
    t = th.collision_terms(rho, 3, "logistic")
    assert np.isclose(checks.loc["population", "bound_value"], (2.0 - t["collision_floor"]) / t["p_distinct"])
    assert np.isclose(checks.loc["gen_M", "bound_value"], (1.9 + 0.2 - t["collision_floor"]) / t["p_distinct"])
    assert np.isclose(checks.loc["population", "trivial"], 2.0)  # log2(k + 1)
    assert checks.loc["population", "theorem"] == "contrastive.lemma_4_3_k_negatives"
    assert checks.loc["gen_M", "theorem"] == "contrastive.theorem_4_1_k_negatives"


def test_no_task_when_k_plus_one_exceeds_classes():
    rho = np.full(3, 1 / 3)
    assert bound_checks(_rows(L_un=2.0, L_sup_mu=float("nan"), rho=rho, k=3)).empty


def test_judge_reads_the_assumption_column_and_summary_counts_it():
    import pandas as pd
    checks = pd.DataFrame({"bound": ["b", "b", "b"], "form": ["f", "f", "f"], "measured": [2.0, 0.5, 0.5],
                           "measured_se": 0.0, "bound_value": [1.0, 1.0, 1.0], "bound_se": 0.0, "trivial": 9.0,
                           "assumption": ["not met", "met", "met"], "model_kind": ["trained", "trained", "oracle"]})
    table = bounds.judge(checks)
    assert list(table["verdict"]) == ["assumption not met", "holds", "holds"]
    table.insert(0, "experiment", "x")
    line = bounds.summary(table).splitlines()[2].split()
    # points, holds, trained holds (of the trained points), violated, vacuous, not met, undetermined, median slack
    # (over the two points where it applies)
    assert line[-8:] == ["3", "2", "1/2", "0", "0", "1", "0", "2"]


def test_judge_takes_the_bound_from_the_theorem_not_the_chapter():
    """bound_value is the theorem's bound(**terms): filled where the chapter leaves it out, and a supplied value
    that disagrees (beyond rtol 1e-12; NaN only with NaN) stops the judging with the theorem and the row."""
    import pytest
    rho = np.full(4, 0.25)
    checks = pd.concat([bound_checks(_rows(L_un=0.7, L_sup_mu=0.5, rho=rho)),
                        bound_checks(_rows(L_un=0.9, L_sup_mu=0.5, rho=rho))], ignore_index=True)
    supplied = bounds.judge(checks, THEOREMS)
    filled = bounds.judge(checks.drop(columns="bound_value"), THEOREMS)
    np.testing.assert_array_equal(filled["bound_value"], supplied["bound_value"])
    assert list(filled["verdict"]) == list(supplied["verdict"])
    assert np.isclose(filled["bound_value"].iloc[1], (0.9 - 0.25) / 0.75, rtol=1e-12)
    off = checks.copy()
    off.loc[1, "bound_value"] *= 1 + 1e-9
    with pytest.raises(bounds.BoundMismatch, match=r"^contrastive\.lemma_4_3: row 1 "):
        bounds.judge(off, THEOREMS)
    nan = checks.copy()
    nan.loc[0, "bound_value"] = np.nan   # the terms give a finite bound: NaN is a mismatch, not a pass
    with pytest.raises(bounds.BoundMismatch, match="row 0"):
        bounds.judge(nan, THEOREMS)
    both = checks.copy()
    both.loc[0, ["L_un", "bound_value"]] = np.nan   # NaN terms, NaN bound: they agree
    assert bounds.judge(both, THEOREMS)["verdict"].iloc[0] == "undetermined"


def _two_rows(**extra):
    return pd.DataFrame({"theorem": ["t.a", "t.a"], "bound": "b", "form": "f", "measured": [0.5, 0.5],
                         "measured_se": 0.0, "bound_value": 1.0, "bound_se": 0.0, "trivial": 9.0, **extra})


def test_model_kind_is_required_and_checked():
    import pytest
    with pytest.raises(ValueError, match="model_kind: missing .* t.a"):
        bounds.judge(_two_rows())
    with pytest.raises(ValueError, match="model_kind: 'fitted' in a row of t.a"):
        bounds.judge(_two_rows(model_kind=["trained", "fitted"]))
    table = bounds.judge(_two_rows(model_kind=["trained", "untrained"]))
    assert list(table.columns[:7]) == ["theorem", "kind", "bound", "form", "model_kind", "measured", "measured_se"]


def test_contrastive_rows_say_what_their_encoder_is():
    rho = np.full(4, 0.25)
    trained = bound_checks(_rows(L_un=0.7, L_sup_mu=0.5, rho=rho))
    assert set(trained["model_kind"]) == {"trained"}      # step 10 of the logistic objective
    rows = _rows(L_un=0.7, L_sup_mu=0.5, rho=rho)
    start = bound_checks(rows.assign(step=0))
    assert set(start["model_kind"]) == {"untrained"}      # the same objective at its initialisation
    for name in ("raw", "random"):
        assert set(bound_checks(rows.assign(objective=name))["model_kind"]) == {"untrained"}
    assert set(bound_checks(rows.assign(objective="supervised"))["model_kind"]) == {"trained"}
    assert set(bounds.judge(trained, THEOREMS)["model_kind"]) == {"trained"}


def test_a_broken_identity_is_reported_and_never_counted_as_holds():
    from theory.theorems import IDENTITY, Theorem, Trivial
    ident = Theorem(id="t.identity", paper="p", number="n", statement="m <= b", status="derived", terms=("b",),
                    bound=lambda b: b, trivial=Trivial("none"), identity=True)
    assert ident.kind == IDENTITY
    # exact to rounding (1e-12 over the value is float noise); 1e-6 over it is an arithmetic bug
    checks = pd.DataFrame({"theorem": "t.identity", "bound": "b", "form": "f",
                           "measured": [1.0, 1.0 + 1e-12, 1.0 + 1e-6, 0.2], "measured_se": 0.0,
                           "bound_value": 1.0, "b": 1.0, "bound_se": 0.0, "trivial": np.inf,
                           "model_kind": "trained"})
    table = bounds.judge(checks, {"t.identity": ident})
    assert list(table["kind"]) == ["identity"] * 4
    assert list(table["verdict"]) == ["exact", "exact", "broken", "exact"]
    assert "holds" not in set(table["verdict"])
    table.insert(0, "experiment", "x")
    text = bounds.summary(table)
    bounds_block, ident_block = text.split("\n\nidentities")
    assert "t.identity" not in bounds_block               # never among the bounds' holds
    line = [ln for ln in ident_block.splitlines() if ln.startswith("x")][0].split()
    assert line[-6:-1] == ["4", "3", "1", "0", "0"]        # points, exact, broken, not met, undetermined
