"""Language models of the language chapter: batched softmax LMs, their objectives, and reference models.

Softmax LM (Saunshi et al. 2021, Sec. 3): p_f(s) = softmax(Phi^T f(s)), f(s) in R^d, Phi in R^{d x V}. G models
(seeds x learning rates) live in one set of tensors with a leading model axis, like ``experiments.encoders``; the
transformer is batched by hand along that axis (einsum / bmm over G), so no per-seed loop or vmap is needed.

Input vocabulary: the V words plus one MASK token (index V), used by the masked LM. Parameter layouts, with
e = embed_dim, w = width, L = context length:

* ``mlp``: E (G, V+1, e); W1 (G, L e, w), b1 (G, 1, w), W2 (G, w, d), b2 (G, 1, d);
  f(s) = relu([E_{s_1}, ..., E_{s_L}] W1 + b1) W2 + b2 (the output bias lets f express the unigram law).
* ``transformer``: E (G, V+1, e), P (G, L, e); per block i (pre-LayerNorm, full attention over the window):
  ``a{i}_g``/``a{i}_b`` (G, 1, e), ``qkv{i}`` (G, e, 3e), ``o{i}`` (G, e, e), ``m{i}_g``/``m{i}_b`` (G, 1, e),
  ``f{i}_1`` (G, e, w), ``f{i}_c1`` (G, 1, w), ``f{i}_2`` (G, w, e), ``f{i}_c2`` (G, 1, e); then ``lnf_g``/``lnf_b``
  (G, 1, e), ``Wf`` (G, e, d), ``bf`` (G, 1, d) read out at one position (the last for next-word prediction, the
  masked one for the masked LM).
* ``Phi`` (G, d, V): a trained parameter, or a fixed tensor kept outside the trained dict (frozen modes).

Objectives live in ``experiments/objectives.py`` (one value per model, mean over the batch): "next_word_xent"
(-log p_f(s)_w, natural log; the masked LM uses it on the masked position's word) and "quad" (the paper's code:
-f(s) . phi_w + 1/2 ||Phi^T f(s)||^2, the log-partition replaced by a quadratic).

Reference models (numpy, float64) sweep epsilon = E_s KL(p*_s || p_s) in a controlled way: logit noise, an
adversarial exponential tilt of p* along a task's v, and smoothed k-gram models fitted on sampled text.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from experiments.encoders import ENCODERS

_MLP = ENCODERS["mlp"].forward  # the suite's batched relu(x W1 + b1) W2 with its lean backward


# ------------------------------------------------------------------------------------------------ init
def _u(shape, fan_in: int, gen: torch.Generator) -> Tensor:
    """U(+-1/sqrt(fan_in)), nn.Linear's default, drawn in float64 from ``gen`` alone."""
    return (2 * torch.rand(shape, generator=gen, dtype=torch.float64) - 1) / math.sqrt(fan_in)


def _n(shape, std: float, gen: torch.Generator) -> Tensor:
    return torch.randn(shape, generator=gen, dtype=torch.float64) * std


def _init_one(arch: str, V: int, L: int, d: int, e: int, w: int, n_layers: int, learn_phi: bool,
              gen: torch.Generator) -> dict[str, Tensor]:
    # The draw order is part of the contract: it fixes which numbers of the stream become which parameter.
    p = {"E": _n((V + 1, e), 1.0, gen)}
    if arch == "mlp":
        p.update(W1=_u((L * e, w), L * e, gen), b1=_u((1, w), L * e, gen), W2=_u((w, d), w, gen),
                 b2=_u((1, d), w, gen))
    else:
        p["P"] = _n((L, e), 1.0, gen)
        one, zero = torch.ones(1, e, dtype=torch.float64), torch.zeros(1, e, dtype=torch.float64)
        for i in range(n_layers):
            p.update({f"a{i}_g": one.clone(), f"a{i}_b": zero.clone(),
                      f"qkv{i}": _u((e, 3 * e), e, gen), f"o{i}": _u((e, e), e, gen),
                      f"m{i}_g": one.clone(), f"m{i}_b": zero.clone(),
                      f"f{i}_1": _u((e, w), e, gen), f"f{i}_c1": _u((1, w), e, gen),
                      f"f{i}_2": _u((w, e), w, gen), f"f{i}_c2": _u((1, e), w, gen)})
        p.update(lnf_g=one.clone(), lnf_b=zero.clone(),
                 Wf=_u((e, d), e, gen), bf=_u((1, d), e, gen))
    if learn_phi:
        p["Phi"] = _u((d, V), d, gen)
    return p


