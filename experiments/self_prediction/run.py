"""One self-prediction cell: sample, fit every pretext learner for every seed, probe every representation at
every labelled size n, measure the excess risk against the exact f*, and record the theorem's terms.

Randomness: every stream comes from the data spec's hash (experiments.engine.rng), so every cell on the same data spec
sees the same model, the same labelled and test samples and, for equal n1, the same pretext pairs: a learner's
numbers do not depend on which other learners or studies share its cell, and the pretext-budget curves differ
only by n1. Streams: "model" (seed 0), "pretext", "labels", "learner-<name>" (per seed), "test" (seed 0).

Representations: "psi_star" (psi* reduced to its top r = n_latent - 1 principal components, Remark 4.1),
"psi_star_full" (psi* in R^d2, no reduction), "raw" (X1, p = d1), each learner (reduced like psi*) and, for the
regression learners, "<learner>_full" (the learned psi in R^d2, no reduction). The PCA is fitted on the seed's
pretext sample. Where psi* spans fewer than d2 dimensions (exact CI: k - 1), the unreduced probe is rank
deficient and the min-norm OLS gives the same predictions as the reduced one.

Rows (tidy, long): representation, seed, n, metric, value, plus the cell's parameters. Metrics:
* per (representation, seed, n): "er" = mean over the n_test fresh x1 of ||f*(x1) - probe(x1)||^2 (no 1/2),
  "acc" = the probe's argmax accuracy against the test labels;
* per (representation, seed), n = 0: "p" (probe features), "e_apx" (the probed features); for "psi_star" the
  rigorous exact-CI bound's terms "sigma2_eff", "sigma2_eff_se" and "leverage_max"; for
  representations reduced by PCA, "e_apx_full" (unreduced); for the regression learners "eps_pre2" =
  mean ||psi(x1) - psi*(x1)||^2 on the test x1 and its "eps_pre2_se";
* representation "data", seed -1, n = 0: "sigma2", "sigma2_se", "eps_ci2", "eps_ci2_se", "beta", "trivial",
  "n_latent", "r" (the PCA rank), "bayes_acc" (accuracy of argmax f*).
Every bound of analysis/self_prediction.py is recomputed from these rows.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from experiments.engine.config import config_hash
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.timing import stage
from experiments.self_prediction.config import Cell
from experiments.self_prediction.learners import REGRESSION, fit, lstsq_intercept
from synthetic_data.self_prediction import build_model
from theory import self_prediction as th


def _t(a) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64)


def _stack(arrays) -> Tensor:
    return _t(np.stack(arrays))


def _psi_star_map(model):
    """psi* as a feature map on (S or 1, N, d1), remembering the blocks it has mapped: "psi_star" and
    "psi_star_full" read the same pretext and labelled blocks, and for the nonlinear family each evaluation is a
    quadrature over every row (the same numbers, computed once)."""
    seen: list[tuple[Tensor, Tensor]] = []

    def phi(x: Tensor) -> Tensor:
        for block, out in seen:
            if block is x:   # identity, not equality: the caller's block object, held here so its id stays
                return out
        out = _stack([model.psi_star(xs.numpy()) for xs in x])
        seen.append((x, out))
        return out
    return phi


def _pca(F: Tensor, r: int):
    """Centre and, where q > r, project on the top r principal components: (mean (S,1,q), basis (S,q,p))."""
    mean = F.mean(1, keepdim=True)
    q = F.shape[2]
    if q <= r:
        return mean, torch.eye(q, dtype=F.dtype).expand(F.shape[0], q, q)
    Fc = F - mean
    _, vecs = torch.linalg.eigh(Fc.transpose(1, 2) @ Fc / F.shape[1])   # ascending eigenvalues
    return mean, vecs[..., -r:]


def _probe(Ftr: Tensor, Y: Tensor, ns, Fte: Tensor, f_te: np.ndarray, y_te: np.ndarray):
    """OLS probes with intercept for every (seed, n) in one batched solve.

    Ftr (S, n_max, p) features of each seed's labelled sample, Y (S, n_max, k) one-hot labels; the probe at size
    n reads the first n rows. Fte (S or 1, n_test, p). Returns er, acc: (S, L) arrays.
    """
    S, n_max, _ = Ftr.shape
    L = len(ns)
    w = (torch.arange(n_max)[None, :] < torch.as_tensor(ns)[:, None]).double()     # (L, n_max)
    coef, icpt = lstsq_intercept(Ftr.repeat_interleave(L, 0), Y.repeat_interleave(L, 0), w.repeat(S, 1))
    coef, icpt = coef.view(S, L, *coef.shape[1:]), icpt.view(S, L, *icpt.shape[1:])
    f, y = _t(f_te), torch.as_tensor(y_te)
    er, acc = np.empty((S, L)), np.empty((S, L))
    for s in range(S):
        pred = Fte[min(s, Fte.shape[0] - 1)][None] @ coef[s] + icpt[s]                 # (L, n_test, k)
        er[s] = ((pred - f) ** 2).sum(-1).mean(-1).numpy()
        acc[s] = (pred.argmax(-1) == y).double().mean(-1).numpy()
    return er, acc


def _data_terms(model, x_te, y_te, f_te, psi_te) -> dict:
    """The theorem's terms of the data, on the test sample (Monte Carlo with SE where stated in theory/)."""
    sigma2, sigma2_se = th.label_noise(f_te)
    eps2, eps2_se = th.epsilon_ci2(psi_te, model.ci_target(x_te))
    return {"sigma2": sigma2, "sigma2_se": sigma2_se, "eps_ci2": eps2, "eps_ci2_se": eps2_se,
            "beta": th.beta(model.A_latent, model.latent_probs, model.latent_label, model.k),
            "trivial": th.trivial_risk(f_te), "n_latent": model.n_latent, "r": model.n_latent - 1,
            "bayes_acc": float(np.mean(f_te.argmax(1) == y_te))}


