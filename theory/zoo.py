"""The objective zoo on ground truth: the theorems it reads on every encoder, and the collapse diagnostics.

The zoo trains many objectives (SimCLR, MoCo v2, BYOL, SimSiam, Barlow Twins, VICReg, SwAV, the Arora et al.
logistic loss, autoencoders, a VAE, masked prediction, CLIP) on the latent-class model of
``synthetic_data.contrastive``, rotation / jigsaw pretexts on the grid images of ``synthetic_data.zoo``, Deep
Graph Infomax on its stochastic block model and sequence objectives (permutation LM, ELECTRA, CPC) on the language
chapter's HMM; for the last two this module also holds the exact ground truth (the block model's spectra, the HMM's
conditionals with missing positions and its window-to-future mutual information; no Lemma 4.3 rows there).
Lemma 4.3 of Arora et al. (2019) bounds the mean-classifier loss of ANY encoder f by its unsupervised logistic
loss, so it can be read on every one of them: ``zoo.lemma_4_3_any_encoder`` is that lemma, with the bound
function of ``theory.contrastive`` itself (same terms, same normalisation: base-2 logistic loss, k = 1).

Collapse diagnostics (docs/theory/zoo.md#effective-rank-and-collapse):

* ``effective_rank``: Roy & Vetterli (2007), exp(H(p)) with p_i = s_i / sum_j s_j the normalised singular values
  of the CENTRED embedding matrix (N, d); it lies in [1, min(N, d)], is 1 for rank one and d for an isotropic cloud.
* ``dimension_variance``: the per-dimension variance of the embeddings (ddof = 0).
* ``collapse_diagnostic``: both, plus the mean per-dimension standard deviation of the L2-normalised embeddings
  (1/sqrt(d) for an isotropic cloud, 0 for complete collapse, the quantity the SimSiam paper plots).
"""
from __future__ import annotations

import numpy as np
import torch

from theory import contrastive as ctr
from theory.theorems import Theorem

DOC = "docs/theory/zoo.md"
COLLAPSE_NORMALISED_STD = 0.15   # norm_std (1 for an isotropic cloud, 0 for complete collapse) below this: collapsed
COLLAPSE_RANK = 1.5              # without a ground truth: an effective rank below 1.5, (nearly) one line


def _f64(z) -> torch.Tensor:
    z = torch.as_tensor(z).detach().to(torch.float64).cpu()
    if z.ndim < 2:
        raise ValueError(f"z: expected (..., N, d) embeddings (got shape {tuple(z.shape)})")
    return z


def effective_rank(z) -> np.ndarray:
    """Roy & Vetterli's effective rank exp(-sum_i p_i log p_i), p = s / sum(s), s the singular values of the centred
    embeddings; z (..., N, d), natural log. Returns shape (...). A zero matrix (every embedding equal) gives 1."""
    z = _f64(z)
    s = torch.linalg.svdvals(z - z.mean(-2, keepdim=True))
    tot = s.sum(-1, keepdim=True)
    p = torch.where(tot > 0, s / torch.where(tot > 0, tot, torch.ones_like(tot)), torch.zeros_like(s))
    p0 = torch.zeros_like(p)
    p0[..., 0] = 1.0
    p = torch.where(tot > 0, p, p0)
    h = -(torch.where(p > 0, p * torch.log(torch.where(p > 0, p, torch.ones_like(p))), torch.zeros_like(p))).sum(-1)
    return torch.exp(h).numpy()


def dimension_variance(z) -> np.ndarray:
    """Per-dimension variance (ddof = 0) of z (..., N, d): shape (..., d)."""
    return _f64(z).var(-2, unbiased=False).numpy()


def collapse_rank(n_classes: int | None) -> float:
    """The effective rank below which a representation is dimensionally collapsed: it spreads over fewer
    directions (effective rank, rounded) than the C - 1 that the ground truth's C latent class means span once
    centred, so it cannot hold the class structure. A binary task needs one direction: a supervised encoder of a
    2-class task that maps onto a line has lost nothing (only complete collapse counts there). Without a ground
    truth (``None``): COLLAPSE_RANK, one line."""
    return COLLAPSE_RANK if n_classes is None else max(1.0, n_classes - 1) - 0.5


