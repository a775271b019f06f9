"""Softmax LMs with fixed word embeddings Phi, and the Quad objective (Saunshi, Malladi & Arora, ICLR 2021).

Softmax LM: p_theta = softmax(Phi^T theta), Phi (d, V) the output word embeddings, theta = f(s) (d,). The
conditional-mean feature is Phi p_{f(s)} (d,) [paper code]. For a fixed Phi the best LM in the class solves, per
context, the convex problem  min_theta l_s(theta) = -theta . Phi p*_s + logsumexp(Phi^T theta)  (= KL(p*_s ||
p_theta) + H(p*_s)); its optimum theta* matches moments: Phi p_theta* = Phi p*_s [derived: the gradient is
Phi (p_theta - p*_s)]. Hence, for every theta,
    l_s(theta) - l_s(theta*) = KL(p_theta* || p_theta)                                      [derived]
and with v = Phi^T lambda (a task natural w.r.t. Phi), Pinsker gives (v . (p_theta - p*_s))^2 <= 2 B^2 (l_s(theta) -
l_s(theta*)) (the Hoeffding step of docs/theory/language.md), whence the softmax-LM bound tau + sqrt(2 B^2 eps_Phi / gamma) for the
probe lambda on Phi p_f, with eps_Phi = E_s [l_s(f(s)) - l_s(theta*(s))] [recon statement; derived constants].

Quad [paper code]: l_quad(f, Phi) = E_s[-f(s) . Phi p*_s + 1/2 ||Phi^T f(s)||^2]. For fixed Phi, f* = (Phi Phi^T)^-1
Phi p*_s and l_quad = -1/2 tr(P_Phi Omega*), P_Phi the projector on Phi's row space, Omega* = E_s[p*_s p*_s^T]; so
the optimal Phi spans the top-d eigenvectors of Omega* [derived]. With v = Phi^T lambda the probe v . Phi^T f incurs
|v . (Phi^T f - p*_s)| <= ||v||_2 sqrt(2 (l_quad,s(f) - inf l_quad,s)), whence tau + sqrt(2 ||v||_2^2 eps_quad / gamma)
[derived].

Expectations follow ``theory.language.mean_se``: exact with weights, Monte-Carlo mean and SE without. The theorems
these functions feed are declared in ``theory.language.THEOREMS`` (they share its ``bound``); import this module
directly (``from theory import language_softmax``): ``theory.language`` does not re-export it. Derivations:
``docs/theory/language.md``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import subspace_angles

from theory.language import _rows, bound, kl, mean_se

_NEWTON_ITERS = 200
_ARMIJO = 1e-4
# Near the optimum the true decrease is below float rounding of l_s (large when theta is large): accept it there.
_ROUND = 1e-12


def softmax(logits) -> np.ndarray:
    """Row-wise softmax of (n, V) logits, stable."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _phi(Phi, V: int | None = None) -> np.ndarray:
    F = np.asarray(Phi, dtype=np.float64)
    if F.ndim != 2 or (V is not None and F.shape[1] != V):
        raise ValueError(f"Phi: must have shape (d, V={V}) (got {F.shape})")
    return F


def _objective(Phi, theta, target):
    """l_s(theta) = -theta . Phi p* + logsumexp(Phi^T theta), per row; target = Phi p* (n, d)."""
    z = theta @ Phi
    m = z.max(axis=1)
    return -np.sum(theta * target, axis=1) + m + np.log(np.exp(z - m[:, None]).sum(axis=1))


