"""The two-class fast path (Newton, ``analysis.probes.newton``) against the L-BFGS reference it replaces.

Tolerance (``fit_logistic_probes``'s docstring): objective F no larger than the reference's + 1e-10 and within
1e-8 of it, W and b within 1e-4 relative to max(1, ||beta||_inf) or the strong-convexity bound
4 sqrt(d+1) tol C sum w (the larger: weak regularisation leaves flat directions), converged identical, test loss within 1e-5 where C <= 10 (weakly regularised probes on small samples have flat
directions that move it: there only F is held); here checked on seeded problems including a class
absent from a small sample, separable data, one feature, padding, a warm start, weak regularisation, and soft targets
against the same rows taken twice.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from analysis.probes import (fit_binary_probes, fit_logistic_probes, fit_logistic_probes_reference, probe_loss)

F_TOL, F_CLOSE, REL_TOL, LOSS_TOL = 1e-10, 1e-8, 1e-4, 1e-5


def scaled_objective(fit, X, y, w, C):
    """F = f / (C sum w) of the reference's parameterisation, per problem, straight from its definition."""
    X, y, w = (torch.as_tensor(v) for v in (X, y, w))
    X = torch.where(w.unsqueeze(-1) > 0, X.double(), 0.0)
    z = X @ fit.W + torch.where(torch.isfinite(fit.b), fit.b, -1e300).unsqueeze(1)
    ce = torch.logsumexp(z, -1) - z.gather(-1, torch.where(w > 0, y, 0).unsqueeze(-1)).squeeze(-1)
    sw = w.sum(1)
    return (w * ce).sum(1) / sw + 0.5 * fit.W.pow(2).sum((1, 2)) / (C * sw)


def assert_equivalent(X, y, w, C, X_te=None, y_te=None, **kw):
    ref = fit_logistic_probes_reference(X, y, w, 2, C=C, **kw)
    new = fit_logistic_probes(X, y, w, 2, C=C, **kw)
    assert new.converged.tolist() == ref.converged.tolist()
    assert new.present.tolist() == ref.present.tolist()
    Fr, Fn = scaled_objective(ref, X, y, w, C), scaled_objective(new, X, y, w, C)
    assert (Fn <= Fr + F_TOL).all()  # never a worse optimum than the reference's ...
    np.testing.assert_allclose(Fn.numpy(), Fr.numpy(), rtol=0, atol=F_CLOSE)  # ... and as close as it stops
    fin = lambda b: torch.where(torch.isfinite(b), b, 0.0)
    assert (torch.isfinite(new.b) == torch.isfinite(ref.b)).all()
    scale = torch.maximum(ref.W.abs().amax((1, 2)), fin(ref.b).abs().amax(1)).clamp_min(1.0)
    # Weak regularisation leaves flat directions: F is (1 / (2 C sum w))-strongly convex, so two points whose
    # gradients are within tol are within 2 sqrt(d+1) tol 2 C sum w of each other; the larger bound holds.
    tol = kw.get("tol", 1e-8)
    bound = torch.maximum(REL_TOL * scale, 4 * math.sqrt(X.shape[2] + 1) * tol * C * w.sum(1))
    assert ((new.W - ref.W).abs().amax((1, 2)) <= bound).all()
    assert ((fin(new.b) - fin(ref.b)).abs().amax(1) <= bound).all()
    if X_te is not None and C <= 10:  # weak regularisation on a small sample: the flat directions move test loss
        np.testing.assert_allclose(probe_loss(new, X_te, y_te).numpy(), probe_loss(ref, X_te, y_te).numpy(),
                                   rtol=0, atol=LOSS_TOL)
    return ref, new


def mixture(rng, P, N, d, sep=1.0, noise=1.0):
    y = rng.integers(0, 2, (P, N))
    mu = sep * rng.standard_normal((P, 2, d))
    X = mu[np.arange(P)[:, None], y] + noise * rng.standard_normal((P, N, d))
    return torch.tensor(X), torch.tensor(y)


@pytest.mark.parametrize("seed,d,C", [(0, 3, 1.0), (1, 10, 1e5), (2, 44, 1.0), (3, 1, 10.0)])
def test_matches_reference_on_seeded_problems(seed, d, C):
    rng = np.random.default_rng(seed)
    X, y = mixture(rng, 6, 300, d)
    w = torch.ones(6, 300, dtype=torch.float64)
    for p, n in enumerate((5, 20, 60, 300, 300, 150)):  # a probe-n grid as padding, as probe_curves lays it out
        w[p, n:] = 0.0
    Xt, yt = mixture(np.random.default_rng(seed + 100), 1, 500, d)
    assert_equivalent(X, y, w, C, Xt[0], yt[0])


