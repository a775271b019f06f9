"""Fitting and evaluating batched probes: ``fit_logistic_probes`` and the test metrics.

See ``analysis.probes`` for the objective and the conventions; the solver is
``analysis.probes.solver``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from analysis.probes.newton import solve_binary
from analysis.probes.solver import Problems, project, solve

__all__ = ["ProbeFit", "buckets", "fit_binary_probes", "fit_logistic_probes", "fit_logistic_probes_reference",
           "probe_logits", "probe_accuracy", "probe_loss", "test_metrics"]

# Padding (in rows) a batch may carry; a batched call's fixed per-iteration
# cost is worth about this many rows of work.
_BUCKET_SLACK_ROWS = 4096


@dataclass
class ProbeFit:
    """Solutions of P independent multinomial logistic regressions.

    Attributes:
        W: (P, d, K) weights; logits are ``x @ W[p] + b[p]``.
        b: (P, K) intercepts; ``-inf`` for classes absent from problem p.
        n_iter: (P,) int64, solver iterations used by each problem.
        converged: (P,) bool, gradient test ``max|grad F_p| <= tol`` met.
        present: (P, K) bool, classes with positive training weight.
    """

    W: Tensor
    b: Tensor
    n_iter: Tensor
    converged: Tensor
    present: Tensor


def _all_finite(x: Tensor) -> bool:
    """One pass, no temporary: min and max are finite iff every entry is (both propagate NaN)."""
    lo, hi = torch.aminmax(x)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


def _check_inputs(X, y, weight, n_classes, C, max_iter, tol, lean: bool = False):
    """Checked float64 X (P, N, d), long y (P, N), weight (P, N) and its row sums (P,);
    padding rows (weight 0) are zeroed."""
    dtype = torch.float64
    X = torch.as_tensor(X)
    device = X.device
    y = torch.as_tensor(y, device=device)
    weight = torch.as_tensor(weight, device=device)
    if X.ndim != 3:
        raise ValueError(f"X: must have shape (P, N, d) (got {tuple(X.shape)})")
    P, N, d = X.shape
    if P == 0 or N == 0 or d == 0:
        raise ValueError(f"X: every dimension must be positive (got {tuple(X.shape)})")
    if tuple(y.shape) != (P, N):
        raise ValueError(f"y: must have shape {(P, N)} (got {tuple(y.shape)})")
    if tuple(weight.shape) != (P, N):
        raise ValueError(f"weight: must have shape {(P, N)} (got {tuple(weight.shape)})")
    if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
        raise ValueError(f"y: must be an integer tensor (got {y.dtype})")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes: must be an integer >= 2 (got {n_classes})")
    if isinstance(C, bool) or not isinstance(C, (int, float)) or not (math.isfinite(C) and C > 0):
        raise ValueError(f"C: must be a positive finite number (got {C})")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise ValueError(f"max_iter: must be a non-negative integer (got {max_iter})")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
        raise ValueError(f"tol: must be a non-negative number (got {tol})")
    weight = weight.to(dtype)
    if not bool(torch.isfinite(weight).all()) or bool((weight < 0).any()):
        raise ValueError("weight: must be finite and >= 0")
    used = weight > 0
    # Padding rows may hold anything (NaN, out-of-range labels): replace them
    # before they reach arithmetic (0 * NaN is NaN).
    zero = torch.zeros((), dtype=torch.long, device=device)
    y = torch.where(used, y.long(), zero)
    if bool(((y < 0) | (y >= n_classes)).any()):
        raise ValueError(f"y: labels of weighted rows must lie in [0, {n_classes})")
    X = torch.where(used.unsqueeze(-1), X.to(dtype), torch.zeros((), dtype=dtype, device=device))
    if not (_all_finite(X) if lean else bool(torch.isfinite(X).all())):  # lean: the fast path's equivalent test
        raise ValueError("X: weighted rows must be finite")
    sw = weight.sum(1)
    if bool((sw <= 0).any()):
        raise ValueError("weight: every problem needs a positive total weight")
    return X, y, weight, sw



def buckets(sizes: Sequence[int], row_bytes: int, max_bytes: float) -> list[list[int]]:
    """Group problems (given their row counts) into batches for padded fitting.

    Each batched call pays a fixed per-iteration overhead (tens of small
    kernels) worth roughly _BUCKET_SLACK_ROWS rows of work, and padding every
    problem to the largest N wastes work when n spans orders of magnitude. So
    problems are sorted by size and a batch is closed once the padding it would
    carry exceeds _BUCKET_SLACK_ROWS rows, or its padded data ``max_bytes``.
    """
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    out: list[list[int]] = []
    cur: list[int] = []
    real = 0
    for i in order:
        n = sizes[i]
        padded = (len(cur) + 1) * n
        if cur and (padded - real - n > _BUCKET_SLACK_ROWS or padded * row_bytes > max_bytes):
            out.append(cur)
            cur, real = [], 0
        cur.append(i)
        real += n
    if cur:
        out.append(cur)
    return out


def fit_logistic_probes(
    X: Tensor,
    y: Tensor,
    weight: Tensor,
    n_classes: int,
    C: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-8,
    init: tuple[Tensor, Tensor] | None = None,
) -> ProbeFit:
    """Fit P independent L2-regularised multinomial logistic regressions (the fast path).

    Two classes go to Newton's method on the binary model (``analysis.probes.newton``), more to the batched L-BFGS
    of ``solver``. Arguments, conventions and the stopping test (max|grad F| <= tol) are those of
    ``fit_logistic_probes_reference``, the implementation this replaces, which is kept as the oracle.

    Tolerance against the reference (K = 2). Both stop at a point whose gradient is at most ``tol`` in every entry,
    so they agree to the accuracy of the reference's own stopping point, not bit for bit: Newton's last step lands
    orders of magnitude inside the test, L-BFGS just inside it. Held by tests/analysis/test_probes_newton.py: the
    objective F = f / (C sum w) no larger than the reference's + 1e-10 and within 1e-8 of it; W and b within 1e-4
    relative to max(1, max|W|, max|b|), or within the strong-convexity bound 4 sqrt(d+1) tol C sum w where that is
    larger (weak regularisation leaves flat directions); ``converged`` and ``present`` identical; test loss within
    1e-5 for C <= 10. Measured on the language default's probe calls (``experiments.bench_probe_newton``) and its
    rows.csv: losses within 6e-8, 0-1 errors and verdicts identical. ``n_iter`` counts Newton steps, fewer than
    the reference's.
    """
    return _fit(X, y, weight, n_classes, C, max_iter, tol, init, newton=True)


def fit_logistic_probes_reference(
    X: Tensor,
    y: Tensor,
    weight: Tensor,
    n_classes: int,
    C: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-8,
    init: tuple[Tensor, Tensor] | None = None,
) -> ProbeFit:
    """Fit P independent L2-regularised multinomial logistic regressions with the batched L-BFGS alone.

    The implementation on main before the Newton fast path: the oracle of its equivalence test and the baseline
    of ``experiments.bench_probe_newton``.

    Args:
        X: (P, N, d) features; problem p uses the rows X[p, i] with
            weight[p, i] > 0. Tensors keep their device; arrays are converted.
        y: (P, N) integer labels in [0, n_classes) (ignored where weight is 0).
        weight: (P, N) non-negative sample weights; 0 marks padding, whose X
            and y may hold anything (NaN, out-of-range labels).
        n_classes: K, number of classes (columns of W).
        C: inverse regularisation strength, as in scikit-learn.
        max_iter: cap on solver iterations per problem.
        tol: stop a problem once max |grad| of f / (C * sum(weight)) <= tol
            (what scikit-learn's lbfgs ``tol`` bounds).
        init: optional warm start (W0 (P, d, K), b0 (P, K)), e.g. a previous
            fit; non-finite intercepts count as 0. Changes the path, not the
            optimum.

    Returns:
        ProbeFit (float64) with W (P, d, K), b (P, K), n_iter (P,),
        converged (P,), present (P, K). See the module docstring for absent
        classes.
    """
    return _fit(X, y, weight, n_classes, C, max_iter, tol, init, newton=False)


def _fit(X, y, weight, n_classes, C, max_iter, tol, init, newton: bool) -> ProbeFit:
    X, y, weight, sw = _check_inputs(X, y, weight, n_classes, C, max_iter, tol, lean=newton)
    if newton and int(n_classes) == 2:
        return _fit_two(X, (y == 1).to(X.dtype), weight, sw, C, int(max_iter), float(tol), init)
    P, N, d = X.shape
    K = int(n_classes)
    present = torch.zeros(P, K, dtype=X.dtype, device=X.device).scatter_add_(1, y, weight) > 0
    # Solver layout: theta (P, K, d+1) = [W^T | b].
    theta0 = torch.zeros(P, K, d + 1, dtype=torch.float64, device=X.device)
    if init is not None:
        W0, b0 = (torch.as_tensor(v, device=theta0.device).to(torch.float64) for v in init)
        if tuple(W0.shape) != (P, d, K) or tuple(b0.shape) != (P, K):
            raise ValueError(
                f"init: must be (W0 {(P, d, K)}, b0 {(P, K)}) (got {tuple(W0.shape)}, {tuple(b0.shape)})"
            )
        theta0[:, :, :d] = W0.transpose(1, 2)
        theta0[:, :, d] = torch.where(torch.isfinite(b0), b0, 0.0)
        if not bool(torch.isfinite(theta0).all()):
            raise ValueError("init: W0 must be finite")
    # Weighted rows first (stable), then problems of similar size solved together
    # on their own rows only: padding costs nothing.
    used = weight > 0
    order = torch.sort((~used).to(torch.uint8), dim=1, stable=True).indices
    X, y, weight = X.gather(1, order.unsqueeze(-1).expand(-1, -1, d)), y.gather(1, order), weight.gather(1, order)
    counts = used.sum(1).tolist()
    theta, n_iter = torch.empty_like(theta0), torch.empty(P, dtype=torch.long, device=X.device)
    converged = torch.empty(P, dtype=torch.bool, device=X.device)
    for bucket in buckets(counts, 0, math.inf):
        i, n = torch.tensor(bucket, device=X.device), max(counts[j] for j in bucket)
        pr = Problems(
            Xt=X[i, :n].transpose(1, 2).contiguous(), y=y[i, :n].unsqueeze(1),
            wn=(weight[i, :n] / sw[i].unsqueeze(1)).unsqueeze(1), lam=(1.0 / (C * sw[i])).view(-1, 1, 1),
            present=present[i].unsqueeze(-1).to(X.dtype),
        )
        if init is not None:
            theta0[i] = project(pr, theta0[i])
        theta[i], n_iter[i], converged[i] = solve(pr, theta0[i], int(max_iter), float(tol))
    W = theta[:, :, :-1].transpose(1, 2).contiguous()
    b = theta[:, :, -1].masked_fill(~present, -math.inf)
    return ProbeFit(W=W, b=b, n_iter=n_iter, converged=converged, present=present)


def fit_binary_probes(
    X: Tensor,
    target: Tensor,
    weight: Tensor,
    C: float = 1.0,
    max_iter: int = 200,
    tol: float = 1e-8,
    init: tuple[Tensor, Tensor] | None = None,
) -> ProbeFit:
    """Two-class probes with soft targets: ``fit_logistic_probes`` (K = 2) of every row taken twice, as class 1 with
    weight ``weight * target`` and as class 0 with weight ``weight * (1 - target)``, without the copy.

    A population probe fitted on a label law P(y = 1 | x) = q needs this: its objective is sum_i w_i [q_i CE(1) +
    (1 - q_i) CE(0)]. Same solver (``analysis.probes.newton``), output (a symmetric K = 2 ``ProbeFit``) and
    tolerance as ``fit_logistic_probes``; ``present`` marks a class whose weight sum_i w_i q_i (or w_i (1 - q_i)) is
    positive.

    Args:
        X: (P, N, d) features; weight: (P, N) >= 0 (0 marks padding); target: (P, N) in [0, 1] on weighted rows.
        C, max_iter, tol, init: as in ``fit_logistic_probes``.
    """
    target = torch.as_tensor(target)
    X = torch.as_tensor(X)
    if tuple(target.shape) != tuple(X.shape[:2]):
        raise ValueError(f"target: must have shape {tuple(X.shape[:2])} (got {tuple(target.shape)})")
    if not target.dtype.is_floating_point:
        raise ValueError(f"target: must be a floating-point tensor (got {target.dtype})")
    labels = torch.zeros(target.shape, dtype=torch.long, device=X.device)
    X, _, weight, sw = _check_inputs(X, labels, weight, 2, C, max_iter, tol, lean=True)
    target = torch.where(weight > 0, target.to(device=X.device, dtype=X.dtype), 0.0)
    if not bool(((target >= 0) & (target <= 1)).all()):  # NaN fails too
        raise ValueError("target: must lie in [0, 1] on weighted rows")
    return _fit_two(X, target, weight, sw, C, int(max_iter), float(tol), init)


def _fit_two(X: Tensor, t: Tensor, weight: Tensor, sw: Tensor, C: float, max_iter: int, tol: float,
             init) -> ProbeFit:
    """The K = 2 fast path on checked inputs (X (P, N, d) float64 with padding rows zeroed, t (P, N) in [0, 1])."""
    P, N, d = X.shape
    dev, dt = X.device, X.dtype
    present = torch.stack([(weight * (1 - t)).sum(1) > 0, (weight * t).sum(1) > 0], 1)
    beta0 = torch.zeros(P, d + 1, dtype=dt, device=dev)
    if init is not None:
        W0, b0 = (torch.as_tensor(v, device=dev).to(dt) for v in init)
        if tuple(W0.shape) != (P, d, 2) or tuple(b0.shape) != (P, 2):
            raise ValueError(
                f"init: must be (W0 {(P, d, 2)}, b0 {(P, 2)}) (got {tuple(W0.shape)}, {tuple(b0.shape)})"
            )
        if not bool(torch.isfinite(W0).all()):
            raise ValueError("init: W0 must be finite")
        b0 = torch.where(torch.isfinite(b0), b0, 0.0)
        beta0 = torch.cat([W0[:, :, 1] - W0[:, :, 0], (b0[:, 1] - b0[:, 0]).unsqueeze(1)], 1)
    beta = torch.zeros_like(beta0)  # one present class: the projected subspace is {0}, optimal at the start
    n_iter = torch.zeros(P, dtype=torch.long, device=dev)
    converged = torch.ones(P, dtype=torch.bool, device=dev)
    both = present.all(1)
    used = weight > 0
    counts = used.sum(1)
    packed = bool((used == (torch.arange(N, device=dev) < counts.unsqueeze(1))).all())
    if not packed:  # weighted rows first (stable), as the reference does, so that a bucket reads only its rows
        order = torch.sort((~used).to(torch.uint8), dim=1, stable=True).indices
        X, t, weight = X.gather(1, order.unsqueeze(-1).expand(-1, -1, d)), t.gather(1, order), weight.gather(1, order)
    live = both.nonzero().squeeze(1)
    sizes = counts[live].tolist()
    for bucket in buckets(sizes, 0, math.inf):
        i = live[torch.tensor(bucket, device=dev)]
        n = max(sizes[j] for j in bucket)
        whole = len(bucket) == P and n == N  # the common case: no copy of X beyond the column of ones
        if whole:
            i = torch.arange(P, device=dev)
        Xb = X if whole else X[i, :n]
        Xa = torch.cat([Xb, torch.ones_like(Xb[:, :, :1])], 2)
        wb, swb = (weight, sw) if whole else (weight[i, :n], sw[i])
        beta[i], n_iter[i], converged[i] = solve_binary(
            Xa, t if whole else t[i, :n], wb / swb.unsqueeze(1), 1.0 / (C * swb), beta0[i], max_iter, tol)
    W = 0.5 * beta[:, :-1]
    c = 0.5 * beta[:, -1]
    b = torch.stack([-c, c], 1).masked_fill(~present, -math.inf)
    return ProbeFit(W=torch.stack([-W, W], 2), b=b, n_iter=n_iter, converged=converged, present=present)


def _eval_inputs(fit: ProbeFit, X_test, y_test) -> tuple[Tensor, Tensor]:
    X_test = torch.as_tensor(X_test, device=fit.W.device)
    y_test = torch.as_tensor(y_test, device=fit.W.device)
    P, d, K = fit.W.shape
    if X_test.ndim == 2:
        X_test = X_test.unsqueeze(0)
    if X_test.ndim != 3 or X_test.shape[0] not in (1, P) or X_test.shape[2] != d:
        raise ValueError(f"X_test: must have shape ({P} or 1, M, {d}) (got {tuple(X_test.shape)})")
    M = X_test.shape[1]
    if y_test.ndim == 1:
        y_test = y_test.unsqueeze(0)
    if y_test.ndim != 2 or y_test.shape[0] not in (1, P) or y_test.shape[1] != M:
        raise ValueError(f"y_test: must have shape ({P} or 1, {M}) (got {tuple(y_test.shape)})")
    if y_test.dtype.is_floating_point or bool(((y_test < 0) | (y_test >= K)).any()):
        raise ValueError(f"y_test: must hold integer labels in [0, {K})")
    return X_test.to(fit.W.dtype), y_test.long()


def probe_logits(fit: ProbeFit, X_test: Tensor) -> Tensor:
    """Logits (P, M, K) of every probe on X_test of shape (P or 1, M, d) or (M, d)."""
    X_test = torch.as_tensor(X_test, device=fit.W.device).to(fit.W.dtype)
    if X_test.ndim == 2:
        X_test = X_test.unsqueeze(0)
    return torch.matmul(X_test, fit.W) + fit.b.unsqueeze(1)


def test_metrics(fit: ProbeFit, X_test, y_test) -> tuple[Tensor, Tensor]:
    """(accuracy, mean cross-entropy), each (P,), from one pass over the test set."""
    X_test, y_test = _eval_inputs(fit, X_test, y_test)
    P, d, K = fit.W.shape
    M = X_test.shape[1]
    Xt = X_test.transpose(1, 2)  # logits as (P, K, M): reductions over K vectorise along M
    acc, loss = [], []
    step = max(1, (1 << 23) // max(1, K * M))  # bound the logits buffer to 64 MiB
    for lo in range(0, P, step):
        sl = slice(lo, lo + step)
        z = torch.matmul(fit.W[sl].mT, Xt if Xt.shape[0] == 1 else Xt[sl]) + fit.b[sl].unsqueeze(-1)
        yy = (y_test if y_test.shape[0] == 1 else y_test[sl]).unsqueeze(1).expand(z.shape[0], 1, M)
        # argmax returns the first maximal index (scikit-learn's tie rule); it
        # is 4x faster along the contiguous axis.
        pred = z.transpose(1, 2).contiguous().argmax(-1, keepdim=True).transpose(1, 2)
        acc.append((pred == yy).to(z.dtype).mean((1, 2)))
        loss.append((torch.logsumexp(z, 1, keepdim=True) - z.gather(1, yy)).mean((1, 2)))
    return torch.cat(acc), torch.cat(loss)


def probe_accuracy(fit: ProbeFit, X_test: Tensor, y_test: Tensor) -> Tensor:
    """Fraction (P,) of test points whose argmax logit is the label.

    X_test: (P or 1, M, d) or (M, d); y_test: (P or 1, M) or (M,). Ties go to
    the lowest class index, as in scikit-learn's ``predict``.
    """
    return test_metrics(fit, X_test, y_test)[0]


def probe_loss(fit: ProbeFit, X_test: Tensor, y_test: Tensor) -> Tensor:
    """Mean natural-log cross-entropy (P,) on the test set (shapes as probe_accuracy).

    +inf for a problem that never saw the class of some test point.
    """
    return test_metrics(fit, X_test, y_test)[1]