def collapse_diagnostic(z, n_classes: int | None = None) -> dict:
    """Collapse measures of z (..., N, d), each of shape (...):

    effective_rank; var_min, var_mean, var_max (per-dimension variance); norm_std (mean per-dimension standard
    deviation of z / ||z||, times sqrt(d), so 1 for an isotropic cloud and 0 for complete collapse); collapsed
    (1.0 where norm_std < COLLAPSE_NORMALISED_STD, complete collapse, or effective_rank < collapse_rank(n_classes),
    dimensional collapse relative to the ground truth's C latent classes, else 0.0).
    """
    z = _f64(z)
    var = z.var(-2, unbiased=False)
    u = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    norm_std = (u.var(-2, unbiased=False).sqrt().mean(-1) * z.shape[-1] ** 0.5).numpy()
    er = effective_rank(z)
    return {"effective_rank": er, "var_min": var.amin(-1).numpy(), "var_mean": var.mean(-1).numpy(),
            "var_max": var.amax(-1).numpy(), "norm_std": norm_std,
            "collapsed": ((norm_std < COLLAPSE_NORMALISED_STD) | (er < collapse_rank(n_classes))).astype(np.float64)}


CORRELATION_TOL = 0.01   # correlation_rank counts eigenvalues of the output correlation above this share of the top one


def correlation_rank(z, tol: float = CORRELATION_TOL) -> np.ndarray:
    """The number of eigenvalues of the outputs' correlation matrix (d, d) above tol times the largest, z (..., N,
    d); a constant output dimension counts as uncorrelated noise-free (its row and column are 0, no eigenvalue).
    Unlike the effective rank it does not see scale: Barlow Twins with the paper's lambda at d = 16 gives outputs
    that are copies of a few class directions (correlations up to 0.99), a correlation rank of about 3 where the
    views share C - 1 = 9 class directions. Returns shape (...) as float64."""
    z = _f64(z)
    zc = z - z.mean(-2, keepdim=True)
    sd = zc.pow(2).mean(-2).sqrt()
    u = zc / torch.where(sd > 0, sd, torch.ones_like(sd))[..., None, :]
    corr = u.transpose(-1, -2) @ u / z.shape[-2]
    ev = torch.linalg.eigvalsh(corr)
    top = ev[..., -1:].clamp_min(1e-300)
    return (ev > tol * top).sum(-1).to(torch.float64).numpy()


# --------------------------------------------------------------------------------------------- theorems
_LEMMA = next(t for t in ctr.THEOREMS if t.id == "contrastive.lemma_4_3")

THEOREMS: tuple[Theorem, ...] = (
    Theorem(
        id="zoo.lemma_4_3_any_encoder",
        paper=ctr.PAPER,
        number="Lemma 4.3 (applied to encoders trained by other objectives)",
        statement=r"L_{sup}^{\mu}(f) \le \frac{L_{un}(f) - \tau}{1 - \tau}\ \text{for every encoder } f,"
                  r"\quad \tau = \sum_c \rho(c)^2,\ k = 1",
        status="reconstructed",
        terms=("L_un", "collision_floor", "p_distinct"),
        bound=ctr.bound_from_terms,
        trivial=_LEMMA.trivial,
        assumptions=_LEMMA.assumptions,
        measured=_LEMMA.measured,
        doc=f"{DOC}#lemma-43-on-any-encoder",
        study="two_views", figures=("summary", "frontier"),
        notes="Lemma 4.3 of Arora et al. (2019), as contrastive.lemma_4_3 checks it (the same bound function, "
              "theory.contrastive.bound_from_terms, and the same terms and assumptions), applied to encoders trained "
              "by OTHER objectives (SimCLR, MoCo v2, BYOL, SimSiam, Barlow Twins, VICReg, SwAV, autoencoders, VAE, "
              "MAE, CLIP, rotation and jigsaw pretexts) and to the raw / random / supervised references: the lemma "
              "holds for every f, so nothing about the training objective is assumed. L_un and L_sup^mu are the "
              "base-2 logistic losses of the representation f(x) as the probe sees it (no normalisation): an "
              "objective that is scale-free (BYOL, SimSiam, SimCLR) leaves the scale of f, and so the slack, "
              "arbitrary. The lemma's statement number follows the contrastive chapter (reconstructed, see "
              "docs/theory/contrastive.md).",
    ),
)

__all__ = ["THEOREMS", "effective_rank", "correlation_rank", "dimension_variance", "collapse_diagnostic",
           "COLLAPSE_RANK", "collapse_rank",
           "COLLAPSE_NORMALISED_STD", "sbm_adjacency_spectrum", "sbm_normalised_spectrum", "sbm_eigengap",
           "sbm_top_eigenvectors"]


