"""One zoo cell: train one objective (all seeds as one batched model) on one data variant, then measure it.

Randomness: the latent-class model, the pairs, the minibatches, the corruption noise and the encoder's
initialisation come from (data-spec hash, seed, stream), NOT from the cell id, so every objective on one data
variant trains on the same pairs in the same order from the same encoder; only the objective differs. The
evaluation pools and the probes' labelled samples are those of ``experiments.contrastive_run._EvalSet`` under the
data-spec hash too: every encoder of a variant is probed on the same ground truth.

Momentum and EMA targets (MoCo v2's key encoder, BYOL's target) are tensors with the same leading model axis G
as the online parameters; the loss function updates them in place before each step from the online parameters
(target_s = m target_{s-1} + (1 - m) theta_s, target_0 = theta_0: the papers' update after each optimiser step),
so a batch of G models equals G models run one by one. MoCo's queue is (G, K, d), first in, first out.

Measured at the last step, per seed: the probe curve (``probe_*`` rows), Lemma 4.3's terms (L_un, L_sup_mu,
tau, ... from ``theory.contrastive.mc_terms``, base-2 logistic, k = 1), the collapse measures of
``theory.zoo.collapse_diagnostic`` on the test points, the final training loss, and for the reconstruction
objectives the test reconstruction error (the VAE: its two ELBO terms).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from experiments import objectives
from experiments.contrastive_config import Cell as ContrastiveCell
from experiments.contrastive_config import TrainSpec as ContrastiveTrain
from experiments.contrastive_run import _Batches, _encode_tuple, _EvalSet, _per_model, _rows
from experiments.encoders import encode, init_encoder
from experiments.engine.config import config_hash, to_json
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.timing import stage
from experiments.engine.train import train
from experiments.zoo_config import Cell, modality_b
from synthetic_data.contrastive import build_model as _build_latent
from synthetic_data.zoo import GridSpec, build_grid_model, jigsaw_maps, rotation_maps
from theory.zoo import BENCHES, collapse_diagnostic

RECONSTRUCTION = BENCHES["reconstruction"]
PRETEXT = BENCHES["pretext"]
PREDICTOR = ("byol", "simsiam")
MOMENTUM = ("moco_v2", "byol", "byol_nopred")


def build_model(spec, rng):
    """The cell's ground-truth model: a grid-image model for the pretext bench, else the latent-class model."""
    return build_grid_model(spec, rng) if isinstance(spec, GridSpec) else _build_latent(spec, rng)


def pretext_maps(cell: Cell) -> np.ndarray:
    """(P, side^2) pixel permutations of the cell's pretext task: the 4 rotations or the 24 jigsaw orders."""
    side = cell.data.side
    return rotation_maps(side) if cell.objective == "rotation" else jigsaw_maps(side)


def _part(p: dict, prefix: str) -> dict:
    """The sub-network stored under ``prefix`` (keys without it); "" gives the encoder (keys without a prefix)."""
    if prefix:
        return {k[len(prefix):]: v for k, v in p.items() if k.startswith(prefix)}
    return {k: v for k, v in p.items() if "_" not in k}


def _net(p: dict, x: torch.Tensor) -> torch.Tensor:
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
    enc = None if params is None else _part(params, "")
    d = cell.encoder.out_dim

    def f(x: torch.Tensor) -> torch.Tensor:
        x = x.expand(G, *x.shape[1:]) if x.shape[0] == 1 else x
        if enc is None:
            return x
        z = encode(enc, x)
        return z[..., :d] if cell.objective == "vae" else z
    return f


