"""Batched multinomial logistic probes against scikit-learn and brute force.

References: scikit-learn's LogisticRegression(lbfgs, tol=1e-10) for the
solutions, an independent numpy implementation of its objective, row
duplication for integer sample weights, and explicit numpy soft-max for the
evaluation functions.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression

import ast
import pathlib

import analysis.probes
from analysis.probes import (
    ProbeFit,
    fit_logistic_probes,
    fit_probe_grid,
    probe_accuracy,
    probe_loss,
    subsample_per_class,
)

# One pytest-xdist worker runs this file (`make test` uses --dist loadgroup): its module fixture, sklearn's
# reference solutions of every case, is then made once, not once per worker.
pytestmark = pytest.mark.xdist_group("test_probes")

N_PER_CLASS = (1, 2, 5, 20)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def objective(W: np.ndarray, b: np.ndarray, X: np.ndarray, y: np.ndarray, C: float, w=None) -> float:
    """scikit-learn's 0.5 ||W||^2 + C sum_i w_i CE_i over the classes with finite b."""
    keep = np.isfinite(b)
    col = np.cumsum(keep) - 1  # class -> column among kept classes
    Z = X @ W[:, keep] + b[keep]
    w = np.ones(len(y)) if w is None else w
    ce = logsumexp(Z, axis=1) - Z[np.arange(len(y)), col[y]]
    return 0.5 * float((W**2).sum()) + C * float((w * ce).sum())


def sklearn_fit(X, y, C, sample_weight=None):
    """Reference solution in our parameterisation: W (d, K_present), b (K_present,).

    With two classes scikit-learn fits the binary model; the symmetric
    multinomial optimum is W = [-u/2, u/2] with u its coef_ at C_binary = 2 C.
    """
    classes = np.unique(y)
    binary = len(classes) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a non-converged reference is no reference
        m = LogisticRegression(C=2 * C if binary else C, tol=1e-10, max_iter=10000)
        m.fit(X, y, sample_weight=sample_weight)
    if binary:
        u, c = m.coef_[0], m.intercept_[0]
        return np.stack([-u / 2, u / 2], 1), np.array([-c / 2, c / 2]), m
    return m.coef_.T, m.intercept_, m


def make_problem(rng, K, d, n, separable):
    """n training points per class (class-sorted), 200 test points, from a Gaussian mixture."""
    if separable:
        means, noise = 4.0 * rng.standard_normal((K, d)) + 3.0 * np.eye(K, d), 0.15
    else:
        means, noise = 0.7 * rng.standard_normal((K, d)), 1.0
    y = np.repeat(np.arange(K), n)
    y_te = rng.integers(0, K, 200)
    X = means[y] + noise * rng.standard_normal((len(y), d))
    X_te = means[y_te] + noise * rng.standard_normal((200, d))
    return X, y, X_te, y_te


def one(X, y, w=None):
    """A single problem as a batch of one: (1, N, d), (1, N), (1, N)."""
    w = np.ones(len(y)) if w is None else w
    return torch.tensor(X[None]), torch.tensor(y[None]), torch.tensor(np.asarray(w, dtype=np.float64)[None])


def pad(problems, rng, garbage=True):
    """Stack (X, y) problems to (P, N_max, d) with weight-0 padding rows."""
    N = max(len(y) for X, y in problems)
    d = problems[0][0].shape[1]
    P = len(problems)
    if garbage:
        Xp = rng.standard_normal((P, N, d)) * 1e6
        Xp[:, ::3] = np.nan
        yp = rng.integers(-3, 99, (P, N))
    else:
        Xp, yp = np.zeros((P, N, d)), np.zeros((P, N), dtype=np.int64)
    wp = np.zeros((P, N))
    for p, (X, y) in enumerate(problems):
        Xp[p, : len(y)], yp[p, : len(y)], wp[p, : len(y)] = X, y, 1.0
    return torch.tensor(Xp), torch.tensor(yp), torch.tensor(wp)


# ----------------------------------------------------------------------------
# agreement with scikit-learn
# ----------------------------------------------------------------------------

# (n_classes, d, C): C spans strong to weak regularisation; weak + separable is
# the ill-conditioned corner.
CASES = [(2, 3, 1.0), (2, 6, 10.0), (3, 2, 0.3), (3, 6, 3.0), (5, 3, 1.0), (5, 6, 10.0)]


