"""Issue 16, contrastive: the norm-ball Gen_M, the de-duplicated k-negative lemma and the rows' model kinds.

Each closed form is checked against brute force or simulation, so a wrong constant or a wrong sign fails here.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.contrastive import DISTINCT, THEOREM_BALL, bound_checks, frontier_caption, model_kind
from experiments.contrastive import generalisation as gen
from experiments.contrastive.config import Config, GeneralisationStudy, generalisation_cells
from experiments.engine.config import config_hash
from theory import contrastive as th
from theory.contrastive_terms import distinct_count_law, distinct_zero_loss, exact_terms, mc_terms


# ------------------------------------------------------------------ the ball's Rademacher complexity, by simulation
def _empirical_rademacher(X, R, d, n_sigma, rng):
    """E_sigma sup_{||W||_F <= R} sum_j <sigma_j, W x_j>: the sup in closed form, R ||sum_j sigma_j x_j^T||_F."""
    sig = rng.choice([-1.0, 1.0], size=(n_sigma, X.shape[0], d))
    S = np.einsum("sjt,jD->stD", sig, X)
    return R * np.linalg.norm(S.reshape(n_sigma, -1), axis=1)


def test_the_sup_over_the_ball_is_attained_by_the_normalised_sum_and_never_exceeded():
    rng = np.random.default_rng(0)
    X, R, d = rng.normal(size=(30, 5)), 1.7, 3
    sig = rng.choice([-1.0, 1.0], size=(30, d))
    S = sig.T @ X                                               # (d, D): <sigma, W x> = <W, S> for W (d, D)
    closed = R * np.linalg.norm(S)
    W_star = R * S / np.linalg.norm(S)
    assert np.sum(W_star * S) == pytest.approx(closed, rel=1e-12)
    W = rng.normal(size=(20000, d, 5))
    W *= R / np.linalg.norm(W.reshape(len(W), -1), axis=1)[:, None, None]
    assert np.max(np.einsum("ntD,tD->n", W, S)) <= closed * (1 + 1e-12)


def test_norm_ball_rademacher_against_monte_carlo():
    rng = np.random.default_rng(1)
    X, R, d = rng.normal(size=(400, 6)) * rng.uniform(0.2, 2, size=(400, 1)), 0.75, 2
    mc = _empirical_rademacher(X, R, d, 4000, rng)
    closed = th.rademacher_linear(X, R, d)                     # R sqrt(d sum ||x_j||^2), by Jensen
    # the constant: E_sigma of the squared sup is exactly R^2 d sum ||x_j||^2
    sq = mc ** 2
    assert abs(sq.mean() - closed ** 2) <= 4 * sq.std() / math.sqrt(len(sq))
    # Jensen's direction, and its gap: ||S||_F^2 has about d * D = 12 degrees of freedom, so E||S|| is ~2% below
    assert mc.mean() <= closed
    assert mc.mean() >= 0.95 * closed


def test_gen_term_ball_is_gen_term_with_the_balls_constants():
    R, X, sq, d, M = 0.75, 1.9, 3.0e4 * 2.8, 1, 10_000
    g = th.gen_term_ball(R, X, sq, d, M, 0.05)
    L, B = math.sqrt(6) * R * X, 1 + 2 * (R * X) ** 2
    by_hand = 4 * math.sqrt(2) * L * R * math.sqrt(d * sq) / M + 6 * B * math.sqrt(math.log(4 / 0.05) / (2 * M))
    assert g == pytest.approx(by_hand, rel=1e-12)
    assert th.gen_term_ball(R, X, sq * 10, d, M * 10, 0.05) < g   # falls like 1 / sqrt(M) at fixed E||x||^2


def test_the_ball_projection_keeps_the_norm_and_the_oracle_sits_on_the_ball():
    W = torch.randn(3, 5, 2, dtype=torch.float64) * 4
    B = gen.ball(W, 0.75)
    assert torch.allclose(B.flatten(1).norm(dim=1), torch.full((3,), 0.75, dtype=torch.float64))
    small = W * 1e-3
    assert torch.equal(gen.ball(small, 0.75), small)


def test_the_generalisation_cell_reaches_the_regime_where_the_bound_bites():
    """C = 2, R = 0.75, M = 10^5: the oracle's bound is about 0.36 and a trained encoder holds below 1."""
    cfg = Config(seeds=1, generalisation=GeneralisationStudy(classes=(2,), n_tuples=(100_000,), radii=(0.75,),
                                                             steps=60, n_checkpoints=3))
    rows = pd.concat([pd.DataFrame(gen.run(c, config_hash(c))).assign(cell=config_hash(c))
                      for c in generalisation_cells(cfg.generalisation, cfg.seeds, cfg.eval.delta)])
    checks = bound_checks(rows)
    ball = checks[checks["theorem"] == THEOREM_BALL]
    assert set(ball["model_kind"]) == {"oracle", "trained", "untrained"}
    oracle = ball[ball["model_kind"] == "oracle"]
    assert float(oracle["bound_value"].iloc[0]) == pytest.approx(0.36, abs=0.03)
    trained = ball[(ball["model_kind"] == "trained") & (ball["step"] == 60)]
    assert len(trained) == 1 and (trained["bound_value"] < trained["trivial"]).all()
    assert (trained["measured"] <= trained["bound_value"]).all()
    # the row's Gen_M is the ball's closed form: R X sits in the R column, ||W||_F never exceeds R
    assert np.allclose(ball["R"], ball["radius"] * ball["support_norm"])
    assert (ball["W_fro"] <= ball["radius"] * (1 + 1e-6)).all()


