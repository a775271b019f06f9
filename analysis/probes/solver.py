"""The one solver of ``analysis.probes``: batched, preconditioned L-BFGS.

All B problems are stacked along a leading axis. They share no parameters, so
each keeps its own step, curvature pairs and stopping test, and a converged
problem leaves the batch. Every function here minimises the scaled objective
F = f / (C * sum w) (f as in ``analysis.probes``), so ``tol`` bounds
max|grad F| as scikit-learn's lbfgs ``tol`` does.

Layout: features transposed, Xt (B, d, N); parameters theta (B, K, d+1) =
[W^T | b]; logits and probabilities (B, K, N). Both products of a pass then run
along a contiguous N axis and reductions over K vectorise along N.

Curvature model (L-BFGS's H0). The Hessian of F is
sum_i wn_i (diag p_i - p_i p_i^T) kron [x_i,1][x_i,1]^T + ridge. Replacing the
class factor of each row by its weighted mean A gives A kron S + ridge, S the
second moment of [x, 1]; it is exact at W = 0 and whitens the features, so the
iteration count does not grow with their anisotropy. In A's eigenbasis its
inverse is K solves with (a_k S + ridge), each (d+1) square. A is refreshed at
every iteration; L-BFGS pairs correct the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Problems", "project", "solve"]

_MEMORY = 10  # L-BFGS curvature pairs
_ARMIJO = 1e-4  # sufficient-decrease constant
_MAX_HALVINGS = 40  # backtracking budget; exhausted only once decrease is below rounding


@dataclass
class Problems:
    """Data of the problems being optimised (each row of every tensor one problem)."""

    Xt: Tensor  # (B, d, N) features, padding rows zero
    y: Tensor  # (B, 1, N) long labels
    wn: Tensor  # (B, 1, N) weights / their sum
    lam: Tensor  # (B, 1, 1) = 1 / (C * sum w), the ridge of F
    present: Tensor  # (B, K, 1) float: 1 for classes with positive weight

    def take(self, idx: Tensor) -> "Problems":
        return Problems(self.Xt[idx], self.y[idx], self.wn[idx], self.lam[idx], self.present[idx])


def project(pr: Problems, V: Tensor) -> Tensor:
    """V (B, K, d+1) with absent classes zeroed and columns summing to 0 over present ones.

    The optimum, the gradient and every step lie in this subspace; it removes
    the flat direction b -> b + c of the objective.
    """
    V = V * pr.present
    return V - V.sum(1, keepdim=True) / pr.present.sum(1, keepdim=True) * pr.present


def objective(pr: Problems, theta: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """F (B,), projected gradient (B, K, d+1) and probabilities (B, K, N) at theta."""
    z = torch.baddbmm(theta[:, :, -1:], theta[:, :, :-1], pr.Xt)
    z = z.masked_fill(pr.present == 0, -math.inf)
    zmax = z.amax(1, keepdim=True)
    prob = (z - zmax).exp_()  # one exp serves log-sum-exp and probabilities
    tot = prob.sum(1, keepdim=True)
    prob.div_(tot)
    ce = tot.log_().add_(zmax).sub_(z.gather(1, pr.y))  # (B, 1, N)
    W = theta[:, :, :-1]
    F = (pr.wn * ce).sum((1, 2)) + 0.5 * pr.lam.view(-1) * W.pow(2).sum((1, 2))
    G = (prob * pr.wn).scatter_add_(1, pr.y, -pr.wn)  # wn * (p - onehot)
    gW = torch.bmm(G, pr.Xt.mT) + pr.lam * W
    return F, project(pr, torch.cat([gW, G.sum(2, keepdim=True)], 2)), prob


def _dot(a: Tensor, b: Tensor) -> Tensor:
    return (a * b).flatten(1).sum(1)


class _Model:
    """H0^{-1} = (A kron S + ridge)^{-1} of the module docstring, per problem."""

    def __init__(self, pr: Problems):
        B, d, _ = pr.Xt.shape
        Xa = torch.cat([pr.Xt, torch.ones_like(pr.Xt[:, :1])], 1)
        self.S = torch.bmm(Xa * pr.wn, Xa.mT)  # (B, d+1, d+1)
        ridge = torch.cat([pr.lam.view(B, 1).expand(B, d), pr.lam.new_zeros(B, 1)], 1)
        self.ridge = torch.diag_embed(ridge).unsqueeze(1)
        m = pr.present.squeeze(-1)
        # Positive curvature on the directions the projection removes, so that
        # every factor exists; they never reach the iterates.
        self.null = m.unsqueeze(-1) * m.unsqueeze(-2) / m.sum(1).view(B, 1, 1) + torch.diag_embed(1.0 - m)

    def refresh(self, pr: Problems, prob: Tensor) -> None:
        pw = prob * pr.wn
        A = torch.diag_embed(pw.sum(2)) - torch.bmm(pw, prob.mT)
        c = A.diagonal(0, 1, 2).sum(-1) / self.null.diagonal(0, 1, 2).sum(-1)
        e, self.U = torch.linalg.eigh(A + c.view(-1, 1, 1) * self.null)
        M = e.clamp_min(0).view(*e.shape, 1, 1) * self.S.unsqueeze(1) + self.ridge
        # A relative jitter keeps M factorable when rounding (a tiny ridge next
        # to large features) leaves it numerically singular.
        M.diagonal(0, -2, -1).add_(1e-12 * M.diagonal(0, -2, -1).amax(-1, keepdim=True))
        self.L = torch.linalg.cholesky(M)  # (B, K, d+1, d+1)

    def take(self, idx: Tensor) -> None:
        # U and L exist only after the first refresh; problems can retire before it (converged at the start).
        for name in ("S", "ridge", "null", "U", "L"):
            if hasattr(self, name):
                setattr(self, name, getattr(self, name)[idx])

    def apply(self, pr: Problems, Q: Tensor) -> Tensor:
        V = torch.cholesky_solve(torch.bmm(self.U.mT, Q).unsqueeze(-1), self.L).squeeze(-1)
        return project(pr, torch.bmm(self.U, V))


def _line_search(pr: Problems, theta: Tensor, F: Tensor, g: Tensor, step: Tensor):
    """Per-problem Armijo backtracking from t = 1 along a descent ``step``.

    Returns theta, F, grad, prob at the accepted points and ok (B,); a problem
    with no accepted step (its decrease is below rounding) stays put.
    """
    slope = _dot(g, step)
    slack = 8.0 * torch.finfo(F.dtype).eps * F.abs().clamp_min(1.0)  # F differences below rounding
    new = theta + step
    F_new, g_new, p_new = objective(pr, new)
    ok = (F_new <= F + _ARMIJO * slope + slack) & torch.isfinite(F_new)
    todo, t = (~ok).nonzero().squeeze(1), 1.0
    sub = pr.take(todo)
    for _ in range(_MAX_HALVINGS - 1):
        if todo.numel() == 0:
            return new, F_new, g_new, p_new, ok
        t *= 0.5
        cand = theta[todo] + t * step[todo]
        Fc, gc, pc = objective(sub, cand)
        acc = (Fc <= F[todo] + _ARMIJO * t * slope[todo] + slack[todo]) & torch.isfinite(Fc)
        ia = todo[acc]
        new[ia], F_new[ia], g_new[ia], p_new[ia], ok[ia] = cand[acc], Fc[acc], gc[acc], pc[acc], True
        keep = (~acc).nonzero().squeeze(1)
        todo, sub = todo[keep], sub.take(keep)
    if todo.numel():
        new[todo], F_new[todo], g_new[todo] = theta[todo], F[todo], g[todo]
        p_new[todo] = objective(pr.take(todo), theta[todo])[2]
    return new, F_new, g_new, p_new, ok


def solve(pr: Problems, theta: Tensor, max_iter: int, tol: float) -> tuple[Tensor, Tensor, Tensor]:
    """Minimise F from theta (B, K, d+1); returns theta, n_iter (B,) int64, converged (B,) bool."""
    B = theta.shape[0]
    theta_out, n_iter = theta.clone(), torch.zeros(B, dtype=torch.long, device=theta.device)
    converged = torch.zeros(B, dtype=torch.bool, device=theta.device)
    live = torch.arange(B, device=theta.device)  # global index of each running problem
    F, g, prob = objective(pr, theta)
    model, mem, fails = _Model(pr), [], torch.zeros_like(n_iter)
    while True:
        done = g.abs().flatten(1).amax(1) <= tol
        out = done | (n_iter[live] >= max_iter) | (fails >= 2)
        if bool(out.any()):
            theta_out[live[out]], converged[live[out]] = theta[out], done[out]
            keep = (~out).nonzero().squeeze(1)
            if keep.numel() == 0:
                return theta_out, n_iter, converged
            live, theta, F, g, prob, fails = (v[keep] for v in (live, theta, F, g, prob, fails))
            pr = pr.take(keep)
            model.take(keep)
            mem = [tuple(v[keep] for v in pair) for pair in mem]
        model.refresh(pr, prob)
        # Two-loop recursion; a pair with rho = 0 (rejected) has no effect.
        q, alphas = g.clone(), []
        for s, y, rho in reversed(mem):
            alphas.append(rho * _dot(s, q))
            q -= alphas[-1].view(-1, 1, 1) * y
        r = model.apply(pr, q)
        if mem:  # scale H0 by the newest pair (Nocedal & Wright's gamma)
            s, y, rho = mem[-1]
            yHy = _dot(y, model.apply(pr, y))
            good = (rho > 0) & (yHy > 0)
            r = r * torch.where(good, 1.0 / torch.where(good, rho * yHy, 1.0), 1.0).view(-1, 1, 1)
        for (s, y, rho), a in zip(mem, reversed(alphas)):
            r += (a - rho * _dot(y, r)).view(-1, 1, 1) * s
        step = -project(pr, r)
        bad = _dot(step, g) >= 0  # not a descent direction (rounding): model step
        if bool(bad.any()):
            step[bad] = -model.apply(pr, g)[bad]
        theta_new, F, g_new, prob, ok = _line_search(pr, theta, F, g, step)
        n_iter[live] += 1
        s, y = theta_new - theta, g_new - g
        sy = _dot(s, y)
        valid = ok & (sy > 1e-12 * (_dot(s, s) * _dot(y, y)).sqrt())
        mem = (mem + [(s, y, torch.where(valid, 1.0 / torch.where(valid, sy, 1.0), 0.0))])[-_MEMORY:]
        theta, g, fails = theta_new, g_new, torch.where(ok, 0, fails + 1)
        if not bool(ok.all()):  # forget a failed problem's pairs: next step is the model step
            for _, _, rho in mem:
                rho[~ok] = 0.0