@pytest.fixture(scope="session")
def reference_cases():
    """Per case: the problems (4 sizes x separable/overlapping) and sklearn's solutions."""
    out = {}
    for case_id, (K, d, C) in enumerate(CASES):
        rng = np.random.default_rng(100 + case_id)
        probs = []
        for n in N_PER_CLASS:
            for separable in (False, True):
                X, y, X_te, y_te = make_problem(rng, K, d, n, separable)
                W, b, m = sklearn_fit(X, y, C)
                if separable:  # make sure the hard case really is separable
                    assert (m.predict(X) == y).all()
                probs.append(dict(X=X, y=y, X_te=X_te, y_te=y_te, W=W, b=b, acc=m.score(X_te, y_te)))
        out[(K, d, C)] = probs
    return out


@pytest.mark.parametrize("K,d,C", CASES)
def test_matches_sklearn(reference_cases, K, d, C):
    probs = reference_cases[(K, d, C)]
    X, y, w = pad([(p["X"], p["y"]) for p in probs], np.random.default_rng(0))
    fit = fit_logistic_probes(X, y, w, K, C=C)
    assert fit.converged.all()
    assert fit.W.shape == (len(probs), d, K) and fit.b.shape == (len(probs), K)
    for i, p in enumerate(probs):
        W, b = fit.W[i].numpy(), fit.b[i].numpy()
        scale = max(1.0, np.abs(p["W"]).max(), np.abs(p["b"]).max())
        np.testing.assert_allclose(W, p["W"], atol=1e-4 * scale, rtol=0)
        np.testing.assert_allclose(b, p["b"], atol=1e-4 * scale, rtol=0)
        assert objective(W, b, p["X"], p["y"], C) <= objective(p["W"], p["b"], p["X"], p["y"], C) + 1e-8
        acc = float(probe_accuracy(fit, torch.tensor(p["X_te"]), torch.tensor(p["y_te"]))[i])
        assert abs(acc - p["acc"]) <= 0.001  # 200 test points: identical predictions


def test_sample_weights_match_sklearn():
    rng = np.random.default_rng(7)
    X, y, _, _ = make_problem(rng, 4, 5, 10, separable=False)
    sw = rng.uniform(0.1, 3.0, len(y))
    W_ref, b_ref, _ = sklearn_fit(X, y, 2.0, sample_weight=sw)
    fit = fit_logistic_probes(*one(X, y, sw), 4, C=2.0)
    np.testing.assert_allclose(fit.W[0].numpy(), W_ref, atol=1e-6)
    np.testing.assert_allclose(fit.b[0].numpy(), b_ref, atol=1e-6)


def test_integer_weights_equal_duplicated_rows():
    rng = np.random.default_rng(8)
    X, y, _, _ = make_problem(rng, 3, 4, 6, separable=False)
    reps = rng.integers(1, 4, len(y))
    Xd, yd = np.repeat(X, reps, 0), np.repeat(y, reps)
    weighted = fit_logistic_probes(*one(X, y, reps), 3, C=1.5)
    dup = fit_logistic_probes(*one(Xd, yd), 3, C=1.5)
    np.testing.assert_allclose(weighted.W.numpy(), dup.W.numpy(), atol=1e-9)
    np.testing.assert_allclose(weighted.b.numpy(), dup.b.numpy(), atol=1e-9)


# ----------------------------------------------------------------------------
# batching, padding, absent classes
# ----------------------------------------------------------------------------


def _mixed_bag(seed, K=4, d=5):
    rng = np.random.default_rng(seed)
    return [make_problem(rng, K, d, n, sep)[:2] for n in (1, 3, 8, 15) for sep in (False, True)]


