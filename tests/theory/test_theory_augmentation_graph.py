"""Exact terms of the augmentation-graph chapter against brute force, and its inequalities on random graphs."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from synthetic_data.augmentation_graph import DataSpec, build_model, perfect_features
from theory import augmentation_graph as th


def _random_graph(rng, M=4, N=7, C=2):
    A = rng.random((M, N)) ** 3
    A /= A.sum(1, keepdims=True)
    p = rng.dirichlet(np.ones(M))
    W = A.T @ (p[:, None] * A)
    y = rng.integers(0, C, size=M)
    y[:C] = np.arange(C)
    joint = (p[:, None] * A).T @ np.eye(C)[y]
    return A, p, 0.5 * (W + W.T), joint


def test_spectral_loss_matches_the_double_sum_and_torch():
    rng = np.random.default_rng(0)
    _, _, W, _ = _random_graph(rng)
    f = rng.standard_normal((W.shape[0], 3))
    w = W.sum(1)
    brute = sum(-2 * W[i, j] * f[i] @ f[j] + w[i] * w[j] * (f[i] @ f[j]) ** 2
                for i in range(len(w)) for j in range(len(w)))
    assert th.spectral_loss(f, W) == pytest.approx(brute, rel=1e-12)
    t = th.spectral_loss_torch(torch.as_tensor(f[None]), torch.as_tensor(W))
    assert float(t[0]) == pytest.approx(brute, rel=1e-12)
    # the matrix form: L = ||Abar - F F^T||^2 - ||Abar||^2 with F = D^{1/2} f
    Ab = th.normalized_adjacency(W)
    F = np.sqrt(w)[:, None] * f
    assert th.spectral_loss(f, W) == pytest.approx(np.sum((Ab - F @ F.T) ** 2) - np.sum(Ab ** 2), rel=1e-10)


@pytest.mark.parametrize("d", [1, 2, 4])
def test_the_closed_form_minimiser_reaches_the_eigenvalue_formula(d):
    rng = np.random.default_rng(d)
    _, _, W, _ = _random_graph(rng)
    gam, _ = th.spectrum(W)
    f = th.closed_form_minimiser(W, d)
    assert th.spectral_loss(f, W) == pytest.approx(-np.sum(np.maximum(gam[:d], 0) ** 2), abs=1e-12)
    assert th.spectral_minimum(gam, d) == pytest.approx(th.spectral_loss(f, W), abs=1e-12)
    # no random f does better, and a rotation of f* is as good
    for _ in range(20):
        g = rng.standard_normal(f.shape)
        assert th.spectral_loss(g, W) >= th.spectral_minimum(gam, d) - 1e-12
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    assert th.spectral_loss(f @ Q, W) == pytest.approx(th.spectral_loss(f, W), abs=1e-12)


def test_neg_min_from_terms_parses_what_encode_values_writes():
    g = np.array([1.0, 0.7, 1 / 3])
    assert th.neg_min_from_terms([th.encode_values(g)])[0] == np.sum(g ** 2)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 4), C=st.integers(2, 3))
def test_haochen_eigenvalue_bound_holds_on_random_graphs(seed, d, C):
    rng = np.random.default_rng(seed)
    A, p, W, joint = _random_graph(rng, M=5, N=8, C=C)
    gam, _ = th.spectrum(W)
    assert gam[0] == pytest.approx(1.0, abs=1e-10)
    f = th.closed_form_minimiser(W, d)
    if gam[d - 1] <= 1e-9:
        return   # the head-exists assumption fails
    err = th.error_of(th.ls_head_prediction(f, W.sum(1), joint), joint)
    bound = th.eigen_bound_from_terms(th.alpha(joint), 1 - gam[d])[0]
    assert err <= bound + 1e-9


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), m=st.integers(2, 3))
def test_cheeger_lower_bound_on_the_exact_sparsest_partition(seed, m):
    rng = np.random.default_rng(seed)
    _, _, W, _ = _random_graph(rng, M=3, N=6)
    gam, _ = th.spectrum(W)
    rho = th.sparsest_partition(W, m)
    assert 0.5 * (1 - gam[m - 1]) <= rho + 1e-12


def test_sparsest_partition_against_brute_force():
    rng = np.random.default_rng(3)
    _, _, W, _ = _random_graph(rng, M=3, N=5)
    w = W.sum(1)

    def phi(S):
        S = np.asarray(S)
        out = np.setdiff1d(np.arange(5), S)
        return W[np.ix_(S, out)].sum() / w[S].sum()
    best = np.inf
    for labels in itertools.product(range(2), repeat=5):
        sets = [[i for i in range(5) if labels[i] == c] for c in range(2)]
        if all(sets):
            best = min(best, max(phi(s) for s in sets))
    assert th.sparsest_partition(W, 2) == pytest.approx(best, rel=1e-12)


def test_linear_closed_form_matches_a_direct_minimisation():
    rng = np.random.default_rng(1)
    _, _, W, _ = _random_graph(rng, M=4, N=9)
    X = rng.standard_normal((9, 3))
    d = 2
    T = th.linear_T(X, W)
    closed = th.linear_minimum(np.linalg.eigvalsh(T), d)
    Wt, Xt = torch.as_tensor(W), torch.as_tensor(X)
    best = np.inf
    for start in range(3):
        B = torch.as_tensor(np.random.default_rng(start).standard_normal((3, d)) * 0.3, dtype=torch.float64)
        B.requires_grad_(True)
        opt = torch.optim.LBFGS([B], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15)

        def closure():
            opt.zero_grad()
            loss = th.spectral_loss_torch((Xt @ B)[None], Wt)[0]
            loss.backward()
            return loss
        opt.step(closure)
        best = min(best, float(th.spectral_loss_torch((Xt @ B.detach())[None], Wt)[0]))
    assert best == pytest.approx(closed, abs=1e-7)
    assert best >= closed - 1e-9


def test_linear_T_on_the_hypercube_is_the_closed_form():
    spec = DataSpec(family="hypercube", cube_dim=5, label_dim=3, scales=(0.5, 1.0))
    m = build_model(spec, np.random.default_rng(0))
    T = th.linear_T(m.X, m.W)
    s = np.asarray(spec.scales)
    ratio = s.mean() ** 2 / np.mean(s ** 2)
    np.testing.assert_allclose(T, np.diag([1.0] * 3 + [ratio] * 2), atol=1e-12)


def test_permutation_keeps_the_loss_and_drives_accuracy_to_chance():
    spec = DataSpec(family="hypercube", cube_dim=10, label_dim=3, scales=(0.5, 1.0))
    m = build_model(spec, np.random.default_rng(0))
    d = 5
    f = perfect_features(spec, d)[m.natural_of]
    assert th.spectral_loss(f, m.W) == pytest.approx(-d, abs=1e-10)
    assert th.error_of(th.ls_head_prediction(f, m.w, m.joint), m.joint) == 0.0
    perm = np.random.default_rng(1).permutation(m.A.shape[0])
    g = th.permuted_features(f, m.A, m.natural_of, perm)
    assert abs(th.spectral_loss(g, m.W) - th.spectral_loss(f, m.W)) <= 1e-10
    err = th.error_of(th.ls_head_prediction(g, m.w, m.joint), m.joint)
    assert err >= 0.5 - 3 * np.sqrt(d / m.A.shape[0]), err
    # alignment and uniformity cannot tell them apart
    np.testing.assert_allclose(th.alignment_uniformity(g, m.W), th.alignment_uniformity(f, m.W), atol=1e-10)


def test_collapse_never_increases_the_loss():
    spec = DataSpec(family="hypercube", cube_dim=5, label_dim=3, scales=(0.25, 0.5, 1.0))
    m = build_model(spec, np.random.default_rng(0))
    rng = np.random.default_rng(2)
    for _ in range(5):
        f = rng.standard_normal((m.n_inputs, 3))
        g = th.permuted_features(f, m.A, m.natural_of, np.arange(m.A.shape[0]))
        assert th.spectral_loss(g, m.W) <= th.spectral_loss(f, m.W) + 1e-12


def test_every_theorem_recomputes_from_its_terms():
    ids = {t.id for t in th.THEOREMS}
    assert len(ids) == len(th.THEOREMS) and all(i.startswith("augmentation_graph.") for i in ids)
    assert th.eigen_bound_from_terms([0.1], [0.0])[0] == 1.0
    assert th.eigen_bound_from_terms([0.01], [0.5])[0] == pytest.approx(0.09)


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1, 0.2])
def test_the_eigenvalue_bound_goes_vacuous_at_8_alpha_over_1_minus_2_alpha(alpha):
    """The doc's threshold, from the bound function itself: min(1, α + 4α/λ) reaches the trivial ½ at λ*."""
    from scipy.optimize import brentq
    lam = brentq(lambda x: th.eigen_bound_from_terms([alpha], [x])[0] - 0.5, 1e-9, 10.0, xtol=1e-14)
    assert lam == pytest.approx(8 * alpha / (1 - 2 * alpha), rel=1e-9)
    assert th.eigen_vacuity_threshold(alpha, 0.5)[0] == pytest.approx(lam, rel=1e-9)
    assert th.eigen_bound_from_terms([alpha], [lam * 1.001])[0] < 0.5
    assert th.eigen_bound_from_terms([alpha], [lam])[0] == pytest.approx(0.5, abs=1e-9)
    if alpha == 0.05:   # the number the doc states, and not the old 4α/(1 − 2α)
        from pathlib import Path
        doc = (Path(__file__).parents[2] / th.DOC).read_text()
        assert "8α/(1 − 2α)" in doc and f"{lam:.2f} at α = 0.05" in doc
        assert "4α / (1 − 2α)" not in doc and "≲ 4α/(1 − 2α)" not in doc


