"""The theory-term evaluation as it was on main (dd83f8d), kept verbatim as the named reference: the oracle of
tests/experiments/test_latent_eval_fast.py and the baseline of ``sslt bench`` (experiments/bench_contrastive_terms.py).

It encodes all M (k + 2) training points of every model at once, concatenated twice, and recomputes the
(checkpoint-independent) Rademacher sum of squares at every checkpoint; the paper profile's k = 64 cell needs
about 30 GB for that. Not used by any run.
"""
from __future__ import annotations

import numpy as np
import torch

from experiments.encoders import param_norms
from experiments.latent_eval import as_tensor, encode_tuple, encoder_params
from theory import contrastive as th
from theory.contrastive_terms import mc_terms


def theory_terms(ev, enc, params, train_tuples) -> dict:
    """``EvalSet.theory_terms`` of main; ``train_tuples`` (x, pos, neg) with one (G, ...) copy per model."""
    cell = ev.cell
    C = cell.data.n_classes
    with torch.no_grad():
        pools = [(z := enc(x).double().cpu()).reshape(z.shape[0], C, -1, z.shape[-1]) for x in ev.pools]
    mu = ev._means(enc).cpu()
    rho = ev.model.rho
    G = mu.shape[0]
    out: dict[str, list] = {}
    for g in range(G):
        terms = mc_terms(pools[0][g], pools[1][g], pools[2][g], mu[g], rho, cell.loss, cell.k,
                         rng=np.random.default_rng(ev.rng.integers(2**63)), losses=th.LOSSES)
        terms["tau_k"] = terms.pop("tau")
        terms["tau"] = th.tau(rho)
        if "L_sup_mu_distinct" in terms:
            terms["trivial_distinct"] = ev._trivial_distinct()
        for key, val in terms.items():
            out.setdefault(key, []).append(float(val))
    if train_tuples is not None and params is not None:
        out.update(generalisation(ev, params, train_tuples))
    if cell.objective == "block":
        out.update(block_loss(ev, enc))
    return {k: np.asarray(v) for k, v in out.items()}


def generalisation(ev, params, train_tuples) -> dict:
    """``EvalSet._generalisation`` of main."""
    cell, k = ev.cell, ev.cell.k
    x, pos, neg = train_tuples
    p = encoder_params(params)
    with torch.no_grad():
        z, zp, zn = encode_tuple(p, x, pos, neg)
        v = (z[:, :, None, :] * (zp[:, :, None, :] - zn)).sum(-1).double()
        l_hat = th.LOSSES[cell.loss](v).mean(1)
        points = torch.cat([x, pos.reshape(x.shape[0], -1, x.shape[-1]), neg.reshape(x.shape[0], -1, x.shape[-1])], 1)
        R = torch.cat([z, zp.reshape(z.shape[0], -1, z.shape[-1]), zn.reshape(z.shape[0], -1, z.shape[-1])], 1)
        R = R.double().norm(dim=-1).amax(1)
    norms = param_norms(p)
    M = x.shape[1]
    rad, gen = [], []
    for g in range(x.shape[0]):
        pts = points[g].double().cpu().numpy()
        if cell.encoder.kind == "linear":
            r = th.rademacher_linear(pts, float(norms["W_fro"][g]), cell.encoder.out_dim)
        else:
            pts = np.hstack([pts, np.ones((pts.shape[0], 1))])
            b1 = float(np.hypot(float(norms["W1_fro"][g]), float(norms["b1_l2"][g])))
            r = th.rademacher_mlp(pts, b1, float(norms["W2_fro"][g]), cell.encoder.out_dim)
        rad.append(r)
        gen.append(th.gen_term(r, float(R[g]), k, M, cell.eval.delta, cell.loss))
    return {"L_hat_un": l_hat.cpu().numpy(), "R": R.cpu().numpy(), "Rad_S": np.asarray(rad),
            "Gen_M": np.asarray(gen), "M": np.full(x.shape[0], M), "delta": np.full(x.shape[0], cell.eval.delta)}


def block_loss(ev, enc) -> dict:
    """``EvalSet._block_loss`` of main."""
    cell = ev.cell
    b = ev.model.sample_blocks(cell.eval.n_tuples // 4, cell.block_size, ev.rng)
    x, pos, neg = (as_tensor(b[key], ev.device)[None] for key in ("x", "pos", "neg"))
    with torch.no_grad():
        zx = enc(x)
        G = zx.shape[0]
        zp = enc(pos.reshape(1, -1, pos.shape[-1])).reshape(G, *pos.shape[1:3], -1).mean(2)
        zn = enc(neg.reshape(1, -1, neg.shape[-1])).reshape(G, *neg.shape[1:3], -1).mean(2)
        v = (zx * (zp - zn)).sum(-1, keepdim=True).double()
        per = th.LOSSES[cell.loss](v)
    return {"L_block": per.mean(1).cpu().numpy(),
            "L_block_se": (per.std(1) / per.shape[1] ** 0.5).cpu().numpy()}