def test_padding_garbage_changes_nothing():
    problems = _mixed_bag(1)
    rng = np.random.default_rng(2)
    clean = fit_logistic_probes(*pad(problems, rng, garbage=False), 4, C=2.0)
    X, y, w = pad(problems, rng, garbage=True)
    extra = torch.zeros(X.shape[0], 7, X.shape[2]).fill_(float("inf"))  # more padding, non-finite
    X = torch.cat([X, extra.double()], 1)
    y = torch.cat([y, torch.full((X.shape[0], 7), -1)], 1)
    w = torch.cat([w, torch.zeros(X.shape[0], 7, dtype=torch.float64)], 1)
    dirty = fit_logistic_probes(X, y, w, 4, C=2.0)
    np.testing.assert_allclose(dirty.W.numpy(), clean.W.numpy(), atol=1e-9)
    np.testing.assert_allclose(dirty.b.numpy(), clean.b.numpy(), atol=1e-9)


def test_batched_equals_alone():
    problems = _mixed_bag(3)
    batched = fit_logistic_probes(*pad(problems, np.random.default_rng(4)), 4, C=0.7)
    for i, (X, y) in enumerate(problems):
        alone = fit_logistic_probes(*one(X, y), 4, C=0.7)
        np.testing.assert_allclose(batched.W[i].numpy(), alone.W[0].numpy(), atol=1e-9)
        np.testing.assert_allclose(batched.b[i].numpy(), alone.b[0].numpy(), atol=1e-9)


def test_absent_class_matches_sklearn_on_present_classes():
    rng = np.random.default_rng(5)
    X, y, X_te, y_te = make_problem(rng, 4, 3, 6, separable=False)
    w = (y != 2).astype(float)  # class 2 only as weight-0 rows
    fit = fit_logistic_probes(*one(X, y, w), 4, C=1.0)
    W_ref, b_ref, m = sklearn_fit(X[w > 0], y[w > 0], 1.0)
    kept = [0, 1, 3]
    np.testing.assert_allclose(fit.W[0, :, kept].numpy(), W_ref, atol=1e-6)
    np.testing.assert_allclose(fit.b[0, kept].numpy(), b_ref, atol=1e-6)
    assert (fit.W[0, :, 2] == 0).all() and fit.b[0, 2] == -np.inf
    assert fit.present[0].tolist() == [True, True, False, True]
    acc = float(probe_accuracy(fit, torch.tensor(X_te), torch.tensor(y_te)))
    assert acc == pytest.approx(float((m.predict(X_te) == y_te).mean()), abs=1e-12)
    assert float(probe_loss(fit, torch.tensor(X_te), torch.tensor(y_te))) == np.inf  # y_te holds class 2
    ok = y_te != 2
    loss = float(probe_loss(fit, torch.tensor(X_te[ok]), torch.tensor(y_te[ok])))
    proba = m.predict_proba(X_te[ok])[np.arange(ok.sum()), np.searchsorted(m.classes_, y_te[ok])]
    assert loss == pytest.approx(-np.log(proba).mean(), rel=1e-6)


def test_two_present_classes_match_binary_sklearn():
    rng = np.random.default_rng(6)
    X, y, _, _ = make_problem(rng, 3, 4, 7, separable=False)
    w = (y != 1).astype(float)
    fit = fit_logistic_probes(*one(X, y, w), 3, C=0.8)
    W_ref, b_ref, _ = sklearn_fit(X[w > 0], y[w > 0], 0.8)
    np.testing.assert_allclose(fit.W[0, :, [0, 2]].numpy(), W_ref, atol=1e-6)
    np.testing.assert_allclose(fit.b[0, [0, 2]].numpy(), b_ref, atol=1e-6)


# ----------------------------------------------------------------------------
# the solver
# ----------------------------------------------------------------------------


def test_warm_start_changes_path_not_optimum():
    X, y, w = pad(_mixed_bag(16), np.random.default_rng(17))
    cold = fit_logistic_probes(X, y, w, 4, C=2.0, tol=1e-11)
    rng = np.random.default_rng(18)
    W0, b0 = torch.tensor(rng.standard_normal(cold.W.shape)), torch.tensor(rng.standard_normal(cold.b.shape))
    warm = fit_logistic_probes(X, y, w, 4, C=2.0, tol=1e-11, init=(W0, b0))
    np.testing.assert_allclose(warm.W.numpy(), cold.W.numpy(), atol=1e-7)
    np.testing.assert_allclose(warm.b.numpy(), cold.b.numpy(), atol=1e-7)
    again = fit_logistic_probes(X, y, w, 4, C=2.0, tol=1e-8, init=(cold.W, cold.b))
    assert (again.n_iter == 0).all() and again.converged.all()
    with pytest.raises(ValueError, match="^init:"):
        fit_logistic_probes(X, y, w, 4, init=(W0[:, :2], b0))