# ------------------------------------------------------------------ the de-duplicated k-negative lemma
@st.composite
def _laws(draw):
    C = draw(st.integers(2, 4))
    m = draw(st.integers(1, 3))
    d = draw(st.integers(1, 3))
    k = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    rho = rng.dirichlet(np.ones(C) * draw(st.sampled_from([0.3, 1.0, 5.0])))
    emb = rng.normal(size=(C, m, d)) * draw(st.floats(0.05, 4.0))
    pmf = rng.dirichlet(np.ones(m), size=C)
    return emb, pmf, rho, k, draw(st.sampled_from(["logistic", "hinge"]))


@settings(max_examples=60, deadline=None)
@given(_laws())
def test_distinct_negatives_inequality_on_random_laws(law):
    emb, pmf, rho, k, loss = law
    e = exact_terms(emb, pmf, rho, loss, k)
    if e["tau"] >= 1 - 1e-12:
        return
    floor = th.collision_floor(rho, k, loss)
    assert e["L_un"] >= floor + (1 - e["tau"]) * e["L_sup_mu_distinct"] - 1e-10
    bound = th.distinct_bound_from_terms(e["L_un"], floor, e["tau"])
    # the bound divides L_un - floor, two O(1) sums each rounded at ~1e-15, by 1 - tau: near tau = 1 its
    # float64 value is only good to ~1e-15 / (1 - tau) (5e-10 at tau = 1 - 8e-7, a law hypothesis found)
    assert e["L_sup_mu_distinct"] <= bound + 1e-10 + 1e-14 / (1 - e["tau"])
    # the zero encoder is the trivial value: its measured term is E[ell(0_J) | no collision]
    zero = exact_terms(np.zeros_like(emb), pmf, rho, loss, k)
    assert zero["L_sup_mu_distinct"] == pytest.approx(distinct_zero_loss(rho, k, loss), abs=1e-10)


def test_the_distinct_term_keeps_its_digits_when_collisions_are_almost_certain():
    """rho = (4.13e-7, 1 - 4.13e-7), the law hypothesis found: the zero encoder's distinct term is 1 (k = 1,
    logistic base 2) to 1e-13; weighting by 1 / (1 - tau_k) computed as 1 - tau_k gave 1 + 3.3e-10."""
    rho = np.array([4.13022722e-07, 1 - 4.13022722e-07])
    emb, pmf = np.zeros((2, 1, 1)), np.ones((2, 1))
    zero = exact_terms(emb, pmf, rho, "logistic", 1)
    assert zero["L_sup_mu_distinct"] == pytest.approx(1.0, abs=1e-13)


