"""The objective zoo on ground truth: the theorems it reads on every encoder, and the collapse diagnostics.

The zoo trains many objectives (SimCLR, MoCo v2, BYOL, SimSiam, Barlow Twins, VICReg, SwAV, the Arora et al.
logistic loss, autoencoders, a VAE, masked prediction, CLIP) on the latent-class model of
``synthetic_data.contrastive``, and rotation / jigsaw pretexts on the grid images of ``synthetic_data.zoo``.
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
COLLAPSE_RANK = 1.5              # an effective rank below 1.5: the embeddings lie (nearly) on one line


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


def collapse_diagnostic(z) -> dict:
    """Collapse measures of z (..., N, d), each of shape (...):

    effective_rank; var_min, var_mean, var_max (per-dimension variance); norm_std (mean per-dimension standard
    deviation of z / ||z||, times sqrt(d), so 1 for an isotropic cloud and 0 for complete collapse); collapsed
    (1.0 where norm_std < COLLAPSE_NORMALISED_STD or effective_rank < COLLAPSE_RANK, else 0.0).
    """
    z = _f64(z)
    var = z.var(-2, unbiased=False)
    u = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    norm_std = (u.var(-2, unbiased=False).sqrt().mean(-1) * z.shape[-1] ** 0.5).numpy()
    er = effective_rank(z)
    return {"effective_rank": er, "var_min": var.amin(-1).numpy(), "var_mean": var.mean(-1).numpy(),
            "var_max": var.amax(-1).numpy(), "norm_std": norm_std,
            "collapsed": ((norm_std < COLLAPSE_NORMALISED_STD) | (er < COLLAPSE_RANK)).astype(np.float64)}


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
        trivial_terms=_LEMMA.trivial_terms,
        trivial_value=ctr.trivial_from_terms,
        assumptions=_LEMMA.assumptions,
        measured=_LEMMA.measured,
        doc=f"{DOC}#lemma-43-on-any-encoder",
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

__all__ = ["THEOREMS", "effective_rank", "dimension_variance", "collapse_diagnostic", "COLLAPSE_RANK",
           "COLLAPSE_NORMALISED_STD"]


# The benches of the zoo and the objectives each trains (the names of experiments/objectives.py's registry where
# one exists). Kept here, on the ground floor, so the run code and the figures read one list.
BENCHES: dict[str, tuple[str, ...]] = {
    "two_views": ("simclr", "moco_v2", "byol", "simsiam", "barlow_twins", "vicreg", "swav", "logistic",
                  "byol_nopred"),
    "reconstruction": ("autoencoder", "dae", "vae", "mae"),
    "multimodal": ("clip",),
    "pretext": ("rotation", "jigsaw"),
}
REFERENCES: tuple[str, ...] = ("raw", "random", "supervised")
CONTROLS: tuple[str, ...] = ("byol_nopred",)   # a deliberately collapsing control (BYOL without its predictor)
