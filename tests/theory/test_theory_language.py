"""Tests of theory/language.py (+ language_softmax.py): direct sums, the bound on random tiny HMMs, Quad."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import minimize

from synthetic_data.language import FAMILIES, DataSpec, TaskSpec, build_model, make_task
from theory import language as tl
from theory import language_softmax as tls

SIZES = {"dirichlet": {}, "sparse": {}, "topic": {"n_topics": 2}, "ginc": {"n_hmms": 2}}


def _tiny_hmm(family, K, V, L, seed):
    if family == "ginc":
        K = 2 if K < 2 else K // 2 + 1
    if family == "topic":
        K, V = max(K, 2), max(V, 2)
    spec = DataSpec(family=family, n_states=K, vocab=V, context_len=L, concentration=0.7, leak=0.2,
                    determinism=0.6, **SIZES[family])
    return build_model(spec, np.random.default_rng(seed))


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _random_v(rng, V, B):
    u = rng.uniform(-1, 1, V)
    return B * (2 * (u - u.min()) / np.ptp(u) - 1)


# ------------------------------------------------------------------ KL, epsilon, losses: direct sums

def test_kl_and_epsilon_direct_summation():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(5), size=7)
    P[0, 2] = 0.0
    P[0] /= P[0].sum()
    Q = rng.dirichlet(np.ones(5), size=7)
    want = np.array([sum(P[i, j] * math.log(P[i, j] / Q[i, j]) for j in range(5) if P[i, j] > 0) for i in range(7)])
    np.testing.assert_allclose(tl.kl(P, Q), want, rtol=1e-13)
    assert tl.kl(P, P) == pytest.approx(np.zeros(7), abs=1e-15)
    Q2 = Q.copy()
    Q2[1, 0] = 0.0
    assert np.isinf(tl.kl(P, Q2)[1]) and np.isfinite(tl.kl(P, Q2)[0])
    Q3 = Q.copy()
    Q3[0, 2] = 0.0  # p = 0 where p* = 0: no contribution
    assert np.isfinite(tl.kl(P, Q3)[0])
    w = rng.dirichlet(np.ones(7))
    eps, se = tl.epsilon(P, Q, w)
    assert eps == pytest.approx(float(np.dot(w, want)), rel=1e-13) and se == 0.0
    eps2, se2 = tl.epsilon(P, Q, 3 * w)  # weights are renormalised
    assert eps2 == pytest.approx(eps, rel=1e-13)
    m, s = tl.epsilon(P, Q)
    assert m == pytest.approx(want.mean()) and s == pytest.approx(want.std(ddof=1) / math.sqrt(7))
    # xent excess: l_xent(p) - l_xent(p*) = E KL
    xent = lambda R: -np.sum(w[:, None] * np.where(P > 0, P * np.log(np.where(R > 0, R, 1)), 0))
    assert xent(Q) - xent(P) == pytest.approx(eps, rel=1e-12)


def test_epsilon_mc_has_honest_se():
    rng = np.random.default_rng(1)
    h = build_model(DataSpec(vocab=4, context_len=4), rng)
    s, p = h.enumerate_contexts()
    P = h.next_word(s)
    Q = tls.softmax(np.log(P) + 0.5 * rng.standard_normal(P.shape))
    exact, _ = tl.epsilon(P, Q, p)
    ws, _ = h.sample(4000, 4, rng)
    idx = np.ravel_multi_index(ws.T, (4,) * 4)
    mc, se = tl.epsilon(P[idx], Q[idx])
    assert 0 < se < 0.2 * exact and abs(mc - exact) < 4 * se


def test_logistic_loss_and_plugin_loss():
    m = np.array([-1e4, -3.0, 0.0, 2.5, 1e4])
    got = tl.logistic_loss(m)
    assert np.all(np.isfinite(got))
    assert got[2] == pytest.approx(math.log(2)) and got[0] == pytest.approx(1e4) and got[4] == pytest.approx(0.0)
    np.testing.assert_allclose(got[1:4], np.log1p(np.exp(-m[1:4])), rtol=1e-14)
    rng = np.random.default_rng(2)
    F = rng.dirichlet(np.ones(4), size=6)
    q, w = rng.random(6), rng.dirichlet(np.ones(6))
    v, b = rng.normal(size=4), 0.3
    want = sum(w[i] * sum(py * math.log1p(math.exp(-y * (F[i] @ v + b))) for y, py in ((1, q[i]), (-1, 1 - q[i])))
               for i in range(6))
    assert tl.plugin_loss(v, b, F, q, w)[0] == pytest.approx(want, rel=1e-13)
    assert tl.tau(v, b, F, q, w)[0] == pytest.approx(want, rel=1e-13)
    # well-specified labels: the plug-in loss is the conditional entropy (Bayes loss)
    assert tl.tau(v, b, F, _sig(F @ v + b), w)[0] == pytest.approx(tl.label_entropy(_sig(F @ v + b), w)[0], rel=1e-12)


def test_half_range_transfer_coefficient_and_bound():
    assert tl.half_range([3.0, -1.0, 0.5]) == 2.0
    p = np.array([0.5, 0.3, 0.2, 0.0])
    assert tl.transfer_coefficient(p, p) == 1.0
    assert tl.transfer_coefficient([0.4, 0.4, 0.2, 0.0], p) == pytest.approx(0.8)
    assert tl.transfer_coefficient([0.5, 0.5, 0.0, 0.0], p) == 0.0
    assert tl.bound(0.2, 2.0, 0.01, 0.5) == pytest.approx(0.2 + math.sqrt(2 * 4 * 0.01 / 0.5))
    np.testing.assert_allclose(tl.bound(np.array([0.1, 0.2]), 1.0, np.array([0.0, -1e-18]), 1.0), [0.1, 0.2])
    assert tl.bound_se(0.0, 1.0, 0.1, 0.0, 1.0) == 0.0
    assert 0 < tl.bound_se(0.0, 1.0, 0.1, 0.01, 1.0) < tl.bound_se(0.0, 1.0, 0.1, 0.02, 1.0)
    assert np.isfinite(tl.bound_se(0.01, 1.0, 0.0, 0.01, 1.0))


def test_tau_fit_is_the_constrained_minimum():
    rng = np.random.default_rng(3)
    P = rng.dirichlet(np.ones(3) * 0.5, size=40)
    w = rng.dirichlet(np.ones(40))
    q = _sig(P @ np.array([6.0, -6.0, 0.0]))  # needs more than B = 1 to be reached
    t, v, b = tl.tau_fit(P, q, 1.0, w)
    assert np.max(np.abs(v)) <= 1.0 + 1e-9
    assert t == pytest.approx(tl.plugin_loss(v, b, P, q, w)[0], rel=1e-12)
    # against a brute grid over the box, b optimised per grid point by a vectorised 1-D Newton
    grid = np.array(list(itertools.product(np.linspace(-1, 1, 21), repeat=3)))
    M = P @ grid.T
    bb = np.zeros(len(grid))
    for _ in range(60):
        sg = _sig(M + bb)
        bb -= (w @ (sg - q[:, None])) / (w @ (sg * (1 - sg)))
    best = np.min(w @ tl.expected_logistic_loss(M + bb, q[:, None]))
    assert t <= best + 1e-9 and t >= best - 2e-3
    # the unconstrained truth is reachable with B = 6: tau_fit falls to the Bayes loss
    t6, _, _ = tl.tau_fit(P, q, 6.0, w)
    assert t6 == pytest.approx(tl.label_entropy(q, w)[0], abs=1e-7)
    assert t6 < t


# ------------------------------------------------------------------ transfer coefficient from the language

def test_gamma_is_one_when_laws_coincide_and_prompt_gamma_matches_enumeration():
    h = _tiny_hmm("dirichlet", 3, 3, 3, 0)
    t = make_task(TaskSpec(kind="logistic"), h, np.random.default_rng(0))
    _, p_task, p_lm = t.context_laws(h)
    assert tl.transfer_coefficient(p_lm, p_task) == 1.0
    tp = make_task(TaskSpec(kind="prompt", prompt=(1,)), h, np.random.default_rng(0))
    s, p_task, p_lm = tp.context_laws(h)
    # by enumeration: min over s of P(prompt | s) = min P(s, 1) / P(s), with P(s, w) summed over all 3-word contexts
    w3, p3 = h.enumerate_contexts(3)
    joint = p3.reshape(9, 3)
    assert tl.transfer_coefficient(p_lm, p_task) == pytest.approx(np.min(joint[:, 1] / joint.sum(1)), rel=1e-12)
    assert tl.transfer_coefficient(p_lm, p_task) < 1


# ------------------------------------------------------------------ the any-LM bound (property test)

@settings(max_examples=40, deadline=None)
@given(family=st.sampled_from(FAMILIES), K=st.integers(2, 3), V=st.integers(2, 3), L=st.integers(1, 3),
       noise=st.sampled_from([0.01, 0.3, 2.0]), labels=st.sampled_from(["logistic", "deterministic", "random"]),
       shift=st.booleans(), B=st.sampled_from([0.5, 2.0, 8.0]), seed=st.integers(0, 2**32 - 1))
def test_bound_holds_for_random_lms_on_random_tiny_hmms(family, K, V, L, noise, labels, shift, B, seed):
    rng = np.random.default_rng(seed)
    h = _tiny_hmm(family, K, V, L, seed)
    s, p_lm = h.enumerate_contexts(L)
    P = h.next_word(s)
    Q = tls.softmax(np.log(P) + noise * rng.standard_normal(P.shape))  # a random LM
    v, b = _random_v(rng, h.vocab, B), rng.normal()
    q = {"logistic": _sig(P @ v + b), "deterministic": (P @ v + b > 0).astype(float),
         "random": rng.random(len(s))}[labels]
    # the task's context law: the LM's, or a reweighting of it (gamma < 1)
    p_task = p_lm * rng.uniform(0.2, 1.0, len(s)) if shift else p_lm.copy()
    p_task /= p_task.sum()
    gamma = tl.transfer_coefficient(p_lm, p_task)
    assert 0 < gamma <= 1 + 1e-12 and (shift or gamma == pytest.approx(1.0))
    eps, _ = tl.epsilon(P, Q, p_lm)
    tau, _ = tl.tau(v, b, P, q, p_task)
    loss, _ = tl.plugin_loss(v, b, Q, q, p_task)
    assert loss <= tl.bound(tau, tl.half_range(v), eps, gamma) + 1e-12
    ch = tl.l1_chain(v, P, Q, p_task, weights_lm=p_lm, b=b, label_prob=q)
    steps = ["excess", "lipschitz", "hoelder", "jensen", "change_of_measure", "pinsker"]
    for a, c in zip(steps, steps[1:]):
        assert ch[a] <= ch[c] * (1 + 1e-12) + 1e-14, (a, c, ch)
    assert ch["gamma"] == pytest.approx(gamma) and ch["epsilon"] == pytest.approx(eps, rel=1e-12)
    assert ch["tau"] + ch["pinsker"] == pytest.approx(tl.bound(tau, tl.half_range(v), eps, gamma), rel=1e-12)


def test_chain_steps_can_be_tight_and_use_the_half_range():
    # p = p*: every step is 0. One context, Delta along v: Lipschitz and Hoelder are equalities.
    P = np.array([[0.5, 0.5]])
    ch = tl.l1_chain(np.array([10.0, 12.0]), P, P)
    assert all(ch[k] == 0 for k in ("lipschitz", "hoelder", "jensen", "pinsker"))
    Q = np.array([[0.4, 0.6]])
    ch = tl.l1_chain(np.array([10.0, 12.0]), P, Q)
    assert ch["B"] == 1.0  # half-range, not ||v||_inf = 12
    assert ch["lipschitz"] == pytest.approx(0.2) and ch["hoelder"] == pytest.approx(0.2)
    assert ch["jensen"] == pytest.approx(0.2) and ch["change_of_measure"] == pytest.approx(0.2)


def test_prompt_task_bound_on_the_language():
    h = _tiny_hmm("ginc", 4, 3, 3, 5)
    t = make_task(TaskSpec(kind="prompt", prompt=(0,), B=3.0), h, np.random.default_rng(1))
    s, p_task, p_lm = t.context_laws(h)
    P = t.features(h, s)
    Q = tls.softmax(np.log(P) + 0.5 * np.random.default_rng(2).standard_normal(P.shape))
    q = t.context_label_prob(h, s)
    c_all, p_all = h.enumerate_contexts(3)
    idx = np.ravel_multi_index(t.context(s).T, (3,) * 3)
    np.testing.assert_allclose(p_all[idx], p_lm, rtol=1e-12)
    # epsilon over the LM's whole law, with the LM on the other contexts equal to p* (no excess there)
    P_all = h.next_word(c_all)
    Q_all = P_all.copy()
    Q_all[idx] = Q
    eps = tl.epsilon(P_all, Q_all, p_all)[0]
    gamma = tl.transfer_coefficient(p_lm, p_task)
    tau = tl.tau(t.v, t.b, P, q, p_task)[0]
    assert tl.plugin_loss(t.v, t.b, Q, q, p_task)[0] <= tl.bound(tau, t.B, eps, gamma)
    ch = tl.l1_chain(t.v, P, Q, p_task, weights_lm=p_lm, b=t.b, label_prob=q)
    assert ch["epsilon"] == pytest.approx(eps, rel=1e-10)  # the excess lives on the prompted contexts only
    assert ch["excess"] <= ch["lipschitz"] <= ch["change_of_measure"] <= ch["pinsker"] + 1e-15


def test_non_natural_task_is_flagged_by_tau_fit():
    h = build_model(DataSpec(family="dirichlet", n_states=4, vocab=4, context_len=4, concentration=0.3),
                    np.random.default_rng(0))
    s, p = h.enumerate_contexts()
    gaps = {}
    for kind in ("logistic", "non_natural"):
        t = make_task(TaskSpec(kind=kind, B=4.0), h, np.random.default_rng(1))
        q = t.context_label_prob(h, s)
        P = t.features(h, s)
        fit, v, _ = tl.tau_fit(P, q, 4.0, p)
        gaps[kind] = fit - tl.label_entropy(q, p)[0]
        if kind == "logistic":
            assert fit <= tl.tau(t.v, t.b, P, q, p)[0] + 1e-9  # the task's own v is feasible
    assert gaps["logistic"] < 1e-6  # natural: the best probe on p* is Bayes optimal
    assert gaps["non_natural"] > 0.05  # the label's information is not in p*_s


# ------------------------------------------------------------------ softmax LM with fixed Phi

def test_best_logits_against_scipy_and_singular_phi():
    rng = np.random.default_rng(4)
    V, d = 6, 3
    P = rng.dirichlet(np.ones(V), size=5)
    for Phi in (rng.normal(size=(d, V)), np.concatenate([np.ones((1, V)), rng.normal(size=(d, V))])):
        th = tls.best_logits(Phi, P)
        for i in range(5):
            f = lambda x: -x @ Phi @ P[i] + np.log(np.sum(np.exp(x @ Phi)))
            r = minimize(f, np.zeros(Phi.shape[0]), method="BFGS", options={"gtol": 1e-10})
            assert f(th[i]) <= r.fun + 1e-12
        np.testing.assert_allclose(tls.softmax(th @ Phi) @ Phi.T, P @ Phi.T, atol=1e-10)
        assert np.all(np.isfinite(th))


@settings(max_examples=25, deadline=None)
@given(family=st.sampled_from(FAMILIES), V=st.integers(2, 3), d=st.integers(1, 3), L=st.integers(1, 3),
       scale=st.sampled_from([0.3, 1.0, 3.0]), shift=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_softmax_bound_with_moment_matching(family, V, d, L, scale, shift, seed):
    rng = np.random.default_rng(seed)
    h = _tiny_hmm(family, 3, V, L, seed)
    s, p_lm = h.enumerate_contexts(L)
    P = h.next_word(s)
    V = h.vocab
    Phi = scale * rng.normal(size=(d, V))
    th_star = tls.best_logits(Phi, P)
    p_best = tls.softmax(th_star @ Phi)
    np.testing.assert_allclose(p_best @ Phi.T, P @ Phi.T, atol=1e-8)  # moment matching at the in-class optimum
    th = th_star + rng.normal(scale=scale, size=th_star.shape)  # a random LM in the class
    p_f = tls.softmax(th @ Phi)
    # l_s(theta) - l_s(theta*) = KL(p_theta* || p_theta) [derived], so eps_Phi >= 0
    np.testing.assert_allclose(tl.kl(P, p_f) - tls.best_kl(Phi, P), tl.kl(p_best, p_f), atol=1e-9)
    eps_phi, _ = tls.epsilon_phi(Phi, P, p_f, p_lm)
    assert eps_phi >= -1e-12
    # a task natural w.r.t. Phi: v = Phi^T lambda; the probe lambda reads Phi p_f
    lam = rng.normal(size=d)
    v, b = Phi.T @ lam, rng.normal()
    q = _sig(P @ v + b)
    p_task = p_lm * (rng.uniform(0.3, 1.0, len(s)) if shift else 1.0)
    p_task /= p_task.sum()
    gamma = tl.transfer_coefficient(p_lm, p_task)
    tau, _ = tl.tau(v, b, P, q, p_task)
    loss, _ = tl.plugin_loss(lam, b, tls.conditional_mean(Phi, p_f), q, p_task)
    assert loss == pytest.approx(tl.plugin_loss(v, b, p_f, q, p_task)[0], rel=1e-12)
    assert loss <= tls.softmax_bound(tau, tl.half_range(v), eps_phi, gamma) + 1e-9
    # per-context Hoeffding/Pinsker step: (v . (p_theta - p*))^2 <= 2 B^2 (l_s(theta) - l_s(theta*))
    lhs = ((p_f - P) @ v) ** 2
    assert np.all(lhs <= 2 * tl.half_range(v) ** 2 * tl.kl(p_best, p_f) + 1e-9)


def test_phi_coords_and_affine_r2():
    rng = np.random.default_rng(5)
    Phi = rng.normal(size=(2, 5))
    lam, c, res = tls.phi_coords(Phi, Phi.T @ np.array([1.0, -2.0]) + 0.7)
    np.testing.assert_allclose(lam, [1.0, -2.0], atol=1e-10)
    assert c == pytest.approx(0.7) and res < 1e-10
    assert tls.phi_coords(Phi, rng.normal(size=5))[2] > 1e-3
    f = rng.normal(size=(50, 3))
    assert tls.affine_r2(f, f @ rng.normal(size=(3, 2)) + 1.0) == pytest.approx(1.0, abs=1e-12)
    r2 = tls.affine_r2(f, np.sin(3 * f[:, :1]))
    assert 0 <= r2 < 0.9


# ------------------------------------------------------------------ Quad

def _quad_instance(seed, V=4):
    rng = np.random.default_rng(seed)
    h = build_model(DataSpec(family="topic", n_states=4, vocab=V, context_len=2, n_topics=2, concentration=0.5,
                             leak=0.3), rng)
    s, p = h.enumerate_contexts()
    return h.next_word(s), p, rng


def test_quad_closed_form_against_numerical_minimisation():
    P, w, rng = _quad_instance(0)
    V, d, n = P.shape[1], 2, P.shape[0]
    Om = tls.omega(P, w)
    np.testing.assert_allclose(Om, sum(w[i] * np.outer(P[i], P[i]) for i in range(n)), atol=1e-15)
    lam = np.linalg.eigvalsh(Om)[::-1]
    assert lam[d - 1] - lam[d] > 1e-4  # an eigengap, so the top-d space is well defined

    def fun(x):
        Phi, f = x[:d * V].reshape(d, V), x[d * V:].reshape(n, d)
        G = f @ Phi  # (n, V)
        val = np.sum(w * (-np.sum(G * P, 1) + 0.5 * np.sum(G ** 2, 1)))
        R = w[:, None] * (G - P)
        return val, np.concatenate([(f.T @ R).ravel(), (R @ Phi.T).ravel()])

    best = None
    for start in range(3):
        x0 = rng.normal(scale=0.5, size=d * V + n * d)
        r = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"maxiter": 20000, "ftol": 1e-16, "gtol": 1e-12})
        best = r if best is None or r.fun < best.fun else best
    Phi_num = best.x[:d * V].reshape(d, V)
    assert best.fun == pytest.approx(tls.quad_min_loss(Om, d), abs=1e-9)
    Phi_top = tls.quad_optimal_phi(Om, d)
    assert np.max(tls.principal_angles(Phi_num, Phi_top)) < 1e-3
    np.testing.assert_allclose(Phi_top @ Phi_top.T, np.eye(d), atol=1e-12)
    f_star = tls.quad_optimal_f(Phi_top, P)
    assert tls.quad_loss(f_star, Phi_top, P, w) == pytest.approx(tls.quad_min_loss(Om, d), abs=1e-14)
    # any other d-dim Phi does worse; the closed form f* beats perturbed f for a fixed random Phi
    Phi_r = rng.normal(size=(d, V))
    f_r = tls.quad_optimal_f(Phi_r, P)
    assert tls.quad_loss(f_r, Phi_r, P, w) > tls.quad_min_loss(Om, d)
    f_pert = f_r + 0.01 * rng.normal(size=f_r.shape)
    assert tls.quad_loss(f_pert, Phi_r, P, w) > tls.quad_loss(f_r, Phi_r, P, w)
    eq, _ = tls.epsilon_quad(f_pert, Phi_r, P, w)
    assert eq == pytest.approx(tls.quad_loss(f_pert, Phi_r, P, w) - tls.quad_loss(f_r, Phi_r, P, w), rel=1e-9)


@settings(max_examples=20, deadline=None)
@given(d=st.integers(1, 3), scale=st.sampled_from([0.05, 0.5]), seed=st.integers(0, 2**32 - 1))
def test_quad_bound_random_f(d, scale, seed):
    P, w, rng = _quad_instance(seed % 7)
    Phi = rng.normal(size=(d, P.shape[1]))
    f = tls.quad_optimal_f(Phi, P) + scale * rng.normal(size=(P.shape[0], d))
    v, b = Phi.T @ rng.normal(size=d), rng.normal()
    q = _sig(P @ v + b)
    tau, _ = tl.tau(v, b, P, q, w)
    eq, _ = tls.epsilon_quad(f, Phi, P, w)
    loss, _ = tl.plugin_loss(v, b, f @ Phi, q, w)  # the probe v . Phi^T f(s), linear in f(s)
    assert loss <= tls.quad_bound(tau, np.linalg.norm(v), eq, 1.0) + 1e-12


def test_principal_angles_known_values():
    a = 0.3
    ang = tls.principal_angles(np.array([[1.0, 0.0, 0.0]]), np.array([[math.cos(a), math.sin(a), 0.0]]))
    assert ang[0] == pytest.approx(a, abs=1e-12)
    A = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    np.testing.assert_allclose(tls.principal_angles(A, np.array([[2.0, 1, 0], [1, -1, 0]])), [0, 0], atol=1e-12)
    np.testing.assert_allclose(tls.principal_angles(A, np.array([[1.0, 0, 0], [0, 0, 1.0]])), [0, math.pi / 2],
                               atol=1e-12)


# ------------------------------------------------------------------ masked LM: same bound on the masked conditional

def test_masked_lm_bound_on_enumerated_contexts():
    h = build_model(DataSpec(family="sparse", n_states=3, vocab=3, context_len=4, determinism=0.6),
                    np.random.default_rng(2))
    s, p = h.enumerate_contexts()
    rng = np.random.default_rng(3)
    P = h.masked_word(s, 1)
    # the masked-LM "context" is the rest of s; contexts that differ only at pos share it and p*
    rest = np.delete(s, 1, axis=1)
    _, inv = np.unique(rest, axis=0, return_inverse=True)
    assert np.allclose(P, P[np.unique(inv, return_index=True)[1]][inv])
    Q = tls.softmax(np.log(P) + 0.4 * rng.standard_normal(P.shape))
    Q = Q[np.unique(inv, return_index=True)[1]][inv]  # an LM is a function of the rest only
    v, b = _random_v(rng, 3, 2.0), 0.1
    q = _sig(P @ v + b)
    eps = tl.epsilon(P, Q, p)[0]
    assert tl.plugin_loss(v, b, Q, q, p)[0] <= tl.bound(tl.tau(v, b, P, q, p)[0], 2.0, eps, 1.0)


# ------------------------------------------------------------------ module layout and the mean/SE convention

def test_softmax_functions_live_only_in_language_softmax_and_import_in_either_order():
    import subprocess
    import sys
    for name in ("best_logits", "softmax", "quad_bound", "epsilon_phi"):
        assert not hasattr(tl, name), f"theory.language must not re-export {name} (import cycle)"
        assert callable(getattr(tls, name))
    for first, second in (("theory.language_softmax", "theory.language"), ("theory.language", "theory.language_softmax")):
        code = f"import {first}, {second}; import theory.language as a; assert not hasattr(a, 'best_logits')"
        subprocess.run([sys.executable, "-c", code], check=True)


def test_mean_se_follows_the_suite_convention():
    from theory import stats
    x = np.array([0.3, 0.1, 0.7, 0.2])
    m, se = tl.mean_se(x)
    m2, se2 = stats.mean_se(x)
    assert m == pytest.approx(float(m2), rel=1e-15) and se == pytest.approx(float(se2), rel=1e-15)
    assert se == pytest.approx(x.std(ddof=1) / 2.0)
    one_m, one_se = tl.mean_se([0.4])
    assert one_m == 0.4 and math.isnan(one_se), "one draw has no SE: NaN, never a silent 0"
    inf_m, inf_se = tl.mean_se([0.1, np.inf, 0.2])
    assert inf_m == np.inf and math.isnan(inf_se), "an inf context is never dropped as a missing draw"
    nan_m, _ = tl.mean_se([0.1, np.nan, 0.2])
    assert math.isnan(nan_m)
    assert tl.mean_se([0.4], weights=[1.0]) == (0.4, 0.0), "an exact (weighted) expectation has SE 0"


# ------------------------------------------------------------------------------------ covariance gamma
@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6), st.integers(3, 12), st.integers(0, 10_000), st.floats(0.05, 1.0))
def test_covariance_gamma_is_never_below_the_min_ratio_form_and_is_the_psd_supremum(V, m, seed, mix):
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((m, V))
    g -= g.mean(axis=1, keepdims=True)            # LM errors sum to 0 over the vocabulary
    p_task = rng.dirichlet(np.ones(m))
    p_lm = mix * p_task + (1 - mix) * rng.dirichlet(np.ones(m))   # p_L > 0 where p_T > 0
    p_lm *= rng.uniform(0.2, 1.0)                 # the rows may carry only part of the LM's law
    g_min = tl.transfer_coefficient(p_lm, p_task)
    g_cov = tl.transfer_coefficient_cov(g, p_task, p_lm)
    assert g_cov >= g_min * (1 - 1e-9)
    S_T = (g * p_task[:, None]).T @ g
    S_L = (g * p_lm[:, None]).T @ g
    # Sigma_L - gamma Sigma_T is PSD at gamma_cov and not just above it (unless Sigma_T is 0)
    assert np.linalg.eigvalsh(S_L - g_cov * S_T).min() > -1e-9 * np.abs(S_L).max()
    assert np.linalg.eigvalsh(S_L - 1.001 * g_cov * S_T).min() < 0
    # the change of measure it licenses, for any direction u
    u = rng.standard_normal(V)
    assert u @ S_T @ u <= u @ S_L @ u / g_cov * (1 + 1e-9) + 1e-15


def test_covariance_gamma_is_one_when_the_laws_coincide_and_zero_off_the_lms_support():
    rng = np.random.default_rng(3)
    g = rng.standard_normal((20, 5))
    w = rng.dirichlet(np.ones(20))
    assert math.isclose(tl.transfer_coefficient_cov(g, w, w), 1.0, rel_tol=1e-9)
    off = w.copy()
    off[0] = 0.0
    assert tl.transfer_coefficient_cov(g, w, off) == 0.0
    # errors along one direction only: gamma_cov is the ratio of the two laws' second moments along it
    d = np.outer(rng.standard_normal(20), np.array([1.0, -1.0, 0, 0, 0]))
    wl = rng.dirichlet(np.ones(20))
    expect = np.sum(wl * d[:, 0] ** 2) / np.sum(w * d[:, 0] ** 2)
    assert math.isclose(tl.transfer_coefficient_cov(d, w, wl), expect, rel_tol=1e-9)