def test_distinct_lemma_reduces_to_lemma_4_3_at_one_negative():
    rng = np.random.default_rng(3)
    emb, pmf, rho = rng.normal(size=(3, 2, 2)), rng.dirichlet(np.ones(2), size=3), rng.dirichlet(np.ones(3))
    e = exact_terms(emb, pmf, rho, "logistic", 1)
    assert e["L_sup_mu_distinct"] == pytest.approx(e["L_sup_mu"], rel=1e-12)


def test_distinct_count_law_exact_paths_agree_with_monte_carlo():
    for rho in (np.full(6, 1 / 6), np.array([0.5, 0.2, 0.2, 0.1])):
        exact, is_exact = distinct_count_law(rho, 4)
        mc, mc_exact = distinct_count_law(rho, 4, max_subsets=0) if not np.allclose(rho, rho[0]) else (exact, True)
        assert is_exact and exact.sum() == pytest.approx(1.0)
        assert np.allclose(exact, mc, atol=5e-3)


def test_mc_distinct_term_against_the_exact_enumeration():
    rng = np.random.default_rng(5)
    C, m, d, k = 4, 2, 3, 3
    emb, pmf, rho = rng.normal(size=(C, m, d)), rng.dirichlet(np.ones(m), size=C), rng.dirichlet(np.ones(C) * 3)
    exact = exact_terms(emb, pmf, rho, "logistic", k)

    def pool(n):
        idx = np.stack([rng.choice(m, size=n, p=pmf[c]) for c in range(C)])
        return torch.as_tensor(emb[np.arange(C)[:, None], idx])
    mu = torch.as_tensor(np.einsum("cm,cmd->cd", pmf, emb))
    est = mc_terms(pool(20000), pool(20000), pool(60000), mu, rho, "logistic", k, rng=rng)
    assert abs(est["L_sup_mu_distinct"] - exact["L_sup_mu_distinct"]) <= 4 * est["L_sup_mu_distinct_se"]


def test_the_distinct_form_is_informative_where_the_old_form_is_not():
    """C = 10 uniform, k = 8: P(all 9 classes distinct) = 10! / (1! 10^9) = 0.0036 but 1 - tau_8 = 0.43."""
    rho = np.full(10, 0.1)
    assert th.p_distinct(rho, 8) == pytest.approx(math.factorial(10) / 10 ** 9, rel=1e-10)
    assert 1 - th.tau_k(rho, 8) == pytest.approx(0.9 ** 8, rel=1e-12)


# ------------------------------------------------------------------ model kinds and the frontier caption
def test_model_kind_labels():
    t = pd.DataFrame({"objective": ["raw", "random", "logistic", "logistic", "oracle_linear", "ball_hinge",
                                    "ball_hinge"],
                      "step": [0, 0, 0, 300, 0, 0, 150]})
    assert list(model_kind(t)) == ["untrained", "untrained", "untrained", "trained", "oracle", "untrained",
                                   "trained"]


def test_frontier_caption_is_computed_from_the_verdicts():
    base = {"theorem": THEOREM_BALL, "form": "gen_M", "n_classes": 2, "radius": 0.75, "trivial": 1.0,
            "measured": 0.03, "k": 1, "objective": "ball_hinge", "model_kind": "trained", "step": 5}
    judged = pd.DataFrame([{**base, "cell": "a", "M": 1e4, "bound_value": 1.2, "verdict": "vacuous"},
                           {**base, "cell": "b", "M": 1e5, "bound_value": 0.4, "verdict": "holds"}])
    assert "from M = 100000" in frontier_caption(judged)
    judged.loc[1, "verdict"] = "vacuous"
    assert "nowhere" in frontier_caption(judged)
    assert DISTINCT.startswith("contrastive.")
