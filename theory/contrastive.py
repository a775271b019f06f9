"""Theory of contrastive learning with latent classes (Arora et al., ICML 2019, arXiv 1902.09229).

Notation (paper Sec. 2): classes with law rho; c+ ~ rho, x, x+ ~ D_{c+};
k negatives with classes c-_i ~ rho i.i.d., x-_i ~ D_{c-_i}.  The loss takes
the margin vector v_i = f(x)^T (f(x+) - f(x-_i)), i = 1..k.

What is the paper's and what is derived here (only the abstract and the
opening of the paper's text could be retrieved; the statements and their
numbers follow secondary restatements, and each step used here was re-derived
and is checked numerically).  docs/theory/contrastive.md states every bound as
the suite checks it, with its derivation and status:

* losses, tau, the decomposition L_un = (1-tau) L_un^!= + tau L_un^=, Lemma 4.3,
  Theorem 4.1's shape, Prop. 6.2 (block loss): the paper's (k = 1), numbers
  reconstructed.
* k > 1: tau_k = P(c+ in {c-_i}) is the paper's collision quantity.  The
  mean-classifier bound for k > 1 is DERIVED here by the paper's own Jensen
  argument (the paper's Thm 6.1/B.1 uses another task law and constants that
  could not be confirmed); it reduces to Lemma 4.3 at k = 1.
* Gen_M: the paper states only O(R Rad_S(F)/M + R^2 sqrt(log(1/delta)/M)); the
  explicit constants here are derived (Mohri et al. Thm 3.3, two-sided, +
  Maurer's vector contraction), see ``gen_term``.

``THEOREMS`` (end of this module) declares the five bounds ``analysis.contrastive.bound_checks`` checks as
``theory.theorems.Theorem``: each recomputes a bounds.csv row's ``bound_value`` from the row's term columns.

One formula per theorem: the vectorised functions the ``THEOREMS`` register (``bound_from_terms``,
``gen_bound_from_terms``, ``block_bound_from_terms``) compute every bound; the scalar ``mean_classifier_bound`` and
``block_bound`` only check their arguments and call them. The exact and Monte-Carlo estimators of the terms are in
``theory.contrastive_terms``.

Everything is float64.  The losses are torch functions (used for training).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import integrate
from scipy.stats import binom

from theory.theorems import Assumption, Theorem, Trivial

_LN2 = math.log(2.0)


# --------------------------------------------------------------------------- losses
# Normalisation: base-2 logarithm for the logistic loss, so that ell(0) = 1 at
# k = 1 for both losses (Lemma 4.3 subtracts exactly tau, which needs ell(0) = 1).
# With k negatives ell(0) = log2(k+1) (logistic) and 1 (hinge).

def logistic_loss(v: torch.Tensor) -> torch.Tensor:
    """log2(1 + sum_i exp(-v_i)) over the last axis; v (..., k) -> (...).

    Computed as logsumexp([0, -v]) / ln 2, which is finite for any finite v in
    float32 and keeps v's dtype and autograd graph.
    """
    v = torch.as_tensor(v)
    if v.dim() < 1 or v.shape[-1] < 1:
        raise ValueError(f"v: must have a last axis of size >= 1 (got shape {tuple(v.shape)})")
    z = torch.cat([torch.zeros_like(v[..., :1]), -v], dim=-1)
    return torch.logsumexp(z, dim=-1) / _LN2


def hinge_loss(v: torch.Tensor) -> torch.Tensor:
    """max(0, 1 + max_i(-v_i)) over the last axis; v (..., k) -> (...)."""
    v = torch.as_tensor(v)
    if v.dim() < 1 or v.shape[-1] < 1:
        raise ValueError(f"v: must have a last axis of size >= 1 (got shape {tuple(v.shape)})")
    return torch.clamp(1.0 + torch.amax(-v, dim=-1), min=0.0)


LOSSES = {"logistic": logistic_loss, "hinge": hinge_loss}


def _check_loss(loss: str) -> None:
    if loss not in LOSSES:
        raise ValueError(f"loss: must be one of {sorted(LOSSES)} (got {loss!r})")


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k: must be an integer >= 1 (got {k!r})")
    return int(k)


def loss_at_zero(loss: str, k: int = 1) -> float:
    """ell(0) for a zero margin vector of length k: log2(k+1) (logistic), 1 (hinge)."""
    _check_loss(loss)
    k = _check_k(k)
    return math.log2(k + 1) if loss == "logistic" else 1.0


# --------------------------------------------------------------------------- class-law quantities

def _check_rho(rho) -> np.ndarray:
    r = np.asarray(rho, dtype=np.float64)
    if r.ndim != 1 or r.size < 1:
        raise ValueError(f"rho: must be a 1-D array of class probabilities (got shape {r.shape})")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ValueError("rho: must be finite and >= 0")
    if abs(float(r.sum()) - 1.0) > 1e-9:
        raise ValueError(f"rho: must sum to 1 (got {float(r.sum())!r})")
    return r / r.sum()


def coverage_negatives(rho) -> float:
    """Expected number of i.i.d. draws from rho until every class with mass has been drawn (the coupon
    collector; Ash, Goel, Krishnamurthy & Misra 2022 read the number of negatives the bound needs this way).

    Exact: E[T] = int_0^inf (1 - prod_c (1 - exp(-rho_c t))) dt (Poissonisation: the Poisson-time cover time
    has the same mean as the draw count). For uniform rho over C classes this is C * H_C ~ C log C.
    [derived] A reading aid for the negatives figure, not a bound.
    """
    r = _check_rho(rho)
    r = r[r > 0]

    def uncovered(t):
        return -np.expm1(np.sum(np.log1p(-np.exp(-r * t))))

    hi = float(np.log(r.size * 1e12) / r.min())  # beyond hi the integrand is below 1e-12
    value, _ = integrate.quad(uncovered, 0.0, hi, limit=400, epsabs=1e-10, epsrel=1e-10)
    return float(value)


def tau(rho) -> float:
    """Collision probability tau = P_{c,c'~rho^2}(c = c') = sum_c rho_c^2 (paper Sec. 4); rho (C,)."""
    r = _check_rho(rho)
    return float(np.sum(r ** 2))


def tau_k(rho, k: int) -> float:
    """P(c+ in {c-_1..c-_k}) for c+, c-_i ~ rho i.i.d. = sum_c rho_c (1 - (1 - rho_c)^k); rho (C,).

    The paper's k-negative collision probability (Sec. 6.1); tau_k(rho, 1) = tau(rho).
    """
    r = _check_rho(rho)
    k = _check_k(k)
    # -expm1(k log1p(-r)) = 1 - (1-r)^k without cancellation for small r.
    with np.errstate(divide="ignore"):
        hit = -np.expm1(k * np.log1p(-r))
    return float(np.sum(r * hit))


def _log_esp(r: np.ndarray, K: int) -> np.ndarray:
    """log e_j(r) for j = 0..K, the elementary symmetric polynomials, in log space."""
    with np.errstate(divide="ignore"):
        lr = np.log(r)
    le = np.full(K + 1, -np.inf)
    le[0] = 0.0
    for x in lr:
        le[1:] = np.logaddexp(le[1:], x + le[:-1])
    return le


def p_distinct(rho, k: int) -> float:
    """P(c_0, ..., c_k all distinct) for k+1 i.i.d. draws from rho = (k+1)! e_{k+1}(rho).

    This is the normaliser of the paper's (k+1)-way task law (Def. 2.2); at k = 1 it is 1 - tau.
    """
    r = _check_rho(rho)
    k = _check_k(k)
    return float(math.exp(math.lgamma(k + 2) + _log_esp(r, k + 1)[k + 1]))


def collision_floor(rho, k: int, loss: str) -> float:
    """E[ ell(0_m) 1{m >= 1} ], m = #{i : c-_i = c+}: the part of L_un that no encoder can remove.

    ell(0_m) = 1 (hinge) or log2(1+m) (logistic) lower-bounds ell(v) whenever m
    entries of v are 0.  Given c+ = c, m ~ Binomial(k, rho_c).  At k = 1 this is
    tau * ell(0) = tau, the term Lemma 4.3 subtracts.  Exact (finite sums).
    """
    r = _check_rho(rho)
    k = _check_k(k)
    _check_loss(loss)
    if loss == "hinge":
        return tau_k(r, k)
    m = np.arange(1, k + 1)
    pm = binom.pmf(m[None, :], k, r[:, None])  # (C, k)
    return float(np.sum(r[:, None] * pm * np.log2(1.0 + m)[None, :]))


def collision_terms(rho, k: int, loss: str) -> dict:
    """dict(tau=tau_k, p_distinct, collision_floor): every class-law quantity the bounds use."""
    return {"tau": tau_k(rho, k), "p_distinct": p_distinct(rho, k),
            "collision_floor": collision_floor(rho, k, loss)}


# --------------------------------------------------------------------------- bounds

def mean_classifier_bound(L_un: float, tau: float, loss: str, k: int = 1, rho=None) -> float:
    """Upper bound on L_sup^mu(f) from L_un(f) alone (population level).

    k = 1: Lemma 4.3 of Arora et al. (2019):  L_sup^mu <= (L_un - tau ell(0)) / (1 - tau),
    ell(0) = 1 in the paper's normalisation (base-2 logistic), tau = sum rho^2.
    k > 1: DERIVED by the same Jensen argument (not the paper's Thm 6.1/B.1,
    whose task law and constants could not be confirmed):
        L_sup^mu <= (L_un - collision_floor(rho, k)) / p_distinct(rho, k),
    where L_sup^mu averages over (k+1)-way tasks ~ rho^{k+1} | distinct (Def. 2.2)
    with a uniform label.  Proof: Jensen over x+ and every x-_i; on the event
    "all k+1 classes distinct" (probability p_distinct) the result is exactly
    L_sup^mu; on a collision with m >= 1 negatives ell >= ell(0_m); else ell >= 0.
    For k > 1, rho (C,) is required and tau must equal tau_k(rho, k).
    Checks its arguments, then computes the registered ``bound_from_terms`` (the one formula of both).
    """
    _check_loss(loss)
    k = _check_k(k)
    if k == 1:
        if not 0.0 <= tau < 1.0:
            raise ValueError(f"tau: must be in [0, 1) (got {tau})")
        return float(bound_from_terms(L_un, tau * loss_at_zero(loss, 1), 1.0 - tau))
    if rho is None:
        raise ValueError("rho: required for k > 1 (the bound needs p_distinct and collision_floor)")
    t = collision_terms(rho, k, loss)
    if abs(t["tau"] - tau) > 1e-9:
        raise ValueError(f"tau: must equal tau_k(rho, k)={t['tau']!r} (got {tau!r})")
    if t["p_distinct"] <= 0:
        raise ValueError(f"k: no (k+1)-way task has positive probability under rho (k={k})")
    return float(bound_from_terms(L_un, t["collision_floor"], t["p_distinct"]))


def block_bound(L_un_block: float, tau: float, loss: str) -> float:
    """Prop. 6.2 of Arora et al. (2019), block (CURL) loss, one negative block (k = 1):

        L_sup(f) <= L_sup^mu(f) <= (L_un^block(f) - tau) / (1 - tau)  (<= the same with L_un).

    tau = sum rho^2; ell(0) = 1 normalisation (base-2 logistic). Checks its arguments, then computes the
    registered ``block_bound_from_terms``.
    """
    _check_loss(loss)
    if not 0.0 <= tau < 1.0:
        raise ValueError(f"tau: must be in [0, 1) (got {tau})")
    return float(block_bound_from_terms(L_un_block, tau))


def rademacher_linear(X, weight_frobenius_bound: float, out_dim: int, out_bias_norm: float = 0.0) -> float:
    """Upper bound on Rad_S(F) for F = {x -> W x (+ b) : ||W||_F <= B, ||b|| <= B_b}, W: out_dim x D.

    X (N, D): every point of S stacked (for k negatives the (k+2) M points
    x_j, x+_j, x-_ji).  Convention of the paper (Sec. 4): Rad_S(F) =
    E_sigma sup_f <sigma, f|_S>, sigma uniform on {+-1}^{N out_dim}, NOT divided by N.
    Bound: sup_W <W, sum_j sigma_j x_j^T> = B ||sum_j sigma_j x_j^T||_F and Jensen give
        Rad_S(F) <= B sqrt(out_dim * sum_j ||x_j||^2) + B_b sqrt(N out_dim)
    (the vector-valued form of Kakade, Sridharan & Tewari 2008's linear-class bound).
    """
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim != 2:
        raise ValueError(f"X: must have shape (N, D) (got {Xa.shape})")
    if weight_frobenius_bound < 0 or out_bias_norm < 0:
        raise ValueError("weight_frobenius_bound: norm bounds must be >= 0")
    if out_dim < 1:
        raise ValueError(f"out_dim: must be >= 1 (got {out_dim})")
    return rademacher_linear_sums(sum_of_squares(Xa), Xa.shape[0], weight_frobenius_bound, out_dim, out_bias_norm)


def sum_of_squares(X) -> float:
    """sum_j ||x_j||^2 over the rows of X (N, D), float64: the only thing the Rademacher bounds read of S."""
    return float(np.sum(np.asarray(X, dtype=np.float64) ** 2))


def rademacher_linear_sums(sum_sq: float, n_points: int, weight_frobenius_bound: float, out_dim: int,
                           out_bias_norm: float = 0.0) -> float:
    """``rademacher_linear`` from S's sum of squared norms and size (the sample's part is fixed once S is)."""
    if weight_frobenius_bound < 0 or out_bias_norm < 0:
        raise ValueError("weight_frobenius_bound: norm bounds must be >= 0")
    if out_dim < 1:
        raise ValueError(f"out_dim: must be >= 1 (got {out_dim})")
    return weight_frobenius_bound * math.sqrt(out_dim * sum_sq) + out_bias_norm * math.sqrt(n_points * out_dim)


def rademacher_mlp(X, hidden_frobenius_bound: float, out_frobenius_bound: float, out_dim: int,
                   out_bias_norm: float = 0.0) -> float:
    """Upper bound on Rad_S(F), F = {x -> W2 relu(W1 x) (+ b)}, ||W1||_F <= B1, ||W2||_F <= B2, ||b|| <= B_b.

    X (N, D) stacked points of S; same unnormalised convention as ``rademacher_linear``.
    A hidden bias is covered by appending a column of ones to X (and counting it in B1).
    Bound:  Rad_S(F) <= 2 out_dim B1 B2 sqrt(sum_j ||x_j||^2) + B_b sqrt(N out_dim).
    Derivation (the one-hidden-layer case of the peeling argument of Neyshabur,
    Tomioka & Srebro 2015, factor 2 per ReLU layer): sup over W2 gives
    B2 ||S(W1)||_F with S_tr = sum_j sigma_jt relu(w_r^T x_j); positive
    homogeneity of relu gives ||S||_F <= B1 sup_{||u||<=1} ||Y(u)||_2,
    Y_t(u) = sum_j sigma_jt relu(u^T x_j); ||Y||_2 <= sum_t |Y_t|; per t,
    E sup |.| <= 2 E sup (.) (the class contains 0) and Talagrand's contraction
    (relu is 1-Lipschitz) leave E ||sum_j sigma_jt x_j|| <= sqrt(sum_j ||x_j||^2).
    """
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim != 2:
        raise ValueError(f"X: must have shape (N, D) (got {Xa.shape})")
    if hidden_frobenius_bound < 0 or out_frobenius_bound < 0 or out_bias_norm < 0:
        raise ValueError("hidden_frobenius_bound: norm bounds must be >= 0")
    if out_dim < 1:
        raise ValueError(f"out_dim: must be >= 1 (got {out_dim})")
    return rademacher_mlp_sums(sum_of_squares(Xa), Xa.shape[0], hidden_frobenius_bound, out_frobenius_bound,
                               out_dim, out_bias_norm)


def rademacher_mlp_sums(sum_sq: float, n_points: int, hidden_frobenius_bound: float, out_frobenius_bound: float,
                        out_dim: int, out_bias_norm: float = 0.0) -> float:
    """``rademacher_mlp`` from S's sum of squared norms (the constant input 1 included) and size."""
    if hidden_frobenius_bound < 0 or out_frobenius_bound < 0 or out_bias_norm < 0:
        raise ValueError("hidden_frobenius_bound: norm bounds must be >= 0")
    if out_dim < 1:
        raise ValueError(f"out_dim: must be >= 1 (got {out_dim})")
    return (2.0 * out_dim * hidden_frobenius_bound * out_frobenius_bound * math.sqrt(sum_sq)
            + out_bias_norm * math.sqrt(n_points * out_dim))