def test_the_corollary_vacuity_gap_is_1_over_64k_from_its_bound_function():
    from scipy.optimize import brentq
    for k in (1, 3, 5):
        g = brentq(lambda x: th.corollary_bound_from_terms([k], [x], [0.0])[0] - 0.5, 0.0, 1.0, xtol=1e-15)
        assert g == pytest.approx(1 / (64 * k), rel=1e-9) == th.corollary_vacuity_gap(k, 0.5)[0]
    assert th.corollary_vacuity_gap(3, 0.5)[0] == pytest.approx(0.0052, abs=1e-4)


def test_the_linear_minimiser_reaches_the_linear_closed_form():
    spec = DataSpec(family="hypercube", cube_dim=5, label_dim=3, scales=(0.5, 1.0))
    m = build_model(spec, np.random.default_rng(0))
    T = np.sort(np.linalg.eigvalsh(th.linear_T(m.X, m.W)))[::-1]
    for d in (3, 4):
        f = m.X @ th.linear_minimiser(m.X, m.W, d)
        assert th.spectral_loss(f, m.W) == pytest.approx(th.linear_minimum(T, d), abs=1e-12)


def test_ties_of_the_head_are_read_as_ties():
    joint = np.array([[0.3, 0.1], [0.05, 0.25], [0.2, 0.1]])
    flat = np.full((3, 2), 0.5) + np.array([[1e-16, 0], [0, 1e-16], [0, 0]])   # tied to rounding at every input
    t = th.tie_aware_errors(flat, joint)
    assert t["uniform"] == pytest.approx(0.5) and t["tied_mass"] == pytest.approx(1.0)
    assert t["min"] == pytest.approx(1 - 0.3 - 0.25 - 0.2) and t["max"] == pytest.approx(1 - 0.1 - 0.05 - 0.1)
    clear = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    t = th.tie_aware_errors(clear, joint)
    expect = th.error_of(np.argmax(clear, 1), joint)
    assert t["uniform"] == t["min"] == t["max"] == pytest.approx(expect) and t["tied_mass"] == 0.0