def _chernoff_terms(model, mean: Tensor, V: Tensor, F_te: Tensor, f_te: np.ndarray) -> dict:
    """The rigorous exact-CI bound's terms for PCA(psi*) of one seed: sigma2_eff (leverage-weighted label noise,
    with its SE) and L, the largest leverage: at the rows of A_latent (the latent means of X2) under CI, and never
    below the largest test-point leverage outside it (theory.self_prediction.leverage_max)."""
    z = F_te.numpy()
    s2, s2_se = th.effective_noise(z, f_te)
    vertices = ((_t(model.A_latent) - mean) @ V).numpy()
    return {"sigma2_eff": s2, "sigma2_eff_se": s2_se, "leverage_max": th.leverage_max(vertices, z)}


def _representations(cell: Cell, dh: str, psi_map, x1_pre: Tensor, x2_pre: Tensor, device: str,
                     n_latent: int) -> list:
    """(name, feature map or None for raw X1, reduce by PCA): psi* reduced (Remark 4.1) and whole, raw X1, then
    each learner fitted on the pretext pairs (reduced; the regression learners also whole)."""
    reps = [("psi_star", psi_map, True), ("psi_star_full", psi_map, False), ("raw", None, False)]
    # the softmax head's atoms default to the data's n_latent: the smallest head that contains psi*
    spec = cell.pretext if cell.pretext.softmax_atoms else replace(cell.pretext, softmax_atoms=n_latent)
    for name in cell.learners:
        gens = [torch_generator(dh, s, f"learner-{name}") for s in cell.seeds]
        phi = fit(name, x1_pre, x2_pre, spec, gens, device)
        reps.append((name, phi, True))
        if name in REGRESSION:   # a learned psi is also probed whole (Theorem 4.2 without Remark 4.1's PCA)
            reps.append((f"{name}_full", phi, False))
    return reps