def test_class_absent_from_a_small_sample():
    rng = np.random.default_rng(4)
    X, y = mixture(rng, 3, 12, 4)
    y[0, :] = 1  # the whole sample one class
    y[1, :4] = 0
    w = torch.ones(3, 12, dtype=torch.float64)
    w[1, 4:] = 0.0  # only class 0 among the weighted rows
    ref, new = assert_equivalent(X, y, w, 1.0)
    assert new.present.tolist() == [[False, True], [True, False], [True, True]]
    assert (new.W[:2] == 0).all() and new.n_iter[:2].tolist() == [0, 0] and new.converged.all()
    assert math.isinf(float(new.b[0, 0])) and math.isinf(float(new.b[1, 1]))


def test_separable_data_and_weak_regularisation():
    rng = np.random.default_rng(5)
    X, y = mixture(rng, 4, 40, 3, sep=6.0, noise=0.1)
    w = torch.ones(4, 40, dtype=torch.float64)
    ref, new = assert_equivalent(X, y, w, 100.0, max_iter=2000)
    z = (X @ new.W + new.b.unsqueeze(1)).argmax(-1)
    assert (z == y).all()  # really separated


def test_one_feature_weights_and_warm_start():
    rng = np.random.default_rng(6)
    X, y = mixture(rng, 5, 80, 1)
    w = torch.tensor(rng.exponential(size=(5, 80)))
    ref, _ = assert_equivalent(X, y, w, 3.0)
    W0 = torch.tensor(rng.standard_normal(ref.W.shape))
    b0 = torch.tensor(rng.standard_normal(ref.b.shape))
    assert_equivalent(X, y, w, 3.0, init=(W0, b0))
    again = fit_logistic_probes(X, y, w, 2, C=3.0, init=(ref.W, ref.b))
    assert again.converged.all()


def test_soft_targets_equal_every_row_twice():
    rng = np.random.default_rng(7)
    P, N, d, C = 4, 200, 6, 1e5
    X = torch.tensor(rng.standard_normal((P, N, d)))
    q = torch.tensor(rng.random((P, N)))
    q[:, ::5] = 1.0  # deterministic rows: their twin carries no weight
    w = torch.tensor(rng.random((P, N)))
    soft = fit_binary_probes(X, q, w, C=C)
    X2, y2 = torch.cat([X, X], 1), torch.cat([torch.ones(P, N), torch.zeros(P, N)], 1).long()
    w2 = torch.cat([w * q, w * (1 - q)], 1)
    ref = fit_logistic_probes_reference(X2, y2, w2, 2, C=C)
    assert soft.converged.tolist() == ref.converged.tolist() and soft.converged.all()
    Fs, Fr = scaled_objective(soft, X2, y2, w2, C), scaled_objective(ref, X2, y2, w2, C)
    assert (Fs <= Fr + F_TOL).all()
    np.testing.assert_allclose(Fs.numpy(), Fr.numpy(), rtol=0, atol=F_CLOSE)
    scale = ref.W.abs().amax((1, 2)).clamp_min(1.0)
    assert ((soft.W - ref.W).abs().amax((1, 2)) <= REL_TOL * scale).all()


def test_a_wrong_ridge_would_be_caught():
    """The check above is sharp: the optimum at C differs from the one at 2C (a factor-2 slip in the ridge of the
    binary reduction) by far more than the tolerance."""
    rng = np.random.default_rng(8)
    X, y = mixture(rng, 3, 100, 4)
    w = torch.ones(3, 100, dtype=torch.float64)
    a = fit_logistic_probes_reference(X, y, w, 2, C=1.0)
    b = fit_logistic_probes(X, y, w, 2, C=2.0)
    assert float((a.W - b.W).abs().max()) > 100 * REL_TOL


@pytest.mark.parametrize("target,field", [(torch.full((2, 3), 1.5), "target"), (torch.zeros(2, 4), "target")])
def test_soft_target_bad_input_names_the_field(target, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        fit_binary_probes(torch.randn(2, 3, 2, dtype=torch.float64), target, torch.ones(2, 3))