def loss_lipschitz(R: float, loss: str) -> float:
    """Lipschitz constant (Euclidean) of (f(x), f(x+), f(x-_1..k)) -> ell(margins) on ||f|| <= R.

    |dv_i| <= 2R|df(x)| + R|df(x+)| + R|df(x-_i)|, so ||dv||_inf <= sqrt(6) R ||du||_2;
    ell is eta-Lipschitz for ||.||_inf with eta = 1 (hinge), 1/ln 2 (base-2 logistic:
    its gradient has l1 norm <= 1/ln 2).  Constant sqrt(6) R eta, free of k.
    """
    _check_loss(loss)
    return math.sqrt(6.0) * R * (1.0 if loss == "hinge" else 1.0 / _LN2)


def loss_range(R: float, k: int, loss: str) -> float:
    """Upper bound B on ell(margins) when ||f|| <= R (|v_i| <= 2R^2): 1 + 2R^2 (hinge),
    log2(1 + k e^{2R^2}) (logistic)."""
    _check_loss(loss)
    k = _check_k(k)
    if loss == "hinge":
        return 1.0 + 2.0 * R * R
    t = 2.0 * R * R
    return (t + math.log(k + math.exp(-t))) / _LN2


def gen_term(rad: float, R: float, k: int, M: int, delta: float, loss: str) -> float:
    """Gen_M of Theorem 4.1 (Arora et al. 2019), with explicit constants DERIVED here.

    The paper gives only Gen_M = O(R Rad_S(F)/M + R^2 sqrt(log(1/delta)/M))
    (k negatives: R sqrt(k) Rad_S(F)/M).  Here, with probability >= 1 - delta
    over M i.i.d. tuples, simultaneously for all f in F (two-sided uniform
    convergence, delta/2 per side, Mohri, Rostamizadeh & Talwalkar Thm 3.3 with
    the empirical Rademacher complexity; Maurer 2016's vector contraction with
    the loss's Lipschitz constant L = ``loss_lipschitz``):
        |L_un(f) - L^_un(f)| <= Gen_M / 2,
        Gen_M = 4 sqrt(2) L Rad_S(F) / M + 6 B sqrt(log(4/delta) / (2M)),
    B = ``loss_range``, so that L_un(f^) <= L_un(f) + Gen_M for the empirical
    minimiser f^ and every f.  rad = Rad_S(F) in the paper's unnormalised
    convention over the (k+2) M points of S (``rademacher_linear`` / ``_mlp``);
    R bounds ||f(x)|| on the support of the data.
    """
    _check_loss(loss)
    k = _check_k(k)
    if not (isinstance(M, (int, np.integer)) and M >= 1):
        raise ValueError(f"M: must be an integer >= 1 (got {M!r})")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta: must be in (0, 1) (got {delta})")
    if rad < 0 or R < 0:
        raise ValueError("rad: rad and R must be >= 0")
    L = loss_lipschitz(R, loss)
    B = loss_range(R, k, loss)
    return 4.0 * math.sqrt(2.0) * L * rad / M + 6.0 * B * math.sqrt(math.log(4.0 / delta) / (2.0 * M))


