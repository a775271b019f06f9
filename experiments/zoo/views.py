"""The zoo's latent-class benches (two views, reconstruction, pretext): objectives, training, measurement.

Shared with the graph and sequence benches: the parameter helpers ``part`` and ``net``, the seeded noise ``Noise``
and ``probe_curve_rows``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize_scalar

from analysis.probes import fit_logistic_probes, subsample_per_class
from experiments import objectives
from experiments.encoders import encode, init_encoder
from experiments.engine.config import config_hash, to_json
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.timing import stage
from experiments.engine.train import train
from experiments.latent_eval import (
    Batches,
    EvalSet,
    Target,
    encode_tuple,
    metric_rows,
    per_model,
    probe_metric_rows,
)
from experiments.zoo.config import Cell, modality_b
from synthetic_data.contrastive import build_model as _build_latent
from synthetic_data.language import DataSpec as HMMSpec
from synthetic_data.language import build_model as build_hmm
from synthetic_data.zoo import (
    GridSpec,
    SBMSpec,
    build_grid_model,
    build_sbm_model,
    jigsaw_maps,
    rotation_maps,
)
from theory import contrastive as ctr
from theory.contrastive_terms import mc_terms
from theory.zoo import BENCHES, collapse_diagnostic, correlation_rank

RECONSTRUCTION = BENCHES["reconstruction"]
PRETEXT = BENCHES["pretext"]
PREDICTOR = ("byol", "simsiam")
MOMENTUM = ("moco_v2", "byol", "byol_nopred")
SCALED = ("tau", "tau_k", "p_distinct", "collision_floor", "L_un", "L_un_se", "L_sup_mu", "L_sup_mu_se")
SCALE_RANGE = 8.0    # the search for s spans exp(+-SCALE_RANGE) around 1 / (the RMS norm of f on the selection pool)


def build_model(spec, rng):
    """The cell's ground-truth model: a grid-image model for the pretext bench, a block model for the graph bench,
    else the latent-class model."""
    if isinstance(spec, SBMSpec):
        return build_sbm_model(spec, rng)
    if isinstance(spec, HMMSpec):
        return build_hmm(spec, rng)
    return build_grid_model(spec, rng) if isinstance(spec, GridSpec) else _build_latent(spec, rng)


def pretext_maps(cell: Cell) -> np.ndarray:
    """(P, side^2) pixel permutations of the cell's pretext task: the 4 rotations or the 24 jigsaw orders."""
    side = cell.data.side
    return rotation_maps(side) if cell.objective == "rotation" else jigsaw_maps(side)


def part(p: dict, prefix: str) -> dict:
    """The sub-network stored under ``prefix`` (keys without it); "" gives the encoder (keys without a prefix)."""
    if prefix:
        return {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}
    return {k: v for k, v in p.items() if "_" not in k}


def net(p: dict, x: torch.Tensor) -> torch.Tensor:
    """A batched encoder (linear or mlp layout), plus an output bias ``b2`` where present."""
    out = encode({k: v for k, v in p.items() if k != "b2"}, x)
    return out + p["b2"] if "b2" in p else out