def test_ill_conditioned_problems_converge_to_the_optimum():
    # Large unscaled features, weak regularisation, a duplicated column:
    # curvature spans ~10 orders of magnitude.
    rng = np.random.default_rng(21)
    problems = []
    for _ in range(3):
        X, y, _, _ = make_problem(rng, 4, 12, 3, separable=True)
        X[:, 1] = X[:, 0]
        problems.append((100.0 * X, y))
    X, y, w = pad(problems, rng)
    fit = fit_logistic_probes(X, y, w, 4, C=30.0, max_iter=1000)
    assert fit.converged.all()
    for i, (Xi, yi) in enumerate(problems):
        W_ref, b_ref, _ = sklearn_fit(Xi, yi, 30.0)
        obj = objective(fit.W[i].numpy(), fit.b[i].numpy(), Xi, yi, 30.0)
        assert obj <= objective(W_ref, b_ref, Xi, yi, 30.0) + 1e-8


def test_uneven_padding_is_compacted_per_problem():
    # Problems of very different sizes padded to one width (as contrastive_run
    # does) give what each gives alone, with n_iter and converged per problem.
    rng = np.random.default_rng(22)
    problems = [make_problem(rng, 3, 4, n, False)[:2] for n in (1, 2, 300, 5)]
    X, y, w = pad(problems, rng)
    fit = fit_logistic_probes(X, y, w, 3, C=1.0)
    for i, (Xi, yi) in enumerate(problems):
        alone = fit_logistic_probes(*one(Xi, yi), 3, C=1.0)
        np.testing.assert_allclose(fit.W[i].numpy(), alone.W[0].numpy(), atol=1e-9)
        assert fit.n_iter[i] == alone.n_iter[0] and fit.converged[i]
    assert len(set(fit.n_iter.tolist())) > 1  # counted per problem


def test_package_has_module_level_imports_only_and_no_cycles():
    root = pathlib.Path(analysis.probes.__file__).parent
    graph = {}
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text())
        top = set(tree.body)
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                assert node in top, f"{path.name}:{node.lineno}: import inside a function or block"
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                deps |= {n for n in names if n and (n == "analysis.probes" or n.startswith("analysis.probes."))}
        graph["analysis.probes." + path.stem if path.stem != "__init__" else "analysis.probes"] = deps
    assert set(graph) >= {"analysis.probes", "analysis.probes.solver", "analysis.probes.fit", "analysis.probes.grid"}

    def visit(mod, stack):
        assert mod not in stack, f"import cycle: {' -> '.join(stack + [mod])}"
        for dep in graph.get(mod, ()):
            visit(dep, stack + [mod])

    for mod in graph:
        visit(mod, [])


def test_max_iter_caps_and_reports_non_convergence():
    X, y, w = pad(_mixed_bag(13), np.random.default_rng(14))
    fit = fit_logistic_probes(X, y, w, 4, max_iter=2)
    assert (fit.n_iter <= 2).all() and not fit.converged.any()


# ----------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------


def make_fit(W, b):
    """A ProbeFit holding given parameters W (P, d, K), b (P, K)."""
    P, _, K = W.shape
    return ProbeFit(
        torch.tensor(W), torch.tensor(b), torch.zeros(P, dtype=torch.long),
        torch.ones(P, dtype=torch.bool), torch.ones(P, K, dtype=torch.bool),
    )


def test_accuracy_and_loss_match_numpy_softmax():
    rng = np.random.default_rng(15)
    P, d, K, M = 3, 4, 5, 50
    W, b = rng.standard_normal((P, d, K)), rng.standard_normal((P, K))
    fit = make_fit(W, b)
    X, y = rng.standard_normal((M, d)), rng.integers(0, K, M)
    Z = X @ W + b[:, None, :]  # (P, M, K)
    acc = (Z.argmax(-1) == y).mean(1)
    z_y = np.take_along_axis(Z, np.broadcast_to(y[None, :, None], (P, M, 1)), -1)[..., 0]
    loss = (logsumexp(Z, -1) - z_y).mean(1)
    for Xa, ya in [(X, y), (X[None], y[None]), (np.tile(X, (P, 1, 1)), np.tile(y, (P, 1)))]:
        Xa, ya = torch.tensor(Xa), torch.tensor(ya)
        np.testing.assert_allclose(probe_accuracy(fit, Xa, ya).numpy(), acc)
        np.testing.assert_allclose(probe_loss(fit, Xa, ya).numpy(), loss, rtol=1e-12)