def support_radius(support) -> float:
    """max ||x|| over a finite support (C, m, D): the X with ||f(x)|| <= ||W||_F X for every x of the data."""
    s = np.asarray(support, dtype=np.float64)
    return float(np.sqrt(np.max(np.sum(s.reshape(-1, s.shape[-1]) ** 2, axis=1))))


def gen_term_ball(radius: float, support_norm: float, sum_sq: float, out_dim: int, M: int, delta: float,
                  k: int = 1, loss: str = "hinge") -> float:
    """Gen_M of Theorem 4.1 for the Frobenius ball F_R = {x -> W x : ||W||_F <= R}, fixed before training. DERIVED.

    Every constant is the ball's, not a trained checkpoint's (docs/theory/contrastive.md, "Theorem 4.1 on a
    norm ball"): Rad_S(F_R) <= R sqrt(out_dim * sum_sq) (``rademacher_linear``: the sup over the ball is
    R ||sum_j sigma_j x_j^T||_F, then Jensen), with sum_sq = sum_j ||x_j||^2 over the (k+2) M points of S;
    ||f(x)|| <= R X on the support (X = ``support_radius``), so the loss is sqrt(6) R X eta-Lipschitz
    (``loss_lipschitz``) and bounded by ``loss_range``(R X). Then ``gen_term``.
    """
    if radius < 0 or support_norm < 0 or sum_sq < 0:
        raise ValueError("radius: radius, support_norm and sum_sq must be >= 0")
    if out_dim < 1:
        raise ValueError(f"out_dim: must be >= 1 (got {out_dim})")
    rad = radius * math.sqrt(out_dim * sum_sq)
    return gen_term(rad, radius * support_norm, k, M, delta, loss)