def run_cell(cell: Cell, cell_id: str, device: str = "cpu") -> pd.DataFrame:
    """Fit every pretext learner of the cell on n1 unlabelled pairs (seeds batched) and probe each representation.

    psi* and raw X1 are always probed beside the learners, on the same labelled samples and the same probe, so
    the rows compare representations and nothing else. The samples come from the data spec's hash, not the cell
    id, so cells on one distribution share them. Returns tidy rows with the excess risk and the CI terms that
    ``analysis.self_prediction.bound_checks`` needs.
    """
    dh = config_hash(cell.data)
    model = build_model(cell.data, numpy_rng(dh, 0, "model"))
    seeds, ns, ev = list(cell.seeds), list(cell.eval.probe_n), cell.eval
    pre = [model.sample(cell.pretext.n1, numpy_rng(dh, s, "pretext")) for s in seeds]
    lab = [model.sample(max(ns), numpy_rng(dh, s, "labels")) for s in seeds]
    x_te, _, y_te = model.sample(ev.n_test, numpy_rng(dh, 0, "test"))
    f_te, psi_te = model.posterior(x_te), model.psi_star(x_te)
    x1_pre, x2_pre = _stack([p[0] for p in pre]), _stack([p[1] for p in pre])
    x1_lab = _stack([l[0] for l in lab])
    Y = torch.nn.functional.one_hot(torch.as_tensor(np.stack([l[2] for l in lab])), model.k).double()
    X_te = _t(x_te)[None]

    base = {"family": cell.data.family, "k": model.k, "d1": model.d1, "d2": model.d2, "m": cell.data.m,
            "alpha": cell.data.alpha, "nuisance_scale": cell.data.nuisance_scale, "n1": cell.pretext.n1,
            "studies": "+".join(cell.studies), "n_fixed": ev.n_fixed, "target_fraction": ev.target_fraction}
    rows: list[dict] = []

    def add(rep, seed, n, metric, value):
        rows.append({**base, "representation": rep, "seed": seed, "n": n, "metric": metric, "value": float(value)})

    r = model.n_latent - 1
    with stage("theory"):
        data_terms = _data_terms(model, x_te, y_te, f_te, psi_te)
    for metric, value in data_terms.items():
        add("data", -1, 0, metric, value)

    psi_map = _psi_star_map(model)
    psi_full = _t(psi_te)[None]
    for rep, phi, reduce in _representations(cell, dh, psi_map, x1_pre, x2_pre, device, model.n_latent):
        if phi is None:          # raw X1: the probe's own features, no reduction (p = d1)
            Ftr, Fte, full_te = x1_lab, X_te, None
        else:
            full_te = psi_full if phi is psi_map else phi(X_te)                  # (1 or S, n_test, q)
            mean, V = _pca(phi(x1_pre), r if reduce else full_te.shape[-1])
            Ftr, Fte = (phi(x1_lab) - mean) @ V, (full_te - mean) @ V
        with stage("probes"):
            er, acc = _probe(Ftr, Y, ns, Fte, f_te, y_te)
        apx: dict[tuple[str, int], float] = {}   # a block shared by all seeds (1, n_test, .) is fitted once

        def e_apx(name: str, F: Tensor, i: int) -> float:
            j = min(i, F.shape[0] - 1)
            if (name, j) not in apx:
                with stage("theory"):
                    apx[name, j] = th.approx_error(F[j].numpy(), f_te)
            return apx[name, j]

        for i, s in enumerate(seeds):
            add(rep, s, 0, "p", Fte.shape[2])
            if rep == "psi_star":
                with stage("theory"):
                    chernoff = _chernoff_terms(model, mean[i, 0], V[i], Fte[min(i, Fte.shape[0] - 1)], f_te)
                for metric, value in chernoff.items():
                    add(rep, s, 0, metric, value)
            add(rep, s, 0, "e_apx", e_apx("e_apx", Fte, i))
            if full_te is not None and full_te.shape[-1] > Fte.shape[2]:
                add(rep, s, 0, "e_apx_full", e_apx("e_apx_full", full_te, i))
            if rep.removesuffix("_full") in REGRESSION:
                d = ((full_te[i].numpy() - psi_te) ** 2).sum(1)
                add(rep, s, 0, "eps_pre2", d.mean())
                add(rep, s, 0, "eps_pre2_se", d.std(ddof=1) / np.sqrt(len(d)))
            for l, n in enumerate(ns):
                add(rep, s, n, "er", er[i, l])
                add(rep, s, n, "acc", acc[i, l])
    return pd.DataFrame(rows)