class LM:
    """One LM family: architecture, sizes and readout position; params are plain dicts with a leading axis G."""

    def __init__(self, arch: str, V: int, L: int, d: int, embed_dim: int, width: int, n_layers: int = 1,
                 n_heads: int = 2, readout: int = -1):
        if arch not in ("mlp", "transformer"):
            raise ValueError(f"arch: unknown {arch!r}; known: mlp, transformer")
        if embed_dim % n_heads:
            raise ValueError(f"n_heads: {n_heads} does not divide embed_dim = {embed_dim}")
        self.arch, self.V, self.L, self.d = arch, V, L, d
        self.e, self.w, self.n_layers, self.n_heads = embed_dim, width, n_layers, n_heads
        self.readout = readout % L
        self.mask_token = V

    def init(self, gens: list[torch.Generator], learn_phi: bool, device: str = "cpu") -> dict[str, Tensor]:
        """G = len(gens) models, model g drawing only from gens[g]; float32 leaf tensors (G, ...)."""
        per = [_init_one(self.arch, self.V, self.L, self.d, self.e, self.w, self.n_layers, learn_phi, g)
               for g in gens]
        return {k: torch.stack([p[k] for p in per]).to(device=device, dtype=torch.float32).contiguous()
                for k in per[0]}

    # ---- forward
    def _embed(self, E: Tensor, words: Tensor) -> Tensor:
        """(G, N, L, e) from shared words (N, L) or per-model words (G, N, L)."""
        if words.ndim == 2:
            return E[:, words]
        g = torch.arange(E.shape[0], device=E.device)[:, None, None]
        return E[g, words]

    def features(self, params: dict[str, Tensor], words: Tensor) -> Tensor:
        """f(s): (G, N, d) for words (N, L) shared by all models or (G, N, L) per model."""
        x = self._embed(params["E"], words)
        G, N = x.shape[:2]
        if self.arch == "mlp":
            h = _MLP({"W1": params["W1"], "b1": params["b1"], "W2": params["W2"]}, x.reshape(G, N, -1))
            return h + params["b2"]
        x = x + params["P"][:, None]
        for i in range(self.n_layers):
            x = x + self._attention(params, i, _ln(x, params[f"a{i}_g"], params[f"a{i}_b"]))
            h = _ln(x, params[f"m{i}_g"], params[f"m{i}_b"]).reshape(G, N * self.L, self.e)
            h = torch.relu(torch.baddbmm(params[f"f{i}_c1"], h, params[f"f{i}_1"]))
            x = x + torch.baddbmm(params[f"f{i}_c2"], h, params[f"f{i}_2"]).reshape(G, N, self.L, self.e)
        z = _ln(x[:, :, self.readout], params["lnf_g"], params["lnf_b"])
        return torch.baddbmm(params["bf"], z, params["Wf"])

    def _attention(self, params, i: int, x: Tensor) -> Tensor:
        G, N, L, e = x.shape
        h = self.n_heads
        qkv = torch.bmm(x.reshape(G, N * L, e), params[f"qkv{i}"]).reshape(G, N, L, 3, h, e // h)
        q, k, v = (t.transpose(2, 3) for t in qkv.unbind(3))            # (G, N, h, L, e/h)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(e // h), dim=-1)
        out = (att @ v).transpose(2, 3).reshape(G, N * L, e)
        return torch.bmm(out, params[f"o{i}"]).reshape(G, N, L, e)

    @staticmethod
    def logits(f: Tensor, Phi: Tensor) -> Tensor:
        """Phi^T f(s): (G, N, V) from f (G, N, d) and Phi (G, d, V)."""
        return torch.bmm(f, Phi)


def _ln(x: Tensor, g: Tensor, b: Tensor) -> Tensor:
    """LayerNorm over the last axis with per-model gain and bias (G, 1, e), for x (G, ..., e)."""
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (x.shape[-1],)
    return F.layer_norm(x, x.shape[-1:]) * g.reshape(shape) + b.reshape(shape)


# ------------------------------------------------------------------------------------ reference models
def noise_direction(words: np.ndarray, R: np.ndarray, skip: int | None = None) -> np.ndarray:
    """g(s) = sum_i R[i, s_i] / sqrt(#positions): a fixed random function of the context, (n, V).

    R (L, V, V) ~ N(0, 1) makes each g(s)_w standard normal; the same s always gets the same g, so the perturbed
    model is an LM (a function of s). ``skip``: a position left out (the masked word must not leak into g).
    """
    pos = [i for i in range(words.shape[1]) if i != skip]
    g = sum(R[i][words[:, i]] for i in pos)
    return g / math.sqrt(len(pos))


def logit_noise(p_star: np.ndarray, g: np.ndarray, eta: float) -> np.ndarray:
    """softmax(log p*_s + eta g(s)), (n, V); eta = 0 returns p* itself (epsilon = 0)."""
    with np.errstate(divide="ignore"):
        z = np.log(p_star) + eta * g
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def tilt(p_star: np.ndarray, v: np.ndarray, sign: np.ndarray, eta: float) -> np.ndarray:
    """p ∝ p*_s exp(-eta sign(s) v): moves v . p against the label direction ``sign`` (n,) at least KL cost.

    With sign = sign(v . p*_s + b) this pushes every margin towards the wrong side, the adversarial direction for
    deterministic labels, whose plug-in excess then grows like sqrt(epsilon).
    """
    z = np.log(np.maximum(p_star, 1e-300)) - eta * sign[:, None] * v[None, :]
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z) * (p_star > 0)
    return p / p.sum(axis=1, keepdims=True)