def distinct_bound_from_terms(L_un, collision_floor, tau_k):
    """The de-duplicated k-negative bound, vectorised: (L_un - collision_floor) / (1 - tau_k).

    Bounds E[L^mu on {c+} u distinct(c-_1..c-_k), label c+ | c+ not in {c-_i}] (``L_sup_mu_distinct`` of
    ``theory.contrastive_terms``). Derivation (docs/theory/contrastive.md): dropping repeated negatives only
    lowers ell (both losses are monotone in adding a margin entry), then the Jensen step of Lemma 4.3 over the
    kept negatives, one per distinct class.
    """
    return bound_from_terms(L_un, collision_floor, 1 - np.asarray(tau_k, dtype=np.float64))


def bound_from_terms(L_un, collision_floor, p_distinct):
    """The mean-classifier bound from its three terms, vectorised (numpy arrays or floats).

    (L_un - collision_floor) / p_distinct: with collision_floor = tau and p_distinct = 1 - tau (k = 1) this is
    Lemma 4.3; with the k-negative terms of ``collision_terms`` it is the derived k-negative form of
    ``mean_classifier_bound``; with L_un^block in place of L_un (k = 1) it is Prop. 6.2
    (``block_bound_from_terms``). Stored rows carry the
    three terms, so anyone can recompute a bound from a row of bounds.csv with this one line.
    """
    L_un, floor, p = (np.asarray(a, dtype=np.float64) for a in (L_un, collision_floor, p_distinct))
    if np.any(p <= 0):
        raise ValueError("p_distinct: must be > 0")
    return (L_un - floor) / p