# The benches of the zoo and the objectives each trains (the names of experiments/objectives.py's registry where
# one exists). Kept here, on the ground floor, so the run code and the figures read one list.
BENCHES: dict[str, tuple[str, ...]] = {
    "two_views": ("simclr", "moco_v2", "byol", "simsiam", "barlow_twins", "vicreg", "swav", "logistic",
                  "byol_nopred", "barlow_twins_paper", "vicreg_paper"),
    "reconstruction": ("autoencoder", "dae", "vae", "mae"),
    "multimodal": ("clip",),
    "pretext": ("rotation", "jigsaw"),
    "graphs": ("dgi",),
    "sequences": ("plm", "electra", "cpc"),
}
REFERENCES: tuple[str, ...] = ("raw", "random", "supervised")
# The graph bench's extra reference: the top-K eigenvectors of the EXPECTED normalised adjacency (an oracle that
# knows the block model; ``sbm_top_eigenvectors``). The graph bench has no Lemma 4.3 rows (no positive pairs of
# i.i.d. points: a node's representation reads its neighbours), see docs/theory/zoo.md#bench-5-graphs.
GRAPH_REFERENCES: tuple[str, ...] = ("spectral",)
CONTROLS: tuple[str, ...] = ("byol_nopred",)   # a deliberately collapsing control (BYOL without its predictor)
# Barlow Twins and VICReg with the papers' constants (lambda = 5e-3; weights 25 / 25 / 1), tuned for an 8192-d
# projector: at the zoo's d = 16 the decorrelation term is too cheap and the outputs copy a few class directions
# (docs/theory/zoo.md#barlow-twins-and-vicreg-at-small-d). Kept beside the d-scaled defaults as a finding.
PAPER_CONSTANTS: tuple[str, ...] = ("barlow_twins_paper", "vicreg_paper")


# --------------------------------------------------------------------------------------------- the block model
# Exact spectral quantities of the stochastic block model of ``synthetic_data.zoo.SBMSpec``: blocks of sizes m_c,
# B = (p_in - p_out) I + p_out 11^T, Z the (N, K) block indicators, no self-loops, so
#   E[A] = Z B Z^T - p_in I.
# Its eigenvalues: those of M^{1/2} B M^{1/2} (M = diag m) minus p_in (K of them, block-constant eigenvectors
# Z M^{-1/2} w), and -p_in (N - K times, vectors summing to 0 within every block).
# The expected normalised adjacency with self-loops (the GCN's propagation matrix at the expected graph)
#   A^ = D^{-1/2} (E[A] + I) D^{-1/2},  d_c = (B m)_c + 1 - p_in,
# has the block-constant eigenvalues of S = D_c^{-1/2} (M^{1/2} B M^{1/2} + (1 - p_in) I) D_c^{-1/2} (eigenvectors
# Z M^{-1/2} w) and (1 - p_in) / d_c with multiplicity m_c - 1 (within-block contrasts).


def _block_matrix(K: int, p_in: float, p_out: float) -> np.ndarray:
    return (p_in - p_out) * np.eye(K) + p_out * np.ones((K, K))


def sbm_adjacency_spectrum(sizes, p_in: float, p_out: float) -> np.ndarray:
    """All N eigenvalues of E[A] = Z B Z^T - p_in I, in decreasing order (float64). Equal blocks of size m:
    m (p_in + (K - 1) p_out) - p_in once, m (p_in - p_out) - p_in (K - 1 times), -p_in (N - K times)."""
    m = np.asarray(sizes, dtype=np.float64)
    K, N = m.size, int(m.sum())
    r = np.sqrt(m)
    block = np.linalg.eigvalsh(r[:, None] * _block_matrix(K, p_in, p_out) * r[None, :]) - p_in
    return np.sort(np.concatenate([block, np.full(N - K, -p_in)]))[::-1]


def sbm_eigengap(eigenvalues, k: int) -> float:
    """lambda_k - lambda_{k+1} of a decreasing spectrum (1-based k): for E[A] with equal blocks and k = K it is
    m (p_in - p_out), the separation of the block eigenvalues from the bulk."""
    ev = np.asarray(eigenvalues, dtype=np.float64)
    return float(ev[k - 1] - ev[k])


def _normalised_parts(sizes, p_in, p_out):
    m = np.asarray(sizes, dtype=np.float64)
    B = _block_matrix(m.size, p_in, p_out)
    d = B @ m + 1 - p_in
    r = np.sqrt(m)
    S = (r[:, None] * B * r[None, :] + (1 - p_in) * np.eye(m.size)) / np.sqrt(d[:, None] * d[None, :])
    return m, S, (1 - p_in) / d


