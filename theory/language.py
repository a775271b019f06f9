"""Why next-word prediction helps natural downstream tasks (Saunshi, Malladi & Arora, ICLR 2021; arXiv 2010.03648).

Terms of the theorem on contexts s with the true next-word law p*_s in Delta_V and an LM {p_s}:

* epsilon = E_s KL(p*_s || p_s): the LM's excess cross-entropy (natural logs, nats);
* tau: the logistic loss of the task's plug-in probe (v, b) on p*_s (the task is (tau, B)-natural);
* B = half-range of v, (max v - min v) / 2 [derived: 1^T (p - p*) = 0 and the free bias make the half-range,
  not ||v||_inf, the constant of the Hoelder step];
* gamma = min_s p_L(s) / p_T(s), the transfer coefficient between the LM's and the task's context laws [recon];
  its covariance form ``transfer_coefficient_cov`` (never smaller) is checked beside it as its own rows.

Bound (any LM, features p_s), [recon statement, derived and tested constants]:
    l_T(v, b on p) <= tau + sqrt(2 B^2 epsilon / gamma),
with the logistic loss log(1 + e^-z) (1-Lipschitz, natural log). ``l1_chain`` exposes each step of the proof.
The derivations, what each theorem assumes and what is known to be loose: ``docs/theory/language.md``.

Expectations: with ``weights`` (the exact law of the contexts, from enumeration) they are exact sums and the standard
error is 0; without, the rows are i.i.d. Monte-Carlo draws of s and the standard error is std / sqrt(n) (NaN for one
draw, the convention of ``theory.stats.mean_se``). The KL and the expected loss inside are always exact. All functions
are float64 numpy.

``THEOREMS`` declares the chapter's three bounds (any LM, softmax LM, Quad) as ``theory.theorems.Theorem``; all three
are ``bound`` of their row's (tau, B, epsilon, gamma), so they live here. The softmax-LM and Quad arithmetic lives in
``theory/language_softmax.py``: import it from there (this module does not re-export it; language_softmax imports
from here, never the other way round).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.optimize import minimize

from theory import stats
from theory.theorems import Assumption, Theorem, Trivial

__all__ = ["mean_se", "kl", "epsilon", "logistic_loss", "expected_logistic_loss", "plugin_loss", "tau",
           "label_entropy", "tau_fit", "half_range", "transfer_coefficient", "transfer_coefficient_cov", "bound", "bound_se", "l1_chain",
           "THEOREMS", "NATURALNESS", "TRIVIAL_LOSS"]


def _rows(name: str, a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name}: must have shape (n, V) (got {a.shape})")
    return a


def mean_se(values, weights=None) -> tuple[float, float]:
    """(E[values], standard error): a weighted sum (weights renormalised to 1, SE 0) or an i.i.d. sample mean.

    The sample SE is ``theory.stats.mean_se``'s (std ddof 1 / sqrt(n); NaN for one value, never a silent 0). A
    non-finite value (an inf KL) makes the mean non-finite and the SE NaN: it is never dropped as a missing draw.
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != x.shape:
            raise ValueError(f"weights: must have shape {x.shape} (got {w.shape})")
        if np.any(w < 0) or not w.sum() > 0:
            raise ValueError("weights: must be >= 0 with a positive sum")
        w = w / w.sum()
        keep = w > 0  # a zero-weight context may carry inf or nan without changing the expectation
        return float(np.sum(w[keep] * x[keep])), 0.0
    if x.size == 0:
        raise ValueError("values: need at least one context")
    if not np.all(np.isfinite(x)):
        return float(np.mean(x)), float("nan")
    with warnings.catch_warnings():  # numpy warns of ddof <= 0 for one value; the NaN SE is the answer
        warnings.simplefilter("ignore", RuntimeWarning)
        m, se = stats.mean_se(x)
    return float(m), float(se)


def kl(p_star, p) -> np.ndarray:
    """KL(p*_s || p_s) in nats per row, shape (n,); 0 log 0 = 0, and +inf where p = 0 < p*."""
    ps, q = _rows("p_star", p_star), _rows("p", p)
    if ps.shape != q.shape:
        raise ValueError(f"p: must have the shape of p_star {ps.shape} (got {q.shape})")
    pos = ps > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(pos, ps * (np.log(np.where(pos, ps, 1.0)) - np.log(q)), 0.0)
    return t.sum(axis=1)