# --------------------------------------------------------------------------- theorems (rows of bounds.csv)

PAPER = "Arora, Khandeparkar, Khodak, Plevrakis & Saunshi, ICML 2019 (arXiv 1902.09229)"
DOC = "docs/theory/contrastive.md"


def gen_bound_from_terms(L_hat_un, Gen_M, collision_floor, p_distinct):
    """The mean-classifier bound with Gen_M, from its four terms, vectorised.

    (L^_un(f^) + Gen_M / 2 - collision_floor) / p_distinct: with probability >= 1 - delta the two-sided uniform
    convergence of ``gen_term`` gives L_un(f^) <= L^_un(f^) + Gen_M / 2 for the trained f^, and the population
    bound (``bound_from_terms``) turns that into a bound on L_sup^mu(f^).
    """
    L_hat_un, Gen_M = (np.asarray(a, dtype=np.float64) for a in (L_hat_un, Gen_M))
    return bound_from_terms(L_hat_un + Gen_M / 2, collision_floor, p_distinct)


def block_bound_from_terms(L_block, tau):
    """Prop. 6.2 (``block_bound``) from its two terms, vectorised: (L_un^block - tau) / (1 - tau)."""
    tau = np.asarray(tau, dtype=np.float64)
    return bound_from_terms(L_block, tau, 1 - tau)


def trivial_from_terms(loss, k):
    """ell(0_k) = ``loss_at_zero(loss, k)`` per row: the loss L_sup^mu of the zero encoder (every margin 0)."""
    return np.array([loss_at_zero(str(name), int(kk)) for name, kk in zip(np.atleast_1d(loss), np.atleast_1d(k))],
                    dtype=np.float64)


def _ell_zero(loss, k) -> np.ndarray:
    """ell(0_k) per row, NaN where the loss is not one of ``LOSSES`` or k is not an integer >= 1."""
    loss, k = np.atleast_1d(loss), np.atleast_1d(np.asarray(k, dtype=np.float64))
    out = np.full(k.shape, np.nan)
    for i, (name, kk) in enumerate(zip(loss, k)):
        if str(name) in LOSSES and np.isfinite(kk) and kk >= 1 and kk == math.floor(kk):
            out[i] = loss_at_zero(str(name), int(kk))
    return out