class KGram:
    """Add-alpha smoothed k-gram: p(w | last k words) = (count(ctx, w) + alpha) / (count(ctx) + alpha V).

    Fitted on every (k + 1)-word window of sampled documents (the stationary HMM makes every window a draw of the
    same law). Order 0 is the smoothed unigram; a context never seen falls back to the uniform law.
    """

    def __init__(self, docs: np.ndarray, order: int, vocab: int, alpha: float):
        if order < 0 or order >= docs.shape[1]:
            raise ValueError(f"order: must be in [0, {docs.shape[1] - 1}] for documents of {docs.shape[1]} words")
        self.order, self.V, self.alpha = order, vocab, alpha
        n, T = docs.shape
        wins = np.stack([docs[:, t - order:t + 1] for t in range(order, T)], axis=1).reshape(-1, order + 1)
        keys, counts = np.unique(self._code(wins[:, :-1]) * vocab + wins[:, -1], return_counts=True)
        self.ctx = np.unique(keys // vocab)
        table = np.zeros((len(self.ctx), vocab))
        table[np.searchsorted(self.ctx, keys // vocab), keys % vocab] = counts
        self.table = table

    def _code(self, words: np.ndarray) -> np.ndarray:
        code = np.zeros(words.shape[0], dtype=np.int64)
        for i in range(words.shape[1]):
            code = code * self.V + words[:, i]
        return code

    def predict(self, contexts: np.ndarray) -> np.ndarray:
        """p(. | s) for contexts (n, L >= order), from their last ``order`` words; (n, V) float64."""
        code = self._code(contexts[:, contexts.shape[1] - self.order:])
        i = np.clip(np.searchsorted(self.ctx, code), 0, max(len(self.ctx) - 1, 0))
        seen = (self.ctx[i] == code) if len(self.ctx) else np.zeros(len(code), bool)
        counts = np.where(seen[:, None], self.table[i], 0.0)
        p = counts + self.alpha
        return p / p.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------------------ Baum-Welch
def fit_hmm_em(docs: np.ndarray, n_states: int, vocab: int, rng: np.random.Generator, restarts: int,
               restart_iters: int, max_iter: int, tol: float, restart_docs: int | None = None):
    """An HMM with ``n_states`` states fitted to documents (n_docs, T) by Baum-Welch (hmmlearn's CategoricalHMM).

    ``restarts`` random initialisations (Dirichlet(1) rows of trans and emit drawn from ``rng``) each run ``restart_iters`` EM steps;
    the one of highest log-likelihood then runs to convergence (gain < ``tol`` nats of the corpus, at most
    ``max_iter`` steps): EM from one start lands in a poor local optimum for near-deterministic chains. The restarts
    see only the first ``restart_docs`` documents (all by default): choosing a basin needs far less text than
    converging in it. Returns
    (trans (K, K), emit (K, V), EM steps taken in all, log-likelihood per token). The start law is not returned: the
    contexts are windows of a stationary process, so the LM built from the fit uses the stationary law of its trans.
    """
    from hmmlearn.hmm import CategoricalHMM  # the only user of hmmlearn: imported where it is needed

    X = np.asarray(docs, dtype=np.int64).reshape(-1, 1)
    lengths = [docs.shape[1]] * docs.shape[0]
    sub = docs[:docs.shape[0] if restart_docs is None else max(1, restart_docs)]
    Xs, ls = sub.reshape(-1, 1), [sub.shape[1]] * sub.shape[0]

    def model(**kw):
        return CategoricalHMM(n_components=n_states, n_features=vocab, implementation="scaling", **kw)

    starts = []
    for _ in range(restarts):
        # hmmlearn's own start has a uniform trans, so only the emissions break the symmetry; a random trans too
        # reaches the right basin far more often on near-deterministic chains
        m = model(n_iter=restart_iters, tol=0.0, init_params="")
        m.startprob_ = np.full(n_states, 1.0 / n_states)
        m.transmat_ = rng.dirichlet(np.ones(n_states), size=n_states)
        m.emissionprob_ = rng.dirichlet(np.ones(vocab), size=n_states)
        m.fit(Xs, ls)
        starts.append((m.score(Xs, ls), m))
    best = max(starts, key=lambda c: c[0])[1]
    m = model(n_iter=max_iter, tol=tol, init_params="")
    m.startprob_, m.transmat_, m.emissionprob_ = best.startprob_, best.transmat_, best.emissionprob_
    m.fit(X, lengths)
    steps = restarts * restart_iters + m.monitor_.iter
    return m.transmat_.copy(), m.emissionprob_.copy(), steps, float(m.score(X, lengths)) / X.shape[0]