def test_accuracy_ties_go_to_lowest_class():
    fit = make_fit(np.zeros((1, 2, 3)), np.zeros((1, 3)))
    X = torch.ones(4, 2, dtype=torch.float64)
    assert float(probe_accuracy(fit, X, torch.zeros(4, dtype=torch.long))) == 1.0
    assert float(probe_loss(fit, X, torch.zeros(4, dtype=torch.long))) == pytest.approx(np.log(3))


# ----------------------------------------------------------------------------
# subsets and the grid
# ----------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    counts=st.lists(st.integers(3, 12), min_size=2, max_size=5),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_subsets_are_balanced_nested_prefixes(counts, seed, data):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(len(counts)) * 10 + 1, counts))  # arbitrary label values
    ns = data.draw(st.lists(st.integers(1, min(counts)), min_size=1, max_size=4))
    idx, w = subsample_per_class(labels, ns, np.random.default_rng(seed))
    K = len(counts)
    assert idx.shape == w.shape == (len(ns), max(ns) * K)
    largest = idx[int(np.argmax(ns))]
    for g, n in enumerate(ns):
        chosen = idx[g, w[g] > 0]
        assert (w[g, : n * K] == 1).all() and (w[g, n * K :] == 0).all()
        assert len(set(chosen)) == n * K  # no repeats
        assert all((labels[chosen] == c).sum() == n for c in np.unique(labels))  # balanced
        np.testing.assert_array_equal(chosen, largest[: n * K])  # prefix => nested
    again, _ = subsample_per_class(labels, ns, np.random.default_rng(seed))
    np.testing.assert_array_equal(idx, again)


def test_subsets_differ_across_seeds_and_reject_large_n():
    labels = np.repeat(np.arange(3), 50)
    a, _ = subsample_per_class(labels, [10], np.random.default_rng(0))
    b, _ = subsample_per_class(labels, [10], np.random.default_rng(1))
    assert set(a[0]) != set(b[0])
    with pytest.raises(ValueError, match="^n_per_class"):
        subsample_per_class(labels, [51], np.random.default_rng(0))
    with pytest.raises(ValueError, match="^rng"):
        subsample_per_class(labels, [1], 0)
    with pytest.raises(ValueError, match="^n_per_class"):
        subsample_per_class(labels, [2.5], np.random.default_rng(0))