def init_params(cell: Cell, data_id: str, in_dim: int, device: str = "cpu") -> dict:
    """The cell's parameters, (G, ...) each: the encoder first (from stream "init", so every objective of a data
    variant starts from the same encoder), then the objective's own parts (stream "init-<part>")."""
    enc, tr, seeds = cell.encoder, cell.train, cell.seeds
    G, d = len(seeds), enc.out_dim
    gens = [torch_generator(data_id, s, "init") for s in seeds]
    out_dim = 2 * d if cell.objective == "vae" else d
    p = init_encoder(enc.kind, in_dim, out_dim, G, gens, width=enc.width, device=device)

    def extra(name, i, o, width):
        g = [torch_generator(data_id, s, f"init-{name}") for s in seeds]
        part = init_encoder("mlp", i, o, G, g, width=width, device=device)
        part["b2"] = torch.zeros(G, 1, o, device=device)
        p.update({f"{name}_{k}": v for k, v in part.items()})

    if cell.objective in PREDICTOR:
        extra("pred", d, d, tr.predictor_width)
    if cell.objective in RECONSTRUCTION:
        extra("dec", d, in_dim, tr.decoder_width)
    if cell.objective == "swav":
        g = [torch_generator(data_id, s, "init-proto") for s in seeds]
        p["proto_W"] = torch.stack([torch.randn(d, tr.swav_prototypes, generator=x) for x in g]).to(device)
    if cell.objective == "clip":
        b = modality_b(cell.data)
        g = [torch_generator(data_id, s, "init-b") for s in seeds]
        part = init_encoder(enc.kind, b.out_dim if b.nonlinear else b.dim, d, G, g, width=enc.width, device=device)
        p.update({f"b_{k}": v for k, v in part.items()})
        p["clip_scale"] = torch.full((G,), math.log(1 / tr.clip_temperature), device=device)
    if cell.objective in PRETEXT:
        g = [torch_generator(data_id, s, "init-pretext") for s in seeds]
        P = pretext_maps(cell).shape[0]
        p["pretext_W"] = torch.stack([(torch.rand(d, P, generator=x) * 2 - 1) / d ** 0.5 for x in g]).to(device)
        p["pretext_b"] = torch.zeros(G, 1, P, device=device)
    if cell.objective == "supervised":
        g = [torch_generator(data_id, s, "init-head") for s in seeds]
        C = cell.data.n_classes
        p["head_W"] = torch.stack([(torch.rand(d, C, generator=x) * 2 - 1) / d ** 0.5 for x in g]).to(device)
    return p


def representation(cell: Cell, params: dict | None):
    """x (1 or G, N, D) -> the representation (G, N, q) the probes and the theory see: the encoder's output (the
    VAE: its mean mu), or x itself for the raw reference."""
    G = len(cell.seeds)
    enc = None if params is None else part(params, "")
    d = cell.encoder.out_dim

    def f(x: torch.Tensor) -> torch.Tensor:
        x = x.expand(G, *x.shape[1:]) if x.shape[0] == 1 else x
        if enc is None:
            return x
        z = encode(enc, x)
        return z[..., :d] if cell.objective == "vae" else z
    return f


class Noise:
    """Per-step corruption draws, model g from its own seed's generator (so batched equals looped)."""

    def __init__(self, data_id: str, seeds, name: str, device: str):
        self.gens = [torch_generator(data_id, s, name) for s in seeds]
        self.device = device

    def normal(self, shape) -> torch.Tensor:
        return torch.stack([torch.randn(shape, generator=g) for g in self.gens]).to(self.device)

    def uniform(self, shape) -> torch.Tensor:
        return torch.stack([torch.rand(shape, generator=g) for g in self.gens]).to(self.device)


