"""The fast path of ``analysis.probes`` for two classes: batched Newton's method on the binary model.

With K = 2 the multinomial problem of ``analysis.probes`` is a binary logistic regression in disguise: the
optimum is symmetric, W = [-w/2, w/2] and b = [-c/2, c/2], and in beta = (w, c) the scaled objective is

    F(beta) = sum_i wn_i [softplus(m_i) - t_i m_i] + lam / 4 * ||w||^2,   m_i = x_i . w + c,

with t_i = [y_i = 1], wn the weights over their sum and lam = 1 / (C * sum w), as in ``solver``. A soft target
t_i in [0, 1] is the same objective as the row twice, as y = 1 with weight w t and as y = 0 with weight w (1 - t).
At the symmetric point the projected multinomial gradient has the columns -dF/dbeta and +dF/dbeta, so the stopping
test max|grad F| <= tol is the reference's, entry for entry.

Why Newton: beta has only d + 1 entries, so the exact Hessian X^T diag(wn s (1 - s)) X + ridge costs one batched
(d+1)-square product per iteration and one Cholesky; the iteration count is a handful (quadratic convergence) where
L-BFGS spends tens of passes, each with an eigendecomposition of its curvature model. Armijo backtracking on F makes
it globally convergent (F is convex; the ridge makes it strictly convex in w, the intercept's curvature
sum wn s (1 - s) is positive). The margins along the step are affine in the step length, m + a X.step, so the line
search touches the data once per iteration, whatever the number of halvings.

Layout: rows first, Xa (B, N, d+1) with a last column of ones (padding rows zero, weight zero); beta (B, d+1).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["solve_binary"]

_ARMIJO = 1e-4  # sufficient-decrease constant (the reference's)
_MAX_HALVINGS = 40  # backtracking budget; exhausted only once decrease is below rounding
_REFRESH = 1  # Newton steps per Hessian (2, Newton-Shamanskii, measured slower here: more steps)


def _loss(m: Tensor, t: Tensor, wn: Tensor) -> Tensor:
    """sum_i wn_i [softplus(m_i) - t_i m_i] (B,), in a form exact to rounding for any margin.

    torch's softplus is the identity above a threshold of 20, an error of e^-20 ~ 2e-9: too coarse here.
    """
    return (wn * (m.clamp_min(0) + torch.log1p(torch.exp(-m.abs())) - t * m)).sum(1)


def _margins(Xa: Tensor, v: Tensor) -> Tensor:
    return torch.bmm(Xa, v.unsqueeze(-1)).squeeze(-1)


def _ridge(lam: Tensor, beta: Tensor) -> Tensor:
    return 0.25 * lam * beta[:, :-1].pow(2).sum(1)


def _grad(Xa: Tensor, t: Tensor, wn: Tensor, lam: Tensor, beta: Tensor, m: Tensor) -> Tensor:
    """Gradient (B, d+1) of F at beta, whose margins are m (B, N)."""
    g = torch.bmm((wn * (torch.sigmoid(m) - t)).unsqueeze(1), Xa).squeeze(1)
    g[:, :-1] += 0.5 * lam.unsqueeze(1) * beta[:, :-1]
    return g


def _factor(Xa: Tensor, wn: Tensor, lam: Tensor, m: Tensor, buf: Tensor) -> Tensor:
    """Cholesky factor (B, d+1, d+1) of the Hessian at margins m; a relative jitter keeps it factorable when
    rounding leaves it (nearly) singular (a duplicated feature next to a tiny ridge, or the intercept's curvature
    underflowing at margins in the hundreds)."""
    s = torch.sigmoid(m)
    # Into a buffer allocated once: a fresh (B, N, d+1) temporary per call costs as much in page faults as the product.
    H = torch.bmm(torch.mul(Xa, (wn * s * (1 - s)).unsqueeze(-1), out=buf[:Xa.shape[0]]).mT, Xa)
    diag = H.diagonal(0, 1, 2)
    diag[:, :-1] += 0.5 * lam.unsqueeze(1)
    diag.add_(1e-12 * diag.amax(-1, keepdim=True).clamp_min(1e-300))
    L, info = torch.linalg.cholesky_ex(H)
    bad = info > 0
    if bool(bad.any()):
        Hb = H[bad]
        Hb.diagonal(0, 1, 2).add_(1e-8 * Hb.diagonal(0, 1, 2).amax(-1, keepdim=True).clamp_min(1e-300))
        L[bad] = torch.linalg.cholesky(Hb)
    return L


def solve_binary(Xa: Tensor, t: Tensor, wn: Tensor, lam: Tensor, beta: Tensor, max_iter: int,
                 tol: float) -> tuple[Tensor, Tensor, Tensor]:
    """Minimise F from beta (B, d+1); Xa (B, N, d+1), t in [0, 1] and wn >= 0 (B, N) (wn sums to 1), lam (B,).

    Returns beta, n_iter (B,) int64 (Newton steps taken) and converged (B,) bool (max|grad F| <= tol). A problem
    leaves the batch once converged, at max_iter, or after two steps in a row that no backtracking could accept
    (its decrease is below rounding), as in ``solver.solve``.
    """
    B = beta.shape[0]
    beta_out, n_iter = beta.clone(), torch.zeros(B, dtype=torch.long, device=beta.device)
    converged = torch.zeros(B, dtype=torch.bool, device=beta.device)
    live = torch.arange(B, device=beta.device)
    m = _margins(Xa, beta)
    F = _loss(m, t, wn) + _ridge(lam, beta)
    fails = torch.zeros_like(n_iter)
    L, fresh, k = None, True, 0
    buf = torch.empty_like(Xa)
    while True:
        g = _grad(Xa, t, wn, lam, beta, m)
        done = g.abs().amax(1) <= tol
        out = done | (n_iter[live] >= max_iter) | (fails >= 2)
        if bool(out.any()):
            beta_out[live[out]], converged[live[out]] = beta[out], done[out]
            keep = (~out).nonzero().squeeze(1)
            if keep.numel() == 0:
                return beta_out, n_iter, converged
            live, beta, F, m, g, fails = (v[keep] for v in (live, beta, F, m, g, fails))
            Xa, t, wn, lam = Xa[keep], t[keep], wn[keep], lam[keep]
            L = None if L is None else L[keep]
        # The Hessian (its product is most of an iteration's work) is refreshed every _REFRESH steps, and whenever
        # the last step had to backtrack: a Newton-Shamanskii iteration, whose fixed point is Newton's.
        if L is None or fresh or k % _REFRESH == 0:
            L = _factor(Xa, wn, lam, m, buf)
        k += 1
        step = -torch.cholesky_solve(g.unsqueeze(-1), L).squeeze(-1)
        dm = _margins(Xa, step)  # margins are affine along the step: no further pass over Xa below
        slope = (g * step).sum(1)
        slack = 8.0 * torch.finfo(F.dtype).eps * F.abs().clamp_min(1.0)  # F differences below rounding
        a = torch.ones_like(F)
        todo = torch.ones(beta.shape[0], dtype=torch.bool, device=beta.device)
        for _ in range(_MAX_HALVINGS):
            cand = beta + a.unsqueeze(1) * step
            Fc = _loss(m + a.unsqueeze(1) * dm, t, wn) + _ridge(lam, cand)
            acc = (Fc <= F + _ARMIJO * a * slope + slack) & torch.isfinite(Fc)
            todo = todo & ~acc
            if not bool(todo.any()):
                break
            a = torch.where(todo, 0.5 * a, a)
        ok = ~todo
        a = torch.where(ok, a, 0.0)  # no accepted step: stay put
        beta = beta + a.unsqueeze(1) * step
        m = m + a.unsqueeze(1) * dm
        F = torch.where(ok, _loss(m, t, wn) + _ridge(lam, beta), F)
        n_iter[live] += 1
        fails = torch.where(ok, 0, fails + 1)
        fresh = bool((a < 1).any())