class _Noise:
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
            self.x = _per_model([xy[0] for xy in labelled], 1, device)
            self.y = torch.as_tensor(np.stack([xy[1] for xy in labelled]), device=device)
        elif self.obj in PRETEXT:
            self.x = _per_model([model.sample_x(model.sample_classes(tr.n_pairs, r), r) for r in rngs], 1, device)
            self.maps = torch.as_tensor(pretext_maps(cell), device=device)
        elif self.obj == "clip":
            # a pair shares its class only: x ~ D_c of the variant's model, x+ ~ D_c of the second modality's
            spec_b = modality_b(cell.data)
            model_b = build_model(spec_b, numpy_rng(config_hash(spec_b), 1, "modality-b"))
            classes = [model.sample_classes(tr.n_pairs, r) for r in rngs]
            self.x = _per_model([model.sample_x(c, r) for c, r in zip(classes, rngs)], 1, device)
            self.pos = _per_model([model_b.sample_x(c, r) for c, r in zip(classes, rngs)], 1, device)
        else:
            pairs = [model.sample_tuples(tr.n_pairs, 1, r) for r in rngs]
            self.x = _per_model([b["x"] for b in pairs], 1, device)
            self.pos = _per_model([b["pos"] for b in pairs], 1, device)
            self.neg = _per_model([b["neg"] for b in pairs], 1, device)
        batch = min(tr.batch_size, self.x.shape[1])
        self.batches = _Batches(batch_rngs, tr.steps, batch, self.x.shape[1], 1, device)
        self.noise = _Noise(data_id, seeds, "corruption", device)
        self.target = None
        if self.obj in MOMENTUM:
            self.target = {k: v.detach().clone() for k, v in _part(params, "").items()}
        self.queue = None
        if self.obj == "moco_v2":
            q = _Noise(data_id, seeds, "init-queue", device).normal((tr.moco_queue, cell.encoder.out_dim))
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
        enc = _part(p, "")
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
            return objectives.clip(encode(enc, xb), encode(_part(p, "b_"), pb), p["clip_scale"])
        if obj == "logistic":
            z, zp, zn = _encode_tuple(enc, xb, pb, self.batches.take(self.neg, step))
            return objectives.logistic(z, zp, zn)
        B = xb.shape[1]
        z1, z2 = torch.split(encode(enc, torch.cat([xb, pb], 1)), [B, B], 1)
        if obj == "simclr":
            return objectives.ntxent(z1, z2, tr.simclr_temperature)
        if obj == "barlow_twins":
            return objectives.barlow_twins(z1, z2, tr.barlow_lambda)
        if obj == "vicreg":
            return objectives.vicreg(z1, z2)
        if obj == "swav":
            protos = torch.nn.functional.normalize(p["proto_W"], dim=1)
            s1 = torch.bmm(torch.nn.functional.normalize(z1, dim=-1), protos)
            s2 = torch.bmm(torch.nn.functional.normalize(z2, dim=-1), protos)
            return objectives.swav(s1, s2, tr.swav_temperature, tr.sinkhorn_eps)
        if obj == "simsiam":
            pred = _part(p, "pred_")
            return objectives.simsiam(_net(pred, z1), _net(pred, z2), z1, z2)
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
            pred = _part(p, "pred_")
            return objectives.byol(_net(pred, z1), _net(pred, z2), t1, t2)
        if obj == "byol_nopred":
            return objectives.byol(z1, z2, t1, t2)
        raise ValueError(f"objective: unknown {obj!r}")

    def _reconstruction(self, p: dict, enc: dict, xb: torch.Tensor) -> torch.Tensor:
        obj, tr = self.obj, self.tr
        dec = _part(p, "dec_")
        if obj == "autoencoder":
            return objectives.mse(_net(dec, encode(enc, xb)), xb)
        if obj == "dae":
            return objectives.mse(_net(dec, encode(enc, xb + tr.dae_noise * self.noise.normal(xb.shape[1:]))), xb)
        if obj == "mae":
            mask = (self.noise.uniform(xb.shape[1:]) < tr.mask_frac).to(xb.dtype)
            return objectives.mse(_net(dec, encode(enc, xb * (1 - mask))), xb, mask)
        h = encode(enc, xb)
        d = h.shape[-1] // 2
        mu, logvar = h[..., :d], h[..., d:].clamp(-10, 10)
        z = mu + torch.exp(0.5 * logvar) * self.noise.normal(mu.shape[1:])
        return objectives.vae(xb, _net(dec, z), mu, logvar, tr.vae_sigma2)


def train_cell(cell: Cell, model, data_id: str, device: str = "cpu"):
    """Train the cell's objective: returns (final params, the Objective with its state and loss history)."""
    params = init_params(cell, data_id, model.input_dim, device)
    loss_fn = Objective(cell, model, data_id, params, device)
    (_, final), = train(params, loss_fn, cell.train.steps, cell.train.lr, [cell.train.steps], context=to_json(cell),
                        weight_decay=cell.train.weight_decay)
    return final, loss_fn


def _contrastive_cell(cell: Cell) -> ContrastiveCell:
    """The contrastive chapter's cell that its evaluation set reads (k = 1, the base-2 logistic loss)."""
    return ContrastiveCell(cell.objective, "logistic", 1, 1, tuple(cell.probe_n), cell.seeds, cell.data, cell.encoder,
                           ContrastiveTrain(), cell.eval)


def run(cell: Cell, cell_id: str, device: str = "cpu") -> pd.DataFrame:
    data_id = config_hash(cell.data)
    model = build_model(cell.data, numpy_rng(data_id, 0, "latent-model"))
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
        ev = _EvalSet(_contrastive_cell(cell), model, data_id, device)
        f = representation(cell, params)
        values["mean_acc"] = ev.mean_classifier_accuracy(f)
        z_test = f(ev.x_test)
        for key, val in collapse_diagnostic(z_test).items():
            values[key] = val
        if cell.objective in RECONSTRUCTION:
            values.update(_reconstruction_metrics(cell, params, ev.x_test, data_id))
        with stage("theory"):
            values.update(ev.theory_terms(f, None, None))
        rows = _rows(base, step, values, seeds_lrs)
        with stage("probes"):
            rows += ev.probe_rows(f, base, step, seeds_lrs)
    return pd.DataFrame(rows)


def _reconstruction_metrics(cell: Cell, params: dict, x: torch.Tensor, data_id: str) -> dict:
    """Test reconstruction error (mean squared, per coordinate) and, for the VAE, its ELBO terms in nats."""
    G = len(cell.seeds)
    xg = x.expand(G, *x.shape[1:])
    enc, dec = _part(params, ""), _part(params, "dec_")
    h = encode(enc, xg)
    if cell.objective != "vae":
        return {"recon_mse": objectives.mse(_net(dec, h), xg).cpu().numpy()}
    d = h.shape[-1] // 2
    mu, logvar = h[..., :d], h[..., d:].clamp(-10, 10)
    eps = _Noise(data_id, cell.seeds, "eval-vae", x.device.type).normal(mu.shape[1:])
    terms = objectives.vae_terms(xg, _net(dec, mu + torch.exp(0.5 * logvar) * eps), mu, logvar, cell.train.vae_sigma2)
    return {"recon_mse": objectives.mse(_net(dec, mu), xg).cpu().numpy(),
            "elbo_reconstruction": terms["reconstruction"].cpu().numpy(), "elbo_kl": terms["kl"].cpu().numpy(),
            "elbo": (-(terms["reconstruction"] + terms["kl"])).cpu().numpy()}