def epsilon(p_star, p, weights=None) -> tuple[float, float]:
    """(epsilon, se) with epsilon = E_s KL(p*_s || p_s) = l_xent(p) - l_xent(p*), the LM's excess cross-entropy."""
    return mean_se(kl(p_star, p), weights)


def logistic_loss(margin) -> np.ndarray:
    """log(1 + exp(-margin)) in nats, stable for any margin; 1-Lipschitz, log 2 at 0."""
    return np.logaddexp(0.0, -np.asarray(margin, dtype=np.float64))


def expected_logistic_loss(margin, label_prob) -> np.ndarray:
    """E_{y | s}[log(1 + exp(-y m_s))] = q l(m) + (1 - q) l(-m) per context, q = P(y = +1 | s)."""
    m = np.asarray(margin, dtype=np.float64)
    q = np.asarray(label_prob, dtype=np.float64)
    return q * logistic_loss(m) + (1.0 - q) * logistic_loss(-m)


def plugin_loss(v, b, feats, label_prob, weights=None) -> tuple[float, float]:
    """(loss, se): E_s E_{y|s} log(1 + exp(-y (v . feats_s + b))); feats (n, V), label_prob (n,) = P(y=+1 | s)."""
    F = _rows("feats", feats)
    return mean_se(expected_logistic_loss(F @ np.asarray(v, dtype=np.float64) + float(b), label_prob), weights)


def tau(v, b, p_star, label_prob, weights=None) -> tuple[float, float]:
    """(tau, se): the task's tau, the loss of its plug-in probe (v, b) on the true features p*_s [recon]."""
    return plugin_loss(v, b, p_star, label_prob, weights)


def label_entropy(label_prob, weights=None) -> tuple[float, float]:
    """(E_s H(y | s), se) in nats: the Bayes loss of any predictor of y from s, a floor under every probe's loss."""
    q = np.clip(np.asarray(label_prob, dtype=np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(q > 0, q * np.log(np.where(q > 0, q, 1)), 0) - np.where(q < 1, (1 - q) * np.log1p(-q), 0)
    return mean_se(h, weights)


def tau_fit(p_star, label_prob, B: float, weights=None) -> tuple[float, np.ndarray, float]:
    """(tau, v, b): the smallest logistic loss of a probe on p*_s over ||v||_inf <= B, b free (convex, L-BFGS-B).

    Used to check whether a task is (tau, B)-natural at all (the non_natural task's assumption check): with a
    free bias, ||v||_inf <= B is the same set of probes as half-range(v) <= B. Without weights the rows are an
    i.i.d. sample and the value is the sample's (in-sample) minimum.
    """
    P = _rows("p_star", p_star)
    q = np.asarray(label_prob, dtype=np.float64).reshape(-1)
    n, V = P.shape
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64) / np.sum(weights)
    if not B > 0:
        raise ValueError(f"B: must be > 0 (got {B})")

    def fun(x):
        m = P @ x[:V] + x[V]
        g = w * (np.exp(-np.logaddexp(0.0, -m)) - q)  # d loss / d m = sigmoid(m) - q
        return float(np.sum(w * expected_logistic_loss(m, q))), np.concatenate([P.T @ g, [g.sum()]])

    qbar = float(np.clip(np.sum(w * q), 1e-12, 1 - 1e-12))
    x0 = np.concatenate([np.zeros(V), [math.log(qbar / (1 - qbar))]])
    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=[(-B, B)] * V + [(None, None)],
                   options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-12})
    return float(res.fun), res.x[:V].copy(), float(res.x[V])


def half_range(v) -> float:
    """(max v - min v) / 2: the B of the bound [derived]."""
    v = np.asarray(v, dtype=np.float64)
    return 0.5 * float(v.max() - v.min())


def transfer_coefficient(p_lm, p_task) -> float:
    """gamma = min over the task's support of p_lm(s) / p_task(s) [recon, simplest form]; both (m,) on the same s.

    1 when the laws coincide; 0 when the task puts mass where the LM puts none (the bound is then void).
    """
    a = np.asarray(p_lm, dtype=np.float64).reshape(-1)
    t = np.asarray(p_task, dtype=np.float64).reshape(-1)
    if a.shape != t.shape:
        raise ValueError(f"p_task: must have the shape of p_lm {a.shape} (got {t.shape})")
    sup = t > 0
    if not np.any(sup):
        raise ValueError("p_task: has no positive entry")
    return float(np.min(a[sup] / t[sup]))


