"""Tests of theory/contrastive.py and theory/contrastive_terms.py
against brute-force enumeration and known inequalities."""

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from scipy.stats import chisquare

from theory import contrastive as tc
from theory import contrastive_terms as tt


def _rand_rho(rng, C, zero=False):
    r = rng.dirichlet(np.ones(C))
    if zero:
        r[0] = 0.0
        r /= r.sum()
    return r


def _np_loss(name, v):
    v = np.asarray(v, dtype=np.float64)
    if name == "logistic":
        return math.log2(1.0 + float(np.sum(np.exp(-v))))
    return max(0.0, 1.0 + float(np.max(-v)))


# ------------------------------------------------------------------ class-law quantities

@pytest.mark.parametrize("C,k", [(2, 1), (3, 1), (3, 2), (4, 3), (5, 2)])
def test_collision_quantities_brute_force(C, k):
    rng = np.random.default_rng(C * 10 + k)
    rho = _rand_rho(rng, C, zero=(C == 5))
    t = tk = pd = fl_h = fl_l = 0.0
    for tup in itertools.product(range(C), repeat=k + 1):
        w = float(np.prod(rho[list(tup)]))
        cp, negs = tup[0], tup[1:]
        m = sum(c == cp for c in negs)
        tk += w * (m > 0)
        pd += w * (len(set(tup)) == k + 1)
        fl_h += w * (m > 0)
        fl_l += w * math.log2(1 + m)
    for a, b in itertools.product(range(C), repeat=2):
        t += rho[a] * rho[b] * (a == b)
    assert tc.tau(rho) == pytest.approx(t, abs=1e-14)
    assert tc.tau_k(rho, k) == pytest.approx(tk, abs=1e-14)
    assert tc.p_distinct(rho, k) == pytest.approx(pd, abs=1e-14)
    assert tc.collision_floor(rho, k, "hinge") == pytest.approx(fl_h, abs=1e-14)
    assert tc.collision_floor(rho, k, "logistic") == pytest.approx(fl_l, abs=1e-14)
    if k == 1:
        assert tc.p_distinct(rho, 1) == pytest.approx(1 - t, abs=1e-14)


def test_tau_k_uniform_closed_form_and_bad_rho():
    rho = np.full(7, 1 / 7)
    assert tc.tau_k(rho, 4) == pytest.approx(1 - (1 - 1 / 7) ** 4, abs=1e-14)
    with pytest.raises(ValueError, match="^rho"):
        tc.tau([0.5, 0.4])
    with pytest.raises(ValueError, match="^rho"):
        tc.tau([1.2, -0.2])
    with pytest.raises(ValueError, match="^k"):
        tc.tau_k(rho, 0)


# ------------------------------------------------------------------ losses

@pytest.mark.parametrize("k", [1, 2, 5])
def test_losses_at_zero_and_brute_force(k):
    z = torch.zeros(3, k, dtype=torch.float64)
    assert torch.allclose(tc.logistic_loss(z), torch.full((3,), math.log2(k + 1), dtype=torch.float64))
    assert torch.allclose(tc.hinge_loss(z), torch.ones(3, dtype=torch.float64))
    assert tc.loss_at_zero("logistic", k) == pytest.approx(math.log2(k + 1))
    assert tc.loss_at_zero("hinge", k) == 1.0
    rng = np.random.default_rng(k)
    v = rng.normal(scale=3.0, size=(50, k))
    for name in ("logistic", "hinge"):
        got = tc.LOSSES[name](torch.as_tensor(v)).numpy()
        ref = np.array([_np_loss(name, row) for row in v])
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["logistic", "hinge"])
def test_losses_stable_float32_and_gradients(name):
    v = torch.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, 1e4]], dtype=torch.float32,
                     requires_grad=True)
    out = tc.LOSSES[name](v)
    assert out.dtype == torch.float32
    assert torch.all(torch.isfinite(out))
    out.sum().backward()
    assert torch.all(torch.isfinite(v.grad))
    # large margins -> loss about 0; large negative margins -> about 1e4 (in log2 units for logistic)
    assert out[2].item() == pytest.approx(0.0, abs=1e-6)
    expected = 1e4 / math.log(2) + math.log2(3) if name == "logistic" else 1 + 1e4
    assert out[1].item() == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------ exact terms vs naive loops

