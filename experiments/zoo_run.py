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
from experiments.contrastive_run import _Batches, _encode_tuple, _EvalSet, _per_model, _rows, probe_metric_rows
from experiments.encoders import encode, init_encoder
from experiments.engine.config import config_hash, to_json
from experiments.engine.rng import numpy_rng, torch_generator
from experiments.engine.timing import stage
from experiments.engine.train import gather_rows, train
from experiments.zoo_config import Cell, modality_b
from synthetic_data.contrastive import build_model as _build_latent
from analysis.probes import fit_logistic_probes, subsample_per_class
from synthetic_data.language import DataSpec as HMMSpec
from synthetic_data.language import build_model as build_hmm
from synthetic_data.language_tasks import TaskSpec, make_task
from synthetic_data.zoo import (GridSpec, SBMSpec, build_grid_model, build_sbm_model, jigsaw_maps,
                                normalised_adjacency, rotation_maps)
from theory import zoo as th
from theory.zoo import BENCHES, collapse_diagnostic

RECONSTRUCTION = BENCHES["reconstruction"]
PRETEXT = BENCHES["pretext"]
PREDICTOR = ("byol", "simsiam")
MOMENTUM = ("moco_v2", "byol", "byol_nopred")


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
    if isinstance(cell.data, SBMSpec):
        return run_graph(cell, model, data_id, device)
    if isinstance(cell.data, HMMSpec):
        return run_sequences(cell, model, data_id, device)
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



# ============================================================================================= the graph bench
# Deep Graph Infomax on the stochastic block model (synthetic_data.zoo.SBMSpec). Each seed draws its own graph and
# node features from the one block model of the data spec (stream "graph"), and its own split of every block into
# probe_test_per_class test nodes and a labelled pool (stream "graph-split"); the encoder is a one-layer GCN
# H = ReLU(A^ X W), A^ = D~^{-1/2}(A + I)D~^{-1/2}, W (G, D, d) from stream "init" (Glorot uniform), shared by
# the random, supervised and DGI cells of a variant. Training is full batch (every node every step). DGI's
# corruption is a fresh row permutation of X per step, per seed (stream "corruption"). No Lemma 4.3 terms are
# measured here: a node's representation reads its neighbours, so there are no i.i.d. positive pairs of the
# latent-class model to read the lemma on (docs/theory/zoo.md#bench-5-graphs).