def transfer_coefficient_cov(g, w_task, w_lm, rtol: float = 1e-10) -> float:
    """gamma_cov = sup{gamma : Sigma_L >= gamma Sigma_T} = 1 / lambda_max(Sigma_L^{+1/2} Sigma_T Sigma_L^{+1/2}), with
    Sigma_p = sum_rows p(s) g(s) g(s)^T for the LM's error vectors g (m, V) on the task's rows [recon: the
    covariance form of the paper's transfer coefficient].

    w_task: the task's law on the rows (renormalised to 1); w_lm: the LM's probability of each row, not renormalised
    (the rows may cover only part of the LM's law, which only lowers Sigma_L in the PSD order, so the value is at
    most the coefficient over the LM's whole law: still a valid constant). Never below ``transfer_coefficient``:
    Sigma_T <= Sigma_L / gamma_min term by term. The change of measure it licenses,
    E_T (u . g)^2 <= E_L (u . g)^2 / gamma_cov for every u, is the only one the proofs need. inf where g is 0 on
    every row the task weighs (an LM exact there: the bound's sqrt term is 0 whatever gamma is).
    """
    G = _rows("g", g)
    wt = np.asarray(w_task, dtype=np.float64).reshape(-1)
    wl = np.asarray(w_lm, dtype=np.float64).reshape(-1)
    if wt.shape != (G.shape[0],) or wl.shape != wt.shape:
        raise ValueError(f"w_task: w_task {wt.shape} and w_lm {wl.shape} must both have shape ({G.shape[0]},)")
    if np.any(wt < 0) or np.any(wl < 0) or not wt.sum() > 0:
        raise ValueError("w_task: the laws must be >= 0, the task's with a positive sum")
    if np.any((wt > 0) & (wl == 0)):
        return 0.0  # the task weighs a context the LM never sees (gamma_min = 0 too)
    # with p_L > 0 wherever p_T > 0, Sigma_T <= Sigma_L / gamma_min lies inside range(Sigma_L): the directions dropped
    # below hold at most rtol lambda_max / gamma_min of it
    wt = wt / wt.sum()
    S_T = (G * wt[:, None]).T @ G
    S_L = (G * wl[:, None]).T @ G
    lam, U = np.linalg.eigh(S_L)
    keep = lam > rtol * max(float(lam.max()), 0.0)
    if not np.any(keep):
        return float("inf")
    W = U[:, keep] / np.sqrt(lam[keep])
    top = float(np.linalg.eigvalsh(W.T @ S_T @ W).max())
    return float("inf") if top <= 0 else 1.0 / top


def bound(tau, B, eps, gamma):
    """tau + sqrt(2 B^2 eps / gamma): the any-LM theorem [recon statement; derived constants], natural logs.

    Vectorised over numpy arrays; eps is clipped at 0 (rounding can leave an exact epsilon at -1e-17).
    """
    tau, B, eps, gamma = (np.asarray(a, dtype=np.float64) for a in (tau, B, eps, gamma))
    out = tau + np.sqrt(2.0 * B ** 2 * np.maximum(eps, 0.0) / gamma)
    return float(out) if out.ndim == 0 else out


def bound_se(tau_se, B, eps, eps_se, gamma):
    """Standard error of ``bound`` by propagating one SE of eps through the square root (finite at eps = 0).

    hypot(tau_se, sqrt(2 B^2 / gamma) (sqrt(eps + eps_se) - sqrt(eps))); the delta method would divide by sqrt(eps).
    """
    tau_se, B, eps, eps_se, gamma = (np.asarray(a, dtype=np.float64) for a in (tau_se, B, eps, eps_se, gamma))
    e = np.maximum(eps, 0.0)
    out = np.hypot(tau_se, np.sqrt(2.0 * B ** 2 / gamma) * (np.sqrt(e + eps_se) - np.sqrt(e)))
    return float(out) if out.ndim == 0 else out