def best_logits(Phi, p_star, tol: float = 1e-11, max_iter: int = _NEWTON_ITERS) -> np.ndarray:
    """theta* (n, d) = argmin_theta KL(p*_s || softmax(Phi^T theta)) per context: batched damped Newton.

    The Hessian Phi (diag p - p p^T) Phi^T is singular along theta with Phi^T theta constant (softmax ignores a
    shift); the step uses a 1e-12 ridge there, so theta* is unique up to that direction (p_theta* is unique).
    Starts at the least-squares fit of Phi^T theta to log p*; stops when every ||Phi (p_theta - p*)||_inf < tol.
    When Phi p*_s is on the boundary of the moment polytope (p*_s with zeros) the infimum is at infinity and the
    iterate walks towards it until max_iter.
    """
    P = _rows("p_star", p_star)
    F = _phi(Phi, P.shape[1])
    target = P @ F.T
    logp = np.log(np.maximum(P, 1e-300))
    theta = np.linalg.lstsq(F.T, (logp - logp.mean(axis=1, keepdims=True)).T, rcond=None)[0].T
    for _ in range(max_iter):
        p = softmax(theta @ F)
        mean = p @ F.T
        g = mean - target
        if np.max(np.abs(g)) < tol:
            break
        H = (p[:, None, :] * F[None]) @ F.T - mean[:, :, None] * mean[:, None, :]
        step = -_psd_solve(H, g)
        f0 = _objective(F, theta, target)
        slope = np.sum(g * step, axis=1)
        t = np.ones(theta.shape[0])
        for _ in range(40):
            f1 = _objective(F, theta + t[:, None] * step, target)
            ok = f1 <= f0 + _ARMIJO * t * slope + _ROUND * (1 + np.abs(f0))
            if ok.all():
                break
            t = np.where(ok, t, 0.5 * t)
        theta = theta + t[:, None] * step
    return theta


def _psd_solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Batched (H + r I)^-1 g for PSD H (n, d, d), r = 1e-12 trace(H) / d: a Newton step that ignores H's null
    direction (g has no component there); pseudo-inverse by eigh where the ridged system is still singular."""
    d = H.shape[-1]
    r = 1e-12 * np.trace(H, axis1=1, axis2=2) / d + 1e-300
    try:
        return np.linalg.solve(H + r[:, None, None] * np.eye(d), g[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        lam, U = np.linalg.eigh(H)
        keep = lam > 1e-13 * np.maximum(lam[:, -1:], 1e-300)
        inv = np.where(keep, 1.0 / np.where(keep, lam, 1.0), 0.0)
        return (U @ (inv * (U.transpose(0, 2, 1) @ g[:, :, None])[:, :, 0])[:, :, None])[:, :, 0]


def best_kl(Phi, p_star) -> np.ndarray:
    """KL(p*_s || p_theta*(s)) per context (n,): the in-class optimum's excess for this Phi."""
    P = _rows("p_star", p_star)
    return kl(P, softmax(best_logits(Phi, P) @ _phi(Phi)))


def epsilon_phi(Phi, p_star, p, weights=None) -> tuple[float, float]:
    """(eps_Phi, se) = E_s[KL(p*_s || p_s) - KL(p*_s || softmax(Phi^T theta*(s)))]: excess over the best LM with Phi.

    >= 0 when every p_s is in the class softmax(Phi^T .); the softmax-LM theorem's epsilon.
    """
    P, Q = _rows("p_star", p_star), _rows("p", p)
    return mean_se(kl(P, Q) - best_kl(Phi, P), weights)


def conditional_mean(Phi, p) -> np.ndarray:
    """Phi p_s for each row: the conditional-mean features, shape (n, d) [paper code: softmax(f Phi^T) Phi]."""
    Q = _rows("p", p)
    return Q @ _phi(Phi, Q.shape[1]).T


def phi_coords(Phi, v) -> tuple[np.ndarray, float, float]:
    """(lambda (d,), c, residual): least squares v ~ Phi^T lambda + c 1; residual = ||v - Phi^T lambda - c 1||_2.

    A task is natural w.r.t. Phi when the residual is 0 (the shift c 1 is free: 1^T p = 1 and the probe has a bias).
    """
    F = _phi(Phi)
    v = np.asarray(v, dtype=np.float64)
    A = np.concatenate([F.T, np.ones((F.shape[1], 1))], axis=1)
    x = np.linalg.lstsq(A, v, rcond=None)[0]
    return x[:-1].copy(), float(x[-1]), float(np.linalg.norm(A @ x - v))


def softmax_bound(tau, B, eps_phi, gamma):
    """tau + sqrt(2 B^2 eps_Phi / gamma): softmax-LM theorem for the probe on Phi p_f, task natural w.r.t. Phi.

    [recon statement; derived constants]; B = half-range of v = Phi^T lambda (+ c 1); natural logs.
    """
    return bound(tau, B, eps_phi, gamma)


# --------------------------------------------------------------------------- Quad