def test_at_overlap_zero_the_head_on_any_pick_of_the_tied_eigenspace_is_constant():
    """Why f*'s error at overlap 0 is a tie, not a number: γ_d = γ_{d+1}, and on every rotation of the tied space
    the least-squares head's scores agree to rounding, so np.argmax only reads noise."""
    m = build_model(DataSpec(n_classes=2, n_natural=4, n_aug=2, overlap=0.0, leak=0.05), np.random.default_rng(0))
    gam, U = th.spectrum(m.W)
    d = 4
    assert gam[d - 1] == pytest.approx(gam[d], abs=1e-12)
    above, tie = gam > gam[d - 1] + 1e-9, np.abs(gam - gam[d - 1]) <= 1e-9
    rng = np.random.default_rng(1)
    for _ in range(20):
        Q, _ = np.linalg.qr(rng.standard_normal((tie.sum(), d - above.sum())))
        f = np.hstack([U[:, above], U[:, tie] @ Q]) / np.sqrt(m.w)[:, None]
        scores = th.ls_head_scores(f, m.w, m.joint)
        assert np.ptp(scores[:, 0] - scores[:, 1]) < 1e-12
        t = th.tie_aware_errors(scores, m.joint)
        assert t["uniform"] == pytest.approx(0.5) and t["tied_mass"] == pytest.approx(1.0)
        assert (t["min"], t["max"]) == (pytest.approx(0.05), pytest.approx(0.95))
