"""Batched training objectives: each returns one loss per model, shape (G,).

Every input carries a leading model axis G; model g's loss depends only on
slice g of every input, so ``loss.sum()`` gives independent gradients per model.
Each loss is a MEAN over the batch (and, for NT-Xent, over the 2B anchors).

Normalisations (papers differ by factors of 2 and by the base of the log):

* "logistic", "hinge", "block": Arora et al. (2019). The ℓ on the margin
  vector is ``theory.contrastive.LOSSES`` (logistic = log₂(1 + Σᵢ exp(−vᵢ)),
  BASE 2, so ℓ(0) = 1 for k = 1; hinge = max(0, 1 + maxᵢ(−vᵢ))). It is not
  redefined here so that the trained objective is the one the theory bounds.
* "ntxent": SimCLR (Chen et al. 2020), NATURAL log, mean over the 2B anchors.
* "supervised_ce": cross-entropy, natural log, mean over the batch; it is also the language chapter's
  next-word cross-entropy (the classes are the vocabulary), registered as "next_word_xent".
* "quad": Saunshi, Malladi & Arora (2021)'s Quad objective −f(s)ᵀφ_w + ½‖Φᵀf(s)‖², mean over the batch; no
  log, no factor beyond the paper's ½ (its expectation is ``theory.language_softmax.quad_loss``).
* "mse": squared error MEANED over the batch and the output coordinates (the self-prediction pretext loss
  E‖X2 − ψ(X1)‖² divided by the dimension, no ½), or over the masked coordinates only.
The zoo's objectives (natural log everywhere, every loss a MEAN over the batch; docs/theory/zoo.md#the-objectives):

* "infonce_queue" / "moco_v2": MoCo v2 (He et al. 2020; Chen, Fan, Girshick & He 2020), InfoNCE of a query
  against its key and a queue of K negatives, cosine logits / T (T = 0.2 in v2). At equal embeddings: log(K + 1).
* "byol": BYOL (Grill et al. 2020), 2 - 2 cos(q(z), sg(z')) summed over the two directions (the paper's
  L + L~), each direction meaned over the batch; the target is detached here.
* "simsiam": SimSiam (Chen & He 2021), -1/2 [cos(p1, sg z2) + cos(p2, sg z1)] (the paper's pseudocode).
* "barlow_twins": Zbontar et al. (2021), C = cross-correlation of batch-standardised views (biased variance,
  as the official code's BatchNorm1d(affine=False)), L = sum_i (1 - C_ii)^2 + lambda sum_{i!=j} C_ij^2,
  lambda = 5e-3. Identical decorrelated views give 0 (up to the eps in the standardisation).
* "vicreg": Bardes, Ponce & LeCun (2022), 25 MSE + 25 variance + 1 covariance, eps = 1e-4, as the official
  code: MSE meaned over entries, the variance hinge meaned over dimensions and AVERAGED over the two branches,
  the off-diagonal covariance squares summed / d and SUMMED over the two branches (unbiased (N - 1) moments).
* "swav": SwAV (Caron et al. 2020), swapped prediction of Sinkhorn codes (eps = 0.05, 3 iterations) of cosine
  scores against prototypes, -1/2 mean_b sum_k [q2 log softmax(s1/T) + q1 log softmax(s2/T)], T = 0.1.
* "vae": the negative ELBO of a Gaussian VAE (Kingma & Welling 2014), per example, in nats; the decoder is
  N(x_hat, sigma2 I) with fixed sigma2 (1 by default): reconstruction (1/2sigma2)||x - x_hat||^2 +
  (D/2) log(2 pi sigma2) plus KL(N(mu, diag e^logvar) || N(0, I)). ``vae_terms`` gives both parts.
* "autoencoder", "dae", "mae": the existing ``mse`` (no 1/2, meaned over the coordinates; MAE: over the masked
  coordinates only, He et al. 2022).
* "spectral": HaoChen et al. (2021)'s spectral contrastive loss, their unbiased batch estimator (no log).
* "clip": CLIP (Radford et al. 2021), symmetric InfoNCE between two modalities, natural log, learned scale.
* "dgi": Deep Graph Infomax (Velickovic et al. 2019), binary cross-entropy of a bilinear discriminator.
* "plm" / "permutation_lm", "electra", "cpc": the zoo's sequence objectives on the language chapter's HMM
  (XLNet's permutation LM, ELECTRA's generator + 50 x discriminator, CPC's InfoNCE per future step).
* "rotation", "jigsaw": pretext classification (Gidaris et al. 2018; Noroozi & Favaro 2016), the cross-entropy
  ``supervised_ce`` of a head that names the transformation applied to the image (4 rotations, 24 jigsaw
  permutations); "masked_lm" / "mlm": the cross-entropy ``supervised_ce`` over the vocabulary of the word at
  the masked position (the language chapter's masked LM, Devlin et al. 2019).

``OBJECTIVES`` maps every objective the suite trains, under its usual name, to the function that computes it
(several names share one function where the loss is the same and only its inputs differ). The chapters call the
functions directly; the registry is the index a reader or a plug-in looks a name up in.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from theory.contrastive import LOSSES

__all__ = [
    "margins", "logistic", "hinge", "block", "ntxent", "supervised_ce", "quad", "mse",
    "infonce_queue", "byol", "simsiam", "barlow_twins", "vicreg_terms", "vicreg", "sinkhorn", "swav",
    "vae_terms", "vae", "spectral", "clip", "dgi_readout", "dgi",
    "permutation_lm", "electra_terms", "electra", "cpc_terms", "cpc", "infonce",
    "OBJECTIVES",
]


def _check(name: str, t: Tensor, ndim: int, lead: tuple[int, ...], last: int | None = None) -> None:
    """Raise ValueError unless ``t`` has ``ndim`` dims, leading dims ``lead`` and last dim ``last``."""
    if t.ndim != ndim or tuple(t.shape[: len(lead)]) != lead or (last is not None and t.shape[-1] != last):
        want = ", ".join(str(s) for s in lead) + (", ..." if ndim > len(lead) else "")
        raise ValueError(f"{name}: expected {ndim}-d tensor of shape ({want}) and last dim {last} (got {tuple(t.shape)})")


def margins(z: Tensor, z_pos: Tensor, z_neg: Tensor) -> Tensor:
    """Contrastive margins vᵢ = f(x)ᵀ(f(x⁺) − f(x⁻ᵢ)).

    Args:
        z: (G, B, d) anchors f(x); z_pos: (G, B, d) positives f(x⁺);
        z_neg: (G, B, k, d) negatives f(x⁻ᵢ).

    Returns:
        (G, B, k).
    """
    _check("z", z, 3, ())
    G, B, d = z.shape
    _check("z_pos", z_pos, 3, (G, B), d)
    _check("z_neg", z_neg, 4, (G, B), d)
    pos = (z * z_pos).sum(-1, keepdim=True)  # (G, B, 1)
    # Elementwise product + sum beats einsum/bmm here: the per-anchor matrices are tiny (k x d).
    neg = (z.unsqueeze(2) * z_neg).sum(-1)  # (G, B, k)
    return pos - neg


def _arora(base: str, v: Tensor) -> Tensor:
    if base not in ("logistic", "hinge"):
        raise ValueError(f"base: must be 'logistic' or 'hinge' (got {base!r})")
    return LOSSES[base](v).mean(-1)


def logistic(z: Tensor, z_pos: Tensor, z_neg: Tensor) -> Tensor:
    """Arora et al. logistic loss with k negatives, mean over the batch.

    loss_g = mean_b log₂(1 + Σᵢ exp(−v_{g,b,i})), vᵢ = f(x)ᵀ(f(x⁺) − f(x⁻ᵢ)).

    Args:
        z: (G, B, d); z_pos: (G, B, d); z_neg: (G, B, k, d).

    Returns:
        (G,). At z = z_pos = z_neg it equals log₂(k + 1).
    """
    return _arora("logistic", margins(z, z_pos, z_neg))


def hinge(z: Tensor, z_pos: Tensor, z_neg: Tensor) -> Tensor:
    """Arora et al. hinge loss with k negatives, mean over the batch.

    loss_g = mean_b max(0, 1 + maxᵢ(−v_{g,b,i})), vᵢ = f(x)ᵀ(f(x⁺) − f(x⁻ᵢ)).

    Args:
        z: (G, B, d); z_pos: (G, B, d); z_neg: (G, B, k, d).

    Returns:
        (G,). At z = z_pos = z_neg it equals 1.
    """
    return _arora("hinge", margins(z, z_pos, z_neg))


def block(z: Tensor, z_pos: Tensor, z_neg: Tensor, base: str = "logistic") -> Tensor:
    """Arora et al. (2019, Sec. 6.3) block contrastive loss, mean over the batch.

    loss_g = mean_b ℓ( f(x)ᵀ( (1/b) Σⱼ f(x⁺ⱼ) − (1/b) Σⱼ f(x⁻ⱼ) ) ),
    with ℓ = LOSSES[base] on a 1-vector (the paper's one negative block, all b
    negatives drawn from one class). With k negative blocks the margin vector
    has one entry per block: vᵢ = f(x)ᵀ(mean⁺ − meanᵢ⁻). b = 1 recovers the
    plain loss.

    Args:
        z: (G, B, d) anchors.
        z_pos: (G, B, b, d) positive block.
        z_neg: (G, B, b, d) one negative block, or (G, B, k, b, d) k blocks.
        base: "logistic" or "hinge".

    Returns:
        (G,). At z = z_pos = z_neg it equals the base loss at v = 0
        (logistic: log₂(k + 1), hinge: 1).
    """
    _check("z", z, 3, ())
    G, B, d = z.shape
    _check("z_pos", z_pos, 4, (G, B), d)
    if z_neg.ndim == 4:
        _check("z_neg", z_neg, 4, (G, B), d)
        neg_mean = z_neg.mean(2, keepdim=True)  # (G, B, 1, d)
    else:
        _check("z_neg", z_neg, 5, (G, B), d)
        neg_mean = z_neg.mean(3)  # (G, B, k, d)
    return _arora(base, margins(z, z_pos.mean(2), neg_mean))


def ntxent(z1: Tensor, z2: Tensor, temperature: float | Tensor) -> Tensor:
    """SimCLR NT-Xent (InfoNCE with in-batch negatives), natural log.

    The 2B embeddings u = [z1; z2] are L2-normalised, logits s_ij = cos(u_i, u_j)/T.
    Anchor i's positive is its other view (i ± B); its 2B − 2 negatives are the
    other embeddings, self excluded:
        loss_g = (1/2B) Σᵢ [ −s_{i,pos(i)} + log Σ_{j≠i} exp(s_ij) ].
    Computed as masked logits (self-similarity set to −inf) + cross-entropy, so it
    stays finite in float32 at small T (logits up to 1/T are handled by
    logsumexp, never exponentiated raw).

    Args:
        z1, z2: (G, B, d) the two views, row b of z1 pairs with row b of z2.
        temperature: float, or (G,) tensor so that temperature variants batch.

    Returns:
        (G,). If all 2B embeddings are equal it equals log(2B − 1).
    """
    _check("z1", z1, 3, ())
    G, B, d = z1.shape
    _check("z2", z2, 3, (G, B), d)
    if B < 2:
        raise ValueError(f"z1: need batch size B >= 2 for in-batch negatives (got {B})")
    t = torch.as_tensor(temperature, dtype=z1.dtype, device=z1.device)
    if t.ndim == 0:
        t = t.expand(G)
    if t.shape != (G,):
        raise ValueError(f"temperature: must be a float or a ({G},) tensor (got shape {tuple(t.shape)})")
    if not bool((t > 0).all()):
        raise ValueError(f"temperature: must be > 0 (got {t.tolist()})")
    u = F.normalize(torch.cat([z1, z2], dim=1), dim=-1)  # (G, 2B, d)
    logits = torch.bmm(u, u.transpose(1, 2)) / t.view(G, 1, 1)
    eye = torch.eye(2 * B, dtype=torch.bool, device=z1.device)
    logits = logits.masked_fill(eye, float("-inf"))
    idx = torch.arange(2 * B, device=z1.device)
    target = (idx + B) % (2 * B)
    ce = F.cross_entropy(logits.reshape(G * 2 * B, 2 * B), target.repeat(G), reduction="none")
    return ce.view(G, 2 * B).mean(1)


def supervised_ce(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy of a supervised reference model, natural log.

    Args:
        logits: (G, B, C) class scores; y: (G, B) integer labels in [0, C).

    Returns:
        (G,) mean over the batch of −log softmax(logits)[y].
    """
    _check("logits", logits, 3, ())
    G, B, C = logits.shape
    _check("y", y, 2, (G, B))
    ce = F.cross_entropy(logits.reshape(G * B, C), y.reshape(G * B).long(), reduction="none")
    return ce.view(G, B).mean(1)


