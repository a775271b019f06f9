"""The augmentation graph and the spectral contrastive loss (HaoChen, Wei, Gaidon & Ma, NeurIPS 2021, arXiv
2106.04156), and function-class-aware quantities (Saunshi, Ash, Goel, Misra, Zhang, Arora, Kakade &
Krishnamurthy, ICML 2022, arXiv 2202.14037), on finite input spaces where every term is exact.

Notation: W (N, N) the augmentation graph, w its marginals, Ā = D^{-1/2} W D^{-1/2} with eigenvalues
γ_1 >= γ_2 >= ..., Laplacian eigenvalues λ_i = 1 − γ_i. The spectral contrastive loss of f: X -> R^d is

    L(f) = −2 E_{(x,x+)~w}[f(x)ᵀf(x+)] + E_{x,x'~w⊗w}[(f(x)ᵀf(x'))²]
         = ‖Ā − FFᵀ‖²_F − ‖Ā‖²_F,      F = D^{1/2} f   (rows √w_x f(x)),

with no extra factor: its minimum over all f is −Σ_{i<=d} (γ_i)₊² (Eckart–Young), reached by the top-d
eigenvectors scaled by √γ_i (any rotation).

What is whose (docs/theory/augmentation_graph.md states each as the suite checks it, with derivations):

* the graph, the loss, its closed-form minimiser and minimum: HaoChen et al.'s definitions; the minimum is
  Eckart–Young and is re-derived in the doc (status derived, so nothing rests on an unverified wording);
* the eigenvalue bound err(f*) <= α + 4α/λ_{d+1}: OUR derivation along the structure of HaoChen et al.'s
  proof (their constant-explicit statements could not be retrieved); the ρ-form α/ρ²_{⌊d/2⌋} of their
  Theorem 3.7 hides constants and log factors, so it is a reference curve here;
* the linear-class minimum −Σ(λ_i(T)₊)²: derived here; Corollary 4.2(b) (32k × the loss gap) and Lemma 4.1's
  permutation construction: Saunshi et al. 2022 via a secondary source, status reconstructed / reference.

Everything is float64 numpy, except ``spectral_loss_torch`` (the training loss's population form).
"""
from __future__ import annotations


import numpy as np
import torch

from theory.theorems import Assumption, Theorem, Trivial

HAOCHEN = "HaoChen, Wei, Gaidon & Ma 2021"
SAUNSHI = "Saunshi, Ash, Goel, Misra, Zhang, Arora, Kakade & Krishnamurthy 2022"
DOC = "docs/theory/augmentation_graph.md"
MAX_ASSIGNMENTS = 2_000_000   # exact sparsest partition only when m^(N-1) assignments fit


# ----------------------------------------------------------------------------------------------- the graph
def normalized_adjacency(W: np.ndarray) -> np.ndarray:
    """Ā = D^{-1/2} W D^{-1/2} (rows and columns of zero-marginal nodes are 0)."""
    W = np.asarray(W, dtype=np.float64)
    w = W.sum(1)
    s = np.where(w > 0, 1.0 / np.sqrt(np.where(w > 0, w, 1.0)), 0.0)
    A = s[:, None] * W * s[None, :]
    return 0.5 * (A + A.T)