class Objective:
    """loss(params, step) -> (G,) for one zoo objective, with its momentum state (``target``, ``queue``) and the
    losses it returned (``history``)."""

    def __init__(self, cell: Cell, model, data_id: str, params: dict, device: str = "cpu"):
        self.cell, self.tr, self.obj = cell, cell.train, cell.objective
        seeds, tr = cell.seeds, cell.train
        rngs = [numpy_rng(data_id, s, "train-data") for s in seeds]
        batch_rngs = [numpy_rng(data_id, s, "batches") for s in seeds]
        self.history: list[torch.Tensor] = []
        if self.obj == "supervised":
            labelled = [model.sample_labelled(tr.labelled_per_class, r) for r in rngs]
            self.x = per_model([xy[0] for xy in labelled], 1, device)
            self.y = torch.as_tensor(np.stack([xy[1] for xy in labelled]), device=device)
        elif self.obj in PRETEXT:
            self.x = per_model([model.sample_x(model.sample_classes(tr.n_pairs, r), r) for r in rngs], 1, device)
            self.maps = torch.as_tensor(pretext_maps(cell), device=device)
        elif self.obj == "clip":
            # a pair shares its class only: x ~ D_c of the variant's model, x+ ~ D_c of the second modality's
            spec_b = modality_b(cell.data)
            model_b = build_model(spec_b, numpy_rng(config_hash(spec_b), 1, "modality-b"))
            classes = [model.sample_classes(tr.n_pairs, r) for r in rngs]
            self.x = per_model([model.sample_x(c, r) for c, r in zip(classes, rngs)], 1, device)
            self.pos = per_model([model_b.sample_x(c, r) for c, r in zip(classes, rngs)], 1, device)
        else:
            pairs = [model.sample_tuples(tr.n_pairs, 1, r) for r in rngs]
            self.x = per_model([b["x"] for b in pairs], 1, device)
            self.pos = per_model([b["pos"] for b in pairs], 1, device)
            self.neg = per_model([b["neg"] for b in pairs], 1, device)
        batch = min(tr.batch_size, self.x.shape[1])
        self.batches = Batches(batch_rngs, tr.steps, batch, self.x.shape[1], 1, device)
        self.noise = Noise(data_id, seeds, "corruption", device)
        self.target = None
        if self.obj in MOMENTUM:
            self.target = {k: v.detach().clone() for k, v in part(params, "").items()}
        self.queue = None
        if self.obj == "moco_v2":
            q = Noise(data_id, seeds, "init-queue", device).normal((tr.moco_queue, cell.encoder.out_dim))
            self.queue = torch.nn.functional.normalize(q, dim=-1)

    def momentum_at(self, step: int) -> float:
        """MoCo: the constant m; BYOL: tau_s = 1 - (1 - tau_base)(cos(pi s / S) + 1) / 2, from tau_base to 1."""
        m = self.tr.momentum
        if self.obj == "moco_v2":
            return m
        return 1 - (1 - m) * (math.cos(math.pi * step / max(1, self.tr.steps)) + 1) / 2

    def _update_target(self, enc: dict, step: int) -> None:
        m = self.momentum_at(step)
        with torch.no_grad():
            for k, v in self.target.items():
                v.mul_(m).add_(enc[k].detach(), alpha=1 - m)

    def __call__(self, p: dict, step: int) -> torch.Tensor:
        loss = self._loss(p, step)
        self.history.append(loss.detach())
        return loss

    def _loss(self, p: dict, step: int) -> torch.Tensor:
        obj, tr = self.obj, self.tr
        enc = part(p, "")
        xb = self.batches.take(self.x, step)
        if obj == "supervised":
            return objectives.supervised_ce(torch.bmm(encode(enc, xb), p["head_W"]), self.batches.take(self.y, step))
        if obj in RECONSTRUCTION:
            return self._reconstruction(p, enc, xb)
        if obj in PRETEXT:
            # each image gets a uniformly random transformation r; the head predicts r from f(x o map[r])
            P = self.maps.shape[0]
            r = (self.noise.uniform(xb.shape[1:2]) * P).long().clamp_max(P - 1)            # (G, B)
            xt = torch.gather(xb, 2, self.maps[r])
            return objectives.supervised_ce(torch.bmm(encode(enc, xt), p["pretext_W"]) + p["pretext_b"], r)
        pb = self.batches.take(self.pos, step)
        if obj == "clip":
            return objectives.clip(encode(enc, xb), encode(part(p, "b_"), pb), p["clip_scale"])
        if obj == "logistic":
            z, zp, zn = encode_tuple(enc, xb, pb, self.batches.take(self.neg, step))
            return objectives.logistic(z, zp, zn)
        B = xb.shape[1]
        z1, z2 = torch.split(encode(enc, torch.cat([xb, pb], 1)), [B, B], 1)
        if obj == "simclr":
            return objectives.ntxent(z1, z2, tr.simclr_temperature)
        if obj == "barlow_twins":
            return objectives.barlow_twins(z1, z2, tr.barlow_lambda_dim / z1.shape[-1])
        if obj == "barlow_twins_paper":
            return objectives.barlow_twins(z1, z2, tr.barlow_lambda)
        if obj == "vicreg":
            return objectives.vicreg(z1, z2, tr.vicreg_sim, tr.vicreg_std, tr.vicreg_cov)
        if obj == "vicreg_paper":
            return objectives.vicreg(z1, z2)     # its defaults are the paper's 25 / 25 / 1
        if obj == "swav":
            protos = torch.nn.functional.normalize(p["proto_W"], dim=1)
            s1 = torch.bmm(torch.nn.functional.normalize(z1, dim=-1), protos)
            s2 = torch.bmm(torch.nn.functional.normalize(z2, dim=-1), protos)
            return objectives.swav(s1, s2, tr.swav_temperature, tr.sinkhorn_eps)
        if obj == "simsiam":
            pred = part(p, "pred_")
            return objectives.simsiam(net(pred, z1), net(pred, z2), z1, z2)
        self._update_target(enc, step)
        with torch.no_grad():
            if obj == "moco_v2":
                k = encode(self.target, pb)
            else:
                t1, t2 = torch.split(encode(self.target, torch.cat([xb, pb], 1)), [B, B], 1)
        if obj == "moco_v2":
            loss = objectives.infonce_queue(z1, k, self.queue, tr.moco_temperature)
            kn = torch.nn.functional.normalize(k, dim=-1)
            self.queue = torch.cat([kn, self.queue], 1)[:, : tr.moco_queue]   # enqueue the newest, drop the oldest
            return loss
        if obj == "byol":
            pred = part(p, "pred_")
            return objectives.byol(net(pred, z1), net(pred, z2), t1, t2)
        if obj == "byol_nopred":
            return objectives.byol(z1, z2, t1, t2)
        raise ValueError(f"objective: unknown {obj!r}")

    def _reconstruction(self, p: dict, enc: dict, xb: torch.Tensor) -> torch.Tensor:
        obj, tr = self.obj, self.tr
        dec = part(p, "dec_")
        if obj == "autoencoder":
            return objectives.mse(net(dec, encode(enc, xb)), xb)
        if obj == "dae":
            return objectives.mse(net(dec, encode(enc, xb + tr.dae_noise * self.noise.normal(xb.shape[1:]))), xb)
        if obj == "mae":
            mask = (self.noise.uniform(xb.shape[1:]) < tr.mask_frac).to(xb.dtype)
            return objectives.mse(net(dec, encode(enc, xb * (1 - mask))), xb, mask)
        h = encode(enc, xb)
        d = h.shape[-1] // 2
        mu, logvar = h[..., :d], h[..., d:].clamp(-10, 10)
        z = mu + torch.exp(0.5 * logvar) * self.noise.normal(mu.shape[1:])
        return objectives.vae(xb, net(dec, z), mu, logvar, tr.vae_sigma2)


