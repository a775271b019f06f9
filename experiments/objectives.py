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
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from theory.contrastive import LOSSES

__all__ = ["margins", "logistic", "hinge", "block", "ntxent", "supervised_ce", "quad", "mse", "OBJECTIVES"]


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


OBJECTIVES: dict[str, Callable[..., Tensor]] = {
    "logistic": logistic,
    "hinge": hinge,
    "block": block,
    "ntxent": ntxent,
    "supervised_ce": supervised_ce,
    "next_word_xent": supervised_ce,
    "quad": quad,
    "mse": mse,
}