def _one_negative(k):
    return k, k == 1


def _task_exists(p_distinct):
    return p_distinct, p_distinct > 0


def _two_way_task(tau):
    return tau, tau < 1


def _unit_loss(loss, k):
    value = _ell_zero(loss, k)
    return value, value == 1.0


def _known_floor(loss, k):
    value = _ell_zero(loss, k)
    return value, np.isfinite(value)


def _tau_terms(tau, collision_floor, p_distinct):
    gap = np.maximum(np.abs(collision_floor - tau), np.abs(p_distinct - (1 - tau)))
    return gap, gap <= 1e-9


def _confidence(delta):
    return delta, (delta > 0) & (delta < 1)


def _no_sure_collision(tau_k):
    return tau_k, tau_k < 1


NO_SURE_COLLISION = Assumption("tau_k", r"some tuple has no negative from $c^+$: $\tau_k = P(c^+ \in \{c^-_i\}) < 1$",
                               ("tau_k",), _no_sure_collision)
ONE_NEGATIVE = Assumption("k", "one negative per tuple: $k = 1$ (the statement's setting)", ("k",), _one_negative)
TASK_EXISTS = Assumption(
    "p_distinct", r"a $(k+1)$-way task exists: $p_{distinct} = P(c^+, c^-_1, \ldots, c^-_k \text{ all distinct}) > 0$",
    ("p_distinct",),
    _task_exists)
TWO_WAY_TASK = Assumption("tau", r"a 2-way task exists: $\tau = \sum_c \rho(c)^2 < 1$ (two classes with mass)",
                          ("tau",),
                          _two_way_task)
UNIT_LOSS = Assumption(
    "ell(0)", r"the loss is normalised so that $\ell(0) = 1$ (hinge, or logistic in base 2): the collision part of "
    r"$L_{un}$ is then at least $\tau \ell(0) = \tau$, the term the bound subtracts", ("loss", "k"), _unit_loss)
KNOWN_FLOOR = Assumption(
    "ell(0_k)", r"the loss is hinge or base-2 logistic, the two whose zero-margin floor $\ell(0_m)$ (1, or "
    r"$\log_2(1 + m)$) collision_floor is computed for", ("loss", "k"), _known_floor)
TAU_TERMS = Assumption(
    "one-negative term gap", r"the row's terms are the one-negative ones: collision_floor $= \tau$ and p_distinct "
    r"$= 1 - \tau$ ($\tau = \sum_c \rho(c)^2$); the number is the larger deviation, met at $\le 10^{-9}$",
    ("tau", "collision_floor", "p_distinct"),
    _tau_terms)
CONFIDENCE = Assumption("delta", r"a confidence level $0 < \delta < 1$: $Gen_M$ holds with probability "
                        r"$\ge 1 - \delta$",
                        ("delta",), _confidence)

_POP_TERMS = ("L_un", "collision_floor", "p_distinct")
_GEN_TERMS = ("L_hat_un", "Gen_M", "collision_floor", "p_distinct")
_TRIVIAL = Trivial("ell(0_k) = loss_at_zero(loss, k): L_sup^mu of the zero encoder, whose margins are all 0 "
                   "(1 at k = 1; log2(k + 1) for the logistic loss with k negatives)",
                   ("loss", "k"), trivial_from_terms)
_MEASURED_2 = (r"$L_{sup}^{\mu}(f)$: the mean classifier's loss (rows $\mu_c = \mathbb{E}_{D_c} f(x)$) on 2-way tasks "
               r"$\{c^+, c^-\} \sim \rho^2$ | distinct with a uniform label; Monte Carlo, with means estimated from a "
               "separate sample")
_MEASURED_K = (r"$L_{sup}^{\mu}(f)$: the mean classifier's loss on $(k+1)$-way tasks $\sim \rho^{k+1}$ | all distinct "
               "with a uniform label; Monte Carlo, with means estimated from a separate sample")
_NUMBERS = ("Statement number and wording follow secondary restatements of the ICML 2019 paper: only its abstract and "
            "introduction could be retrieved, so the number is not confirmed against the text; the inequality itself "
            "is re-derived in the doc and checked on exact discrete models (tests/theory/test_theory_contrastive.py).")
_MU_HAT = ("L_sup^mu is measured with estimated class means, which biases it upward (the loss is convex in mu): the "
           "measurement errs toward a violation.")
_GEN_STANDINS = ("Stand-ins, so the probability statement is not the theorem's literally: the norm class F is the one "
                 "of the checkpoint's own weight norms (chosen after training; a union bound over a grid of classes "
                 "would add a log term), and R, which must bound ||f(x)|| on the data's support, is the largest "
                 "||f(x)|| on the M training tuples. The form bounds the trained f^ through its own L^_un(f^), not the "
                 "theorem's comparison with the best f in F (which would need L_un(f) + Gen_M). Gen_M is far above "
                 "ell(0) for these classes: the rows are expected to be vacuous.")