def train_cell(cell: Cell, model, data_id: str, device: str = "cpu"):
    """Train the cell's objective: returns (final params, the Objective with its state and loss history)."""
    params = init_params(cell, data_id, model.input_dim, device)
    loss_fn = Objective(cell, model, data_id, params, device)
    (_, final), = train(params, loss_fn, cell.train.steps, cell.train.lr, [cell.train.steps], context=to_json(cell),
                        weight_decay=cell.train.weight_decay)
    return final, loss_fn


def _target(cell: Cell) -> Target:
    """What the shared evaluation set measures for this cell (k = 1, the base-2 logistic loss)."""
    return Target(cell.objective, cell.data, cell.encoder, cell.eval, tuple(cell.probe_n))


def run_views(cell: Cell, model, data_id: str, device: str = "cpu") -> pd.DataFrame:
    """A latent-class bench's cell (two views, reconstruction, pretext): train, then measure on the shared pools."""
    seeds_lrs = [(s, cell.train.lr) for s in cell.seeds]
    base = {"objective": cell.objective, "variant": cell.variant, "n_classes": cell.data.n_classes,
            "loss": "logistic", "k": 1, "target_error": cell.eval.target_error}
    params, values, step = None, {}, 0
    if cell.objective == "random":
        params = init_params(cell, data_id, model.input_dim, device)
    elif cell.objective != "raw":
        params, loss_fn = train_cell(cell, model, data_id, device)
        step = cell.train.steps
        tail = torch.stack(loss_fn.history[-max(1, min(10, len(loss_fn.history))):])
        values["train_loss"] = tail.mean(0).cpu().numpy()
    with torch.no_grad():
        ev = EvalSet(_target(cell), model, data_id, device)
        f = representation(cell, params)
        values["mean_acc"] = ev.mean_classifier_accuracy(f)
        z_test = f(ev.x_test)
        for key, val in collapse_diagnostic(z_test, getattr(cell.data, "n_classes", None)).items():
            values[key] = val
        values["correlation_rank"] = correlation_rank(z_test)
        if cell.objective in RECONSTRUCTION:
            values.update(_reconstruction_metrics(cell, params, ev.x_test, data_id))
        with stage("theory"):
            values.update(ev.theory_terms(f, None, None))
            values.update(_chosen_scale_terms(cell, model, data_id, device, f, ev))
        rows = metric_rows(base, step, values, seeds_lrs)
        with stage("probes"):
            rows += ev.probe_rows(f, base, step, seeds_lrs)
    return pd.DataFrame(rows)


