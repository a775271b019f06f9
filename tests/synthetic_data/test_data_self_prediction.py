"""Tests of the two-view generator synthetic_data/self_prediction.py against Monte Carlo."""

import dataclasses
import json

import numpy as np
import pytest
from scipy.special import logsumexp, softmax

from synthetic_data.self_prediction import FAMILIES, DataSpec, build_model, pad_truncate

# One low-dimensional instance per family, where conditional means can be estimated by fine binning (d1 = 1)
# or by exact grouping (topic: few words, short documents, so x1 takes few values).
LOW_DIM = {
    "exact_ci": dict(family="exact_ci", k=2, d1=1, d2=3, separation=1.5),
    "approx_ci": dict(family="approx_ci", k=2, m=2, d1=1, d2=4, separation=1.0, z_scale=0.8, alpha=0.5),
    "nonlinear": dict(family="nonlinear", k=3, d1=1, d2=3, separation=1.5, noise1=0.5),
    "topic": dict(family="topic", k=3, d1=3, d2=3, doc_len1=4, doc_len2=5, topic_concentration=1.0),
    "nuisance": dict(family="nuisance", k=2, d1=1, d2=3, separation=1.5, nuisance_scale=1.5),
}


def _groups(x1, n_bins=40):
    """Group index per row: exact values for count data, else equal-mass bins of a 1-D x1."""
    if np.all(x1 == np.round(x1)):
        _, g = np.unique(x1, axis=0, return_inverse=True)
        return g.reshape(-1)
    edges = np.quantile(x1[:, 0], np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.searchsorted(edges, x1[:, 0])


def _group_z(g, target, model_value, var=None, min_count=200):
    """z-scores of mean(target - model_value) per group; E[target | group] = E[model_value | group] when
    model_value(x1) = E[target | x1], whatever the bin width (no binning bias).

    var (n, dim): Var(target | x1) when known (one-hot labels: f(1 - f)); the empirical spread underestimates
    it in bins where a rare class is never seen."""
    r = target - model_value
    zs = []
    for b in np.unique(g):
        sel = g == b
        if sel.sum() < min_count:
            continue
        if var is None:
            sd, ok = r[sel].std(0, ddof=1), np.ones(r.shape[1], bool)
        else:  # a normal z needs several expected minority events; rarer cells are Poisson, skip them
            sd, ok = np.sqrt(var[sel].mean(0)), var[sel].sum(0) >= 10
        zs.append((r[sel].mean(0) / np.maximum(sd, 1e-300) * np.sqrt(sel.sum()))[ok])
    return np.concatenate(zs)


def _sample(family, n=120_000, seed=0):
    model = build_model(DataSpec(**LOW_DIM[family]), np.random.default_rng(seed))
    x1, x2, y = model.sample(n, np.random.default_rng(seed + 1))
    return model, x1, x2, y


# ------------------------------------------------------------------ spec

def test_default_spec_valid_hashable_json():
    DataSpec().check()
    assert hash(DataSpec()) == hash(DataSpec())
    assert all(f.default is not dataclasses.MISSING for f in dataclasses.fields(DataSpec))
    s = DataSpec(family="approx_ci", k=3, class_probs=[0.5, 0.3, 0.2], m=2, alpha=0.2)
    assert s.class_probs == (0.5, 0.3, 0.2)
    assert DataSpec(**json.loads(json.dumps(s.to_dict()))) == s


@pytest.mark.parametrize("kwargs,field", [
    ({"family": "gaussian"}, "family"),
    ({"k": 1}, "k"),
    ({"k": 3, "class_probs": (0.5, 0.5)}, "class_probs"),
    ({"k": 2, "class_probs": (0.5, 0.4)}, "class_probs"),
    ({"k": 2, "class_probs": (1.2, -0.2)}, "class_probs"),
    ({"d1": 0}, "d1"),
    ({"d2": 0}, "d2"),
    ({"noise1": 0.0}, "noise1"),
    ({"separation": -1.0}, "separation"),
    ({"family": "approx_ci", "alpha": 1.5}, "alpha"),
    ({"family": "approx_ci", "alpha": -0.1}, "alpha"),
    ({"alpha": 0.3}, "alpha"),                     # the knob belongs to approx_ci
    ({"m": 2}, "m"),
    ({"family": "approx_ci", "m": 0}, "m"),
    ({"family": "topic", "d1": 10, "d2": 8}, "d2"),
    ({"family": "nonlinear", "latent_dim": 4, "quad_nodes": 40}, "quad_nodes"),
    ({"k": 2.0}, "k"),
    ({"topic_concentration": 0.0}, "topic_concentration"),
])
def test_check_rejects_bad_specs(kwargs, field):
    spec = DataSpec(**kwargs)
    with pytest.raises(ValueError, match=f"^{field}:"):
        spec.check()
    with pytest.raises(ValueError, match=f"^{field}:"):
        build_model(spec, np.random.default_rng(0))


def test_broken_rank_is_allowed():
    DataSpec(k=6, d2=3).check()  # d2 < k breaks Lemma 3.1's assumption but is a legitimate experiment


# ------------------------------------------------------------------ structure and determinism

@pytest.mark.parametrize("family", FAMILIES)
def test_shapes_determinism_and_probabilities(family):
    kw = {"family": family, "k": 3, "d1": 6, "d2": 6}
    if family == "approx_ci":
        kw.update(m=2, alpha=0.3)
    spec = DataSpec(**kw)
    a, b = build_model(spec, np.random.default_rng(7)), build_model(spec, np.random.default_rng(7))
    x1, x2, y = a.sample(500, np.random.default_rng(1))
    x1b, x2b, yb = b.sample(500, np.random.default_rng(1))
    assert np.array_equal(x1, x1b) and np.array_equal(x2, x2b) and np.array_equal(y, yb)
    assert np.array_equal(a.A_latent, b.A_latent)
    assert x1.shape == (500, 6) and x2.shape == (500, 6) and y.shape == (500,)
    assert x1.dtype == x2.dtype == np.float64 and y.dtype == np.int64
    n_lat = 6 if family == "approx_ci" else 3
    assert a.n_latent == n_lat and a.A.shape == (3, 6) and a.A_latent.shape == (n_lat, 6)
    assert a.latent_probs.sum() == pytest.approx(1.0, abs=1e-14)
    assert np.array_equal(np.bincount(a.latent_label), np.full(3, n_lat // 3))
    f, lp = a.posterior(x1), a.latent_posterior(x1)
    assert f.shape == (500, 3) and lp.shape == (500, n_lat)
    np.testing.assert_allclose(f.sum(1), 1.0, atol=1e-12)
    assert np.all(f >= 0) and np.all(np.isfinite(a.psi_star(x1)))
    assert a.psi_star(x1).shape == (500, 6) and a.ci_target(x1).shape == (500, 6)
    with pytest.raises(ValueError, match="^x1:"):
        a.posterior(x1[:, :5])


@pytest.mark.parametrize("family", FAMILIES)
def test_A_rows_are_class_means_of_x2(family):
    model, x1, x2, y = _sample(family, n=60_000, seed=3)
    for c in range(model.k):
        sel = y == c
        se = x2[sel].std(0, ddof=1) / np.sqrt(sel.sum())
        assert np.all(np.abs(x2[sel].mean(0) - model.A[c]) < 5 * se + 1e-12), family


def test_class_frequencies_and_pad_truncate():
    spec = DataSpec(k=3, class_probs=(0.6, 0.3, 0.1), d1=2, d2=2)
    model = build_model(spec, np.random.default_rng(0))
    _, _, y = model.sample(40_000, np.random.default_rng(1))
    freq = np.bincount(y, minlength=3) / y.size
    assert np.all(np.abs(freq - model.class_probs) < 5 * np.sqrt(0.25 / y.size))
    x = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(pad_truncate(x, 2), [[0, 1], [3, 4]])
    assert np.array_equal(pad_truncate(x, 4), [[0, 1, 2, 0], [3, 4, 5, 0]])


# ------------------------------------------------------------------ ground truth against Monte Carlo

@pytest.mark.parametrize("family", FAMILIES)
def test_psi_star_and_posterior_match_binned_monte_carlo(family):
    model, x1, x2, y = _sample(family)
    g = _groups(x1)
    z_psi = _group_z(g, x2, model.psi_star(x1))
    f = model.posterior(x1)
    z_post = _group_z(g, np.eye(model.k)[y], f, var=f * (1 - f))
    # 40-200 z-scores each: the max of |N(0,1)| stays below 4.5 with probability > 0.999
    assert z_psi.size >= 40 and np.max(np.abs(z_psi)) < 4.5, family
    assert z_post.size >= 20 and np.max(np.abs(z_post)) < 4.5, family
    assert abs(np.mean(z_psi ** 2) - 1) < 0.4 and abs(np.mean(z_post ** 2) - 1) < 0.5


@pytest.mark.parametrize("family", ["approx_ci", "nuisance"])
def test_ci_target_is_not_psi_star_when_ci_breaks(family):
    # power of the binned check: the CI target (the wrong conditional mean here) is rejected
    model, x1, x2, _ = _sample(family)
    z = _group_z(_groups(x1), x2, model.ci_target(x1))
    assert np.max(np.abs(z)) > 8


@pytest.mark.parametrize("latent_dim,d1", [(1, 3), (2, 2)])
def test_nonlinear_quadrature_matches_monte_carlo_integral(latent_dim, d1):
    spec = DataSpec(family="nonlinear", k=3, d1=d1, d2=2, latent_dim=latent_dim, separation=1.5,
                    noise1=0.7, quad_nodes=40 if latent_dim == 1 else 30)
    model = build_model(spec, np.random.default_rng(2))
    x1, _, _ = model.sample(12, np.random.default_rng(3))
    rng = np.random.default_rng(4)
    loglik = np.empty((12, 3))
    for c in range(3):  # p(x1 | c) = E_{U ~ N(c_c, I)} N(x1; h(U), noise1^2 I), plain Monte Carlo
        hu = model.h(model.centres[c] + rng.standard_normal((100_000, latent_dim)))
        d2 = np.sum((x1[:, None, :] - hu[None]) ** 2, axis=-1)
        loglik[:, c] = logsumexp(-d2 / (2 * spec.noise1 ** 2), axis=1) - np.log(hu.shape[0])
    mc = softmax(loglik + np.log(model.class_probs), axis=1)
    np.testing.assert_allclose(model.posterior(x1), mc, atol=0.01)


def test_nonlinear_posterior_is_not_softmax_linear():
    # the point of the family: log-odds are not affine in x1 (they are for the Gaussian families)
    for family, kw in [("nonlinear", {"noise1": 0.5}), ("exact_ci", {})]:
        model = build_model(DataSpec(family=family, k=3, d1=2, d2=3, **kw), np.random.default_rng(0))
        x1, _, _ = model.sample(4000, np.random.default_rng(1))
        f = model.posterior(x1)
        logit = np.log(f[:, 1:] + 1e-300) - np.log(f[:, :1] + 1e-300)
        z = np.c_[np.ones(len(x1)), x1]
        coef, *_ = np.linalg.lstsq(z, logit, rcond=None)
        r2 = 1 - np.sum((logit - z @ coef) ** 2) / np.sum((logit - logit.mean(0)) ** 2)
        assert (r2 < 0.98) if family == "nonlinear" else (r2 > 1 - 1e-12)


# ------------------------------------------------------------------ conditional independence and Lemma 3.1

@pytest.mark.parametrize("family,kw", [
    ("exact_ci", {}), ("nonlinear", {}), ("topic", {"d2": 20}), ("approx_ci", {"m": 3, "d2": 14}),
])
def test_eps_ci_is_zero_under_ci(family, kw):
    model = build_model(DataSpec(family=family, **kw), np.random.default_rng(0))
    x1, _, _ = model.sample(2000, np.random.default_rng(1))
    gap = model.psi_star(x1) - model.ci_target(x1)
    assert np.max(np.abs(gap)) <= 1e-12 * max(1.0, np.max(np.abs(model.A_latent)))


def test_eps_ci_grows_with_alpha():
    eps2 = []
    alphas = [0.0, 0.1, 0.2, 0.4, 0.8, 1.0]
    for a in alphas:
        model = build_model(DataSpec(family="approx_ci", m=2, alpha=a), np.random.default_rng(0))
        x1, _, _ = model.sample(3000, np.random.default_rng(1))  # x1 does not depend on alpha
        eps2.append(np.mean(np.sum((model.psi_star(x1) - model.ci_target(x1)) ** 2, axis=1)))
    eps2 = np.array(eps2)
    assert eps2[0] == 0.0 and np.all(np.diff(eps2) > 0)
    # psi* - ci_target = alpha P (x1 - E[mu1_Ybar | x1]) with the same x1 for every alpha: eps2 = alpha^2 c
    np.testing.assert_allclose(eps2[1:] / np.array(alphas[1:]) ** 2, eps2[1] / 0.01, rtol=1e-10)


def test_lemma_3_1_identity_exact_and_its_failure_under_nuisance():
    for family, holds in [("exact_ci", True), ("nonlinear", True), ("nuisance", False)]:
        model = build_model(DataSpec(family=family, k=4, d1=8, d2=6, nuisance_scale=2.0),
                            np.random.default_rng(5))
        x1, _, _ = model.sample(2000, np.random.default_rng(6))
        gap = model.posterior(x1) - model.psi_star(x1) @ np.linalg.pinv(model.A)
        assert (np.max(np.abs(gap)) < 1e-10) == holds, family


@pytest.mark.parametrize("family,holds", [("exact_ci", True), ("nuisance", False)])
def test_lemma_3_1_from_data_alone(family, holds):
    # E[Y - (A^T)^+ X2 | X1] = f* - (A^T)^+ psi* = 0 under CI; A estimated from an independent sample,
    # every conditional mean estimated by binning: the lemma itself, not the code's formulas, is tested.
    model, x1, x2, y = _sample(family, n=150_000, seed=11)
    _, x2a, ya = model.sample(300_000, np.random.default_rng(99))
    A_hat = np.stack([x2a[ya == c].mean(0) for c in range(model.k)])
    w = np.eye(model.k)[y] - x2 @ np.linalg.pinv(A_hat)
    z = _group_z(_groups(x1), w, np.zeros_like(w))
    assert (np.max(np.abs(z)) < 4.5) == holds


@pytest.mark.parametrize("k,d1", [(3, 12), (4, 30)])   # the quick and default profiles' nonlinear specs
def test_nonlinear_quadrature_is_refined_until_the_posterior_moves_less_than_1e_10(k, d1):
    # A fixed 40-node rule was up to 1.7e-4 from converged; the model now doubles the nodes until two rules agree
    # to QUAD_TOL, and a rule twice as fine again moves its posterior by less than that.
    from synthetic_data.self_prediction import QUAD_TOL
    model = build_model(DataSpec(family="nonlinear", k=k, d1=d1, d2=4, separation=3.0), np.random.default_rng(0))
    assert model.quad_nodes > 40 and model.quad_error < QUAD_TOL == 1e-10
    x1, _, _ = model.sample(2000, np.random.default_rng(1))
    used = model.posterior(x1)
    coarse = model._quadrature(40)
    model.quad_logw, model.quad_h = model._quadrature(min(2 * model.quad_nodes, 320))
    assert np.max(np.abs(model.posterior(x1) - used)) < QUAD_TOL
    model.quad_logw, model.quad_h = coarse
    assert np.max(np.abs(model.posterior(x1) - used)) > 1e3 * QUAD_TOL   # what the old rule missed


def test_a_quadrature_that_cannot_converge_says_how_far_it_is():
    # noise1 = 0.4 makes the likelihood in u too narrow for 320 Gauss-Hermite nodes: the model keeps the finest rule
    # and reports its last change instead of claiming convergence
    from synthetic_data.self_prediction import QUAD_TOL
    model = build_model(DataSpec(family="nonlinear", k=3, d1=4, d2=4, separation=3.0, noise1=0.4),
                        np.random.default_rng(0))
    assert model.quad_nodes == 320 and model.quad_error > QUAD_TOL


@pytest.mark.parametrize("k,d1,latent_dim,noise1", [(4, 30, 1, 1.0), (3, 4, 1, 0.4), (3, 6, 2, 1.0)])
def test_gemm_quadrature_posterior_matches_the_einsum_reference(k, d1, latent_dim, noise1):
    # The fast path (one GEMM against the k*J node images, in-place log-sum-exp) against the code it replaced,
    # on the default spec, a 320-node rule with a narrow likelihood, and a 2-d tensor rule (blocks smaller than
    # one _CHUNK of rows): the posterior within POSTERIOR_TOL, and the log-likelihood to a few ulp of its size.
    from scipy.special import softmax
    from synthetic_data.self_prediction import POSTERIOR_TOL, quadrature_loglik_reference
    model = build_model(DataSpec(family="nonlinear", k=k, d1=d1, d2=4, separation=3.0, noise1=noise1,
                                 latent_dim=latent_dim, quad_nodes=40 if latent_dim == 1 else 20),
                        np.random.default_rng(3))
    x1, _, _ = model.sample(5000, np.random.default_rng(4))
    ref, fast = quadrature_loglik_reference(model, x1), model.latent_loglik(x1)
    assert np.max(np.abs(fast - ref)) <= 1e-13 * max(1.0, np.max(np.abs(ref)))
    post_ref = softmax(ref + np.log(model.latent_probs)[None], axis=1)
    assert np.max(np.abs(model.posterior(x1) - post_ref)) <= POSTERIOR_TOL
    # a wrong fast path (e.g. the node weights dropped) is far outside the tolerance
    logw, model.quad_logw = model.quad_logw, np.zeros_like(model.quad_logw)
    assert np.max(np.abs(model.posterior(x1) - post_ref)) > 1e3 * POSTERIOR_TOL
    model.quad_logw = logw