def _rand_discrete(rng, C, m, d, scale=1.0):
    emb = rng.normal(scale=scale, size=(C, m, d))
    pmf = rng.dirichlet(np.ones(m), size=C)
    return emb, pmf


def _naive_terms(emb, pmf, rho, name, k):
    C, m, _ = emb.shape
    mu = np.einsum("cm,cmd->cd", pmf, emb)
    tot = eq = teq = 0.0
    for classes in itertools.product(range(C), repeat=k + 1):
        wc = float(np.prod(rho[list(classes)]))
        cp, negs = classes[0], classes[1:]
        hit = cp in negs
        teq += wc * hit
        for a in range(m):
            for p in range(m):
                for nidx in itertools.product(range(m), repeat=k):
                    w = wc * pmf[cp, a] * pmf[cp, p] * np.prod([pmf[c, j] for c, j in zip(negs, nidx)])
                    x = emb[cp, a]
                    v = [x @ (emb[cp, p] - emb[c, j]) for c, j in zip(negs, nidx)]
                    lv = _np_loss(name, v)
                    tot += w * lv
                    eq += w * lv * hit
    # Def. 2.2 literally: sets T with P(T) = (k+1)! prod rho / P(distinct), uniform label in T.
    sets = list(itertools.combinations(range(C), k + 1))
    z = sum(math.factorial(k + 1) * np.prod(rho[list(T)]) for T in sets)
    sup = 0.0
    for T in sets:
        pT = math.factorial(k + 1) * np.prod(rho[list(T)]) / z
        for c in T:
            for a in range(m):
                v = [emb[c, a] @ (mu[c] - mu[c2]) for c2 in T if c2 != c]
                sup += pT / (k + 1) * pmf[c, a] * _np_loss(name, v)
    return {"L_un": tot, "L_un_eq": eq / teq, "L_un_neq": (tot - eq) / (1 - teq), "L_sup_mu": sup, "tau": teq}


@pytest.mark.parametrize("C,m,k", [(2, 1, 1), (3, 2, 1), (2, 2, 1), (3, 2, 2), (3, 1, 2)])
@pytest.mark.parametrize("name", ["logistic", "hinge"])
def test_exact_terms_match_naive_loops(C, m, k, name):
    rng = np.random.default_rng(100 * C + 10 * m + k)
    emb, pmf = _rand_discrete(rng, C, m, 3)
    rho = _rand_rho(rng, C)
    got = tt.exact_terms(emb, pmf, rho, name, k)
    ref = _naive_terms(emb, pmf, rho, name, k)
    for key in ("tau", "L_un", "L_un_eq", "L_un_neq", "L_sup_mu"):
        assert got[key] == pytest.approx(ref[key], rel=1e-10, abs=1e-12), key


def _naive_block(emb, pmf, rho, name, b):
    C, m, _ = emb.shape
    tot = 0.0
    for cp, cn in itertools.product(range(C), repeat=2):
        for a in range(m):
            for ps in itertools.product(range(m), repeat=b):
                for ns in itertools.product(range(m), repeat=b):
                    w = rho[cp] * rho[cn] * pmf[cp, a] * np.prod(pmf[cp, list(ps)]) * np.prod(pmf[cn, list(ns)])
                    v = emb[cp, a] @ (emb[cp, list(ps)].mean(0) - emb[cn, list(ns)].mean(0))
                    tot += w * _np_loss(name, [v])
    return tot


@pytest.mark.parametrize("name", ["logistic", "hinge"])
def test_block_loss_naive_and_prop_6_2_chain(name):
    rng = np.random.default_rng(7)
    emb, pmf = _rand_discrete(rng, 3, 2, 2, scale=1.5)
    rho = _rand_rho(rng, 3)
    for b in (1, 2):
        blk = tt.exact_block_loss(emb, pmf, rho, name, b)
        assert blk == pytest.approx(_naive_block(emb, pmf, rho, name, b), rel=1e-10)
    ex = tt.exact_terms(emb, pmf, rho, name, 1)
    assert tt.exact_block_loss(emb, pmf, rho, name, 1) == pytest.approx(ex["L_un"], rel=1e-12)
    blk2 = tt.exact_block_loss(emb, pmf, rho, name, 2)
    t = tc.tau(rho)
    assert ex["L_sup_mu"] <= tc.block_bound(blk2, t, name) + 1e-12
    assert tc.block_bound(blk2, t, name) <= tc.mean_classifier_bound(ex["L_un"], t, name) + 1e-12