def spectrum(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues γ (descending) and eigenvectors (columns) of Ā."""
    vals, vecs = np.linalg.eigh(normalized_adjacency(W))
    order = np.argsort(-vals, kind="stable")
    return vals[order], vecs[:, order]


def spectral_loss(f: np.ndarray, W: np.ndarray) -> float:
    """Population spectral contrastive loss of features f (N, d) on the graph W (exact, float64)."""
    f = np.asarray(f, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    w = W.sum(1)
    pos = float(np.einsum("xy,xd,yd->", W, f, f))
    C = (f * w[:, None]).T @ f
    return -2.0 * pos + float(np.sum(C * C))


def spectral_loss_torch(f: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Batched population spectral loss: f (G, N, d), W (N, N) -> (G,), same normalisation as ``spectral_loss``."""
    w = W.sum(1)
    pos = torch.einsum("xy,gxd,gyd->g", W, f, f)
    C = torch.einsum("x,gxd,gxe->gde", w, f, f)
    return -2.0 * pos + (C * C).sum((1, 2))


def closed_form_minimiser(W: np.ndarray, d: int) -> np.ndarray:
    """f*(x) = (U_d diag(√γ₊))_x / √w_x, (N, d): a minimiser of the spectral loss in dimension d."""
    gam, U = spectrum(W)
    w = np.asarray(W, dtype=np.float64).sum(1)
    F = U[:, :d] * np.sqrt(np.maximum(gam[:d], 0.0))[None, :]
    return F / np.sqrt(np.where(w > 0, w, 1.0))[:, None]


def spectral_minimum(gammas, d: int | None = None) -> float:
    """−Σ_{i<=d} (γ_i)₊², the minimum of the spectral loss over all f: X -> R^d."""
    g = np.sort(np.asarray(gammas, dtype=np.float64))[::-1]
    g = g if d is None else g[:d]
    return -float(np.sum(np.maximum(g, 0.0) ** 2))


def encode_values(values) -> str:
    """A list of floats as one bounds.csv cell: ';'-joined shortest round-trip reprs."""
    return ";".join(repr(float(v)) for v in values)


def decode_values(text) -> np.ndarray:
    return np.array([float(t) for t in str(text).split(";") if t != ""], dtype=np.float64)


# ------------------------------------------------------------------------------- the linear function class
def linear_T(X: np.ndarray, W: np.ndarray, ridge: float = 1e-12) -> np.ndarray:
    """T = Σ^{-1/2} Σ₊ Σ^{-1/2} with Σ = E_w[x xᵀ], Σ₊ = E_{(x,x+)}[x x+ᵀ] (pseudo-inverse on Σ's null space)."""
    X, W = np.asarray(X, dtype=np.float64), np.asarray(W, dtype=np.float64)
    w = W.sum(1)
    S = (X * w[:, None]).T @ X
    Sp = X.T @ W @ X
    vals, vecs = np.linalg.eigh(0.5 * (S + S.T))
    keep = vals > ridge * max(1.0, vals.max())
    inv_sqrt = (vecs[:, keep] / np.sqrt(vals[keep])) @ vecs[:, keep].T
    T = inv_sqrt @ (0.5 * (Sp + Sp.T)) @ inv_sqrt
    return 0.5 * (T + T.T)


def linear_minimiser(X: np.ndarray, W: np.ndarray, d: int, ridge: float = 1e-12) -> np.ndarray:
    """B* (D, d) with f(x) = B*ᵀx at the linear minimum: Σ^{1/2}B*B*ᵀΣ^{1/2} keeps T's top-d non-negative
    eigenvalues, so B* = Σ^{-1/2} V_d diag(√λ₊) (one pick among ties, all with the same loss)."""
    X, W = np.asarray(X, dtype=np.float64), np.asarray(W, dtype=np.float64)
    w = W.sum(1)
    S = (X * w[:, None]).T @ X
    vals, vecs = np.linalg.eigh(0.5 * (S + S.T))
    keep = vals > ridge * max(1.0, vals.max())
    inv_sqrt = (vecs[:, keep] / np.sqrt(vals[keep])) @ vecs[:, keep].T
    lam, V = np.linalg.eigh(linear_T(X, W, ridge))
    order = np.argsort(-lam, kind="stable")[:d]
    return inv_sqrt @ V[:, order] * np.sqrt(np.maximum(lam[order], 0.0))[None, :]


def linear_minimum(T_eigs, d: int | None = None) -> float:
    """−Σ_{i<=d} (λ_i(T)₊)²: the minimum of the spectral loss over linear f(x) = Bᵀx with B (D, d)."""
    return spectral_minimum(T_eigs, d)


# --------------------------------------------------------------------------------------- downstream terms
def alpha(joint: np.ndarray) -> float:
    """α = min_ŷ P(ŷ(x) ≠ y(x̄)) = 1 − Σ_x max_y P(x, y): the Bayes error of the label from one augmentation."""
    return float(1.0 - np.sum(np.max(np.asarray(joint, dtype=np.float64), axis=1)))


def error_of(pred: np.ndarray, joint: np.ndarray) -> float:
    """P_{(x̄, x)}(pred(x) ≠ y(x̄)) for a deterministic prediction per input."""
    joint = np.asarray(joint, dtype=np.float64)
    return float(1.0 - joint[np.arange(joint.shape[0]), np.asarray(pred, dtype=np.int64)].sum())


def ls_head_scores(f: np.ndarray, w: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """The w-weighted least-squares regression of the Bayes one-hot label on f (no intercept), (N, C)."""
    f, w = np.asarray(f, dtype=np.float64), np.asarray(w, dtype=np.float64)
    H = np.eye(joint.shape[1])[np.argmax(joint, axis=1)]
    s = np.sqrt(w)[:, None]
    B, *_ = np.linalg.lstsq(s * f, s * H, rcond=None)
    return f @ B


def ls_head_prediction(f: np.ndarray, w: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """argmax of the least-squares head (``ls_head_scores``)."""
    return np.argmax(ls_head_scores(f, w, joint), axis=1)


TIE_RTOL = 1e-9   # scores this close (relative to the largest, at least 1) are a tie of the head, not a choice


def tie_aware_errors(scores: np.ndarray, joint: np.ndarray, rtol: float = TIE_RTOL) -> dict[str, float]:
    """The error of argmax(scores) where some inputs' top scores tie exactly (to float rounding): ``uniform``
    breaks each tie uniformly at random (the expected error), ``min`` / ``max`` the best and worst deterministic
    tie-break, ``tied_mass`` is the input mass at a tie. Without ties all three errors are argmax's error.

    Why: where the top-d eigenvalue of Ā is tied with the next, f* is one pick from the tied eigenspace, and the
    head on any such pick can be exactly constant (cluster cells at overlap 0: the class contrast lies outside
    every pick). np.argmax then resolves 1e-16 noise, so the error it reports is the eigensolver's, not f*'s."""
    scores, joint = np.asarray(scores, dtype=np.float64), np.asarray(joint, dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(scores)))) if scores.size else 1.0
    cand = scores >= scores.max(1, keepdims=True) - rtol * scale           # (N, C): the argmax candidates
    n = cand.sum(1)
    correct = np.sum(np.where(cand, joint, 0.0), axis=1)
    best = np.max(np.where(cand, joint, -np.inf), axis=1)
    worst = np.min(np.where(cand, joint, np.inf), axis=1)
    return {"uniform": float(1.0 - np.sum(correct / n)), "min": float(1.0 - best.sum()),
            "max": float(1.0 - worst.sum()), "tied_mass": float(joint.sum(1)[n > 1].sum())}


def conductances(labels: np.ndarray, W: np.ndarray, m: int) -> np.ndarray:
    """φ(S_i) for the sets S_i = {labels == i}, i < m: (cut, vol) ratio, vectorised over rows of ``labels``."""
    labels = np.atleast_2d(labels)
    H = np.eye(m)[labels]                                  # (P, N, m)
    w = W.sum(1)
    vol = np.einsum("pnm,n->pm", H, w)
    inner = np.einsum("pnm,nk,pkm->pm", H, W, H)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(vol > 0, (vol - inner) / np.where(vol > 0, vol, 1.0), np.inf)


def sparsest_partition(W: np.ndarray, m: int) -> float | None:
    """ρ_m = min over partitions into m non-empty sets of max_i φ(S_i), by enumeration; None when too large."""
    W = np.asarray(W, dtype=np.float64)
    N = W.shape[0]
    if m == 1:
        return 0.0
    if m > N or m ** (N - 1) > MAX_ASSIGNMENTS:
        return None
    best = np.inf
    total = m ** (N - 1)
    chunk = max(1, 200_000 // max(N, 1))
    powers = m ** np.arange(N - 2, -1, -1)
    for start in range(0, total, chunk):
        idx = np.arange(start, min(total, start + chunk))
        labels = np.zeros((idx.size, N), dtype=np.int64)
        labels[:, 1:] = (idx[:, None] // powers[None, :]) % m        # node 0 sits in set 0 (symmetry)
        full = np.all(np.stack([(labels == i).any(1) for i in range(m)]), axis=0)
        if not full.any():
            continue
        phi = conductances(labels[full], W, m).max(1)
        best = min(best, float(phi.min()))
    return best


def rho_terms(W: np.ndarray, gammas: np.ndarray, m: int) -> tuple[float, str]:
    """(ρ_m, source): exact where the partitions can be enumerated, else the Cheeger-type lower bound λ_m / 2."""
    exact = sparsest_partition(W, m)
    if exact is not None:
        return exact, "exact"
    return 0.5 * (1.0 - float(np.sort(gammas)[::-1][m - 1])), "cheeger_lower"


def alignment_uniformity(f: np.ndarray, W: np.ndarray, t: float = 2.0) -> tuple[float, float]:
    """Wang & Isola's L_align = E_pos‖f̃(x) − f̃(x+)‖² and L_uniform = log E exp(−t‖f̃(x) − f̃(x')‖²) on
    L2-normalised features f̃, exact under the graph's laws (t = 2 as in their code)."""
    f = np.asarray(f, dtype=np.float64)
    n = np.linalg.norm(f, axis=1, keepdims=True)
    u = f / np.where(n > 0, n, 1.0)
    sq = np.maximum(2.0 - 2.0 * u @ u.T, 0.0)
    w = W.sum(1)
    align = float(np.sum(W * sq))
    unif = float(np.log(np.sum(np.outer(w, w) * np.exp(-t * sq))))
    return align, unif


# ----------------------------------------------------------------------------- Lemma 4.1's construction
def collapse(f: np.ndarray, A: np.ndarray) -> np.ndarray:
    """f̄(x̄) = E_{x~A(.|x̄)} f(x), (M, d): each natural point's augmentations collapsed to their mean."""
    return np.asarray(A, dtype=np.float64) @ np.asarray(f, dtype=np.float64)


def permuted_features(f: np.ndarray, A: np.ndarray, natural_of: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Lemma 4.1's f̂: collapse, then give every input of x̄ the collapsed vector of perm[x̄], (N, d).

    With disjoint augmentations and a uniform natural law the loss does not increase (Jensen for the collapse,
    exchangeability for the permutation) while the labels are scrambled."""
    bar = collapse(f, A)
    return bar[np.asarray(perm)[np.asarray(natural_of)]]


# ------------------------------------------------------------------------------------------------ bounds
def _arr(v) -> np.ndarray:
    return np.atleast_1d(np.asarray(v, dtype=np.float64))


def neg_min_from_terms(gammas) -> np.ndarray:
    """Σ_{i<=d} (γ_i)₊² from the ';'-joined eigenvalues used (the top d): the largest −L(f) over all f."""
    return np.array([float(np.sum(np.maximum(decode_values(s), 0.0) ** 2)) for s in np.atleast_1d(gammas)])


def linear_neg_min_from_terms(T_eigs) -> np.ndarray:
    """Σ_{i<=d} (λ_i(T))₊² from the ';'-joined top-d eigenvalues of T: the largest −L(Bᵀx) over linear maps."""
    return neg_min_from_terms(T_eigs)


def eigen_bound_from_terms(alpha, lambda_next) -> np.ndarray:
    """min(1, α + 4α / λ_{d+1}) (our derivation, doc section 'eigenvalue-bound-derived'); 1 where λ_{d+1} <= 0
    (an error is at most 1, so the capped form is still a bound, and a vacuous one)."""
    a, lam = _arr(alpha), _arr(lambda_next)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.minimum(1.0, np.where(lam > 0, a + 4.0 * a / np.where(lam > 0, lam, 1.0), np.inf))


def eigen_vacuity_threshold(alpha, trivial) -> np.ndarray:
    """The λ_{d+1} at which α + 4α/λ reaches the trivial value t: below λ* = 4α/(t − α) the eigenvalue bound says
    nothing (8α/(1 − 2α) at t = 1/2; inf where α >= t, never informative)."""
    a, t = _arr(alpha), _arr(trivial)
    with np.errstate(divide="ignore"):
        return np.where(t > a, 4.0 * a / np.where(t > a, t - a, 1.0), np.inf)


def corollary_vacuity_gap(label_dim, trivial) -> np.ndarray:
    """The loss gap L − inf_lin L at which 32k · gap reaches the trivial value t: t / (32k) (1/(64k) at t = 1/2)."""
    return _arr(trivial) / (32.0 * _arr(label_dim))


def rho_form_from_terms(alpha, rho) -> np.ndarray:
    """min(1, α / ρ²_{⌊d/2⌋}): Theorem 3.7's form with its hidden constant set to 1, the log factor dropped, and
    capped at 1 (1 where ρ = 0)."""
    a, r = _arr(alpha), _arr(rho)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.minimum(1.0, np.where(r > 0, a / np.where(r > 0, r, 1.0) ** 2, np.inf))


def corollary_bound_from_terms(label_dim, loss, loss_min_linear) -> np.ndarray:
    """32 k (L_spec(f) − inf_{F_lin} L_spec), as the secondary source quotes Corollary 4.2(b)."""
    k, L, L0 = _arr(label_dim), _arr(loss), _arr(loss_min_linear)
    return 32.0 * k * np.maximum(L - L0, 0.0)


def lemma_reference_from_terms(d, n_natural) -> np.ndarray:
    """1/2 − √(d ln N / N): Lemma 4.1's lower bound on the permuted encoder's error with its O(·) constant 1."""
    d, N = _arr(d), _arr(n_natural)
    return 0.5 - np.sqrt(d * np.log(N) / N)


def _chance_from_terms(majority) -> np.ndarray:
    return _arr(majority)


def _inf_trivial(d) -> np.ndarray:
    return np.full(_arr(d).shape, np.inf)


# ----------------------------------------------------------------------------------------- assumptions
def _head_exists(gamma_d):
    g = _arr(gamma_d)
    return g, g > 0


LINEAR_CLASSES = ("linear", "linear_fullbatch", "linear_opt")   # SGD, exact full-batch GD, the closed-form minimiser


def _is_linear(encoder_class):
    cls = np.atleast_1d(encoder_class)
    met = np.array([str(c) in LINEAR_CLASSES for c in cls])
    return met.astype(np.float64), met


def _hypercube(family):
    fam = np.atleast_1d(family)
    met = np.array([str(f) == "hypercube" for f in fam])
    return met.astype(np.float64), met


def _disjoint(max_overlap):
    v = _arr(max_overlap)
    return v, v <= 1e-12


HEAD_EXISTS = Assumption("gamma_d", "the d-th eigenvalue of Ā is > 0, so f* keeps d directions and the least-squares "
                         "head on f* is the projection onto the top-d eigenspace", ("gamma_d",), _head_exists)
LINEAR_CLASS = Assumption("linear", "the encoder is linear, f(x) = Bᵀx (1 = linear)", ("encoder_class",), _is_linear)
EXAMPLE_1 = Assumption("hypercube", "the data are Example 1, the hypercube with scaled coordinates (1 = yes)",
                       ("family",), _hypercube)
DISJOINT = Assumption("shared augmentation mass", "augmentations of distinct natural points are disjoint: the largest "
                      "mass two natural points give one input, Σ_x min over pairs, is 0", ("max_overlap",), _disjoint)

_NEG_LOSS = ("−L(f): minus the exact population spectral loss of the trained encoder on the finite graph")
_NO_TRIVIAL = Trivial("none: the closed-form minimum is exact, no trivial encoder reaches it (inf: never vacuous)",
                      ("d",), _inf_trivial)

THEOREMS: tuple[Theorem, ...] = (
    Theorem(
        id="augmentation_graph.spectral_minimum",
        paper=HAOCHEN,
        number="Sec. 3 (the spectral loss as matrix factorisation); Eckart–Young",
        statement=r"-L(f) \le \sum_{i \le d} (\gamma_i)_+^2 \ \text{for every } f: X \to \mathbb{R}^d,"
                  r"\quad L(f) = \|\bar A - FF^\top\|_F^2 - \|\bar A\|_F^2",
        status="derived",
        terms=("gammas",),
        bound=neg_min_from_terms,
        trivial=_NO_TRIVIAL,
        measured=_NEG_LOSS,
        identity=True,
        doc=f"{DOC}#spectral-minimum",
        study="overlap", figures=("exact_vs_trained",),
        notes="The identity L = ‖Ā − FFᵀ‖² − ‖Ā‖² and the minimiser (top-d eigenvectors scaled by √γ) are how "
              "HaoChen et al. introduce the loss; the statement is re-derived in the doc, so its status is derived. "
              "The row's gammas are the top d eigenvalues of Ā. Checked on every trained encoder (spectral "
              "objective) at every checkpoint: no encoder may go below the minimum.",
    ),
    Theorem(
        id="augmentation_graph.linear_class_minimum",
        paper=SAUNSHI,
        number="none: our closed form for the linear class (the paper's Sec. 5 analysis of linear representations)",
        statement=r"-L(B^\top x) \le \sum_{i \le d} (\lambda_i(T))_+^2,\quad T = \Sigma^{-1/2}\Sigma_+\Sigma^{-1/2},"
                  r"\ \Sigma = E[xx^\top],\ \Sigma_+ = E[x x^{+\top}]",
        status="derived",
        terms=("T_eigs",),
        bound=linear_neg_min_from_terms,
        trivial=_NO_TRIVIAL,
        assumptions=(LINEAR_CLASS,),
        measured=_NEG_LOSS + " (linear encoders only)",
        identity=True,
        doc=f"{DOC}#linear-class-minimum",
        study="hypercube", figures=("hypercube",),
        notes="With M = Σ^{1/2} B Bᵀ Σ^{1/2}, L = ‖M − T‖² − ‖T‖² over PSD M of rank <= d: the minimum is "
              "−Σ_{i<=d} (λ_i(T)₊)². The row's T_eigs are the top d eigenvalues of T. On the hypercube with one "
              "shared τ, T = diag(1_k, (Eτ)²/E[τ²] 1_{D−k}).",
    ),
    Theorem(
        id="augmentation_graph.eigenvalue_bound",
        paper=HAOCHEN,
        number="none: our constant-explicit eigenvalue form of the argument behind their Theorem 3.7",
        statement=r"P\big(g_{f^*}(x) \ne y(\bar x)\big) \le \min\Big(1, \alpha + \frac{4\alpha}{\lambda_{d+1}}\Big),\quad "
                  r"\lambda_{d+1} = 1 - \gamma_{d+1},\ g_{f^*} = \arg\max \text{ of the least-squares head on } f^*",
        status="derived",
        terms=("alpha", "lambda_next"),
        bound=eigen_bound_from_terms,
        trivial=Trivial("the error of always predicting the most likely class, 1 − max_y P(y)",
                        ("majority_error",), _chance_from_terms),
        assumptions=(HEAD_EXISTS,),
        measured="exact error, per augmentation, of the argmax of the w-weighted least-squares head (Bayes one-hot "
                 "targets) on the closed-form minimiser f*, exact ties (to 1e-9) broken uniformly at random; the best "
                 "and worst tie-breaks are beside it (measured_tie_min / _max)",
        doc=f"{DOC}#eigenvalue-bound-derived",
        study="overlap", figures=("overlap", "frontier"),
        notes="Our derivation: Σ_c v_cᵀLv_c = P(ŷ(x) ≠ ŷ(x+)) <= 2α for v_c = D^{1/2}1{ŷ = c}; the residual off the "
              "top-d eigenspace is <= that / λ_{d+1}; a wrong argmax costs >= 1/2 in squared error. HaoChen et al. "
              "bound the majority vote over augmentations (their E(f)), at most twice this per-augmentation error. "
              "It needs only the data and the augmentations: as the overlap shrinks λ_{d+1} -> 0 and the bound "
              "goes vacuous whatever the encoder class.",
    ),
    Theorem(
        id="augmentation_graph.theorem_3_7_form",
        paper=HAOCHEN,
        number="Theorem 3.7 (its form; constants and log k hidden in the paper)",
        statement=r"E(f^*_{pop}) \lesssim \frac{\alpha}{\rho_{\lfloor d/2 \rfloor}^2},\quad "
                  r"\rho_m = \min_{S_1..S_m} \max_i \phi_G(S_i)\ (\text{or } \lambda_m/2 \le \rho_m)",
        status="reference",
        terms=("alpha", "rho"),
        bound=rho_form_from_terms,
        trivial=Trivial("the error of always predicting the most likely class",
                        ("majority_error",), _chance_from_terms),
        measured="exact error of the least-squares head on f*, ties broken at random, as for the eigenvalue bound",
        doc=f"{DOC}#theorem-37-form-reference",
        study="overlap", figures=("overlap",),
        notes="Theorem 3.7 (submission numbering, via the secondary reference; the final version's numbering and "
              "constants could not be retrieved) is Õ(α/ρ²) with k >= 2r; the constant and log factor are hidden, "
              "so the form with constant 1 is a reference, not a bound. ρ is exact (enumerated partitions) where "
              "rho_source = exact, else the lower bound λ_m/2 (easy direction of the higher-order Cheeger "
              "inequality), which makes the reference larger.",
    ),
    Theorem(
        id="augmentation_graph.corollary_4_2b",
        paper=SAUNSHI,
        number="Corollary 4.2(b) (via a secondary source)",
        statement=r"L_{clf}(f) \le 32 k \big(L_{spec}(f) - \inf_{F_{lin}} L_{spec}\big),\quad f \in F_{lin} "
                  r"\text{ on Example 1}",
        status="reconstructed",
        terms=("label_dim", "loss", "loss_min_linear"),
        bound=corollary_bound_from_terms,
        trivial=Trivial("1/2, the error of a constant prediction on balanced labels",
                        ("majority_error",), _chance_from_terms),
        assumptions=(LINEAR_CLASS, EXAMPLE_1),
        measured="exact error of the best logistic probe (fitted on the exact law) on the trained linear encoder",
        doc=f"{DOC}#corollary-42b-reconstructed",
        study="hypercube", figures=("hypercube", "frontier"),
        notes="Quoted by a secondary source; the paper's text could not be retrieved, so what L_clf is (0-1 error "
              "of the best linear head here) and the constant 32k are unconfirmed. The infimum is the linear "
              "closed form, so the bound is 0 at the linear minimiser. Its constant is derived for τ ~ U(0, 1] (T's "
              "eigengap 1/4); the rows are judged on the cell's discretised scales (eigengap T_gap, 0.1–0.17). "
              "Informative iff L − inf L < 1/(64k): SGD stops near that edge, the fullbatch study's exact descent "
              "(encoder_class linear_fullbatch) goes below it.",
    ),
    Theorem(
        id="augmentation_graph.lemma_4_1_permutation",
        paper=SAUNSHI,
        number="Lemma 4.1 (via a secondary source)",
        statement=r"\exists \hat f:\ L(\hat f) \le L(f^*),\ L_{clf}(\hat f) \ge \tfrac12 - O\big(\sqrt{d \log N / N}"
                  r"\big)",
        status="reference",
        terms=("d", "n_natural"),
        bound=lemma_reference_from_terms,
        trivial=Trivial("1/2, chance on balanced labels",
                        ("majority_error",), _chance_from_terms),
        assumptions=(DISJOINT,),
        measured="exact error of the best logistic probe on f̂ = the collapsed, permuted perfect minimiser (its loss "
                 "is recorded beside it: equal to f*'s to 1e-10)",
        doc=f"{DOC}#lemma-41-permutation",
        study="hypercube", figures=("hypercube",),
        notes="A lower bound with a hidden constant: the reference is 1/2 − √(d ln N / N) with constant 1, and the "
              "measured error is expected ABOVE it. The construction is the lemma's (collapse, then permute the "
              "natural points); the permutation is one uniform draw from the cell's stream.",
    ),
)
