"""The `generalisation` study: Theorem 4.1 with Gen_M on a Frobenius ball, where the bound can bite.

A linear encoder f(x) = W x is trained with the hinge loss while ||W||_F <= R holds at every step (the fixed-norm
parametrisation W = V min(1, R / ||V||_F)), on M tuples of the ``discrete`` family. Everything but the empirical
loss is exact: the family has a finite support, so L_un, L_sup^mu and tau come from enumeration
(``theory.contrastive_terms.exact_terms``) and X = max ||x|| over the support is known, which makes the ball's Gen_M
(``theory.contrastive.gen_term_ball``) a closed form with no stand-in. The M tuples are stored as indices into the
support, so M = 10^6 costs a few megabytes and L^_un(f) on all of them is one lookup in the support's Gram matrix.

The oracle cell puts the same ball's norm on the top C - 1 directions of the centred true class means: a point
built from the ground truth (model kind "oracle"), judged on each seed's own M tuples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from experiments.engine.config import config_hash
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.schedule import checkpoint_steps
from experiments.engine.train import train
from synthetic_data.contrastive import DataSpec, build_model
from theory import contrastive as th
from theory.contrastive_terms import exact_terms

TRAINED, ORACLE = "ball_hinge", "oracle_linear"


@dataclass(frozen=True)
class GenCell:
    objective: str          # TRAINED or ORACLE
    n_tuples: int           # M
    radius: float           # R of the ball ||W||_F <= R
    out_dim: int            # d
    seeds: tuple[int, ...]
    data: DataSpec
    steps: int
    batch_size: int
    lr: float
    n_checkpoints: int
    delta: float
    loss: str = "hinge"
    k: int = 1


def footprint(cell: GenCell):
    """The arrays a generalisation cell allocates, for the resource guard: per seed the (M, 3) int64 support
    indices, the (M, support_size) draw of their points while sampling, and two float64 margins per tuple at each
    evaluation (the chapter's footprint adds the time)."""
    from experiments.engine.resources import Footprint
    M, m, S = cell.n_tuples, cell.data.support_size, len(cell.seeds)
    return Footprint({"generalisation.n_tuples": float(S * M * 3 * 8 + 3 * M * m * (8 + 1) + 2 * M * 8 * 2)}, None)


def ball(W: torch.Tensor, radius: float) -> torch.Tensor:
    """W min(1, R / ||W||_F) per model (leading axis): the nearest point of the ball, differentiable."""
    norm = W.flatten(1).norm(dim=1).clamp_min(1e-30)
    return W * torch.clamp(radius / norm, max=1.0)[:, None, None]


def oracle_weights(model, out_dim: int) -> np.ndarray:
    """(D, d): the top out_dim right singular directions of the centred true class means, unit Frobenius norm."""
    mu = np.einsum("cm,cmd->cd", model.pmf, model.support)
    _, _, vt = np.linalg.svd(mu - mu.mean(0), full_matrices=False)
    W = np.zeros((mu.shape[1], out_dim))
    n = min(out_dim, vt.shape[0])
    W[:, :n] = vt[:n].T
    return W / np.linalg.norm(W)


def sample_indices(model, M: int, rng: np.random.Generator) -> np.ndarray:
    """(M, 3) flat support indices c * m + i of (x, x+, x-) for M tuples drawn as in the paper (k = 1)."""
    C, m = model.pmf.shape
    cdf = np.cumsum(model.pmf, axis=1)
    c_pos = rng.choice(C, size=M, p=model.rho)
    c_neg = rng.choice(C, size=M, p=model.rho)

    def point(c):
        i = np.minimum((cdf[c] < rng.random(c.shape[0])[:, None]).sum(1), m - 1)
        return c * m + i
    return np.stack([point(c_pos), point(c_pos), point(c_neg)], axis=1).astype(np.int64)


def _train(cell: GenCell, cell_id: str, support: torch.Tensor, tuples: list[np.ndarray]):
    G, D, d = len(cell.seeds), support.shape[1], cell.out_dim
    gens = [torch_generator(cell_id, s, "init") for s in cell.seeds]
    V = torch.stack([(torch.rand(D, d, generator=g, dtype=torch.float64) * 2 - 1) / D ** 0.5 for g in gens])
    idx = torch.as_tensor(np.stack([t[numpy_rng(cell_id, s, "batches").integers(0, len(t), (cell.steps,
                                                                                           cell.batch_size))]
                                    for s, t in zip(cell.seeds, tuples)]))  # (G, steps, B, 3)
    pts = support.float()

    def loss_fn(p, step):
        W = ball(p["W"], cell.radius)
        z = torch.bmm(pts[idx[:, step]].reshape(G, -1, D), W).reshape(G, cell.batch_size, 3, d)
        v = (z[:, :, 0] * (z[:, :, 1] - z[:, :, 2])).sum(-1, keepdim=True)
        return th.hinge_loss(v).mean(1)
    lr = torch.full((G,), float(cell.lr))
    ckpts = train({"W": V.float()}, loss_fn, cell.steps, lr, checkpoint_steps(cell.steps, cell.n_checkpoints),
                  context=f"generalisation cell {cell_id}")
    return [(step, ball(p["W"].double(), cell.radius)) for step, p in ckpts]


def run(cell: GenCell, cell_id: str, device: str = "cpu") -> list[dict]:
    model = build_model(cell.data, numpy_rng(config_hash(cell.data), 0, "latent-model"))
    S = torch.as_tensor(model.support, dtype=torch.float64)           # (C, m, D)
    C, m, D = S.shape
    flat = S.reshape(C * m, D)
    X = th.support_radius(model.support)
    tuples = [sample_indices(model, cell.n_tuples, numpy_rng(cell_id, s, "train-data")) for s in cell.seeds]
    sq = (flat ** 2).sum(1).numpy()
    sum_sq = [float(sq[t].sum()) for t in tuples]                      # sum_j ||x_j||^2 over the 3M points
    if cell.objective == ORACLE:
        W0 = torch.as_tensor(cell.radius * oracle_weights(model, cell.out_dim))
        checkpoints = [(0, W0.expand(len(cell.seeds), -1, -1))]
    else:
        checkpoints = _train(cell, cell_id, flat, tuples)
    base = {"objective": cell.objective, "loss": cell.loss, "n_classes": C, "k": 1, "block_size": 1,
            "target_error": float("nan")}
    rows = []
    for step, W in checkpoints:
        for g, seed in enumerate(cell.seeds):
            emb = flat @ W[g]                                          # (C m, d)
            terms = exact_terms(emb.reshape(C, m, -1), model.pmf, model.rho, cell.loss, 1)
            gram = emb @ emb.T
            t = torch.as_tensor(tuples[g])
            v = (gram[t[:, 0], t[:, 1]] - gram[t[:, 0], t[:, 2]])[:, None]
            gen = th.gen_term_ball(cell.radius, X, sum_sq[g], cell.out_dim, cell.n_tuples, cell.delta)
            values = {**{key: terms[key] for key in ("L_un", "L_un_eq", "L_un_neq", "L_sup_mu", "p_distinct",
                                                     "collision_floor")},
                      "tau": th.tau(model.rho), "tau_k": terms["tau"], "L_un_se": 0.0, "L_sup_mu_se": 0.0,
                      "L_hat_un": float(th.hinge_loss(v).mean()), "Gen_M": gen,
                      "Rad_S": cell.radius * float(np.sqrt(cell.out_dim * sum_sq[g])), "R": cell.radius * X,
                      "M": cell.n_tuples, "delta": cell.delta, "radius": cell.radius,
                      "W_fro": float(W[g].norm()), "support_norm": X}
            rows += [{**base, "seed": seed, "lr": cell.lr, "step": step, "metric": k, "n_per_class": 0,
                      "value": float(val)} for k, val in values.items()]
    return rows