# ------------------------------------------------------------------ the lemma (property test)

@settings(max_examples=40, deadline=None)
@given(C=st.integers(2, 4), m=st.integers(1, 3), d=st.integers(1, 4), k=st.sampled_from([1, 2]),
       name=st.sampled_from(["logistic", "hinge"]), scale=st.sampled_from([0.1, 1.0, 4.0]),
       seed=st.integers(0, 2**32 - 1))
def test_mean_classifier_lemma_random_encoders(C, m, d, k, name, scale, seed):
    rng = np.random.default_rng(seed)
    support = rng.normal(size=(C, m, 5))
    W = rng.normal(scale=scale, size=(5, d))
    emb = support @ W  # a random linear encoder of the support points
    pmf = rng.dirichlet(np.ones(m), size=C)
    rho = _rand_rho(rng, C)
    if k + 1 > C:
        k = 1
    ex = tt.exact_terms(emb, pmf, rho, name, k)
    lhs = ex["p_distinct"] * ex["L_sup_mu"] + ex["collision_floor"]
    assert lhs <= ex["L_un"] + 1e-10
    assert ex["L_sup_mu"] <= tc.mean_classifier_bound(ex["L_un"], ex["tau"], name, k, rho=rho) + 1e-10
    if k == 1:
        t = tc.tau(rho)
        assert (1 - t) * ex["L_sup_mu"] + t * tc.loss_at_zero(name, 1) <= ex["L_un"] + 1e-10
        assert ex["L_sup_mu"] <= ex["L_un_neq"] + 1e-10  # same Jensen step, no collisions
        assert ex["L_un_eq"] >= 1.0 - 1e-10  # ell(0) = 1 and Jensen on the collision part
    assert ex["L_un"] == pytest.approx((1 - ex["tau"]) * ex["L_un_neq"] + ex["tau"] * ex["L_un_eq"], rel=1e-10)


def test_lemma_is_tight_for_collapsed_classes():
    # f constant within each class: Jensen is equality, so the k=1 lemma holds with equality.
    rng = np.random.default_rng(3)
    C, m = 3, 2
    means = rng.normal(size=(C, 1, 2))
    emb = np.repeat(means, m, axis=1)
    pmf = rng.dirichlet(np.ones(m), size=C)
    rho = _rand_rho(rng, C)
    for name in ("logistic", "hinge"):
        ex = tt.exact_terms(emb, pmf, rho, name, 1)
        assert tc.mean_classifier_bound(ex["L_un"], ex["tau"], name) == pytest.approx(ex["L_sup_mu"], rel=1e-10)


# ------------------------------------------------------------------ Monte Carlo vs exact

def _pools(rng, emb, pmf, n):
    C, m, d = emb.shape
    idx = np.stack([rng.choice(m, size=n, p=pmf[c]) for c in range(C)])
    return emb[np.arange(C)[:, None], idx]  # (C, n, d)


@pytest.mark.parametrize("k,max_pairs", [(1, 100_000), (1, 0), (2, 100_000)])
@pytest.mark.parametrize("name", ["logistic", "hinge"])
def test_mc_terms_agree_with_exact(k, max_pairs, name):
    rng = np.random.default_rng(11 + k + max_pairs % 7)
    C, m = 4, 3
    emb, pmf = _rand_discrete(rng, C, m, 3)
    rho = _rand_rho(rng, C)
    ex = tt.exact_terms(emb, pmf, rho, name, k)
    mu = np.einsum("cm,cmd->cd", pmf, emb)  # exact means: SE is then the whole error
    n = 6000
    a, p, ng = _pools(rng, emb, pmf, n), _pools(rng, emb, pmf, n), _pools(rng, emb, pmf, n * k)
    mc = tt.mc_terms(a, p, ng, mu, rho, name, k, rng, max_pairs=max_pairs)
    assert mc["exact_over_classes"] == (k == 1 and max_pairs > 0)
    for key in ("L_un", "L_un_eq", "L_un_neq", "L_sup_mu"):
        se = mc[key + "_se"]
        assert 0 < se < 0.05, key
        assert abs(mc[key] - ex[key]) <= 4 * se, (key, mc[key], ex[key], se)
    assert mc["tau"] == pytest.approx(ex["tau"], abs=1e-14)