def sbm_normalised_spectrum(sizes, p_in: float, p_out: float) -> np.ndarray:
    """All N eigenvalues of the expected normalised adjacency D^{-1/2}(E[A] + I)D^{-1/2}, decreasing; the top one
    is 1 (eigenvector D^{1/2} 1)."""
    m, S, within = _normalised_parts(sizes, p_in, p_out)
    rest = np.repeat(within, (m - 1).astype(np.int64))
    return np.sort(np.concatenate([np.linalg.eigvalsh(S), rest]))[::-1]


def sbm_top_eigenvectors(labels, sizes, p_in: float, p_out: float, k: int) -> np.ndarray:
    """(N, k) orthonormal top-k eigenvectors of the expected normalised adjacency, node i in block labels[i]:
    Z M^{-1/2} W_k with W_k the top-k eigenvectors of S (block-constant). Refused (ValueError) unless k <= K and
    the k-th block eigenvalue exceeds every within-block one (then the top-k eigenspace is block-constant; with
    equal blocks this holds whenever p_in > p_out)."""
    m, S, within = _normalised_parts(sizes, p_in, p_out)
    K = m.size
    if not 1 <= k <= K:
        raise ValueError(f"k: must be in [1, K = {K}], got {k}")
    w, V = np.linalg.eigh(S)
    w, V = w[::-1], V[:, ::-1]
    if not w[k - 1] > within[m > 1].max(initial=-np.inf):
        raise ValueError("k: the top-k eigenspace of the expected normalised adjacency is not block-constant")
    y = np.asarray(labels, dtype=np.int64)
    return V[y, :k] / np.sqrt(m[y])[:, None]


# --------------------------------------------------------------------------------------------- the HMM (sequences)
# Exact conditionals of the language chapter's HMM (synthetic_data.language.HMM: init, trans, emit) with ANY set of
# observed positions: the sequence bench's permutation LM predicts a position from a random subset of the others,
# ELECTRA's generator several masked positions from the rest. Forward-backward where an unobserved position
# contributes the factor 1 (its word summed out), normalised at every step.


def hmm_conditional(hmm, words, visible, pos) -> np.ndarray:
    """p(w_pos = . | the words at the visible positions), shape (n, V), for each row of words (n, L) int, visible
    (n, L) bool and pos (n,) int (visible[i, pos[i]] is ignored: the target is never observed). All visible but
    pos: ``hmm.masked_word``; none visible: the stationary word law init @ emit (init is stationary)."""
    w = np.asarray(words, dtype=np.int64)
    vis = np.asarray(visible, dtype=bool).copy()
    n, L = w.shape
    pos = np.broadcast_to(np.asarray(pos, dtype=np.int64), (n,))
    vis[np.arange(n), pos] = False
    e = np.where(vis[:, :, None], hmm.emit.T[w], 1.0)                        # (n, L, K) evidence factors
    alpha = np.empty((n, L, hmm.n_states))
    f = np.broadcast_to(hmm.init, (n, hmm.n_states)).copy()
    for t in range(L):
        alpha[:, t] = f
        a = f * e[:, t]
        f = (a / a.sum(1, keepdims=True)) @ hmm.trans
    beta = np.empty_like(alpha)
    b = np.ones((n, hmm.n_states))
    for t in range(L - 1, -1, -1):
        beta[:, t] = b
        b = (b * e[:, t]) @ hmm.trans.T
        b /= b.sum(1, keepdims=True)
    post = alpha[np.arange(n), pos] * beta[np.arange(n), pos]
    p = post @ hmm.emit
    return p / p.sum(1, keepdims=True)


def hmm_future_mi(hmm, words, k: int) -> tuple[float, float]:
    """I(s; w_{L+k}) in nats for windows s of the stationary process, k >= 1 steps after the window's last word:
    H(init @ emit) - E_s H(p(w_{L+k} | s)), p(w_{L+k} | s) = P(h_{L+1} | s) trans^(k-1) emit, exact for each s and
    averaged over the rows of ``words`` (n, L), a sample of s. Returns (estimate, its standard error). CPC's
    InfoNCE bound log N - L_k is a lower bound on I(f(s); g(w_{L+k})) <= I(s; w_{L+k})."""
    def ent(p):
        return -(p * np.log(np.clip(p, 1e-300, None))).sum(-1)
    q = hmm.next_state(words) @ np.linalg.matrix_power(hmm.trans, k - 1) @ hmm.emit
    h = ent(hmm.init @ hmm.emit) - ent(q)
    return float(h.mean()), float(h.std(ddof=1) / np.sqrt(h.size)) if h.size > 1 else 0.0