def _scaled(f, s: np.ndarray):
    """x -> s_g f_g(x) in float64, model g by its own scale."""
    s64 = torch.as_tensor(s, dtype=torch.float64)[:, None, None]
    return lambda x: f(x).double() * s64.to(x.device)


def _lemma_bound(anchor, pos, neg, mu, rho, s: float) -> float:
    """Lemma 4.3's bound (L_un - tau) / (1 - tau) of s f from one model's pools (float64, exact over classes)."""
    t = mc_terms(s * anchor, s * pos, s * neg, s * mu, rho, "logistic", 1, rng=np.random.default_rng(0))
    return float(ctr.bound_from_terms(t["L_un"], t["collision_floor"], t["p_distinct"]))


def choose_scales(sel: EvalSet, f, rho) -> tuple[np.ndarray, np.ndarray]:
    """Per model g, the s > 0 that minimises Lemma 4.3's bound for s f on the selection pool ``sel``, by a bounded
    one-dimensional search on log s (scipy's minimize_scalar). L_un(s f) = E l(s^2 v) is convex in s^2 (l is convex),
    so the search on log s meets one basin. Returns (s (G,), the bound at s on the selection pool (G,)), the latter
    optimistic by construction: only a second, independent pool reports it."""
    C = sel.cell.data.n_classes
    with torch.no_grad():
        pools = [(z := f(x).double().cpu()).reshape(z.shape[0], C, -1, z.shape[-1]) for x in sel.pools]
        zm = f(sel.mean_x).double().cpu()
        mu = zm.reshape(zm.shape[0], C, -1, zm.shape[-1]).mean(2)
    scales, bounds = [], []
    for g in range(mu.shape[0]):
        a, p, n = (pool[g] for pool in pools)
        rms = float(a.pow(2).sum(-1).mean().sqrt())
        centre = -np.log(rms) if rms > 0 else 0.0
        res = minimize_scalar(lambda u: _lemma_bound(a, p, n, mu[g], rho, float(np.exp(u))), method="bounded",
                              bounds=(centre - SCALE_RANGE, centre + SCALE_RANGE), options={"xatol": 1e-3})
        scales.append(float(np.exp(res.x)))
        bounds.append(float(res.fun))
    return np.asarray(scales), np.asarray(bounds)


