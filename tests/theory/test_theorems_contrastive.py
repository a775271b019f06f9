"""The contrastive chapter's theorem registry: every bounds.csv row is recomputed from its own terms by the
theorem it names, every declared assumption reports its number and flips where it should, and judge() reads the
registry to give the expected verdicts."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import bounds
from analysis.contrastive import bound_checks
from theory import contrastive as th
from theory.theorems import STATUSES, index

REG = index(th.THEOREMS)
ROOT = Path(__file__).resolve().parents[2]


def _metrics(rng, rho, k, loss, gen, block, L_un=None, L_sup_mu=None, se=None):
    terms = th.collision_terms(rho, k, loss)
    m = {"tau": th.tau(rho), "tau_k": terms["tau"], "p_distinct": terms["p_distinct"],
         "collision_floor": terms["collision_floor"],
         "L_un": rng.uniform(0.2, 2.5) if L_un is None else L_un, "L_un_se": rng.uniform(0, 0.02) if se is None else se,
         "L_un_eq": 1.0, "L_un_neq": rng.uniform(0.2, 2.5),
         "L_sup_mu": (rng.uniform(0.1, 2.0) if L_sup_mu is None else L_sup_mu) if k + 1 <= len(rho) else np.nan,
         "L_sup_mu_se": rng.uniform(0, 0.02) if se is None else se, "mean_acc": 0.5}
    if gen:
        m.update({"L_hat_un": rng.uniform(0.2, 2.5), "Gen_M": rng.uniform(0.01, 40.0), "Rad_S": 3.0, "R": 1.5,
                  "M": 500, "delta": 0.05})
    if block:
        m.update({"L_block": rng.uniform(0.2, 2.5), "L_block_se": rng.uniform(0, 0.02) if se is None else se})
    return m


def _cell(rng, rho, k, loss, cell, gen=True, block=False, steps=(0, 10), seeds=(0, 1), **fixed):
    out = []
    for step in steps:
        for seed in seeds:
            base = {"objective": "block" if block else loss, "loss": loss, "n_classes": len(rho), "k": k,
                    "block_size": 4 if block else 1, "seed": seed, "lr": 0.01, "step": step, "n_per_class": 0,
                    "cell": cell}
            out += [{**base, "metric": a, "value": v}
                    for a, v in _metrics(rng, rho, k, loss, gen, block, **fixed).items()]
    return out


def _random_rows(seed, n_cells=12):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_cells):
        C = int(rng.integers(2, 9))
        rho = rng.dirichlet(np.full(C, rng.choice([0.3, 1.0, 5.0])))
        k = int(rng.choice([1, 1, 2, 3, 6]))
        loss = str(rng.choice(["logistic", "hinge"]))
        rows += _cell(rng, rho, k, loss, f"c{i}", gen=bool(i % 3), block=(k == 1 and i % 2 == 0))
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ (a) every bound from its own terms

@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_every_row_is_recomputed_by_its_theorem(seed):
    checks = bound_checks(_random_rows(seed))
    assert len(checks) and set(checks["theorem"]) <= set(REG)
    for tid, rows in checks.groupby("theorem"):
        thm = REG[tid]
        for col in thm.terms + thm.trivial.terms + tuple(t for a in thm.assumptions for t in a.terms):
            assert col in rows.columns, (tid, col)
        got = thm.bound_from(rows)
        want = rows["bound_value"].to_numpy()
        assert np.all(np.isfinite(want))
        np.testing.assert_array_equal(got, want)  # bit for bit: the same arithmetic on the same columns
        np.testing.assert_array_equal(thm.trivial_from(rows), rows["trivial"].to_numpy())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_rows_name_the_theorem_of_their_form_and_k(seed):
    checks = bound_checks(_random_rows(seed))
    one = checks["k"] == 1
    expect = np.select(
        [(checks["form"] == "population") & (checks["bound"] == "mean_classifier") & one,
         (checks["form"] == "population") & (checks["bound"] == "mean_classifier") & ~one,
         (checks["form"] == "gen_M") & one, (checks["form"] == "gen_M") & ~one, checks["bound"] == "block"],
        ["contrastive.lemma_4_3", "contrastive.lemma_4_3_k_negatives", "contrastive.theorem_4_1",
         "contrastive.theorem_4_1_k_negatives", "contrastive.proposition_6_2"], default="?")
    assert list(checks["theorem"]) == list(expect)


@pytest.mark.parametrize("seed", [4, 5])
def test_k1_bounds_are_the_papers_tau_forms(seed):
    # An independent formula: at k = 1 with tau = sum rho^2 the three k = 1 theorems are the (. - tau)/(1 - tau)
    # forms; a theorem wired to the wrong terms (tau_k, L_un_neq, Gen_M without the 1/2) fails here.
    checks = bound_checks(_random_rows(seed, n_cells=16))
    checks = checks[checks["k"] == 1]
    tau = checks["tau"].to_numpy()
    lemma = checks["theorem"] == "contrastive.lemma_4_3"
    gen = checks["theorem"] == "contrastive.theorem_4_1"
    blk = checks["theorem"] == "contrastive.proposition_6_2"
    assert lemma.any() and gen.any() and blk.any()
    np.testing.assert_allclose(REG["contrastive.lemma_4_3"].bound_from(checks[lemma]),
                               (checks.loc[lemma, "L_un"] - tau[lemma]) / (1 - tau[lemma]), rtol=1e-12)
    np.testing.assert_allclose(REG["contrastive.theorem_4_1"].bound_from(checks[gen]),
                               (checks.loc[gen, "L_hat_un"] + checks.loc[gen, "Gen_M"] / 2 - tau[gen]) / (1 - tau[gen]),
                               rtol=1e-12)
    np.testing.assert_allclose(REG["contrastive.proposition_6_2"].bound_from(checks[blk]),
                               (checks.loc[blk, "L_block"] - tau[blk]) / (1 - tau[blk]), rtol=1e-12)
    assert np.all(checks["trivial"] == 1.0)


def test_bound_from_reads_the_terms_not_the_stored_value():
    checks = bound_checks(_random_rows(6))
    rows = checks[checks["theorem"] == "contrastive.lemma_4_3_k_negatives"].copy()
    assert len(rows)
    before = REG["contrastive.lemma_4_3_k_negatives"].bound_from(rows)
    rows["L_un"] += 0.5
    rows["bound_value"] = np.nan
    np.testing.assert_allclose(REG["contrastive.lemma_4_3_k_negatives"].bound_from(rows),
                               before + 0.5 / rows["p_distinct"].to_numpy(), rtol=1e-12)


def test_registry_declarations():
    assert len(REG) == 7  # + the norm-ball Theorem 4.1 and the de-duplicated k-negative lemma (issue 16)
    text = (ROOT / "docs/theory/contrastive.md").read_text()
    anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    for thm in th.THEOREMS:
        assert thm.chapter == "contrastive" and thm.status in STATUSES and thm.kind == "bound"
        path, anchor = thm.doc.split("#")
        assert path == "docs/theory/contrastive.md" and anchor in anchors, thm.doc
        assert thm.trivial.value is not None and thm.assumptions
    assert REG["contrastive.lemma_4_3_k_negatives"].status == "derived"
    assert REG["contrastive.theorem_4_1_k_negatives"].status == "derived"


# ------------------------------------------------------------------ (b) assumptions: the number and the flip

def _check(thm_id, name, table):
    (assumption,) = [a for a in REG[thm_id].assumptions if a.name == name]
    return assumption.evaluate(pd.DataFrame(table))


def test_one_negative_and_task_exist():
    value, met = _check("contrastive.lemma_4_3", "k", {"k": [1, 3, 1]})
    np.testing.assert_array_equal(value, [1, 3, 1])
    np.testing.assert_array_equal(met, [True, False, True])
    value, met = _check("contrastive.lemma_4_3_k_negatives", "p_distinct", {"p_distinct": [0.4, 0.0, np.nan]})
    np.testing.assert_array_equal(met, [True, False, False])
    assert value[0] == 0.4 and value[1] == 0.0
    value, met = _check("contrastive.proposition_6_2", "tau", {"tau": [0.25, 1.0]})
    np.testing.assert_array_equal(value, [0.25, 1.0])
    np.testing.assert_array_equal(met, [True, False])


def test_loss_normalisation_checks():
    table = {"loss": ["hinge", "logistic", "logistic", "hinge", "ntxent"], "k": [1, 1, 3, 3, 1]}
    value, met = _check("contrastive.lemma_4_3", "ell(0)", table)
    np.testing.assert_allclose(value[:4], [1.0, 1.0, 2.0, 1.0], rtol=0, atol=0)
    assert np.isnan(value[4])
    np.testing.assert_array_equal(met, [True, True, False, True, False])
    value, met = _check("contrastive.lemma_4_3_k_negatives", "ell(0_k)", table)
    np.testing.assert_array_equal(met, [True, True, True, True, False])


def test_tau_terms_gap_is_the_deviation_from_the_one_negative_terms():
    rng = np.random.default_rng(9)
    rows = []
    for k in (1, 2):
        rho = rng.dirichlet(np.ones(5))
        t = th.collision_terms(rho, k, "logistic")
        rows.append({"tau": th.tau(rho), "collision_floor": t["collision_floor"], "p_distinct": t["p_distinct"]})
    value, met = _check("contrastive.lemma_4_3", "one-negative term gap", rows)
    assert value[0] < 1e-12 and met[0]
    expect = max(abs(rows[1]["collision_floor"] - rows[1]["tau"]), abs(rows[1]["p_distinct"] - (1 - rows[1]["tau"])))
    assert value[1] == pytest.approx(expect, rel=1e-12) and value[1] > 1e-3 and not met[1]


def test_confidence():
    value, met = _check("contrastive.theorem_4_1", "delta", {"delta": [0.05, 0.0, 1.0, 1.5]})
    np.testing.assert_array_equal(value, [0.05, 0.0, 1.0, 1.5])
    np.testing.assert_array_equal(met, [True, False, False, False])


def test_block_with_k_negatives_fails_its_assumptions_in_judge():
    # A block cell with k = 2 (not a setting of Prop. 6.2): its rows must read "assumption not met", the
    # population rows of the same cell (the derived k-negative lemma) must not.
    rng = np.random.default_rng(3)
    rho = np.full(6, 1 / 6)
    rows = pd.DataFrame(_cell(rng, rho, 2, "logistic", "b", gen=False, block=True, seeds=(0,), steps=(5,),
                              L_un=3.0, L_sup_mu=0.5, se=0.0))
    table = bounds.judge(bound_checks(rows), REG)
    blk = table[table["theorem"] == "contrastive.proposition_6_2"].iloc[0]
    assert blk["verdict"] == "assumption not met"
    assert "k = 2: not met" in blk["assumption_checks"] and "ell(0) = 1.58496: not met" in blk["assumption_checks"]
    pop = table[table["theorem"] == "contrastive.lemma_4_3_k_negatives"].iloc[0]
    assert pop["assumption"] == "met" and pop["verdict"] in ("holds", "vacuous")


def test_a_k1_theorem_on_a_k3_row_is_not_met():
    rng = np.random.default_rng(4)
    checks = bound_checks(pd.DataFrame(_cell(rng, np.full(8, 1 / 8), 3, "hinge", "c", seeds=(0,), steps=(1,),
                                             L_un=1.0, L_sup_mu=0.2, se=0.0)))
    checks["theorem"] = checks["theorem"].str.replace("_k_negatives", "", regex=False)  # mislabel on purpose
    table = bounds.judge(checks, REG)
    assert set(table["verdict"]) == {"assumption not met"}
    assert all("k = 3: not met" in s and "one-negative term gap" in s and s.count("not met") >= 2
               for s in table["assumption_checks"])


# ------------------------------------------------------------------ (c) verdicts through the registry

def _one(L_un, L_sup_mu, rho, k=1, loss="logistic", se=0.0, gen=False):
    rng = np.random.default_rng(0)
    rows = pd.DataFrame(_cell(rng, rho, k, loss, "v", gen=gen, seeds=(0,), steps=(1,), L_un=L_un,
                              L_sup_mu=L_sup_mu, se=se))
    return bounds.judge(bound_checks(rows), REG)


def test_judge_verdicts_through_the_registry():
    rho = np.full(4, 0.25)  # tau = 1/4: Lemma 4.3's bound is (L_un - 1/4) / (3/4)
    ok = _one(0.7, 0.5, rho).iloc[0]
    assert (ok["theorem"], ok["kind"], ok["verdict"]) == ("contrastive.lemma_4_3", "bound", "holds")
    assert ok["bound_value"] == pytest.approx(0.6, rel=1e-12)
    assert _one(0.7, 0.61, rho).iloc[0]["verdict"] == "violated"
    assert _one(0.7, 0.61, rho, se=0.01).iloc[0]["verdict"] == "holds"  # within 3 combined SEs
    assert _one(1.0, 0.9, rho).iloc[0]["verdict"] == "vacuous"  # L_un >= 1 <=> bound >= ell(0) = 1
    assert _one(0.7, 0.5, rho, se=np.nan).iloc[0]["verdict"] == "undetermined"  # a one-sample SE is NaN
    # k negatives: the derived form, judged with its own (met) assumptions
    rho10 = np.full(10, 0.1)
    t = th.collision_terms(rho10, 3, "hinge")
    tight = (1.5 - t["collision_floor"]) / t["p_distinct"]
    kneg = _one(1.5, tight * 0.9, rho10, k=3, loss="hinge").iloc[0]
    assert (kneg["theorem"], kneg["assumption"]) == ("contrastive.lemma_4_3_k_negatives", "met")
    assert kneg["verdict"] == ("vacuous" if tight >= 1.0 else "holds")
    assert _one(1.5, tight * 1.1, rho10, k=3, loss="hinge").iloc[0]["verdict"] == "violated"


def test_gen_rows_are_judged_and_counted_per_theorem():
    table = bounds.judge(bound_checks(_random_rows(7)), REG)
    gen = table[table["form"] == "gen_M"]
    assert len(gen) and set(gen["theorem"]) <= {"contrastive.theorem_4_1", "contrastive.theorem_4_1_k_negatives"}
    assert (gen["assumption"] == "met").all()
    assert set(gen["verdict"]) <= {"holds", "violated", "vacuous"}
    judged = gen[gen["verdict"] != "violated"]
    assert len(judged)
    assert ((judged["verdict"] == "vacuous") == (judged["bound_value"] >= judged["trivial"])).all()
    table.insert(0, "experiment", "contrastive")
    text = bounds.summary(table)
    for tid in set(table["theorem"]):
        assert tid in text