@pytest.fixture(scope="session")
def grid_data():
    rng = np.random.default_rng(20)
    means = rng.standard_normal((3, 4))
    y, y_te = np.repeat([5, 7, 9], 30), rng.choice([5, 7, 9], 150)  # non-contiguous labels
    X = 3.0 + 2.0 * (means[(y - 5) // 2] + rng.standard_normal((90, 4)))
    X_te = 3.0 + 2.0 * (means[(y_te - 5) // 2] + rng.standard_normal((150, 4)))
    return X, y, X_te, y_te


def test_grid_cells_match_sklearn(grid_data):
    X, y, X_te, y_te = grid_data
    ns, seeds = [1, 4, 12], [3, 8]
    df = fit_probe_grid(X, y, X_te, y_te, ns, seeds, C=2.0)
    assert list(df.columns[:4]) == ["seed", "n_per_class", "accuracy", "loss"]
    assert len(df) == 6 and df.converged.all()
    for row in df.itertuples():
        idx, w = subsample_per_class(y, ns, np.random.default_rng(row.seed))
        rows = idx[ns.index(row.n_per_class), w[ns.index(row.n_per_class)] > 0]
        _, _, m = sklearn_fit(X[rows], y[rows], 2.0)
        assert abs(row.accuracy - m.score(X_te, y_te)) <= 0.001  # identical predictions
        proba = m.predict_proba(X_te)[np.arange(len(y_te)), np.searchsorted(m.classes_, y_te)]
        assert row.loss == pytest.approx(-np.log(proba).mean(), rel=1e-5)


def test_grid_chunking_and_generators(grid_data):
    X, y, X_te, y_te = grid_data
    ns = [1, 4, 12]
    whole = fit_probe_grid(X, y, X_te, y_te, ns, [0, 1])
    tiny = fit_probe_grid(X, y, X_te, y_te, ns, [0, 1], max_bytes=1)  # one problem per call
    np.testing.assert_allclose(whole.accuracy, tiny.accuracy)
    # Chunking changes which cells get warm starts, so agreement is to the solver tolerance ...
    np.testing.assert_allclose(whole.loss, tiny.loss, rtol=1e-6)
    # ... and to rounding without warm starts.
    cold = fit_probe_grid(X, y, X_te, y_te, ns, [0, 1], warm_start=False)
    cold_tiny = fit_probe_grid(X, y, X_te, y_te, ns, [0, 1], warm_start=False, max_bytes=1)
    np.testing.assert_allclose(cold.loss, cold_tiny.loss, rtol=1e-10)
    np.testing.assert_allclose(cold.loss, whole.loss, rtol=1e-6)
    gens = fit_probe_grid(X, y, X_te, y_te, ns, [np.random.default_rng(0), np.random.default_rng(1)])
    np.testing.assert_allclose(gens.loss, whole.loss, rtol=1e-9)
    assert gens.seed.tolist() == whole.seed.tolist() == [0, 0, 0, 1, 1, 1]


def test_grid_standardize_is_an_explicit_transform(grid_data):
    X, y, X_te, y_te = grid_data
    mu, sd = X.mean(0), X.std(0)
    on = fit_probe_grid(X, y, X_te, y_te, [2, 6], [0], standardize=True)
    manual = fit_probe_grid((X - mu) / sd, y, (X_te - mu) / sd, y_te, [2, 6], [0])
    off = fit_probe_grid(X, y, X_te, y_te, [2, 6], [0])
    np.testing.assert_allclose(on.loss, manual.loss, rtol=1e-9)
    assert not np.allclose(on.loss, off.loss)  # the default really is "off"


# ----------------------------------------------------------------------------
# argument checking
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change,field",
    [
        (dict(X=torch.zeros(2, 3)), "X"),
        (dict(y=torch.zeros(2, 4, dtype=torch.long)), "y"),
        (dict(y=torch.zeros(2, 3)), "y"),
        (dict(y=torch.full((2, 3), 5)), "y"),
        (dict(weight=-torch.ones(2, 3)), "weight"),
        (dict(weight=torch.zeros(2, 3)), "weight"),
        (dict(n_classes=1), "n_classes"),
        (dict(C=0.0), "C"),
        (dict(tol=-1.0), "tol"),
        (dict(max_iter=-1), "max_iter"),
    ],
)
def test_bad_arguments_raise(change, field):
    args = dict(
        X=torch.randn(2, 3, 2, dtype=torch.float64), y=torch.zeros(2, 3, dtype=torch.long),
        weight=torch.ones(2, 3), n_classes=3,
    )
    args.update(change)
    with pytest.raises(ValueError, match=f"^{field}:"):
        fit_logistic_probes(**args)


def test_nan_in_a_weighted_row_is_rejected():
    X = torch.randn(1, 3, 2, dtype=torch.float64)
    X[0, 1, 0] = float("nan")
    with pytest.raises(ValueError, match="^X:"):
        fit_logistic_probes(X, torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3), 2)


def test_a_problem_converged_at_the_start_retires_beside_running_ones():
    """Regression: a batch in which one problem is optimal at theta0 (all one class but for weight 0) and
    another is not must not fail retiring the first before the curvature model's first refresh."""
    g = torch.Generator().manual_seed(3)
    X = torch.randn(2, 40, 3, generator=g, dtype=torch.float64)
    y = torch.randint(0, 2, (2, 40), generator=g)
    w = torch.ones(2, 40, dtype=torch.float64)
    y[0] = 0  # one present class: the projected gradient is 0 at the start
    fit = fit_logistic_probes(X, y, w, 2, C=1.0)
    assert bool(fit.converged.all()) and int(fit.n_iter[0]) == 0 and int(fit.n_iter[1]) > 0