def _chosen_scale_terms(cell: Cell, model, data_id: str, device: str, f, ev: EvalSet) -> dict:
    """Lemma 4.3 holds for every rescaling s f, so the scale is chosen where the bound is smallest on a selection
    pool (its own EvalSet, independent of ``ev``: its streams' identity hashes the data id with "scale-selection")
    and the lemma's terms at that scale are measured on ``ev``, the pool every other term of the cell reads:
    metrics "scale", "scale_selection_bound" and "scaled_<term>" for the terms of SCALED."""
    sel = EvalSet(_target(cell), model, config_hash({"data": data_id, "pool": "scale-selection"}), device)
    s, sel_bound = choose_scales(sel, f, model.rho)
    terms = ev.theory_terms(_scaled(f, s), None, None)
    return {"scale": s, "scale_selection_bound": sel_bound, **{f"scaled_{k}": terms[k] for k in SCALED}}


def _reconstruction_metrics(cell: Cell, params: dict, x: torch.Tensor, data_id: str) -> dict:
    """Test reconstruction error (mean squared, per coordinate) and, for the VAE, its ELBO terms in nats."""
    G = len(cell.seeds)
    xg = x.expand(G, *x.shape[1:])
    enc, dec = part(params, ""), part(params, "dec_")
    h = encode(enc, xg)
    if cell.objective != "vae":
        return {"recon_mse": objectives.mse(net(dec, h), xg).cpu().numpy()}
    d = h.shape[-1] // 2
    mu, logvar = h[..., :d], h[..., d:].clamp(-10, 10)
    eps = Noise(data_id, cell.seeds, "eval-vae", x.device.type).normal(mu.shape[1:])
    terms = objectives.vae_terms(xg, net(dec, mu + torch.exp(0.5 * logvar) * eps), mu, logvar, cell.train.vae_sigma2)
    return {"recon_mse": objectives.mse(net(dec, mu), xg).cpu().numpy(),
            "elbo_reconstruction": terms["reconstruction"].cpu().numpy(), "elbo_kl": terms["kl"].cpu().numpy(),
            "elbo": (-(terms["reconstruction"] + terms["kl"])).cpu().numpy()}


def probe_curve_rows(cell: Cell, f_pool: torch.Tensor, y_pool: np.ndarray, f_test: torch.Tensor,
                     y_test: np.ndarray, K: int, base: dict, step: int, data_id: str, seeds_lrs) -> list:
    """The probe curve of model g: trained on n labelled examples per class of its own pool f_pool[g] (G, P, q)
    with labels y_pool[g] (G, P) (nested subsets, stream "probe-subsets"), tested on f_test[g] (G, T, q) with
    labels y_test[g] (G, T); rows as ``EvalSet.probe_rows``."""
    ns, G = list(cell.probe_n), len(cell.seeds)
    L = len(ns)
    sub = [subsample_per_class(y_pool[g], ns, numpy_rng(data_id, s, "probe-subsets"))
           for g, s in enumerate(cell.seeds)]
    idx = torch.as_tensor(np.stack([s[0] for s in sub]))                                         # (G, L, width)
    w = torch.as_tensor(np.stack([s[1] for s in sub])).reshape(G * L, -1)
    f_pool = f_pool.double().cpu()
    X = f_pool[torch.arange(G)[:, None, None], idx].reshape(G * L, idx.shape[-1], -1)
    yt = torch.as_tensor(y_pool)[torch.arange(G)[:, None, None], idx].reshape(G * L, -1)
    fit = fit_logistic_probes(X, yt, w, K, C=cell.eval.probe_C)
    x_test = f_test.double().cpu().repeat_interleave(L, dim=0)
    y_t = torch.as_tensor(y_test).repeat_interleave(L, dim=0)
    return probe_metric_rows(fit, x_test, y_t, ns, base, step, seeds_lrs)