def test_mc_terms_rejects_too_many_tuples():
    rng = np.random.default_rng(0)
    pools = rng.normal(size=(3, 10, 2))
    rho = np.full(3, 1 / 3)
    with pytest.raises(ValueError, match="^emb_anchor"):
        tt.mc_terms(pools, pools, pools, pools[:, 0], rho, "hinge", 2, rng, n_tuples=50)
    with pytest.raises(ValueError, match="^n_tuples"):
        tt.mc_terms(pools[:, :3], pools[:, :3], pools, pools[:, 0], rho, "hinge", 2, rng)


@pytest.mark.parametrize("k", [1, 3])
def test_stratum_usage_matches_enumeration(k):
    rng = np.random.default_rng(k)
    rho = _rand_rho(rng, 4, zero=True)
    use = tt._stratum_usage(rho, k)
    for name, cond in (("eq", lambda t: t[0] in t[1:]), ("neq", lambda t: t[0] not in t[1:])):
        table = _cond_table(rho, k, cond)
        anchor, neg = np.zeros(4), np.zeros(4)
        for t, w in table.items():
            anchor[t[0]] += w
            for c in t[1:]:
                neg[c] += w
        np.testing.assert_allclose(use["anchor_" + name], anchor, atol=1e-12)
        np.testing.assert_allclose(use["neg_" + name], neg, atol=1e-12)


def test_mc_terms_many_negatives_small_pools():
    # k = 3 negatives from pools of 4000 per class: per-class fresh columns need
    # about 2 n_tuples k rho_c draws of class c, not 2 n_tuples k.  Tasks use all 4 classes.
    rng = np.random.default_rng(5)
    C, m, k = 4, 2, 3
    emb, pmf = _rand_discrete(rng, C, m, 2)
    rho = np.full(C, 1 / C)
    ex = tt.exact_terms(emb, pmf, rho, "logistic", k)
    mu = np.einsum("cm,cmd->cd", pmf, emb)
    a, p, ng = (_pools(rng, emb, pmf, 4000) for _ in range(3))
    mc = tt.mc_terms(a, p, ng, mu, rho, "logistic", k, rng)
    assert not mc["exact_over_classes"]
    for key in ("L_un", "L_un_eq", "L_un_neq", "L_sup_mu"):
        assert abs(mc[key] - ex[key]) <= 4 * mc[key + "_se"], key


# ------------------------------------------------------------------ samplers

def _cond_table(rho, k, cond):
    table = {}
    for tup in itertools.product(range(len(rho)), repeat=k + 1):
        w = float(np.prod(rho[list(tup)]))
        if cond(tup) and w > 0:
            table[tup] = w
    z = sum(table.values())
    return {t: w / z for t, w in table.items()}


def _chi2_ok(samples, table):
    keys = list(table)
    pos = {t: i for i, t in enumerate(keys)}
    counts = np.zeros(len(keys))
    for row in map(tuple, samples):
        assert row in pos, row  # never outside the conditioning event
        counts[pos[row]] += 1
    exp = np.array([table[t] for t in keys]) * len(samples)
    return chisquare(counts, exp).pvalue


@pytest.mark.parametrize("C,k", [(4, 1), (4, 3), (5, 2)])
def test_sample_task_tuples_law(C, k):
    rng = np.random.default_rng(C + k)
    rho = _rand_rho(rng, C)
    s = tt.sample_task_tuples(rho, k, 20000, rng)
    table = _cond_table(rho, k, lambda t: len(set(t)) == len(t))
    assert _chi2_ok(s, table) > 1e-4


@pytest.mark.parametrize("k", [1, 3])
def test_collision_samplers_law(k):
    rng = np.random.default_rng(5 + k)
    rho = _rand_rho(rng, 3, zero=True)
    cp, cn = tt._sample_collision(rho, k, 20000, rng)
    s = np.concatenate([cp[:, None], cn], axis=1)
    assert _chi2_ok(s, _cond_table(rho, k, lambda t: t[0] in t[1:])) > 1e-4
    cp, cn = tt._sample_no_collision(rho, k, 20000, rng)
    s = np.concatenate([cp[:, None], cn], axis=1)
    assert _chi2_ok(s, _cond_table(rho, k, lambda t: t[0] not in t[1:])) > 1e-4


# ------------------------------------------------------------------ Rademacher and Gen_M