def gcn(W: torch.Tensor, a_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """One GCN layer, batched: ReLU(A^ X W); W (G, D, d), a_hat (G, N, N), x (G, N, D) -> (G, N, d)."""
    return torch.relu(torch.bmm(a_hat, torch.bmm(x, W)))


class Graphs:
    """The cell's graphs (one per seed, stacked along G), their propagation matrices, features and splits."""

    def __init__(self, cell: Cell, model, data_id: str, device: str = "cpu"):
        drawn = [model.sample_graph(numpy_rng(data_id, s, "graph")) for s in cell.seeds]
        self.a = torch.as_tensor(np.stack([g[0] for g in drawn]), device=device)         # (G, N, N)
        self.a_hat = normalised_adjacency(self.a)
        self.x = torch.as_tensor(np.stack([g[1] for g in drawn]), device=device)         # (G, N, D)
        self.y = model.labels
        n_test = cell.eval.probe_test_per_class          # graphs.test_per_class (zoo_config.cells)
        test, pool = [], []
        for s in cell.seeds:
            r = numpy_rng(data_id, s, "graph-split")
            perms = [r.permutation(np.flatnonzero(self.y == c)) for c in range(model.n_classes)]
            test.append(np.concatenate([q[:n_test] for q in perms]))
            pool.append(np.concatenate([q[n_test:] for q in perms]))
        self.test, self.pool = np.stack(test), np.stack(pool)                              # (G, K n_test), (G, P)


def graph_init_params(cell: Cell, data_id: str, in_dim: int, device: str = "cpu") -> dict:
    """The GCN weight W (G, D, d), Glorot uniform from stream "init", then DGI's discriminator (disc_W (G, d, d),
    Glorot uniform from "init-disc", disc_b = 0, as the official code) or the supervised head (head_W, head_b)."""
    G, d, seeds = len(cell.seeds), cell.encoder.out_dim, cell.seeds

    def glorot(i, o, stream):
        a = math.sqrt(6.0 / (i + o))
        return torch.stack([(torch.rand(i, o, generator=torch_generator(data_id, s, stream)) * 2 - 1) * a
                            for s in seeds]).to(device)
    p = {"W": glorot(in_dim, d, "init")}
    if cell.objective == "dgi":
        p["disc_W"] = glorot(d, d, "init-disc")
        p["disc_b"] = torch.zeros(G, device=device)
    if cell.objective == "supervised":
        p["head_W"] = glorot(d, cell.data.n_classes, "init-head")
        p["head_b"] = torch.zeros(G, 1, cell.data.n_classes, device=device)
    return p


def graph_labelled(cell: Cell, graphs: Graphs) -> np.ndarray:
    """(G, K n) the supervised reference's labelled nodes: the first n = min(labelled_per_class, pool per block)
    of every block of the seed's labelled pool (the pool is laid out block by block, already shuffled)."""
    K = cell.data.n_classes
    per = graphs.pool.shape[1] // K
    n = min(cell.train.labelled_per_class, per)
    return graphs.pool.reshape(len(cell.seeds), K, per)[:, :, :n].reshape(len(cell.seeds), -1)


class GraphObjective:
    """loss(params, step) -> (G,) for DGI or the supervised GCN, with the losses it returned (``history``)."""

    def __init__(self, cell: Cell, graphs: Graphs, data_id: str, device: str = "cpu"):
        self.cell, self.g, self.obj, self.device = cell, graphs, cell.objective, device
        self.history: list[torch.Tensor] = []
        self.gens = [torch_generator(data_id, s, "corruption") for s in cell.seeds]
        if self.obj == "supervised":
            idx = graph_labelled(cell, graphs)
            self.idx = torch.as_tensor(idx, device=device)
            self.y = torch.as_tensor(graphs.y[idx], device=device)

    def corruption(self) -> torch.Tensor:
        """(G, N) this step's row permutation of each seed's node features."""
        N = self.g.x.shape[1]
        return torch.stack([torch.randperm(N, generator=g) for g in self.gens]).to(self.device)

    def __call__(self, p: dict, step: int) -> torch.Tensor:
        loss = self._loss(p)
        self.history.append(loss.detach())
        return loss

    def _loss(self, p: dict) -> torch.Tensor:
        g = self.g
        h = gcn(p["W"], g.a_hat, g.x)
        if self.obj == "supervised":
            logits = torch.bmm(gather_rows(h, self.idx), p["head_W"]) + p["head_b"]
            return objectives.supervised_ce(logits, self.y)
        if self.obj == "dgi":
            h_corrupt = gcn(p["W"], g.a_hat, gather_rows(g.x, self.corruption()))
            return objectives.dgi(h, h_corrupt, objectives.dgi_readout(h), p["disc_W"], p["disc_b"])
        raise ValueError(f"objective: unknown graph objective {self.obj!r}")


def train_graph_cell(cell: Cell, model, graphs: Graphs, data_id: str, device: str = "cpu"):
    params = graph_init_params(cell, data_id, model.input_dim, device)
    loss_fn = GraphObjective(cell, graphs, data_id, device)
    (_, final), = train(params, loss_fn, cell.train.steps, cell.train.lr, [cell.train.steps], context=to_json(cell),
                        weight_decay=cell.train.weight_decay)
    return final, loss_fn


def graph_representation(cell: Cell, model, graphs: Graphs, params: dict | None) -> torch.Tensor:
    """(G, N, q) every node's representation: the features (raw), the top-K eigenvectors of the expected
    normalised adjacency (spectral; the same for every seed, the block sizes being fixed), or the GCN's output."""
    G = len(cell.seeds)
    if cell.objective == "raw":
        return graphs.x
    if cell.objective == "spectral":
        sp = cell.data
        v = th.sbm_top_eigenvectors(model.labels, model.sizes, sp.p_in, sp.p_out, sp.n_classes)
        return torch.as_tensor(v, dtype=torch.float32, device=graphs.x.device).expand(G, -1, -1)
    return gcn(params["W"], graphs.a_hat, graphs.x)


def spectral_values(cell: Cell, model, graphs: Graphs) -> dict:
    """The block model's exact spectral quantities (the same for every seed) and the observed graphs' own:
    expected_eig_1..K+1 (E[A], decreasing), expected_eigengap (lambda_K - lambda_K+1 of E[A]), the same gap of
    the expected normalised adjacency, and per seed the eigengap of the observed normalised adjacency."""
    sp, K, G = cell.data, cell.data.n_classes, len(cell.seeds)
    ev = th.sbm_adjacency_spectrum(model.sizes, sp.p_in, sp.p_out)
    nev = th.sbm_normalised_spectrum(model.sizes, sp.p_in, sp.p_out)
    out = {f"expected_eig_{i + 1}": np.full(G, ev[i]) for i in range(K + 1)}
    out["expected_eigengap"] = np.full(G, th.sbm_eigengap(ev, K))
    out["expected_norm_eigengap"] = np.full(G, th.sbm_eigengap(nev, K))
    obs = torch.linalg.eigvalsh(graphs.a_hat.double().cpu()).flip(-1).numpy()                    # (G, N)
    out["observed_norm_eigengap"] = obs[:, K - 1] - obs[:, K]
    return out


def probe_curve_rows(cell: Cell, f_pool: torch.Tensor, y_pool: np.ndarray, f_test: torch.Tensor,
                     y_test: np.ndarray, K: int, base: dict, step: int, data_id: str, seeds_lrs) -> list:
    """The probe curve of model g: trained on n labelled examples per class of its own pool f_pool[g] (G, P, q)
    with labels y_pool[g] (G, P) (nested subsets, stream "probe-subsets"), tested on f_test[g] (G, T, q) with
    labels y_test[g] (G, T); rows as ``_EvalSet.probe_rows``."""
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


def graph_probe_rows(cell: Cell, graphs: Graphs, f: torch.Tensor, base: dict, step: int, data_id: str,
                     seeds_lrs) -> list:
    """The probe curve on the graph: model g's probe trains on n labelled nodes per block of its own pool and is
    tested on its own test nodes (``probe_curve_rows``)."""
    G = len(cell.seeds)
    f = f.double().cpu()
    rows_g = torch.arange(G)[:, None]
    return probe_curve_rows(cell, f[rows_g, torch.as_tensor(graphs.pool)], graphs.y[graphs.pool],
                            f[rows_g, torch.as_tensor(graphs.test)], graphs.y[graphs.test], cell.data.n_classes,
                            base, step, data_id, seeds_lrs)


def _graph_mean_accuracy(graphs: Graphs, f: torch.Tensor, K: int) -> np.ndarray:
    """Accuracy on the test nodes of argmax_c mu_c . f(x), mu_c the mean representation of block c's pool."""
    f = f.double().cpu()
    G = f.shape[0]
    pool = f[torch.arange(G)[:, None], torch.as_tensor(graphs.pool)]
    mu = pool.reshape(G, K, -1, f.shape[-1]).mean(2)
    test = f[torch.arange(G)[:, None], torch.as_tensor(graphs.test)]
    y = torch.as_tensor(graphs.y[graphs.test])
    return (torch.bmm(test, mu.transpose(1, 2)).argmax(-1) == y).double().mean(-1).numpy()


def run_graph(cell: Cell, model, data_id: str, device: str = "cpu") -> pd.DataFrame:
    """One graph-bench cell: train (DGI, supervised), then the probe curve, the mean classifier's accuracy and the
    collapse measures on the test nodes, and in the spectral cell the exact spectral quantities. No Lemma 4.3
    terms (L_un, ...): the bench has no bound rows."""
    graphs = Graphs(cell, model, data_id, device)
    seeds_lrs = [(s, cell.train.lr) for s in cell.seeds]
    base = {"objective": cell.objective, "variant": cell.variant, "n_classes": cell.data.n_classes,
            "loss": "none", "k": 0, "target_error": cell.eval.target_error}
    params, values, step = None, {}, 0
    if cell.objective == "random":
        params = graph_init_params(cell, data_id, model.input_dim, device)
    elif cell.objective not in ("raw", "spectral"):
        params, loss_fn = train_graph_cell(cell, model, graphs, data_id, device)
        step = cell.train.steps
        tail = torch.stack(loss_fn.history[-max(1, min(10, len(loss_fn.history))):])
        values["train_loss"] = tail.mean(0).cpu().numpy()
    with torch.no_grad():
        f = graph_representation(cell, model, graphs, params)
        values["mean_acc"] = _graph_mean_accuracy(graphs, f, cell.data.n_classes)
        z_test = f[torch.arange(f.shape[0])[:, None], torch.as_tensor(graphs.test, device=f.device)]
        values.update(collapse_diagnostic(z_test))
        if cell.objective == "spectral":
            values.update(spectral_values(cell, model, graphs))
        rows = _rows(base, step, values, seeds_lrs)
        with stage("probes"):
            rows += graph_probe_rows(cell, graphs, f, base, step, data_id, seeds_lrs)
    return pd.DataFrame(rows)



# ============================================================================================= the sequence bench
# The language chapter's HMM (synthetic_data.language): windows s of L = hmm.context_len words (plus, for CPC, the
# future_steps words after them), each seed its own training windows (stream "train-data") and minibatches
# ("batches"), per-step orders, masks and Gumbel draws from stream "corruption". Every objective's encoder reads
# one layout, [one-hot(w) * visible (L V), visible (L), one-hot(query position) (L)], from stream "init"; the
# representation is the encoder on the whole window (all visible, no query). Evaluation windows (test, excess
# losses, CPC bounds) are shared by the seeds (stream "eval", seed 0); each seed probes its own labelled pool
# ("probe-labels"). The probe's labels: the language chapter's deterministic natural task on p*_s. No Lemma 4.3
# rows (no positive pairs of the latent-class model).


def seq_input(words: torch.Tensor, visible: torch.Tensor, query: torch.Tensor | None, V: int) -> torch.Tensor:
    """(..., L) words, (..., L) 0/1 visibility, (...) query positions or None -> (..., L V + 2 L) encoder input."""
    L = words.shape[-1]
    vis = visible.to(torch.float32)
    oh = torch.nn.functional.one_hot(words.long(), V).to(torch.float32) * vis[..., None]
    q = torch.zeros_like(vis) if query is None else torch.nn.functional.one_hot(query.long(), L).to(torch.float32)
    return torch.cat([oh.flatten(-2), vis, q], -1)


def seq_full(words: torch.Tensor, V: int) -> torch.Tensor:
    """The whole window visible, no query: the representation's input."""
    return seq_input(words, torch.ones_like(words), None, V)


def seq_init_params(cell: Cell, data_id: str, device: str = "cpu") -> dict:
    """The shared encoder (stream "init"), then the objective's parts: the PLM's output layer (plm_W, plm_b),
    ELECTRA's generator (gen_*, a one-hidden-layer MLP to L V logits) and replaced-token head (disc_W, disc_b), CPC's
    future-word embedding (cpc_E) and bilinear critics (cpc_W, one per future step), the supervised head."""
    enc, q, seeds = cell.encoder, cell.sequences, cell.seeds
    G, d = len(seeds), enc.out_dim
    L, V = cell.data.context_len, cell.data.vocab
    din = L * V + 2 * L
    p = init_encoder(enc.kind, din, d, G, [torch_generator(data_id, s, "init") for s in seeds], width=enc.width,
                     device=device)

    def unif(name, *shape, fan):
        return torch.stack([(torch.rand(*shape, generator=torch_generator(data_id, s, f"init-{name}")) * 2 - 1)
                            / fan ** 0.5 for s in seeds]).to(device)
    if cell.objective == "plm":
        p["plm_W"], p["plm_b"] = unif("plm", d, V, fan=d), torch.zeros(G, 1, V, device=device)
    if cell.objective == "electra":
        gen = init_encoder("mlp", din, L * V, G, [torch_generator(data_id, s, "init-gen") for s in seeds],
                           width=q.generator_width, device=device)
        gen["b2"] = torch.zeros(G, 1, L * V, device=device)
        p.update({f"gen_{k}": v for k, v in gen.items()})
        p["disc_W"], p["disc_b"] = unif("disc", d, L, fan=d), torch.zeros(G, 1, L, device=device)
    if cell.objective == "cpc":
        p["cpc_E"] = unif("cpc-e", V, d, fan=1)
        p["cpc_W"] = unif("cpc-w", q.future_steps, d, d, fan=d)
    if cell.objective == "supervised":
        p["head_W"] = unif("head", d, 2, fan=d)
    return p


def _orders(u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Uniform draws (..., L) -> (order, rank): a uniformly random permutation and its inverse."""
    order = torch.argsort(u, -1)
    return order, torch.argsort(order, -1)


def plm_inputs(words: torch.Tensor, order: torch.Tensor, V: int) -> torch.Tensor:
    """(..., L) words and orders -> (..., L, L V + 2 L): row t predicts position order_t from order_<t."""
    L = words.shape[-1]
    rank = torch.argsort(order, -1)
    t = torch.arange(L, device=words.device)
    visible = rank[..., None, :] < t[:, None]                                   # (..., L_t, L_pos)
    w = words[..., None, :].expand(*words.shape[:-1], L, L)
    return seq_input(w, visible, order, V)


def seq_labels(task, hmm, words: np.ndarray) -> np.ndarray:
    """The deterministic natural task's labels in {0, 1}: 1[v . p*_s + b > 0]."""
    return (task.context_label_prob(hmm, words) > 0.5).astype(np.int64)


def _balanced(words: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n windows of each label (label 0 first); ValueError if a label has fewer than n."""
    idx = [np.flatnonzero(y == c)[:n] for c in (0, 1)]
    if min(len(i) for i in idx) < n:
        raise ValueError(f"sequences: a task label has fewer than {n} windows in the sample")
    idx = np.concatenate(idx)
    return words[idx], y[idx]


class SeqObjective:
    """loss(params, step) -> (G,) for the PLM, ELECTRA, CPC or the supervised encoder on HMM windows."""

    def __init__(self, cell: Cell, hmm, task, data_id: str, device: str = "cpu"):
        self.cell, self.obj, self.q, self.device = cell, cell.objective, cell.sequences, device
        self.L, self.V = cell.data.context_len, cell.data.vocab
        seeds, tr = cell.seeds, cell.train
        self.history: list[torch.Tensor] = []
        rngs = [numpy_rng(data_id, s, "train-data") for s in seeds]
        if self.obj == "supervised":
            lab = []
            for r in rngs:
                w, _ = hmm.sample(4 * tr.labelled_per_class + 400, self.L, r)
                lab.append(_balanced(w, seq_labels(task, hmm, w), tr.labelled_per_class))
            self.x = torch.as_tensor(np.stack([a[0] for a in lab]), device=device)
            self.y = torch.as_tensor(np.stack([a[1] for a in lab]), device=device)
        else:
            self.x = torch.as_tensor(np.stack([hmm.sample(tr.n_pairs, self.L + self.q.future_steps, r)[0]
                                               for r in rngs]), device=device)
        batch = min(tr.batch_size, self.x.shape[1])
        self.batches = _Batches([numpy_rng(data_id, s, "batches") for s in seeds], tr.steps, batch, self.x.shape[1],
                                1, device)
        self.noise = _Noise(data_id, seeds, "corruption", device)

    def __call__(self, p: dict, step: int) -> torch.Tensor:
        loss = self._loss(p, step)
        self.history.append(loss.detach())
        return loss

    def _loss(self, p: dict, step: int) -> torch.Tensor:
        L, V = self.L, self.V
        enc = _part(p, "")
        wb = self.batches.take(self.x, step)
        G, B = wb.shape[:2]
        if self.obj == "supervised":
            return objectives.supervised_ce(torch.bmm(encode(enc, seq_full(wb, V)), p["head_W"]),
                                            self.batches.take(self.y, step))
        w = wb[..., :L]
        if self.obj == "plm":
            order, _ = _orders(self.noise.uniform((B, L)))
            h = encode(enc, plm_inputs(w, order, V).reshape(G, B * L, -1))
            logits = (torch.bmm(h, p["plm_W"]) + p["plm_b"]).reshape(G, B, L, V)
            return objectives.permutation_lm(logits, w, order)
        if self.obj == "electra":
            mask = self.noise.uniform((B, L)) < self.q.mask_frac
            gen_logits = _net(_part(p, "gen_"), seq_input(w, ~mask, None, V)).reshape(G, B, L, V)
            u = self.noise.uniform((B, L, V)).clamp(1e-12, 1 - 1e-7)
            with torch.no_grad():   # a sample from the generator (Gumbel-max); no gradient through it
                sample = (gen_logits - torch.log(-torch.log(u))).argmax(-1)
            corrupted = torch.where(mask, sample, w)
            disc = torch.bmm(encode(enc, seq_full(corrupted, V)), p["disc_W"]) + p["disc_b"]
            return objectives.electra(gen_logits, w, mask, disc, corrupted != w, self.q.electra_weight)
        if self.obj == "cpc":
            c = encode(enc, seq_full(w, V))
            fut = wb[..., L:]
            z = p["cpc_E"][torch.arange(G, device=wb.device)[:, None, None], fut]          # (G, B, K, d)
            return objectives.cpc(c, z, p["cpc_W"])
        raise ValueError(f"objective: unknown sequence objective {self.obj!r}")


def train_seq_cell(cell: Cell, hmm, task, data_id: str, device: str = "cpu"):
    params = seq_init_params(cell, data_id, device)
    loss_fn = SeqObjective(cell, hmm, task, data_id, device)
    (_, final), = train(params, loss_fn, cell.train.steps, cell.train.lr, [cell.train.steps], context=to_json(cell),
                        weight_decay=cell.train.weight_decay)
    return final, loss_fn


def seq_task(cell: Cell, hmm, data_id: str):
    """The probe's task: the language chapter's deterministic natural task on p*_s (stream "task")."""
    return make_task(TaskSpec(kind="deterministic"), hmm, numpy_rng(data_id, 0, "task"),
                     context_len=cell.data.context_len)


def seq_excess(cell: Cell, hmm, params: dict, words: np.ndarray, rng: np.random.Generator) -> dict:
    """Excess losses against the HMM's exact conditionals on the evaluation windows, per seed (nats):
    plm: one random order per window, every step t: -log q(w_{o_t} | w_{o_<t}) against -log p(...) exact;
    electra: the generator on a random mask (mask_frac), each masked position against p(w_pos | unmasked)."""
    L, V, G = cell.data.context_len, cell.data.vocab, len(cell.seeds)
    n = words.shape[0]
    w = torch.as_tensor(words)
    enc = _part(params, "")
    out = {}
    if cell.objective == "plm":
        order = np.argsort(rng.random((n, L)), -1)
        rank = np.argsort(order, -1)
        vis = rank[:, None, :] < np.arange(L)[:, None]                                        # (n, t, L)
        exact = th.hmm_conditional(hmm, np.repeat(words, L, 0), vis.reshape(n * L, L), order.reshape(-1))
        target = words[np.arange(n)[:, None], order]                                          # (n, L)
        ex = -np.log(exact[np.arange(n * L), target.reshape(-1)]).mean()
        x = plm_inputs(w, torch.as_tensor(order), V).reshape(1, n * L, -1).expand(G, -1, -1)
        logits = (torch.bmm(encode(enc, x), params["plm_W"]) + params["plm_b"]).reshape(G, n, L, V)
        model = objectives.permutation_lm(logits, w.expand(G, -1, -1), torch.as_tensor(order).expand(G, -1, -1))
        out = {"plm_test_loss": model.numpy(), "plm_exact_loss": np.full(G, ex), "plm_excess": model.numpy() - ex}
    if cell.objective == "electra":
        mask = rng.random((n, L)) < cell.sequences.mask_frac
        rows, cols = np.nonzero(mask)
        exact = th.hmm_conditional(hmm, words[rows], ~mask[rows], cols)
        ex = -np.log(exact[np.arange(rows.size), words[rows, cols]]).mean()
        gl = _net(_part(params, "gen_"), seq_input(w, torch.as_tensor(~mask), None, V)[None].expand(G, -1, -1))
        lp = torch.log_softmax(gl.reshape(G, n, L, V), -1)[:, torch.as_tensor(rows), torch.as_tensor(cols),
                                                             torch.as_tensor(words[rows, cols])]
        model = (-lp.mean(1)).numpy()
        out = {"electra_gen_loss": model, "electra_gen_exact": np.full(G, ex), "electra_gen_excess": model - ex}
    return out


def cpc_bounds(cell: Cell, hmm, params: dict, words: np.ndarray) -> dict:
    """Per future step k: CPC's test InfoNCE loss L_k on batches of train.batch_size windows, the bound
    log N - L_k (N the batch size) and the exact I(s; w_{L+k}) it lower-bounds (``theory.zoo.hmm_future_mi``)."""
    L, G, N = cell.data.context_len, len(cell.seeds), cell.train.batch_size
    n = (words.shape[0] // N) * N
    w = torch.as_tensor(words[:n]).reshape(1, -1, words.shape[1]).expand(G, -1, -1)
    c = encode(_part(params, ""), seq_full(w[..., :L], cell.data.vocab))
    z = params["cpc_E"][torch.arange(G)[:, None, None], w[..., L:]]
    nb = n // N
    per = objectives.cpc_terms(c.reshape(G * nb, N, -1), z.reshape(G * nb, N, *z.shape[2:]),
                               params["cpc_W"].repeat_interleave(nb, 0)).reshape(G, nb, -1).mean(1)   # (G, K)
    out = {}
    for k in range(per.shape[1]):
        mi, _ = th.hmm_future_mi(hmm, words[:, :L], k + 1)
        out[f"cpc_loss_k{k + 1}"] = per[:, k].numpy()
        out[f"cpc_bound_k{k + 1}"] = math.log(N) - per[:, k].numpy()
        out[f"cpc_mi_exact_k{k + 1}"] = np.full(G, mi)
    return out


def seq_representation(cell: Cell, params: dict | None):
    """(N, L) windows -> (G, N, q): the one-hot window (raw) or the encoder on the whole window."""
    G, V = len(cell.seeds), cell.data.vocab

    def f(words: np.ndarray) -> torch.Tensor:
        w = torch.as_tensor(words)
        if params is None:
            return torch.nn.functional.one_hot(w, V).to(torch.float32).flatten(-2)[None].expand(G, -1, -1)
        return encode(_part(params, ""), seq_full(w, V)[None].expand(G, -1, -1))
    return f


def run_sequences(cell: Cell, hmm, data_id: str, device: str = "cpu") -> pd.DataFrame:
    """One sequence-bench cell: train, then the probe curve on the natural task, the mean classifier, the collapse
    measures, the excess losses against the exact conditionals (PLM, ELECTRA's generator) and CPC's bounds."""
    q, L = cell.sequences, cell.data.context_len
    task = seq_task(cell, hmm, data_id)
    seeds_lrs = [(s, cell.train.lr) for s in cell.seeds]
    base = {"objective": cell.objective, "variant": cell.variant, "n_classes": 2, "loss": "none", "k": 0,
            "target_error": cell.eval.target_error}
    params, values, step = None, {}, 0
    if cell.objective == "random":
        params = seq_init_params(cell, data_id, device)
    elif cell.objective != "raw":
        params, loss_fn = train_seq_cell(cell, hmm, task, data_id, device)
        step = cell.train.steps
        tail = torch.stack(loss_fn.history[-max(1, min(10, len(loss_fn.history))):])
        values["train_loss"] = tail.mean(0).cpu().numpy()
    rng = numpy_rng(data_id, 0, "eval")
    w_test, _ = hmm.sample(8 * q.test_per_class + 400, L, rng)
    w_test, y_test = _balanced(w_test, seq_labels(task, hmm, w_test), q.test_per_class)
    w_ex, _ = hmm.sample(q.n_excess, L + q.future_steps, rng)
    n_pool = max(cell.probe_n)
    pools = []
    for s in cell.seeds:
        w, _ = hmm.sample(4 * n_pool + 400, L, numpy_rng(data_id, s, "probe-labels"))
        pools.append(_balanced(w, seq_labels(task, hmm, w), n_pool))
    with torch.no_grad():
        f = seq_representation(cell, params)
        G = len(cell.seeds)
        z_test = f(w_test)
        f_pool = torch.stack([f(pw)[g] for g, (pw, _) in enumerate(pools)])
        y_pool = np.stack([py for _, py in pools])
        mu = f_pool.double().reshape(G, 2, n_pool, -1).mean(2)
        values["mean_acc"] = (torch.bmm(z_test.double(), mu.transpose(1, 2)).argmax(-1)
                              == torch.as_tensor(y_test)).double().mean(-1).numpy()
        values.update(collapse_diagnostic(z_test))
        if cell.objective in ("plm", "electra"):
            values.update(seq_excess(cell, hmm, params, w_ex[:, :L], numpy_rng(data_id, 0, "eval-orders")))
        if cell.objective == "cpc":
            values.update(cpc_bounds(cell, hmm, params, w_ex))
        rows = _rows(base, step, values, seeds_lrs)
        with stage("probes"):
            rows += probe_curve_rows(cell, f_pool, y_pool, z_test, np.tile(y_test, (G, 1)), 2,
                                     base, step, data_id, seeds_lrs)
    return pd.DataFrame(rows)