def omega(p_star, weights=None) -> np.ndarray:
    """Omega* = E_s[p*_s p*_s^T], shape (V, V) (the substitutability matrix); an MC mean without weights."""
    P = _rows("p_star", p_star)
    w = np.full(P.shape[0], 1.0 / P.shape[0]) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    return (P * w[:, None]).T @ P


def quad_optimal_phi(Omega, d: int) -> np.ndarray:
    """Rows (d, V): orthonormal top-d eigenvectors of Omega (descending eigenvalue); any Phi with this row space
    minimises l_quad [derived]."""
    Om = np.asarray(Omega, dtype=np.float64)
    if not 1 <= d <= Om.shape[0]:
        raise ValueError(f"d: must be in [1, {Om.shape[0]}] (got {d})")
    _, U = np.linalg.eigh(0.5 * (Om + Om.T))
    return U[:, ::-1][:, :d].T.copy()


def quad_loss(f, Phi, p_star, weights=None) -> float:
    """E_s[-f(s) . Phi p*_s + 1/2 ||Phi^T f(s)||^2] [paper code], f (n, d), Phi (d, V), p_star (n, V)."""
    P = _rows("p_star", p_star)
    F = _phi(Phi, P.shape[1])
    f = np.asarray(f, dtype=np.float64)
    vals = -np.sum(f * (P @ F.T), axis=1) + 0.5 * np.sum((f @ F) ** 2, axis=1)
    return mean_se(vals, weights)[0]


def quad_optimal_f(Phi, p_star) -> np.ndarray:
    """f*(s) = (Phi Phi^T)^-1 Phi p*_s, shape (n, d): the best f for a fixed Phi [derived]."""
    P = _rows("p_star", p_star)
    F = _phi(Phi, P.shape[1])
    return np.linalg.solve(F @ F.T, F @ P.T).T


def quad_min_loss(Omega, d: int) -> float:
    """min over (f, Phi) of l_quad = -1/2 (sum of the top-d eigenvalues of Omega) [derived]."""
    lam = np.linalg.eigvalsh(0.5 * (np.asarray(Omega, np.float64) + np.asarray(Omega, np.float64).T))
    return -0.5 * float(np.sum(lam[::-1][:d]))


def epsilon_quad(f, Phi, p_star, weights=None) -> tuple[float, float]:
    """(eps_quad, se) = E_s[l_quad,s(f) - inf_g l_quad,s(g)] = E_s 1/2 ||Phi^T f(s) - P_Phi p*_s||^2 for this Phi."""
    P = _rows("p_star", p_star)
    F = _phi(Phi, P.shape[1])
    f = np.asarray(f, dtype=np.float64)
    proj = quad_optimal_f(F, P) @ F
    return mean_se(0.5 * np.sum((f @ F - proj) ** 2, axis=1), weights)


def quad_bound(tau, v_norm2, eps_quad, gamma):
    """tau + sqrt(2 ||v||_2^2 eps_quad / gamma) for the probe v . Phi^T f(s), v = Phi^T lambda exactly [derived].

    v_norm2 is ||v||_2 (not the half-range: Phi^T f is not a distribution, so the shift by c 1 is not free).
    """
    return bound(tau, v_norm2, eps_quad, gamma)


def principal_angles(Phi_a, Phi_b) -> np.ndarray:
    """Principal angles (radians, ascending) between the row spaces of Phi_a (d, V) and Phi_b (d', V)."""
    A, Bm = _phi(Phi_a), _phi(Phi_b)
    return np.sort(subspace_angles(A.T, Bm.T))


def affine_r2(f, y, weights=None) -> float:
    """R^2 of the least-squares fit y ~ A f + c (f (n, k), y (n, m)), pooled over y's columns [recon check].

    docs/theory/language.md: a probe on f(s) inherits the softmax bound when Phi p_f is close to affine in f; R^2 = 1 is exact.
    """
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(f.shape[0], -1)
    n = f.shape[0]
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
    X = np.concatenate([f, np.ones((n, 1))], axis=1)
    sw = np.sqrt(w)[:, None]
    coef = np.linalg.lstsq(X * sw, y * sw, rcond=None)[0]
    resid = np.sum(w[:, None] * (y - X @ coef) ** 2)
    total = np.sum(w[:, None] * (y - np.sum(w[:, None] * y, axis=0)) ** 2)
    return float(1.0 - resid / total) if total > 0 else 1.0