THEOREMS: tuple[Theorem, ...] = (
    Theorem(
        id="contrastive.lemma_4_3",
        paper=PAPER,
        number="Lemma 4.3",
        statement=r"L_{sup}^{\mu}(f) \le \frac{L_{un}(f) - \tau}{1 - \tau},\quad \tau = \sum_c \rho(c)^2,\ k = 1",
        status="reconstructed",
        terms=_POP_TERMS,
        bound=bound_from_terms,
        trivial=_TRIVIAL,
        assumptions=(ONE_NEGATIVE, TASK_EXISTS, UNIT_LOSS, TAU_TERMS),
        measured=_MEASURED_2,
        doc=f"{DOC}#lemma-43",
        study="bound", figures=("bound", "negatives"),
        notes="Checked as (L_un - collision_floor) / p_distinct with the k = 1 terms collision_floor = tau and "
              "p_distinct = 1 - tau (equal to float rounding; the 'one-negative term gap' assumption checks it). "
              "The task law is rho^2 conditioned on distinct classes with a UNIFORM label on the task (an earlier "
              "reading, label ~ rho restricted to T, makes the lemma false). " + _MU_HAT + " " + _NUMBERS,
    ),
    Theorem(
        id="contrastive.lemma_4_3_k_negatives",
        paper=PAPER,
        number="none: our k-negative form of Lemma 4.3 (the paper's k-negative result, Theorem 6.1 / B.1, is another "
               "statement)",
        statement=r"L_{sup}^{\mu}(f) \le \frac{L_{un}(f) - \mathbb{E}[\ell(0_m)\,1\{m \ge 1\}]}"
                  r"{P(c^+, c^-_1, \dots, c^-_k \text{ distinct})},\quad m = \#\{i : c^-_i = c^+\}",
        status="derived",
        terms=_POP_TERMS,
        bound=bound_from_terms,
        trivial=_TRIVIAL,
        assumptions=(TASK_EXISTS, KNOWN_FLOOR),
        measured=_MEASURED_K,
        doc=f"{DOC}#lemma-43-with-k-negatives-derived",
        study="negatives", figures=("negatives",),
        notes="Derived by the lemma's own Jensen argument over every positive and negative draw; reduces to Lemma 4.3 "
              "at k = 1. Loose in k: the denominator p_distinct falls fast once k approaches the number of classes, "
              "and the floor only counts the collided negatives' zero margins. " + _MU_HAT,
    ),
    Theorem(
        id="contrastive.theorem_4_1",
        paper=PAPER,
        number="Theorem 4.1 (its form, with our explicit Gen_M)",
        statement=r"L_{sup}^{\mu}(\hat f) \le \frac{\hat L_{un}(\hat f) + Gen_M / 2 - \tau}{1 - \tau}"
                  r"\ \text{with probability} \ge 1 - \delta,\quad Gen_M = \frac{4\sqrt{2} L\,Rad_S(F)}{M}"
                  r" + 6 B \sqrt{\frac{\log(4/\delta)}{2M}},\ k = 1",
        status="derived",
        terms=_GEN_TERMS,
        bound=gen_bound_from_terms,
        trivial=_TRIVIAL,
        assumptions=(ONE_NEGATIVE, TASK_EXISTS, UNIT_LOSS, TAU_TERMS, CONFIDENCE),
        measured="L_sup^mu(f^) of the trained encoder f^, as for Lemma 4.3",
        doc=f"{DOC}#theorem-41-with-gen_m",
        study="bound", figures=("bound",),
        notes="The paper gives Gen_M only up to constants, O(R Rad_S(F)/M + R^2 sqrt(log(1/delta)/M)); the constants "
              "here (L = sqrt(6) R eta, B the loss range on ||f|| <= R) are derived in the doc. " + _GEN_STANDINS
              + " " + _NUMBERS,
    ),
    Theorem(
        id="contrastive.theorem_4_1_k_negatives",
        paper=PAPER,
        number="none: Theorem 4.1's form over our k-negative lemma",
        statement=r"L_{sup}^{\mu}(\hat f) \le \frac{\hat L_{un}(\hat f) + Gen_M / 2 - \mathbb{E}[\ell(0_m)\,"
                  r"1\{m \ge 1\}]}{P(c^+, c^-_1, \dots, c^-_k \text{ distinct})}\ \text{with probability} \ge 1 - \delta",
        status="derived",
        terms=_GEN_TERMS,
        bound=gen_bound_from_terms,
        trivial=_TRIVIAL,
        assumptions=(TASK_EXISTS, KNOWN_FLOOR, CONFIDENCE),
        measured="L_sup^mu(f^) of the trained encoder on (k+1)-way tasks, as for the k-negative lemma",
        doc=f"{DOC}#theorem-41-with-k-negatives-derived",
        study="negatives", figures=(),
        notes="Gen_M's Lipschitz constant is free of k (sup norm over margins); its range term B grows like log2(k) "
              "for the logistic loss. " + _GEN_STANDINS,
    ),
    Theorem(
        id="contrastive.lemma_4_3_distinct_negatives",
        paper=PAPER,
        number="none: our de-duplicated k-negative form of Lemma 4.3",
        statement=r"\mathbb{E}[L^{\mu}_{\{c^+\} \cup S}(f; c^+) \mid c^+ \notin \{c^-_i\}] \le "
                  r"\frac{L_{un}(f) - \mathbb{E}[\ell(0_m)\,1\{m \ge 1\}]}{1 - \tau_k},\quad "
                  r"S = \text{the distinct classes of } c^-_1, \dots, c^-_k",
        status="derived",
        terms=("L_un", "collision_floor", "tau_k"),
        bound=distinct_bound_from_terms,
        trivial=Trivial("E[ell(0_J) | no collision], J = |S|: the zero encoder's loss on the tuple's own "
                        "distinct-class task (1 for the hinge, E log2(1 + J) for the base-2 logistic)",
                        ("trivial_distinct",), lambda trivial_distinct: np.asarray(trivial_distinct, dtype=np.float64)),
        assumptions=(KNOWN_FLOOR, NO_SURE_COLLISION),
        measured="E[L^mu on {c+} u S with label c+ | no negative from c+]: the mean classifier's loss on the tuple's "
                 "own distinct classes, one margin f(x)^T (mu_c+ - mu_s) per distinct negative class s; Monte Carlo on "
                 "the no-collision stratum (exact by enumeration on discrete models in the tests)",
        doc=f"{DOC}#lemma-43-with-distinct-negatives-derived",
        study="negatives", figures=("negatives", "frontier"),
        notes="Removing a repeated negative can only lower ell (a margin entry less in the logistic sum or the "
              "hinge's max), so the Jensen step needs one negative per distinct class and the denominator is "
              "1 - tau_k instead of P(all k + 1 classes distinct), which vanishes once k >~ sqrt(2C). The measured "
              "quantity is a mixture of (J + 1)-way tasks with the label c+ ~ rho, not the (k + 1)-way task law of "
              "the old form. " + _MU_HAT,
    ),
    Theorem(
        id="contrastive.theorem_4_1_norm_ball",
        paper=PAPER,
        number="Theorem 4.1 (its form) on a Frobenius ball fixed before training, with our explicit Gen_M",
        statement=r"L_{sup}^{\mu}(\hat f) \le \frac{\hat L_{un}(\hat f) + Gen_M / 2 - \tau}{1 - \tau}"
                  r"\ \text{w.p.} \ge 1 - \delta,\ \hat f \in F_R = \{x \mapsto Wx : \|W\|_F \le R\},\ "
                  r"Gen_M = \frac{4\sqrt{2}\,\sqrt{6} R X \eta\, R\sqrt{d \sum_j \|x_j\|^2}}{M}"
                  r" + 6 (1 + 2R^2X^2) \sqrt{\frac{\log(4/\delta)}{2M}}",
        status="derived",
        terms=_GEN_TERMS,
        bound=gen_bound_from_terms,
        trivial=_TRIVIAL,
        assumptions=(ONE_NEGATIVE, TASK_EXISTS, UNIT_LOSS, TAU_TERMS, CONFIDENCE),
        measured="L_sup^mu(f^) of the ball-constrained linear encoder (exact by enumeration on the discrete family), "
                 "or of the oracle linear encoder built from the class means on the same ball",
        doc=f"{DOC}#theorem-41-on-a-norm-ball-derived",
        study="generalisation", figures=("generalisation", "frontier"),
        notes="No stand-ins: the class F_R (radius R) is a config value fixed before any data is seen, X = max ||x|| "
              "over the discrete family's finite support is exact, so ||f(x)|| <= R X holds on the support and the "
              "Lipschitz constant sqrt(6) R X and the range 1 + 2 R^2 X^2 of the hinge are the ball's. Each radius "
              "is its own class with its own delta (no union bound over the radii). The bound holds for every f in "
              "F_R at once, so it applies to the trained encoder whether or not training reached the ERM. "
              + _NUMBERS,
    ),
    Theorem(
        id="contrastive.proposition_6_2",
        paper=PAPER,
        number="Proposition 6.2",
        statement=r"L_{sup}^{\mu}(f) \le \frac{L_{un}^{block}(f) - \tau}{1 - \tau} \le \frac{L_{un}(f) - \tau}"
                  r"{1 - \tau},\quad \text{blocks of } b \text{ positives from } c^+ \text{ and } b "
                  r"\text{ negatives from one } c^-",
        status="reconstructed",
        terms=("L_block", "tau"),
        bound=block_bound_from_terms,
        trivial=_TRIVIAL,
        assumptions=(ONE_NEGATIVE, TWO_WAY_TASK, UNIT_LOSS),
        measured=_MEASURED_2,
        doc=f"{DOC}#proposition-62-block-loss",
        study="block", figures=("block",),
        notes="The paper states it for L_sup, which is at most L_sup^mu; the suite checks the L_sup^mu form, which "
              "the same proof gives. 'All b negatives share one class' is our reading of the block construction. "
              "L_un^block is a Monte-Carlo estimate on fresh blocks. " + _MU_HAT + " " + _NUMBERS,
    ),
)