def test_rademacher_linear_against_monte_carlo():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    B, dout = 2.0, 3
    bound = tc.rademacher_linear(X, B, dout)
    # sup_{||W||_F <= B} <W, sum_j sigma_j x_j^T> = B ||sum_j sigma_j x_j^T||_F exactly.
    sig = rng.choice([-1.0, 1.0], size=(4000, 30, dout))
    mc = B * np.linalg.norm(np.einsum("sjt,jd->std", sig, X), axis=(1, 2)).mean()
    assert mc <= bound
    assert mc >= 0.9 * bound  # Jensen is nearly tight for many points


def test_rademacher_mlp_dominates_contained_linear_class():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(25, 3))
    B1, B2, dout = 1.5, 2.0, 2
    bound = tc.rademacher_mlp(X, B1, B2, dout)
    # The MLP class contains x -> (B1 B2 / 2) a b^T x (hidden units b, -b; output a, -a),
    # whose sup is (B1 B2 / 2) * spectral norm of sum_j sigma_j x_j^T.
    sig = rng.choice([-1.0, 1.0], size=(3000, 25, dout))
    mats = np.einsum("sjt,jd->std", sig, X)
    lower = B1 * B2 / 2 * np.linalg.norm(mats, ord=2, axis=(1, 2)).mean()
    assert lower <= bound
    assert tc.rademacher_mlp(2 * X, B1, B2, dout) == pytest.approx(2 * bound)


@pytest.mark.parametrize("name", ["logistic", "hinge"])
@pytest.mark.parametrize("k", [1, 4])
def test_loss_lipschitz_and_range(name, k):
    rng = np.random.default_rng(k)
    R, d = 1.3, 3
    ell = tc.LOSSES[name]

    def ball(n):
        u = rng.normal(size=(n, k + 2, d))
        return u / np.linalg.norm(u, axis=-1, keepdims=True) * R * rng.random((n, k + 2, 1)) ** 0.2

    def h(u):
        v = np.einsum("nd,nkd->nk", u[:, 0], u[:, 1:2] - u[:, 2:])
        return ell(torch.as_tensor(v)).numpy()

    u = ball(20000)
    du = rng.normal(size=u.shape) * 1e-3
    u2 = u + du
    u2 = u2 / np.maximum(1, np.linalg.norm(u2, axis=-1, keepdims=True) / R)
    ratio = np.abs(h(u) - h(u2)) / np.linalg.norm((u - u2).reshape(len(u), -1), axis=1)
    assert ratio.max() <= tc.loss_lipschitz(R, name)
    # Worst case for the range: x+ = -x, every x- = x gives margins -2R^2.
    x = np.ones(d) / math.sqrt(d) * R
    worst = np.concatenate([[x, -x], np.tile(x, (k, 1))])[None]
    assert h(worst)[0] == pytest.approx(tc.loss_range(R, k, name), rel=1e-12)
    assert h(u).max() <= tc.loss_range(R, k, name)


def test_gen_term_and_theorem_bound():
    g = tc.gen_term(rad=50.0, R=1.0, k=1, M=1000, delta=0.05, loss="logistic")
    assert g > 0
    assert tc.gen_term(50.0, 1.0, 1, 4000, 0.05, "logistic") < g
    assert tc.gen_term(100.0, 1.0, 1, 1000, 0.05, "logistic") > g
    assert tc.gen_term(50.0, 1.0, 1, 1000, 0.01, "logistic") > g
    # rad growing like sqrt(M) (norm-bounded classes): Gen_M -> 0 like 1/sqrt(M)
    g1 = tc.gen_term(math.sqrt(1e4), 1.0, 1, 10**4, 0.05, "hinge")
    g2 = tc.gen_term(math.sqrt(1e6), 1.0, 1, 10**6, 0.05, "hinge")
    assert g2 == pytest.approx(g1 / 10, rel=1e-12)
    t = 0.1
    # the registered Theorem 4.1 form: L^_un(f^) + Gen_M / 2 in place of L_un in Lemma 4.3
    assert tc.gen_bound_from_terms(0.5, 0.0, t, 1 - t) == pytest.approx(tc.mean_classifier_bound(0.5, t, "hinge"))
    assert tc.gen_bound_from_terms(0.5, 0.4, t, 1 - t) == pytest.approx((0.5 + 0.2 - t) / (1 - t))
    with pytest.raises(ValueError, match="^delta"):
        tc.gen_term(1.0, 1.0, 1, 10, 1.5, "hinge")
    with pytest.raises(ValueError, match="^M"):
        tc.gen_term(1.0, 1.0, 1, 0, 0.1, "hinge")
    with pytest.raises(ValueError, match="^loss"):
        tc.gen_term(1.0, 1.0, 1, 10, 0.1, "square")