def l1_chain(v, p_star, p, weights=None, *, weights_lm=None, gamma=None, b=None, label_prob=None) -> dict:
    """Each step of the any-LM proof, so a test or figure can show where the slack goes [derived].

    Contexts are the rows of p_star / p (n, V); ``weights`` is the task's law on them (None: i.i.d. sample, uniform;
    renormalised to 1), ``weights_lm`` the LM's probability of each row, NOT renormalised (None: the task's law,
    gamma = 1): the rows may cover only part of the LM's law (a prompt task), and then the chain ends at the part of
    epsilon carried by these rows, at most the full epsilon. gamma defaults to min_rows weights_lm / weights.
    With Delta_s = p_s - p*_s, every value is at most the next:
        excess      = l_T(v, b on p) - tau                    (needs b and label_prob)
        lipschitz   = E_T |v . Delta_s|                       (logistic loss is 1-Lipschitz)
        hoelder     = B E_T ||Delta_s||_1                     (B = half-range: shift v by its mid-range)
        jensen      = B sqrt(E_T ||Delta_s||_1^2)
        change_of_measure = B sqrt(sum_rows p_L ||Delta_s||_1^2 / gamma)
        pinsker     = B sqrt(2 sum_rows p_L KL(p*_s || p_s) / gamma)  (= bound(tau, B, eps, gamma) - tau)
    Also returned: B, gamma, epsilon (sum_rows p_L KL), tau (when b and label_prob are given).
    """
    P, Q = _rows("p_star", p_star), _rows("p", p)
    v = np.asarray(v, dtype=np.float64)
    n = P.shape[0]
    wt = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    wt = wt / wt.sum()
    wl = wt if weights_lm is None else np.asarray(weights_lm, dtype=np.float64)
    if gamma is None:
        gamma = 1.0 if weights_lm is None else transfer_coefficient(wl, wt)
    B = half_range(v)
    D = Q - P
    l1 = np.abs(D).sum(axis=1)
    on = wl > 0
    eps = float(np.sum(wl[on] * kl(P, Q)[on]))
    out = {"B": B, "gamma": float(gamma), "epsilon": eps,
           "lipschitz": mean_se(np.abs(D @ v), wt)[0],
           "hoelder": B * mean_se(l1, wt)[0],
           "jensen": B * math.sqrt(mean_se(l1 ** 2, wt)[0]),
           "change_of_measure": B * math.sqrt(float(np.sum(wl * l1 ** 2)) / gamma),
           "pinsker": B * math.sqrt(2.0 * max(eps, 0.0) / gamma)}
    if b is not None and label_prob is not None:
        t = tau(v, b, P, label_prob, wt)[0]
        out["tau"] = t
        out["excess"] = plugin_loss(v, b, Q, label_prob, wt)[0] - t
    return out


# --------------------------------------------------------------------------------------------- theorems
TRIVIAL_LOSS = math.log(2.0)  # the zero probe's logistic loss: any bound at or above it says nothing
PAPER = "Saunshi, Malladi & Arora 2021 (ICLR; arXiv 2010.03648)"
DOC = "docs/theory/language.md"