def quad(f: Tensor, Phi: Tensor, target: Tensor) -> Tensor:
    """Quad: mean over the batch of −f(s)ᵀφ_w + ½‖Φᵀf(s)‖², with φ_w the column of Φ for the observed word w.

    Args:
        f: (G, B, d) context features; Phi: (G, d, V) output word embeddings; target: (G, B) word ids.

    Returns:
        (G,). Its expectation over w ~ p*_s is E_s[−f(s)ᵀΦp*_s + ½‖Φᵀf(s)‖²] = ``theory.language_softmax.quad_loss``.
    """
    _check("f", f, 3, ())
    G, B, d = f.shape
    _check("Phi", Phi, 3, (G, d))
    _check("target", target, 2, (G, B))
    phi_w = torch.gather(Phi.transpose(1, 2), 1, target[..., None].expand(-1, -1, d))   # (G, B, d)
    return (-(f * phi_w).sum(-1) + 0.5 * torch.bmm(f, Phi).pow(2).sum(-1)).mean(1)


def mse(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean squared error per entry; with ``mask`` only the masked entries count (masked-coordinate prediction).

    Args:
        pred, target: (G, B, D); mask: None or (G, B, D) of 0/1 weights.

    Returns:
        (G,). Without a mask: mean over b and j of (pred − target)², i.e. mean_b ‖pred_b − target_b‖² / D (no ½).
        With a mask: Σ mask·err / Σ mask (0 where a model has no masked entry).
    """
    _check("pred", pred, 3, ())
    _check("target", target, 3, tuple(pred.shape[:2]), pred.shape[-1])
    err = (pred - target) ** 2
    if mask is None:
        return err.mean(dim=(1, 2))
    _check("mask", mask, 3, tuple(pred.shape[:2]), pred.shape[-1])
    return (err * mask).sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp_min(1.0)


def _cos(a: Tensor, b: Tensor) -> Tensor:
    return (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1)


def infonce_queue(q: Tensor, k: Tensor, queue: Tensor, temperature: float = 0.2) -> Tensor:
    """MoCo v2's InfoNCE: query q against its key k (positive) and the queue's K keys (negatives), natural log.

    logits_b = [cos(q_b, k_b), cos(q_b, queue_1), ..., cos(q_b, queue_K)] / T; loss = mean_b CE(logits_b, 0).
    The key and the queue are detached (they come from the momentum encoder).

    Args:
        q: (G, B, d) queries; k: (G, B, d) keys; queue: (G, K, d) past keys (any norm; normalised here).
        temperature: T > 0.

    Returns:
        (G,). At equal embeddings every logit is 1/T and the loss is log(K + 1).
    """
    _check("q", q, 3, ())
    G, B, d = q.shape
    _check("k", k, 3, (G, B), d)
    _check("queue", queue, 3, (G,), d)
    if not temperature > 0:
        raise ValueError(f"temperature: must be > 0 (got {temperature})")
    qn, kn, Qn = F.normalize(q, dim=-1), F.normalize(k.detach(), dim=-1), F.normalize(queue.detach(), dim=-1)
    pos = (qn * kn).sum(-1, keepdim=True)                          # (G, B, 1)
    neg = torch.bmm(qn, Qn.transpose(1, 2))                        # (G, B, K)
    logits = torch.cat([pos, neg], dim=-1) / temperature
    return (torch.logsumexp(logits, -1) - logits[..., 0]).mean(1)


def byol(p1: Tensor, p2: Tensor, t1: Tensor, t2: Tensor) -> Tensor:
    """BYOL: mean_b [(2 - 2 cos(p1, sg t2)) + (2 - 2 cos(p2, sg t1))], the paper's symmetrised L + L~.

    Args:
        p1, p2: (G, B, d) online predictions q(z) of views 1 and 2; t1, t2: (G, B, d) target projections.

    Returns:
        (G,) in [0, 8]; 0 where every prediction points along the other view's target.
    """
    _check("p1", p1, 3, ())
    G, B, d = p1.shape
    for name, t in (("p2", p2), ("t1", t1), ("t2", t2)):
        _check(name, t, 3, (G, B), d)
    return ((2 - 2 * _cos(p1, t2.detach())) + (2 - 2 * _cos(p2, t1.detach()))).mean(1)


def simsiam(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """SimSiam: mean_b -1/2 [cos(p1, sg z2) + cos(p2, sg z1)] (stop-gradient on the projections z).

    Args:
        p1, p2: (G, B, d) predictor outputs; z1, z2: (G, B, d) projections of the two views.

    Returns:
        (G,) in [-1, 1]; symmetric under swapping the views, (p1, z1) <-> (p2, z2).
    """
    _check("p1", p1, 3, ())
    G, B, d = p1.shape
    for name, t in (("p2", p2), ("z1", z1), ("z2", z2)):
        _check(name, t, 3, (G, B), d)
    return (-0.5 * (_cos(p1, z2.detach()) + _cos(p2, z1.detach()))).mean(1)


def _standardise(z: Tensor, eps: float) -> Tensor:
    return (z - z.mean(1, keepdim=True)) / torch.sqrt(z.var(1, unbiased=False, keepdim=True) + eps)


def barlow_twins(z1: Tensor, z2: Tensor, lambd: float = 5e-3, eps: float = 1e-5) -> Tensor:
    """Barlow Twins: sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2, C = z1n^T z2n / B.

    z1n, z2n: each dimension standardised over the batch, (z - mean) / sqrt(var + eps), biased variance (the
    official code's BatchNorm1d(affine=False), whose eps is 1e-5). Not averaged over dimensions (the paper's sum).

    Args:
        z1, z2: (G, B, d); lambd: the off-diagonal weight (5e-3 in the paper); eps >= 0.

    Returns:
        (G,). 0 at identical views whose dimensions are uncorrelated over the batch (eps = 0); symmetric in z1, z2.
    """
    _check("z1", z1, 3, ())
    G, B, d = z1.shape
    _check("z2", z2, 3, (G, B), d)
    if B < 2:
        raise ValueError(f"z1: need batch size B >= 2 to standardise over the batch (got {B})")
    c = torch.bmm(_standardise(z1, eps).transpose(1, 2), _standardise(z2, eps)) / B        # (G, d, d)
    diag = torch.diagonal(c, dim1=1, dim2=2)
    off = c.pow(2).sum((1, 2)) - diag.pow(2).sum(1)
    return (1 - diag).pow(2).sum(1) + lambd * off


def vicreg_terms(z1: Tensor, z2: Tensor, eps: float = 1e-4) -> dict[str, Tensor]:
    """The three VICReg terms, each (G,), before weighting (the official code's arithmetic).

    invariance: mean over entries of (z1 - z2)^2; variance: 1/2 [mean_j relu(1 - sqrt(Var z1_j + eps)) + same
    for z2] (unbiased variance over the batch); covariance: sum_{i != j} Cov(z1)_ij^2 / d + same for z2.
    """
    _check("z1", z1, 3, ())
    G, B, d = z1.shape
    _check("z2", z2, 3, (G, B), d)
    if B < 2:
        raise ValueError(f"z1: need batch size B >= 2 for the batch variance (got {B})")
    inv = (z1 - z2).pow(2).mean((1, 2))
    var, cov = 0.0, 0.0
    for z in (z1, z2):
        zc = z - z.mean(1, keepdim=True)
        std = torch.sqrt(zc.var(1, unbiased=True) + eps)                         # (G, d)
        var = var + torch.relu(1 - std).mean(1) / 2
        c = torch.bmm(zc.transpose(1, 2), zc) / (B - 1)
        cov = cov + (c.pow(2).sum((1, 2)) - torch.diagonal(c, dim1=1, dim2=2).pow(2).sum(1)) / d
    return {"invariance": inv, "variance": var, "covariance": cov}


def vicreg(z1: Tensor, z2: Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0,
           eps: float = 1e-4) -> Tensor:
    """VICReg: 25 invariance + 25 variance + 1 covariance (``vicreg_terms``); (G,). Symmetric in z1, z2.

    At collapsed embeddings (every row equal) it is std_coeff (1 - sqrt(eps)) = 25 * 0.99: the hinge at std 0.
    """
    t = vicreg_terms(z1, z2, eps)
    return sim_coeff * t["invariance"] + std_coeff * t["variance"] + cov_coeff * t["covariance"]


def sinkhorn(scores: Tensor, eps: float = 0.05, n_iters: int = 3) -> Tensor:
    """SwAV's Sinkhorn-Knopp codes, batched: scores (G, B, K) -> codes (G, B, K), each row summing to 1.

    The paper's pseudocode on Q = exp(scores / eps)^T (K, B): normalise to sum 1, then n_iters times rescale the
    rows to 1/K and the columns to 1/B; return the columns renormalised to 1. Run in the log domain (every
    rescaling is a logsumexp subtraction), which is the same arithmetic but stays finite in float32 at small eps,
    where exp(scores / eps) under- or overflows. No gradient flows through the codes.
    """
    _check("scores", scores, 3, ())
    logq = (scores.detach() / eps).transpose(1, 2)                                  # (G, K, B)
    K, B = logq.shape[1], logq.shape[2]
    logq = logq - torch.logsumexp(logq.flatten(1), -1)[:, None, None]
    for _ in range(n_iters):
        logq = logq - torch.logsumexp(logq, 2, keepdim=True) - math.log(K)
        logq = logq - torch.logsumexp(logq, 1, keepdim=True) - math.log(B)
    return torch.softmax(logq, 1).transpose(1, 2)


def swav(scores1: Tensor, scores2: Tensor, temperature: float = 0.1, eps: float = 0.05, n_iters: int = 3) -> Tensor:
    """SwAV's swapped prediction: -1/2 mean_b sum_k [q2 log softmax(s1 / T) + q1 log softmax(s2 / T)].

    Args:
        scores1, scores2: (G, B, K) cosine scores of the two views' embeddings against K prototypes
            (normalise both before the product); q1, q2 = ``sinkhorn`` codes of each view (no gradient).

    Returns:
        (G,). Symmetric under swapping the views.
    """
    _check("scores1", scores1, 3, ())
    _check("scores2", scores2, 3, tuple(scores1.shape[:2]), scores1.shape[-1])
    q1, q2 = sinkhorn(scores1, eps, n_iters), sinkhorn(scores2, eps, n_iters)
    l1, l2 = F.log_softmax(scores1 / temperature, -1), F.log_softmax(scores2 / temperature, -1)
    return (-0.5 * ((q2 * l1).sum(-1) + (q1 * l2).sum(-1))).mean(1)


def vae_terms(x: Tensor, x_hat: Tensor, mu: Tensor, logvar: Tensor, sigma2: float = 1.0) -> dict[str, Tensor]:
    """The two parts of a Gaussian VAE's negative ELBO, per example in nats, each (G,) meaned over the batch.

    reconstruction: -log N(x; x_hat, sigma2 I) = ||x - x_hat||^2 / (2 sigma2) + (D/2) log(2 pi sigma2);
    kl: KL(N(mu, diag exp(logvar)) || N(0, I)) = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j).

    Args:
        x, x_hat: (G, B, D); mu, logvar: (G, B, d).
    """
    _check("x", x, 3, ())
    G, B, D = x.shape
    _check("x_hat", x_hat, 3, (G, B), D)
    _check("mu", mu, 3, (G, B))
    _check("logvar", logvar, 3, (G, B), mu.shape[-1])
    rec = (x - x_hat).pow(2).sum(-1) / (2 * sigma2) + 0.5 * D * math.log(2 * math.pi * sigma2)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)
    return {"reconstruction": rec.mean(1), "kl": kl.mean(1)}


def vae(x: Tensor, x_hat: Tensor, mu: Tensor, logvar: Tensor, sigma2: float = 1.0) -> Tensor:
    """Negative ELBO = reconstruction + KL (``vae_terms``), nats per example; (G,)."""
    t = vae_terms(x, x_hat, mu, logvar, sigma2)
    return t["reconstruction"] + t["kl"]


def spectral(z1: Tensor, z2: Tensor) -> Tensor:
    """HaoChen et al. (2021)'s spectral contrastive loss on a batch of B positive pairs, as their estimator.

    loss_g = −2 · mean_b z1_bᵀ z2_b + mean_{i≠j} (z1_iᵀ z2_j)²: the second term averages the B(B − 1)
    off-diagonal pairs, which are independent draws from the marginal, so the batch loss is an unbiased
    estimate of the population loss L(f) = −2E[f(x)ᵀf(x⁺)] + E[(f(x)ᵀf(x′))²] (no extra factor; its minimum
    over all f is −Σ_{i≤d} γ_i², ``theory.augmentation_graph.spectral_minimum``). No norm clipping.

    Args:
        z1, z2: (G, B, d), row b of z1 pairs with row b of z2; B >= 2.

    Returns:
        (G,).
    """
    _check("z1", z1, 3, ())
    G, B, d = z1.shape
    _check("z2", z2, 3, (G, B), d)
    if B < 2:
        raise ValueError(f"z1: need batch size B >= 2 for off-diagonal pairs (got {B})")
    pos = (z1 * z2).sum(-1).mean(1)
    gram = torch.bmm(z1, z2.transpose(1, 2)) ** 2
    off = (gram.sum((1, 2)) - torch.diagonal(gram, dim1=1, dim2=2).sum(1)) / (B * (B - 1))
    return -2.0 * pos + off


def clip(za: Tensor, zb: Tensor, log_scale: Tensor | float) -> Tensor:
    """CLIP (Radford et al. 2021): symmetric InfoNCE between two modalities, natural log, learned temperature.

    logits_ij = exp(log_scale) cos(za_i, zb_j); loss = 1/2 [mean_i CE(logits_i., i) + mean_j CE(logits_.j, j)],
    the paper's pseudocode (its logit scale exp(t) is clamped at 100, as in the released code).

    Args:
        za, zb: (G, B, d) the two modalities' embeddings, row b of za paired with row b of zb.
        log_scale: a float or (G,) tensor t, the log of the inverse temperature (CLIP starts at log(1 / 0.07)).

    Returns:
        (G,). At equal embeddings it is log B; symmetric under swapping the modalities.
    """
    _check("za", za, 3, ())
    G, B, d = za.shape
    _check("zb", zb, 3, (G, B), d)
    t = torch.as_tensor(log_scale, dtype=za.dtype, device=za.device)
    t = t.expand(G) if t.ndim == 0 else t.reshape(G)
    scale = torch.exp(t).clamp(max=100.0).view(G, 1, 1)
    logits = scale * torch.bmm(F.normalize(za, dim=-1), F.normalize(zb, dim=-1).transpose(1, 2))   # (G, B, B)
    diag = torch.diagonal(logits, dim1=1, dim2=2)
    return 0.5 * ((torch.logsumexp(logits, 2) - diag).mean(1) + (torch.logsumexp(logits, 1) - diag).mean(1))


def dgi_readout(h: Tensor) -> Tensor:
    """Deep Graph Infomax's readout: s = sigmoid(mean_i h_i) of the node embeddings h (G, N, d) -> (G, d)."""
    _check("h", h, 3, ())
    return torch.sigmoid(h.mean(1))


def dgi(h: Tensor, h_corrupt: Tensor, summary: Tensor, W: Tensor, bias: Tensor | float = 0.0) -> Tensor:
    """Deep Graph Infomax (Velickovic et al. 2019, eq. 1): binary cross-entropy of a bilinear discriminator
    D(h, s) = sigmoid(h^T W s + b) telling the real graph's node embeddings (label 1) from a corrupted graph's
    (label 0, the node features shuffled over the nodes), natural log:

        loss_g = 1/(N + M) [ sum_i -log D(h_i, s) + sum_j -log(1 - D(h~_j, s)) ],

    i.e. the mean over the N + M logits of the official code's BCEWithLogitsLoss. With a zero discriminator
    (W = 0, b = 0) every term is log 2: the loss is log 2, and a (positive, negative) pair costs 2 log 2.

    Args:
        h: (G, N, d) node embeddings of the real graph; h_corrupt: (G, M, d) of the corrupted graph.
        summary: (G, d) the readout s (``dgi_readout(h)``; the gradient flows through it as in the paper).
        W: (G, d, d) the discriminator's bilinear form; bias: a float or (G,) tensor.

    Returns:
        (G,).
    """
    _check("h", h, 3, ())
    G, N, d = h.shape
    _check("h_corrupt", h_corrupt, 3, (G,), d)
    _check("summary", summary, 2, (G,), d)
    _check("W", W, 3, (G, d), d)
    b = torch.as_tensor(bias, dtype=h.dtype, device=h.device)
    b = b.expand(G) if b.ndim == 0 else b.reshape(G)
    ws = torch.bmm(W, summary[..., None])                                       # (G, d, 1)
    pos = torch.bmm(h, ws)[..., 0] + b[:, None]                                 # (G, N)
    neg = torch.bmm(h_corrupt, ws)[..., 0] + b[:, None]                         # (G, M)
    return (F.softplus(-pos).sum(1) + F.softplus(neg).sum(1)) / (N + h_corrupt.shape[1])


def permutation_lm(logits: Tensor, words: Tensor, order: Tensor) -> Tensor:
    """XLNet's permutation language modelling (Yang et al. 2019), the expected log-likelihood over factorisation
    orders, one order per window: loss_g = mean_b -(1/L) sum_t log softmax(logits[g, b, t])[words[g, b, order_t]],
    where logits[g, b, t] is the model's prediction of position order[g, b, t] from the positions order[g, b, :t]
    (the caller builds those inputs); natural log, a mean over the windows and the L steps of the order.

    Args:
        logits: (G, B, L, V); words: (G, B, L) word ids; order: (G, B, L), each row a permutation of 0..L-1.

    Returns:
        (G,). With uniform logits it is log V whatever the order.
    """
    _check("logits", logits, 4, ())
    G, B, L, V = logits.shape
    _check("words", words, 3, (G, B), L)
    _check("order", order, 3, (G, B), L)
    target = torch.gather(words.long(), 2, order.long())                              # (G, B, L)
    lp = F.log_softmax(logits, -1).gather(3, target[..., None])[..., 0]
    return -lp.mean((1, 2))


def electra_terms(gen_logits: Tensor, words: Tensor, mask: Tensor, disc_logits: Tensor,
                  replaced: Tensor) -> dict[str, Tensor]:
    """ELECTRA's two losses (Clark et al. 2020), each (G,), natural log: ``generator``, the masked-LM cross-entropy
    meaned over the masked positions (0 where a model has none); ``discriminator``, the binary cross-entropy of
    replaced-token detection (label 1 where the corrupted token differs from the original) meaned over every
    position. gen_logits (G, B, L, V); words, mask, replaced (G, B, L); disc_logits (G, B, L)."""
    _check("gen_logits", gen_logits, 4, ())
    G, B, L, V = gen_logits.shape
    for name, t in (("words", words), ("mask", mask), ("disc_logits", disc_logits), ("replaced", replaced)):
        _check(name, t, 3, (G, B), L)
    m = mask.to(gen_logits.dtype)
    ce = -F.log_softmax(gen_logits, -1).gather(3, words.long()[..., None])[..., 0]
    gen = (ce * m).sum((1, 2)) / m.sum((1, 2)).clamp_min(1.0)
    disc = F.binary_cross_entropy_with_logits(disc_logits, replaced.to(disc_logits.dtype), reduction="none")
    return {"generator": gen, "discriminator": disc.mean((1, 2))}


def electra(gen_logits: Tensor, words: Tensor, mask: Tensor, disc_logits: Tensor, replaced: Tensor,
            disc_weight: float = 50.0) -> Tensor:
    """ELECTRA: generator MLM loss + disc_weight x discriminator loss (``electra_terms``; lambda = 50 in the
    paper). The replacements are sampled from the generator and not back-propagated through. (G,). At uniform
    generator logits and zero discriminator logits: log V + 50 log 2."""
    t = electra_terms(gen_logits, words, mask, disc_logits, replaced)
    return t["generator"] + disc_weight * t["discriminator"]


def cpc_terms(context: Tensor, future: Tensor, W: Tensor) -> Tensor:
    """CPC's InfoNCE per future step (van den Oord et al. 2018), natural log, in-batch negatives: for step k the
    critic is bilinear, s_ij = future[j, k]^T W_k context[i], and L_k = mean_i [-s_ii + log sum_j exp(s_ij)]
    (the positive is the window's own future; the other B - 1 windows' futures are the negatives).

    Args:
        context: (G, B, dc) c_t; future: (G, B, K, dz) the encoded future words z_{t+k}; W: (G, K, dz, dc).

    Returns:
        (G, K). log B - L_k is the InfoNCE lower bound on I(c; z_{t+k}); equal scores give L_k = log B.
    """
    _check("context", context, 3, ())
    G, B, dc = context.shape
    _check("future", future, 4, (G, B))
    K, dz = future.shape[2], future.shape[3]
    _check("W", W, 4, (G, K, dz), dc)
    wc = torch.einsum("gkzc,gic->gkiz", W, context)                                   # (G, K, B, dz)
    s = torch.einsum("gkiz,gjkz->gkij", wc, future)                                   # (G, K, B, B)
    diag = torch.diagonal(s, dim1=2, dim2=3)
    return (torch.logsumexp(s, 3) - diag).mean(2)


def cpc(context: Tensor, future: Tensor, W: Tensor) -> Tensor:
    """CPC: the InfoNCE losses of ``cpc_terms`` meaned over the K future steps; (G,)."""
    return cpc_terms(context, future, W).mean(1)


def infonce(z: Tensor, z_pos: Tensor, z_neg: Tensor) -> Tensor:
    """InfoNCE with K negatives (the negatives chapter's objective), NATURAL log, mean over the batch:
    mean_b [log(e^{s+} + sum_k e^{s_k}) - s+], s+ = z.z_pos, s_k = z.z_neg_k (no temperature: the features' norm
    sets the scale). z, z_pos (G, B, d); z_neg (G, B, K, d), or (G, K, d): K negatives shared by the batch's
    anchors. Equal scores give log(K + 1)."""
    _check("z", z, 3, ())
    G, B, d = z.shape
    _check("z_pos", z_pos, 3, (G, B), d)
    if z_neg.ndim == 3:
        _check("z_neg", z_neg, 3, (G,), d)
        s_neg = torch.bmm(z, z_neg.transpose(1, 2))
    else:
        _check("z_neg", z_neg, 4, (G, B), d)
        s_neg = torch.einsum("gbd,gbkd->gbk", z, z_neg)
    s = torch.cat([(z * z_pos).sum(-1, keepdim=True), s_neg], dim=-1)
    return (torch.logsumexp(s, -1) - s[..., 0]).mean(1)


OBJECTIVES: dict[str, Callable[..., Tensor]] = {
    # contrastive learning with latent classes (Arora et al.) and its reference objectives
    "logistic": logistic,
    "hinge": hinge,
    "block": block,
    "ntxent": ntxent,
    "simclr": ntxent,
    "supervised_ce": supervised_ce,
    # language: next-word and masked-word cross-entropy over the vocabulary, and Quad
    "next_word_xent": supervised_ce,
    "masked_lm": supervised_ce,
    "mlm": supervised_ce,
    "quad": quad,
    # reconstruction and self-prediction (squared error; MAE and masked prediction on the masked coordinates)
    "mse": mse,
    "autoencoder": mse,
    "dae": mse,
    "mae": mse,
    "vae": vae,
    # pretext classification: the head names the transformation applied to the image
    "rotation": supervised_ce,
    "jigsaw": supervised_ce,
    # the zoo's two-view objectives
    "infonce_queue": infonce_queue,
    "moco_v2": infonce_queue,
    "byol": byol,
    "simsiam": simsiam,
    "barlow_twins": barlow_twins,
    "vicreg": vicreg,
    "swav": swav,
    "clip": clip,
    # the augmentation graph
    "spectral": spectral,
    # graphs and sequences
    "dgi": dgi,
    "plm": permutation_lm,
    "permutation_lm": permutation_lm,
    "electra": electra,
    "cpc": cpc,
    # the negatives chapter
    "infonce": infonce,
}