def test_mean_classifier_bound_k_gt_1_arguments():
    rho = np.array([0.5, 0.3, 0.2])
    t2 = tc.tau_k(rho, 2)
    with pytest.raises(ValueError, match="^rho"):
        tc.mean_classifier_bound(1.0, t2, "hinge", 2)
    with pytest.raises(ValueError, match="^tau"):
        tc.mean_classifier_bound(1.0, t2 + 0.01, "hinge", 2, rho=rho)
    pd, fl = tc.p_distinct(rho, 2), tc.collision_floor(rho, 2, "logistic")
    assert tc.mean_classifier_bound(1.7, t2, "logistic", 2, rho=rho) == pytest.approx((1.7 - fl) / pd)


def test_coverage_negatives_is_the_coupon_collector_mean():
    import numpy as np
    from theory.contrastive import coverage_negatives
    for C in (2, 7, 40):
        assert np.isclose(coverage_negatives(np.full(C, 1 / C)), C * sum(1 / i for i in range(1, C + 1)), rtol=1e-9)
    rho = np.array([0.5, 0.3, 0.2])
    rng = np.random.default_rng(0)
    draws = rng.choice(3, size=(20000, 80), p=rho)
    seen = np.maximum.accumulate(np.stack([np.cumsum(draws == c, 1) > 0 for c in range(3)]).all(0), axis=1)
    T = seen.argmax(1) + 1  # first draw at which every class has appeared
    assert abs(T.mean() - coverage_negatives(rho)) < 4 * T.std() / np.sqrt(len(T))
    # a class with no mass is never waited for
    assert np.isclose(coverage_negatives(np.array([0.5, 0.5, 0.0])), 3.0, rtol=1e-9)


def test_the_negatives_figure_reads_coverage_informative_and_plateau():
    import pandas as pd
    from analysis.contrastive import coverage_view
    s = pd.DataFrame({"n_classes": 10, "tau": 0.1, "loss": "logistic", "k": [1, 2, 4, 8, 16, 32],
                      "bound": [0.5, 1.2, 3.0, 30.0, 1e3, 1e5],
                      "verdict": ["holds", "holds", "vacuous", "vacuous", "vacuous", "vacuous"],
                      "mean_acc": [0.60, 0.65, 0.69, 0.705, 0.70, 0.71]})
    v = coverage_view(s)
    # log2(k+1) = 1, 1.58, 2.32, ...: the bound is informative at k = 1 and 2 only, and the judged verdicts
    # (bounds.csv's, not judged again here) say so
    assert v["informative_k"] == 2 and v["plateau_k"] == 8
    assert abs(v["coverage"] - 29.2896825) < 1e-6
    # the view reads the verdict column: a vacuous verdict at k = 2 makes k = 1 the last informative one
    assert coverage_view(s.assign(verdict=["holds", "vacuous"] + ["vacuous"] * 4))["informative_k"] == 1


def test_the_scalar_bounds_are_the_registered_functions():
    """One formula per theorem: the scalar API the proofs test computes exactly what bounds.csv's rows use."""
    reg = {t.id: t for t in tc.THEOREMS}
    rho = np.array([0.5, 0.3, 0.2])
    t = tc.tau(rho)
    assert tc.block_bound(0.8, t, "hinge") == reg["contrastive.proposition_6_2"].bound_from(
        {"L_block": [0.8], "tau": [t]})[0]
    assert tc.mean_classifier_bound(0.8, t, "logistic") == reg["contrastive.lemma_4_3"].bound_from(
        {"L_un": [0.8], "collision_floor": [t], "p_distinct": [1 - t]})[0]
    terms = tc.collision_terms(rho, 2, "logistic")
    assert tc.mean_classifier_bound(1.7, terms["tau"], "logistic", 2, rho) == \
        reg["contrastive.lemma_4_3_k_negatives"].bound_from({"L_un": [1.7], **{k: [v] for k, v in terms.items()}})[0]
    with pytest.raises(ValueError, match="^tau"):
        tc.block_bound(0.8, 1.0, "hinge")
    assert not hasattr(tc, "theorem_bound"), "Theorem 4.1 has one form: the registered gen_bound_from_terms"