def _naturalness(natural_gap, gap_max):
    """(gap, met): the task is natural when the best probe on p*_s (||v||_inf <= tasks.check_B) is within gap_max
    nats of the Bayes loss of y given s; a NaN gap is not met (no evidence the task is natural)."""
    gap = np.asarray(natural_gap, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return gap, gap <= np.asarray(gap_max, dtype=np.float64)


NATURALNESS = Assumption(
    name="naturalness gap",
    statement=r"the task is natural: the best probe on the true next-word laws $p^*$ comes within gap_max of the "
              r"label entropy, $\min_{\|v\|_\infty \le B_{check},\, b} \ell_T(v, b \text{ on } p^*) - "
              r"\mathbb{E}_s H(y \mid s) \le \text{gap}_{max}$",
    terms=("natural_gap", "gap_max"),
    check=_naturalness,
)


def _bound(tau, B, epsilon, gamma):
    """The three theorems' common form, fed a row's term columns: ``bound(tau, B, epsilon, gamma)``."""
    return np.asarray(bound(tau, B, epsilon, gamma), dtype=np.float64)


def _trivial():
    return np.float64(TRIVIAL_LOSS)


_TERMS = ("tau", "B", "epsilon", "gamma")
_TRIVIAL = Trivial("log 2: the logistic loss of the zero probe (v = 0, b = 0), reached without any feature", (),
                   _trivial)
_NUMBERS = ("the statement number is our reading of the ICLR 2021 version and was not confirmed against the paper "
            "text (only its abstract was reachable)")
_GAMMA = ("gamma is the min-ratio transfer coefficient min_s p_L(s)/p_T(s) on rows with gamma_form = min, and on rows "
          "with gamma_form = cov (tasks whose context law differs from the LM's) the covariance form 1 / lambda_max("
          "Sigma_L^-1/2 Sigma_T Sigma_L^-1/2) of the bound's own error vector, never smaller")

THEOREMS: tuple[Theorem, ...] = (
    Theorem(
        id="language.theorem_4_1",
        paper=PAPER,
        number="Theorem 4.1",
        statement=r"\ell_T(v, b \text{ on } p_f) \le \tau + \sqrt{2 B^2 \epsilon / \gamma},\quad "
                  r"\epsilon = \mathbb{E}_s \mathrm{KL}(p^*_s \,\|\, p_{f(s)}),\ T\ (\tau, B)\text{-natural}",
        status="reconstructed",
        terms=_TERMS,
        bound=_bound,
        trivial=_TRIVIAL,
        assumptions=(NATURALNESS,),
        measured="the task's logistic loss of a linear probe on the LM's next-word law p_f(s): the task's own (v, b) "
                 "(form plugin) or the best probe fitted on the exact label law (form fitted probe)",
        doc=f"{DOC}#theorem-41-any-lm",
        study="bound", figures=("bound", "masked", "non_natural", "frontier"),
        notes="B is the half-range of v (derived; the paper's ||v||_inf is at least it). " + _GAMMA + "; " + _NUMBERS
              + ". The fitted probe is L2-regularised (1 / population_C), a stand-in for the infimum over probes.",
    ),
    Theorem(
        id="language.theorem_4_2",
        paper=PAPER,
        number="Theorem 4.2",
        statement=r"\ell_T(\lambda \text{ on } \Phi p_f) \le \tau_\Phi + \sqrt{2 B_\Phi^2 \epsilon_\Phi / \gamma},\quad"
                  r" \epsilon_\Phi = \ell_{xent}(f, \Phi) - \inf_g \ell_{xent}(g, \Phi),\ "
                  r"T\ (\tau_\Phi, B_\Phi)\text{-natural w.r.t. } \Phi",
        status="reconstructed",
        terms=_TERMS,
        bound=_bound,
        trivial=_TRIVIAL,
        assumptions=(NATURALNESS,),
        measured="the task's logistic loss of a linear probe on the conditional-mean features Phi p_f(s): "
                 "v_Phi = Phi^T lambda + c 1, the image of v in Phi's row space (plugin), or the best fitted probe",
        doc=f"{DOC}#theorem-42-softmax-lm",
        study="bound", figures=("softmax", "frontier"),
        notes="On these rows tau and B are tau_Phi and B_Phi, the loss and half-range of v_Phi (equal to the task's "
              "when v lies in Phi's row space; resid_phi says how far it is), and epsilon is eps_Phi, the excess over "
              "the best LM with this Phi (moment matching). " + _GAMMA + "; " + _NUMBERS + ".",
    ),
    Theorem(
        id="language.quad",
        paper=PAPER,
        number="none: our bound for the paper's Quad objective",
        statement=r"\ell_T(u \text{ on } \Phi^\top f) \le \tau_\Phi + \sqrt{2 \|u\|_2^2 \epsilon_{quad} / \gamma},"
                  r"\quad u = \Phi^\top \lambda,\ \epsilon_{quad} = \ell_{quad}(f, \Phi) - \inf_g \ell_{quad}(g, \Phi)",
        status="derived",
        terms=_TERMS,
        bound=_bound,
        trivial=_TRIVIAL,
        assumptions=(NATURALNESS,),
        measured="the task's logistic loss of a linear probe on Phi^T f(s) of a Quad-trained (f, Phi): u = Phi^T "
                 "lambda with the bias b + c (plugin), or the best probe fitted on f(s) (fitted probe)",
        doc=f"{DOC}#quad-bound",
        study="quad", figures=("quad", "frontier"),
        notes="On these rows B is ||u||_2 (Phi^T f is not a distribution: no free shift, so no half-range), epsilon is "
              "eps_quad and tau is tau_Phi. Checked on Quad-trained cells only. " + _GAMMA + ".",
    ),
)
