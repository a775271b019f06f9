"""One negatives cell: train InfoNCE with K negatives on latent classes and measure, or solve the finite instance.

Randomness: the latent-class model comes from the data spec's own hash (every K and b on one law sees the same
classes); training pairs, the negative pool, minibatches and initialisation come from (cell id, seed, stream);
the held-out pools from (cell id, 0, "eval"), shared by the seeds so that they differ only by their training.
Each step's K negatives are drawn from the seed's marginal pool and shared by the step's anchors (each anchor's
negatives are still i.i.d. from the marginal; sharing only correlates anchors). The held-out R_cont gives every
anchor its own K negatives, drawn with replacement from a held-out pool of eval.n_pool marginal samples.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from experiments import objectives
from experiments.encoders import encode, init_encoder
from experiments.engine.config import config_hash, to_json
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.timing import stage
from experiments.engine.train import gather_rows, train
from experiments.latent_eval import as_tensor
from experiments.negatives.config import FINITE, Cell
from synthetic_data.negatives import build_model, finite_instance
from theory import negatives as th

CHUNK = 128   # held-out anchors per block when gathering their K negatives


def run(cell: Cell, cell_id: str, device: str = "cpu") -> pd.DataFrame:
    if cell.study == FINITE:
        return pd.DataFrame(_finite(cell, cell_id))
    model = build_model(cell.data, numpy_rng(config_hash(cell.data), 0, "latent-model"))
    G, tr, K, b = len(cell.seeds), cell.train, cell.K, cell.b
    rngs = [numpy_rng(cell_id, s, "train-data") for s in cell.seeds]
    pairs = [_pairs(model, tr.n_pairs, r) for r in rngs]
    x = as_tensor(np.stack([p[0] for p in pairs]), device)
    pos = as_tensor(np.stack([p[1] for p in pairs]), device)
    pool = as_tensor(np.stack([model.sample_x(model.sample_classes(tr.n_pool, r), r) for r in rngs]), device)
    pair_idx = torch.as_tensor(np.stack([r.integers(0, tr.n_pairs, (tr.steps, tr.batch_size)) for r in rngs]),
                               device=device)
    neg_idx = torch.as_tensor(np.stack([r.integers(0, tr.n_pool, (tr.steps, K)) for r in rngs]), device=device)
    B = tr.batch_size

    def loss_fn(p, step):
        xb, pb = gather_rows(x, pair_idx[:, step]), gather_rows(pos, pair_idx[:, step])
        nb = gather_rows(pool, neg_idx[:, step])
        z = th.project(encode(p, torch.cat([xb, pb, nb], 1)), b)
        zx, zp, zn = z[:, :B], z[:, B:2 * B], z[:, 2 * B:]
        return objectives.infonce(zx, zp, zn)

    gens = [torch_generator(cell_id, s, "init") for s in cell.seeds]
    enc = cell.encoder
    params = init_encoder(enc.kind, model.input_dim, enc.out_dim, G, gens, width=enc.width, device=device)
    checkpoints = train(params, loss_fn, tr.steps, tr.lr, [0, tr.steps], context=to_json(cell),
                        weight_decay=tr.weight_decay)
    base = {"study": cell.study, "n_classes": cell.data.n_classes, "law": cell.data.class_law, "K": K, "b": b}
    rho = model.rho
    with stage("theory"):
        exact = th.law_terms(rho, K, b)
        if cell.data.class_law == "uniform":
            exact["R_cont_opt"] = th.r_cont_optimum(cell.data.n_classes, K, b)
            exact["R_supv_opt"] = th.r_supv_optimum(cell.data.n_classes, b)
    rows: list[dict] = []
    with torch.no_grad():
        ev = _EvalPools(model, cell, cell_id, device)
        for step, p in checkpoints:
            values = ev.measure(lambda xs, p=p: th.project(encode(p, xs.expand(G, -1, -1)), b).double())
            values.update({k: np.full(G, v) for k, v in exact.items()})
            kind = "untrained" if step == 0 else "trained"
            for metric, vals in values.items():
                for g, seed in enumerate(cell.seeds):
                    rows.append({**base, "model_kind": kind, "seed": seed, "step": step, "metric": metric,
                                 "value": float(vals[g])})
    return pd.DataFrame(rows)


def _pairs(model, n, rng):
    c = model.sample_classes(n, rng)
    return model.sample_x(c, rng), model.sample_x(c, rng)


class _EvalPools:
    """Held-out samples shared by every seed of the cell, and what is measured on them."""

    def __init__(self, model, cell: Cell, cell_id: str, device: str):
        e, C = cell.eval, cell.data.n_classes
        rng = numpy_rng(cell_id, 0, "eval")
        self.rho = torch.as_tensor(model.rho, dtype=torch.float64)
        self.C, self.K, self.e = C, cell.K, e
        x, pos = _pairs(model, e.n_tuples, rng)
        self.x, self.pos = as_tensor(x, device)[None], as_tensor(pos, device)[None]
        self.pool = as_tensor(model.sample_x(model.sample_classes(e.n_pool, rng), rng), device)[None]
        self.neg_idx = torch.as_tensor(rng.integers(0, e.n_pool, (e.n_tuples, cell.K)), device=device)
        self.mean_x = as_tensor(model.sample_x(np.repeat(np.arange(C), e.n_mean), rng), device)[None]
        self.test_x = as_tensor(model.sample_x(np.repeat(np.arange(C), e.n_test), rng), device)[None]
        self.test_y = torch.as_tensor(np.repeat(np.arange(C), e.n_test), device=device)

    def measure(self, f) -> dict[str, np.ndarray]:
        """R_cont (Monte Carlo over held-out tuples) and the mean classifier's C-way loss and accuracy, classes
        weighted by rho (exact weights over per-class means), each with its within-seed Monte-Carlo SE."""
        zx, zp, zpool = f(self.x), f(self.pos), f(self.pool)
        G = zx.shape[0]
        per = []
        for lo in range(0, zx.shape[1], CHUNK):
            idx = self.neg_idx[lo:lo + CHUNK]
            zn = zpool[:, idx.reshape(-1)].reshape(G, idx.shape[0], self.K, -1)
            a, ap = zx[:, lo:lo + CHUNK], zp[:, lo:lo + CHUNK]
            s = torch.cat([(a * ap).sum(-1, keepdim=True), torch.einsum("gbd,gbkd->gbk", a, zn)], -1)
            per.append(torch.logsumexp(s, -1) - s[..., 0])
        per = torch.cat(per, 1)
        C, n = self.C, self.e.n_test
        mu = f(self.mean_x).reshape(G, C, self.e.n_mean, -1).mean(2)
        scores = torch.bmm(f(self.test_x), mu.transpose(1, 2))                 # (G, C n, C)
        ce = (torch.logsumexp(scores, -1) - scores.gather(2, self.test_y.expand(G, -1)[..., None])[..., 0])
        ce = ce.reshape(G, C, n).cpu()
        right = (scores.argmax(-1) == self.test_y).double().reshape(G, C, n).cpu()
        w = self.rho
        out = {"R_cont": per.mean(1), "R_cont_mc_se": per.std(1) / per.shape[1] ** 0.5}
        for name, v in (("R_mu_supv", ce), ("mean_acc", right)):
            out[name] = (w * v.mean(2)).sum(1)
            out[name + "_mc_se"] = ((w ** 2 * v.var(2) / n).sum(1)).sqrt()
        return {k: v.cpu().numpy() for k, v in out.items()}


# ------------------------------------------------------------------------------------------ the finite instance
def _finite(cell: Cell, cell_id: str) -> list[dict]:
    """At every (b, K): the population optimum (full-batch L-BFGS from ``restarts`` starts, the lowest exact
    R_cont kept) and ``n_random`` fixed random encoders, each with its exact R_cont, R_mu_supv and accuracy."""
    rho, D = finite_instance(cell.finite)
    N = D.shape[1]
    base = {"study": cell.study, "n_classes": cell.finite.n_classes, "law": cell.finite.class_law}
    starts = torch.stack([torch.randn(N, N, generator=torch_generator(cell_id, r, "finite-start"),
                                      dtype=torch.float64) for r in range(cell.restarts)])
    randoms = torch.stack([torch.randn(N, N, generator=torch_generator(cell_id, r, "finite-random"),
                                       dtype=torch.float64) for r in range(cell.n_random)])
    rows: list[dict] = []
    for b in cell.bs:
        for K in cell.ks:
            with stage("train"):
                F_opt = _optimum(starts, rho, D, K, b, cell.max_iter)
            with stage("theory"):
                exact = th.law_terms(rho, K, b)
                for kind, F in (("oracle", F_opt), ("untrained", th.project(randoms, b))):
                    r_cont = th.exact_r_cont(F, rho, D, K)
                    r_supv, acc = th.exact_supervised(F, rho, D)
                    for g in range(F.shape[0]):
                        values = {"R_cont": float(r_cont[g]), "R_mu_supv": float(r_supv[g]),
                                  "mean_acc": float(acc[g]), **exact}
                        rows += [{**base, "K": K, "b": b, "model_kind": kind, "seed": g, "step": 0,
                                  "metric": m, "value": v} for m, v in values.items()]
    return rows


def _optimum(starts: torch.Tensor, rho, D, K: int, b: float, max_iter: int) -> torch.Tensor:
    """The best of the starts after full-batch L-BFGS on the exact R_cont, as a (1, N, d) feature table."""
    G = starts.clone().requires_grad_(True)
    opt = torch.optim.LBFGS([G], max_iter=max_iter, line_search_fn="strong_wolfe", tolerance_grad=1e-11,
                            tolerance_change=1e-14, history_size=20)

    def closure():
        opt.zero_grad()
        loss = th.exact_r_cont(th.project(G, b), rho, D, K).sum()
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        F = th.project(G.detach(), b)
        best = int(torch.argmin(th.exact_r_cont(F, rho, D, K)))
    return F[best:best + 1]
